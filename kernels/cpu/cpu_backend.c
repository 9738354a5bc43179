// cpu_backend.c - the reference backend: every op of backend.h in C11 with
// OpenMP across cores and the SIMD loops of cpu_simd.h. Device memory is host
// memory.
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_simd.h"
#include "util.h"

typedef struct {
    backend base; // first: a backend * is a cpu_backend *
    const cpu_simd *simd;
    float *scratch; // per-thread scratch, grown on demand
    size_t scratch_per_thread;
    int n_threads;
    float fp8_table[256]; // fp8_e4m3_to_f32 of every code, for fp8 K/V
} cpu_backend;

#define CPU_ALIGN 64

static void *cpu_alloc(backend *b, size_t bytes) {
    (void)b;
    return aligned_alloc(CPU_ALIGN, (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN);
}
static void cpu_free(backend *b, void *p) {
    free(p);
}
static void cpu_copy(backend *b, void *dst, const void *src, size_t n) {
    memcpy(dst, src, n);
}
static void cpu_memset(backend *b, void *dst, int v, size_t n) {
    memset(dst, v, n);
}
static void cpu_sync(backend *b) {}

static void cpu_memory_info(backend *b, uint64_t *free_bytes, uint64_t *total_bytes) {
    device_info now;
    device_cpu_info(&now);
    *free_bytes = now.free_bytes;
    *total_bytes = now.total_bytes;
}

// Scratch of at least `floats` per thread; thread t uses scratch + t * stride.
// Returns NULL when out of memory.
static float *scratch_get(cpu_backend *c, size_t floats) {
    if (floats > c->scratch_per_thread) {
        free(c->scratch);
        floats = (floats + CPU_ALIGN / sizeof(float) - 1) / (CPU_ALIGN / sizeof(float)) *
                 (CPU_ALIGN / sizeof(float));
        c->scratch = aligned_alloc(CPU_ALIGN, floats * sizeof(float) * (size_t)c->n_threads);
        c->scratch_per_thread = c->scratch ? floats : 0;
    }
    return c->scratch;
}

static void cpu_embedding(backend *b, float *out, const bk_matrix *t, const int32_t *ids, int n) {
    const cpu_simd *s = ((cpu_backend *)b)->simd;
    size_t row_bytes = (size_t)t->cols * dtype_size(t->dtype);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * t->cols;
        s->to_f32(o, (const uint8_t *)t->data + (size_t)ids[i] * row_bytes, t->dtype, t->cols);
        if (t->scales) // I8: q * scale of the row
            for (int c = 0; c < t->cols; c++) o[c] *= t->scales[ids[i]];
    }
}

// x16 row i = v [dim] rounded to x16->dtype (common/dtype.h's rounding).
static void x16_row(const bk_x16 *x16, size_t i, const float *v, int dim) {
    uint16_t *o = (uint16_t *)x16->data + i * (size_t)dim;
    for (int j = 0; j < dim; j++)
        o[j] = x16->dtype == LLM_BF16 ? f32_to_bf16(v[j]) : f32_to_fp16(v[j]);
}

// out row (or, out NULL, a row of scratch) = rmsnorm(x); x16 row i too.
static void rmsnorm_row(float *out, const float *x, const float *w, int dim, float eps,
                        const bk_x16 *x16, size_t i, float *tmp) {
    float *o = out ? out + i * (size_t)dim : tmp;
    float ss = 0.0f;
    for (int j = 0; j < dim; j++) ss += x[j] * x[j];
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int j = 0; j < dim; j++) o[j] = x[j] * inv * w[j];
    if (x16) x16_row(x16, i, o, dim);
}

// Per-thread rows for an op whose f32 out is NULL (only its x16 copy is
// written); NULL when out is given. Sets b->failed when out of memory.
static float *x16_tmp(backend *b, const float *out, const bk_x16 *x16, int dim) {
    if (out) return NULL;
    float *t = x16 ? scratch_get((cpu_backend *)b, (size_t)dim) : NULL;
    if (!t) {
        llm_errf(b->error, "cpu: %s", x16 ? "out of memory for a row" : "no output given");
        b->failed = 1;
    }
    return t;
}

