/*
 * backend/cuda/cuda_gemm.cu — cuda_matmul.cu's large path (prefill: more
 * rows than the mat-vecs and the tile kernel take): W is dequantized to f16
 * in tiles of rows (scratch bounded by DQ_TILE_BYTES; one thread per
 * 32-element group), the activations converted to f16, and cuBLAS
 * multiplies with f32 accumulation; F32 weights use SGEMM directly.
 */
#include <stdio.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

/* One 32-element group per thread, unpacked by the mat-vec's load_group:
 * element = fa·code − fm (+ fs), the same float operations as dq_elem (so
 * the same binary16 values). Each warp's 32 groups (2 KB) pass through
 * shared memory so that its stores are whole 512-byte runs (a thread's own
 * 64 bytes as four 16-byte stores half-filled every sector they touched:
 * 1.1 TB/s of writes on the H100). blockIdx.x is the row. */
template <int T>
__global__ static void __launch_bounds__(128)
    k_dequant_h(const uint8_t *__restrict__ w, size_t row_bytes, int32_t ne0, __half *dst)
{
    __shared__ uint4 st[4][32 * 5]; /* a lane's 4 x 16 bytes at stride 5: no bank conflicts */
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t n_g = ne0 / 32, g0 = (int32_t)blockIdx.y * blockDim.x + 32 * warp;
    if (g0 >= n_g) return; /* warp-uniform */
    if (g0 + lane < n_g) {
        grp o;
        load_group<T>(w + (size_t)blockIdx.x * row_bytes, g0 + lane, o);
#pragma unroll
        for (int k = 0; k < 8; k += 2) {
            float fa = k < 4 ? o.fa0 : o.fa1, fm = k < 4 ? o.fm0 : o.fm1;
            __half2 h[4];
#pragma unroll
            for (int e = 0; e < 8; e += 2) {
                float v[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    int q = (int)(int8_t)((uint32_t)o.w[k + (e + u) / 4] >> (8 * ((e + u) % 4)));
                    v[u] = __fsub_rn(__fmul_rn(fa, (float)q), fm);
                    if (T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1) v[u] = __fadd_rn(v[u], o.fs);
                }
                h[e / 2] = __floats2half2_rn(v[0], v[1]);
            }
            st[warp][5 * lane + k / 2] = *(const uint4 *)h;
        }
    }
    __syncwarp();
    uint4 *d = (uint4 *)(dst + (size_t)blockIdx.x * ne0 + 32 * (size_t)g0);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int i = 32 * k + lane; /* 16-byte unit i of the warp's run: group i / 4 */
        if (g0 + i / 4 < n_g) d[i] = st[warp][5 * (i / 4) + i % 4];
    }
}

static void launch_dequant_h(cuda_ctx *c, realm_type t, const void *w, size_t rb, int64_t ne0,
                             int64_t rows)
{
    dim3 grid((unsigned)rows, (unsigned)((ne0 / 32 + 127) / 128));
    const uint8_t *p = (const uint8_t *)w;
    __half *d = (__half *)c->dq;
#define DQ(T) k_dequant_h<T><<<grid, 128, 0, c->stream>>>(p, rb, (int32_t)ne0, d)
    switch (t) {
    case REALM_TYPE_Q4_0: DQ(REALM_TYPE_Q4_0); break;
    case REALM_TYPE_Q4_1: DQ(REALM_TYPE_Q4_1); break;
    case REALM_TYPE_Q5_0: DQ(REALM_TYPE_Q5_0); break;
    case REALM_TYPE_Q5_1: DQ(REALM_TYPE_Q5_1); break;
    case REALM_TYPE_Q8_0: DQ(REALM_TYPE_Q8_0); break;
    case REALM_TYPE_Q2_K: DQ(REALM_TYPE_Q2_K); break;
    case REALM_TYPE_Q3_K: DQ(REALM_TYPE_Q3_K); break;
    case REALM_TYPE_Q4_K: DQ(REALM_TYPE_Q4_K); break;
    case REALM_TYPE_Q5_K: DQ(REALM_TYPE_Q5_K); break;
    case REALM_TYPE_Q6_K: DQ(REALM_TYPE_Q6_K); break;
    case REALM_TYPE_IQ4_NL: DQ(REALM_TYPE_IQ4_NL); break;
    case REALM_TYPE_IQ4_XS: DQ(REALM_TYPE_IQ4_XS); break;
    default: break; /* float types never come here (realm__cuda_type_ok) */
    }
#undef DQ
}

