#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "sampler.h"
#include "util.h"

// Creates a sequence or fails the test (returns NULL).
static sampler_seq *seq_new(const sampling_params *p, int vocab, const int *eos, int n_eos,
                            const int *prompt, int n_prompt) {
    char err[LLM_ERR_LEN] = "";
    sampler_seq *s = sampler_seq_create(p, vocab, eos, n_eos, prompt, n_prompt, err);
    CHECK_MSG(s != NULL, "%s", err);
    return s;
}

// Samples (and accepts) draws times from the same logits; counts[vocab] gets
// how often each token came up.
static void draw_counts(const sampling_params *p, const float *logits, int vocab, int draws,
                        int *counts) {
    sampler_seq *s = seq_new(p, vocab, NULL, 0, NULL, 0);
    if (!s) return;
    float *x = malloc((size_t)vocab * sizeof *x);
    char err[LLM_ERR_LEN] = "";
    memset(counts, 0, (size_t)vocab * sizeof *counts);
    for (int i = 0; i < draws; i++) {
        memcpy(x, logits, (size_t)vocab * sizeof *x);
        sample_result r;
        if (sampler_sample(s, x, vocab, &r, err)) {
            CHECK_MSG(0, "%s", err);
            break;
        }
        counts[r.token]++;
    }
    free(x);
    sampler_seq_destroy(s);
}

// Draws many times and checks that exactly the tokens in keep[] (a 0/1 mask) come up.
static void check_kept(const sampling_params *p, const float *logits, int vocab, const int *keep) {
    int counts[16];
    draw_counts(p, logits, vocab, 4000, counts);
    for (int i = 0; i < vocab; i++)
        CHECK_MSG(keep[i] ? counts[i] > 0 : counts[i] == 0,
                  "token %d drawn %d times, expected %s (top_k %d top_p %g min_p %g t %g)", i,
                  counts[i], keep[i] ? "some" : "none", p->top_k, p->top_p, p->min_p,
                  p->temperature);
}

// probs 0.5, 0.25, 0.15, 0.1
static void quad_logits(float *x) {
    static const double pr[4] = {0.5, 0.25, 0.15, 0.1};
    for (int i = 0; i < 4; i++) x[i] = (float)log(pr[i]);
}

TEST(sampler_greedy_argmax_ties_lowest) {
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    float x[6] = {1, 3, NAN, 3, -INFINITY, 2};
    sampler_seq *s = seq_new(&p, 6, NULL, 0, NULL, 0);
    sample_result r;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(sampler_sample(s, x, 6, &r, err) == 0, "%s", err);
    CHECK_EQ(r.token, 1);
    CHECK(x[2] == -INFINITY); // NaN sanitized
    float y[3] = {-INFINITY, NAN, -INFINITY};
    CHECK(sampler_sample(s, y, 3, &r, err) == -1); // wrong vocab
    CHECK_CONTAINS(err, "vocabulary");
    float z[6] = {-INFINITY, NAN, -INFINITY, NAN, -INFINITY, -INFINITY};
    CHECK(sampler_sample(s, z, 6, &r, err) == -1);
    CHECK_CONTAINS(err, "-inf");
    sampler_seq_destroy(s);
}

TEST(sampler_seed_reproducible) {
    float logits[5] = {1.0f, 0.5f, 0.0f, -0.5f, -1.5f};
    sampling_params p = sampling_params_default();
    p.has_seed = 1;
    int seq[3][1000];
    uint64_t seeds[3] = {42, 42, 43};
    for (int k = 0; k < 3; k++) {
        p.seed = seeds[k];
        sampler_seq *s = seq_new(&p, 5, NULL, 0, NULL, 0);
        char err[LLM_ERR_LEN] = "";
        for (int i = 0; i < 1000; i++) {
            float x[5];
            memcpy(x, logits, sizeof x);
            sample_result r;
            CHECK(sampler_sample(s, x, 5, &r, err) == 0);
            seq[k][i] = r.token;
        }
        sampler_seq_destroy(s);
    }
    int same = 0, diff = 0;
    for (int i = 0; i < 1000; i++) {
        same += seq[0][i] == seq[1][i];
        diff += seq[0][i] != seq[2][i];
    }
    CHECK_EQ(same, 1000);
    CHECK(diff > 300);
}

