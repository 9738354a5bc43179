// int8 weights: the quantization rule (half a step), llm_quantize's files
// loading back, load-time quantization agreeing with them bit for bit, the
// CPU backend's fused I8 matmul and embedding, and the loader's errors.
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_simd.h"
#include "forward.h"
#include "harness.h"
#include "rig.h"
#include "model.h"
#include "quant.h"
#include "tiny_model.h"
#include "util.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float elem(const void *p, llm_dtype dt, long i) {
    if (dt == LLM_F16) return fp16_to_f32(((const uint16_t *)p)[i]);
    if (dt == LLM_BF16) return bf16_to_f32(((const uint16_t *)p)[i]);
    if (dt == LLM_I8) return (float)((const int8_t *)p)[i];
    return ((const float *)p)[i];
}

static float round_to(float v, llm_dtype dt) {
    if (dt == LLM_F16) return fp16_to_f32(f32_to_fp16(v));
    if (dt == LLM_BF16) return bf16_to_f32(f32_to_bf16(v));
    return v;
}

TEST(int8_row_within_half_a_step) {
    static const llm_dtype src_dts[] = {LLM_F32, LLM_F16, LLM_BF16};
    unsigned seed = 3;
    float src32[301];
    uint16_t src16[301];
    int8_t q[301];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int trial = 0; trial < 20; trial++) {
                llm_dtype sdt = src_dts[a], scdt = src_dts[b];
                int n = 1 + trial * 15;
                // magnitudes from 1e-9 (fp16 subnormal scales) to 1e3
                float mag = powf(10.0f, (float)(trial % 13) - 9.0f);
                for (int i = 0; i < n; i++) {
                    float v = frand(&seed) * mag;
                    src32[i] = v;
                    src16[i] = sdt == LLM_F16 ? f32_to_fp16(v) : f32_to_bf16(v);
                }
                const void *src = sdt == LLM_F32 ? (const void *)src32 : (const void *)src16;
                float s = quant_row_int8(q, src, sdt, n, scdt);
                CHECK(s > 0 && isfinite(s));
                CHECK(round_to(s, scdt) == s); // representable in the storage dtype
                double worst = 0;
                int qmax = 0;
                for (int i = 0; i < n; i++) {
                    double w = elem(src, sdt, i);
                    worst = fmax(worst, fabs(w - (double)q[i] * s) / s);
                    qmax = abs(q[i]) > qmax ? abs(q[i]) : qmax;
                }
                CHECK_MSG(worst <= 0.5, "error %g steps (src %s, scale %s, n %d, mag %g)", worst,
                          dtype_name(sdt), dtype_name(scdt), n, mag);
                CHECK(qmax <= QUANT_INT8_MAX);
                // the largest |w| lands near the top of the range
                int any_nonzero = 0;
                for (int i = 0; i < n; i++) any_nonzero |= elem(src, sdt, i) != 0.0f;
                // (unless the scale is an fp16 subnormal, coarser than the row)
                if (any_nonzero && (scdt != LLM_F16 || mag >= 1e-2f))
                    CHECK_MSG(qmax >= 120, "qmax %d", qmax);
            }
    float zeros[5] = {0};
    int8_t qz[5] = {1, 1, 1, 1, 1};
    CHECK(quant_row_int8(qz, zeros, LLM_F32, 5, LLM_F16) == 1.0f); // a zero row: scale 1, q 0
    for (int i = 0; i < 5; i++) CHECK_EQ(qz[i], 0);
    // round half to even, as numpy and torch round
    float half[3] = {127.0f, 2.5f, -0.5f};
    int8_t qh[3];
    CHECK(quant_row_int8(qh, half, LLM_F32, 3, LLM_F32) == 1.0f);
    CHECK_EQ(qh[1], 2);
    CHECK_EQ(qh[2], 0);
}

// --- CPU backend --------------------------------------------------------------

TEST(int8_simd_dot_agrees_with_generic_bitwise) {
    const cpu_simd *fast = cpu_simd_get(), *gen = cpu_simd_generic();
    unsigned seed = 5;
    float x[203];
    int8_t q[203];
    for (int i = 0; i < 203; i++) {
        x[i] = frand(&seed);
        q[i] = (int8_t)(frand(&seed) * 127);
    }
    for (int n = 1; n <= 203; n += 7) {
        CHECK(fast->dot(x, q, LLM_I8, n) == gen->dot(x, q, LLM_I8, n));
        float a[203], b[203];
        fast->to_f32(a, q, LLM_I8, n);
        gen->to_f32(b, q, LLM_I8, n);
        CHECK(memcmp(a, b, sizeof(float) * n) == 0);
        CHECK(a[n - 1] == (float)q[n - 1]);
    }
}

