// engine.c - the engine core: model + backend + forward pass + KV pool sized
// from the memory budget + scheduler + sampling, one step at a time.
#include "engine.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "block_manager.h"
#include "forward.h"
#include "scheduler.h"
#include "util.h"

struct engine {
    engine_config cfg;
    model_weights *model;
    backend *bk;
    forward_ctx *fwd;
    block_manager *bm;
    scheduler sched;
    engine_stats st; // memory figures fixed at start; counters updated as we go
    int max_total;   // tokens a sequence may reach: min(max_model_len, KV tokens)
    int64_t next_id;
    uint64_t next_arrival;
    // requests by id: a small open list (few hundred live at most)
    request **live;
    int n_live, cap_live;
    // step buffers
    sched_item *items;
    engine_output *outs;
    int n_outs, cap_outs;
    float *logits;  // [max_num_seqs, vocab]
    int32_t *picks; // [max_num_seqs] greedy tokens picked on the device
    int *rows;      // [max_num_seqs] the items sampled this step
    int32_t *tok, *pos, *slot, *qstart, *ctx, *btab;
    int max_blocks;
    int64_t *aborted; // ids aborted since the last step (reported once)
    int n_aborted, cap_aborted;
};

engine_config engine_config_default(void) {
    engine_config c = {0};
    c.device = DEVICE_AUTO;
    c.dtype = -1;
    c.block_size = 16;
    c.kv_cache_dtype = -1;
    c.gpu_memory_utilization = 0.9;
    c.max_num_seqs = 256;
    c.max_num_batched_tokens = 2048;
    c.prefix_caching = 1;
    c.device_sampling = 1;
    return c;
}

// The fp8 cache's scales: all 1.0, or the range the checkpoint gave.
static void log_fp8_scales(const model_weights *m) {
    int n = 0;
    float lo = INFINITY, hi = 0.0f;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const float ks = m->layers[l].k_scale, vs = m->layers[l].v_scale;
        n += ks != 1.0f || vs != 1.0f;
        lo = fminf(lo, fminf(ks, vs));
        hi = fmaxf(hi, fmaxf(ks, vs));
    }
    if (n)
        fprintf(stderr,
                "engine: fp8 K/V (e4m3): k_scale/v_scale from the checkpoint (%d of %d layers, "
                "%.4g to %.4g)\n",
                n, m->cfg.n_layers, (double)lo, (double)hi);
    else
        fprintf(stderr, "engine: fp8 K/V (e4m3): scales 1.0 (the checkpoint has no "
                        "k_scale/v_scale); values beyond +-448 saturate\n");
}

int engine_backend_modes(backend *b, const engine_config *cfg, char *err) {
    b->batch_invariant = cfg->batch_invariant;
    if (!cfg->cpu_matmul_bf16) return 0;
    if (b->info.kind != DEVICE_CPU)
        return llm_errf(err,
                        "--cpu-matmul bf16 is a CPU backend mode (the %s backend's GEMMs "
                        "already take 16-bit inputs)",
                        device_name(b->info.kind));
    return cpu_backend_matmul_bf16(b, err);
}