// Two requests with the same seed give the same tokens whatever runs
// between their steps.
TEST(sampler_seed_independent_of_batch) {
    float logits[5] = {0.3f, 0.2f, 0.1f, 0.0f, -0.1f};
    sampling_params p = sampling_params_default();
    p.has_seed = 1;
    p.seed = 7;
    p.top_p = 0.9f;
    sampler_seq *a = seq_new(&p, 5, NULL, 0, NULL, 0), *b = seq_new(&p, 5, NULL, 0, NULL, 0);
    p.has_seed = 0;
    sampler_seq *other = seq_new(&p, 5, NULL, 0, NULL, 0);
    int ta[200], tb[200];
    char err[LLM_ERR_LEN] = "";
    for (int i = 0; i < 200; i++) {
        float x[5];
        sample_result r;
        memcpy(x, logits, sizeof x);
        CHECK(sampler_sample(a, x, 5, &r, err) == 0);
        ta[i] = r.token;
        for (int j = 0; j < i % 3; j++) {
            memcpy(x, logits, sizeof x);
            CHECK(sampler_sample(other, x, 5, &r, err) == 0);
        }
    }
    for (int i = 0; i < 200; i++) {
        float x[5];
        sample_result r;
        memcpy(x, logits, sizeof x);
        CHECK(sampler_sample(b, x, 5, &r, err) == 0);
        tb[i] = r.token;
    }
    CHECK(memcmp(ta, tb, sizeof ta) == 0);
    sampler_seq_destroy(a);
    sampler_seq_destroy(b);
    sampler_seq_destroy(other);
}

// Sampling frequencies match softmax(logits / T) within 4 sigma.
TEST(sampler_frequencies_match_softmax) {
    float logits[5] = {1.0f, 0.5f, 0.0f, -0.5f, -1.5f};
    const double temps[2] = {1.0, 0.7};
    for (int k = 0; k < 2; k++) {
        sampling_params p = sampling_params_default();
        p.temperature = (float)temps[k];
        p.has_seed = 1;
        p.seed = 1234 + k;
        const int n = 20000;
        int counts[5];
        draw_counts(&p, logits, 5, n, counts);
        double z = 0, pr[5];
        for (int i = 0; i < 5; i++) z += exp(logits[i] / (double)p.temperature);
        for (int i = 0; i < 5; i++) {
            pr[i] = exp(logits[i] / (double)p.temperature) / z;
            double sigma = sqrt(pr[i] * (1 - pr[i]) / n);
            CHECK_MSG(fabs((double)counts[i] / n - pr[i]) < 4 * sigma,
                      "t %g token %d: freq %g expected %g (sigma %g)", p.temperature, i,
                      (double)counts[i] / n, pr[i], sigma);
        }
    }
}

TEST(sampler_top_k_keeps_k_largest_and_ties) {
    float x[4];
    quad_logits(x);
    sampling_params p = sampling_params_default();
    p.top_k = 2;
    check_kept(&p, x, 4, (int[]){1, 1, 0, 0});
    p.top_k = 1;
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
    p.top_k = 4;
    check_kept(&p, x, 4, (int[]){1, 1, 1, 1});
    p.top_k = -1;
    check_kept(&p, x, 4, (int[]){1, 1, 1, 1});
    float ties[5] = {2, 1, 1, 0, 1};
    p.top_k = 2; // the 2nd largest is 1: every 1 stays, as vLLM's `logits < kth` mask keeps
    check_kept(&p, ties, 5, (int[]){1, 1, 1, 0, 1});
}

// vLLM keeps the smallest top set whose mass reaches top_p: a token stays when
// the mass of the tokens above it is below top_p.
TEST(sampler_top_p_boundaries) {
    float x[4];
    quad_logits(x);
    sampling_params p = sampling_params_default();
    p.top_p = 0.7f;
    check_kept(&p, x, 4, (int[]){1, 1, 0, 0});
    p.top_p = 0.75f; // {0,1} reaches exactly 0.75
    check_kept(&p, x, 4, (int[]){1, 1, 0, 0});
    p.top_p = 0.76f;
    check_kept(&p, x, 4, (int[]){1, 1, 1, 0});
    p.top_p = 0.5f;
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
    p.top_p = 0.01f;
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
    p.top_p = 0.95f;
    check_kept(&p, x, 4, (int[]){1, 1, 1, 1});
    // kept tokens are drawn in proportion: top_p 0.7 leaves 0.5 : 0.25
    p.top_p = 0.7f;
    p.has_seed = 1;
    int counts[4];
    const int n = 20000;
    draw_counts(&p, x, 4, n, counts);
    double sigma = sqrt((2.0 / 3) * (1.0 / 3) / n);
    CHECK_NEAR((double)counts[0] / n, 2.0 / 3, 4 * sigma);
}

