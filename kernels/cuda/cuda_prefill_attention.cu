// cuda_prefill_attention.cu - paged causal attention of prefill rows on tensor
// cores, FlashAttention-2 style (the contract: backend.h's attention; the
// fp32 kernels and the dispatch: cuda_attention.cu).
//
// One block of TC_WARPS warps takes TC_BM query rows of one kv head: the
// rows are (token, query head of the GQA group) pairs, row m = token i x G +
// head g (G = n_heads / n_kv_heads), so every query head of the group shares
// each K/V tile; TC_BM / G tokens per block, split at sequence boundaries.
// Warp w owns rows 16w .. 16w+15; its Q tile (rounded to the KV dtype, the
// softmax scale and log2(e) folded in) stays in WMMA fragments, its output
// in fp32 accumulator fragments. Keys go in tiles of TC_BN: K and V tiles
// are copied by 16-byte cp.async (__pipeline_memcpy_async; a plain 16-byte
// load and store below sm_80) straight from the pages, whose ids for the
// tile are staged in shared memory first; V's copy overlaps QK^T and the
// softmax, the next tile's K copy the PV product. Per tile and warp:
// S = Q K^T (16 x TC_BN, fp32) -> shared scratch; online softmax in fp32 by
// lane pairs (a row per pair: masked scores, row max, p = 2^(s - m) rounded to
// the KV dtype, the rounded p summed into l); O rescaled by 2^(m_old - m_new)
// through the scratch when any row's max moved; O += P V. Output O / l.
// Masks: row i of a sequence sits at position context_len - q_len + i
// (chunked prefill over the cached prefix) and sees keys p - window < t <= p
// (window 0: 0 <= t <= p). Keys outside every row's view are never read
// (their smem rows are zeros); a warp skips a tile none of its rows sees.
//
// Batch independence: a row's result is the same bits whatever shares its
// block. Tiles start at multiples of TC_BN; a tile with no key a row sees
// leaves its (m, l, O) unchanged exactly (m_new = m, alpha = 1, p = 0, and
// c + sum of 0 x finite v = c in the MMA), and a tile it sees is computed from
// its own Q row and the keys only.
//
// Precision: Q x scale x log2(e) and P are rounded to the KV dtype (fp16:
// 11 significant bits, bf16: 8) for the MMA; products are exact and summed in
// fp32. Relative L2 error against the CPU backend (fp32 softmax) on random
// data: see tests/gpu/test_gpu_attention.c (TOL_TC_*). An fp16 Q x scale past
// 65504 would become inf: Q of an fp16 model is an fp32 matmul output that
// fits fp16 in practice (|q| x 0.09 < 65504); not checked.
//
// Covers head_dim 64 and 128, G <= TC_BM, sm_75 and later for fp16 K/V,
// sm_80 and later for bf16 (WMMA has no bf16 before sm_80), and only when
// the shared memory fits the device (head_dim 128 needs 76.5 KB: not sm_75);
// anything else runs cuda_attention.cu's fp32 kernel, and so does every
// prefill row when the environment has LLM_CUDA_TC_ATTN=0 (for A/B timing).
//
// Napkin math (H200, 2048-token causal prompt, 32 heads of 128): 4 x 2048^2 /
// 2 x 128 x 32 = 34 GFLOP per layer of MMA (plus the diagonal tiles' masked
// half); at 35% of ~800 TFLOP/s dense bf16, ~0.12 ms. See bench/NOTES.md.
#include <cuda_pipeline_primitives.h>
#include <stdlib.h>
#include <string.h>
#include <mma.h>
#include <type_traits>

#include "cuda_prefill_attention.cuh"

using namespace nvcuda;

#define TC_BM 64 // query rows (token x group head) per block
#define TC_BN 64 // keys per tile
#define TC_WARPS (TC_BM / 16)
#define TC_THREADS (32 * TC_WARPS)

