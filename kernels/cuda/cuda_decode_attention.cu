// cuda_decode_attention.cu - decode attention (one query row per sequence)
// for grouped-query models, FlashDecoding-style: one block per (sequence, KV
// head, partition) serves every query head of the KV head's group, so each
// K/V byte is read from memory once per step, not once per query head.
//
// Napkin math (llama-3-8b: 32 query heads over 8 KV heads of 128, fp16 K/V;
// H200, ~4.3 TB/s of copy bandwidth, 132 SMs): a decode row reads
// 2 x 8 x 128 x 2 B = 4 KiB of K/V per layer per token of context, 128 KiB
// over the 32 layers; batch 64 at 4 K context reads 34 GB per step, a floor
// of ~8 ms, more than twice the weights' 3.5 ms. The FLOPs are 4 (2 for
// q.k, 2 for p.v) x G = 16 per K/V element pair, ~8 FLOP per byte: far below
// the ~12 FLOP/B where fp32 FMA would limit, so the kernel is memory-bound
// if it keeps enough bytes in flight: Little's law at ~0.7 us of loaded
// latency wants ~23 KB per SM; a block keeps 128 threads x 16 loads x 16 B =
// 32 KB in flight (8 K and 8 V loads per lane, issued before the first use).
//
// Layout of the work: a lane owns 8 consecutive dims (16 bytes of fp16/bf16)
// of a key row, so LPK = head_dim / 8 lanes read one key (16 for head_dim
// 128: a half warp reads 256 contiguous bytes) and the block reads
// NS = 128 / LPK keys at once; a chunk is DG_U = 8 such rounds (64 keys at
// head_dim 128). Per chunk:
//   1. threads j < chunk compute key j's row offset from the page table (one
//      division per key per block, kept in shared memory);
//   2. every lane issues its 8 K and 8 V loads;
//   3. q.k for the G heads of the group (q in registers), reduced across the
//      LPK lanes of the key by xor shuffles, into shared memory;
//   4. online softmax: warp w takes heads w, w + 4; running (m, l) per head;
//   5. p.v into 8 x G accumulators per lane, rescaled once per chunk.
// At the end the key slots' accumulators are added (shuffles within a warp,
// then the 4 warps in a fixed order through shared memory). A context of
// more than DG_PART keys is split into partitions (the split depends on the
// sequence's own length only, so a row's result does not depend on the
// batch); the last partition of a (sequence, KV head) to finish merges their
// (m, l, o) by log-sum-exp (an arrival counter, as the GEMV's split-K), so a
// split step is still one launch (a batch with more (sequence, KV head)
// pairs than ATTN_COUNTERS goes to the per-head kernel).
//
// Covers head_dim 32, 64, 128 and 256 and groups of up to DG_MAX_G query
// heads per KV head (G is rounded up to 1, 2, 4 or 8 for the registers;
// heads beyond G are computed and dropped); other shapes go to the
// per-head kernel of cuda_attention.cu.
#include "cuda_common.cuh"

#define DG_THREADS 128
#define DG_WARPS (DG_THREADS / 32)
#define DG_U 8           // keys per lane per chunk (K and V loads in flight)
#define DG_MAX_CHUNK 256 // keys per chunk at head_dim 32: 32 key slots x DG_U
#define DG_PART 256      // target keys per partition
#define DG_MAX_PARTS BK_DECODE_MAX_PARTS
#define DG_MAX_G 8
#define DG_MAX_HD 256

// How a context of n keys is split: parts of *part_len keys (a multiple of
// every chunk length, 256), at most DG_MAX_PARTS. Depends on n only.
__host__ __device__ __forceinline__ void dg_split(int n, int *part_len, int *n_parts) {
    int p = (n + DG_PART - 1) / DG_PART;
    p = p < DG_MAX_PARTS ? p : DG_MAX_PARTS;
    p = p < 1 ? 1 : p;
    int per = (n + p - 1) / p;
    per = (per + DG_MAX_CHUNK - 1) / DG_MAX_CHUNK * DG_MAX_CHUNK;
    *part_len = per;
    *n_parts = (n + per - 1) / per;
}

