/*
 * bench/cuda/boundary.cu — what a step boundary costs on this GPU: a
 * grid-wide barrier (cooperative groups' grid.sync(), as a persistent
 * decode kernel would use between its ops) against a kernel boundary (a
 * chain of empty kernels in a CUDA graph, with and without programmatic
 * dependent launch, as the decode step uses now), at 1, 4 and 8 blocks of
 * 128 threads per SM. Built as realm_cuda_boundary where the CUDA backend
 * is; on the GPU machine alone:
 *     nvcc -arch=sm_90 -o /tmp/boundary bench/cuda/boundary.cu && /tmp/boundary
 * Results: bench/cuda/NOTES.md round 18.
 */
#include <cooperative_groups.h>
#include <stdio.h>

namespace cg = cooperative_groups;

__global__ static void k_sync(int n, int *sink)
{
    cg::grid_group g = cg::this_grid();
    for (int i = 0; i < n; i++)
        g.sync();
    if (threadIdx.x == 0 && blockIdx.x == 0) *sink = n;
}

__global__ static void k_empty(int *sink)
{
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    if (threadIdx.x == 0 && blockIdx.x == 0) *sink += 1;
}

/* ms between two events around what f enqueues on st, the last of `rounds` */
template <typename F> static float timed(cudaStream_t st, int rounds, F f)
{
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float ms = 0;
    for (int r = 0; r < rounds; r++) {
        cudaEventRecord(a, st);
        f();
        cudaEventRecord(b, st);
        cudaEventSynchronize(b);
        cudaEventElapsedTime(&ms, a, b);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms;
}

int main(void)
{
    int *d, n_sm;
    cudaStream_t st;
    cudaMalloc(&d, sizeof(int));
    cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0);
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    for (int per_sm : {1, 4, 8}) {
        int n = 2000;
        void *args[] = {&n, &d};
        const dim3 grid(n_sm * per_sm), blk(128);
        const float ms = timed(
            st, 2, [&] { cudaLaunchCooperativeKernel((void *)k_sync, grid, blk, args, 0, st); });
        printf("grid.sync, %5u blocks: %.2f us each\n", grid.x, ms * 1e3f / n);
    }
    for (int pdl : {0, 1})
        for (int per_sm : {1, 8}) {
            const int n = 1000;
            cudaLaunchAttribute at = {};
            at.id = cudaLaunchAttributeProgrammaticStreamSerialization;
            at.val.programmaticStreamSerializationAllowed = pdl;
            cudaLaunchConfig_t cfg = {};
            cfg.gridDim = dim3(n_sm * per_sm);
            cfg.blockDim = dim3(128);
            cfg.stream = st;
            cfg.attrs = &at;
            cfg.numAttrs = 1;
            cudaGraph_t gr;
            cudaGraphExec_t ge;
            cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal);
            for (int i = 0; i < n; i++)
                cudaLaunchKernelEx(&cfg, k_empty, d);
            cudaStreamEndCapture(st, &gr);
            cudaGraphInstantiate(&ge, gr, 0);
            const float ms = timed(st, 3, [&] { cudaGraphLaunch(ge, st); });
            printf("graph of empty kernels, pdl=%d, %5d blocks: %.2f us a kernel\n", pdl,
                   n_sm * per_sm, ms * 1e3f / n);
            cudaGraphExecDestroy(ge);
            cudaGraphDestroy(gr);
        }
    const cudaError_t e = cudaGetLastError();
    printf("%s\n", cudaGetErrorString(e));
    return e == cudaSuccess ? 0 : 1;
}