static void cpu_rmsnorm(backend *b, float *out, const float *x, const float *w, int n, int dim,
                        float eps, const bk_x16 *x16) {
    float *tmp = x16_tmp(b, out, x16, dim);
    if (!out && !tmp) return;
    const size_t stride = ((cpu_backend *)b)->scratch_per_thread;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        rmsnorm_row(out, x + (size_t)i * dim, w, dim, eps, x16, (size_t)i,
                    tmp ? tmp + (size_t)omp_get_thread_num() * stride : NULL);
}

static void cpu_add_rmsnorm(backend *b, float *out, float *residual, const float *x, const float *w,
                            int n, int dim, float eps, const bk_x16 *x16) {
    float *tmp = x16_tmp(b, out, x16, dim);
    if (!out && !tmp) return;
    const size_t stride = ((cpu_backend *)b)->scratch_per_thread;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *r = residual + (size_t)i * dim;
        const float *xi = x + (size_t)i * dim;
        for (int j = 0; j < dim; j++) r[j] += xi[j];
        rmsnorm_row(out, r, w, dim, eps, x16, (size_t)i,
                    tmp ? tmp + (size_t)omp_get_thread_num() * stride : NULL);
    }
}

#define MM_ROWS 4    // weight rows converted to f32 and reused across tokens
#define MM_TOKENS 64 // tokens per block, so x stays in L2 while the rows stream
#define MM_SMALL_N 4 // below this many tokens, dot straight from the weight dtype

// The decode matmul of an I8 matrix (n < MM_SMALL_N tokens). One row's dot
// product is one FMA chain, and at one weight per byte that chain, not
// memory, is the limit: so four rows go at once (dot4). Rows that short (a
// few hundred bytes) are too short for the hardware prefetcher to follow four
// at a time, so the next block of four rows is prefetched by hand (one block
// ahead measured best; two or more blocks ahead, slower). On one core of the
// 2-core EPYC, 48 MiB of [1536, 576] int8 matrices: 21 GB/s (one row at a
// time: 7 GB/s; fp16 one row at a time: 19 GB/s, so int8 takes 0.45x the time).
static void matmul_rows_i8(const cpu_simd *s, float *out, const float *x, const bk_matrix *w,
                           const float *bias, int n) {
    const int rows = w->rows, cols = w->cols;
    const size_t row_bytes = (size_t)cols;
    const int8_t *wd = w->data;
#pragma omp parallel for schedule(static)
    for (int r0 = 0; r0 < rows; r0 += 4) {
        const int nr = rows - r0 < 4 ? rows - r0 : 4;
        if (r0 + 8 <= rows) // the next block of 4 rows while this one computes
            for (size_t off = 0; off < 4 * row_bytes; off += 64)
                __builtin_prefetch(wd + (size_t)(r0 + 4) * row_bytes + off);
        for (int t = 0; t < n; t++) {
            const float *xt = x + (size_t)t * cols;
            float d[4];
            if (nr == 4)
                s->dot4(d, xt, wd + (size_t)r0 * row_bytes, row_bytes, LLM_I8, cols);
            else
                for (int k = 0; k < nr; k++)
                    d[k] = s->dot(xt, wd + (size_t)(r0 + k) * row_bytes, LLM_I8, cols);
            for (int k = 0; k < nr; k++)
                out[(size_t)t * rows + r0 + k] =
                    d[k] * w->scales[r0 + k] + (bias ? bias[r0 + k] : 0.0f);
        }
    }
}

static void matmul_f32(backend *b, float *out, const float *x, const bk_matrix *w,
                       const float *bias, int n) {
    cpu_backend *c = (cpu_backend *)b;
    const cpu_simd *s = c->simd;
    const int rows = w->rows, cols = w->cols;
    const size_t row_bytes = (size_t)cols * dtype_size(w->dtype);
    const uint8_t *wd = w->data;
    // I8: dot products over the raw integers, then times the row's scale
    const float *sc = w->dtype == LLM_I8 ? w->scales : NULL;
    float *scratch = n >= MM_SMALL_N ? scratch_get(c, (size_t)MM_ROWS * cols) : NULL;
    if (n < MM_SMALL_N || !scratch) {
        // decode: bandwidth-bound, one pass over the weights
        if (w->dtype == LLM_I8) {
            matmul_rows_i8(s, out, x, w, bias, n);
        } else {
#pragma omp parallel for schedule(static)
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < n; t++)
                    out[(size_t)t * rows + r] =
                        s->dot(x + (size_t)t * cols, wd + r * row_bytes, w->dtype, cols) +
                        (bias ? bias[r] : 0.0f);
        }
        return;
    }
    const int n_tiles = (rows + MM_ROWS - 1) / MM_ROWS;