// Equal logits: top-p takes them in id order, so top_p 0.5 of 1000 equal
// tokens keeps ids 0..499 (the mass above id 499 is 0.499 < 0.5).
TEST(sampler_top_p_ties_by_id) {
    enum { V = 1000 };
    static float x[V];
    static int counts[V];
    sampling_params p = sampling_params_default();
    p.top_p = 0.5f;
    p.has_seed = 1;
    sampler_seq *s = seq_new(&p, V, NULL, 0, NULL, 0);
    char err[LLM_ERR_LEN] = "";
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 20000; i++) {
        for (int j = 0; j < V; j++) x[j] = 0.25f;
        sample_result r;
        CHECK(sampler_sample(s, x, V, &r, err) == 0);
        counts[r.token]++;
    }
    int inside = 0, outside = 0;
    for (int j = 0; j < V; j++) {
        inside += j < 500 && counts[j] > 0;
        outside += j >= 500 && counts[j] > 0;
    }
    CHECK_EQ(inside, 500);
    CHECK_EQ(outside, 0);
    sampler_seq_destroy(s);
}

TEST(sampler_min_p_keeps_relative_to_max) {
    float x[4];
    quad_logits(x);
    sampling_params p = sampling_params_default();
    p.min_p = 0.25f; // p >= 0.125
    check_kept(&p, x, 4, (int[]){1, 1, 1, 0});
    p.min_p = 0.35f; // p >= 0.175
    check_kept(&p, x, 4, (int[]){1, 1, 0, 0});
    p.min_p = 0.6f; // p >= 0.3
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
    p.min_p = 0.1f;
    check_kept(&p, x, 4, (int[]){1, 1, 1, 1});
}

TEST(sampler_filters_with_temperature) {
    // t = 2: p ~ sqrt(0.5, 0.25, 0.15, 0.1) = 0.370, 0.262, 0.203, 0.166
    float x[4];
    quad_logits(x);
    sampling_params p = sampling_params_default();
    p.temperature = 2;
    p.top_p = 0.7f; // mass above token 2 is 0.632 < 0.7, above token 3 0.835
    check_kept(&p, x, 4, (int[]){1, 1, 1, 0});
    p.top_p = 1;
    p.min_p = 0.5f; // p / p_max = sqrt(0.5, 0.3, 0.2) = 0.707, 0.548, 0.447
    check_kept(&p, x, 4, (int[]){1, 1, 1, 0});
    p.min_p = 0;
    p.top_k = 3; // renormalized: 0.443, 0.314, 0.243
    p.top_p = 0.5f;
    check_kept(&p, x, 4, (int[]){1, 1, 0, 0});
    p.temperature = 0.25f; // p ~ p^4: 0.5^4 dominates
    p.top_k = 0;
    p.top_p = 0.9f; // 0.0625 / (0.0625 + 0.0039 + 0.0005 + 0.0001) = 0.93
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
}

// vLLM V1 applies min-p before top-p: top-p then measures mass among the
// min-p survivors. min_p 0.35 keeps {0, 1} = 2/3, 1/3; top_p 0.6 keeps {0}.
// (Top-p first would keep {0, 1}.)
TEST(sampler_min_p_before_top_p) {
    float x[4];
    quad_logits(x);
    sampling_params p = sampling_params_default();
    p.min_p = 0.35f;
    p.top_p = 0.6f;
    check_kept(&p, x, 4, (int[]){1, 0, 0, 0});
}

static const float *sort_logits;
static int by_logit_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_logits[i] != sort_logits[j]) return sort_logits[i] > sort_logits[j] ? -1 : 1;
    return i - j;
}

