// cuda_attention.cu - causal paged attention over a varlen batch (see
// bk_attn_batch): fp16, bf16 or fp8 e4m3 K/V pages (the kernels are templates
// over the element type KV), fp32 queries, scores and softmax; optionally a
// sliding window (the row at position p sees keys p - window < t <= p). fp8's
// per-tensor scales: k_scale is folded into the score scale, v_scale
// multiplies each output row (v_scale 1 for 16-bit caches).
//
// Two kernels, chosen per sequence by its query length, so a row is computed
// the same way whatever else shares the batch:
// - q_len > 1 (prefill chunks, possibly over cached context):
//   attn_prefill_kernel, a tile of PF_QT query rows of one sequence per block
//   and head, walking the keys in tiles of PF_KT with an online softmax;
//   each K/V tile is loaded once for the PF_QT rows.
// - q_len == 1 (decode): for head_dim 32/64/128/256 and up to 8 query heads
//   per KV head, attn_decode_gqa_kernel (cuda_decode_attention.cu), one block
//   per (sequence, KV head, partition) for the whole group; other shapes
//   attn_decode_kernel, one block per (sequence, head,
//   partition); a context longer than DC_PART tokens is split into up to
//   DC_MAX_PARTS partitions (the split depends only on the sequence's own
//   length) whose partial results attn_reduce_kernel merges by log-sum-exp.
// Batch-invariant mode (backend.h): attn_prefill_kernel takes the decode rows
// too, so a row's result does not depend on whether it was scheduled as a
// decode step or inside a prefill chunk (nor on anything else in the batch):
// its key tiles start at 0 (or its window) in steps of PF_KT and tiles it
// cannot see leave it unchanged exactly. Costs the decode split: one block
// walks a sequence's whole context, up to PF_QT decode rows one after another.
//
// Napkin math (llama-3-8b: 32 layers, 8 kv heads of 128, fp16): each decode
// token reads 32 x 2 x 8 x 128 x 2 B = 128 KiB of K/V per token of context, so
// a batch of B sequences of context C reads B x C x 128 KiB per step: at 4 K
// context and B = 64, 34 GB, ~7 ms at 4.8 TB/s, more than the weights (15 GB).
// Prefill: 4 x n x C x 128 x 32 heads FLOPs per layer (causal: half): 2048
// tokens on 2048 of context is 34 GFLOP per layer, ~0.7 ms at ~50 TFLOP/s of
// fp32 FMA (these kernels use no tensor cores).
// Prefill rows of head_dim 64/128 run on tensor cores where the device has
// them (cuda_prefill_attention.cu says which); attn_prefill_kernel takes the rest.
#include "cuda_common.cuh"
#include "cuda_prefill_attention.cuh"

#define PF_QT 16 // query rows per prefill block
#define PF_KT 32 // keys per tile (one per lane of a warp)
#define PF_THREADS 128
#define DC_THREADS 128
#define DC_CHUNK 128 // keys scored per pass of the decode kernel (one per thread)
#define DC_PART 512  // target keys per partition
#define DC_MAX_PARTS BK_DECODE_MAX_PARTS
#define MAX_HEAD_DIM 256 // decode: one thread per pair of dims, DC_THREADS pairs

// Shared memory of the prefill kernel for head_dim hd, bytes.
static size_t prefill_smem(int hd) {
    return (size_t)(2 * PF_QT * hd + PF_QT * PF_KT + 3 * PF_QT) * sizeof(float) +
           (size_t)2 * PF_KT * (hd + 2) * sizeof(__half);
}

// Offset (in halves) of token t's head-kvh row in a paged cache.
__device__ __forceinline__ size_t cache_off(const int32_t *bt, int t, int kvh, int n_kv_heads,
                                            int block_size, int hd) {
    const size_t blk = (size_t)bt[t / block_size];
    return ((blk * n_kv_heads + kvh) * block_size + (size_t)(t % block_size)) * hd;
}

