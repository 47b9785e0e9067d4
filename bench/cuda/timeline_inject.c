/*
 * bench/cuda/timeline_inject.c — a CUDA injection library (the driver loads
 * it at initialization where $CUDA_INJECTION64_PATH names it) that records
 * the start and end of every kernel through CUPTI's activity API, graph
 * nodes included, without serializing them: the decode step's real
 * timeline, programmatic dependent launch overlaps and all (ncu and
 * $REALM_CUDA_PROFILE time kernels one at a time). At exit it writes one CSV
 * line per kernel to $REALM_TIMELINE_OUT (default /tmp/timeline.csv):
 *     start_ns,end_ns,stream,grid,block,dyn_shared,shared_executed,regs,name
 * bench/cuda/timeline.py reads it. Built and run by `device_run.sh
 * timeline` against the PyPI wheel nvidia-cuda-cupti (headers and
 * libcupti.so); never part of Realm's build.
 */
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

#define BUF_BYTES (8u << 20)

static FILE *out;

static void CUPTIAPI buffer_requested(uint8_t **buf, size_t *size, size_t *max_records)
{
    *buf = aligned_alloc(ACTIVITY_RECORD_ALIGNMENT, BUF_BYTES);
    *size = *buf ? BUF_BYTES : 0;
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size,
                                      size_t valid)
{
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *rec = NULL;
    while (cuptiActivityGetNextRecord(buf, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
        fprintf(out, "%llu,%llu,%u,%dx%dx%d,%dx%dx%d,%d,%u,%u,%s\n", (unsigned long long)k->start,
                (unsigned long long)k->end, k->streamId, k->gridX, k->gridY, k->gridZ, k->blockX,
                k->blockY, k->blockZ, k->dynamicSharedMemory, k->sharedMemoryExecuted,
                (unsigned)k->registersPerThread, k->name ? k->name : "?");
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped)
        fprintf(stderr, "timeline: %zu records dropped\n", dropped);
    free(buf);
}

static void finish(void)
{
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    if (out) fclose(out);
    out = NULL;
}

int InitializeInjection(void)
{
    const char *path = getenv("REALM_TIMELINE_OUT");
    out = fopen(path ? path : "/tmp/timeline.csv", "w");
    if (!out) return 0;
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "timeline: CUPTI activity tracing unavailable\n");
        return 0;
    }
    atexit(finish);
    return 1;
}