// dot4 (the decode loop: four rows at once) adds exactly as dot does, per row,
// for every weight dtype, in every SIMD version this CPU has.
TEST(cpu_simd_dot4_equals_dot_per_row) {
    const cpu_simd *gen = cpu_simd_generic();
    const char *names[] = {"generic", "avx2", "avx512"};
    static const llm_dtype dts[] = {LLM_F32, LLM_F16, LLM_BF16, LLM_I8};
    unsigned seed = 9;
    float x[203], wf[4 * 203];
    uint16_t wh[4 * 203], wb[4 * 203];
    int8_t wq[4 * 203];
    for (int i = 0; i < 203; i++) x[i] = frand(&seed);
    for (int i = 0; i < 4 * 203; i++) {
        wf[i] = frand(&seed);
        wh[i] = f32_to_fp16(wf[i]);
        wb[i] = f32_to_bf16(wf[i]);
        wq[i] = (int8_t)(wf[i] * 127);
    }
    const void *ws[] = {wf, wh, wb, wq};
    for (int v = 0; v < 3; v++) {
        const cpu_simd *fast = cpu_simd_named(names[v]);
        if (!fast) continue;
        for (int d = 0; d < 4; d++)
            for (int n = 1; n <= 203; n += 6) {
                size_t row_bytes = (size_t)n * dtype_size(dts[d]);
                float a[4], b[4];
                fast->dot4(a, x, ws[d], row_bytes, dts[d], n);
                gen->dot4(b, x, ws[d], row_bytes, dts[d], n);
                CHECK(memcmp(a, b, sizeof a) == 0);
                for (int r = 0; r < 4; r++)
                    CHECK(a[r] == fast->dot(x, (const char *)ws[d] + r * row_bytes, dts[d], n));
            }
    }
}

// Fused I8 matmul against the dequantized weights in double, on odd shapes;
// a token's row is the same bits alone (decode path) or batched (tiled path).
TEST(int8_cpu_matmul_matches_dequantized_reference) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    CHECK(b != NULL);
    if (!b) return;
    static const int shapes[][2] = {{37, 83}, {1, 9}, {5, 8}, {64, 64}, {130, 257}};
    unsigned seed = 11;
    for (int si = 0; si < 5; si++) {
        const int rows = shapes[si][0], cols = shapes[si][1], n = 70;
        float *w = malloc(sizeof(float) * rows * cols), *scales = malloc(sizeof(float) * rows);
        int8_t *q = malloc((size_t)rows * cols);
        float *x = malloc(sizeof(float) * n * cols), *out = malloc(sizeof(float) * n * rows);
        float *one = malloc(sizeof(float) * rows), *bias = malloc(sizeof(float) * rows);
        for (int i = 0; i < rows * cols; i++) w[i] = frand(&seed) * (1 + i % 7);
        for (int i = 0; i < n * cols; i++) x[i] = frand(&seed);
        for (int i = 0; i < rows; i++) bias[i] = frand(&seed);
        quant_matrix_int8(q, scales, w, LLM_F32, rows, cols, LLM_F16);
        bk_matrix m = {q, LLM_I8, rows, cols, scales};
        for (int use_bias = 0; use_bias < 2; use_bias++) {
            b->matmul(b, out, x, &m, use_bias ? bias : NULL, n, NULL);
            double worst = 0;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double s = use_bias ? bias[r] : 0;
                    for (int k = 0; k < cols; k++)
                        s += (double)x[t * cols + k] * ((double)q[r * cols + k] * scales[r]);
                    worst = fmax(worst, fabs(s - out[t * rows + r]));
                }
            CHECK_MSG(worst < 1e-3, "%dx%d: max abs error %g", rows, cols, worst);
            for (int t = 0; t < n; t += 9) {
                b->matmul(b, one, x + t * cols, &m, use_bias ? bias : NULL, 1, NULL);
                CHECK(memcmp(one, out + t * rows, sizeof(float) * rows) == 0);
            }
        }
        free(w), free(scales), free(q), free(x), free(out), free(one), free(bias);
    }
    b->destroy(b);
}

