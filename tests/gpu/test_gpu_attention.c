// Paged attention of the CUDA backend against the CPU backend: GQA, several
// head sizes and block sizes, prefill chunks over cached context, decode rows
// with contexts long enough to take the split (partitioned) path; and each
// sequence's rows the same bits alone as in the batch; fp16, bf16 and fp8
// (e4m3, with per-tensor scales) caches, with and without a sliding window.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gpu_util.h"
#include "harness.h"
#include "util.h"

#define TOL_ATTN 1e-4 // fp32 softmax; online (GPU) vs two-pass (CPU) rounding
// The tensor-core prefill kernel (cuda_prefill_attention.cu) rounds Q x scale
// and the probabilities to the KV dtype for the MMA: relative L2 error of the
// whole output (its decode rows included) on these random inputs.
#define TOL_TC_F16 1e-3
#define TOL_TC_BF16 5e-3

// Whether the CUDA backend runs this shape's prefill rows on tensor cores:
// cuda_prefill_attention.cu's rule (head_dim 64/128, a GQA group of at most
// 64 heads, sm_75+; bf16 needs sm_80; head_dim 128 needs sm_80's shared
// memory; LLM_CUDA_TC_ATTN=0 turns it off). A mismatch fails loudly: the fp32 tolerance is too
// tight for it.
static int tc_prefill(const backend *g, int hd, int nh, int nkv, llm_dtype kvdt) {
    const int cc = g->info.cc_major * 10 + g->info.cc_minor;
    const char *off = getenv("LLM_CUDA_TC_ATTN");
    if (off && strcmp(off, "0") == 0) return 0;
    if ((hd != 64 && hd != 128) || nh / nkv > 64 || cc < 75) return 0;
    return cc >= 80 || (kvdt == LLM_F16 && hd == 64);
}

typedef struct {
    int q_len, ctx;
} seq_spec;

typedef struct {
    int n_heads, n_kv_heads, head_dim, block_size;
    int n_seqs;
    seq_spec seqs[8];
} attn_case;

// Host arrays of a batch and its device copies.
typedef struct {
    int n_tokens, n_seqs, max_q, max_ctx, max_blocks, num_blocks;
    int32_t *qstart, *ctx, *btab, *seq_of, *pos, *slots;
    bk_attn_batch host, dev;
} batch;

static void batch_build(batch *b, const attn_case *ac, const int *seq_ids, int n_seqs,
                        const int32_t *all_tables, int all_max_blocks) {
    memset(b, 0, sizeof *b);
    b->n_seqs = n_seqs;
    for (int k = 0; k < n_seqs; k++) {
        const seq_spec *s = &ac->seqs[seq_ids[k]];
        b->n_tokens += s->q_len;
        b->max_q = s->q_len > b->max_q ? s->q_len : b->max_q;
        b->max_ctx = s->ctx > b->max_ctx ? s->ctx : b->max_ctx;
    }
    b->max_blocks = all_max_blocks;
    b->qstart = malloc(sizeof(int32_t) * (n_seqs + 1));
    b->ctx = malloc(sizeof(int32_t) * n_seqs);
    b->btab = malloc(sizeof(int32_t) * n_seqs * all_max_blocks);
    b->seq_of = malloc(sizeof(int32_t) * b->n_tokens);
    b->pos = malloc(sizeof(int32_t) * b->n_tokens);
    b->slots = malloc(sizeof(int32_t) * b->n_tokens);
    int row = 0;
    b->qstart[0] = 0;
    for (int k = 0; k < n_seqs; k++) {
        const seq_spec *s = &ac->seqs[seq_ids[k]];
        const int32_t *tab = all_tables + (size_t)seq_ids[k] * all_max_blocks;
        memcpy(b->btab + (size_t)k * all_max_blocks, tab, sizeof(int32_t) * all_max_blocks);
        b->ctx[k] = s->ctx;
        for (int i = 0; i < s->q_len; i++, row++) {
            int p = s->ctx - s->q_len + i;
            b->seq_of[row] = k;
            b->pos[row] = p;
            b->slots[row] = tab[p / ac->block_size] * ac->block_size + p % ac->block_size;
        }
        b->qstart[k + 1] = row;
    }
    b->host = (bk_attn_batch){.n_tokens = b->n_tokens,
                              .n_seqs = n_seqs,
                              .max_query_len = b->max_q,
                              .max_context_len = b->max_ctx,
                              .max_blocks = all_max_blocks,
                              .query_start = b->qstart,
                              .context_len = b->ctx,
                              .block_tables = b->btab,
                              .seq_of_token = b->seq_of,
                              .positions = b->pos,
                              .slot_mapping = b->slots};
}

