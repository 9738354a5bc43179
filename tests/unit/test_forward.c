// The forward pass against a naive dense implementation written here from the
// transformers modelling code, and its invariances: one pass == token by
// token, batched == alone, scrambled pages == contiguous pages.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "harness.h"
#include "rig.h"
#include "tiny_model.h"
#include "util.h"

// --- naive reference: dense, double accumulation, K/V rounded like the cache
// (bf16 for a bf16 model, else fp16), each layer's sliding window applied

static float w_at(const llm_tensor *t, long i) {
    if (t->dtype == LLM_F16) return fp16_to_f32(((const uint16_t *)t->data)[i]);
    if (t->dtype == LLM_BF16) return bf16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}

static void ref_linear(float *out, const float *x, const llm_tensor *w, const llm_tensor *bias) {
    for (long r = 0; r < w->shape[0]; r++) {
        double s = 0;
        for (long k = 0; k < w->shape[1]; k++) s += (double)x[k] * w_at(w, r * w->shape[1] + k);
        out[r] = (float)s + (bias && bias->data ? ((const float *)bias->data)[r] : 0.0f);
    }
}

static void ref_rmsnorm(float *out, const float *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = (float)(x[i] * inv * w[i]);
}

static void ref_rope(float *v, int pos, int head_dim, const model_config *c) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, 2.0 * i / head_dim);
        if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
            double wl = 2 * M_PI / f, lo = c->rope_orig_max_position / c->rope_low_freq_factor;
            double hi = c->rope_orig_max_position / c->rope_high_freq_factor;
            if (wl > lo)
                f /= c->rope_factor;
            else if (wl >= hi) {
                double sm = (c->rope_orig_max_position / wl - c->rope_low_freq_factor) /
                            (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - sm) * f / c->rope_factor + sm * f;
            }
        }
        double a = pos * f, x0 = v[i], x1 = v[i + half];
        v[i] = (float)(x0 * cos(a) - x1 * sin(a));
        v[i + half] = (float)(x1 * cos(a) + x0 * sin(a));
    }
}

static float h(float x, int bf16) {
    return bf16 ? bf16_to_f32(f32_to_bf16(x)) : fp16_to_f32(f32_to_fp16(x));
}

// Logits of the last position of ids[0..n) (all positions when all != NULL).
static void ref_forward(const model_weights *m, const int *ids, int n, float *last, float *all) {
    const model_config *c = &m->cfg;
    int dim = c->dim, hd = c->head_dim, qd = config_q_dim(c), kvd = config_kv_dim(c);
    float *x = calloc((size_t)n * dim, 4), *xb = malloc(dim * 4), *q = malloc((size_t)n * qd * 4);
    float *k = malloc((size_t)n * kvd * 4), *v = malloc((size_t)n * kvd * 4), *att = malloc(qd * 4);
    float *o = malloc(dim * 4), *g = malloc(c->hidden_dim * 4), *u = malloc(c->hidden_dim * 4);
    double *sc = malloc(n * sizeof(double));
    for (int t = 0; t < n; t++)
        for (int j = 0; j < dim; j++) x[t * dim + j] = w_at(&m->embed, (long)ids[t] * dim + j);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->layers[l];
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(xb, x + t * dim, L->attn_norm.data, dim, c->rms_eps);
            ref_linear(q + t * qd, xb, &L->wq, &L->bq);
            ref_linear(k + t * kvd, xb, &L->wk, &L->bk);
            ref_linear(v + t * kvd, xb, &L->wv, &L->bv);
            for (int hh = 0; hh < c->n_heads; hh++) {
                if (c->qk_norm)
                    ref_rmsnorm(q + t * qd + hh * hd, q + t * qd + hh * hd, L->q_norm.data, hd,
                                c->rms_eps);
                ref_rope(q + t * qd + hh * hd, t, hd, c);
            }
            for (int hh = 0; hh < c->n_kv_heads; hh++) {
                if (c->qk_norm)
                    ref_rmsnorm(k + t * kvd + hh * hd, k + t * kvd + hh * hd, L->k_norm.data, hd,
                                c->rms_eps);
                ref_rope(k + t * kvd + hh * hd, t, hd, c);
            }
            for (int j = 0; j < kvd; j++) {
                k[t * kvd + j] = h(k[t * kvd + j], m->embed.dtype == LLM_BF16);
                v[t * kvd + j] = h(v[t * kvd + j], m->embed.dtype == LLM_BF16);
            }
        }
        const int w = config_layer_window(c, l);
        for (int t = 0; t < n; t++) {
            const int s0 = w > 0 && t - w + 1 > 0 ? t - w + 1 : 0; // keys t - w < s <= t
            for (int hh = 0; hh < c->n_heads; hh++) {
                int kh = hh / (c->n_heads / c->n_kv_heads);
                double mx = -1e300, sum = 0;
                for (int s = s0; s <= t; s++) {
                    double d = 0;
                    for (int j = 0; j < hd; j++)
                        d += (double)q[t * qd + hh * hd + j] * k[s * kvd + kh * hd + j];
                    sc[s] = d / sqrt(hd);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int s = s0; s <= t; s++) sum += (sc[s] = exp(sc[s] - mx));
                for (int j = 0; j < hd; j++) {
                    double a = 0;
                    for (int s = s0; s <= t; s++) a += sc[s] / sum * v[s * kvd + kh * hd + j];
                    att[hh * hd + j] = (float)a;
                }
            }
            ref_linear(o, att, &L->wo, NULL);
            for (int j = 0; j < dim; j++) x[t * dim + j] += o[j];
            ref_rmsnorm(xb, x + t * dim, L->ffn_norm.data, dim, c->rms_eps);
            ref_linear(g, xb, &L->w_gate, NULL);
            ref_linear(u, xb, &L->w_up, NULL);
            for (int j = 0; j < c->hidden_dim; j++)
                g[j] = (float)(g[j] / (1 + exp(-(double)g[j])) * u[j]);
            ref_linear(o, g, &L->w_down, NULL);
            for (int j = 0; j < dim; j++) x[t * dim + j] += o[j];
        }
    }
    for (int t = 0; t < n; t++) {
        if (!all && t != n - 1) continue;
        ref_rmsnorm(xb, x + t * dim, m->final_norm.data, dim, c->rms_eps);
        ref_linear(all ? all + (size_t)t * c->vocab_size : last, xb, &m->lm_head, NULL);
    }
    free(x), free(xb), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(sc);
}