static void log_startup(const engine *e) {
    const engine_stats *s = &e->st;
    char a[32], b[32], c[32], d[32], f[32];
    fprintf(stderr, "engine: device %s (%s), total %s, budget %s (%.2f)\n",
            device_name(e->bk->info.kind), e->bk->info.name,
            llm_fmt_bytes(s->device_total, a, sizeof a), llm_fmt_bytes(s->budget, b, sizeof b),
            e->cfg.gpu_memory_utilization);
    fprintf(stderr,
            "engine: weights %s (%s), activation peak %s, overhead %s, available KV memory %s\n",
            llm_fmt_bytes(s->weights, a, sizeof a), dtype_name(s->weights_dtype),
            llm_fmt_bytes(s->activations, b, sizeof b), llm_fmt_bytes(s->overhead, c, sizeof c),
            llm_fmt_bytes(s->kv_allocated, d, sizeof d));
    if (s->weights_int8)
        fprintf(stderr,
                "engine: int8 weights %s (scales included), embeddings %s, other %s; %s saved "
                "against 16-bit weights\n",
                llm_fmt_bytes(s->weights_int8, a, sizeof a),
                llm_fmt_bytes(s->weights_embed, b, sizeof b),
                llm_fmt_bytes(s->weights - s->weights_int8 - s->weights_embed, c, sizeof c),
                llm_fmt_bytes(s->weights_saved, d, sizeof d));
    fprintf(stderr,
            "engine: KV cache size %" PRId64 " tokens (%d pages of %d, %s each), %s K/V%s\n",
            s->kv_tokens, s->pages_total, s->block_size, llm_fmt_bytes(s->page_bytes, f, sizeof f),
            engine_kv_dtype_name(s->kv_dtype),
            e->cfg.kv_cache_dtype >= 0 ? " (--kv-cache-dtype)" : " (auto: the model's dtype)");
    if (s->kv_dtype == LLM_F8E4M3) log_fp8_scales(e->model);
    fprintf(stderr, "engine: maximum concurrency for %d tokens per request: %.2fx\n",
            s->max_model_len, s->max_concurrency);
}

// Device memory that appears after the KV pool is sized: the CUDA backend's
// workspaces (cuBLAS's, the fp16 activations, int8 tiles, GEMV partials) are
// allocated with it and measured as resident, and the split-decode partials
// are in the forward workspace; what is left is the decode graphs (a few
// hundred kernel nodes per padded batch size) and the kernel modules cuBLAS
// and the driver load on first use.
#define GPU_LAZY_WORKSPACE_BYTES (64ull << 20)

// Sizes the KV pool by the memory plan (engine.h), from the device's memory
// now that the weights and the workspace are in it.
static int size_kv(engine *e, char *err) {
    engine_stats *s = &e->st;
    uint64_t free_b = 0, total_b = 0;
    e->bk->memory_info(e->bk, &free_b, &total_b);
    uint64_t overhead = 0; // the CPU backend has no context or library workspaces
    if (e->bk->info.kind == DEVICE_CPU) {
        // the CPU's "device" is host RAM: what is available (or --device-memory)
        // plus the weights, which are already resident
        total_b = e->cfg.device_memory ? e->cfg.device_memory : free_b + s->weights;
    } else {
        // measured: what is resident beyond our weights and activations (the
        // CUDA context, the cuBLAS handle, other processes), plus room for the
        // workspaces the backend grows on first use
        uint64_t used = total_b - free_b, ours = s->weights + forward_workspace_bytes(e->fwd);
        overhead = (used > ours ? used - ours : 0) + GPU_LAZY_WORKSPACE_BYTES;
    }
    engine_memory_plan p;
    if (engine_plan_memory(&e->cfg, &e->model->cfg, s->weights, e->model->embed.dtype, total_b,
                           overhead, &p, err))
        return -1;
    s->device_total = p.device_total;
    s->budget = p.budget;
    s->activations = p.activations;
    s->overhead = p.overhead;
    s->page_bytes = p.page_bytes;
    s->kv_dtype = forward_kv_dtype(e->fwd);
    s->pages_total = p.pages;
    s->block_size = p.block_size;
    s->kv_tokens = p.kv_tokens;
    s->kv_allocated = p.kv_bytes;
    s->max_model_len = p.max_model_len;
    s->max_num_batched_tokens = e->cfg.max_num_batched_tokens;
    s->max_concurrency = p.max_concurrency;
    return 0;
}

