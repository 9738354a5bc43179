// cpu_attention.c - the CPU backend's paged attention, blocked so that each
// key and value is read from the cache and converted to f32 once per work
// unit instead of once per query row and head.
//
// A work unit is (sequence, KV head, up to QB consecutive query rows): its
// G x QB query vectors (G = query heads per KV head) against the keys any of
// its rows sees, ATT_KB keys at a time converted into a block of f32 that
// stays in L1. Scores come from dot_tile (the matmul's register tile), values
// are summed by axpy_seq with each output row in registers.
//
// Arithmetic, per (row, head), is fixed: score_t = dot(q, k_t) * scale in
// cpu_simd's order; max over the row's visible keys; e_t = expf(score_t -
// max) (cpu_simd's exp) and their sum in increasing t; out = sum over t in increasing t of
// (e_t * (1 / sum)) * v_t, one fused multiply-add per element and key. That
// is the same whichever rows share the unit (a decode row alone, the same
// row in a prefill chunk of any size), so a row's bits never depend on its
// batch or on how its prompt was chunked.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "util.h"

#define ATT_KB 64    // keys (and values) converted to f32 at a time
#define ATT_QVECS 48 // query vectors (rows x heads of a group) per unit, about

typedef struct {
    int seq, kv_head, row0, nrows; // rows row0.. of the sequence's query rows
} att_unit;

typedef struct {
    const void *k, *v;
    llm_dtype dt; // F16, BF16 or F8E4M3
    const float *fp8_table;
    float k_scale, v_scale;
    const int32_t *block_table; // the unit's sequence's
    int kv_head, n_kv_heads, head_dim, block_size;
} kv_view;

// Positions [t0, t0 + n) of one cache (k or v) for the view's KV head, as f32
// rows of head_dim: 16-bit values exactly, fp8 ones as table value x scale.
static void gather_f32(const cpu_simd *s, float *dst, const kv_view *kv, const void *cache,
                       float scale, int t0, int n) {
    const int hd = kv->head_dim, bs = kv->block_size;
    for (int j = 0; j < n; j++) {
        const int t = t0 + j;
        const size_t off =
            (((size_t)kv->block_table[t / bs] * kv->n_kv_heads + kv->kv_head) * bs + t % bs) * hd;
        float *d = dst + (size_t)j * hd;
        if (kv->dt == LLM_F8E4M3) {
            const uint8_t *q = (const uint8_t *)cache + off;
            for (int i = 0; i < hd; i++) d[i] = kv->fp8_table[q[i]] * scale;
        } else {
            s->to_f32(d, (const uint16_t *)cache + off, kv->dt, hd);
        }
    }
}

// Softmax of one query's scores over its visible keys [a, b) of sr, in place:
// sr[t] becomes e_t / sum (as e_t * (1 / sum)), e_t = exp(score_t - max) by
// cpu_simd's exp, summed in increasing t.
static void softmax_row(const cpu_simd *s, float *sr, int a, int b, float scale) {
    float max = -INFINITY;
    for (int t = a; t < b; t++) {
        sr[t] *= scale;
        if (sr[t] > max) max = sr[t];
    }
    for (int t = a; t < b; t++) sr[t] -= max;
    s->exp(sr + a, sr + a, b - a);
    float sum = 0.0f;
    for (int t = a; t < b; t++) sum += sr[t];
    const float inv = 1.0f / sum;
    for (int t = a; t < b; t++) sr[t] *= inv;
}

typedef struct {
    float *out;
    const float *q;
    const bk_attn_batch *bt;
    int n_heads, window;
    float scale;
} att_args;

// The first visible position and one past the last for row `row` (0-based
// among its sequence's q_len query rows) of a sequence with ctx positions.
static void row_range(int ctx, int q_len, int row, int window, int *lo, int *hi) {
    *hi = ctx - q_len + row + 1; // causal: up to its own position
    *lo = window > 0 && *hi > window ? *hi - window : 0;
}

