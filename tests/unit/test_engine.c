// The engine end to end on a tiny random model: batching, preemption,
// prefix caching and aborts never change a greedy request's tokens, and the
// page pool never leaks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "engine_args.h"
#include "harness.h"
#include "tiny_model.h"
#include "util.h"

static engine *open_engine(int max_seqs, int max_batched, uint64_t kv_bytes, int prefix) {
    engine_config c = engine_config_default();
    c.model_dir = tiny_model_dir();
    c.device = DEVICE_CPU;
    c.max_num_seqs = max_seqs;
    c.max_num_batched_tokens = max_batched;
    c.kv_cache_memory = kv_bytes;
    c.prefix_caching = prefix;
    char err[LLM_ERR_LEN] = "";
    engine *e = engine_create(&c, err);
    CHECK_MSG(e != NULL, "%s", err);
    return e;
}

#define MAX_OUT 16
#define PAGE_BYTES (2ull * 2 * 16 * 32 * 2) // K+V, 2 layers, 16 tokens, kv_dim 32, fp16

typedef struct {
    int32_t prompt[400];
    int n_prompt;
    int out[MAX_OUT];
    int n_out;
    int64_t id;
    int done;
} job;

static void make_prompt(job *j, int n, unsigned seed) {
    j->n_prompt = n;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        j->prompt[i] = (int32_t)((seed >> 16) % 120); // never eos
    }
    j->n_out = 0;
    j->done = 0;
}

static sampling_params greedy(int max_tokens) {
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.ignore_eos = 1;
    return p;
}

// Submits all jobs at once and steps until every one has finished.
static void run_jobs(engine *e, job *jobs, int n, int max_tokens) {
    char err[LLM_ERR_LEN] = "";
    sampling_params p = greedy(max_tokens);
    for (int i = 0; i < n; i++) {
        jobs[i].id = engine_add_request(e, jobs[i].prompt, jobs[i].n_prompt, &p, err);
        CHECK_MSG(jobs[i].id >= 0, "%s", err);
    }
    int guard = 0;
    while (engine_has_work(e) && guard++ < 100000) {
        engine_output *out;
        int n_out;
        if (engine_step(e, &out, &n_out, err)) {
            harness_fail(__FILE__, __LINE__, "step: %s", err);
            return;
        }
        for (int k = 0; k < n_out; k++)
            for (int i = 0; i < n; i++)
                if (jobs[i].id == out[k].id) {
                    if (out[k].token >= 0 && jobs[i].n_out < MAX_OUT)
                        jobs[i].out[jobs[i].n_out++] = out[k].token;
                    if (out[k].finished) jobs[i].done = 1;
                }
    }
    for (int i = 0; i < n; i++) CHECK(jobs[i].done && jobs[i].n_out == max_tokens);
}

static job jobs[32], alone[32];

static void run_alone(int n, int max_tokens) {
    engine *e = open_engine(1, 512, 64 * PAGE_BYTES, 0);
    if (!e) return;
    for (int i = 0; i < n; i++) {
        alone[i] = jobs[i];
        run_jobs(e, &alone[i], 1, max_tokens);
    }
    engine_destroy(e);
}

TEST(engine_batch_invariance_32_prompts) {
    for (int i = 0; i < 32; i++) make_prompt(&jobs[i], 3 + (i * 37) % 90, 1000 + i);
    run_alone(32, 8);
    // 32 at once, a 64-token budget: prompts arrive in chunks beside decodes
    engine *e = open_engine(32, 64, 1024 * PAGE_BYTES, 0);
    if (!e) return;
    run_jobs(e, jobs, 32, 8);
    for (int i = 0; i < 32; i++)
        CHECK_MSG(memcmp(jobs[i].out, alone[i].out, sizeof(int) * 8) == 0, "prompt %d differs", i);
    engine_stats s;
    engine_get_stats(e, &s);
    CHECK_EQ(s.pages_used, 0);
    CHECK_EQ(s.generated_tokens, 32 * 8);
    engine_destroy(e);
}

// --batch-invariant: a flag without a value that sets the config field (the
// CPU backend is batch-invariant already: the test above runs without it).
TEST(engine_args_batch_invariant_flag) {
    engine_config c = engine_config_default();
    CHECK_EQ(c.batch_invariant, 0);
    int used = -1;
    char err[LLM_ERR_LEN] = "";
    CHECK_EQ(engine_args_apply(&c, "batch-invariant", "next-arg", &used, err), 1);
    CHECK_EQ(used, 0); // the next argument is not consumed
    CHECK_EQ(c.batch_invariant, 1);
}

