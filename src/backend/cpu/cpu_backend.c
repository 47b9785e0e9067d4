/* backend/cpu/cpu_backend.c — the CPU backend's table, buffers and scratch. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_impl.h"
#include "base/alloc.h"
#include "base/parallel.h"

/* A weight type is usable when it can be dequantized (get_rows) and dotted
 * with activations converted to its vec_dot_type (matmul). */
static bool cpu_supports(const realm_backend *be, realm_type type)
{
    (void)be;
    const realm_type_traits *t = realm_type_traits_get(type);
    if (!t || !t->name || !t->to_float || !t->vec_dot) return false;
    const realm_type_traits *a = realm_type_traits_get(t->vec_dot_type);
    return a && (t->vec_dot_type == REALM_TYPE_F32 || a->from_float);
}

static void cpu_destroy(realm_backend *be)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    realm_threadpool_free(c->pool);
    realm_free(c->act_q);
    realm_free(c);
}

static realm_status cpu_reserve(realm_backend *be, const realm_backend_limits *lim,
                                realm_error *err)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    if (lim->max_rows <= 0 || lim->max_ctx <= 0 || lim->max_ne0 <= 0)
        return realm_error_set(err, REALM_E_INVALID, "cpu backend: limits must be positive");
    /* Every activation format (Q8_0, Q8_1, Q8_K) takes at most 1.15 bytes
     * per element, so f32-sized rows hold the up to three differently
     * quantized copies of x that one matmul_multi may need. */
    size_t act_bytes = (size_t)lim->max_rows * (size_t)lim->max_ne0 * sizeof(float);
    void *act = realm_malloc(act_bytes);
    if (!act)
        return realm_error_set(err, REALM_E_NOMEM,
                               "cpu backend: cannot reserve %zu bytes of scratch", act_bytes);
    realm_free(c->act_q);
    c->act_q = act;
    c->act_q_bytes = act_bytes;
    c->lim = *lim;
    return REALM_OK;
}

static realm_status cpu_synchronize(realm_backend *be, realm_error *err)
{
    (void)be;
    (void)err;
    return REALM_OK;
}

static realm_status cpu_buffer_alloc(realm_backend *be, size_t size_bytes, realm_buffer *out,
                                     realm_error *err)
{
    (void)be;
    *out = (realm_buffer){0};
    void *p = realm_calloc(1, size_bytes ? size_bytes : 1);
    if (!p)
        return realm_error_set(err, REALM_E_NOMEM, "cpu backend: cannot allocate %zu bytes",
                               size_bytes);
    *out = (realm_buffer){.data = p, .size_bytes = size_bytes};
    return REALM_OK;
}

/* Zero-copy: the CPU reads the GGUF mapping where it lies. */
static realm_status cpu_buffer_from_host(realm_backend *be, const void *host, size_t size_bytes,
                                         realm_buffer *out, realm_error *err)
{
    (void)be;
    (void)err;
    *out = (realm_buffer){.data = (void *)host, .size_bytes = size_bytes, .borrowed = true};
    return REALM_OK;
}

static void cpu_buffer_free(realm_backend *be, realm_buffer *buf)
{
    (void)be;
    if (!buf->borrowed) realm_free(buf->data);
    *buf = (realm_buffer){0};
}

static void cpu_buffer_upload(realm_backend *be, realm_buffer *buf, size_t offset, const void *src,
                              size_t size_bytes)
{
    (void)be;
    memcpy((char *)buf->data + offset, src, size_bytes);
}

static void cpu_buffer_download(realm_backend *be, const realm_buffer *buf, size_t offset,
                                void *dst, size_t size_bytes)
{
    (void)be;
    memcpy(dst, (const char *)buf->data + offset, size_bytes);
}

static void cpu_buffer_clear(realm_backend *be, realm_buffer *buf)
{
    (void)be;
    memset(buf->data, 0, buf->size_bytes);
}

typedef struct pack_job {
    realm_cpu_pack_fn pack;
    const realm_weight *w;
    size_t row_bytes;
    int64_t rows_per_task;
    char *dst;
} pack_job;