// q [n_tokens, n_heads * hd] f32, caches [num_blocks, n_kv_heads, block_size, hd]
// KV -> out [n_tokens, n_heads * hd] f32, for the rows of sequences with
// q_len >= min_q_len (2, or 1 in batch-invariant mode). Grid (ceil(n_tokens / PF_QT), n_heads);
// block b takes the flat rows [b*PF_QT, b*PF_QT + PF_QT), split at sequence boundaries. Row i of a
// sequence sits at position ctx - q_len + i and sees keys 0..position (with
// a window w > 0: position - w < key <= position; keys the tile's rows cannot
// see are never read).
// Per row, every key tile updates (m, l, o) in the same order whatever rows
// share the tile (a tile entirely after a row's position, or before its
// window, leaves it unchanged exactly: alpha = 1, p = 0).
// PRECOND: hd even, <= MAX_HEAD_DIM; dynamic smem = prefill_smem(hd).
template <class KV>
__global__ void __launch_bounds__(PF_THREADS)
    attn_prefill_kernel(out_x16 out, const float *q, const KV *k_cache, const KV *v_cache,
                        const int32_t *query_start, const int32_t *context_len,
                        const int32_t *block_tables, const int32_t *seq_of_token, int max_blocks,
                        int n_tokens, int n_heads, int n_kv_heads, int hd, int block_size,
                        float scale, float v_scale, int window, int min_q_len) {
    extern __shared__ float4 smem4[];
    float *qs = (float *)smem4;        // [PF_QT, hd] query rows
    float *os = qs + PF_QT * hd;       // [PF_QT, hd] unnormalized outputs
    float *ps = os + PF_QT * hd;       // [PF_QT, PF_KT] probabilities of the tile
    float *row_m = ps + PF_QT * PF_KT; // [PF_QT] running max
    float *row_l = row_m + PF_QT;      // [PF_QT] running sum
    float *row_a = row_l + PF_QT;      // [PF_QT] rescale of this tile
    const int kstride = hd + 2;        // elements; +2 keeps lanes on distinct banks
    KV *ks = (KV *)(row_a + PF_QT);    // [PF_KT, kstride]
    KV *vs = ks + PF_KT * kstride;     // [PF_KT, kstride]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int h = blockIdx.y, kvh = h / (n_heads / n_kv_heads);
    const int q_dim = n_heads * hd, npairs = hd / 2;
    const int tile_start = (int)blockIdx.x * PF_QT;
    const int tile_end = min(tile_start + PF_QT, n_tokens);
    for (int r0 = tile_start; r0 < tile_end;) { // block-uniform loop
        const int s = seq_of_token[r0];
        const int qs0 = query_start[s], qs1 = query_start[s + 1];
        const int r1 = min(tile_end, qs1);
        const int q_len = qs1 - qs0, nr = r1 - r0;
        if (q_len >= min_q_len) {
            const int first_pos = context_len[s] - q_len + (r0 - qs0);
            const int last_pos = first_pos + nr - 1;
            // the first key any row of the tile sees
            const int first_key = window > 0 ? max(0, first_pos - window + 1) : 0;
            const int32_t *bt = block_tables + (size_t)s * max_blocks;
            for (int e = tid; e < PF_QT * hd; e += PF_THREADS) {
                const int i = e / hd, d = e % hd;
                qs[e] = i < nr ? q[(size_t)(r0 + i) * q_dim + (size_t)h * hd + d] : 0.0f;
                os[e] = 0.0f;
            }
            if (tid < PF_QT) {
                row_m[tid] = -INFINITY;
                row_l[tid] = 0.0f;
            }
            __syncthreads();
            for (int kt0 = first_key / PF_KT * PF_KT; kt0 <= last_pos; kt0 += PF_KT) {
                // K and V tile (the bits of element pairs); keys outside
                // [first_key, last_pos] are zeros (their p is 0, and 0 x
                // garbage could be NaN)
                typedef typename kv_pair_bits<KV>::type pair_bits;
                for (int e = tid; e < PF_KT * npairs; e += PF_THREADS) {
                    const int j = e / npairs, d2 = e % npairs, t = kt0 + j;
                    pair_bits kv = 0u, vv = 0u;
                    if (t >= first_key && t <= last_pos) {
                        const size_t off =
                            cache_off(bt, t, kvh, n_kv_heads, block_size, hd) + 2 * d2;
                        kv = *(const pair_bits *)(k_cache + off);
                        vv = *(const pair_bits *)(v_cache + off);
                    }
                    *(pair_bits *)(ks + j * kstride + 2 * d2) = kv;
                    *(pair_bits *)(vs + j * kstride + 2 * d2) = vv;
                }
                __syncthreads();
                // scores and online softmax: warp w takes rows w, w+4, ...; lane = key
                for (int i = warp; i < PF_QT; i += PF_THREADS / 32) {
                    if (i >= nr) { // warp-uniform
                        ps[i * PF_KT + lane] = 0.0f;
                        if (lane == 0) row_a[i] = 1.0f;
                        continue;
                    }
                    const int t = kt0 + lane, qpos = first_pos + i;
                    float sc = -INFINITY;
                    if (t <= qpos && (window <= 0 || t > qpos - window)) {
                        float a = 0.0f;
                        const float *qi = qs + i * hd;
                        const KV *kj = ks + lane * kstride;
                        for (int d2 = 0; d2 < npairs; d2++) {
                            const float2 kf = kv2_to_f32(kj + 2 * d2);
                            a = fmaf(qi[2 * d2], kf.x, a);
                            a = fmaf(qi[2 * d2 + 1], kf.y, a);
                        }
                        sc = a * scale;
                    }
                    // m stays -inf while no tile held a key the row sees (a
                    // window's rows after the first): then alpha is 1, not NaN
                    const float m_old = row_m[i];
                    const float m_new = fmaxf(m_old, warp_max(sc));
                    const float p = sc == -INFINITY ? 0.0f : expf(sc - m_new);
                    // 0 on the row's first tile with a key it sees
                    const float alpha = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
                    const float psum = warp_sum(p);
                    ps[i * PF_KT + lane] = p;
                    __syncwarp(); // every lane has read row_m[i] before lane 0 replaces it
                    if (lane == 0) {
                        row_l[i] = row_l[i] * alpha + psum;
                        row_m[i] = m_new;
                        row_a[i] = alpha;
                    }
                }
                __syncthreads();
                for (int e = tid; e < nr * hd; e += PF_THREADS) {
                    const int i = e / hd, d = e % hd;
                    float a = os[e] * row_a[i];
                    const float *pi = ps + i * PF_KT;
#pragma unroll 8
                    for (int j = 0; j < PF_KT; j++)
                        a = fmaf(pi[j], kv_to_f32(vs[j * kstride + d]), a);
                    os[e] = a;
                }
                __syncthreads();
            }
            for (int e = tid; e < nr * hd; e += PF_THREADS) {
                const int i = e / hd, d = e % hd;
                out.put((size_t)(r0 + i) * q_dim + (size_t)h * hd + d, os[e] / row_l[i] * v_scale);
            }
            __syncthreads(); // shared memory is reused by the next sequence of the tile
        }
        r0 = r1;
    }
}