// 8 K/V elements of 16 bytes as floats.
__device__ __forceinline__ void dg_unpack8(uint4 raw, const __half *, float *f) {
    const uint32_t u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 a = __half22float2(*(const __half2 *)&u[i]);
        f[2 * i] = a.x;
        f[2 * i + 1] = a.y;
    }
}
__device__ __forceinline__ void dg_unpack8(uint4 raw, const __nv_bfloat16 *, float *f) {
    const uint32_t u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

// fp8 e4m3: the 8 elements are 8 bytes (raw.x, raw.y), element 0 the lowest.
__device__ __forceinline__ void dg_unpack8(uint4 raw, const kv_fp8_hw *, float *f) {
    const uint32_t u[2] = {raw.x, raw.y};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(
            (__nv_fp8x2_storage_t)((u[i / 2] >> (16 * (i % 2))) & 0xffffu), __NV_E4M3);
        f[2 * i] = halfraw_to_f32(r.x);
        f[2 * i + 1] = halfraw_to_f32(r.y);
    }
}
__device__ __forceinline__ void dg_unpack8(uint4 raw, const kv_fp8_sw *, float *f) {
    const uint32_t u[2] = {raw.x, raw.y};
#pragma unroll
    for (int i = 0; i < 8; i++) f[i] = fp8_sw_to_f32((uint8_t)(u[i / 4] >> (8 * (i % 4))));
}

// A lane's 8 elements of a K/V row: 16 bytes of fp16/bf16, 8 of fp8.
template <class KV> __device__ __forceinline__ uint4 dg_load8(const KV *p) {
    if constexpr (sizeof(KV) == 1) {
        const uint2 v = __ldg((const uint2 *)p);
        return make_uint4(v.x, v.y, 0u, 0u);
    } else {
        return __ldg((const uint4 *)p);
    }
}