// Loads (or builds) the model, its float matrices in the dtype the device
// runs (engine_weights_dtype). Returns 0, or -1 with err.
static int load_model(engine *e, const engine_config *cfg, char *err) {
    llm_dtype stored = LLM_BF16; // a synthetic model's, unless asked otherwise
    if (cfg->model_dir) {
        model_config mc;
        if (config_load(cfg->model_dir, &mc, err)) return -1;
        stored = mc.dtype;
    }
    const device_info *dev = &e->bk->info;
    int cc = dev->kind == DEVICE_CPU ? 0 : dev->cc_major * 10 + dev->cc_minor;
    const char *why;
    llm_dtype dt = engine_weights_dtype(stored, cfg->dtype, cc, &why);
    if (why && cfg->verbose) fprintf(stderr, "engine: %s\n", why);
    // a checkpoint's matrices as stored unless the device needs them converted
    int matrix_dtype = cfg->dtype >= 0 || dt != stored ? (int)dt : -1;
    if (cfg->model_dir) {
        model_load_opts lo = {
            .matrix_dtype = matrix_dtype, .quantize = cfg->quantization, .progress = cfg->verbose};
        e->model = model_load(cfg->model_dir, &lo, err);
    } else {
        e->model = model_synthetic(cfg->synthetic, cfg->seed, dt, err);
        if (e->model && cfg->quantization == QUANT_INT8 && model_quantize_int8(e->model, 0, err)) {
            model_free(e->model);
            e->model = NULL;
        }
    }
    if (!e->model) return -1;
    e->st.weights_dtype = dt;
    return 0;
}

engine *engine_create(const engine_config *cfg, char *err) {
    if (cfg->block_size <= 0 || cfg->max_num_seqs <= 0 || cfg->max_num_batched_tokens <= 0 ||
        cfg->max_model_len < 0 ||
        !(cfg->gpu_memory_utilization > 0 && cfg->gpu_memory_utilization <= 1)) {
        llm_errf(err,
                 "engine: block_size, max_num_seqs and max_num_batched_tokens must be positive and "
                 "gpu_memory_utilization in (0, 1]");
        return NULL;
    }
    if (!cfg->model_dir == !cfg->synthetic) {
        llm_errf(err, "engine: give a model directory or a synthetic model name");
        return NULL;
    }
    engine *e = llm_calloc(1, sizeof *e, err);
    if (!e) return NULL;
    e->cfg = *cfg;
    device_info dev;
    if (device_select(cfg->device, &dev, err)) goto fail;
    e->bk = backend_create(&dev, err);
    if (!e->bk && cfg->device == DEVICE_AUTO && dev.kind != DEVICE_CPU) {
        if (cfg->verbose) fprintf(stderr, "engine: %s; falling back to the CPU\n", err);
        device_cpu_info(&dev);
        e->bk = backend_create(&dev, err);
    }
    if (!e->bk) goto fail;
    if (engine_backend_modes(e->bk, cfg, err)) goto fail;
    if (load_model(e, cfg, err)) goto fail;
    if (cfg->cpu_matmul_bf16 && e->model->layers[0].wq.dtype != LLM_BF16 &&
        e->model->layers[0].wq.dtype != LLM_I8)
        fprintf(stderr,
                "engine: --cpu-matmul bf16 multiplies bf16 matrices and this model's are %s: "
                "the f32 products stay (add --dtype bf16 to round the weights to bf16)\n",
                dtype_name(e->model->layers[0].wq.dtype));
    const model_config *mc = &e->model->cfg;
    if (engine_resolve_limits(&e->cfg, mc, e->bk->info.kind, err)) goto fail;
    e->st.weights = e->model->weight_bytes;
    e->st.weights_embed = e->model->embed_bytes;
    e->st.weights_int8 = e->model->int8_bytes;
    e->st.weights_saved = e->model->saved_bytes;

    forward_opts fo = {.max_tokens = e->cfg.max_num_batched_tokens,
                       .max_seqs = cfg->max_num_seqs,
                       .max_context = e->cfg.max_model_len,
                       .block_size = cfg->block_size,
                       .num_blocks = 0,
                       .kv_dtype = cfg->kv_cache_dtype > 0 ? cfg->kv_cache_dtype : 0,
                       .enforce_eager = cfg->enforce_eager};
    e->fwd = forward_create(e->bk, e->model, &fo, err);
    if (!e->fwd || size_kv(e, err) || forward_alloc_kv(e->fwd, e->st.pages_total, err)) goto fail;
    e->bm = bm_create(e->st.pages_total, cfg->block_size, cfg->prefix_caching, err);
    if (!e->bm) goto fail;
    e->max_total =
        e->cfg.max_model_len < e->st.kv_tokens ? e->cfg.max_model_len : (int)e->st.kv_tokens;

    if (sched_init(&e->sched, cfg->max_num_seqs, e->cfg.max_num_batched_tokens, e->bm, err))
        goto fail;
    const int S = cfg->max_num_seqs, T = e->cfg.max_num_batched_tokens;
    e->max_blocks = (e->cfg.max_model_len + cfg->block_size - 1) / cfg->block_size;
    e->items = llm_calloc((size_t)S, sizeof *e->items, err);
    e->logits = e->bk->host_alloc(e->bk, (size_t)S * mc->vocab_size * sizeof(float));
    if (!e->logits) llm_errf(err, "out of memory for the logits of %d sequences", S);
    e->picks = llm_malloc((size_t)S * sizeof(int32_t), err);
    e->rows = llm_malloc((size_t)S * sizeof(int), err);
    e->tok = llm_malloc((size_t)T * 4, err);
    e->pos = llm_malloc((size_t)T * 4, err);
    e->slot = llm_malloc((size_t)T * 4, err);
    e->qstart = llm_malloc((size_t)(S + 1) * 4, err);
    e->ctx = llm_malloc((size_t)S * 4, err);
    e->btab = llm_malloc((size_t)S * e->max_blocks * 4, err);
    if (!e->items || !e->logits || !e->picks || !e->rows || !e->tok || !e->pos || !e->slot ||
        !e->qstart || !e->ctx || !e->btab)
        goto fail;
    if (cfg->verbose) log_startup(e);
    return e;
fail:
    engine_destroy(e);
    return NULL;
}