TEST(int8_cpu_embedding_dequantizes_rows) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    if (!b) return;
    int8_t q[3 * 5] = {1, -2, 3, 127, -127, 0, 0, 0, 0, 0, 5, 6, 7, 8, 9};
    float scales[3] = {0.5f, 2.0f, 0.25f}, out[2 * 5];
    int32_t ids[2] = {2, 0};
    bk_matrix t = {q, LLM_I8, 3, 5, scales};
    b->embedding(b, out, &t, ids, 2);
    CHECK(out[0] == 1.25f && out[4] == 2.25f);
    CHECK(out[5] == 0.5f && out[8] == 63.5f && out[9] == -63.5f);
    b->destroy(b);
}

// --- files ----------------------------------------------------------------------

static char *make_tmpdir(void) {
    static char buf[8][64];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 64, "/tmp/llm_int8_XXXXXX");
    return mkdtemp(p);
}

static void rm_rf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

// llm_quantize next to this test binary, else build/bin's (the ASan build
// makes only unit_tests). NULL when neither is there.
static const char *quantize_bin(void) {
    static char path[PATH_MAX + 16];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(path, sizeof path, "%s/llm_quantize", dirname(exe));
        if (access(path, X_OK) == 0) return path;
    }
    return access("build/bin/llm_quantize", X_OK) == 0 ? "build/bin/llm_quantize" : NULL;
}

static int run_quantize(const char *bin, const char *in, const char *out, const char *extra) {
    char cmd[PATH_MAX + 512];
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --out '%s' %s > /dev/null", bin, in, out, extra);
    return system(cmd);
}

static model_weights *load(const char *dir, quant_kind q, char *err) {
    model_load_opts o = {.matrix_dtype = -1, .quantize = q};
    return model_load(dir, &o, err);
}

typedef struct {
    const llm_tensor *v[64];
    char names[64][96]; // copies: model_foreach_tensor's names live only during the call
    int n;
} tlist;

static int collect(const char *name, const llm_tensor *t, void *ctx) {
    tlist *l = ctx;
    if (l->n < 64) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->v[l->n++] = t;
    }
    return 0;
}

static uint64_t numel(const llm_tensor *t) {
    return (uint64_t)t->shape[0] * (uint64_t)(t->ndim == 2 ? t->shape[1] : 1);
}

// quantize -> load -> dequantize gives back every weight within half a step;
// what is not a Linear weight comes back unchanged; quantizing at load gives
// the same bits; the byte counts match the analytic model.
TEST(int8_llm_quantize_round_trip) {
    const char *bin = quantize_bin();
    if (!bin) {
        harness_skip("llm_quantize not built");
        return;
    }
    const char *src = tiny_model_dir();
    char *out = make_tmpdir();
    CHECK(src && out);
    if (!src || !out) return;
    CHECK_EQ(run_quantize(bin, src, out, ""), 0);
    char err[LLM_ERR_LEN] = "";
    model_weights *f = load(src, QUANT_NONE, err), *q = load(out, QUANT_NONE, err),
                  *lq = load(src, QUANT_INT8, err);
    CHECK_MSG(f && q && lq, "%s", err);
    if (f && q && lq) {
        tlist a = {0}, b = {0}, c = {0};
        model_foreach_tensor(f, collect, &a);
        model_foreach_tensor(q, collect, &b);
        model_foreach_tensor(lq, collect, &c);
        CHECK_EQ(a.n, b.n);
        int n_i8 = 0;
        for (int i = 0; i < a.n && i < b.n; i++) {
            const llm_tensor *w = a.v[i], *t = b.v[i], *u = c.v[i];
            int linear = w->ndim == 2 && strstr(a.names[i], "embed_tokens") == NULL;
            CHECK_EQ(t->dtype, linear ? LLM_I8 : w->dtype);
            if (t->dtype != LLM_I8) {
                CHECK(memcmp(w->data, t->data, numel(w) * dtype_size(w->dtype)) == 0);
                continue;
            }
            n_i8++;
            double worst = 0;
            for (uint64_t k = 0; k < numel(w); k++) {
                long r = (long)(k / (uint64_t)w->shape[1]);
                double deq = (double)((const int8_t *)t->data)[k] * t->scale[r];
                worst = fmax(worst, fabs(elem(w->data, w->dtype, (long)k) - deq) / t->scale[r]);
            }
            CHECK_MSG(worst <= 0.5, "%s: %g steps", a.names[i], worst);
            CHECK(u->dtype == LLM_I8 && memcmp(u->data, t->data, numel(t)) == 0 &&
                  memcmp(u->scale, t->scale, sizeof(float) * t->shape[0]) == 0);
            // scales were stored in the model's dtype (F16)
            for (long r = 0; r < t->shape[0]; r++)
                CHECK(round_to(t->scale[r], LLM_F16) == t->scale[r]);
        }
        CHECK_EQ(n_i8, 2 * 7);
        CHECK_EQ(q->cfg.quant, QUANT_INT8);
        CHECK_EQ(q->weight_bytes, model_weight_bytes(&q->cfg, LLM_F16));
        CHECK_EQ(lq->weight_bytes, q->weight_bytes);
        CHECK_EQ(q->embed_bytes, f->embed_bytes);
        CHECK_EQ(q->weight_bytes + q->saved_bytes, f->weight_bytes);
        CHECK(lq->st == NULL); // quantized at load: nothing stays mapped
    }
    model_free(f), model_free(q), model_free(lq);
    rm_rf(out);
}