// q [n_rows, n_heads * hd] f32, caches [num_blocks, n_kv_heads, block_size,
// hd] KV -> out rows of the decode sequences (q_len == 1), or their
// partitions' (m, l) pairs and unnormalized outputs into part_ml / part_o
// ([n_seqs, n_heads, zdim] and [.., hd]) when the context is split.
// Grid (n_seqs, n_kv_heads, zdim); GP >= G query heads per KV head.
// PRECOND: hd in {32, 64, 128, 256}; G <= GP; caches 16-byte aligned.
template <class KV, int GP>
__global__ void __launch_bounds__(DG_THREADS)
    attn_decode_gqa_kernel(out_x16 out, const float *__restrict__ q, const KV *__restrict__ k_cache,
                           const KV *__restrict__ v_cache, const int32_t *__restrict__ query_start,
                           const int32_t *__restrict__ context_len,
                           const int32_t *__restrict__ block_tables, int max_blocks, int G,
                           int n_kv_heads, int hd, int block_size, float scale, float v_scale,
                           int window, float *__restrict__ part_ml, float *__restrict__ part_o,
                           int zdim, unsigned *__restrict__ count) {
    __shared__ size_t koff[DG_MAX_CHUNK];  // row offset of each key of the chunk
    __shared__ float sc[GP][DG_MAX_CHUNK]; // scores, then probabilities
    __shared__ float m_s[GP], l_s[GP], a_s[GP];
    __shared__ float red[DG_WARPS][GP][DG_MAX_HD]; // a warp's sums per dim
    __shared__ int last_part;

    const int s = blockIdx.x, kvh = blockIdx.y, part = blockIdx.z;
    const int row = query_start[s];
    if (query_start[s + 1] - row != 1) return; // a prefill sequence: not ours
    const int ctx = context_len[s], lo = decode_first_key(ctx, window);
    int part_len, n_parts;
    dg_split(ctx - lo, &part_len, &n_parts);
    if (part >= n_parts) return;
    const int t0 = lo + part * part_len, t1 = min(ctx, t0 + part_len);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int lpk = hd / 8, ns = DG_THREADS / lpk, chunk = ns * DG_U;
    const int ks = tid / lpk, li = tid % lpk; // key slot, lane within the key
    const int n_heads = n_kv_heads * G, q_dim = n_heads * hd;
    const int32_t *bt = block_tables + (size_t)s * max_blocks;

    // q of the group's heads, this lane's 8 dims, in registers
    float qr[GP][8];
#pragma unroll
    for (int g = 0; g < GP; g++) {
        const float *qp =
            q + (size_t)row * q_dim + (size_t)(kvh * G + (g < G ? g : 0)) * hd + li * 8;
        const float4 a = __ldg((const float4 *)qp), b = __ldg((const float4 *)qp + 1);
        qr[g][0] = a.x, qr[g][1] = a.y, qr[g][2] = a.z, qr[g][3] = a.w;
        qr[g][4] = b.x, qr[g][5] = b.y, qr[g][6] = b.z, qr[g][7] = b.w;
    }
    float acc[GP][8];
#pragma unroll
    for (int g = 0; g < GP; g++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[g][e] = 0.0f;
    if (tid < GP) {
        m_s[tid] = -INFINITY;
        l_s[tid] = 0.0f;
    }

    for (int c0 = t0; c0 < t1; c0 += chunk) {
        const int cn = min(chunk, t1 - c0);
        // 1. the chunk's key rows (the page table lookup, once per key)
        for (int j = tid; j < cn; j += DG_THREADS) {
            const int t = c0 + j;
            koff[j] = (((size_t)bt[t / block_size] * n_kv_heads + kvh) * block_size +
                       (size_t)(t % block_size)) *
                      hd;
        }
        __syncthreads();
        // 2. every K and V load of the chunk in flight before the first use
        uint4 kr[DG_U], vr[DG_U];
#pragma unroll
        for (int u = 0; u < DG_U; u++) {
            const int j = u * ns + ks;
            if (j < cn) {
                kr[u] = dg_load8(k_cache + koff[j] + li * 8);
                vr[u] = dg_load8(v_cache + koff[j] + li * 8);
            } else {
                kr[u] = make_uint4(0u, 0u, 0u, 0u);
                vr[u] = make_uint4(0u, 0u, 0u, 0u);
            }
        }
        // 3. scores: partial dots of the lane's 8 dims, summed over the key's lanes
#pragma unroll
        for (int u = 0; u < DG_U; u++) {
            float kf[8], d[GP];
            dg_unpack8(kr[u], k_cache, kf);
#pragma unroll
            for (int g = 0; g < GP; g++) {
                d[g] = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++) d[g] = fmaf(qr[g][e], kf[e], d[g]);
            }
            for (int o = lpk / 2; o > 0; o >>= 1) // lanes of a key: an aligned group
#pragma unroll
                for (int g = 0; g < GP; g++) d[g] += __shfl_xor_sync(0xffffffffu, d[g], o);
            const int j = u * ns + ks;
#pragma unroll
            for (int g = 0; g < GP; g++)
                if (li == g % lpk) sc[g][j] = j < cn ? d[g] * scale : -INFINITY;
        }
        __syncthreads();
        // 4. online softmax per head: warp w takes heads w, w + DG_WARPS
        for (int g = warp; g < GP; g += DG_WARPS) {
            float mx = -INFINITY;
            for (int j = lane; j < cn; j += 32) mx = fmaxf(mx, sc[g][j]);
            const float m_old = m_s[g], m_new = fmaxf(m_old, warp_max(mx)); // cn >= 1: finite
            float sum = 0.0f;
            for (int j = lane; j < chunk; j += 32) {
                const float p = j < cn ? expf(sc[g][j] - m_new) : 0.0f;
                sc[g][j] = p;
                sum += p;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                const float alpha = expf(m_old - m_new); // 0 on the first chunk
                a_s[g] = alpha;
                l_s[g] = l_s[g] * alpha + sum;
                m_s[g] = m_new;
            }
        }
        __syncthreads();
        // 5. p.v for the lane's 8 dims over its keys of the chunk
#pragma unroll
        for (int g = 0; g < GP; g++) {
            const float alpha = a_s[g];
#pragma unroll
            for (int e = 0; e < 8; e++) acc[g][e] *= alpha;
        }
#pragma unroll
        for (int u = 0; u < DG_U; u++) {
            float vf[8];
            dg_unpack8(vr[u], v_cache, vf);
            const int j = u * ns + ks; // past cn: p is 0 (step 4) and v zeros
#pragma unroll
            for (int g = 0; g < GP; g++) {
                const float p = sc[g][j];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[g][e] = fmaf(p, vf[e], acc[g][e]);
            }
        }
        // the next chunk's step 1 writes koff (read before the last barrier) and
        // its step 3 writes sc after step 1's barrier: no barrier needed here
    }
    // the key slots of a warp hold the same dims: add them (lanes li, li + lpk, ...)
#pragma unroll
    for (int g = 0; g < GP; g++)
#pragma unroll
        for (int e = 0; e < 8; e++)
            for (int o = lpk; o < 32; o <<= 1)
                acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
    if (lane < lpk)
#pragma unroll
        for (int g = 0; g < GP; g++)
#pragma unroll
            for (int e = 0; e < 8; e++) red[warp][g][li * 8 + e] = acc[g][e];
    __syncthreads();
    // a warp's key slots cover lanes [0, 32): with lpk == 32 every warp holds one key slot
    for (int i = tid; i < G * hd; i += DG_THREADS) {
        const int g = i / hd, d = i % hd;
        float o = 0.0f;
        for (int w = 0; w < DG_WARPS; w++) o += red[w][g][d];
        o *= v_scale; // fp8: the V values' scale (1 for 16-bit caches)
        const int h = kvh * G + g;
        if (n_parts == 1) {
            out.put((size_t)row * q_dim + (size_t)h * hd + d, o / l_s[g]);
        } else {
            const size_t slot = ((size_t)s * n_heads + h) * zdim + part;
            part_o[slot * hd + d] = o;
            if (d == 0) {
                part_ml[2 * slot] = m_s[g];
                part_ml[2 * slot + 1] = l_s[g];
            }
        }
    }
    if (n_parts == 1) return;
    // the last partition to finish merges them all, in partition order
    __threadfence(); // this block's partials are visible before its arrival
    __syncthreads();
    unsigned *cnt = count + (size_t)s * n_kv_heads + kvh;
    if (tid == 0) last_part = atomicAdd(cnt, 1u) == (unsigned)n_parts - 1;
    __syncthreads();
    if (!last_part) return;
    __threadfence();
    for (int i = tid; i < G * hd; i += DG_THREADS) {
        const int g = i / hd, d = i % hd, h = kvh * G + g;
        const size_t base = ((size_t)s * n_heads + h) * zdim;
        float mx = -INFINITY;
        for (int p = 0; p < n_parts; p++) mx = fmaxf(mx, __ldcg(&part_ml[2 * (base + p)]));
        float num = 0.0f, denom = 0.0f;
        for (int p = 0; p < n_parts; p++) {
            const float w = expf(__ldcg(&part_ml[2 * (base + p)]) - mx);
            denom += __ldcg(&part_ml[2 * (base + p) + 1]) * w;
            num += __ldcg(&part_o[(base + p) * hd + d]) * w;
        }
        out.put((size_t)row * q_dim + (size_t)h * hd + d, num / denom);
    }
    if (tid == 0) *cnt = 0; // ready for the next launch
}