// --- driver: sequences with their own page lists ------------------------------------

#define BS 4 // small pages so sequences span many
#define NB 64

typedef struct {
    forward_ctx *f;
    backend *b;
    const model_weights *m;
} rig;

static int rig_open(rig *r, const model_weights *m, int max_tokens) {
    char err[LLM_ERR_LEN] = "";
    r->m = m;
    r->b = cpu_backend_create(err);
    forward_opts o = {.max_tokens = max_tokens,
                      .max_seqs = 8,
                      .max_context = 64,
                      .block_size = BS,
                      .num_blocks = NB};
    r->f = r->b ? forward_create(r->b, m, &o, err) : NULL;
    CHECK_MSG(r->f != NULL, "%s", err);
    return r->f ? 0 : -1;
}

static void rig_close(rig *r) {
    forward_destroy(r->f);
    if (r->b) r->b->destroy(r->b);
}

// Runs chunks: seq s gets ids[s][done[s] .. done[s] + len[s]) in one batch.
static int run_batch(rig *r, int n_seqs, const int *const *ids, const int *done, const int *len,
                     const int (*pages)[16], float *logits, int all) {
    rig_chunk ch[8];
    for (int s = 0; s < n_seqs; s++) ch[s] = (rig_chunk){ids[s], done[s], len[s], pages[s]};
    return rig_run(r->f, ch, n_seqs, BS, 16, logits, all);
}

static const int pages_a[16] = {5, 3, 60, 1, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29};
static const int pages_b[16] = {2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32};
static const int pages_c[16] = {40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55};