// What the MMA multiplies for a KV element type, and how a chunk of 8 cached
// elements gets to shared memory as such (fp16/bf16: an asynchronous 16-byte
// copy; an fp8 cache would load 8 bytes and convert them here).
template <class KV> struct tc_kv;
template <> struct tc_kv<__half> { typedef __half mma_t; };
template <> struct tc_kv<__nv_bfloat16> { typedef __nv_bfloat16 mma_t; };
template <class KV>
__device__ __forceinline__ void kv_chunk_load(typename tc_kv<KV>::mma_t *dst, const KV *src) {
    __pipeline_memcpy_async(dst, src, 16);
}

// Shared memory of one block for head_dim HD (every piece a multiple of 128
// bytes, every WMMA pointer 32-byte aligned).
template <int HD> struct tc_shape {
    static constexpr int LDK = HD + 8;                          // elements per K/V row
    static constexpr int LDS = (HD > TC_BN ? HD : TC_BN) + 4;   // floats per scratch row
    static constexpr int LDP = TC_BN + 8;                       // elements per P row
    static constexpr size_t kv_bytes = (size_t)TC_BN * LDK * 2; // one K or V tile
    static constexpr size_t scratch_bytes = (size_t)TC_BM * LDS * 4;
    static constexpr size_t p_bytes = (size_t)TC_BM * LDP * 2;
    static constexpr size_t pages_bytes = 2 * TC_BN * 4;
    static constexpr size_t smem = 2 * kv_bytes + scratch_bytes + p_bytes + pages_bytes;
};

typedef struct {
    out_x16 out;
    const float *q;
    const int32_t *query_start, *context_len, *block_tables, *seq_of_token;
    int max_blocks, n_tokens, n_heads, n_kv_heads, block_size, window, min_q_len;
    float qscale; // softmax scale x log2(e), folded into Q
} tc_args;

// The rows of one sequence a block takes: tokens r0 .. r0 + nr - 1, at
// positions first_pos ..; keys first_key .. last_pos are all any row sees.
typedef struct {
    int r0, nr, first_pos, first_key, last_pos, kvh, G;
    const int32_t *bt;
} tc_seg;

// pages[j] = the page of key kt0 + j (keys no row sees: 0, unused).
__device__ __forceinline__ void tc_stage_pages(int *pages, const tc_seg &sg, const tc_args &a,
                                               int kt0) {
    const int j = threadIdx.x, t = kt0 + j;
    if (j < TC_BN) pages[j] = t >= sg.first_key && t <= sg.last_pos ? sg.bt[t / a.block_size] : 0;
}

// Starts the copy of the K or V tile at key kt0 into dst and commits it as
// one group (an empty group when !any: the group count stays uniform).
template <class KV, int HD>
__device__ __forceinline__ void tc_issue(typename tc_kv<KV>::mma_t *dst, const KV *cache,
                                         const int *pages, const tc_seg &sg, const tc_args &a,
                                         int kt0, bool any) {
    constexpr int CPK = HD / 8; // 16-byte chunks per key
    for (int c = threadIdx.x; any && c < TC_BN * CPK; c += TC_THREADS) {
        const int j = c / CPK, part = c % CPK, t = kt0 + j;
        typename tc_kv<KV>::mma_t *d = dst + j * tc_shape<HD>::LDK + part * 8;
        if (t >= sg.first_key && t <= sg.last_pos) {
            const size_t row =
                ((size_t)pages[j] * a.n_kv_heads + sg.kvh) * a.block_size + t % a.block_size;
            kv_chunk_load<KV>(d, cache + row * HD + part * 8);
        } else {
            *(uint4 *)d = make_uint4(0u, 0u, 0u, 0u); // p = 0 there; 0 x garbage could be NaN
        }
    }
    __pipeline_commit();
}

