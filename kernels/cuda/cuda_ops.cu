// cuda_ops.cu - the CUDA backend's small ops: embedding, RMSNorm (and the
// fused residual add), rope, KV-cache write, SiLU·mul, row gather, argmax (the
// greedy pick). Each one is memory-bound and simple: one pass over its inputs,
// coalesced.
#include <float.h>
#include <limits.h>

#include "cuda_common.cuh"

#define EW_THREADS 256     // threads per block of the elementwise kernels
#define EW_MAX_BLOCKS 4096 // grid-stride beyond this: enough to fill any GPU
#define NORM_THREADS 256   // threads per row of rmsnorm (one block per row)
#define NORM_VPT 4         // float4s a thread keeps in registers: rows up to 4096 wide in one load

#define ARGMAX_THREADS 512 // threads per row of argmax: 16 warps in flight to stream a row

static unsigned int ew_grid(size_t total) {
    unsigned int g = blocks_for(total, EW_THREADS);
    return g < EW_MAX_BLOCKS ? (g ? g : 1) : EW_MAX_BLOCKS;
}

// --- embedding --------------------------------------------------------------------

// table [vocab, dim] (WT; I8 with scales [vocab]), ids [n] -> out [n, dim] f32.
// One block per row. PRECOND: 0 <= ids[i] < vocab (an id outside gives a row
// of NaN rather than a fault).
template <typename WT>
__global__ void embedding_kernel(float *out, const WT *table, const float *scales,
                                 const int32_t *ids, int vocab, int dim) {
    const int i = blockIdx.x;
    const int id = ids[i];
    float *o = out + (size_t)i * dim;
    if (id < 0 || id >= vocab) {
        for (int j = threadIdx.x; j < dim; j += blockDim.x) o[j] = __int_as_float(0x7fc00000);
        return;
    }
    const float s = scales ? scales[id] : 1.0f;
    const size_t base = (size_t)id * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        o[j] = scales ? load_w(table, base + j) * s : load_w(table, base + j);
}

void cuda_embedding(backend *b, float *out, const bk_matrix *t, const int32_t *ids, int n) {
    if (n <= 0) return;
    cudaStream_t st = cuda_of(b)->stream;
    switch (t->dtype) {
    case LLM_F16:
        embedding_kernel<<<n, EW_THREADS, 0, st>>>(out, (const __half *)t->data, NULL, ids, t->rows,
                                                   t->cols);
        break;
    case LLM_BF16:
        embedding_kernel<<<n, EW_THREADS, 0, st>>>(out, (const __nv_bfloat16 *)t->data, NULL, ids,
                                                   t->rows, t->cols);
        break;
    case LLM_F32:
        embedding_kernel<<<n, EW_THREADS, 0, st>>>(out, (const float *)t->data, NULL, ids, t->rows,
                                                   t->cols);
        break;
    case LLM_I8:
        if (!t->scales) {
            cuda_fail(b, "embedding: an I8 table needs its scales");
            return;
        }
        embedding_kernel<<<n, EW_THREADS, 0, st>>>(out, (const int8_t *)t->data, t->scales, ids,
                                                   t->rows, t->cols);
        break;
    default:
        cuda_fail(b, "embedding: unsupported table dtype %d", (int)t->dtype);
        return;
    }
    LAUNCH_CHECK(b, "embedding_kernel");
}

// --- rmsnorm ----------------------------------------------------------------------