static request *find_live(const engine *e, int64_t id, int *index) {
    for (int i = 0; i < e->n_live; i++)
        if (e->live[i]->id == id) {
            if (index) *index = i;
            return e->live[i];
        }
    return NULL;
}

int64_t engine_add_request(engine *e, const int32_t *prompt, int n_prompt,
                           const sampling_params *sp, char *err) {
    const model_config *mc = &e->model->cfg;
    if (n_prompt <= 0) return llm_errf(err, "the prompt is empty");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= mc->vocab_size)
            return llm_errf(err, "prompt token %d (at %d) is outside the vocabulary [0, %d)",
                            prompt[i], i, mc->vocab_size);
    if (n_prompt >= e->cfg.max_model_len)
        return llm_errf(err, "the prompt has %d tokens; this model's maximum context length is %d",
                        n_prompt, e->cfg.max_model_len);
    if (n_prompt >= e->st.kv_tokens)
        return llm_errf(err, "the prompt has %d tokens; the whole KV cache holds %" PRId64,
                        n_prompt, e->st.kv_tokens);
    if (e->n_live == e->cap_live) {
        int cap = e->cap_live ? e->cap_live * 2 : 64;
        request **v = realloc(e->live, (size_t)cap * sizeof *v);
        if (!v) return llm_errf(err, "out of memory");
        e->live = v;
        e->cap_live = cap;
    }
    int cap = n_prompt + (sp->max_tokens < e->max_total ? sp->max_tokens : e->max_total) + 1;
    request *r = request_create(e->next_id, e->next_arrival, prompt, n_prompt, cap, sp,
                                mc->vocab_size, mc->eos_ids, mc->n_eos, err);
    if (!r) return -1;
    e->next_id++, e->next_arrival++;
    if (sched_add(&e->sched, r)) {
        request_free(r);
        return llm_errf(err, "out of memory");
    }
    e->live[e->n_live++] = r;
    return r->id;
}

static void retire(engine *e, request *r) {
    int i;
    sched_remove(&e->sched, r);
    if (find_live(e, r->id, &i)) e->live[i] = e->live[--e->n_live];
    request_free(r);
}

int engine_abort(engine *e, int64_t id) {
    request *r = find_live(e, id, NULL);
    if (!r) return -1;
    if (e->n_aborted == e->cap_aborted) {
        int cap = e->cap_aborted ? e->cap_aborted * 2 : 16;
        int64_t *v = realloc(e->aborted, (size_t)cap * sizeof *v);
        if (!v) return -1;
        e->aborted = v;
        e->cap_aborted = cap;
    }
    e->aborted[e->n_aborted++] = id;
    retire(e, r);
    return 0;
}