// The block's Q rows x qscale in the MMA type into qs [TC_BM, LDK] (rows of
// no token: zeros).
template <class T, int HD>
__device__ __forceinline__ void tc_stage_q(T *qs, const tc_seg &sg, const tc_args &a) {
    const size_t q_dim = (size_t)a.n_heads * HD;
    for (int e = threadIdx.x; e < TC_BM * HD / 4; e += TC_THREADS) {
        const int m = e / (HD / 4), d = 4 * (e % (HD / 4)), i = m / sg.G, g = m % sg.G;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (i < sg.nr)
            v = *(const float4 *)(a.q + (size_t)(sg.r0 + i) * q_dim +
                                  (size_t)(sg.kvh * sg.G + g) * HD + d);
        T *o = qs + m * tc_shape<HD>::LDK + d;
        kv_store(o, v.x * a.qscale), kv_store(o + 1, v.y * a.qscale);
        kv_store(o + 2, v.z * a.qscale), kv_store(o + 3, v.w * a.qscale);
    }
}

// Online softmax of the lane's half row of the warp's scores sw [16, LDS]
// (lanes 2r, 2r+1: row r): p into pw [16, LDP] rounded to T, (m, l) updated.
// Returns alpha = 2^(m_old - m_new), 1 when the row saw nothing yet.
template <class T, int HD>
__device__ __forceinline__ float tc_softmax(const float *sw, T *pw, int kt0, bool valid, int qpos,
                                            int window, float &m_run, float &l_run) {
    const int lane = threadIdx.x & 31, r = lane >> 1, c0 = (lane & 1) * (TC_BN / 2);
    const float *srow = sw + r * tc_shape<HD>::LDS + c0;
    T *prow = pw + r * tc_shape<HD>::LDP + c0;
    // visible columns j of this half row: jlo <= j <= jhi
    const int jlo = (window > 0 ? qpos - window + 1 : 0) - kt0 - c0, jhi = qpos - kt0 - c0;
    float mx = -INFINITY;
    for (int j = 0; j < TC_BN / 2; j++)
        if (valid && j >= jlo && j <= jhi) mx = fmaxf(mx, srow[j]);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m_run, mx);
    float sum = 0.0f;
    for (int j = 0; j < TC_BN / 2; j++) {
        T p;
        kv_store(&p, valid && j >= jlo && j <= jhi ? exp2f(srow[j] - m_new) : 0.0f);
        prow[j] = p;
        sum += kv_to_f32(p); // l sums what the MMA multiplies
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m_run - m_new);
    l_run = l_run * alpha + sum;
    m_run = m_new;
    return alpha;
}

template <class T> using tc_acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
template <class T> using tc_a = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;

// The warp's S = Q K^T for the tile in ks, into its scratch sw.
template <class T, int HD>
__device__ __forceinline__ void tc_scores(float *sw, const T *ks, const tc_a<T> *qf) {
    for (int n = 0; n < TC_BN / 16; n++) {
        tc_acc<T> sf;
        wmma::fill_fragment(sf, 0.0f);
        for (int kk = 0; kk < HD / 16; kk++) {
            // B(d, j) = K[j][d]: column-major with leading dimension LDK
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
            wmma::load_matrix_sync(kf, ks + n * 16 * tc_shape<HD>::LDK + kk * 16,
                                   tc_shape<HD>::LDK);
            wmma::mma_sync(sf, qf[kk], kf, sf);
        }
        wmma::store_matrix_sync(sw + n * 16, sf, tc_shape<HD>::LDS, wmma::mem_row_major);
    }
    __syncwarp(); // the lanes read each other's scores
}

// O *= alpha per row, through the scratch (the fragments' layout is opaque),
// when some row's alpha is not 1.
template <class T, int HD>
__device__ __forceinline__ void tc_rescale(tc_acc<T> *of, float *sw, float alpha) {
    // a warp vote: also every lane is done reading the scores in sw
    if (!__any_sync(0xffffffffu, alpha != 1.0f)) return;
    for (int n = 0; n < HD / 16; n++)
        wmma::store_matrix_sync(sw + n * 16, of[n], tc_shape<HD>::LDS, wmma::mem_row_major);
    __syncwarp();
    const int lane = threadIdx.x & 31;
    float *orow = sw + (lane >> 1) * tc_shape<HD>::LDS + (lane & 1) * (HD / 2);
    for (int d = 0; d < HD / 2; d++) orow[d] *= alpha;
    __syncwarp();
    for (int n = 0; n < HD / 16; n++)
        wmma::load_matrix_sync(of[n], sw + n * 16, tc_shape<HD>::LDS, wmma::mem_row_major);
}