// float4 or float helpers of the two rmsnorm kernels.
__device__ __forceinline__ float sumsq(float ss, float4 v) {
    ss = fmaf(v.x, v.x, ss);
    ss = fmaf(v.y, v.y, ss);
    ss = fmaf(v.z, v.z, ss);
    return fmaf(v.w, v.w, ss);
}
__device__ __forceinline__ float sumsq(float ss, float v) {
    return fmaf(v, v, ss);
}
__device__ __forceinline__ float4 add(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
__device__ __forceinline__ float add(float a, float b) {
    return a + b;
}
__device__ __forceinline__ float4 norm_scale(float4 v, float inv, float4 w) {
    return make_float4(v.x * inv * w.x, v.y * inv * w.y, v.z * inv * w.z, v.w * inv * w.w);
}
__device__ __forceinline__ float norm_scale(float v, float inv, float w) {
    return v * inv * w;
}

// x [n, dim] f32, w [dim] f32 -> out [n, dim] = x / sqrt(mean(x^2) + eps) * w;
// ADD: residual [n, dim] += x first, and the sum is normalized. x16 not NULL:
// out rounded to T16 into x16 [n, dim] too (x16_store; ovf: fp16 overflow
// flag or NULL); out NULL: only x16 is written.
// PRECOND: out may alias x, never residual; x does not alias residual; VT is
// float4 only if dim % 4 == 0, every f32 pointer is 16-byte aligned and x16 8-byte.
// One block per row (dim / width(VT) elements e, thread j takes e = j, j +
// NORM_THREADS, ...): the first NORM_VPT of a thread are loaded together, all
// before any store (so a store to out or residual never holds back a load,
// aliased or not), and kept in registers for the second pass; rows wider than
// NORM_VPT x NORM_THREADS x width re-read the rest. The sum of squares adds in
// a fixed order (per thread, then block_sum).
template <bool ADD, typename VT, typename T16>
__global__ void __launch_bounds__(NORM_THREADS)
    rmsnorm_kernel(float *out, float *__restrict__ residual, const float *x,
                   const float *__restrict__ w, int dim, float eps, T16 *__restrict__ x16,
                   unsigned *ovf) {
    __shared__ float red[32];
    const int ne = dim / (int)(sizeof(VT) / sizeof(float)); // elements of VT per row
    const size_t row = blockIdx.x;
    const VT *xr = (const VT *)(x + row * dim);
    VT *rr = ADD ? (VT *)(residual + row * dim) : NULL;
    VT *o = out ? (VT *)(out + row * dim) : NULL;
    T16 *h = x16 ? x16 + row * dim : NULL;
    const VT *wv = (const VT *)w;
    VT v[NORM_VPT];
#pragma unroll
    for (int i = 0; i < NORM_VPT; i++) {
        const int e = threadIdx.x + i * NORM_THREADS;
        if (e < ne) v[i] = ADD ? add(rr[e], xr[e]) : xr[e];
    }
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < NORM_VPT; i++) {
        const int e = threadIdx.x + i * NORM_THREADS;
        if (e < ne) {
            if (ADD) rr[e] = v[i];
            ss = sumsq(ss, v[i]);
        }
    }
    for (int e = threadIdx.x + NORM_VPT * NORM_THREADS; e < ne; e += NORM_THREADS) {
        VT a = xr[e];
        if (ADD) {
            a = add(rr[e], a);
            rr[e] = a;
        }
        ss = sumsq(ss, a);
    }
    ss = block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
#pragma unroll
    for (int i = 0; i < NORM_VPT; i++) {
        const int e = threadIdx.x + i * NORM_THREADS;
        if (e >= ne) continue;
        const VT r = norm_scale(v[i], inv, __ldg(&wv[e]));
        if (o) o[e] = r;
        if (h) x16_store(h, ovf, e, r);
    }
    for (int e = threadIdx.x + NORM_VPT * NORM_THREADS; e < ne; e += NORM_THREADS) {
        const VT r = norm_scale(ADD ? rr[e] : xr[e], inv, __ldg(&wv[e]));
        if (o) o[e] = r;
        if (h) x16_store(h, ovf, e, r);
    }
}

static bool aligned16(const void *p) {
    return ((uintptr_t)p & 15) == 0;
}

// The f32 output of an op that may write only its x16 copy: one of the two.
static bool check_out(backend *b, const char *op, const float *out, const bk_x16 *x16) {
    if (out || (x16 && x16->data)) return true;
    cuda_fail(b, "%s: neither an f32 output nor a 16-bit copy", op);
    return false;
}