// On a real-size vocabulary every draw lies in the set a full sort keeps.
TEST(sampler_large_vocab_matches_brute_force) {
    enum { V = 151936 };
    float *logits = malloc(V * sizeof *logits), *x = malloc(V * sizeof *x);
    int *kept = calloc(V, sizeof *kept);
    int *order = malloc(V * sizeof *order);
    uint64_t st = 99;
    for (int i = 0; i < V; i++) { // a long-tailed spread like real logits
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st >> 11) * 0x1.0p-53;
        logits[i] = (float)(12 * pow(u, 6) - 4);
    }
    const struct {
        float t, top_p, min_p;
        int top_k;
    } cases[] = {
        {0.7f, 0.9f, 0, 0}, {1.0f, 0.95f, 0, 50}, {1.3f, 1, 0.05f, 0}, {0.6f, 0.8f, 0.1f, 1000}};
    // brute force: the whole vocabulary by (logit desc, id asc)
    for (int i = 0; i < V; i++) order[i] = i;
    sort_logits = logits;
    qsort(order, V, sizeof *order, by_logit_desc);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sampling_params p = sampling_params_default();
        p.temperature = cases[c].t;
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        p.top_k = cases[c].top_k;
        p.has_seed = 1;
        double mx = logits[order[0]], w_min = p.min_p;
        int n = V;
        if (p.top_k > 0) {
            float kth = logits[order[p.top_k - 1]];
            while (n > 0 && logits[order[n - 1]] < kth) n--;
        }
        int m = 0;
        while (m < n && exp((logits[order[m]] - mx) / p.temperature) >= w_min) m++;
        double total = 0;
        for (int j = 0; j < m; j++) total += exp((logits[order[j]] - mx) / p.temperature);
        int keep = m;
        if (p.top_p < 1) {
            double acc = 0;
            keep = 0;
            while (keep < m && (keep == 0 || acc < p.top_p * total)) {
                acc += exp((logits[order[keep]] - mx) / p.temperature);
                keep++;
            }
        }
        memset(kept, 0, V * sizeof *kept);
        for (int j = 0; j < keep; j++) kept[order[j]] = 1;
        sampler_seq *s = seq_new(&p, V, NULL, 0, NULL, 0);
        char err[LLM_ERR_LEN] = "";
        int bad = 0, distinct = 0;
        for (int i = 0; i < 300; i++) {
            memcpy(x, logits, V * sizeof *x);
            sample_result r;
            CHECK(sampler_sample(s, x, V, &r, err) == 0);
            bad += !kept[r.token];
            if (kept[r.token] == 1) {
                kept[r.token] = 2;
                distinct++;
            }
        }
        CHECK_MSG(bad == 0, "case %zu: %d draws outside the kept set of %d", c, bad, keep);
        CHECK(distinct > 1);
        sampler_seq_destroy(s);
    }
    free(logits);
    free(x);
    free(kept);
    free(order);
}

