/*
 * engine/sampler.h — pick the next token of one sequence from its logits.
 *
 * One realm_sampler_t per sequence holds that sequence's sampling settings,
 * its random stream (seeded: the same seed, logits and settings give the same
 * tokens on every run and machine) and the token counts the penalties need.
 * Each step, realm_sampler_sample turns a row of logits into a token id in
 * this order (the order vLLM and HF transformers use, so OpenAI-style request
 * parameters mean what clients expect):
 *   1. external control (optional, per step): tokens outside `allowed` are
 *      removed; a sparse bias is added (the hook for WASM controllers);
 *   2. logit_bias of the request (id → added bias, OpenAI semantics);
 *   3. repetition penalty (CTRL/HF: a seen token's logit is divided by the
 *      penalty when positive, multiplied when negative) over prompt and
 *      generated tokens; then OpenAI's
 *      logit -= frequency_penalty * count + presence_penalty * (count > 0)
 *      with count = times generated so far (the prompt does not count);
 *   4. temperature 0: the arg-max (ties: the lowest id) — steps 5-7 skipped;
 *   5. softmax of logit / temperature;
 *   6. truncation: top-k (the k most probable; ties: lower ids first), then
 *      top-p over the renormalised top-k set (the smallest prefix, most
 *      probable first, whose probability reaches top_p), then min-p (drop
 *      tokens below min_p × the top probability); at least one token stays;
 *   7. one draw from what is left, renormalised.
 * Tokens whose logit is NaN or -inf are never picked. When nothing is left
 * (the mask allows no token) sampling fails with REALM_E_INVALID.
 *
 * The caller tells the sampler what the sequence contains: the prompt with
 * realm_sampler_accept_prompt (repetition penalty only) and every token it
 * appends with realm_sampler_accept (all penalties). Sampling does not accept
 * by itself, so a controller may still replace the token.
 *
 * Memory: all scratch (O(n_vocab)) is allocated by realm_sampler_init; sample,
 * accept and reset never allocate. The caller's logits are only read.
 * Threads: a sampler is one sequence's state; different samplers may run on
 * different threads at once.
 * Errors: REALM_E_INVALID / REALM_E_RANGE for bad parameters (named in the
 * message), REALM_E_NOMEM from init.
 */
#ifndef REALM_ENGINE_SAMPLER_H
#define REALM_ENGINE_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

/* OpenAI's limit on logit_bias entries per request; the sampler keeps a copy. */
#define REALM_SAMPLER_MAX_LOGIT_BIAS 300

typedef struct realm_logit_bias {
    int32_t id;
    float bias; /* added to the logit; -INFINITY bans the token */
} realm_logit_bias;

typedef struct realm_sampler_params {
    float temperature;       /* 0: greedy; > 0: softmax temperature */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* (0, 1]; 1: off */
    float min_p;             /* [0, 1]; 0: off */
    float repeat_penalty;    /* > 0; 1: off */
    float presence_penalty;  /* OpenAI, usually [-2, 2]; 0: off */
    float frequency_penalty; /* OpenAI, usually [-2, 2]; 0: off */
    uint64_t seed;
    const realm_logit_bias *logit_bias; /* copied at init/reset */
    int32_t n_logit_bias;               /* <= REALM_SAMPLER_MAX_LOGIT_BIAS */
} realm_sampler_params;

/* Per-step control from outside the sampler (a WASM controller), valid for
 * one realm_sampler_sample call. Any field may be NULL / 0. */
typedef struct realm_sampler_ctl {
    const uint32_t *allowed;      /* bitmask, (n_vocab + 31) / 32 words: bit id % 32 of
                                     word id / 32 set = token id may be picked */
    const realm_logit_bias *bias; /* (n_bias) added after the mask */
    int32_t n_bias;
} realm_sampler_ctl;

typedef struct realm_sampler realm_sampler_t;

/* Settings that change nothing: temperature 1, top_p 1, repeat_penalty 1,
 * everything else off, seed 0. */
realm_sampler_params realm_sampler_params_default(void);

/* Check p against a vocabulary of n_vocab tokens without building anything. */
realm_status realm_sampler_params_check(const realm_sampler_params *p, int32_t n_vocab,
                                        realm_error *err);

realm_status realm_sampler_init(int32_t n_vocab, const realm_sampler_params *p,
                                realm_sampler_t **out, realm_error *err);
void realm_sampler_free(realm_sampler_t *s);

/* Start a new sequence with new settings: forgets every accepted token and
 * reseeds. Cost is proportional to the distinct tokens seen, not n_vocab. */
realm_status realm_sampler_reset(realm_sampler_t *s, const realm_sampler_params *p,
                                 realm_error *err);

/* Record prompt tokens (they count for the repetition penalty only). */
realm_status realm_sampler_accept_prompt(realm_sampler_t *s, const int32_t *ids, int32_t n,
                                         realm_error *err);
/* Record a token appended to the sequence (counts for every penalty). */
realm_status realm_sampler_accept(realm_sampler_t *s, int32_t id, realm_error *err);

/* Pick the next token from logits (n_vocab). ctl may be NULL. */
realm_status realm_sampler_sample(realm_sampler_t *s, const float *logits,
                                  const realm_sampler_ctl *ctl, int32_t *out_id, realm_error *err);

typedef struct realm_sampler_cand {
    int32_t id;
    float p; /* probability after renormalisation over the set */
} realm_sampler_cand;

/* The set the last sample drew from, valid until the next call on s: *n
 * tokens and their renormalised probabilities, most probable first (ties:
 * lower id first) when truncation (step 6) was asked for, in id order
 * otherwise (every token with non-zero probability). Greedy: the arg-max
 * with probability 1. The division into probabilities happens here, on the
 * first call after a sample (a draw needs only the weights), so this writes
 * to s. */
const realm_sampler_cand *realm_sampler_last_set(realm_sampler_t *s, int32_t *n);

/* Times id was accepted as generated (0 for out-of-range ids). */
int32_t realm_sampler_count(const realm_sampler_t *s, int32_t id);

#endif