template <bool ADD>
static void launch_rmsnorm(backend *b, float *out, float *residual, const float *x, const float *w,
                           int n, int dim, float eps, const bk_x16 *x16) {
    if (n <= 0 || dim <= 0 || !check_out(b, "rmsnorm", out, x16)) return;
    cudaStream_t st = cuda_of(b)->stream;
    void *h = x16 ? x16->data : NULL;
    unsigned *ovf = x16 ? x16->ovf : NULL;
    const bool vec = dim % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(w) &&
                     (!ADD || aligned16(residual)) && ((uintptr_t)h & 7) == 0;
    X16_DISPATCH(x16, {
        if (vec)
            rmsnorm_kernel<ADD, float4, T16>
                <<<n, NORM_THREADS, 0, st>>>(out, residual, x, w, dim, eps, (T16 *)h, ovf);
        else
            rmsnorm_kernel<ADD, float, T16>
                <<<n, NORM_THREADS, 0, st>>>(out, residual, x, w, dim, eps, (T16 *)h, ovf);
    });
    LAUNCH_CHECK(b, ADD ? "rmsnorm_kernel<add>" : "rmsnorm_kernel");
}

void cuda_rmsnorm(backend *b, float *out, const float *x, const float *w, int n, int dim, float eps,
                  const bk_x16 *x16) {
    launch_rmsnorm<false>(b, out, NULL, x, w, n, dim, eps, x16);
}

void cuda_add_rmsnorm(backend *b, float *out, float *residual, const float *x, const float *w,
                      int n, int dim, float eps, const bk_x16 *x16) {
    launch_rmsnorm<true>(b, out, residual, x, w, n, dim, eps, x16);
}

// --- rope -------------------------------------------------------------------------

// v [n, n_heads, head_dim] f32 in place, rotate-half: pair (i, i + half) of a
// head at position p turns by (float)p * inv_freq[i]. One thread per pair.
__global__ void rope_kernel(float *v, const int32_t *positions, const float *inv_freq, int n,
                            int n_heads, int head_dim) {
    const int half = head_dim / 2;
    const size_t total = (size_t)n * n_heads * half;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const int i = (int)(e % half);
        const size_t head = e / half; // row * n_heads + h
        const int row = (int)(head / n_heads);
        const float angle = (float)positions[row] * inv_freq[i];
        const float c = cosf(angle), s = sinf(angle);
        float *x = v + head * head_dim;
        const float a = x[i], bb = x[i + half];
        x[i] = a * c - bb * s;
        x[i + half] = bb * c + a * s;
    }
}

void cuda_rope(backend *b, float *q, float *k, const int32_t *positions, const float *inv_freq,
               int n, int n_heads, int n_kv_heads, int head_dim) {
    if (n <= 0 || head_dim < 2) return;
    cudaStream_t st = cuda_of(b)->stream;
    const size_t half = (size_t)head_dim / 2;
    rope_kernel<<<ew_grid((size_t)n * n_heads * half), EW_THREADS, 0, st>>>(q, positions, inv_freq,
                                                                            n, n_heads, head_dim);
    LAUNCH_CHECK(b, "rope_kernel(q)");
    rope_kernel<<<ew_grid((size_t)n * n_kv_heads * half), EW_THREADS, 0, st>>>(
        k, positions, inv_freq, n, n_kv_heads, head_dim);
    LAUNCH_CHECK(b, "rope_kernel(k)");
}

// --- kv_write ---------------------------------------------------------------------