// O += P V for the tile in vs.
template <class T, int HD>
__device__ __forceinline__ void tc_pv(tc_acc<T> *of, const T *pw, const T *vs) {
    __syncwarp(); // p of every lane is written
    tc_a<T> pf[TC_BN / 16];
    for (int kk = 0; kk < TC_BN / 16; kk++)
        wmma::load_matrix_sync(pf[kk], pw + kk * 16, tc_shape<HD>::LDP);
    for (int n = 0; n < HD / 16; n++)
        for (int kk = 0; kk < TC_BN / 16; kk++) {
            // B(j, d) = V[j][d]: row-major with leading dimension LDK
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
            wmma::load_matrix_sync(vf, vs + kk * 16 * tc_shape<HD>::LDK + n * 16,
                                   tc_shape<HD>::LDK);
            wmma::mma_sync(of[n], pf[kk], vf, of[n]);
        }
}

// Writes the warp's rows O / l to out.
template <class T, int HD>
__device__ __forceinline__ void tc_write(tc_acc<T> *of, float *sw, const tc_seg &sg,
                                         const tc_args &a, float l_run) {
    for (int n = 0; n < HD / 16; n++)
        wmma::store_matrix_sync(sw + n * 16, of[n], tc_shape<HD>::LDS, wmma::mem_row_major);
    __syncwarp();
    const int lane = threadIdx.x & 31, m = (threadIdx.x >> 5) * 16 + (lane >> 1);
    const int i = m / sg.G, g = m % sg.G, d0 = (lane & 1) * (HD / 2);
    if (i >= sg.nr) return;
    const float *orow = sw + (lane >> 1) * tc_shape<HD>::LDS + d0;
    const size_t o = (size_t)(sg.r0 + i) * a.n_heads * HD + (size_t)(sg.kvh * sg.G + g) * HD + d0;
    for (int d = 0; d < HD / 2; d++) a.out.put(o + d, orow[d] / l_run);
}