static void batch_to_dev(batch *b, backend *g) {
    b->dev = b->host;
    b->dev.query_start = gpu_copy_in(g, b->qstart, sizeof(int32_t) * (b->n_seqs + 1));
    b->dev.context_len = gpu_copy_in(g, b->ctx, sizeof(int32_t) * b->n_seqs);
    b->dev.block_tables = gpu_copy_in(g, b->btab, sizeof(int32_t) * b->n_seqs * b->max_blocks);
    b->dev.seq_of_token = gpu_copy_in(g, b->seq_of, sizeof(int32_t) * b->n_tokens);
    b->dev.positions = gpu_copy_in(g, b->pos, sizeof(int32_t) * b->n_tokens);
    b->dev.slot_mapping = gpu_copy_in(g, b->slots, sizeof(int32_t) * b->n_tokens);
}

static void batch_free(batch *b, backend *g) {
    if (b->dev.query_start) {
        g->free(g, (void *)b->dev.query_start), g->free(g, (void *)b->dev.context_len);
        g->free(g, (void *)b->dev.block_tables), g->free(g, (void *)b->dev.seq_of_token);
        g->free(g, (void *)b->dev.positions), g->free(g, (void *)b->dev.slot_mapping);
    }
    free(b->qstart), free(b->ctx), free(b->btab), free(b->seq_of), free(b->pos), free(b->slots);
}

// fp8 caches: K/V scales (1.0 for 16-bit caches, which ignore them)
static float g_k_scale = 1.0f, g_v_scale = 1.0f;

// A cache of n random elements of kvdt (magnitude about mag), as stored.
static void *random_cache(size_t n, llm_dtype kvdt, float mag, float scale) {
    const size_t esz = dtype_size(kvdt);
    void *p = malloc(n * esz);
    for (size_t i = 0; i < n; i++) {
        const float x = urand() * mag;
        if (kvdt == LLM_F8E4M3)
            ((uint8_t *)p)[i] = f32_to_fp8_e4m3(x / scale);
        else
            ((uint16_t *)p)[i] = kvdt == LLM_BF16 ? f32_to_bf16(x) : f32_to_fp16(x);
    }
    return p;
}

// The attention once more with no f32 output and a 16-bit copy (bk_x16, the
// o_proj input on CUDA's GEMM path): every element must be the f32 result
// got of the same batch rounded to nearest even (bf16 for fp16 caches and
// fp16 for the others, so both kinds are covered).
static void check_x16_copy(backend *g, const float *got, const float *gq, const void *gkc,
                           const void *gvc, const batch *all, const attn_case *ac, llm_dtype kvdt,
                           int window) {
    const int nh = ac->n_heads, nkv = ac->n_kv_heads, hd = ac->head_dim;
    const size_t qn = (size_t)all->n_tokens * nh * hd;
    const llm_dtype dt = kvdt == LLM_F16 ? LLM_BF16 : LLM_F16;
    uint16_t *g16 = g->alloc(g, qn * 2), *h16 = malloc(qn * 2 + 1);
    g->memset(g, g16, 0xFF, qn * 2);
    bk_x16 s = {g16, dt, NULL};
    g->attention(g, NULL, gq, gkc, gvc, &all->dev, nh, nkv, hd, ac->block_size,
                 1.0f / sqrtf((float)hd), kvdt, g_k_scale, g_v_scale, window, &s);
    g->download(g, h16, g16, qn * 2);
    size_t bad = 0;
    for (size_t i = 0; got && i < qn; i++)
        bad += h16[i] != (dt == LLM_BF16 ? f32_to_bf16(got[i]) : f32_to_fp16(got[i]));
    CHECK_MSG(got && bad == 0,
              "attention %d/%d heads of %d, %s: %zu of %zu %s copies are not the "
              "rounded f32 result",
              nh, nkv, hd, dtype_name(kvdt), bad, qn, dtype_name(dt));
    g->free(g, g16);
    free(h16);
}