// k, v [n, n_kv_heads * head_dim] f32 -> k_cache, v_cache KV (__half,
// __nv_bfloat16 or an fp8 type) [num_blocks, n_kv_heads, block_size, head_dim]
// at slot_mapping[row] (block = slot / block_size, offset = slot % block_size);
// slot < 0 skips. One thread per element, round to nearest even as
// f32_to_fp16 / f32_to_bf16 / f32_to_fp8_e4m3 of k / k_scale and v / v_scale
// (IEEE division; the scales are 1 for 16-bit caches, where x / 1 is x).
template <class KV>
__global__ void kv_write_kernel(KV *k_cache, KV *v_cache, const float *k, const float *v,
                                const int32_t *slot_mapping, int n, int n_kv_heads, int head_dim,
                                int block_size, float k_scale, float v_scale) {
    const int kv_dim = n_kv_heads * head_dim;
    const size_t total = (size_t)n * kv_dim;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const int row = (int)(e / kv_dim), c = (int)(e % kv_dim);
        const int slot = slot_mapping[row];
        if (slot < 0) continue;
        const int h = c / head_dim, d = c % head_dim;
        const size_t block = (size_t)(slot / block_size), off = (size_t)(slot % block_size);
        const size_t dst = ((block * n_kv_heads + h) * block_size + off) * head_dim + d;
        kv_store(k_cache + dst, k[e] / k_scale);
        kv_store(v_cache + dst, v[e] / v_scale);
    }
}

template <class KV>
static void kv_write_launch(backend *b, void *k_cache, void *v_cache, const float *k,
                            const float *v, const int32_t *slot_mapping, int n, int n_kv_heads,
                            int head_dim, int block_size, float k_scale, float v_scale) {
    const unsigned grid = ew_grid((size_t)n * n_kv_heads * head_dim);
    kv_write_kernel<KV><<<grid, EW_THREADS, 0, cuda_of(b)->stream>>>(
        (KV *)k_cache, (KV *)v_cache, k, v, slot_mapping, n, n_kv_heads, head_dim, block_size,
        k_scale, v_scale);
    LAUNCH_CHECK(b, "kv_write_kernel");
}

void cuda_kv_write(backend *b, void *k_cache, void *v_cache, const float *k, const float *v,
                   const int32_t *slot_mapping, int n, int n_kv_heads, int head_dim, int block_size,
                   llm_dtype kv_dtype, float k_scale, float v_scale) {
    if (n <= 0) return;
    const cuda_backend *c = cuda_of(b);
    if (kv_dtype == LLM_F8E4M3 && c->cc_major * 10 + c->cc_minor >= FP8_HW_MIN_CC)
        kv_write_launch<kv_fp8_hw>(b, k_cache, v_cache, k, v, slot_mapping, n, n_kv_heads, head_dim,
                                   block_size, k_scale, v_scale);
    else if (kv_dtype == LLM_F8E4M3)
        kv_write_launch<kv_fp8_sw>(b, k_cache, v_cache, k, v, slot_mapping, n, n_kv_heads, head_dim,
                                   block_size, k_scale, v_scale);
    else if (kv_dtype == LLM_BF16)
        kv_write_launch<__nv_bfloat16>(b, k_cache, v_cache, k, v, slot_mapping, n, n_kv_heads,
                                       head_dim, block_size, 1.0f, 1.0f);
    else
        kv_write_launch<__half>(b, k_cache, v_cache, k, v, slot_mapping, n, n_kv_heads, head_dim,
                                block_size, 1.0f, 1.0f);
}

// --- silu_mul, gather_rows --------------------------------------------------------

__device__ __forceinline__ float silu_mul1(float g, float u) {
    return g / (1.0f + expf(-g)) * u;
}
__device__ __forceinline__ float4 silu_mul1(float4 g, float4 u) {
    return make_float4(silu_mul1(g.x, u.x), silu_mul1(g.y, u.y), silu_mul1(g.z, u.z),
                       silu_mul1(g.w, u.w));
}

// gate, up [n, hv] VT, rows ldv apart -> out [n, hv] = silu(gate) * up, VT
// float4 (16-byte aligned pointers, x16 8-byte, hv and ldv counted in
// float4s) or float; x16 not NULL: out rounded to T16 too (as rmsnorm_kernel's),
// out NULL: only x16. out may alias gate when ldv == hv (each element is read
// before it is written, by the same thread).
template <typename VT, typename T16>
__global__ void __launch_bounds__(EW_THREADS)
    silu_mul_kernel(VT *out, const VT *gate, const VT *__restrict__ up, int n, int hv, int ldv,
                    T16 *__restrict__ x16, unsigned *ovf) {
    const size_t total = (size_t)n * hv;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t src = e / hv * ldv + e % hv;
        const VT r = silu_mul1(gate[src], up[src]);
        if (out) out[e] = r;
        if (x16) x16_store(x16, ovf, e, r);
    }
}