// One sequence's rows of the block (block-uniform; every thread calls it).
template <class KV, int HD>
__device__ void tc_segment(const tc_seg &sg, const tc_args &a, const KV *k_cache, const KV *v_cache,
                           unsigned char *smem) {
    typedef typename tc_kv<KV>::mma_t T;
    typedef tc_shape<HD> S;
    T *ks = (T *)smem, *vs = (T *)(smem + S::kv_bytes);
    float *scratch = (float *)(smem + 2 * S::kv_bytes);
    T *ps = (T *)(smem + 2 * S::kv_bytes + S::scratch_bytes);
    int *pages = (int *)(smem + 2 * S::kv_bytes + S::scratch_bytes + S::p_bytes); // [2][TC_BN]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *sw = scratch + warp * 16 * S::LDS;
    T *pw = ps + warp * 16 * S::LDP;
    // this lane's row (lanes 2r, 2r+1 share row r of the warp) and the warp's tokens
    const int i_row = (warp * 16 + (lane >> 1)) / sg.G, qpos = sg.first_pos + i_row;
    const bool valid = i_row < sg.nr;
    const int i_lo = warp * 16 / sg.G, i_hi = min((warp * 16 + 15) / sg.G, sg.nr - 1);

    const int kt_begin = sg.first_key / TC_BN * TC_BN;
    tc_stage_pages(pages, sg, a, kt_begin);
    __syncthreads();
    tc_issue<KV, HD>(ks, k_cache, pages, sg, a, kt_begin, true);
    tc_issue<KV, HD>(vs, v_cache, pages, sg, a, kt_begin, true);
    tc_stage_q<T, HD>((T *)scratch, sg, a); // the scratch holds Q until the fragments have it
    __syncthreads();
    tc_a<T> qf[HD / 16];
    for (int kk = 0; kk < HD / 16; kk++)
        wmma::load_matrix_sync(qf[kk], (T *)scratch + warp * 16 * S::LDK + kk * 16, S::LDK);
    tc_acc<T> of[HD / 16];
    for (int n = 0; n < HD / 16; n++) wmma::fill_fragment(of[n], 0.0f);
    float m_run = -INFINITY, l_run = 0.0f;
    __syncthreads(); // Q is in the fragments: the scratch takes scores now

    for (int kt0 = kt_begin, it = 0; kt0 <= sg.last_pos; kt0 += TC_BN, it++) {
        int *next_pages = pages + ((it + 1) & 1) * TC_BN;
        const bool more = kt0 + TC_BN <= sg.last_pos;
        if (more) tc_stage_pages(next_pages, sg, a, kt0 + TC_BN); // read after the barrier below
        __pipeline_wait_prior(1); // this thread's copies of K(it); V(it) may still fly
        __syncthreads();
        // whether any row of the warp sees a key of the tile (warp-uniform)
        const bool live = i_lo < sg.nr && kt0 <= sg.first_pos + i_hi &&
                          (a.window <= 0 || kt0 + TC_BN > sg.first_pos + i_lo - a.window + 1);
        if (live) {
            tc_scores<T, HD>(sw, ks, qf);
            const float alpha = tc_softmax<T, HD>(sw, pw, kt0, valid, qpos, a.window, m_run, l_run);
            tc_rescale<T, HD>(of, sw, alpha);
        }
        __syncthreads(); // every warp is done with ks
        tc_issue<KV, HD>(ks, k_cache, next_pages, sg, a, kt0 + TC_BN, more);
        __pipeline_wait_prior(1); // V(it); K(it + 1) may still fly
        __syncthreads();
        if (live) tc_pv<T, HD>(of, pw, vs);
        __syncthreads(); // every warp is done with vs
        tc_issue<KV, HD>(vs, v_cache, next_pages, sg, a, kt0 + TC_BN, more);
    }
    __pipeline_wait_prior(0);
    tc_write<T, HD>(of, sw, sg, a, l_run);
    __syncthreads(); // shared memory is reused by the next sequence of the block
}

// Grid (ceil(n_tokens / (TC_BM / G)), n_kv_heads), TC_THREADS threads,
// tc_shape<HD>::smem bytes of dynamic shared memory.
template <class KV, int HD>
__global__ void __launch_bounds__(TC_THREADS)
    attn_prefill_tc_kernel(tc_args a, const KV *k_cache, const KV *v_cache) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    if constexpr (std::is_same<KV, __nv_bfloat16>::value) { // no bf16 WMMA: never launched
        __trap();
    } else
#endif
    {
        extern __shared__ float4 smem4[];
        tc_seg sg;
        sg.G = a.n_heads / a.n_kv_heads;
        sg.kvh = blockIdx.y;
        const int tpb = TC_BM / sg.G;
        const int tile_start = (int)blockIdx.x * tpb, tile_end = min(tile_start + tpb, a.n_tokens);
        for (int r0 = tile_start; r0 < tile_end;) { // block-uniform loop
            const int s = a.seq_of_token[r0];
            const int qs0 = a.query_start[s], qs1 = a.query_start[s + 1];
            const int r1 = min(tile_end, qs1), q_len = qs1 - qs0;
            if (q_len >= a.min_q_len) {
                sg.r0 = r0;
                sg.nr = r1 - r0;
                sg.first_pos = a.context_len[s] - q_len + (r0 - qs0);
                sg.last_pos = sg.first_pos + sg.nr - 1;
                sg.first_key = a.window > 0 ? max(0, sg.first_pos - a.window + 1) : 0;
                sg.bt = a.block_tables + (size_t)s * a.max_blocks;
                tc_segment<KV, HD>(sg, a, k_cache, v_cache, (unsigned char *)smem4);
            }
            r0 = r1;
        }
    }
}