// --cpu-matmul f32|bf16: a value, anything else an error naming the flag.
TEST(engine_args_cpu_matmul_flag) {
    engine_config c = engine_config_default();
    CHECK_EQ(c.cpu_matmul_bf16, 0);
    int used = -1;
    char err[LLM_ERR_LEN] = "";
    CHECK_EQ(engine_args_apply(&c, "cpu-matmul", "bf16", &used, err), 1);
    CHECK_EQ(used, 1);
    CHECK_EQ(c.cpu_matmul_bf16, 1);
    CHECK_EQ(engine_args_apply(&c, "cpu-matmul", "f32", &used, err), 1);
    CHECK_EQ(c.cpu_matmul_bf16, 0);
    CHECK_EQ(engine_args_apply(&c, "cpu-matmul", "fp16", &used, err), -1);
    CHECK_CONTAINS(err, "--cpu-matmul must be f32 or bf16");
}

TEST(engine_preemption_keeps_outputs) {
    for (int i = 0; i < 12; i++) make_prompt(&jobs[i], 20 + i * 5, 77 + i);
    run_alone(12, 16);
    // 12 pages of 16 tokens: far too few for 12 sequences of up to 91 tokens
    engine *e = open_engine(12, 128, 12 * PAGE_BYTES, 0);
    if (!e) return;
    run_jobs(e, jobs, 12, 16);
    for (int i = 0; i < 12; i++)
        CHECK_MSG(memcmp(jobs[i].out, alone[i].out, sizeof(int) * 16) == 0, "prompt %d differs", i);
    engine_stats s;
    engine_get_stats(e, &s);
    CHECK_MSG(s.preemptions > 0, "no preemption happened");
    CHECK_EQ(s.pages_used, 0);
    engine_destroy(e);
}

TEST(engine_prefix_caching) {
    job a, b;
    make_prompt(&a, 230, 5);
    b = a;
    for (int i = 200; i < 230; i++)
        b.prompt[i] = (b.prompt[i] + 7) % 120; // shared 200-token prefix
    engine *e = open_engine(4, 512, 64 * PAGE_BYTES, 1);
    if (!e) return;
    run_jobs(e, &a, 1, 8);
    engine_stats s0, s1;
    engine_get_stats(e, &s0);
    run_jobs(e, &b, 1, 8);
    engine_get_stats(e, &s1);
    CHECK_EQ(s1.cached_prompt_tokens - s0.cached_prompt_tokens, 192); // 12 full pages of the 200
    CHECK_EQ(s1.computed_tokens - s0.computed_tokens, 230 - 192 + 7);
    CHECK(s1.prefix_hits > s0.prefix_hits);
    engine_destroy(e);
    // the same request with the cache off gives the same tokens
    job b2 = b;
    b2.n_out = 0;
    b2.done = 0;
    e = open_engine(4, 512, 64 * PAGE_BYTES, 0);
    if (!e) return;
    run_jobs(e, &b2, 1, 8);
    CHECK(memcmp(b.out, b2.out, sizeof(int) * 8) == 0);
    engine_get_stats(e, &s1);
    CHECK_EQ(s1.cached_prompt_tokens, 0);
    engine_destroy(e);
}

// Random adds, aborts and steps: pages never leak and never exceed the pool.
TEST(engine_random_add_abort_never_leaks) {
    engine *e = open_engine(8, 48, 20 * PAGE_BYTES, 1);
    if (!e) return;
    char err[LLM_ERR_LEN] = "";
    int64_t ids[64];
    int n_ids = 0;
    unsigned seed = 4242;
    for (int step = 0; step < 3000; step++) {
        seed = seed * 1103515245u + 12345u;
        int op = (seed >> 16) % 10;
        if (op < 3 && n_ids < 64) {
            job j;
            make_prompt(&j, 1 + (seed >> 8) % 60, seed);
            if ((seed >> 4) % 2)
                memcpy(j.prompt, jobs[0].prompt, 16 * sizeof(int32_t)); // shared prefixes
            sampling_params p = greedy(1 + (seed >> 12) % 20);
            int64_t id = engine_add_request(e, j.prompt, j.n_prompt, &p, err);
            CHECK_MSG(id >= 0, "%s", err);
            ids[n_ids++] = id;
        } else if (op < 4 && n_ids > 0) {
            int k = (seed >> 8) % n_ids;
            engine_abort(e, ids[k]); // may already have finished: -1 is fine
            ids[k] = ids[--n_ids];
        } else {
            engine_output *out;
            int n_out;
            CHECK_MSG(engine_step(e, &out, &n_out, err) == 0, "%s", err);
        }
        engine_stats s;
        engine_get_stats(e, &s);
        CHECK(s.pages_used + s.pages_cached <= s.pages_total);
        if (s.pages_used > s.pages_total) break;
    }
    for (int k = 0; k < n_ids; k++) engine_abort(e, ids[k]);
    engine_output *out;
    int n_out;
    while (engine_has_work(e)) CHECK(engine_step(e, &out, &n_out, err) == 0);
    engine_stats s;
    engine_get_stats(e, &s);
    CHECK_EQ(s.pages_used, 0);
    CHECK_EQ(s.running + s.waiting, 0);
    engine_destroy(e);
}