static void run_logits(const model_weights *m, float *logits, int n) {
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    forward_opts fo = {
        .max_tokens = 32, .max_seqs = 1, .max_context = 32, .block_size = 16, .num_blocks = 2};
    forward_ctx *f = b ? forward_create(b, m, &fo, err) : NULL;
    CHECK_MSG(f != NULL, "%s", err);
    if (f) {
        int ids[32];
        const int pages[2] = {0, 1};
        for (int i = 0; i < n; i++) ids[i] = (i * 37 + 5) % m->cfg.vocab_size;
        rig_run(f, &(rig_chunk){ids, 0, n, pages}, 1, 16, 2, logits, 1);
    }
    forward_destroy(f);
    if (b) b->destroy(b);
}

// An int8 model runs: its logits equal those of the same model with the
// dequantized weights stored as F32 (up to float rounding), for every
// architecture, with and without quantized embeddings; and model_save writes
// it back so that it loads bit for bit.
TEST(int8_forward_matches_dequantized_model) {
    for (int arch = ARCH_LLAMA; arch <= ARCH_QWEN3; arch++)
        for (int emb = 0; emb < 2; emb++) {
            char err[LLM_ERR_LEN] = "";
            model_config c = tiny_config((model_arch)arch);
            model_weights *q = model_random(&c, 7, LLM_F16, err);
            model_weights *d = model_random(&c, 7, LLM_F32, err);
            CHECK_MSG(q && d && model_quantize_int8(q, emb, err) == 0, "%s", err);
            if (!q || !d) {
                model_free(q), model_free(d);
                continue;
            }
            tlist lq = {0}, ld = {0};
            model_foreach_tensor(q, collect, &lq);
            model_foreach_tensor(d, collect, &ld);
            for (int i = 0; i < lq.n; i++) {
                const llm_tensor *t = lq.v[i];
                float *dst = ld.v[i]->data;
                if (t->dtype == LLM_I8)
                    for (uint64_t k = 0; k < numel(t); k++)
                        dst[k] = (float)((const int8_t *)t->data)[k] *
                                 t->scale[k / (uint64_t)t->shape[1]];
                else
                    for (uint64_t k = 0; k < numel(t); k++)
                        dst[k] = elem(t->data, t->dtype, (long)k);
            }
            const int n = 20, V = c.vocab_size;
            float *lg_q = malloc(sizeof(float) * n * V), *lg_d = malloc(sizeof(float) * n * V);
            run_logits(q, lg_q, n);
            run_logits(d, lg_d, n);
            double worst = 0;
            for (int i = 0; i < n * V; i++) worst = fmax(worst, fabs(lg_q[i] - lg_d[i]));
            CHECK_MSG(worst < 2e-3, "arch %d emb %d: max |logit diff| %g", arch, emb, worst);
            // saved and loaded back: the same logits, bit for bit
            char *dir = make_tmpdir();
            model_weights *back = NULL;
            CHECK_MSG(model_save(q, dir, err) == 0 && (back = load(dir, QUANT_NONE, err)), "%s",
                      err);
            if (back) {
                CHECK_EQ(back->cfg.quant, QUANT_INT8);
                CHECK_EQ(back->cfg.quant_embeddings, emb);
                CHECK_EQ(back->weight_bytes, q->weight_bytes);
                CHECK_EQ(back->weight_bytes, model_weight_bytes(&back->cfg, LLM_F16));
                run_logits(back, lg_d, n);
                CHECK(memcmp(lg_q, lg_d, sizeof(float) * n * V) == 0);
            }
            model_free(back);
            rm_rf(dir);
            free(lg_q), free(lg_d);
            model_free(q), model_free(d);
        }
}