static engine_output *push_output(engine *e, char *err) {
    if (e->n_outs == e->cap_outs) {
        int cap = e->cap_outs ? e->cap_outs * 2 : 64;
        engine_output *v = realloc(e->outs, (size_t)cap * sizeof *v);
        if (!v) {
            llm_errf(err, "out of memory");
            return NULL;
        }
        e->outs = v;
        e->cap_outs = cap;
    }
    engine_output *o = &e->outs[e->n_outs++];
    memset(o, 0, sizeof *o);
    o->token = -1;
    o->queue_time = -1;
    return o;
}

// Lays the planned items out as one flat forward batch. Block-table rows are
// as wide as the longest table in this batch, not max_model_len's, so a step
// of short sequences copies (and uploads) only the pages it uses.
static void build_batch(engine *e, const sched_item *items, int n, forward_batch *b) {
    const int bs = e->cfg.block_size;
    int t = 0, width = 1;
    for (int s = 0; s < n; s++)
        if (items[s].r->pages.n_blocks > width) width = items[s].r->pages.n_blocks;
    e->qstart[0] = 0;
    for (int s = 0; s < n; s++) {
        const request *r = items[s].r;
        for (int i = 0; i < items[s].n; i++, t++) {
            int p = items[s].start + i;
            e->tok[t] = r->tokens[p];
            e->pos[t] = p;
            e->slot[t] = r->pages.blocks[p / bs] * bs + p % bs;
        }
        e->qstart[s + 1] = t;
        e->ctx[s] = items[s].start + items[s].n;
        int32_t *row = e->btab + (size_t)s * width;
        memcpy(row, r->pages.blocks, (size_t)r->pages.n_blocks * sizeof(int32_t));
        for (int j = r->pages.n_blocks; j < width; j++) row[j] = 0;
    }
    *b = (forward_batch){.n_tokens = t,
                         .n_seqs = n,
                         .token_ids = e->tok,
                         .positions = e->pos,
                         .slot_mapping = e->slot,
                         .query_start = e->qstart,
                         .context_len = e->ctx,
                         .block_tables = e->btab,
                         .max_blocks = width,
                         .all_logits = 0};
}

// 1 when every sequence sampled this step takes the plain argmax of its
// logits (sampler_next_is_argmax), so the step can pick them on the device:
// at batch 256 and a 128k vocab that keeps 131 MB of logits off PCIe a step.
static int step_is_greedy(const engine *e, int n) {
    for (int s = 0; s < n; s++)
        if (e->items[s].sample && !sampler_next_is_argmax(e->items[s].r->sampler)) return 0;
    return 1;
}