static void run_case(backend *g, backend *c, const attn_case *ac, llm_dtype kvdt, int window) {
    const int nh = ac->n_heads, nkv = ac->n_kv_heads, hd = ac->head_dim, bs = ac->block_size;
    // pages: every sequence gets its own, in shuffled order
    int max_blocks = 1, total_blocks = 0;
    for (int s = 0; s < ac->n_seqs; s++) {
        int used = (ac->seqs[s].ctx + bs - 1) / bs;
        max_blocks = used > max_blocks ? used : max_blocks;
        total_blocks += used;
    }
    const int num_blocks = total_blocks + 3;
    int *perm = malloc(sizeof(int) * num_blocks);
    for (int i = 0; i < num_blocks; i++) perm[i] = i;
    for (int i = num_blocks - 1; i > 0; i--) {
        int j = irand(i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int32_t *tables = calloc((size_t)ac->n_seqs * max_blocks, sizeof(int32_t));
    for (int s = 0, next = 0; s < ac->n_seqs; s++)
        for (int j = 0; j < (ac->seqs[s].ctx + bs - 1) / bs; j++)
            tables[(size_t)s * max_blocks + j] = perm[next++];
    free(perm);

    const size_t cache_n = (size_t)num_blocks * nkv * bs * hd, cache_b = cache_n * dtype_size(kvdt);
    // bf16: K far past fp16's range (65504), q scaled down to keep the scores O(1)
    const float kscale = kvdt == LLM_BF16 ? 1e5f : 1.0f;
    void *kc = random_cache(cache_n, kvdt, kscale, g_k_scale);
    void *vc = random_cache(cache_n, kvdt, 1.0f, g_v_scale);
    void *gkc = gpu_copy_in(g, kc, cache_b), *gvc = gpu_copy_in(g, vc, cache_b);

    int ids[8];
    for (int s = 0; s < ac->n_seqs; s++) ids[s] = s;
    batch all;
    batch_build(&all, ac, ids, ac->n_seqs, tables, max_blocks);
    batch_to_dev(&all, g);
    const size_t q_dim = (size_t)nh * hd, qn = (size_t)all.n_tokens * q_dim;
    float *q = malloc(qn * 4);
    for (size_t i = 0; i < qn; i++) q[i] = urand() * 2.0f / kscale;
    float *gq = gpu_copy_in(g, q, qn * 4), *gout = gpu_poisoned(g, qn), *want = malloc(qn * 4);
    const float scale = 1.0f / sqrtf((float)hd);
    const float ks = g_k_scale, vs = g_v_scale;
    c->attention(c, want, q, kc, vc, &all.host, nh, nkv, hd, bs, scale, kvdt, ks, vs, window, NULL);
    g->attention(g, gout, gq, gkc, gvc, &all.dev, nh, nkv, hd, bs, scale, kvdt, ks, vs, window,
                 NULL);
    float *got = gpu_copy_out(g, gout, qn);
    const int tc = all.max_q > 1 && tc_prefill(g, hd, nh, nkv, kvdt);
    const double tol = !tc ? TOL_ATTN : kvdt == LLM_BF16 ? TOL_TC_BF16 : TOL_TC_F16;
    if (getenv("LLM_ATTN_ERR"))
        fprintf(stderr, "attention %d/%d heads of %d, %s, window %d%s: rel err %.3g\n", nh, nkv, hd,
                dtype_name(kvdt), window, tc ? " (tensor cores)" : "",
                got ? rel_err(got, want, qn) : -1.0);
    CHECK_REL(got, want, qn, tol, "attention %d/%d heads of %d, block %d, %s, window %d", nh, nkv,
              hd, bs, dtype_name(kvdt), window);
    CHECK_MSG(!g->failed, "%s", g->error);
    check_x16_copy(g, got, gq, gkc, gvc, &all, ac, kvdt, window);

    // each sequence alone: the same bits as in the batch
    for (int s = 0; s < ac->n_seqs; s++) {
        batch one;
        batch_build(&one, ac, &s, 1, tables, max_blocks);
        batch_to_dev(&one, g);
        const size_t on = (size_t)one.n_tokens * q_dim;
        float *gq1 = gpu_copy_in(g, q + (size_t)all.qstart[s] * q_dim, on * 4);
        float *go1 = gpu_poisoned(g, on);
        g->attention(g, go1, gq1, gkc, gvc, &one.dev, nh, nkv, hd, bs, scale, kvdt, ks, vs, window,
                     NULL);
        float *got1 = gpu_copy_out(g, go1, on);
        CHECK_MSG(got1 && memcmp(got1, got + (size_t)all.qstart[s] * q_dim, on * 4) == 0,
                  "attention %d/%d heads of %d: sequence %d (q_len %d, context %d) differs alone",
                  nh, nkv, hd, s, ac->seqs[s].q_len, ac->seqs[s].ctx);
        free(got1);
        g->free(g, gq1), g->free(g, go1);
        batch_free(&one, g);
    }
    free(got), free(want), free(q), free(kc), free(vc), free(tables);
    g->free(g, gq), g->free(g, gout), g->free(g, gkc), g->free(g, gvc);
    batch_free(&all, g);
}

TEST(gpu_op_attention_prefill_decode_gqa) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const attn_case cases[] = {
        // tiny heads, small pages; prefill from scratch, decode, prefill over cache
        {4, 2, 16, 4, 4, {{5, 5}, {1, 1}, {1, 37}, {17, 40}}},
        // Llama-like GQA 4:1, split decode (700 -> 2, 3000 -> 6, 9000 -> 16 parts)
        {8, 2, 64, 16, 6, {{1, 700}, {1, 3000}, {33, 33}, {1, 1}, {9, 520}, {1, 9000}}},
        // no GQA, head 128, big pages, a prefill chunk crossing tile boundaries
        {6, 6, 128, 32, 3, {{40, 100}, {1, 513}, {2, 2}}},
        // head 256: the prefill tile needs more than 48 KB of shared memory
        {4, 1, 256, 16, 2, {{20, 20}, {1, 600}}},
        // head 96 and an odd block size
        {3, 1, 96, 7, 2, {{18, 50}, {1, 130}}},
        // the grouped decode kernel's padded groups: 3 heads per KV head
        // (SmolLM2) and 7 (Qwen2), head 32 and its 256-key chunks, odd pages
        {9, 3, 64, 16, 3, {{1, 300}, {1, 1}, {1, 2100}}},
        {14, 2, 32, 5, 3, {{1, 257}, {4, 9}, {1, 700}}},
    };
    static const attn_case fast_cases[] = {
        {4, 2, 16, 4, 4, {{5, 5}, {1, 1}, {1, 37}, {17, 40}}},
        {8, 2, 64, 16, 3, {{1, 700}, {9, 20}, {1, 1}}},
        {9, 3, 64, 16, 2, {{1, 300}, {1, 1}}},
    };
    const attn_case *cs = gpu_fast() ? fast_cases : cases;
    const int n = gpu_fast() ? 3 : 7;
    for (int i = 0; i < n; i++) {
        // head 256 needs 68 KB of shared memory: more than sm_75 has (64 KB)
        if (cs[i].head_dim == 256 && g->info.cc_major < 8) continue;
        run_case(g, c, &cs[i], LLM_F16, 0);
    }
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// Sliding windows (a row sees the last `window` positions, itself included)
// over fp16 and bf16 caches: windows shorter than a prefill key tile, across
// tiles, longer than the context, and decode rows whose window still takes
// the split path. Rows of one prefill tile start their windows at different
// key tiles, so some see nothing in the first tiles the block walks.
TEST(gpu_op_attention_sliding_window_bf16) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const attn_case cases[] = {
        {4, 2, 16, 4, 4, {{5, 5}, {1, 1}, {1, 37}, {40, 61}}},
        {8, 2, 64, 16, 5, {{1, 3000}, {33, 33}, {1, 20}, {70, 90}, {1, 1500}}},
    };
    static const int windows[] = {8, 37, 1200, 4096};
    const int n_win = gpu_fast() ? 2 : 4;
    for (int dt = 0; dt < 2; dt++) {
        const llm_dtype kvdt = dt ? LLM_BF16 : LLM_F16;
        for (int w = 0; w < n_win; w++)
            for (int i = 0; i < (gpu_fast() ? 1 : 2); i++)
                run_case(g, c, &cases[i], kvdt, windows[w]);
        run_case(g, c, &cases[0], kvdt, 0);
    }
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// The tensor-core prefill kernel (head_dim 64 and 128): GQA groups of 4 and 3
// query heads sharing a K/V tile (64 / G tokens per block, not a power of two
// for 3) and none; prefill from scratch and chunks over cached context whose
// keys cross 64-key tiles; ragged batches mixing prefill and decode rows (the
// decode rows take the decode kernel, or this one in batch-invariant mode);
// sliding windows shorter than a tile, across tiles and longer than the
// context; fp16 and bf16 caches. Run at sm_90 and EMU_CC=75/80 (sm_75: fp16
// at head_dim 64 only, the rest falls back to the fp32 kernel).
TEST(gpu_op_attention_tensor_cores) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const attn_case cases[] = {
        {8, 2, 64, 16, 5, {{70, 70}, {1, 90}, {20, 100}, {1, 1}, {2, 2}}},
        {3, 1, 128, 8, 3, {{30, 150}, {1, 40}, {23, 23}}},
        {2, 2, 64, 7, 2, {{40, 41}, {3, 130}}}, // pages cut the 64-key tiles anywhere
    };
    static const int windows[] = {0, 16, 70};
    for (int dt = 0; dt < 2; dt++) {
        const llm_dtype kvdt = dt ? LLM_BF16 : LLM_F16;
        for (int i = 0; i < 3; i++)
            for (int w = 0; w < 3; w++) {
                if (gpu_fast() && (w + i + dt) % 2) continue; // half of the grid, every kind
                run_case(g, c, &cases[i], kvdt, windows[w]);
            }
    }
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// The same kernel in batch-invariant mode, where it takes the decode rows too.
TEST(gpu_op_attention_tensor_cores_invariant) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const attn_case ac = {8, 2, 64, 16, 4, {{1, 90}, {20, 100}, {1, 1}, {9, 9}}};
    g->batch_invariant = 1;
    run_case(g, c, &ac, LLM_F16, 0);
    run_case(g, c, &ac, LLM_BF16, 16);
    g->batch_invariant = 0;
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// fp8 e4m3 caches with per-tensor scales (K 0.25, V 3: values read are code x
// scale), prefill, decode, split decode and a window: on sm_89+ the cuda_fp8.h
// conversions (under the emulation its stand-in), below the software path
// (EMU_CC=75 runs this test too).
TEST(gpu_op_attention_fp8) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const attn_case cases[] = {
        {4, 2, 16, 4, 4, {{5, 5}, {1, 1}, {1, 37}, {17, 40}}},
        {8, 2, 64, 16, 3, {{1, 700}, {9, 20}, {1, 1}}},
    };
    g_k_scale = 0.25f, g_v_scale = 3.0f;
    for (int i = 0; i < 2; i++) run_case(g, c, &cases[i], LLM_F8E4M3, 0);
    run_case(g, c, &cases[0], LLM_F8E4M3, 8);
    g_k_scale = g_v_scale = 1.0f;
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}