// How a context of ctx keys is split for decode: parts of part_len keys (a
// multiple of DC_CHUNK), at most DC_MAX_PARTS. Depends on ctx only.
__device__ __forceinline__ void decode_split(int ctx, int *part_len, int *n_parts) {
    int n0 = (ctx + DC_PART - 1) / DC_PART;
    n0 = n0 < DC_MAX_PARTS ? n0 : DC_MAX_PARTS;
    int per = (ctx + n0 - 1) / n0;
    per = (per + DC_CHUNK - 1) / DC_CHUNK * DC_CHUNK;
    *part_len = per;
    *n_parts = (ctx + per - 1) / per;
}

// Partial results of split decode: [n_seqs, n_heads, zdim] (m, l) pairs and
// [n_seqs, n_heads, zdim, hd] unnormalized outputs.
typedef struct {
    float *ml;
    float *o;
    int zdim;
} decode_parts;

// The decode rows (sequences with q_len == 1): q, caches as above -> out.
// Grid (n_seqs, n_heads, zdim): block (s, h, p) takes keys
// [lo + p * part_len, min(ctx, lo + (p+1) * part_len)) of sequence s (lo:
// decode_first_key; the split is of the ctx - lo keys seen), DC_CHUNK keys at a
// time: scores by warps (one key per warp, lanes over dims), chunk max and sum
// over the block, then p * v with thread (g, pair) adding the keys j = g mod G
// of dims (2 pair, 2 pair + 1). One partition: writes out normalized;
// several: writes (m, l, o) to parts for attn_reduce_kernel.
// PRECOND: hd even, <= MAX_HEAD_DIM; blockDim = DC_THREADS.
template <class KV>
__global__ void __launch_bounds__(DC_THREADS)
    attn_decode_kernel(out_x16 out, const float *q, const KV *k_cache, const KV *v_cache,
                       const int32_t *query_start, const int32_t *context_len,
                       const int32_t *block_tables, int max_blocks, int n_heads, int n_kv_heads,
                       int hd, int block_size, float scale, float v_scale, int window,
                       decode_parts parts) {
    __shared__ float qf[MAX_HEAD_DIM];
    __shared__ float sc[DC_CHUNK];
    __shared__ float red[32];
    __shared__ float2 accg[DC_THREADS]; // [G, npairs] partial outputs per key group

    const int s = blockIdx.x, h = blockIdx.y, part = blockIdx.z;
    const int row = query_start[s];
    if (query_start[s + 1] - row != 1) return; // a prefill sequence: not ours
    const int ctx = context_len[s], lo = decode_first_key(ctx, window);
    int part_len, n_parts;
    decode_split(ctx - lo, &part_len, &n_parts);
    if (part >= n_parts) return;
    const int t0 = lo + part * part_len, t1 = min(ctx, t0 + part_len);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kvh = h / (n_heads / n_kv_heads), q_dim = n_heads * hd;
    const int npairs = hd / 2, groups = DC_THREADS / npairs;
    const int my_pair = tid % npairs, my_group = tid / npairs;
    const bool acc_thread = my_group < groups;
    const int32_t *bt = block_tables + (size_t)s * max_blocks;
    for (int d = tid; d < hd; d += DC_THREADS) qf[d] = q[(size_t)row * q_dim + (size_t)h * hd + d];
    __syncthreads();

    float m = -INFINITY, l = 0.0f;
    float2 acc = make_float2(0.0f, 0.0f);
    for (int c0 = t0; c0 < t1; c0 += DC_CHUNK) {
        const int cn = min(DC_CHUNK, t1 - c0);
#pragma unroll 4 // several keys' loads in flight per warp
        for (int j = warp; j < cn; j += DC_THREADS / 32) {
            const KV *kr = k_cache + cache_off(bt, c0 + j, kvh, n_kv_heads, block_size, hd);
            float a = 0.0f;
            for (int d2 = lane; d2 < npairs; d2 += 32) {
                const float2 kf = kv2_to_f32(kr + 2 * d2);
                a = fmaf(qf[2 * d2], kf.x, a);
                a = fmaf(qf[2 * d2 + 1], kf.y, a);
            }
            a = warp_sum(a);
            if (lane == 0) sc[j] = a * scale;
        }
        __syncthreads();
        const float mine = tid < cn ? sc[tid] : -INFINITY;
        const float m_new = fmaxf(m, block_max(mine, red)); // cn >= 1: finite
        const float p = tid < cn ? expf(mine - m_new) : 0.0f;
        const float alpha = expf(m - m_new); // 0 on the first chunk
        sc[tid] = p;                         // own slot only; block_sum's barrier publishes it
        l = l * alpha + block_sum(p, red);
        m = m_new;
        if (acc_thread) {
            acc.x *= alpha;
            acc.y *= alpha;
#pragma unroll 4
            for (int j = my_group; j < cn; j += groups) {
                const KV *vr = v_cache + cache_off(bt, c0 + j, kvh, n_kv_heads, block_size, hd);
                const float2 vf = kv2_to_f32(vr + 2 * my_pair);
                acc.x = fmaf(sc[j], vf.x, acc.x);
                acc.y = fmaf(sc[j], vf.y, acc.y);
            }
        }
        __syncthreads(); // sc is rewritten by the next chunk
    }
    if (acc_thread) accg[my_group * npairs + my_pair] = acc;
    __syncthreads();
    if (tid >= npairs) return;
    float2 o = accg[tid];
    for (int g = 1; g < groups; g++) {
        o.x += accg[g * npairs + tid].x;
        o.y += accg[g * npairs + tid].y;
    }
    if (n_parts == 1) {
        const size_t dst = (size_t)row * q_dim + (size_t)h * hd + 2 * tid;
        out.put(dst, o.x / l * v_scale);
        out.put(dst + 1, o.y / l * v_scale);
        return;
    }
    const size_t slot = ((size_t)s * n_heads + h) * parts.zdim + part;
    parts.o[slot * hd + 2 * tid] = o.x;
    parts.o[slot * hd + 2 * tid + 1] = o.y;
    if (tid == 0) {
        parts.ml[2 * slot] = m;
        parts.ml[2 * slot + 1] = l;
    }
}