template <class KV, int GP>
static void dg_launch(cuda_backend *c, out_x16 out, const float *q, const KV *kc, const KV *vc,
                      const bk_attn_batch *bt, int G, int n_kv_heads, int hd, int block_size,
                      float scale, float v_scale, int window, float *ml, float *po, int zdim,
                      unsigned *count) {
    dim3 grid((unsigned)bt->n_seqs, (unsigned)n_kv_heads, (unsigned)zdim);
    attn_decode_gqa_kernel<KV, GP><<<grid, DG_THREADS, 0, c->stream>>>(
        out, q, kc, vc, bt->query_start, bt->context_len, bt->block_tables, bt->max_blocks, G,
        n_kv_heads, hd, block_size, scale, v_scale, window, ml, po, zdim, count);
    LAUNCH_CHECK(&c->base, "attn_decode_gqa_kernel");
}

template <class KV>
static void dg_launch_g(cuda_backend *c, out_x16 out, const float *q, const KV *kc, const KV *vc,
                        const bk_attn_batch *bt, int G, int n_kv_heads, int hd, int block_size,
                        float scale, float v_scale, int window, float *ml, float *po, int zdim,
                        unsigned *count) {
    if (G == 1)
        dg_launch<KV, 1>(c, out, q, kc, vc, bt, G, n_kv_heads, hd, block_size, scale, v_scale,
                         window, ml, po, zdim, count);
    else if (G == 2)
        dg_launch<KV, 2>(c, out, q, kc, vc, bt, G, n_kv_heads, hd, block_size, scale, v_scale,
                         window, ml, po, zdim, count);
    else if (G <= 4)
        dg_launch<KV, 4>(c, out, q, kc, vc, bt, G, n_kv_heads, hd, block_size, scale, v_scale,
                         window, ml, po, zdim, count);
    else
        dg_launch<KV, 8>(c, out, q, kc, vc, bt, G, n_kv_heads, hd, block_size, scale, v_scale,
                         window, ml, po, zdim, count);
}