TEST(engine_memory_arithmetic_and_admission) {
    engine_config c = engine_config_default();
    c.model_dir = tiny_model_dir();
    c.device = DEVICE_CPU;
    c.max_num_seqs = 4;
    c.max_num_batched_tokens = 256;
    c.device_memory = 64ull << 20;
    c.gpu_memory_utilization = 0.5;
    char err[LLM_ERR_LEN] = "";
    engine *e = engine_create(&c, err);
    CHECK_MSG(e != NULL, "%s", err);
    if (!e) return;
    engine_stats s;
    engine_get_stats(e, &s);
    CHECK_EQ(s.device_total, 64ull << 20);
    CHECK_EQ(s.budget, 32ull << 20);
    CHECK_EQ(s.page_bytes, PAGE_BYTES);
    CHECK_EQ(s.kv_tokens, (int64_t)s.pages_total * 16);
    CHECK(s.pages_total * s.page_bytes + s.weights + s.activations + s.overhead <= s.budget);
    CHECK(s.budget - (s.pages_total * s.page_bytes + s.weights + s.activations + s.overhead) <
          s.page_bytes);
    CHECK(s.activations > 0);
    sampling_params p = greedy(4);
    int32_t big[1100] = {0};
    CHECK(engine_add_request(e, big, 1100, &p, err) == -1);
    CHECK_CONTAINS(err, "maximum context length is 1024");
    CHECK(engine_add_request(e, big, 0, &p, err) == -1);
    big[3] = 128;
    CHECK(engine_add_request(e, big, 5, &p, err) == -1);
    CHECK_CONTAINS(err, "outside the vocabulary");
    p.temperature = -1;
    big[3] = 0;
    CHECK(engine_add_request(e, big, 5, &p, err) == -1);
    CHECK_CONTAINS(err, "temperature");
    engine_destroy(e);
    // a budget below the weights is a clear error
    c.device_memory = 1 << 16;
    CHECK(engine_create(&c, err) == NULL);
    CHECK_CONTAINS(err, "no memory left for the KV cache");
}

// --- device sampling: greedy steps picked by the backend's argmax --------------------

#define MIX_REQS 8

typedef struct {
    int tok[MAX_OUT];
    float logprob[MAX_OUT];
    int n_top[MAX_OUT];
    int n;
    int64_t id;
} mix_out;

// Runs MIX_REQS requests (params ps, prompts of jobs[]) together on arch's
// tiny model to the end, device_sampling on or off; fills res and st.
static void run_mix(model_arch arch, int device_sampling, const sampling_params *ps, mix_out *res,
                    engine_stats *st) {
    engine_config c = engine_config_default();
    c.model_dir = tiny_model_dir_arch(arch);
    c.device = DEVICE_CPU;
    c.max_num_seqs = MIX_REQS;
    c.max_num_batched_tokens = 512;
    c.kv_cache_memory = 64 * PAGE_BYTES;
    c.device_sampling = device_sampling;
    char err[LLM_ERR_LEN] = "";
    engine *e = c.model_dir ? engine_create(&c, err) : NULL;
    CHECK_MSG(e != NULL, "arch %d: %s", arch, err);
    if (!e) return;
    memset(res, 0, sizeof(mix_out) * MIX_REQS);
    for (int i = 0; i < MIX_REQS; i++) {
        res[i].id = engine_add_request(e, jobs[i].prompt, jobs[i].n_prompt, &ps[i], err);
        CHECK_MSG(res[i].id >= 0, "%s", err);
    }
    while (engine_has_work(e)) {
        engine_output *out;
        int n_out;
        if (engine_step(e, &out, &n_out, err)) {
            harness_fail(__FILE__, __LINE__, "arch %d step: %s", arch, err);
            break;
        }
        for (int k = 0; k < n_out; k++)
            for (int i = 0; i < MIX_REQS; i++)
                if (res[i].id == out[k].id && out[k].token >= 0 && res[i].n < MAX_OUT) {
                    mix_out *r = &res[i];
                    r->tok[r->n] = out[k].token;
                    r->logprob[r->n] = out[k].sample.logprob;
                    r->n_top[r->n++] = out[k].sample.n_top;
                }
    }
    engine_get_stats(e, st);
    engine_destroy(e);
}