static void pack_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const pack_job *j = ctx;
    int64_t r0 = task * j->rows_per_task;
    int64_t nr = j->w->ne1 - r0 < j->rows_per_task ? j->w->ne1 - r0 : j->rows_per_task;
    j->pack(j->w->ne0, (const char *)j->w->data + (size_t)r0 * j->row_bytes, j->row_bytes, nr,
            j->dst + (size_t)r0 * j->row_bytes);
}

/* The source bytes of a packed matrix are not read again by matmul: hand
 * their whole pages back to the kernel (a hint: MADV_PAGEOUT only reclaims,
 * so nothing is lost whatever memory it is; get_rows of a tied embedding
 * faults its rows back in from the file). Keeps the resident size near one
 * copy of the weights instead of two. */
static void release_pages(const void *p, size_t n)
{
#ifdef MADV_PAGEOUT
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + n) & ~(pg - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_PAGEOUT);
#else
    (void)p;
    (void)n;
#endif
}

/* Types with a packed kernel get a copy in panels of tile_rows rows. */
static realm_status cpu_weight_pack(realm_backend *be, const realm_weight *w, realm_buffer *out,
                                    realm_error *err)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    *out = (realm_buffer){0};
    realm_cpu_pack_fn pack = c->k->pack[w->type];
    if (!pack || !c->k->gemm_packed[w->type]) return REALM_OK;
    int64_t tr = c->k->tile_rows, panels = (w->ne1 + tr - 1) / tr;
    pack_job j = {.pack = pack, .w = w, .row_bytes = realm_type_row_size(w->type, w->ne0)};
    size_t bytes = (size_t)(panels * tr) * j.row_bytes;
    j.dst = realm_malloc(bytes);
    if (!j.dst)
        return realm_error_set(err, REALM_E_NOMEM, "cpu backend: cannot allocate %zu bytes to pack a weight",
                               bytes);
    j.rows_per_task = tr * 64;
    realm_threadpool_run(c->pool, (w->ne1 + j.rows_per_task - 1) / j.rows_per_task, c->n_threads,
                         pack_task, &j);
    release_pages(w->data, (size_t)w->ne1 * j.row_bytes);
    *out = (realm_buffer){.data = j.dst, .size_bytes = bytes};
    return REALM_OK;
}

static const realm_backend_ops cpu_ops = {
    .name = "cpu",
    .kv_type = REALM_TYPE_F32,
    .supports = cpu_supports,
    .destroy = cpu_destroy,
    .reserve = cpu_reserve,
    .synchronize = cpu_synchronize,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_from_host = cpu_buffer_from_host,
    .buffer_free = cpu_buffer_free,
    .buffer_upload = cpu_buffer_upload,
    .buffer_download = cpu_buffer_download,
    .buffer_clear = cpu_buffer_clear,
    .weight_pack = cpu_weight_pack,
    .get_rows = realm__cpu_get_rows,
    .copy_rows = realm__cpu_copy_rows,
    .rmsnorm = realm__cpu_rmsnorm,
    .matmul = realm__cpu_matmul,
    .matmul_multi = realm__cpu_matmul_multi,
    .rope = realm__cpu_rope,
    .kv_store = realm__cpu_kv_store,
    .attention = realm__cpu_attention,
    .swiglu = realm__cpu_swiglu,
    .add = realm__cpu_add,
    .argmax = realm__cpu_argmax,
};

realm_status realm_backend_cpu_create(const realm_backend_cpu_params *params, realm_backend **out,
                                      realm_error *err)
{
    *out = NULL;
    cpu_ctx *c = realm_calloc(1, sizeof *c);
    if (!c) return realm_error_set(err, REALM_E_NOMEM, "cpu backend: out of memory");
    int want = params && params->n_threads > 0 ? params->n_threads : realm_cpu_count();
    realm_status st = realm_threadpool_create(want, &c->pool, err);
    if (st) {
        realm_free(c);
        return st;
    }
    c->n_threads = realm_threadpool_size(c->pool);
    c->k = realm__cpu_kernels();
    c->be.ops = &cpu_ops;
    c->be.ctx = c;
    *out = &c->be;
    return REALM_OK;
}
