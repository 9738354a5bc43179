// sampler.c - per-request sampling; see sampler.h for the contract and order.
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

// vLLM raises 0 < temperature < 0.01 to 0.01 ("may cause numerical errors").
#define SAMPLING_MIN_TEMP 0.01f

// Mass within this fraction of the total counts as reaching top_p: float32
// logits carry ~1e-7 relative error, so a set whose mass is exactly top_p in
// real arithmetic must not grow by one token because of rounding noise.
#define TOP_P_TOL 1e-6

// top-p finds its cut-off with a histogram of the mass over z = (l - max) / T
// in [-TOP_P_Z_SPAN, 0] (anything lower lands in the last bucket), then sorts
// only the tokens of the bucket where the cumulative mass crosses top_p: a
// bucket is 1/64 of a nat wide, tens to hundreds of tokens even on a flat
// 152k-token distribution, where sorting everything would cost ~10 ms.
#define TOP_P_BUCKETS 4096
#define TOP_P_Z_SPAN 64.0

// --- rng: xoshiro256** seeded through splitmix64 -------------------------------

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

// Uniform double in [0, 1) with 53 random bits.
static double rng_uniform(uint64_t s[4]) {
    return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53;
}

// A seed for requests without one: the OS's entropy, else the clock mixed with
// a process-wide counter so that two requests never share a stream.
static uint64_t os_seed(void) {
    static _Atomic uint64_t counter;
    uint64_t x;
    if (getrandom(&x, sizeof x, 0) == (ssize_t)sizeof x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return x ^ (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ull);
}

// --- seen-token map: open addressing, linear probing, power-of-two capacity -----

typedef struct {
    int32_t token;      // -1 = empty slot
    uint32_t out_count; // times generated (0: seen in the prompt only)
    float raw;          // this step's logit before penalties (for the raw logprob)
} seen_entry;

typedef struct {
    seen_entry *slots; // [cap]
    uint32_t cap;      // power of two, or 0 before the first insert
    uint32_t len;
} seen_map;

static uint32_t seen_hash(int32_t token, uint32_t cap) {
    return ((uint32_t)token * 2654435769u) & (cap - 1);
}

static seen_entry *seen_find(const seen_map *m, int32_t token) {
    if (!m->cap) return NULL;
    for (uint32_t i = seen_hash(token, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].token == token) return &m->slots[i];
        if (m->slots[i].token < 0) return NULL;
    }
}