static void attend_unit(const cpu_simd *s, const att_args *A, kv_view kv, const att_unit *u,
                        float *ws) {
    const bk_attn_batch *bt = A->bt;
    const int hd = kv.head_dim, G = A->n_heads / kv.n_kv_heads;
    const int q0 = bt->query_start[u->seq], q_len = bt->query_start[u->seq + 1] - q0;
    const int ctx = bt->context_len[u->seq];
    const size_t q_dim = (size_t)A->n_heads * hd, grp = (size_t)kv.kv_head * G * hd;
    int lo, hi, tmp;
    row_range(ctx, q_len, u->row0, A->window, &lo, &tmp);
    row_range(ctx, q_len, u->row0 + u->nrows - 1, A->window, &tmp, &hi);
    const int nq = u->nrows * G, nk = hi - lo;
    float *qv = ws, *S = qv + (size_t)nq * hd, *blk = S + (size_t)nq * nk;
    for (int r = 0; r < u->nrows; r++) // a row's G heads are contiguous in q
        memcpy(qv + (size_t)r * G * hd, A->q + (size_t)(q0 + u->row0 + r) * q_dim + grp,
               (size_t)G * hd * sizeof(float));
    for (int k0 = lo; k0 < hi; k0 += ATT_KB) {
        const int kb = hi - k0 < ATT_KB ? hi - k0 : ATT_KB;
        gather_f32(s, blk, &kv, kv.k, kv.k_scale, k0, kb);
        s->dot_tile(S + (k0 - lo), nk, qv, hd, nq, blk, kb, hd);
    }
    for (int j = 0; j < nq; j++) {
        int a, b;
        row_range(ctx, q_len, u->row0 + j / G, A->window, &a, &b);
        softmax_row(s, S + (size_t)j * nk, a - lo, b - lo, A->scale);
        float *o = A->out + (size_t)(q0 + u->row0 + j / G) * q_dim + grp + (size_t)(j % G) * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
    }
    for (int k0 = lo; k0 < hi; k0 += ATT_KB) {
        const int kb = hi - k0 < ATT_KB ? hi - k0 : ATT_KB;
        gather_f32(s, blk, &kv, kv.v, kv.v_scale, k0, kb);
        for (int j = 0; j < nq; j++) {
            int a, b;
            row_range(ctx, q_len, u->row0 + j / G, A->window, &a, &b);
            a = a > k0 ? a : k0;
            b = b < k0 + kb ? b : k0 + kb;
            if (a >= b) continue;
            float *o = A->out + (size_t)(q0 + u->row0 + j / G) * q_dim + grp + (size_t)(j % G) * hd;
            s->axpy_seq(o, S + (size_t)j * nk + (a - lo), b - a, blk + (size_t)(a - k0) * hd, hd,
                        hd);
        }
    }
}

typedef struct {
    att_args A;
    const att_unit *units;
    cpu_backend *c;
    kv_view kv; // block_table and kv_head per unit
} att_job;

static void attend_item(void *ctx, int item, int worker) {
    const att_job *j = ctx;
    const att_unit *u = &j->units[item];
    kv_view kv = j->kv;
    kv.block_table = j->A.bt->block_tables + (size_t)u->seq * j->A.bt->max_blocks;
    kv.kv_head = u->kv_head;
    attend_unit(j->c->simd, &j->A, kv, u,
                j->c->scratch + (size_t)worker * j->c->scratch_per_thread);
}

void cpu_attention(backend *b, float *out, const float *q, const void *k_cache, const void *v_cache,
                   const bk_attn_batch *bt, int n_heads, int n_kv_heads, int head_dim,
                   int block_size, float scale, llm_dtype kv_dtype, float k_scale, float v_scale,
                   int window, const bk_x16 *x16) {
    cpu_backend *c = (cpu_backend *)b;
    float *const given = out;
    out = cpu_x16_begin(b, out, x16, (size_t)bt->n_tokens * n_heads * head_dim);
    if (!out) return;
    const int G = n_heads / n_kv_heads;
    const int qb = ATT_QVECS / G > 0 ? ATT_QVECS / G : 1; // query rows per unit
    int n_units = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        const int q_len = bt->query_start[s + 1] - bt->query_start[s];
        n_units += n_kv_heads * ((q_len + qb - 1) / qb);
    }
    const size_t nq = (size_t)qb * G;
    float *scratch = cpu_scratch_get(c, nq * head_dim + nq * (size_t)bt->max_context_len +
                                            (size_t)ATT_KB * head_dim);
    const size_t units_bytes = sizeof(att_unit) * (size_t)(n_units > 0 ? n_units : 1);
    if (units_bytes > c->att_units_bytes) { // grown once, kept: every layer of every step
        free(c->att_units);
        c->att_units = malloc(units_bytes);
        c->att_units_bytes = c->att_units ? units_bytes : 0;
    }
    att_unit *units = c->att_units;
    if (!scratch || !units) {
        llm_errf(b->error, "cpu attention: out of memory for %d scores per thread",
                 bt->max_context_len);
        b->failed = 1;
        cpu_x16_end(NULL, out, given, 0, 0); // frees a temporary
        return;
    }
    int k = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        const int q_len = bt->query_start[s + 1] - bt->query_start[s];
        for (int r0 = q_len - 1 - (q_len - 1) % qb; r0 >= 0; r0 -= qb) // longest rows first
            for (int h = 0; h < n_kv_heads; h++)
                units[k++] = (att_unit){s, h, r0, q_len - r0 < qb ? q_len - r0 : qb};
    }
    const llm_dtype dt = kv_dtype == LLM_BF16 || kv_dtype == LLM_F8E4M3 ? kv_dtype : LLM_F16;
    att_job job = {{out, q, bt, n_heads, window, scale},
                   units,
                   c,
                   {k_cache, v_cache, dt, c->fp8_table, k_scale, v_scale, NULL, 0, n_kv_heads,
                    head_dim, block_size}};
    cpu_pool_run(c->pool, n_units, attend_item, &job);
    cpu_x16_end(x16, out, given, bt->n_tokens, n_heads * head_dim);
}