#pragma omp parallel
    {
        float *wf = scratch + (size_t)omp_get_thread_num() * c->scratch_per_thread;
        for (int t0 = 0; t0 < n; t0 += MM_TOKENS) {
            int t1 = t0 + MM_TOKENS < n ? t0 + MM_TOKENS : n;
#pragma omp for schedule(static)
            for (int tile = 0; tile < n_tiles; tile++) {
                int r0 = tile * MM_ROWS, nr = rows - r0 < MM_ROWS ? rows - r0 : MM_ROWS;
                for (int k = 0; k < nr; k++)
                    s->to_f32(wf + (size_t)k * cols, wd + (size_t)(r0 + k) * row_bytes, w->dtype,
                              cols);
                int t = t0;
                if (nr == MM_ROWS)
                    for (; t + 2 <= t1; t += 2)
                        s->dot4x2(out + (size_t)t * rows + r0, rows, x + (size_t)t * cols, wf,
                                  cols);
                for (; t < t1; t++)
                    for (int k = 0; k < nr; k++)
                        out[(size_t)t * rows + r0 + k] =
                            s->dot(x + (size_t)t * cols, wf + (size_t)k * cols, LLM_F32, cols);
                if (sc)
                    for (int tt = t0; tt < t1; tt++)
                        for (int k = 0; k < nr; k++) out[(size_t)tt * rows + r0 + k] *= sc[r0 + k];
                if (bias)
                    for (int tt = t0; tt < t1; tt++)
                        for (int k = 0; k < nr; k++)
                            out[(size_t)tt * rows + r0 + k] += bias[r0 + k];
            }
        }
    }
}

// x is read when given; else the x16 copy (which only an op given one wrote),
// widened to f32 first.
static void cpu_matmul(backend *b, float *out, const float *x, const bk_matrix *w,
                       const float *bias, int n, const bk_x16 *x16) {
    if (x || n <= 0) {
        matmul_f32(b, out, x, w, bias, n);
        return;
    }
    float *xf = x16 ? malloc((size_t)n * w->cols * sizeof(float)) : NULL;
    if (!xf) {
        llm_errf(b->error, "cpu matmul: %s", x16 ? "out of memory" : "no input given");
        b->failed = 1;
        return;
    }
    const uint16_t *h = x16->data;
    for (size_t e = 0; e < (size_t)n * w->cols; e++)
        xf[e] = x16->dtype == LLM_BF16 ? bf16_to_f32(h[e]) : fp16_to_f32(h[e]);
    matmul_f32(b, out, xf, w, bias, n);
    free(xf);
}

static void rope_rows(float *v, const int32_t *positions, const float *inv_freq, int n, int n_heads,
                      int head_dim) {
    const int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float pos = (float)positions[i];
        for (int h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)i * n_heads + h) * head_dim;
            for (int j = 0; j < half; j++) {
                float angle = pos * inv_freq[j];
                float c = cosf(angle), s = sinf(angle);
                float a = x[j], b = x[j + half];
                x[j] = a * c - b * s;
                x[j + half] = b * c + a * s;
            }
        }
    }
}

static void cpu_rope(backend *b, float *q, float *k, const int32_t *positions,
                     const float *inv_freq, int n, int n_heads, int n_kv_heads, int head_dim) {
    rope_rows(q, positions, inv_freq, n, n_heads, head_dim);
    rope_rows(k, positions, inv_freq, n, n_kv_heads, head_dim);
}