int cuda_attn_decode_gqa(cuda_backend *c, out_x16 out, const float *q, const void *k_cache,
                         const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                         int hd, int block_size, float scale, llm_dtype kv_dtype, float v_scale,
                         int window) {
    const int G = n_heads / n_kv_heads;
    if ((hd != 32 && hd != 64 && hd != 128 && hd != 256) || G > DG_MAX_G || n_kv_heads > 65535 ||
        (kv_dtype != LLM_F16 && kv_dtype != LLM_BF16 && kv_dtype != LLM_F8E4M3))
        return 1;
    const int seen = window > 0 && window < bt->max_context_len ? window : bt->max_context_len;
    int part_len, zdim;
    dg_split(seen, &part_len, &zdim);
    // a split batch merges through one arrival counter per (sequence, KV head)
    if (zdim > 1 && (size_t)bt->n_seqs * n_kv_heads > ATTN_COUNTERS) return 1;
    float *ml = NULL, *po = NULL;
    if (zdim > 1) {
        const size_t slots = (size_t)bt->n_seqs * n_heads * zdim;
        ml = cuda_attn_scratch(c, bt, slots * (2 + (size_t)hd));
        if (!ml) return -1;
        po = ml + 2 * slots;
    }
    unsigned *count = zdim > 1 ? c->attn_count : NULL;
    if (kv_dtype == LLM_F8E4M3 && c->cc_major * 10 + c->cc_minor >= FP8_HW_MIN_CC)
        dg_launch_g(c, out, q, (const kv_fp8_hw *)k_cache, (const kv_fp8_hw *)v_cache, bt, G,
                    n_kv_heads, hd, block_size, scale, v_scale, window, ml, po, zdim, count);
    else if (kv_dtype == LLM_F8E4M3)
        dg_launch_g(c, out, q, (const kv_fp8_sw *)k_cache, (const kv_fp8_sw *)v_cache, bt, G,
                    n_kv_heads, hd, block_size, scale, v_scale, window, ml, po, zdim, count);
    else if (kv_dtype == LLM_BF16)
        dg_launch_g(c, out, q, (const __nv_bfloat16 *)k_cache, (const __nv_bfloat16 *)v_cache, bt,
                    G, n_kv_heads, hd, block_size, scale, 1.0f, window, ml, po, zdim, count);
    else
        dg_launch_g(c, out, q, (const __half *)k_cache, (const __half *)v_cache, bt, G, n_kv_heads,
                    hd, block_size, scale, 1.0f, window, ml, po, zdim, count);
    return c->base.failed ? -1 : 0;
}