/* Four elements per thread. */
__global__ static void k_to_half(const float *x, int64_t n, int bf16, void *dst)
{
    int64_t i0 = 4 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    for (int64_t i = i0; i < i0 + 4 && i < n; i++) {
        if (bf16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(x[i]);
        else
            ((__half *)dst)[i] = __float2half_rn(x[i]);
    }
}

__global__ static void k_add_bias(float *out, const float *bias, int64_t ne1, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] += bias[i % ne1];
}

static void cublas_check(cuda_ctx *c, cublasStatus_t s, const char *what)
{
    if (s != CUBLAS_STATUS_SUCCESS && c->first_status == REALM_OK) {
        c->first_status = REALM_E_INTERNAL;
        snprintf(c->first_error, sizeof c->first_error, "cuda backend: %s: cuBLAS status %d", what,
                 (int)s);
    }
}

void realm__cuda_matmul_big(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    const int64_t ne0 = w->ne0, ne1 = w->ne1, n = op->n;
    const float one = 1.0f, zero = 0.0f;
    float *out = (float *)op->out;
    if (w->type == REALM_TYPE_F32) {
        cublas_check(c, cublasSgemm(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)ne1, (int)n, (int)ne0,
                                    &one, (const float *)w->data, (int)ne0, (const float *)op->x,
                                    (int)ne0, &zero, out, (int)ne1),
                     "sgemm");
    } else {
        int bf16 = w->type == REALM_TYPE_BF16;
        cudaDataType dt = bf16 ? CUDA_R_16BF : CUDA_R_16F;
        /* q/k/v and gate/up read one input: convert it once */
        const int kind = bf16 ? ACT_BF16 : ACT_F16;
        if (c->aq_x != op->x || c->aq_n != n || c->aq_ne0 != ne0 || c->aq_kind != kind) {
            k_to_half<<<(unsigned)((n * ne0 + 1023) / 1024), 256, 0, c->stream>>>(
                (const float *)op->x, n * ne0, bf16, c->act_h);
            CUDA_CHECK(c, cudaGetLastError());
            cuda__remember_act(c, op->x, (int32_t)n, ne0, kind);
        }
        size_t rb = realm_type_row_size(w->type, ne0);
        int64_t tile = (int64_t)(c->dq_bytes / ((size_t)ne0 * 2));
        for (int64_t r0 = 0; r0 < ne1; r0 += tile) {
            int64_t rows = ne1 - r0 < tile ? ne1 - r0 : tile;
            const void *a = (const uint8_t *)w->data + (size_t)r0 * rb;
            if (w->type != REALM_TYPE_F16 && w->type != REALM_TYPE_BF16) {
                launch_dequant_h(c, w->type, a, rb, ne0, rows);
                CUDA_CHECK(c, cudaGetLastError());
                a = c->dq;
            }
            cublas_check(c,
                         cublasGemmEx(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n,
                                      (int)ne0, &one, a, dt, (int)ne0, c->act_h, dt, (int)ne0,
                                      &zero, out + r0, CUDA_R_32F, (int)ne1, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         "gemm");
        }
    }
    if (op->bias.data) {
        k_add_bias<<<(unsigned)((n * ne1 + 255) / 256), 256, 0, c->stream>>>(
            out, (const float *)op->bias.data, ne1, n * ne1);
        CUDA_CHECK(c, cudaGetLastError());
    }
}