void cuda_silu_mul(backend *b, float *out, const float *gate, const float *up, int n, int hidden,
                   int ld, const bk_x16 *x16) {
    if (n <= 0 || hidden <= 0 || !check_out(b, "silu_mul", out, x16)) return;
    cudaStream_t st = cuda_of(b)->stream;
    const size_t total = (size_t)n * hidden;
    void *h = x16 ? x16->data : NULL;
    unsigned *ovf = x16 ? x16->ovf : NULL;
    const bool vec = hidden % 4 == 0 && ld % 4 == 0 && aligned16(out) && aligned16(gate) &&
                     aligned16(up) && ((uintptr_t)h & 7) == 0;
    X16_DISPATCH(x16, {
        if (vec)
            silu_mul_kernel<float4, T16><<<ew_grid(total / 4), EW_THREADS, 0, st>>>(
                (float4 *)out, (const float4 *)gate, (const float4 *)up, n, hidden / 4, ld / 4,
                (T16 *)h, ovf);
        else
            silu_mul_kernel<float, T16><<<ew_grid(total), EW_THREADS, 0, st>>>(
                out, gate, up, n, hidden, ld, (T16 *)h, ovf);
    });
    LAUNCH_CHECK(b, "silu_mul_kernel");
}

// --- qkv_rope_write ---------------------------------------------------------------

// qkv [n, (n_heads + 2 n_kv_heads) * hd] f32 (q | k | v per row) -> q_out
// [n, n_heads * hd] rotated, k rotated and v into the caches at
// slot_mapping[row] (slot < 0: skipped). Block (row, head) over the q, k and
// v heads of the row in that order; thread j < hd / 2 takes the pair (j, j +
// hd / 2): per-head RMSNorm (q_norm / k_norm when not NULL, the sum of
// squares by block_sum), then rope as rope_kernel. A v head is a copy.
// PRECOND: blockDim.x a multiple of 32, >= hd / 2.
template <class KV>
__global__ void __launch_bounds__(256)
    qkv_rope_write_kernel(float *__restrict__ q_out, const float *__restrict__ qkv,
                          const float *__restrict__ q_norm, const float *__restrict__ k_norm,
                          float eps, const int32_t *__restrict__ positions,
                          const float *__restrict__ inv_freq, KV *__restrict__ k_cache,
                          KV *__restrict__ v_cache, const int32_t *__restrict__ slot_mapping,
                          int n_heads, int n_kv_heads, int hd, int block_size, float k_scale,
                          float v_scale) {
    __shared__ float red[32];
    const int i = blockIdx.x, h = blockIdx.y, half = hd / 2, j = threadIdx.x;
    const size_t q_dim = (size_t)n_heads * hd, row = q_dim + 2 * (size_t)n_kv_heads * hd;
    const float *src = qkv + (size_t)i * row + (size_t)h * hd;
    const int slot = slot_mapping[i];
    const bool is_q = h < n_heads, is_v = h >= n_heads + n_kv_heads;
    // the cache row of this k or v head (block-uniform)
    const int kvh = is_v ? h - n_heads - n_kv_heads : h - n_heads;
    const size_t dst = slot < 0 ? 0
                                : (((size_t)(slot / block_size) * n_kv_heads + kvh) * block_size +
                                   (size_t)(slot % block_size)) *
                                      hd;
    if (is_v) {
        if (slot >= 0)
            for (int d = j; d < hd; d += blockDim.x) kv_store(v_cache + dst + d, src[d] / v_scale);
        return;
    }
    float a = 0.0f, bb = 0.0f;
    if (j < half) {
        a = src[j];
        bb = src[j + half];
    }
    const float *w = is_q ? q_norm : k_norm;
    if (w) { // block-uniform: every thread reaches block_sum
        const float ss = block_sum(a * a + bb * bb, red);
        const float inv = 1.0f / sqrtf(ss / (float)hd + eps);
        if (j < half) {
            a = a * inv * w[j];
            bb = bb * inv * w[j + half];
        }
    }
    if (j >= half || (!is_q && slot < 0)) return;
    const float angle = (float)positions[i] * inv_freq[j];
    const float c = cosf(angle), sn = sinf(angle);
    const float ra = a * c - bb * sn, rb = bb * c + a * sn;
    if (is_q) {
        float *o = q_out + (size_t)i * q_dim + (size_t)h * hd;
        o[j] = ra;
        o[j + half] = rb;
    } else {
        kv_store(k_cache + dst + j, ra / k_scale);
        kv_store(k_cache + dst + j + half, rb / k_scale);
    }
}