// --- loader errors ----------------------------------------------------------------

#define QCFG_HEAD                                                                                  \
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":1,"        \
    "\"num_attention_heads\":4,\"intermediate_size\":96,\"vocab_size\":100,"                       \
    "\"quantization_config\":"
#define QGROUP(weights, acts)                                                                      \
    "{\"quant_method\":\"compressed-tensors\",\"format\":\"int-quantized\",\"config_groups\":"     \
    "{\"group_0\":{\"targets\":[\"Linear\"],\"weights\":" weights ",\"input_activations\":" acts   \
    "}},\"ignore\":[\"lm_head\"]}}"
#define W(bits, sym, strat)                                                                        \
    "{\"num_bits\":" bits ",\"type\":\"int\",\"symmetric\":" sym ",\"strategy\":\"" strat "\"}"

TEST(int8_config_accepts_and_refuses_schemes) {
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(
        config_parse(QCFG_HEAD QGROUP(W("8", "true", "channel"), "null"), "c.json", &c, err) == 0,
        "%s", err);
    CHECK_EQ(c.quant, QUANT_INT8);
    CHECK_EQ(c.quant_embeddings, 0);
    CHECK(config_parse(QCFG_HEAD QGROUP(W("8", "true", "tensor"), "null"), "c.json", &c, err) == 0);
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {QCFG_HEAD QGROUP(W("8", "true", "group"), "null"), "strategy group"},
        {QCFG_HEAD QGROUP(W("8", "true", "block"), "null"), "strategy block"},
        {QCFG_HEAD QGROUP(W("4", "true", "channel"), "null"), "num_bits 4"},
        {QCFG_HEAD QGROUP(W("8", "false", "channel"), "null"), "asymmetric"},
        {QCFG_HEAD QGROUP(W("8", "true", "channel"), "{\"num_bits\":8}"), "input_activations"},
        {QCFG_HEAD "{\"quant_method\":\"gptq\",\"bits\":4}}", "quant_method gptq"},
        {QCFG_HEAD "{\"quant_method\":\"compressed-tensors\",\"format\":\"pack-quantized\","
                   "\"config_groups\":{\"g\":{\"weights\":" W("8", "true", "channel") "}}}}",
         "pack-quantized"},
        {QCFG_HEAD "{\"quant_method\":\"compressed-tensors\",\"format\":\"int-quantized\","
                   "\"kv_cache_scheme\":{\"num_bits\":8},\"config_groups\":{\"g\":{\"weights\":" W(
                       "8", "true", "channel") "}}}}",
         "kv_cache_scheme"},
        {QCFG_HEAD "{\"quant_method\":\"compressed-tensors\",\"format\":\"int-quantized\"}}",
         "config_groups"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_MSG(config_parse(bad[i].json, "c.json", &c, err) != 0, "case %zu accepted", i);
        CHECK_MSG(strstr(err, bad[i].needle) && strstr(err, "c.json"), "case %zu: '%s' lacks '%s'",
                  i, err, bad[i].needle);
    }
}

