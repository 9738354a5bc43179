// bench_plan.c - `bench_engine plan` (bench_plan.h).
#include "bench_plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bench_run.h"
#include "bench_stats.h"
#include "device.h"
#include "util.h"

// Datasheet figures: memory as nvidia-smi reports the card's total, bandwidth
// and dense (no sparsity) 16-bit tensor-core rate from NVIDIA's datasheets.
const plan_card plan_cards[] = {
    {"t4", "NVIDIA T4 16GB", 15360ull << 20, 320, 65, 7, 5,
     "NVIDIA T4 datasheet: 320 GB/s GDDR6, 65 TFLOP/s fp16 tensor (no bf16)"},
    {"l4", "NVIDIA L4 24GB", 23034ull << 20, 300, 121, 8, 9,
     "NVIDIA L4 datasheet: 300 GB/s GDDR6, 242 TFLOP/s bf16 with sparsity = 121 dense"},
    {"a10g", "NVIDIA A10G 24GB (AWS)", 23028ull << 20, 600, 125, 8, 6,
     "NVIDIA A10 datasheet (AWS's A10G assumed alike): 600 GB/s GDDR6, 125 TFLOP/s bf16 dense"},
    {"a100-40g", "NVIDIA A100 SXM 40GB", 40960ull << 20, 1555, 312, 8, 0,
     "NVIDIA A100 datasheet: 1,555 GB/s HBM2, 312 TFLOP/s bf16 dense"},
    {"a100-80g", "NVIDIA A100 SXM 80GB", 81920ull << 20, 2039, 312, 8, 0,
     "NVIDIA A100 datasheet: 2,039 GB/s HBM2e, 312 TFLOP/s bf16 dense"},
    {"h100", "NVIDIA H100 SXM 80GB", 81559ull << 20, 3350, 989, 9, 0,
     "NVIDIA H100 datasheet: 3.35 TB/s HBM3, 1,979 TFLOP/s bf16 with sparsity = 989 dense"},
    {"h200", "NVIDIA H200 SXM 141GB", 143771ull << 20, 4800, 989, 9, 0,
     "NVIDIA H200 datasheet: 4.8 TB/s HBM3e, 989 TFLOP/s bf16 dense"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL},
};

// What a GPU holds besides our weights, workspace and KV before the first
// step: the CUDA context and cuBLAS handle (measured on other engines at
// 300-600 MiB; the engine measures the real figure at start-up), the CUDA
// backend's fixed workspaces (~97 MiB: cuBLAS's, fp16 activations, int8
// tiles, GEMV partials) and the 64 MiB the engine keeps for what appears
// later (decode graphs, lazily loaded modules; engine.c).
#define PLAN_GPU_OVERHEAD_BYTES (768ull << 20)