// Merges the partitions of split decode rows: out = sum_p o_p e^(m_p - M) /
// sum_p l_p e^(m_p - M), M = max_p m_p. Grid (n_seqs, n_heads), one thread
// per dim (a loop past blockDim).
__global__ void attn_reduce_kernel(out_x16 out, const int32_t *query_start,
                                   const int32_t *context_len, int n_heads, int hd, int window,
                                   float v_scale, decode_parts parts) {
    const int s = blockIdx.x, h = blockIdx.y;
    const int row = query_start[s];
    if (query_start[s + 1] - row != 1) return;
    int part_len, n_parts;
    const int ctx = context_len[s];
    decode_split(ctx - decode_first_key(ctx, window), &part_len, &n_parts);
    if (n_parts == 1) return; // written by the decode kernel
    const size_t base = ((size_t)s * n_heads + h) * parts.zdim;
    float mx = -INFINITY;
    for (int p = 0; p < n_parts; p++) mx = fmaxf(mx, parts.ml[2 * (base + p)]);
    float denom = 0.0f;
    for (int p = 0; p < n_parts; p++)
        denom += parts.ml[2 * (base + p) + 1] * expf(parts.ml[2 * (base + p)] - mx);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float num = 0.0f;
        for (int p = 0; p < n_parts; p++)
            num += parts.o[(base + p) * hd + d] * expf(parts.ml[2 * (base + p)] - mx);
        out.put((size_t)row * n_heads * hd + (size_t)h * hd + d, num / denom * v_scale);
    }
}