static void cpu_kv_write(backend *b, void *k_cache, void *v_cache, const float *k, const float *v,
                         const int32_t *slot_mapping, int n, int n_kv_heads, int head_dim,
                         int block_size, llm_dtype kv_dtype, float k_scale, float v_scale) {
    const int kv_dim = n_kv_heads * head_dim;
    const int fp8 = kv_dtype == LLM_F8E4M3;
    uint16_t (*round16)(float) = kv_dtype == LLM_BF16 ? f32_to_bf16 : f32_to_fp16;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        int slot = slot_mapping[i];
        if (slot < 0) continue;
        size_t block = (size_t)(slot / block_size), off = (size_t)(slot % block_size);
        for (int h = 0; h < n_kv_heads; h++) {
            size_t dst = ((block * n_kv_heads + h) * block_size + off) * head_dim;
            const float *ks = k + (size_t)i * kv_dim + (size_t)h * head_dim;
            const float *vs = v + (size_t)i * kv_dim + (size_t)h * head_dim;
            if (fp8) { // exact rounding of x / scale (dtype.h)
                uint8_t *kc = (uint8_t *)k_cache + dst, *vc = (uint8_t *)v_cache + dst;
                for (int d = 0; d < head_dim; d++) {
                    kc[d] = f32_to_fp8_e4m3(ks[d] / k_scale);
                    vc[d] = f32_to_fp8_e4m3(vs[d] / v_scale);
                }
                continue;
            }
            uint16_t *kc = (uint16_t *)k_cache + dst, *vc = (uint16_t *)v_cache + dst;
            for (int d = 0; d < head_dim; d++) {
                kc[d] = round16(ks[d]);
                vc[d] = round16(vs[d]);
            }
        }
    }
}

// How attend_one reads a cache: a 16-bit dtype directly; fp8 through the
// table into row (head_dim floats of scratch), times the tensor's scale.
typedef struct {
    const void *k, *v;
    llm_dtype dt; // F16, BF16 or F8E4M3
    const float *fp8_table;
    float k_scale, v_scale;
} kv_view;

// The element at (0-based) element offset off of cache, as dot/axpy take it:
// a pointer into a 16-bit cache, or row filled with the decoded fp8 values.
static const void *kv_row(const kv_view *kv, const void *cache, float scale, size_t off,
                          int head_dim, float *row, llm_dtype *dt) {
    if (kv->dt != LLM_F8E4M3) {
        *dt = kv->dt;
        return (const uint16_t *)cache + off;
    }
    const uint8_t *q = (const uint8_t *)cache + off;
    for (int d = 0; d < head_dim; d++) row[d] = kv->fp8_table[q[d]] * scale;
    *dt = LLM_F32;
    return row;
}

// One (row, head): softmax(q . k_t * scale) over t0 <= t < n_ctx, times v_t.
// scores: n_ctx - t0 floats, then head_dim for an fp8 row.
static void attend_one(const cpu_simd *s, float *out, const float *q, const kv_view *kv,
                       const int32_t *block_table, int t0, int n_ctx, int kv_head, int n_kv_heads,
                       int head_dim, int block_size, float scale, float *scores) {
    float *row = scores + (n_ctx - t0);
    llm_dtype dt;
    float max = -INFINITY;
    for (int t = t0; t < n_ctx; t++) {
        size_t block = (size_t)block_table[t / block_size];
        size_t off =
            ((block * n_kv_heads + kv_head) * block_size + (size_t)(t % block_size)) * head_dim;
        const void *k = kv_row(kv, kv->k, kv->k_scale, off, head_dim, row, &dt);
        float sc = s->dot(q, k, dt, head_dim) * scale;
        scores[t - t0] = sc;
        if (sc > max) max = sc;
    }
    float sum = 0.0f;
    for (int t = t0; t < n_ctx; t++) {
        scores[t - t0] = expf(scores[t - t0] - max);
        sum += scores[t - t0];
    }
    float inv = 1.0f / sum;
    memset(out, 0, (size_t)head_dim * sizeof(float));
    for (int t = t0; t < n_ctx; t++) {
        size_t block = (size_t)block_table[t / block_size];
        size_t off =
            ((block * n_kv_heads + kv_head) * block_size + (size_t)(t % block_size)) * head_dim;
        const void *v = kv_row(kv, kv->v, kv->v_scale, off, head_dim, row, &dt);
        s->axpy(out, scores[t - t0] * inv, v, dt, head_dim);
    }
}