template <class KV, int HD>
static void tc_launch(cuda_backend *c, out_x16 out, const float *q, const KV *kc, const KV *vc,
                      const bk_attn_batch *bt, int n_heads, int n_kv_heads, int block_size,
                      float scale, int window, int min_q_len) {
    tc_args a;
    a.out = out;
    a.q = q;
    a.query_start = bt->query_start;
    a.context_len = bt->context_len;
    a.block_tables = bt->block_tables;
    a.seq_of_token = bt->seq_of_token;
    a.max_blocks = bt->max_blocks;
    a.n_tokens = bt->n_tokens;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.block_size = block_size;
    a.window = window;
    a.min_q_len = min_q_len;
    a.qscale = scale * 1.4426950408889634f; // log2(e): the softmax runs on exp2
    const int tpb = TC_BM / (n_heads / n_kv_heads);
    dim3 grid(blocks_for((size_t)bt->n_tokens, tpb), n_kv_heads);
    attn_prefill_tc_kernel<KV, HD><<<grid, TC_THREADS, tc_shape<HD>::smem, c->stream>>>(a, kc, vc);
    LAUNCH_CHECK(&c->base, "attn_prefill_tc_kernel");
}

// Whether the kernel for KV and head_dim hd runs on this device.
template <class KV> static bool tc_covers(const cuda_backend *c, int hd, int group) {
    const int cc = c->cc_major * 10 + c->cc_minor;
    const char *off = getenv("LLM_CUDA_TC_ATTN"); // "0": the fp32 kernel (A/B timing)
    if (off && strcmp(off, "0") == 0) return false;
    if (group > TC_BM || cc < 75 || (std::is_same<KV, __nv_bfloat16>::value && cc < 80))
        return false;
    if (hd == 64) return tc_shape<64>::smem <= c->smem_optin;
    if (hd == 128) return tc_shape<128>::smem <= c->smem_optin;
    return false;
}

template <class KV>
static int tc_dispatch(cuda_backend *c, out_x16 out, const float *q, const KV *kc, const KV *vc,
                       const bk_attn_batch *bt, int n_heads, int n_kv_heads, int hd, int block_size,
                       float scale, int window, int min_q_len) {
    if (!tc_covers<KV>(c, hd, n_heads / n_kv_heads)) return 0;
    if (hd == 64)
        tc_launch<KV, 64>(c, out, q, kc, vc, bt, n_heads, n_kv_heads, block_size, scale, window,
                          min_q_len);
    else
        tc_launch<KV, 128>(c, out, q, kc, vc, bt, n_heads, n_kv_heads, block_size, scale, window,
                           min_q_len);
    return 1;
}

int cuda_prefill_tc(cuda_backend *c, out_x16 out, const float *q, const __half *k_cache,
                    const __half *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                    int head_dim, int block_size, float scale, int window, int min_q_len) {
    return tc_dispatch(c, out, q, k_cache, v_cache, bt, n_heads, n_kv_heads, head_dim, block_size,
                       scale, window, min_q_len);
}

int cuda_prefill_tc(cuda_backend *c, out_x16 out, const float *q, const __nv_bfloat16 *k_cache,
                    const __nv_bfloat16 *v_cache, const bk_attn_batch *bt, int n_heads,
                    int n_kv_heads, int head_dim, int block_size, float scale, int window,
                    int min_q_len) {
    return tc_dispatch(c, out, q, k_cache, v_cache, bt, n_heads, n_kv_heads, head_dim, block_size,
                       scale, window, min_q_len);
}

int cuda_prefill_tc_init(cuda_backend *c) {
    // head_dim 64 fits the default 48 KB; 128 needs the opt-in
    static_assert(tc_shape<64>::smem <= 48 * 1024, "head_dim 64 tile over 48 KB");
    if (tc_shape<128>::smem > c->smem_optin) return 0; // not covered: never launched
    const int need = (int)tc_shape<128>::smem;
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_tc_kernel<__half, 128>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, need),
                  return -1);
    CUDA_CHECK_OR(&c->base,
                  cudaFuncSetAttribute(attn_prefill_tc_kernel<__nv_bfloat16, 128>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, need),
                  return -1);
    return 0;
}