float *cuda_attn_scratch(cuda_backend *c, const bk_attn_batch *bt, size_t floats) {
    if (bt->scratch && floats <= bt->scratch_floats) return bt->scratch;
    if (cuda_ws_reserve(c, &c->attn_part, floats * sizeof(float), "split-decode attention"))
        return NULL;
    return (float *)c->attn_part.p;
}

int cuda_attention_init(cuda_backend *c) {
    // the largest tile (head_dim 256) may need more than the default 48 KB
    size_t need = prefill_smem(MAX_HEAD_DIM);
    int limit = (int)(need < c->smem_optin ? need : c->smem_optin);
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_kernel<__half>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
                  return -1);
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_kernel<__nv_bfloat16>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
                  return -1);
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_kernel<kv_fp8_hw>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
                  return -1);
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_kernel<kv_fp8_sw>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, limit),
                  return -1);
    return cuda_prefill_tc_init(c); // after the others: the emulator keeps one limit
}

// The launches for one KV element type.
template <class KV>
static void attention_launch(cuda_backend *c, out_x16 out, const float *q, const KV *kc,
                             const KV *vc, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                             int head_dim, int block_size, float scale, float v_scale, int window) {
    backend *b = &c->base;
    // prefill rows exist unless every sequence has one row
    const int inv = c->base.batch_invariant;
    if ((bt->max_query_len > 1 || inv) &&
        !cuda_prefill_tc(c, out, q, kc, vc, bt, n_heads, n_kv_heads, head_dim, block_size, scale,
                         window, inv ? 1 : 2)) {
        const size_t smem = prefill_smem(head_dim);
        if (smem > c->smem_optin) {
            cuda_fail(b, "attention: head_dim %d needs %zu bytes of shared memory (device: %zu)",
                      head_dim, smem, c->smem_optin);
            return;
        }
        dim3 grid(blocks_for((size_t)bt->n_tokens, PF_QT), n_heads);
        attn_prefill_kernel<KV><<<grid, PF_THREADS, smem, c->stream>>>(
            out, q, kc, vc, bt->query_start, bt->context_len, bt->block_tables, bt->seq_of_token,
            bt->max_blocks, bt->n_tokens, n_heads, n_kv_heads, head_dim, block_size, scale, v_scale,
            window, inv ? 1 : 2);
        LAUNCH_CHECK(b, "attn_prefill_kernel");
    }
    // decode rows exist unless one sequence holds every row
    if (inv || (bt->n_seqs == 1 && bt->max_query_len > 1)) return;
    // grouped-query shapes: one block per KV head for its query heads
    if (cuda_attn_decode_gqa(c, out, q, kc, vc, bt, n_heads, n_kv_heads, head_dim, block_size,
                             scale, kv_dtype_of(kc), v_scale, window) <= 0)
        return;
    const int seen = window > 0 && window < bt->max_context_len ? window : bt->max_context_len;
    int zdim = (seen + DC_PART - 1) / DC_PART;
    zdim = zdim < 1 ? 1 : zdim > DC_MAX_PARTS ? DC_MAX_PARTS : zdim;
    decode_parts parts = {NULL, NULL, zdim};
    if (zdim > 1) {
        const size_t slots = (size_t)bt->n_seqs * n_heads * zdim;
        parts.ml = cuda_attn_scratch(c, bt, slots * (2 + (size_t)head_dim));
        if (!parts.ml) return;
        parts.o = parts.ml + 2 * slots;
    }
    dim3 grid((unsigned)bt->n_seqs, n_heads, zdim);
    attn_decode_kernel<KV><<<grid, DC_THREADS, 0, c->stream>>>(
        out, q, kc, vc, bt->query_start, bt->context_len, bt->block_tables, bt->max_blocks, n_heads,
        n_kv_heads, head_dim, block_size, scale, v_scale, window, parts);
    LAUNCH_CHECK(b, "attn_decode_kernel");
    if (zdim > 1) {
        attn_reduce_kernel<<<dim3((unsigned)bt->n_seqs, n_heads), 128, 0, c->stream>>>(
            out, bt->query_start, bt->context_len, n_heads, head_dim, window, v_scale, parts);
        LAUNCH_CHECK(b, "attn_reduce_kernel");
    }
}