static void attention_f32(backend *b, float *out, const float *q, const void *k_cache,
                          const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                          int head_dim, int block_size, float scale, llm_dtype kv_dtype,
                          float k_scale, float v_scale, int window) {
    cpu_backend *c = (cpu_backend *)b;
    float *scratch = scratch_get(c, (size_t)bt->max_context_len + (size_t)head_dim);
    if (!scratch) {
        llm_errf(b->error, "cpu attention: out of memory for %d scores per thread",
                 bt->max_context_len);
        b->failed = 1;
        return;
    }
    const kv_view kv = {
        k_cache,      v_cache, kv_dtype == LLM_BF16 || kv_dtype == LLM_F8E4M3 ? kv_dtype : LLM_F16,
        c->fp8_table, k_scale, v_scale};
    const int group = n_heads / n_kv_heads;
    const int q_dim = n_heads * head_dim;
#pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int i = 0; i < bt->n_tokens; i++) {
        for (int h = 0; h < n_heads; h++) {
            int s = bt->seq_of_token[i];
            int q_len = bt->query_start[s + 1] - bt->query_start[s];
            int row = i - bt->query_start[s];
            int n_ctx = bt->context_len[s] - q_len + row + 1; // causal: up to own position
            int t0 = window > 0 && n_ctx > window ? n_ctx - window : 0; // the last `window`
            float *scores = scratch + (size_t)omp_get_thread_num() * c->scratch_per_thread;
            attend_one(c->simd, out + (size_t)i * q_dim + (size_t)h * head_dim,
                       q + (size_t)i * q_dim + (size_t)h * head_dim, &kv,
                       bt->block_tables + (size_t)s * bt->max_blocks, t0, n_ctx, h / group,
                       n_kv_heads, head_dim, block_size, scale, scores);
        }
    }
}

// attention_f32 into out (or, out NULL, a temporary), then its x16 copy.
static void cpu_attention(backend *b, float *out, const float *q, const void *k_cache,
                          const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                          int head_dim, int block_size, float scale, llm_dtype kv_dtype,
                          float k_scale, float v_scale, int window, const bk_x16 *x16) {
    const size_t q_dim = (size_t)n_heads * head_dim;
    float *o = out ? out : x16 ? malloc((size_t)bt->n_tokens * q_dim * sizeof(float) + 1) : NULL;
    if (!o) {
        llm_errf(b->error, "cpu attention: %s", x16 ? "out of memory" : "no output given");
        b->failed = 1;
        return;
    }
    attention_f32(b, o, q, k_cache, v_cache, bt, n_heads, n_kv_heads, head_dim, block_size, scale,
                  kv_dtype, k_scale, v_scale, window);
    if (x16)
        for (int i = 0; i < bt->n_tokens; i++) x16_row(x16, (size_t)i, o + i * q_dim, (int)q_dim);
    if (!out) free(o);
}

static void cpu_silu_mul(backend *b, float *out, const float *gate, const float *up, int n,
                         int hidden, int ld, const bk_x16 *x16) {
    float *tmp = x16_tmp(b, out, x16, hidden);
    if (!out && !tmp) return;
    const size_t stride = ((cpu_backend *)b)->scratch_per_thread;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *gi = gate + (size_t)i * ld, *ui = up + (size_t)i * ld;
        float *oi = out ? out + (size_t)i * hidden : tmp + (size_t)omp_get_thread_num() * stride;
        for (int j = 0; j < hidden; j++) {
            float g = gi[j];
            oi[j] = g / (1.0f + expf(-g)) * ui[j];
        }
        if (x16) x16_row(x16, (size_t)i, oi, hidden);
    }
}

// The fused q|k|v step: the rows' q into q_out, k and v into a scratch pair,
// then the same per-head norm, rope and kv_write as the separate ops.
static void cpu_qkv_rope_write(backend *b, float *q_out, const float *qkv, const float *q_norm,
                               const float *k_norm, float eps, const int32_t *positions,
                               const float *inv_freq, void *k_cache, void *v_cache,
                               const int32_t *slot_mapping, int n, int n_heads, int n_kv_heads,
                               int head_dim, int block_size, llm_dtype kv_dtype, float k_scale,
                               float v_scale) {
    const size_t q_dim = (size_t)n_heads * head_dim, kv_dim = (size_t)n_kv_heads * head_dim;
    const size_t row = q_dim + 2 * kv_dim;
    float *kv = malloc((size_t)n * 2 * kv_dim * sizeof(float) + 1);
    if (!kv) {
        llm_errf(b->error, "cpu qkv_rope_write: out of memory for %d rows", n);
        b->failed = 1;
        return;
    }
    float *k = kv, *v = kv + (size_t)n * kv_dim;
    for (int i = 0; i < n; i++) {
        memcpy(q_out + i * q_dim, qkv + i * row, q_dim * sizeof(float));
        memcpy(k + i * kv_dim, qkv + i * row + q_dim, kv_dim * sizeof(float));
        memcpy(v + i * kv_dim, qkv + i * row + q_dim + kv_dim, kv_dim * sizeof(float));
    }
    if (q_norm) cpu_rmsnorm(b, q_out, q_out, q_norm, n * n_heads, head_dim, eps, NULL);
    if (k_norm) cpu_rmsnorm(b, k, k, k_norm, n * n_kv_heads, head_dim, eps, NULL);
    cpu_rope(b, q_out, k, positions, inv_freq, n, n_heads, n_kv_heads, head_dim);
    cpu_kv_write(b, k_cache, v_cache, k, v, slot_mapping, n, n_kv_heads, head_dim, block_size,
                 kv_dtype, k_scale, v_scale);
    free(kv);
}

