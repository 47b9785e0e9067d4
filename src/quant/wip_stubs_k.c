/* TEMPORARY during parallel development: deleted by the owner of the real kernels. */
#include "base/status.h"
#include "quant/ref.h"
void realm__q2_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q2_k not implemented"); }
void realm__q2_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q2_k not implemented"); }
float realm__q2_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q2_k not implemented"); return 0; }
void realm__q3_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q3_k not implemented"); }
void realm__q3_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q3_k not implemented"); }
float realm__q3_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q3_k not implemented"); return 0; }
void realm__q4_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_k not implemented"); }
void realm__q4_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q4_k not implemented"); }
float realm__q4_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q4_k not implemented"); return 0; }
void realm__q5_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_k not implemented"); }
void realm__q5_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q5_k not implemented"); }
float realm__q5_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q5_k not implemented"); return 0; }
void realm__q6_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q6_k not implemented"); }
void realm__q6_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q6_k not implemented"); }
float realm__q6_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q6_k not implemented"); return 0; }
void realm__q8_k_to_float(const void *s, float *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_k not implemented"); }
void realm__q8_k_from_float(const float *s, void *d, int64_t n) { (void)s; (void)d; (void)n; REALM_ASSERT(!"q8_k not implemented"); }
float realm__q8_k_vec_dot(int64_t n, const void *w, const void *a) { (void)w; (void)a; (void)n; REALM_ASSERT(!"q8_k not implemented"); return 0; }