void cuda_attention(backend *b, float *out_f, const float *q, const void *k_cache,
                    const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                    int head_dim, int block_size, float scale, llm_dtype kv_dtype, float k_scale,
                    float v_scale, int window, const bk_x16 *x16) {
    cuda_backend *c = cuda_of(b);
    const out_x16 out = make_out_x16(out_f, x16);
    if (!out_f && !out.h) {
        cuda_fail(b, "attention: neither an f32 output nor a 16-bit copy");
        return;
    }
    if (bt->n_tokens <= 0 || bt->n_seqs <= 0) return;
    if (head_dim <= 0 || head_dim % 2 || head_dim > MAX_HEAD_DIM || n_kv_heads <= 0 ||
        n_heads % n_kv_heads) {
        cuda_fail(b, "attention: head_dim %d (must be even, <= %d), %d heads over %d kv heads",
                  head_dim, MAX_HEAD_DIM, n_heads, n_kv_heads);
        return;
    }
    if (n_heads > 65535) {
        cuda_fail(b, "attention: %d heads (at most 65535)", n_heads);
        return;
    }
    if (kv_dtype == LLM_F8E4M3 && c->cc_major * 10 + c->cc_minor >= FP8_HW_MIN_CC)
        attention_launch(c, out, q, (const kv_fp8_hw *)k_cache, (const kv_fp8_hw *)v_cache, bt,
                         n_heads, n_kv_heads, head_dim, block_size, scale * k_scale, v_scale,
                         window);
    else if (kv_dtype == LLM_F8E4M3)
        attention_launch(c, out, q, (const kv_fp8_sw *)k_cache, (const kv_fp8_sw *)v_cache, bt,
                         n_heads, n_kv_heads, head_dim, block_size, scale * k_scale, v_scale,
                         window);
    else if (kv_dtype == LLM_BF16)
        attention_launch(c, out, q, (const __nv_bfloat16 *)k_cache, (const __nv_bfloat16 *)v_cache,
                         bt, n_heads, n_kv_heads, head_dim, block_size, scale, 1.0f, window);
    else
        attention_launch(c, out, q, (const __half *)k_cache, (const __half *)v_cache, bt, n_heads,
                         n_kv_heads, head_dim, block_size, scale, 1.0f, window);
}