int engine_step(engine *e, engine_output **out, int *n_out, char *err) {
    e->n_outs = 0;
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < e->n_aborted; i++) {
        engine_output *o = push_output(e, err);
        if (!o) return -1;
        o->id = e->aborted[i];
        o->finished = 1;
        o->finish_reason = "abort";
    }
    e->n_aborted = 0;

    int n = sched_plan(&e->sched, e->items);
    int on_device = 0; // tokens in e->picks, not sampled from e->logits
    if (n > 0) {
        forward_batch b;
        build_batch(e, e->items, n, &b);
        on_device = e->cfg.device_sampling && step_is_greedy(e, n);
        if (on_device ? forward_run_argmax(e->fwd, &b, e->picks, err)
                      : forward_run(e->fwd, &b, e->logits, err))
            return -1;
        sched_commit(&e->sched, e->items, n);
        e->st.computed_tokens += (uint64_t)b.n_tokens;
        e->st.steps++;
    }
    const int vocab = e->model->cfg.vocab_size;
    // the outputs first (push_output may move e->outs), one per sampled row
    const int base = e->n_outs;
    int n_rows = 0;
    for (int s = 0; s < n; s++) {
        if (!e->items[s].sample) continue;
        const request *r = e->items[s].r;
        engine_output *o = push_output(e, err);
        if (!o) return -1;
        o->id = r->id;
        o->n_prompt = r->n_prompt;
        o->n_cached = r->n_cached;
        o->queue_time = r->queue_time;
        e->rows[n_rows++] = s;
    }
    engine_output *outs = e->outs + base;
    if (on_device) { // what sampler_sample's greedy path gives, errors included
        for (int k = 0; k < n_rows; k++) {
            if (e->picks[e->rows[k]] < 0) return llm_errf(err, "every logit is -inf or NaN");
            outs[k].sample = (sample_result){.token = e->picks[e->rows[k]]};
        }
        e->st.device_sampled_tokens += (uint64_t)n_rows;
    } else {
        // each request samples with its own state (RNG, scratch), so rows are
        // independent and can run at once: 256 rows of a 128k vocab are ~40 ms
        // on one core. The first error wins.
        int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) if (n_rows > 1)
        for (int k = 0; k < n_rows; k++) {
            const int s = e->rows[k];
            char row_err[LLM_ERR_LEN];
            if (sampler_sample(e->items[s].r->sampler, e->logits + (size_t)s * vocab, vocab,
                               &outs[k].sample, row_err)) {
#pragma omp critical(engine_sample_error)
                if (!failed) {
                    failed = 1;
                    memcpy(err, row_err, LLM_ERR_LEN);
                }
            }
        }
        if (failed) return -1;
    }
    for (int k = 0; k < n_rows; k++) {
        engine_output *o = &outs[k];
        request *r = e->items[e->rows[k]].r;
        if (sampler_accept(r->sampler, o->sample.token, err)) return -1;
        int tok = o->sample.token;
        o->token = tok;
        r->tokens[r->n_tokens++] = tok;
        o->n_generated = sampler_n_generated(r->sampler);
        e->st.generated_tokens++;
        sampler_finish fin = sampler_check_finish(r->sampler, tok);
        if (fin == SAMPLER_FINISH_NONE && (r->n_tokens >= e->max_total || r->n_tokens >= r->cap))
            fin = SAMPLER_FINISH_LENGTH;
        if (fin != SAMPLER_FINISH_NONE) {
            o->finished = 1;
            o->finish_reason = sampler_finish_name(fin);
            retire(e, r);
        }
    }
    *out = e->outs;
    *n_out = e->n_outs;
    return 0;
}

int engine_has_work(const engine *e) {
    return e->sched.waiting.n + e->sched.running.n > 0 || e->n_aborted > 0;
}

void engine_get_stats(const engine *e, engine_stats *s) {
    *s = e->st;
    bm_stats b = bm_get_stats(e->bm);
    s->pages_used = b.used;
    s->pages_cached = b.cached;
    s->kv_used = (uint64_t)b.used * s->page_bytes;
    s->prefix_queries = b.queries;
    s->prefix_hits = b.hits;
    s->running = e->sched.running.n;
    s->waiting = e->sched.waiting.n;
    s->preemptions = e->sched.preemptions;
    s->prompt_tokens = e->sched.prompt_tokens;
    s->cached_prompt_tokens = e->sched.cached_prompt_tokens;
}

const model_config *engine_model_config(const engine *e) {
    return &e->model->cfg;
}
const device_info *engine_device(const engine *e) {
    return &e->bk->info;
}

void engine_destroy(engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_live; i++) {
        bm_release(e->bm, &e->live[i]->pages);
        request_free(e->live[i]);
    }
    free(e->live);
    sched_free(&e->sched);
    bm_destroy(e->bm);
    forward_destroy(e->fwd);
    if (e->bk) e->bk->host_free(e->bk, e->logits);
    if (e->bk) e->bk->destroy(e->bk);
    model_free(e->model);
    free(e->items), free(e->outs), free(e->picks), free(e->rows);
    free(e->tok), free(e->pos), free(e->slot), free(e->qstart), free(e->ctx), free(e->btab);
    free(e->aborted);
    free(e);
}

void engine_memory_info(const engine *e, uint64_t *free_bytes, uint64_t *total_bytes) {
    e->bk->memory_info(e->bk, free_bytes, total_bytes);
}