const plan_card *plan_card_find(const char *name) {
    for (const plan_card *c = plan_cards; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

// Weights a step multiplies by, per token: the layers' matrices and the lm_head.
static double layer_params(const model_config *c) {
    double dim = c->dim, q = config_q_dim(c), kv = config_kv_dim(c), hid = c->hidden_dim;
    return c->n_layers * (q * dim + 2 * kv * dim + dim * q + 3 * hid * dim);
}

static double head_params(const model_config *c) {
    return (double)c->vocab_size * c->dim;
}

// FLOPs of attention per query token per key: QK^T and PV over every head.
static double attn_flops_per_key(const model_config *c) {
    return 4.0 * c->n_layers * config_q_dim(c);
}

double plan_weight_read_bytes(const model_config *c, uint64_t weights, llm_dtype dt) {
    // an untied embedding table is read a row per token, not whole
    if (c->tie_embeddings) return (double)weights;
    double elem = c->quant == QUANT_INT8 && c->quant_embeddings ? 1.0 : (double)dtype_size(dt);
    return (double)weights - head_params(c) * elem;
}

static double roofline_seconds(double bytes, double flops, const plan_card *card, double efficiency,
                               int *compute_bound) {
    double tb = bytes / (card->bandwidth_gbs * 1e9), tf = flops / (card->tflops * 1e12);
    if (compute_bound) *compute_bound = tf > tb;
    return (tf > tb ? tf : tb) / efficiency;
}

plan_step plan_decode_step(const model_config *c, double weight_read, double kv_token_bytes,
                           int batch, double ctx, const plan_card *card, double efficiency) {
    plan_step s;
    s.bytes = weight_read + batch * ctx * kv_token_bytes;
    s.flops = batch * (2.0 * (layer_params(c) + head_params(c)) + attn_flops_per_key(c) * ctx);
    s.seconds = roofline_seconds(s.bytes, s.flops, card, efficiency, &s.compute_bound);
    return s;
}

double plan_prefill_seconds(const model_config *c, double weight_read, double kv_token_bytes, int n,
                            int chunk, const plan_card *card, double efficiency) {
    double t = 0;
    for (int s = 0; s < n; s += chunk) {
        int len = n - s < chunk ? n - s : chunk;
        // keys seen by the chunk's queries: (s+1) + ... + (s+len)
        double keys = (double)len * s + (double)len * (len + 1) / 2;
        double flops = 2.0 * len * layer_params(c) + attn_flops_per_key(c) * keys;
        double bytes = weight_read + (double)(s + len) * kv_token_bytes;
        if (s + len == n) flops += 2.0 * head_params(c); // the last row's logits
        t += roofline_seconds(bytes, flops, card, efficiency, NULL);
    }
    return t;
}

// ---- the report ----

// Everything the plan prints, computed once.
typedef struct {
    const plan_opts *o;
    model_config mc;
    llm_dtype dtype;
    const char *dtype_why;
    engine_memory_plan *mem; // [n_utils]; pages 0 where nothing fits
    int *mem_ok;             // [n_utils]
    double weight_read, kv_tok;
    double efficiency;
} plan_run;

static const char *dtype_label(llm_dtype t) {
    return t == LLM_BF16 ? "bf16" : t == LLM_F16 ? "fp16" : t == LLM_F32 ? "fp32" : "int8";
}

// The smallest utilization of the list at which batch sequences of in + out
// tokens fit in the KV cache, or -1.
static double min_util(const plan_run *p, int batch) {
    const plan_opts *o = p->o;
    int per = (o->input_len + o->output_len + o->ec.block_size - 1) / o->ec.block_size;
    double best = -1;
    for (int u = 0; u < o->n_utils; u++)
        if (p->mem_ok[u] && p->mem[u].pages / per >= batch && (best < 0 || o->utils[u] < best))
            best = o->utils[u];
    return best;
}

static double usd_per_mtok(const plan_opts *o, double tokens_per_s) {
    return o->hourly > 0 ? o->hourly / 3600 / tokens_per_s * 1e6 : NAN;
}

static void print_table(const plan_run *p) {
    const plan_opts *o = p->o;
    const plan_card *card = o->card;
    char a[32], b[32], c[32];
    const model_config *mc = &p->mc;
    printf("plan for %s on %s (%s; %.0f GB/s, %.0f TFLOP/s, compute capability %d.%d)\n",
           o->ec.model_dir ? o->ec.model_dir : o->ec.synthetic, card->label,
           llm_fmt_bytes(card->memory, a, sizeof a), card->bandwidth_gbs, card->tflops,
           card->cc_major, card->cc_minor);
    printf("source: %s\n", card->source);
    printf("dtype: %s%s%s%s\n", dtype_label(p->dtype),
           mc->quant == QUANT_INT8 ? " (int8 Linear weights)" : "", p->dtype_why ? "; " : "",
           p->dtype_why ? p->dtype_why : "");
    const engine_memory_plan *m0 = &p->mem[0];
    uint64_t fixed = m0->weights + m0->activations + m0->overhead;
    printf("weights %s, activation peak %s, runtime overhead %s (predicted): %s\n",
           llm_fmt_bytes(m0->weights, a, sizeof a), llm_fmt_bytes(m0->activations, b, sizeof b),
           llm_fmt_bytes(m0->overhead, c, sizeof c),
           fixed < card->memory ? "the weights fit" : "the weights do NOT fit");
    if (fixed >= card->memory && mc->quant != QUANT_INT8) {
        model_config q = *mc;
        q.quant = QUANT_INT8;
        printf("with --quantization int8 the weights would take %s\n",
               llm_fmt_bytes(model_weight_bytes(&q, p->dtype), a, sizeof a));
    }
    printf("KV cache %s per token (%s); max_model_len %d\n\n",
           llm_fmt_bytes((uint64_t)p->kv_tok, a, sizeof a), engine_kv_dtype_name(m0->kv_dtype),
           m0->max_model_len);
    printf("| util | KV memory | KV tokens | max concurrency @%d | max sequences of %d+%d |\n",
           m0->max_model_len, o->input_len, o->output_len);
    printf("|---|---|---|---|---|\n");
    int per = (o->input_len + o->output_len + o->ec.block_size - 1) / o->ec.block_size;
    for (int u = 0; u < o->n_utils; u++) {
        const engine_memory_plan *m = &p->mem[u];
        if (!p->mem_ok[u])
            printf("| %.2f | no room | 0 | 0 | 0 |\n", o->utils[u]);
        else
            printf("| %.2f | %s | %lld | %.2f | %d |\n", o->utils[u],
                   llm_fmt_bytes(m->kv_bytes, a, sizeof a), (long long)m->kv_tokens,
                   m->max_concurrency, m->pages / per);
    }
    double ctx = o->input_len + o->output_len / 2.0;
    printf(
        "\npredicted decode at a mean context of %.0f tokens (efficiency %.2f of the roofline):\n",
        ctx, p->efficiency);
    printf("| batch | fits from util | step ms | decode tokens/s | per sequence tokens/s | bound | "
           "$ per 1M output tokens |\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < o->n_batches; i++) {
        int batch = (int)o->batches[i];
        plan_step s =
            plan_decode_step(mc, p->weight_read, p->kv_tok, batch, ctx, card, p->efficiency);
        double tps = batch / s.seconds, mu = min_util(p, batch);
        char fits[16];
        snprintf(fits, sizeof fits, mu > 0 ? "%.2f" : "no", mu);
        printf("| %d | %s | %.2f | %.1f | %.1f | %s | %.3f |\n", batch, fits, s.seconds * 1e3, tps,
               1 / s.seconds, s.compute_bound ? "compute" : "memory", usd_per_mtok(o, tps));
    }
    double pt = plan_prefill_seconds(mc, p->weight_read, p->kv_tok, o->input_len,
                                     o->ec.max_num_batched_tokens, card, p->efficiency);
    printf("\npredicted prefill of %d tokens: %.1f ms, %.0f tokens/s\n", o->input_len, pt * 1e3,
           o->input_len / pt);
}

static void print_json_or_csv(const plan_run *p, int csv) {
    const plan_opts *o = p->o;
    double ctx = o->input_len + o->output_len / 2.0;
    int per = (o->input_len + o->output_len + o->ec.block_size - 1) / o->ec.block_size;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", o->ec.model_dir ? o->ec.model_dir : o->ec.synthetic);
    cJSON_AddStringToObject(root, "card", o->card->name);
    cJSON_AddStringToObject(root, "dtype", dtype_label(p->dtype));
    cJSON_AddNumberToObject(root, "weights_bytes", (double)p->mem[0].weights);
    cJSON_AddNumberToObject(root, "activation_bytes", (double)p->mem[0].activations);
    cJSON_AddNumberToObject(root, "kv_bytes_per_token", p->kv_tok);
    cJSON_AddNumberToObject(root, "efficiency", p->efficiency);
    double pt = plan_prefill_seconds(&p->mc, p->weight_read, p->kv_tok, o->input_len,
                                     o->ec.max_num_batched_tokens, o->card, p->efficiency);
    cJSON_AddNumberToObject(root, "prefill_tokens_per_s", o->input_len / pt);
    const engine_memory_plan *m0 = &p->mem[0];
    cJSON_AddBoolToObject(root, "weights_fit",
                          m0->weights + m0->activations + m0->overhead < o->card->memory);
    if (p->dtype_why) cJSON_AddStringToObject(root, "dtype_note", p->dtype_why);
    cJSON *rows = cJSON_AddArrayToObject(root, "decode");
    if (csv)
        printf("card,dtype,util,kv_tokens,max_sequences,batch,fits,step_ms,decode_tokens_per_s,"
               "bound,usd_per_mtok\n");
    for (int u = 0; u < o->n_utils; u++)
        for (int i = 0; i < o->n_batches; i++) {
            int batch = (int)o->batches[i];
            plan_step s = plan_decode_step(&p->mc, p->weight_read, p->kv_tok, batch, ctx, o->card,
                                           p->efficiency);
            int seqs = p->mem_ok[u] ? p->mem[u].pages / per : 0;
            double tps = batch / s.seconds;
            const char *bound = s.compute_bound ? "compute" : "memory";
            if (csv) {
                printf("%s,%s,%.2f,%lld,%d,%d,%d,%.4f,%.2f,%s,%.4f\n", o->card->name,
                       dtype_label(p->dtype), o->utils[u],
                       (long long)(p->mem_ok[u] ? p->mem[u].kv_tokens : 0), seqs, batch,
                       seqs >= batch, s.seconds * 1e3, tps, bound, usd_per_mtok(o, tps));
                continue;
            }
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "util", o->utils[u]);
            cJSON_AddNumberToObject(r, "kv_tokens", p->mem_ok[u] ? (double)p->mem[u].kv_tokens : 0);
            cJSON_AddNumberToObject(r, "max_sequences", seqs);
            cJSON_AddNumberToObject(r, "batch", batch);
            cJSON_AddBoolToObject(r, "fits", seqs >= batch);
            cJSON_AddNumberToObject(r, "step_ms", s.seconds * 1e3);
            cJSON_AddNumberToObject(r, "decode_tokens_per_s", tps);
            cJSON_AddStringToObject(r, "bound", bound);
            if (o->hourly > 0) cJSON_AddNumberToObject(r, "usd_per_mtok", usd_per_mtok(o, tps));
            cJSON_AddItemToArray(rows, r);
        }
    if (!csv) {
        char *s = cJSON_Print(root);
        if (s) printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(root);
}

int bench_plan(const plan_opts *o) {
    char err[LLM_ERR_LEN];
    plan_run p = {.o = o,
                  .efficiency = o->efficiency > 0 ? o->efficiency : PLAN_DEFAULT_EFFICIENCY};
    engine_config ec = o->ec;
    ec.device_memory = o->card->memory;
    // the dtype the engine loads the model in on this card
    engine_memory_plan probe;
    if (engine_plan_dry_run(&ec, &p.mc, &probe, err) && !probe.page_bytes) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    llm_dtype stored = ec.model_dir ? p.mc.dtype : LLM_BF16;
    p.dtype = engine_weights_dtype(stored, ec.dtype, o->card->cc_major * 10 + o->card->cc_minor,
                                   &p.dtype_why);
    ec.dtype = (int)p.dtype;
    if (engine_resolve_limits(&ec, &p.mc, strcmp(o->card->name, "cpu") ? DEVICE_CUDA : DEVICE_CPU,
                              err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    p.mem = calloc((size_t)o->n_utils, sizeof *p.mem);
    p.mem_ok = calloc((size_t)o->n_utils, sizeof *p.mem_ok);
    if (!p.mem || !p.mem_ok) {
        free(p.mem), free(p.mem_ok);
        fprintf(stderr, "bench_engine: out of memory\n");
        return 1;
    }
    uint64_t weights = model_weight_bytes(&p.mc, p.dtype);
    uint64_t overhead = o->card->cc_major ? PLAN_GPU_OVERHEAD_BYTES : 0;
    for (int u = 0; u < o->n_utils; u++) {
        engine_config eu = ec;
        eu.gpu_memory_utilization = o->utils[u];
        p.mem_ok[u] = engine_plan_memory(&eu, &p.mc, weights, p.dtype, o->card->memory, overhead,
                                         &p.mem[u], err) == 0;
    }
    p.weight_read = plan_weight_read_bytes(&p.mc, weights, p.dtype);
    p.kv_tok = (double)p.mem[0].page_bytes / ec.block_size;
    if (!o->format || !strcmp(o->format, "table") || !strcmp(o->format, "md"))
        print_table(&p);
    else
        print_json_or_csv(&p, !strcmp(o->format, "csv"));
    free(p.mem), free(p.mem_ok);
    return 0;
}

// ---- this machine, for the CPU backend ----

// The CPU backend's matmul rate: x [rows, PROBE_DIM] by an fp16
// [PROBE_DIM, PROBE_DIM] matrix for rows up to PROBE_ROWS, the best of
// PROBE_REPS runs of each, TFLOP/s: the rate a step with several rows reaches.
#define PROBE_ROWS 64
#define PROBE_DIM 2048
#define PROBE_REPS 5

static double cpu_matmul_tflops(char *err) {
    backend *b = cpu_backend_create(err);
    size_t nw = (size_t)PROBE_DIM * PROBE_DIM, nx = (size_t)PROBE_ROWS * PROBE_DIM;
    uint16_t *w = malloc(nw * sizeof *w);
    float *x = malloc(nx * sizeof *x), *out = malloc(nx * sizeof *out);
    double best = INFINITY;
    if (b && w && x && out) {
        for (size_t i = 0; i < nw; i++) w[i] = f32_to_fp16((float)((i * 7919) % 201) / 100.0f - 1);
        for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 104729) % 203) / 101.0f - 1;
        bk_matrix m = {.data = w, .dtype = LLM_F16, .rows = PROBE_DIM, .cols = PROBE_DIM};
        for (int rows = 16; rows <= PROBE_ROWS; rows *= 2)
            for (int r = 0; r < PROBE_REPS; r++) {
                double t = llm_now();
                b->matmul(b, out, x, &m, NULL, rows, NULL);
                t = (llm_now() - t) * PROBE_ROWS / rows; // as seconds for PROBE_ROWS rows
                if (t < best) best = t;
            }
    } else if (b) {
        llm_errf(err, "out of memory");
    }
    if (b) b->destroy(b);
    free(w), free(x), free(out);
    return isfinite(best) ? 2.0 * PROBE_ROWS * nw / best / 1e12 : NAN;
}

int plan_card_cpu(plan_card *card, char *err) {
    device_info d;
    device_cpu_info(&d);
    double tflops = cpu_matmul_tflops(err);
    if (!(tflops > 0)) return -1;
    *card = (plan_card){.name = "cpu",
                        .label = "this machine's CPU (the CPU backend)",
                        .memory = d.free_bytes,
                        .bandwidth_gbs = bench_copy_bandwidth_gbs(),
                        .tflops = tflops,
                        .source = "measured now: available RAM, parallel memcpy GB/s (read + "
                                  "write), the CPU backend's fp16 matmul at 64 rows"};
    return 0;
}

int bench_plan_calibrate(const plan_opts *o) {
    char err[LLM_ERR_LEN];
    engine_config ec = o->ec;
    ec.device = DEVICE_CPU;
    mem_baseline mem0 = bench_baseline_now(DEVICE_CPU);
    engine *e = engine_create(&ec, err);
    if (!e) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    const model_config *mc = engine_model_config(e);
    engine_stats st;
    engine_get_stats(e, &st);
    llm_dtype dt = mc->dtype; // as loaded (the engine keeps the checkpoint's dtype)
    double weight_read = plan_weight_read_bytes(mc, st.weights, dt);
    double kv_tok = (double)st.page_bytes / st.block_size, ctx = o->input_len + o->output_len / 2.0;
    printf(
        "calibration on %s: %.1f GB/s copy bandwidth, %.3f TFLOP/s matmul; input %d, output %d\n",
        o->card->label, o->card->bandwidth_gbs, o->card->tflops, o->input_len, o->output_len);
    printf(
        "| batch | measured decode tokens/s | roofline tokens/s | achieved fraction | predicted at "
        "%.2f | error |\n|---|---|---|---|---|---|\n",
        o->efficiency > 0 ? o->efficiency : PLAN_DEFAULT_EFFICIENCY);
    int rc = 0;
    for (int i = 0; i < o->n_batches && rc == 0; i++) {
        int batch = (int)o->batches[i];
        run_result x = {0}, warm = {0};
        if (run_batch(e, batch, o->input_len, o->output_len, &mem0, 0, &warm, err) || !warm.ok ||
            run_batch(e, batch, o->input_len, o->output_len, &mem0, 1, &x, err) || !x.ok) {
            fprintf(stderr, "bench_engine: %s\n", x.ok || warm.ok ? err : "batch did not run");
            rc = 1;
        } else {
            double measured = (double)batch * (o->output_len - 1) / x.decode_s;
            plan_step roof = plan_decode_step(mc, weight_read, kv_tok, batch, ctx, o->card, 1.0);
            double eff = o->efficiency > 0 ? o->efficiency : PLAN_DEFAULT_EFFICIENCY;
            double predicted = batch / roof.seconds * eff;
            printf("| %d | %.1f | %.1f | %.2f | %.1f | %+.0f%% |\n", batch, measured,
                   batch / roof.seconds, measured * roof.seconds / batch, predicted,
                   (predicted / measured - 1) * 100);
        }
        run_free(&warm);
        run_free(&x);
    }
    engine_destroy(e);
    return rc;
}
