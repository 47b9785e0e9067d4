/* engine/sampler.c — logits → token id for one sequence (see sampler.h). */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/rowmath.h"

struct realm_sampler {
    int32_t n_vocab;
    realm_sampler_params p; /* p.logit_bias points at bias below */
    realm_logit_bias bias[REALM_SAMPLER_MAX_LOGIT_BIAS];
    uint64_t rng[4];          /* xoshiro256** state */
    float *work;              /* (n_vocab) logits after control, bias and penalties */
    realm_sampler_cand *cand; /* (n_vocab) candidates; .p holds weights until the draw */
    int32_t n_set;            /* the last draw's set: cand[set_at .. set_at + n_set) */
    int32_t set_at;
    double set_total;    /* its weights' sum: last_set divides by it on first use */
    int32_t *count;      /* (n_vocab) times generated */
    uint32_t *in_prompt; /* (n_vocab + 31) / 32 bits */
    int32_t *touched;    /* (n_touched) ids with count > 0 or in the prompt */
    int32_t n_touched;
};

realm_sampler_params realm_sampler_params_default(void)
{
    return (realm_sampler_params){.temperature = 1.0f, .top_p = 1.0f, .repeat_penalty = 1.0f};
}

/* splitmix64: spreads any seed (0 included) over the 256-bit xoshiro state,
 * which must not be all zero. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna): fast, 2^256 period, identical everywhere. */
static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static realm_status check_bias(const realm_logit_bias *b, int32_t n, int32_t n_vocab,
                               const char *what, realm_error *err)
{
    if (n < 0 || (n > 0 && !b)) return realm_error_set(err, REALM_E_INVALID, "%s: bad list", what);
    for (int32_t i = 0; i < n; i++) {
        if (b[i].id < 0 || b[i].id >= n_vocab)
            return realm_error_set(err, REALM_E_RANGE, "%s: token id %d outside vocabulary [0, %d)",
                                   what, b[i].id, n_vocab);
        /* +inf or NaN would turn the softmax into NaN; -inf is a ban. */
        if (isnan(b[i].bias) || b[i].bias == INFINITY)
            return realm_error_set(err, REALM_E_INVALID, "%s: bias of token %d is not finite", what,
                                   b[i].id);
    }
    return REALM_OK;
}