TEST(sampler_penalties_exact) {
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    p.repetition_penalty = 1.5f;
    p.frequency_penalty = 0.3f;
    p.presence_penalty = 0.2f;
    const int prompt[3] = {0, 1, 0};
    sampler_seq *s = seq_new(&p, 6, NULL, 0, prompt, 3);
    char err[LLM_ERR_LEN] = "";
    CHECK(sampler_accept(s, 2, err) == 0);
    CHECK(sampler_accept(s, 2, err) == 0);
    CHECK(sampler_accept(s, 3, err) == 0);
    CHECK(sampler_accept(s, 6, err) == -1);
    CHECK_CONTAINS(err, "outside");
    float x[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
    sample_result r;
    CHECK(sampler_sample(s, x, 6, &r, err) == 0);
    const float rp = 1.5f, f = 0.3f, pr = 0.2f;
    CHECK_NEAR(x[0], 2.0f / rp, 1e-6);              // prompt only
    CHECK_NEAR(x[1], -1.0f * rp, 1e-6);             // prompt, negative
    CHECK_NEAR(x[2], 0.5f / rp - 2 * f - pr, 1e-6); // output twice
    CHECK_NEAR(x[3], 3.0f / rp - 1 * f - pr, 1e-6); // output once
    CHECK_NEAR(x[4], -2.0f, 0);                     // unseen
    CHECK_NEAR(x[5], 1.0f, 0);                      // unseen
    CHECK_EQ(r.token, 3);                           // 1.5 beats 1.333
    CHECK_EQ(sampler_n_generated(s), 3);
    sampler_seq_destroy(s);

    // presence and frequency only: prompt tokens untouched
    p = sampling_params_default();
    p.temperature = 0;
    p.presence_penalty = -1.0f;
    p.frequency_penalty = 2.0f;
    s = seq_new(&p, 4, NULL, 0, (int[]){0, 1}, 2);
    CHECK(sampler_accept(s, 1, err) == 0);
    float y[4] = {1, 2, 3, 4};
    CHECK(sampler_sample(s, y, 4, &r, err) == 0);
    CHECK_NEAR(y[0], 1, 0);
    CHECK_NEAR(y[1], 2 - 2.0f + 1.0f, 1e-6);
    CHECK_NEAR(y[2], 3, 0);
    CHECK_EQ(r.token, 3);
    sampler_seq_destroy(s);
}

TEST(sampler_min_tokens_bans_stop_ids) {
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    p.min_tokens = 2;
    p.max_tokens = 5;
    p.stop_token_ids[0] = 4;
    p.n_stop_token_ids = 1;
    const int eos[2] = {3, 5};
    sampler_seq *s = seq_new(&p, 6, eos, 2, NULL, 0);
    char err[LLM_ERR_LEN] = "";
    const float logits[6] = {0, 1, 0, 9, 8, 7}; // eos, stop id, eos lead
    for (int step = 0; step < 3; step++) {
        float x[6];
        memcpy(x, logits, sizeof x);
        sample_result r;
        CHECK(sampler_sample(s, x, 6, &r, err) == 0);
        CHECK_EQ(r.token, step < 2 ? 1 : 3);
        if (step < 2) CHECK(x[3] == -INFINITY && x[4] == -INFINITY && x[5] == -INFINITY);
        CHECK(sampler_accept(s, r.token, err) == 0);
        CHECK_EQ(sampler_check_finish(s, r.token),
                 step < 2 ? SAMPLER_FINISH_NONE : SAMPLER_FINISH_STOP);
    }
    CHECK(sampler_is_stop_token(s, 4));
    CHECK(sampler_is_stop_token(s, 5));
    CHECK(!sampler_is_stop_token(s, 1));
    CHECK_STREQ(sampler_finish_name(SAMPLER_FINISH_STOP), "stop");
    CHECK_STREQ(sampler_finish_name(SAMPLER_FINISH_LENGTH), "length");
    CHECK(sampler_finish_name(SAMPLER_FINISH_NONE) == NULL);
    sampler_seq_destroy(s);
}

TEST(sampler_ignore_eos_and_length) {
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    p.ignore_eos = 1;
    p.max_tokens = 3;
    const int eos = 2;
    sampler_seq *s = seq_new(&p, 4, &eos, 1, NULL, 0);
    char err[LLM_ERR_LEN] = "";
    for (int step = 0; step < 3; step++) {
        float x[4] = {0, 1, 5, 2};
        sample_result r;
        CHECK(sampler_sample(s, x, 4, &r, err) == 0);
        CHECK_EQ(r.token, 2); // eos is sampled freely
        CHECK(sampler_accept(s, r.token, err) == 0);
        CHECK(!sampler_is_stop_token(s, r.token));
        CHECK_EQ(sampler_check_finish(s, r.token),
                 step < 2 ? SAMPLER_FINISH_NONE : SAMPLER_FINISH_LENGTH);
    }
    sampler_seq_destroy(s);
    p.ignore_eos = 0;
    s = seq_new(&p, 4, &eos, 1, NULL, 0);
    CHECK(sampler_accept(s, 2, err) == 0);
    CHECK_EQ(sampler_check_finish(s, 2), SAMPLER_FINISH_STOP);
    sampler_seq_destroy(s);
}

// Raw logprobs: log-softmax of the logits as given, before penalties and
// temperature; top-N descending, ties by lower id.
TEST(sampler_logprobs_raw_top_n) {
    enum { V = 10 };
    const float logits[V] = {0.5f, 2.0f, -1.0f, 2.0f, 0.1f, -3.0f, 1.5f, 0.5f, -0.2f, 1.0f};
    double z = 0, lp[V];
    for (int i = 0; i < V; i++) z += exp((double)logits[i]);
    for (int i = 0; i < V; i++) lp[i] = logits[i] - log(z);
    sampling_params p = sampling_params_default();
    p.logprobs = 5;
    p.temperature = 0.8f;
    p.repetition_penalty = 1.3f;
    p.presence_penalty = 0.5f;
    p.has_seed = 1;
    const int prompt[2] = {1, 3};
    sampler_seq *s = seq_new(&p, V, NULL, 0, prompt, 2);
    char err[LLM_ERR_LEN] = "";
    for (int step = 0; step < 50; step++) {
        float x[V];
        memcpy(x, logits, sizeof x);
        sample_result r;
        CHECK(sampler_sample(s, x, V, &r, err) == 0);
        CHECK_NEAR(r.logprob, lp[r.token], 1e-5);
        CHECK_EQ(r.n_top, 5);
        const int want[5] = {1, 3, 6, 9, 0};
        for (int j = 0; j < 5; j++) {
            CHECK_EQ(r.top[j].id, want[j]);
            CHECK_NEAR(r.top[j].logprob, lp[want[j]], 1e-5);
        }
        CHECK(sampler_accept(s, r.token, err) == 0);
    }
    sampler_seq_destroy(s);

    p = sampling_params_default();
    p.temperature = 0;
    p.logprobs = 0; // the chosen token's only
    s = seq_new(&p, V, NULL, 0, NULL, 0);
    float x[V];
    memcpy(x, logits, sizeof x);
    sample_result r;
    CHECK(sampler_sample(s, x, V, &r, err) == 0);
    CHECK_EQ(r.token, 1);
    CHECK_EQ(r.n_top, 0);
    CHECK_NEAR(r.logprob, lp[1], 1e-5);
    sampler_seq_destroy(s);

    p.logprobs = 20; // more than the vocab
    s = seq_new(&p, V, NULL, 0, NULL, 0);
    memcpy(x, logits, sizeof x);
    CHECK(sampler_sample(s, x, V, &r, err) == 0);
    CHECK_EQ(r.n_top, V);
    for (int j = 1; j < V; j++) CHECK(r.top[j].logprob <= r.top[j - 1].logprob);
    CHECK_EQ(r.top[V - 1].id, 5);
    sampler_seq_destroy(s);
}

TEST(sampler_validate_rejects_each_bad_param) {
    char err[LLM_ERR_LEN];
    sampling_params ok = sampling_params_default();
    CHECK(sampling_params_validate(&ok, 100, err) == 0);
    ok.top_k = -1;
    ok.temperature = 2;
    ok.min_tokens = ok.max_tokens;
    ok.logprobs = 20;
    CHECK(sampling_params_validate(&ok, 100, err) == 0);
#define BAD(field, value, needle)                                                                  \
    do {                                                                                           \
        sampling_params p = sampling_params_default();                                             \
        p.field = value;                                                                           \
        err[0] = 0;                                                                                \
        CHECK_MSG(sampling_params_validate(&p, 100, err) == -1, "%s = %s accepted", #field,        \
                  #value);                                                                         \
        CHECK_CONTAINS(err, needle);                                                               \
    } while (0)
    BAD(temperature, -0.1f, "temperature");
    BAD(temperature, 2.5f, "temperature");
    BAD(temperature, NAN, "temperature");
    BAD(top_p, 0, "top_p");
    BAD(top_p, 1.01f, "top_p");
    BAD(top_k, -2, "top_k");
    BAD(min_p, -0.01f, "min_p");
    BAD(min_p, 1.5f, "min_p");
    BAD(repetition_penalty, 0, "repetition_penalty");
    BAD(repetition_penalty, INFINITY, "repetition_penalty");
    BAD(presence_penalty, 2.5f, "presence_penalty");
    BAD(frequency_penalty, -2.5f, "frequency_penalty");
    BAD(max_tokens, 0, "max_tokens");
    BAD(min_tokens, -1, "min_tokens");
    BAD(min_tokens, 17, "min_tokens");
    BAD(logprobs, 21, "logprobs");
    BAD(logprobs, -2, "logprobs");
    BAD(n_stop_token_ids, SAMPLING_MAX_STOP_IDS + 1, "stop_token_ids");
    BAD(n_stop, SAMPLING_MAX_STOP + 1, "stop");
#undef BAD
    sampling_params p = sampling_params_default();
    p.stop_token_ids[0] = 100;
    p.n_stop_token_ids = 1;
    CHECK(sampling_params_validate(&p, 100, err) == -1);
    CHECK_CONTAINS(err, "stop_token_ids[0] = 100");
    p = sampling_params_default();
    p.n_stop = 1; // stop[0] is ""
    CHECK(sampling_params_validate(&p, 100, err) == -1);
    CHECK_CONTAINS(err, "empty");
    memset(p.stop[0], 'a', sizeof p.stop[0]); // no NUL within the limit
    CHECK(sampling_params_validate(&p, 100, err) == -1);
    CHECK_CONTAINS(err, "longer");
    // create validates too, and checks eos and prompt ids
    p = sampling_params_default();
    p.temperature = -1;
    CHECK(sampler_seq_create(&p, 100, NULL, 0, NULL, 0, err) == NULL);
    CHECK_CONTAINS(err, "temperature");
    p = sampling_params_default();
    CHECK(sampler_seq_create(&p, 100, (int[]){100}, 1, NULL, 0, err) == NULL);
    CHECK_CONTAINS(err, "eos");
    CHECK(sampler_seq_create(&p, 100, NULL, 0, (int[]){5, -1}, 2, err) == NULL);
    CHECK_CONTAINS(err, "prompt");
}