static double max_rel_diff(const float *a, const float *b, int n) {
    double amax = 0, d = 0;
    for (int i = 0; i < n; i++) {
        amax = fmax(amax, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return d / (amax > 0 ? amax : 1);
}

TEST(forward_matches_naive_reference_every_arch) {
    for (int arch = 0; arch <= ARCH_QWEN3; arch++) {
        char err[LLM_ERR_LEN] = "";
        model_config c = tiny_config((model_arch)arch);
        for (int dt = 0; dt < 3; dt++) {
            if (dt == 2) { // sliding windows of 5 (23 tokens): layer 1, or both for Mistral
                c.sliding_window = 5;
                c.layer_sliding[0] = arch == ARCH_MISTRAL;
                c.layer_sliding[1] = 1;
            }
            model_weights *m = model_random(&c, 11 + arch, dt ? LLM_BF16 : LLM_F16, err);
            rig r;
            if (!m || rig_open(&r, m, 64)) return;
            int ids[23];
            for (int i = 0; i < 23; i++) ids[i] = (i * 37 + arch) % c.vocab_size;
            const int *idp[1] = {ids};
            int done[1] = {0}, len[1] = {23};
            float got[23 * 100], want[23 * 100];
            const int(*pg)[16] = &pages_a;
            run_batch(&r, 1, idp, done, len, pg, got, 1);
            ref_forward(m, ids, 23, NULL, want);
            double d = max_rel_diff(got, want, 23 * c.vocab_size);
            CHECK_MSG(d < 2e-3, "arch %d dtype %d: max relative logit difference %g", arch, dt, d);
            rig_close(&r);
            model_free(m);
        }
    }
}

// The prompt in one pass, in chunks, or token by token: bit-identical logits.
TEST(forward_one_pass_equals_token_by_token) {
    char err[LLM_ERR_LEN] = "";
    model_config c = tiny_config(ARCH_QWEN3);
    model_weights *m = model_random(&c, 3, LLM_F16, err);
    rig r;
    if (!m || rig_open(&r, m, 64)) return;
    int ids[30];
    for (int i = 0; i < 30; i++) ids[i] = (i * 13 + 5) % c.vocab_size;
    const int *idp[1] = {ids};
    const int(*pg)[16] = &pages_b;
    float one[100], step[100], chunk[100];
    int done[1] = {0}, len[1] = {30};
    run_batch(&r, 1, idp, done, len, pg, one, 0);
    for (int p = 0; p < 30; p++) {
        done[0] = p;
        len[0] = 1;
        run_batch(&r, 1, idp, done, len, pg, step, 0);
    }
    for (int p = 0; p < 30; p += 7) {
        done[0] = p;
        len[0] = p + 7 <= 30 ? 7 : 30 - p;
        run_batch(&r, 1, idp, done, len, pg, chunk, 0);
    }
    CHECK(memcmp(one, step, sizeof one) == 0);
    CHECK(memcmp(one, chunk, sizeof one) == 0);
    rig_close(&r);
    model_free(m);
}

// Three sequences in one batch (a prefill chunk, a decode, a longer prefill)
// give exactly the logits each gives alone, whatever pages they sit in.
TEST(forward_batch_invariance) {
    char err[LLM_ERR_LEN] = "";
    model_config c = tiny_config(ARCH_QWEN2);
    model_weights *m = model_random(&c, 5, LLM_BF16, err);
    rig r;
    if (!m || rig_open(&r, m, 64)) return;
    int a[20], b[20], d[20];
    for (int i = 0; i < 20; i++)
        a[i] = (i * 7 + 1) % 100, b[i] = (i * 11 + 2) % 100, d[i] = (i * 3 + 9) % 100;
    const int *ia[1] = {a}, *ib[1] = {b}, *id[1] = {d};
    const int(*pa)[16] = &pages_a, (*pb)[16] = &pages_b, (*pc)[16] = &pages_c;
    int zero[1] = {0}, la[1] = {9}, l12[1] = {12}, one[1] = {1}, twelve[1] = {12}, ld[1] = {20};
    float a_alone[100], b_alone[100], d_alone[100], scratch[100];
    run_batch(&r, 1, ia, zero, la, pa, a_alone, 0);
    run_batch(&r, 1, ib, zero, l12, pb, scratch, 0);   // b's first 12 tokens into the cache
    run_batch(&r, 1, ib, twelve, one, pb, b_alone, 0); // then its 13th as a decode
    run_batch(&r, 1, id, zero, ld, pc, d_alone, 0);
    // together: a and d prefill again (same pages, same K/V), b decodes again
    const int *ids3[3] = {a, b, d};
    int done3[3] = {0, 12, 0}, len3[3] = {9, 1, 20};
    int pages3[3][16];
    memcpy(pages3[0], pages_a, sizeof pages_a);
    memcpy(pages3[1], pages_b, sizeof pages_b);
    memcpy(pages3[2], pages_c, sizeof pages_c);
    float together[3 * 100];
    run_batch(&r, 3, ids3, done3, len3, (const int(*)[16])pages3, together, 0);
    CHECK(memcmp(together, a_alone, sizeof a_alone) == 0);
    CHECK(memcmp(together + 100, b_alone, sizeof b_alone) == 0);
    CHECK(memcmp(together + 200, d_alone, sizeof d_alone) == 0);
    rig_close(&r);
    model_free(m);
}

TEST(forward_rejects_bad_batches) {
    char err[LLM_ERR_LEN] = "";
    model_config c = tiny_config(ARCH_LLAMA);
    model_weights *m = model_random(&c, 1, LLM_F16, err);
    rig r;
    if (!m || rig_open(&r, m, 8)) return;
    int32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, pos[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8},
            slot[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    int32_t qs[2] = {0, 9}, ctx[1] = {9}, bt[16] = {0, 1, 2, 3};
    float logits[100];
    forward_batch b = {.n_tokens = 9,
                       .n_seqs = 1,
                       .token_ids = tok,
                       .positions = pos,
                       .slot_mapping = slot,
                       .query_start = qs,
                       .context_len = ctx,
                       .block_tables = bt,
                       .max_blocks = 16};
    CHECK(forward_run(r.f, &b, logits, err) == -1);
    CHECK_CONTAINS(err, "9 tokens in a batch (limit 8)");
    b.n_tokens = 3;
    qs[1] = 3;
    ctx[0] = 3;
    tok[1] = 100;
    CHECK(forward_run(r.f, &b, logits, err) == -1);
    CHECK_CONTAINS(err, "token id 100 out of range");
    tok[1] = 2;
    ctx[0] = 2; // context shorter than the new tokens
    CHECK(forward_run(r.f, &b, logits, err) == -1);
    ctx[0] = 3;
    CHECK_MSG(forward_run(r.f, &b, logits, err) == 0, "%s", err);
    rig_close(&r);
    model_free(m);
}

// forward_run_argmax gives each wanted row's argmax of forward_run's logits,
// for the last rows of several sequences and for every row (more rows than
// one logits workspace holds, so the ids come from several chunks).
TEST(forward_run_argmax_is_argmax_of_logits) {
    char err[LLM_ERR_LEN] = "";
    model_config c = tiny_config(ARCH_LLAMA);
    model_weights *m = model_random(&c, 9, LLM_F16, err);
    rig r;
    if (!m || rig_open(&r, m, 64)) return;
    int a[30], b[30];
    for (int i = 0; i < 30; i++) a[i] = (i * 17 + 3) % 100, b[i] = (i * 29 + 1) % 100;
    const int *ids2[2] = {a, b};
    int done[2] = {0, 0}, len[2] = {30, 11};
    int pages2[2][16];
    memcpy(pages2[0], pages_a, sizeof pages_a);
    memcpy(pages2[1], pages_b, sizeof pages_b);
    static float logits[41 * 100];
    for (int all = 0; all <= 1; all++) {
        const int rows = all ? 41 : 2;
        if (run_batch(&r, 2, ids2, done, len, (const int(*)[16])pages2, logits, all)) break;
        int32_t tok[41], pos[41], slot[41], qs[3] = {0, 30, 41}, ctx[2] = {30, 11}, bt[2 * 16];
        for (int i = 0; i < 41; i++) {
            int s = i >= 30, p = i - (s ? 30 : 0);
            tok[i] = ids2[s][p];
            pos[i] = p;
            slot[i] = pages2[s][p / BS] * BS + p % BS;
        }
        memcpy(bt, pages2, sizeof bt);
        forward_batch fb = {.n_tokens = 41,
                            .n_seqs = 2,
                            .token_ids = tok,
                            .positions = pos,
                            .slot_mapping = slot,
                            .query_start = qs,
                            .context_len = ctx,
                            .block_tables = bt,
                            .max_blocks = 16,
                            .all_logits = all};
        int32_t got[41], want[41];
        for (int i = 0; i < 41; i++) got[i] = -7;
        CHECK_MSG(forward_run_argmax(r.f, &fb, got, err) == 0, "%s", err);
        r.b->argmax(r.b, want, logits, rows, c.vocab_size);
        for (int i = 0; i < rows; i++)
            CHECK_MSG(got[i] == want[i] && want[i] >= 0, "all_logits %d row %d: %d, want %d", all,
                      i, got[i], want[i]);
    }
    rig_close(&r);
    model_free(m);
}

// The memory plan's activation figure is forward_workspace_estimate: it must
// be what forward_create allocates, to the byte, for every architecture and
// a spread of limits.
TEST(forward_workspace_estimate_is_what_create_allocates) {
    const forward_opts opts[] = {
        {.max_tokens = 1, .max_seqs = 1, .max_context = 8, .block_size = 4},
        {.max_tokens = 64, .max_seqs = 8, .max_context = 64, .block_size = 16},
        {.max_tokens = 100, .max_seqs = 40, .max_context = 100, .block_size = 32},
    };
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    CHECK_MSG(b != NULL, "%s", err);
    for (int arch = 0; b && arch <= ARCH_QWEN3; arch++) {
        model_config cfg = tiny_config((model_arch)arch);
        model_weights *m = model_random(&cfg, 7, LLM_F16, err);
        CHECK_MSG(m != NULL, "%s", err);
        for (int i = 0; m && i < (int)(sizeof opts / sizeof *opts); i++) {
            forward_ctx *f = forward_create(b, m, &opts[i], err);
            CHECK_MSG(f != NULL, "%s", err);
            if (f)
                CHECK_EQ(forward_workspace_bytes(f), forward_workspace_estimate(&m->cfg, &opts[i]));
            forward_destroy(f);
        }
        model_free(m);
    }
    if (b) b->destroy(b);
}
