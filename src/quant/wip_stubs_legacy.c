/* TEMPORARY during parallel development: deleted by the owner of the real kernels. */
#include "base/status.h"
#include "quant/ref.h"
void realm__f32_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"f32 not implemented"); }
void realm__f32_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"f32 not implemented"); }
float realm__f32_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"f32 not implemented"); return 0; }
void realm__f16_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"f16 not implemented"); }
void realm__f16_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"f16 not implemented"); }
float realm__f16_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"f16 not implemented"); return 0; }
void realm__bf16_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"bf16 not implemented"); }
void realm__bf16_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"bf16 not implemented"); }
float realm__bf16_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"bf16 not implemented"); return 0; }
void realm__q4_0_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_0 not implemented"); }
void realm__q4_0_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_0 not implemented"); }
float realm__q4_0_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q4_0 not implemented"); return 0; }
void realm__q4_1_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_1 not implemented"); }
void realm__q4_1_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_1 not implemented"); }
float realm__q4_1_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q4_1 not implemented"); return 0; }
void realm__q5_0_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_0 not implemented"); }
void realm__q5_0_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_0 not implemented"); }
float realm__q5_0_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q5_0 not implemented"); return 0; }
void realm__q5_1_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_1 not implemented"); }
void realm__q5_1_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_1 not implemented"); }
float realm__q5_1_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q5_1 not implemented"); return 0; }
void realm__q8_0_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_0 not implemented"); }
void realm__q8_0_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_0 not implemented"); }
float realm__q8_0_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q8_0 not implemented"); return 0; }
void realm__q8_1_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_1 not implemented"); }
void realm__q8_1_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_1 not implemented"); }
float realm__q8_1_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q8_1 not implemented"); return 0; }
void realm__iq4_nl_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"iq4_nl not implemented"); }
void realm__iq4_nl_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"iq4_nl not implemented"); }
float realm__iq4_nl_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"iq4_nl not implemented"); return 0; }
void realm__iq4_xs_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"iq4_xs not implemented"); }
void realm__iq4_xs_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"iq4_xs not implemented"); }
float realm__iq4_xs_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"iq4_xs not implemented"); return 0; }