template <class KV>
static void qkv_rope_write_launch(backend *b, float *q_out, const float *qkv, const float *q_norm,
                                  const float *k_norm, float eps, const int32_t *positions,
                                  const float *inv_freq, void *k_cache, void *v_cache,
                                  const int32_t *slot_mapping, int n, int n_heads, int n_kv_heads,
                                  int head_dim, int block_size, float k_scale, float v_scale) {
    const int threads = (head_dim / 2 + 31) / 32 * 32;
    const dim3 grid((unsigned)n, (unsigned)(n_heads + 2 * n_kv_heads));
    qkv_rope_write_kernel<KV><<<grid, threads, 0, cuda_of(b)->stream>>>(
        q_out, qkv, q_norm, k_norm, eps, positions, inv_freq, (KV *)k_cache, (KV *)v_cache,
        slot_mapping, n_heads, n_kv_heads, head_dim, block_size, k_scale, v_scale);
    LAUNCH_CHECK(b, "qkv_rope_write_kernel");
}

void cuda_qkv_rope_write(backend *b, float *q_out, const float *qkv, const float *q_norm,
                         const float *k_norm, float eps, const int32_t *positions,
                         const float *inv_freq, void *k_cache, void *v_cache,
                         const int32_t *slot_mapping, int n, int n_heads, int n_kv_heads,
                         int head_dim, int block_size, llm_dtype kv_dtype, float k_scale,
                         float v_scale) {
    if (n <= 0) return;
    if (head_dim < 2 || head_dim % 2 || head_dim > 512 || n_heads + 2 * n_kv_heads > 65535) {
        cuda_fail(b, "qkv_rope_write: head_dim %d (even, <= 512), %d + 2 x %d heads", head_dim,
                  n_heads, n_kv_heads);
        return;
    }
    const cuda_backend *c = cuda_of(b);
    if (kv_dtype == LLM_F8E4M3 && c->cc_major * 10 + c->cc_minor >= FP8_HW_MIN_CC)
        qkv_rope_write_launch<kv_fp8_hw>(b, q_out, qkv, q_norm, k_norm, eps, positions, inv_freq,
                                         k_cache, v_cache, slot_mapping, n, n_heads, n_kv_heads,
                                         head_dim, block_size, k_scale, v_scale);
    else if (kv_dtype == LLM_F8E4M3)
        qkv_rope_write_launch<kv_fp8_sw>(b, q_out, qkv, q_norm, k_norm, eps, positions, inv_freq,
                                         k_cache, v_cache, slot_mapping, n, n_heads, n_kv_heads,
                                         head_dim, block_size, k_scale, v_scale);
    else if (kv_dtype == LLM_BF16)
        qkv_rope_write_launch<__nv_bfloat16>(b, q_out, qkv, q_norm, k_norm, eps, positions,
                                             inv_freq, k_cache, v_cache, slot_mapping, n, n_heads,
                                             n_kv_heads, head_dim, block_size, 1.0f, 1.0f);
    else
        qkv_rope_write_launch<__half>(b, q_out, qkv, q_norm, k_norm, eps, positions, inv_freq,
                                      k_cache, v_cache, slot_mapping, n, n_heads, n_kv_heads,
                                      head_dim, block_size, 1.0f, 1.0f);
}