// Returns the entry of token, inserting a zeroed one; NULL on allocation failure.
static seen_entry *seen_get(seen_map *m, int32_t token, char *err) {
    seen_entry *e = seen_find(m, token);
    if (e) return e;
    if (2 * (m->len + 1) > m->cap) { // keep the load at or below 1/2
        uint32_t cap = m->cap ? 2 * m->cap : 64;
        seen_entry *slots = llm_malloc(cap * sizeof *slots, err);
        if (!slots) return NULL;
        for (uint32_t i = 0; i < cap; i++) slots[i].token = -1;
        for (uint32_t i = 0; i < m->cap; i++) {
            if (m->slots[i].token < 0) continue;
            uint32_t j = seen_hash(m->slots[i].token, cap);
            while (slots[j].token >= 0) j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    uint32_t i = seen_hash(token, m->cap);
    while (m->slots[i].token >= 0) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (seen_entry){.token = token};
    m->len++;
    return &m->slots[i];
}

// --- params ------------------------------------------------------------------

sampling_params sampling_params_default(void) {
    return (sampling_params){
        .temperature = 1.0f,
        .top_p = 1.0f,
        .repetition_penalty = 1.0f,
        .max_tokens = 16,
        .logprobs = -1,
    };
}

int sampling_params_validate(const sampling_params *p, int vocab_size, char *err) {
    if (vocab_size < 1) return llm_errf(err, "vocab size must be positive, got %d", vocab_size);
    if (!(p->temperature >= 0 && p->temperature <= 2)) // NaN fails too
        return llm_errf(err, "temperature must be in [0, 2], got %g", p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return llm_errf(err, "top_p must be in (0, 1], got %g", p->top_p);
    if (p->top_k < -1)
        return llm_errf(err, "top_k must be -1 or 0 (disabled), or at least 1, got %d", p->top_k);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return llm_errf(err, "min_p must be in [0, 1], got %g", p->min_p);
    if (!(p->repetition_penalty > 0 && isfinite(p->repetition_penalty)))
        return llm_errf(err, "repetition_penalty must be a finite number greater than zero, got %g",
                        p->repetition_penalty);
    if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
        return llm_errf(err, "presence_penalty must be in [-2, 2], got %g", p->presence_penalty);
    if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        return llm_errf(err, "frequency_penalty must be in [-2, 2], got %g", p->frequency_penalty);
    if (p->max_tokens < 1)
        return llm_errf(err, "max_tokens must be at least 1, got %d", p->max_tokens);
    if (p->min_tokens < 0 || p->min_tokens > p->max_tokens)
        return llm_errf(err, "min_tokens must be in [0, max_tokens=%d], got %d", p->max_tokens,
                        p->min_tokens);
    if (p->logprobs < -1 || p->logprobs > SAMPLING_MAX_LOGPROBS)
        return llm_errf(err, "logprobs must be in [0, %d] (or -1 for none), got %d",
                        SAMPLING_MAX_LOGPROBS, p->logprobs);
    if (p->n_stop_token_ids < 0 || p->n_stop_token_ids > SAMPLING_MAX_STOP_IDS)
        return llm_errf(err, "at most %d stop_token_ids, got %d", SAMPLING_MAX_STOP_IDS,
                        p->n_stop_token_ids);
    for (int i = 0; i < p->n_stop_token_ids; i++)
        if (p->stop_token_ids[i] < 0 || p->stop_token_ids[i] >= vocab_size)
            return llm_errf(err, "stop_token_ids[%d] = %d is outside the vocabulary [0, %d)", i,
                            p->stop_token_ids[i], vocab_size);
    if (p->n_stop < 0 || p->n_stop > SAMPLING_MAX_STOP)
        return llm_errf(err, "at most %d stop strings, got %d", SAMPLING_MAX_STOP, p->n_stop);
    for (int i = 0; i < p->n_stop; i++) {
        size_t n = strnlen(p->stop[i], SAMPLING_MAX_STOP_LEN + 1);
        if (n == 0) return llm_errf(err, "stop cannot contain an empty string");
        if (n > SAMPLING_MAX_STOP_LEN)
            return llm_errf(err, "stop string %d is longer than %d bytes", i,
                            SAMPLING_MAX_STOP_LEN);
    }
    return 0;
}

const char *sampler_finish_name(sampler_finish f) {
    switch (f) {
    case SAMPLER_FINISH_STOP:
        return "stop";
    case SAMPLER_FINISH_LENGTH:
        return "length";
    default:
        return NULL;
    }
}

// --- sequence state ----------------------------------------------------------

typedef struct {
    float logit;
    int id;
} cand;

struct sampler_seq {
    sampling_params p;
    int vocab;
    int eos[SAMPLING_MAX_EOS];
    int n_eos;
    int penalties; // any penalty on: the seen map is kept
    uint64_t rng[4];
    int n_generated;
    seen_map seen; // prompt and output tokens, only when penalties
    float *heap;   // [heap_cap] top-k selection scratch
    int heap_cap;
    cand *cand; // [cand_cap] top-p candidates scratch
    int cand_cap;
};

sampler_seq *sampler_seq_create(const sampling_params *p, int vocab_size, const int *eos_ids,
                                int n_eos, const int *prompt, int n_prompt, char *err) {
    if (sampling_params_validate(p, vocab_size, err)) return NULL;
    if (n_eos < 0 || n_eos > SAMPLING_MAX_EOS) {
        llm_errf(err, "at most %d eos ids, got %d", SAMPLING_MAX_EOS, n_eos);
        return NULL;
    }
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] < 0 || eos_ids[i] >= vocab_size) {
            llm_errf(err, "eos id %d is outside the vocabulary [0, %d)", eos_ids[i], vocab_size);
            return NULL;
        }
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab_size) {
            llm_errf(err, "prompt token %d at position %d is outside the vocabulary [0, %d)",
                     prompt[i], i, vocab_size);
            return NULL;
        }
    sampler_seq *s = llm_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->p = *p;
    s->vocab = vocab_size;
    if (n_eos) memcpy(s->eos, eos_ids, (size_t)n_eos * sizeof *eos_ids);
    s->n_eos = n_eos;
    s->penalties =
        p->repetition_penalty != 1 || p->presence_penalty != 0 || p->frequency_penalty != 0;
    uint64_t x = p->has_seed ? p->seed : os_seed();
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    if (s->penalties)
        for (int i = 0; i < n_prompt; i++) {
            if (!seen_get(&s->seen, prompt[i], err)) {
                sampler_seq_destroy(s);
                return NULL;
            }
        }
    return s;
}