// Writes a one-layer int8 tiny model into dir as another tool might, with
// k_proj's scale given shape scale_shape[scale_ndim] (or dropped), a
// weight_zero_point added (zero_point 1: ones, 2: zeros), and config.json
// with or without its quantization_config. Returns dir, or NULL.
static const char *write_variant(const char *dir, const int64_t *scale_shape, int scale_ndim,
                                 int zero_point, int drop_scale, int with_quant_config) {
    char err[LLM_ERR_LEN] = "";
    model_config c = tiny_config(ARCH_LLAMA);
    c.n_layers = 1;
    model_weights *m = model_random(&c, 3, LLM_F16, err);
    if (!m || model_quantize_int8(m, 0, err) || model_save(m, dir, err)) {
        fprintf(stderr, "%s\n", err);
        model_free(m);
        return NULL;
    }
    tlist l = {0};
    model_foreach_tensor(m, collect, &l);
    st_write_tensor t[80];
    uint16_t sc[1024] = {0};
    int8_t zp[1024]; // zero_point 1: ones (asymmetric), 2: zeros (older files' symmetric)
    memset(zp, zero_point == 2 ? 0 : 1, sizeof zp);
    int n = 0;
    const char *target = "model.layers.0.self_attn.k_proj.weight";
    for (int i = 0; i < l.n; i++) {
        const llm_tensor *x = l.v[i];
        t[n] =
            (st_write_tensor){l.names[i], x->dtype, x->ndim, {x->shape[0], x->shape[1]}, x->data};
        n++;
        if (x->dtype != LLM_I8) continue;
        int is_target = strcmp(l.names[i], target) == 0;
        if (is_target && drop_scale) continue;
        static char names[64][112];
        snprintf(names[i], sizeof names[i], "%s_scale", l.names[i]);
        for (long r = 0; r < x->shape[0]; r++) sc[r] = f32_to_fp16(x->scale[r]);
        // scales of the non-target tensors: a fresh copy each (the data is shared below)
        uint16_t *own = malloc(sizeof(uint16_t) * (size_t)x->shape[0] * 4);
        for (long r = 0; r < x->shape[0] * 4; r++) own[r] = sc[r % x->shape[0]];
        t[n] = (st_write_tensor){names[i], LLM_F16, 2, {x->shape[0], 1}, own};
        if (is_target && scale_ndim >= 0) {
            t[n].ndim = scale_ndim;
            for (int d = 0; d < scale_ndim; d++) t[n].shape[d] = scale_shape[d];
        }
        n++;
        if (is_target && zero_point) {
            static char zname[112];
            snprintf(zname, sizeof zname, "%s_zero_point", l.names[i]);
            t[n++] = (st_write_tensor){zname, LLM_I8, 2, {x->shape[0], 1}, zp};
        }
    }
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = st_write_file(path, t, n, NULL, 0, err);
    for (int i = 0; i < n; i++)
        if (t[i].dtype == LLM_F16 && strstr(t[i].name, "_scale")) free((void *)t[i].data);
    if (!with_quant_config) {
        c.quant = QUANT_NONE;
        char *json = config_to_json(&c);
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        if (f) fputs(json, f), fclose(f);
        free(json);
    }
    model_free(m);
    if (rc) fprintf(stderr, "%s\n", err);
    return rc ? NULL : dir;
}

TEST(int8_loader_checks_scales) {
    static const struct {
        int64_t shape[2];
        int ndim, zero_point, drop, quant_config;
        const char *needle; // NULL: loads
    } cases[] = {
        {{32, 1}, 2, 0, 0, 1, NULL}, // k_proj: 2 kv heads x 16 rows
        {{32}, 1, 0, 0, 1, NULL},
        {{1}, 1, 0, 0, 1, NULL}, // per tensor: broadcast
        {{0}, 0, 0, 0, 1, NULL}, // per tensor, a scalar
        {{32, 2}, 2, 0, 0, 1, "grouped scales (2 groups per row)"},
        {{33, 1}, 2, 0, 0, 1, "expected [32, 1]"},
        {{32, 1}, 2, 2, 0, 1, NULL}, // an all-zero weight_zero_point
        {{32, 1}, 2, 1, 0, 1, "asymmetric"},
        {{32, 1}, 2, 0, 1, 1, "has no scale tensor"},
        {{32, 1}, 2, 0, 0, 0, "no compressed-tensors int8 quantization_config"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = make_tmpdir();
        if (!write_variant(dir, cases[i].shape, cases[i].ndim, cases[i].zero_point, cases[i].drop,
                           cases[i].quant_config)) {
            CHECK_MSG(0, "case %zu: cannot write", i);
            continue;
        }
        char err[LLM_ERR_LEN] = "";
        model_weights *m = load(dir, QUANT_NONE, err);
        if (!cases[i].needle) {
            CHECK_MSG(m != NULL, "case %zu: %s", i, err);
            const llm_tensor *k = m ? &m->layers[0].wk : NULL;
            if (k && (cases[i].ndim == 0 || cases[i].shape[0] == 1)) // one scale: broadcast
                for (int r = 1; r < k->shape[0]; r++) CHECK(k->scale[r] == k->scale[0]);
        } else {
            CHECK_MSG(m == NULL, "case %zu loaded", i);
            CHECK_MSG(strstr(err, cases[i].needle) && strstr(err, dir) &&
                          (strstr(err, "k_proj") || !cases[i].quant_config),
                      "case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
        }
        model_free(m);
        rm_rf(dir);
    }
}