// x [*, dim] VT, rows [m] -> out [m, dim] = x[rows[j]] (dim counted in VT;
// VT float4 needs 16-byte aligned pointers).
template <typename VT>
__global__ void __launch_bounds__(EW_THREADS)
    gather_rows_kernel(VT *__restrict__ out, const VT *__restrict__ x,
                       const int32_t *__restrict__ rows, int m, int dim) {
    const size_t total = (size_t)m * dim;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const size_t j = e / dim, d = e % dim;
        out[e] = x[(size_t)rows[j] * dim + d];
    }
}

void cuda_gather_rows(backend *b, float *out, const float *x, const int32_t *rows, int m, int dim) {
    if (m <= 0 || dim <= 0) return;
    cudaStream_t st = cuda_of(b)->stream;
    if (dim % 4 == 0 && aligned16(out) && aligned16(x))
        gather_rows_kernel<float4><<<ew_grid((size_t)m * dim / 4), EW_THREADS, 0, st>>>(
            (float4 *)out, (const float4 *)x, rows, m, dim / 4);
    else
        gather_rows_kernel<float>
            <<<ew_grid((size_t)m * dim), EW_THREADS, 0, st>>>(out, x, rows, m, dim);
    LAUNCH_CHECK(b, "gather_rows_kernel");
}

// --- argmax -----------------------------------------------------------------------

// (v, i) becomes the better of itself and (ov, oi): the larger value, the
// lower index on a tie. "No value yet" is (-inf, INT_MAX), which loses to
// anything a scan keeps (a scan keeps only values above -inf).
__device__ __forceinline__ void argmax_merge(float &v, int &i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) {
        v = ov;
        i = oi;
    }
}

// x [n, dim] f32 -> out [n] int32: the index of each row's largest value,
// ties to the lowest index, NaN as -inf and +inf as FLT_MAX, -1 when no value
// is above -inf (the contract in backend.h, sampler.c's greedy pick). One
// block per row: each thread scans j = tid, tid + blockDim.x, ... in rising
// order keeping its first maximum (strict >), then the (value, index) pairs
// meet by warp shuffles and a pass over one pair per warp in shared memory.
// The winner is the lowest index among the maxima whatever the merge order,
// so the result is exact and deterministic.
//
// Napkin math: it reads n * dim * 4 bytes once and writes n * 4. At batch 256
// and a 128256-token vocab that is 131 MB, ~30 us at the H200's ~4.8 TB/s,
// where downloading the logits instead moves the same 131 MB over PCIe (2.6
// ms at PCIe 5's ~50 GB/s, more into the engine's pageable buffer) and then
// scans it on one host core; the ids are 1 KB. Small batches use few SMs (one
// block per row: batch 1 reads its 513 KB row on one SM, a few microseconds),
// still well below the copy they replace.
__global__ void argmax_kernel(int32_t *out, const float *x, int dim) {
    __shared__ float red_v[32];
    __shared__ int red_i[32];
    const float *r = x + (size_t)blockIdx.x * dim;
    float v = -INFINITY;
    int i = INT_MAX;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float e = r[j];
        e = isnan(e) ? -INFINITY : e == INFINITY ? FLT_MAX : e;
        if (e > v) {
            v = e;
            i = j;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, i, o);
        argmax_merge(v, i, ov, oi);
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        red_v[warp] = v;
        red_i[warp] = i;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) argmax_merge(v, i, red_v[w], red_i[w]);
    out[blockIdx.x] = v == -INFINITY ? -1 : i;
}

void cuda_argmax(backend *b, int32_t *out, const float *x, int n, int dim) {
    if (n <= 0) return;
    argmax_kernel<<<n, ARGMAX_THREADS, 0, cuda_of(b)->stream>>>(out, x, dim > 0 ? dim : 0);
    LAUNCH_CHECK(b, "argmax_kernel");
}