void sampler_seq_destroy(sampler_seq *s) {
    if (!s) return;
    free(s->seen.slots);
    free(s->heap);
    free(s->cand);
    free(s);
}

int sampler_accept(sampler_seq *s, int token, char *err) {
    if (token < 0 || token >= s->vocab)
        return llm_errf(err, "token %d is outside the vocabulary [0, %d)", token, s->vocab);
    if (s->penalties) {
        seen_entry *e = seen_get(&s->seen, token, err);
        if (!e) return -1;
        e->out_count++;
    }
    s->n_generated++;
    return 0;
}

int sampler_is_stop_token(const sampler_seq *s, int token) {
    if (!s->p.ignore_eos)
        for (int i = 0; i < s->n_eos; i++)
            if (s->eos[i] == token) return 1;
    for (int i = 0; i < s->p.n_stop_token_ids; i++)
        if (s->p.stop_token_ids[i] == token) return 1;
    return 0;
}

sampler_finish sampler_check_finish(const sampler_seq *s, int token) {
    if (s->n_generated < s->p.min_tokens) return SAMPLER_FINISH_NONE;
    if (sampler_is_stop_token(s, token)) return SAMPLER_FINISH_STOP;
    if (s->n_generated >= s->p.max_tokens) return SAMPLER_FINISH_LENGTH;
    return SAMPLER_FINISH_NONE;
}

int sampler_n_generated(const sampler_seq *s) {
    return s->n_generated;
}

int sampler_next_is_argmax(const sampler_seq *s) {
    return s->p.temperature == 0 && s->p.logprobs < 0 && !s->penalties &&
           s->n_generated >= s->p.min_tokens;
}

// --- sampling steps ----------------------------------------------------------

// Replaces NaN by -inf and +inf by FLT_MAX (so that differences stay finite);
// returns the index of the largest logit, the lowest on ties.
static int sanitize_argmax(float *x, int n) {
    int best = 0;
    float top = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v))
            x[i] = v = -INFINITY;
        else if (v == INFINITY)
            x[i] = v = FLT_MAX;
        if (v > top) {
            top = v;
            best = i;
        }
    }
    return best;
}

static int argmax(const float *x, int n) {
    int best = 0;
    float top = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > top) {
            top = x[i];
            best = i;
        }
    return best;
}

// Raw logprobs: log-sum-exp in double, index order, and the top n_top by
// (logit desc, id asc). Returns the log-sum-exp.
static double raw_logprobs(const float *x, int n, float max, sample_result *out, int n_top) {
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        sum += exp((double)x[i] - max);
        if (k == n_top && (k == 0 || !(x[i] > out->top[k - 1].logprob))) continue;
        int j = k < n_top ? k++ : k - 1; // insert after equal values: ids ascend
        while (j > 0 && x[i] > out->top[j - 1].logprob) {
            out->top[j] = out->top[j - 1];
            j--;
        }
        out->top[j] = (token_logprob){i, x[i]};
    }
    double lse = max + log(sum);
    for (int j = 0; j < k; j++) out->top[j].logprob = (float)(out->top[j].logprob - lse);
    out->n_top = k;
    return lse;
}

// Sets every eos and stop token id to -inf. Returns the number banned.
static int ban_stop_tokens(const sampler_seq *s, float *logits) {
    for (int i = 0; i < s->n_eos; i++) logits[s->eos[i]] = -INFINITY;
    for (int i = 0; i < s->p.n_stop_token_ids; i++) logits[s->p.stop_token_ids[i]] = -INFINITY;
    return s->n_eos + s->p.n_stop_token_ids;
}