// Equal tokens and sample results, request by request.
static void check_same(model_arch arch, const char *what, const mix_out *a, const mix_out *b) {
    for (int i = 0; i < MIX_REQS; i++) {
        CHECK_MSG(a[i].n == b[i].n, "arch %d %s request %d: %d tokens, %d with host sampling", arch,
                  what, i, a[i].n, b[i].n);
        for (int t = 0; t < a[i].n && t < b[i].n; t++)
            CHECK_MSG(a[i].tok[t] == b[i].tok[t] && a[i].logprob[t] == b[i].logprob[t] &&
                          a[i].n_top[t] == b[i].n_top[t],
                      "arch %d %s request %d token %d: %d (logprob %g, %d top), host %d (%g, %d)",
                      arch, what, i, t, a[i].tok[t], a[i].logprob[t], a[i].n_top[t], b[i].tok[t],
                      b[i].logprob[t], b[i].n_top[t]);
    }
}

// Greedy tokens are the same whether the engine picks them on the device or
// samples the downloaded logits; a step with any non-greedy row (temperature,
// a tiny temperature, penalties, logprobs, a min_tokens ban) falls back to the
// host, and the seeded rows still give the all-host run's tokens.
TEST(engine_device_sampling_matches_host_every_arch) {
    for (int i = 0; i < MIX_REQS; i++) make_prompt(&jobs[i], 5 + i * 7, 300 + i);
    sampling_params all_greedy[MIX_REQS], mixed[MIX_REQS];
    for (int i = 0; i < MIX_REQS; i++) all_greedy[i] = mixed[i] = greedy(MAX_OUT);
    mixed[2].ignore_eos = 0; // eos banned for 5 tokens, then a plain greedy row
    mixed[2].min_tokens = 5;
    mixed[3].repetition_penalty = 1.3f;
    mixed[3].max_tokens = 5;
    mixed[4].logprobs = 3;
    mixed[4].max_tokens = 7;
    mixed[5].temperature = 0.8f;
    mixed[5].top_k = 20;
    mixed[5].has_seed = 1;
    mixed[5].seed = 7;
    mixed[5].max_tokens = 6;
    mixed[6].temperature = 0.005f; // samples at 0.01: not greedy
    mixed[6].has_seed = 1;
    mixed[6].seed = 8;
    mixed[6].max_tokens = 4;
    static mix_out dev[MIX_REQS], host[MIX_REQS];
    for (int arch = 0; arch <= ARCH_QWEN3; arch++) {
        engine_stats sd, sh;
        run_mix((model_arch)arch, 1, all_greedy, dev, &sd);
        run_mix((model_arch)arch, 0, all_greedy, host, &sh);
        check_same((model_arch)arch, "greedy", dev, host);
        CHECK_EQ(sd.generated_tokens, MIX_REQS * MAX_OUT);
        CHECK_EQ(sd.device_sampled_tokens, sd.generated_tokens);
        CHECK_EQ(sh.device_sampled_tokens, 0);

        run_mix((model_arch)arch, 1, mixed, dev, &sd);
        run_mix((model_arch)arch, 0, mixed, host, &sh);
        check_same((model_arch)arch, "mixed", dev, host);
        CHECK_EQ(sd.generated_tokens, sh.generated_tokens);
        // the first steps fall back; once the non-greedy rows are done the rest go on the device
        CHECK_MSG(sd.device_sampled_tokens > 0 && sd.device_sampled_tokens < sd.generated_tokens,
                  "arch %d: %llu of %llu tokens picked on the device", arch,
                  (unsigned long long)sd.device_sampled_tokens,
                  (unsigned long long)sd.generated_tokens);
        CHECK_EQ(sh.device_sampled_tokens, 0);
        CHECK(host[4].n_top[0] == 3 && host[4].logprob[0] < 0);
    }
}