static void cpu_gather_rows(backend *b, float *out, const float *x, const int32_t *rows, int m,
                            int dim) {
    for (int j = 0; j < m; j++)
        memcpy(out + (size_t)j * dim, x + (size_t)rows[j] * dim, (size_t)dim * sizeof(float));
}

// Independent running maxima: the compare-select loop vectorizes (64 rows of
// 49152 on one core: 2.7 ms, against 5.1 ms with one running maximum).
#define ARGMAX_LANES 8

// Each row's greedy pick, as sampler.c's sanitize_argmax (NaN as -inf, +inf as
// FLT_MAX, the lowest index on ties; -1 if nothing is above -inf), in two
// passes: the row's maximum (NaN never wins a > comparison, and +inf is
// clamped to FLT_MAX after), then the first index holding it.
static int argmax_row(const float *r, int dim) {
    float lane[ARGMAX_LANES];
    for (int k = 0; k < ARGMAX_LANES; k++) lane[k] = -INFINITY;
    int j = 0;
    for (; j + ARGMAX_LANES <= dim; j += ARGMAX_LANES)
        for (int k = 0; k < ARGMAX_LANES; k++) lane[k] = r[j + k] > lane[k] ? r[j + k] : lane[k];
    float top = -INFINITY;
    for (; j < dim; j++) top = r[j] > top ? r[j] : top;
    for (int k = 0; k < ARGMAX_LANES; k++) top = lane[k] > top ? lane[k] : top;
    if (top == -INFINITY) return -1;
    if (top == INFINITY) top = FLT_MAX; // +inf ties with FLT_MAX
    for (j = 0; j < dim; j++)
        if (r[j] == top || (top == FLT_MAX && r[j] == INFINITY)) break;
    return j;
}

static void cpu_argmax(backend *b, int32_t *out, const float *x, int n, int dim) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) out[i] = argmax_row(x + (size_t)i * dim, dim);
}

static void cpu_destroy(backend *b) {
    cpu_backend *c = (cpu_backend *)b;
    free(c->scratch);
    free(c);
}

backend *cpu_backend_create(char *err) {
    cpu_backend *c = llm_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    backend *b = &c->base;
    device_cpu_info(&b->info);
    c->simd = cpu_simd_get();
    c->n_threads = omp_get_max_threads();
    for (int q = 0; q < 256; q++) c->fp8_table[q] = fp8_e4m3_to_f32((uint8_t)q);
    b->alloc = cpu_alloc;
    b->free = cpu_free;
    b->host_alloc = cpu_alloc;
    b->host_free = cpu_free;
    b->upload = cpu_copy;
    b->download = cpu_copy;
    b->memset = cpu_memset;
    b->sync = cpu_sync;
    b->memory_info = cpu_memory_info;
    b->embedding = cpu_embedding;
    b->rmsnorm = cpu_rmsnorm;
    b->add_rmsnorm = cpu_add_rmsnorm;
    b->matmul = cpu_matmul;
    b->rope = cpu_rope;
    b->kv_write = cpu_kv_write;
    b->attention = cpu_attention;
    b->silu_mul = cpu_silu_mul;
    b->upload_async = cpu_copy;
    b->qkv_rope_write = cpu_qkv_rope_write;
    b->gather_rows = cpu_gather_rows;
    b->argmax = cpu_argmax;
    b->destroy = cpu_destroy;
    return b;
}