realm_status realm_sampler_params_check(const realm_sampler_params *p, int32_t n_vocab,
                                        realm_error *err)
{
    if (!p || n_vocab <= 0) return realm_error_set(err, REALM_E_INVALID, "sampler: no parameters");
    if (!(p->temperature >= 0.0f && p->temperature <= 1e4f))
        return realm_error_set(err, REALM_E_RANGE, "temperature %g: must be in [0, 1e4]",
                               (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return realm_error_set(err, REALM_E_RANGE, "top_p %g: must be in (0, 1]", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return realm_error_set(err, REALM_E_RANGE, "min_p %g: must be in [0, 1]", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f && isfinite(p->repeat_penalty)))
        return realm_error_set(err, REALM_E_RANGE, "repeat_penalty %g: must be > 0",
                               (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return realm_error_set(err, REALM_E_RANGE, "presence/frequency penalty must be finite");
    if (p->n_logit_bias > REALM_SAMPLER_MAX_LOGIT_BIAS)
        return realm_error_set(err, REALM_E_RANGE, "logit_bias: %d entries, at most %d",
                               p->n_logit_bias, REALM_SAMPLER_MAX_LOGIT_BIAS);
    return check_bias(p->logit_bias, p->n_logit_bias, n_vocab, "logit_bias", err);
}

realm_status realm_sampler_init(int32_t n_vocab, const realm_sampler_params *p,
                                realm_sampler_t **out, realm_error *err)
{
    *out = NULL;
    realm_status st = realm_sampler_params_check(p, n_vocab, err);
    if (st) return st;
    realm_sampler_t *s = realm_calloc(1, sizeof *s);
    if (!s) return realm_error_set(err, REALM_E_NOMEM, "sampler: out of memory");
    s->n_vocab = n_vocab;
    s->work = realm_calloc((size_t)n_vocab, sizeof *s->work);
    s->cand = realm_calloc((size_t)n_vocab, sizeof *s->cand);
    s->count = realm_calloc((size_t)n_vocab, sizeof *s->count);
    s->in_prompt = realm_calloc(((size_t)n_vocab + 31) / 32, sizeof *s->in_prompt);
    s->touched = realm_calloc((size_t)n_vocab, sizeof *s->touched);
    if (!s->work || !s->cand || !s->count || !s->in_prompt || !s->touched) {
        realm_sampler_free(s);
        return realm_error_set(err, REALM_E_NOMEM, "sampler: out of memory (%d tokens)", n_vocab);
    }
    st = realm_sampler_reset(s, p, err);
    if (st) {
        realm_sampler_free(s);
        return st;
    }
    *out = s;
    return REALM_OK;
}

void realm_sampler_free(realm_sampler_t *s)
{
    if (!s) return;
    realm_free(s->work);
    realm_free(s->cand);
    realm_free(s->count);
    realm_free(s->in_prompt);
    realm_free(s->touched);
    realm_free(s);
}

realm_status realm_sampler_reset(realm_sampler_t *s, const realm_sampler_params *p,
                                 realm_error *err)
{
    realm_status st = realm_sampler_params_check(p, s->n_vocab, err);
    if (st) return st;
    s->p = *p;
    if (p->n_logit_bias > 0)
        memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
    s->p.logit_bias = s->bias;
    for (int32_t i = 0; i < s->n_touched; i++) {
        int32_t t = s->touched[i];
        s->count[t] = 0;
        s->in_prompt[t / 32] = 0;
    }
    s->n_touched = 0;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->n_set = 0;
    s->set_at = 0;
    return REALM_OK;
}

static bool prompt_has(const realm_sampler_t *s, int32_t id)
{
    return (s->in_prompt[id / 32] >> (id % 32)) & 1u;
}

static void touch(realm_sampler_t *s, int32_t id)
{
    if (s->count[id] == 0 && !prompt_has(s, id)) s->touched[s->n_touched++] = id;
}

realm_status realm_sampler_accept_prompt(realm_sampler_t *s, const int32_t *ids, int32_t n,
                                         realm_error *err)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->n_vocab)
            return realm_error_set(err, REALM_E_RANGE, "prompt token %d at %d outside [0, %d)",
                                   ids[i], i, s->n_vocab);
    for (int32_t i = 0; i < n; i++) {
        touch(s, ids[i]);
        s->in_prompt[ids[i] / 32] |= 1u << (ids[i] % 32);
    }
    return REALM_OK;
}

realm_status realm_sampler_accept(realm_sampler_t *s, int32_t id, realm_error *err)
{
    if (id < 0 || id >= s->n_vocab)
        return realm_error_set(err, REALM_E_RANGE, "token %d outside [0, %d)", id, s->n_vocab);
    touch(s, id);
    if (s->count[id] < INT32_MAX) s->count[id]++;
    return REALM_OK;
}

int32_t realm_sampler_count(const realm_sampler_t *s, int32_t id)
{
    return id >= 0 && id < s->n_vocab ? s->count[id] : 0;
}

const realm_sampler_cand *realm_sampler_last_set(realm_sampler_t *s, int32_t *n)
{
    realm_sampler_cand *set = s->cand + s->set_at;
    if (s->set_total > 0) { /* weights to probabilities, once: a draw itself needs no division */
        for (int32_t i = 0; i < s->n_set; i++)
            set[i].p = (float)(set[i].p / s->set_total);
        s->set_total = 0;
    }
    *n = s->n_set;
    return set;
}

/* Steps 1-3 of sampler.h: s->work = the logits every later step sees. */
static realm_status shape_logits(realm_sampler_t *s, const float *logits,
                                 const realm_sampler_ctl *ctl, realm_error *err)
{
    float *w = s->work;
    const int32_t n = s->n_vocab;
    /* NaN never wins a comparison, so it would silently vanish or poison a
     * sum: treat it as "not allowed"; +inf would make the softmax NaN. */
    for (int32_t i = 0; i < n; i++) { /* selects, not calls: the loop vectorizes */
        const float v = logits[i];
        w[i] = v != v ? -INFINITY : v > FLT_MAX ? FLT_MAX : v;
    }
    if (ctl && ctl->allowed)
        for (int32_t i = 0; i < n; i++)
            if (!((ctl->allowed[i / 32] >> (i % 32)) & 1u)) w[i] = -INFINITY;
    if (ctl && ctl->n_bias) {
        realm_status st = check_bias(ctl->bias, ctl->n_bias, n, "controller bias", err);
        if (st) return st;
        for (int32_t i = 0; i < ctl->n_bias; i++)
            w[ctl->bias[i].id] += ctl->bias[i].bias;
    }
    for (int32_t i = 0; i < s->p.n_logit_bias; i++)
        w[s->bias[i].id] += s->bias[i].bias;
    const float rep = s->p.repeat_penalty, freq = s->p.frequency_penalty,
                pres = s->p.presence_penalty;
    if (rep == 1.0f && freq == 0.0f && pres == 0.0f) return REALM_OK;
    for (int32_t i = 0; i < s->n_touched; i++) {
        int32_t t = s->touched[i];
        if (w[t] == -INFINITY) continue;
        if (rep != 1.0f) w[t] = w[t] > 0.0f ? w[t] / rep : w[t] * rep;
        int32_t c = s->count[t];
        if (c > 0) w[t] -= freq * (float)c + pres;
    }
    return REALM_OK;
}

/* Candidate order: more probable first, then lower id — a strict total order,
 * so truncation and the draw are deterministic. */
static bool before(realm_sampler_cand a, realm_sampler_cand b)
{
    return a.p > b.p || (a.p == b.p && a.id < b.id);
}

static void sift_down(realm_sampler_cand *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && before(h[l], h[top])) top = l;
        if (r < n && before(h[r], h[top])) top = r;
        if (top == i) return;
        realm_sampler_cand t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

/* Heap of m candidates in h[0..m); pop j moves the j-th best to h[m-1-j].
 * Truncation pops only as many as it keeps, so it costs O(n + kept·log n)
 * instead of a full sort of the vocabulary. */
static void heap_pop(realm_sampler_cand *h, int32_t heap_n)
{
    realm_sampler_cand t = h[0];
    h[0] = h[heap_n - 1];
    h[heap_n - 1] = t;
    sift_down(h, heap_n - 1, 0);
}

/* Steps 6-7 over cand[0..m) holding softmax weights (the largest is 1). */
static int32_t truncate(realm_sampler_t *s, int32_t m, double total)
{
    realm_sampler_cand *c = s->cand;
    for (int32_t i = m / 2 - 1; i >= 0; i--)
        sift_down(c, m, i);
    int32_t popped = 0; /* the best `popped` are c[m-1], c[m-2], ... */
    int32_t k = s->p.top_k > 0 && s->p.top_k < m ? s->p.top_k : m;
    if (k < m) {
        total = 0.0;
        for (; popped < k; popped++) {
            heap_pop(c, m - popped);
            total += c[m - 1 - popped].p;
        }
    }
    /* top-p: smallest prefix reaching top_p of the (top-k) mass; min-p: a
     * threshold on the weight (top weight is 1); the first token always stays. */
    const double want = s->p.top_p < 1.0f ? (double)s->p.top_p * total : INFINITY;
    const float floor_p = s->p.min_p;
    double cum = 0.0;
    int32_t kept = 0;
    while (kept < k) {
        if (kept == popped) heap_pop(c, m - popped++);
        float w = c[m - 1 - kept].p;
        if (kept > 0 && w < floor_p) break;
        cum += w;
        kept++;
        if (cum >= want) break;
    }
    /* Reverse the kept tail into most-probable-first order at its place. */
    realm_sampler_cand *set = c + m - kept;
    for (int32_t i = 0, j = kept - 1; i < j; i++, j--) {
        realm_sampler_cand t = set[i];
        set[i] = set[j];
        set[j] = t;
    }
    s->set_at = m - kept;
    return kept;
}

realm_status realm_sampler_sample(realm_sampler_t *s, const float *logits,
                                  const realm_sampler_ctl *ctl, int32_t *out_id, realm_error *err)
{
    s->n_set = 0;
    s->set_at = 0;
    s->set_total = 0;
    realm_status st = shape_logits(s, logits, ctl, err);
    if (st) return st;
    const float *w = s->work;
    const int32_t n = s->n_vocab;
    int32_t best = realm_argmax_f32(w, n);
    if (best < 0)
        return realm_error_set(err, REALM_E_INVALID, "no token is allowed (all masked or banned)");
    if (s->p.temperature == 0.0f) {
        s->cand[0] = (realm_sampler_cand){best, 1.0f};
        s->n_set = 1;
        *out_id = best;
        return REALM_OK;
    }
    /* Softmax weights relative to the maximum (which gets weight 1), in
     * place (the shaped logits are not needed after this), then the tokens
     * with a weight: the first loop vectorizes, the second only copies. */
    const float inv_t = 1.0f / s->p.temperature, max = w[best];
    float *e = s->work;
    realm_exp_scaled_f32(e, n, max, inv_t);
    double total = 0.0;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!(e[i] > 0.0f)) continue; /* -inf or underflow: probability 0, never drawn */
        s->cand[m++] = (realm_sampler_cand){i, e[i]};
        total += e[i];
    }
    bool cut = s->p.top_k > 0 || s->p.top_p < 1.0f || s->p.min_p > 0.0f;
    int32_t kept = m;
    if (cut) {
        kept = truncate(s, m, total);
        total = 0.0;
        for (int32_t i = 0; i < kept; i++)
            total += s->cand[s->set_at + i].p;
    }
    realm_sampler_cand *set = s->cand + s->set_at;
    double u = rng_uniform(s->rng) * total, acc = 0.0;
    int32_t pick = kept - 1; /* rounding can leave u just above the last sum */
    for (int32_t i = 0; i < kept; i++) {
        acc += set[i].p;
        if (u < acc) {
            pick = i;
            break;
        }
    }
    *out_id = set[pick].id;
    s->n_set = kept;
    s->set_total = total;
    return REALM_OK;
}