// vLLM's apply_penalties, token by token over the seen map:
//   repetition (prompt or output): l > 0 ? l / rp : l * rp
//   frequency, then presence (output): l -= f * count; l -= p * (count > 0)
// Each entry keeps the logit it had before, for the raw logprob.
static void apply_penalties(sampler_seq *s, float *logits) {
    const float rp = s->p.repetition_penalty, fp = s->p.frequency_penalty,
                pp = s->p.presence_penalty;
    for (uint32_t i = 0; i < s->seen.cap; i++) {
        seen_entry *e = &s->seen.slots[i];
        if (e->token < 0) continue;
        float l = logits[e->token];
        e->raw = l;
        if (rp != 1) l = l > 0 ? l / rp : l * rp;
        if (e->out_count) {
            l -= fp * (float)e->out_count;
            l -= pp;
        }
        logits[e->token] = l;
    }
}

// The k-th largest finite logit (counting repeats), or -inf when fewer than k
// are finite: top-k keeps every token at or above it, ties included, as
// vLLM's `logits < kth_value` mask does. A min-heap of the k largest so far.
static int kth_largest(sampler_seq *s, const float *x, int n, int k, float *kth, char *err) {
    if (k > s->heap_cap) {
        float *h = llm_malloc((size_t)k * sizeof *h, err);
        if (!h) return -1;
        free(s->heap);
        s->heap = h;
        s->heap_cap = k;
    }
    float *h = s->heap;
    int len = 0;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (v == -INFINITY || (len == k && v <= h[0])) continue;
        int j;
        if (len < k) { // sift up
            for (j = len++; j > 0 && h[(j - 1) / 2] > v; j = (j - 1) / 2) h[j] = h[(j - 1) / 2];
        } else { // replace the root, sift down
            for (j = 0;;) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && h[c + 1] < h[c]) c++;
                if (h[c] >= v) break;
                h[j] = h[c];
                j = c;
            }
        }
        h[j] = v;
    }
    *kth = len < k ? -INFINITY : h[0];
    return 0;
}

// The cut-offs of one random step, all as tests on the logit l.
typedef struct {
    double max;       // largest logit (finite)
    double t;         // temperature
    double log_min_p; // min-p keeps z >= log(min_p), i.e. p / p_max >= min_p
    float lk;         // top-k keeps l >= lk
} cutoffs;

// z = (l - max) / t, the log of the unnormalized probability, or NAN when
// min-p or top-k drops l, or l is -inf (banned).
static double kept_z(const cutoffs *c, float l) {
    if (l < c->lk || l == -INFINITY) return NAN;
    double z = (l - c->max) / c->t;
    return z >= c->log_min_p ? z : NAN;
}

static int z_bucket(double z) {
    double b = -z * (TOP_P_BUCKETS / TOP_P_Z_SPAN);
    return b < TOP_P_BUCKETS - 1 ? (int)b : TOP_P_BUCKETS - 1;
}

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

// Sorted (logit desc, id asc) into s->cand: the kept tokens whose z falls in
// bucket b. Returns their number, -1 on allocation failure.
static int gather_bucket(sampler_seq *s, const cutoffs *c, const float *x, int n, int b,
                         char *err) {
    int nc = 0;
    for (int i = 0; i < n; i++) {
        double z = kept_z(c, x[i]);
        if (isnan(z) || z_bucket(z) != b) continue;
        if (nc == s->cand_cap) {
            int cap = s->cand_cap ? 2 * s->cand_cap : 256;
            cand *p = realloc(s->cand, (size_t)cap * sizeof *p);
            if (!p) return llm_errf(err, "out of memory for %d sampling candidates", cap);
            s->cand = p;
            s->cand_cap = cap;
        }
        s->cand[nc++] = (cand){x[i], i};
    }
    qsort(s->cand, (size_t)nc, sizeof *s->cand, cand_cmp);
    return nc;
}

// top-p on the kept tokens, then one draw. A token stays while the mass of
// the tokens above it is below top_p (vLLM masks ascending cumsum <= 1 - top_p
// and always keeps the top token): every token of the buckets above the
// crossing one, and a sorted prefix of that one. The draw walks the higher
// buckets in id order, then that prefix.
static int sample_top_p(sampler_seq *s, const cutoffs *c, const float *x, int n, int *token,
                        char *err) {
    double mass[TOP_P_BUCKETS] = {0}, total = 0;
    for (int i = 0; i < n; i++) {
        double z = kept_z(c, x[i]);
        if (isnan(z)) continue;
        double w = exp(z);
        mass[z_bucket(z)] += w;
        total += w;
    }
    const double need = (s->p.top_p - TOP_P_TOL) * total;
    double above = 0; // mass of the buckets before the crossing one
    int b = 0;
    while (b < TOP_P_BUCKETS - 1 && above + mass[b] < need) above += mass[b++];
    int nc = gather_bucket(s, c, x, n, b, err);
    if (nc < 0) return -1;
    int keep = 0;
    double kept = above;
    while (keep < nc && (keep == 0 || kept < need)) kept += exp(kept_z(c, s->cand[keep++].logit));

    double target = rng_uniform(s->rng) * kept, acc = 0;
    for (int i = 0; i < n && b > 0; i++) {
        double z = kept_z(c, x[i]);
        double w = isnan(z) || z_bucket(z) >= b ? 0 : exp(z);
        if (w == 0) continue;
        acc += w;
        *token = i;
        if (acc > target) return 0;
    }
    for (int j = 0; j < keep; j++) {
        acc += exp(kept_z(c, s->cand[j].logit));
        *token = s->cand[j].id; // the last kept token if rounding leaves acc <= target
        if (acc > target) break;
    }
    return 0;
}

// Temperature, min-p, top-k, top-p and one draw, on logits whose maximum is
// max (finite). Sums run in a fixed order, so the draw depends only on the
// logits and the RNG.
static int sample_random(sampler_seq *s, const float *x, int n, float max, int *token, char *err) {
    cutoffs c = {max, fmax(s->p.temperature, SAMPLING_MIN_TEMP),
                 s->p.min_p > 0 ? log(s->p.min_p) : -INFINITY, -INFINITY};
    if (s->p.top_k > 0 && s->p.top_k < n && kth_largest(s, x, n, s->p.top_k, &c.lk, err)) return -1;
    if (s->p.top_p < 1) return sample_top_p(s, &c, x, n, token, err);

    double total = 0; // no order needed: sum and walk the ids
    for (int i = 0; i < n; i++) {
        double z = kept_z(&c, x[i]);
        if (!isnan(z)) total += exp(z);
    }
    double target = rng_uniform(s->rng) * total, acc = 0;
    for (int i = 0; i < n; i++) {
        double z = kept_z(&c, x[i]), w = isnan(z) ? 0 : exp(z);
        if (w == 0) continue;
        acc += w;
        *token = i; // the last kept token if rounding leaves acc <= target
        if (acc > target) break;
    }
    return 0;
}

int sampler_sample(sampler_seq *s, float *logits, int vocab, sample_result *out, char *err) {
    if (vocab != s->vocab)
        return llm_errf(err, "logits have %d entries, the request's vocabulary %d", vocab,
                        s->vocab);
    int best = sanitize_argmax(logits, vocab);
    if (logits[best] == -INFINITY) return llm_errf(err, "every logit is -inf or NaN");

    out->logprob = 0;
    out->n_top = 0;
    double lse = 0;
    if (s->p.logprobs >= 0) lse = raw_logprobs(logits, vocab, logits[best], out, s->p.logprobs);

    int changed = 0;
    if (s->n_generated < s->p.min_tokens) changed += ban_stop_tokens(s, logits);
    if (s->penalties && s->seen.len) {
        apply_penalties(s, logits);
        changed = 1;
    }
    if (changed) best = argmax(logits, vocab);
    if (logits[best] == -INFINITY)
        return llm_errf(err,
                        "no token is left with a finite logit after min_tokens bans and penalties");

    int token = best;
    if (s->p.temperature > 0 && sample_random(s, logits, vocab, logits[best], &token, err))
        return -1;
    out->token = token;
    if (s->p.logprobs >= 0) {
        const seen_entry *e = s->penalties ? seen_find(&s->seen, token) : NULL;
        float raw = e ? e->raw : logits[token]; // a banned token is never chosen
        out->logprob = (float)(raw - lse);
    }
    return 0;
}
