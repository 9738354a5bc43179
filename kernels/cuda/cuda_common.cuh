// cuda_common.cuh - private to kernels/cuda/: the CUDA backend's state, the
// error-checking macros, and the small device helpers the kernels share.
//
// Errors: every CUDA and cuBLAS call goes through CUDA_CHECK / CUBLAS_CHECK,
// and every launch through LAUNCH_CHECK. The first failure sets b->failed and
// writes "call: error name (description)" into b->error; later failures keep
// that first message (a sticky device error makes everything after it fail).
#ifndef LLM_CUDA_COMMON_CUH
#define LLM_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "backend.h"
#include "util.h"
}

// A device buffer allocated once and grown rarely (never shrunk).
typedef struct {
    void *p;
    size_t bytes;
} cuda_workspace;

// Workspaces allocated once at creation, fixed in size, so that no op of a
// step allocates (a cudaMalloc/cudaFree may synchronize the device):
// - cuBLAS's (cublasSetWorkspace), the size NVIDIA recommends for Hopper;
#define BLAS_WS_BYTES (32u << 20)
// - activations rounded to fp16/bf16 for cuBLAS: a matmul of more rows goes
//   in row chunks that fit (4096 rows of 4096 at once, 1170 of 14336: still
//   compute-bound GEMMs, ~1170 FLOP per weight byte);
#define ACT_WS_BYTES (32u << 20)
// - weight tiles dequantized to fp16 for cuBLAS (I8; BF16 on sm_75);
#define WTILE_BYTES (32u << 20)
// - the split-K GEMV's partial sums and per-row-group arrival counters. The
//   bounds follow from gemv_splits (cuda_matmul.cu): a matrix is split only
//   when it has fewer than 512 row groups of 32 rows (so < 2048 groups at one
//   row per warp), and splits x rows < 1024 x 32, times 8 rows of x.
#define GEMV_COUNTERS 2048
#define GEMV_PARTIAL_FLOATS (1u << 18) // 1 MiB
// - the grouped decode attention's arrival counters, one per (sequence, KV
//   head) of a split step, zero between launches (256 KiB: 8192 sequences of
//   8 KV heads);
#define ATTN_COUNTERS (1u << 16)
// The split-decode attention partials (n_seqs x n_heads x 16 partitions x
// (head_dim + 2) floats, 68 MiB at 256 sequences of 32 heads of 128) come
// from the forward pass's workspace (bk_attn_batch.scratch), counted by the
// memory plan; attn_part, grown on first use, only serves callers without it.

#define OVF_SLOTS 1024 // fp16-converting matmuls between two overflow checks

typedef struct {
    backend base; // first: a backend * is a cuda_backend *
    cudaStream_t stream;
    cublasHandle_t blas;
    int cc_major, cc_minor;
    size_t smem_optin;        // most dynamic shared memory a block may opt in to
    void *blas_ws;            // BLAS_WS_BYTES, cuBLAS's workspace
    void *act;                // ACT_WS_BYTES: activations converted to fp16/bf16 for cuBLAS
    void *wtile;              // WTILE_BYTES: weight tiles dequantized to fp16 for cuBLAS
    float *gemv_part;         // GEMV_PARTIAL_FLOATS: split-K GEMV partial sums
    unsigned *gemv_count;     // GEMV_COUNTERS, zero between launches
    unsigned *attn_count;     // ATTN_COUNTERS, zero between launches
    cuda_workspace attn_part; // split-decode partial results (grown on first use)
    // fp16 overflow: the matmuls since the last check that rounded their
    // activations to fp16 each own a flag (ovf_flags[k], zero between checks)
    // that the conversion sets when a value is beyond the fp16 range; their
    // names are in ovf_ops. cuda_check_overflow reads them.
    unsigned *ovf_flags; // [OVF_SLOTS] device
    int ovf_n;
    int capturing; // between graph_begin and graph_end: nothing may allocate
    struct {
        int layer, rows, cols;
        const char *name;
    } ovf_ops[OVF_SLOTS];
} cuda_backend;

// Waits for queued work and fails the backend, naming the first matmul whose
// activations overflowed fp16 since the last check (download() and sync()
// call it). Returns -1 then, else 0.
int cuda_check_overflow(cuda_backend *c);

// Records the first error of the backend (printf-style message).
void cuda_fail(backend *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *cublas_status_name(cublasStatus_t s);

// Makes w hold at least `bytes` (contents are not kept). Returns 0, or -1
// with the backend's error set.
int cuda_ws_reserve(cuda_backend *c, cuda_workspace *w, size_t bytes, const char *what);

// Evaluates a cudaError_t expression; on failure records it and runs `on_err`.
#define CUDA_CHECK_OR(b, call, on_err)                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            cuda_fail((b), "%s: %s (%s)", #call, cudaGetErrorName(e_), cudaGetErrorString(e_));    \
            on_err;                                                                                \
        }                                                                                          \
    } while (0)
#define CUDA_CHECK(b, call) CUDA_CHECK_OR(b, call, return )

#define CUBLAS_CHECK(b, call)                                                                      \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            cuda_fail((b), "%s: %s", #call, cublas_status_name(s_));                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

// After a kernel launch: a bad configuration or an earlier asynchronous fault.
#define LAUNCH_CHECK(b, name)                                                                      \
    do {                                                                                           \
        cudaError_t e_ = cudaGetLastError();                                                       \
        if (e_ != cudaSuccess) {                                                                   \
            cuda_fail((b), "launch of %s: %s (%s)", name, cudaGetErrorName(e_),                    \
                      cudaGetErrorString(e_));                                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static inline cuda_backend *cuda_of(backend *b) {
    return (cuda_backend *)b;
}

static inline unsigned int blocks_for(size_t n, int threads) {
    return (unsigned int)((n + (size_t)threads - 1) / (size_t)threads);
}

// Most blocks of a 1-D elementwise launch; kernels loop with a grid stride.
#define MAX_GRID_1D 65535u

// --- device helpers -------------------------------------------------------------

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t v) {
    return __uint_as_float((uint32_t)v << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum / max of one value per thread, the same fixed order every
// time; every thread gets the result. red: 32 floats of shared memory.
// PRECOND: all threads of the block call it; blockDim.x % 32 == 0.
__device__ __forceinline__ float block_sum(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < nw; i++) s += red[i];
    __syncthreads();
    return s;
}

__device__ __forceinline__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float m = -INFINITY;
    for (int i = 0; i < nw; i++) m = fmaxf(m, red[i]);
    __syncthreads();
    return m;
}

// One weight element as f32 (I8 without its scale).
__device__ __forceinline__ float load_w(const __half *w, size_t i) {
    return __half2float(w[i]);
}
__device__ __forceinline__ float load_w(const __nv_bfloat16 *w, size_t i) {
    return bf16_bits_to_f32(((const uint16_t *)w)[i]);
}
__device__ __forceinline__ float load_w(const float *w, size_t i) {
    return w[i];
}
__device__ __forceinline__ float load_w(const int8_t *w, size_t i) {
    return (float)w[i];
}

// K/V cache elements (fp16 or bf16; fp8 below) to and from f32.
__device__ __forceinline__ float kv_to_f32(__half h) {
    return __half2float(h);
}
__device__ __forceinline__ float kv_to_f32(__nv_bfloat16 h) {
    return __bfloat162float(h);
}
__device__ __forceinline__ float2 kv2_to_f32(const __half *p) { // p 4-byte aligned
    return __half22float2(*(const __half2 *)p);
}
__device__ __forceinline__ float2 kv2_to_f32(const __nv_bfloat16 *p) {
    return __bfloat1622float2(*(const __nv_bfloat162 *)p);
}
// The keys a decode row of a context of ctx tokens sees: [first, ctx) (a
// sliding window of w keeps the last w).
__device__ __forceinline__ int decode_first_key(int ctx, int window) {
    return window > 0 && ctx > window ? ctx - window : 0;
}

// The dtype of a K/V element type.
static inline llm_dtype kv_dtype_of(const __half *) {
    return LLM_F16;
}
static inline llm_dtype kv_dtype_of(const __nv_bfloat16 *) {
    return LLM_BF16;
}
__device__ __forceinline__ void kv_store(__half *p, float v) {
    *p = __float2half_rn(v);
}
__device__ __forceinline__ void kv_store(__nv_bfloat16 *p, float v) {
    *p = __float2bfloat16_rn(v);
}

// fp8 e4m3fn K/V elements (backend.h; the scales are applied by the callers):
// two one-byte element types that differ in how they convert.
// - kv_fp8_hw: cuda_fp8.h's conversions, cvt instructions on sm_89+
//   (cvt.rn.satfinite.e4m3x2.f32, cvt.rn.f16x2.e4m3x2); chosen there.
// - kv_fp8_sw: bit arithmetic, the rules of common/dtype.c (f32_to_fp8_e4m3:
//   round to nearest even, saturate to +-448, NaN stays NaN); chosen below
//   sm_89, which has no fp8 instructions.
// Both write the bits the CPU backend writes (tests/gpu/test_gpu_attention.c).
struct kv_fp8_hw {
    uint8_t q;
};
struct kv_fp8_sw {
    uint8_t q;
};

__device__ __forceinline__ float fp8_sw_to_f32(uint8_t q) {
    const uint32_t e = (q >> 3) & 15u, m = q & 7u;
    float v = e ? __uint_as_float(((e + 120u) << 23) | (m << 20)) // 2^(e-7) x 1.m
                : (float)m * 0.001953125f;                        // m x 2^-9, exact
    if (e == 15u && m == 7u) v = __uint_as_float(0x7fc00000u);    // NaN
    return q & 0x80 ? -v : v;
}

__device__ __forceinline__ uint8_t f32_to_fp8_sw(float f) {
    const uint32_t u = __float_as_uint(f), a = u & 0x7fffffffu;
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    if (a > 0x7f800000u) return sign | 0x7f;  // NaN
    if (a >= 0x43e00000u) return sign | 0x7e; // >= 448 (inf too): saturate
    if (a < 0x3c800000u)                      // subnormal: round |f| x 2^9 to an integer
        return sign | (uint8_t)rintf(__uint_as_float(a) * 512.0f); // rintf: ties to even
    uint32_t q = (((a >> 23) - 120u) << 3) | ((a >> 20) & 7u);
    const uint32_t rem = a & 0xfffffu;
    if (rem > 0x80000u || (rem == 0x80000u && (q & 1u))) q++;
    return sign | (uint8_t)q;
}

__device__ __forceinline__ float halfraw_to_f32(unsigned short bits) {
    return __half2float(__ushort_as_half(bits));
}
__device__ __forceinline__ float kv_to_f32(kv_fp8_hw e) {
    return halfraw_to_f32(__nv_cvt_fp8_to_halfraw(e.q, __NV_E4M3).x);
}
__device__ __forceinline__ float kv_to_f32(kv_fp8_sw e) {
    return fp8_sw_to_f32(e.q);
}
__device__ __forceinline__ float2 kv2_to_f32(const kv_fp8_hw *p) { // p 2-byte aligned
    const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(*(const __nv_fp8x2_storage_t *)p, __NV_E4M3);
    return make_float2(halfraw_to_f32(r.x), halfraw_to_f32(r.y));
}
__device__ __forceinline__ float2 kv2_to_f32(const kv_fp8_sw *p) {
    return make_float2(fp8_sw_to_f32(p[0].q), fp8_sw_to_f32(p[1].q));
}
__device__ __forceinline__ void kv_store(kv_fp8_hw *p, float v) {
    p->q = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
}
__device__ __forceinline__ void kv_store(kv_fp8_sw *p, float v) {
    p->q = f32_to_fp8_sw(v);
}

// The bits of two adjacent K/V elements, copied as one word.
template <class KV> struct kv_pair_bits { typedef uint32_t type; };
template <> struct kv_pair_bits<kv_fp8_hw> { typedef uint16_t type; };
template <> struct kv_pair_bits<kv_fp8_sw> { typedef uint16_t type; };

// sm_89 and later convert fp8 in hardware.
#define FP8_HW_MIN_CC 89

static inline llm_dtype kv_dtype_of(const kv_fp8_hw *) {
    return LLM_F8E4M3;
}
static inline llm_dtype kv_dtype_of(const kv_fp8_sw *) {
    return LLM_F8E4M3;
}

// --- 16-bit activations (bk_x16) ----------------------------------------------------

// f32 -> fp16 or bf16, round to nearest even.
template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ __half from_f32<__half>(float v) {
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <typename T> struct is_half { static const bool value = false; };
template <> struct is_half<__half> { static const bool value = true; };

// A value that rounds to an fp16 inf (|v| >= 65520, the midpoint between
// 65504 and the next power; NaN too) sets *ovf (fp16 only; ovf may be NULL).
template <typename T> __device__ __forceinline__ void x16_check(float v, unsigned *ovf) {
    if (is_half<T>::value && ovf && !(fabsf(v) < 65520.0f)) *ovf = 1u;
}

// The rounded copy of out elements: p[i] = v (f32 or 4 of a float4, i then
// counting float4s: the 4 halves are one 8-byte store, p 8-byte aligned).
template <typename T>
__device__ __forceinline__ void x16_store(T *p, unsigned *ovf, size_t i, float v) {
    x16_check<T>(v, ovf);
    p[i] = from_f32<T>(v);
}
template <typename T>
__device__ __forceinline__ void x16_store(T *p, unsigned *ovf, size_t i, float4 v) {
    x16_check<T>(v.x, ovf);
    x16_check<T>(v.y, ovf);
    x16_check<T>(v.z, ovf);
    x16_check<T>(v.w, ovf);
    struct alignas(8) four {
        T a, b, c, d;
    };
    ((four *)p)[i] = four{from_f32<T>(v.x), from_f32<T>(v.y), from_f32<T>(v.z), from_f32<T>(v.w)};
}

// An f32 output and, optionally, its 16-bit copy (bk_x16), for kernels whose
// outputs are scattered over several write sites (attention): put(i, v)
// writes element i of both. f NULL: only the copy.
struct out_x16 {
    float *f;
    void *h;       // NULL: no copy
    unsigned *ovf; // fp16 overflow flag or NULL
    int bf16;      // h holds bf16, else fp16
    __device__ __forceinline__ void put(size_t i, float v) const {
        if (f) f[i] = v;
        if (h && bf16)
            x16_store((__nv_bfloat16 *)h, NULL, i, v);
        else if (h)
            x16_store((__half *)h, ovf, i, v);
    }
};
static inline out_x16 make_out_x16(float *f, const bk_x16 *x16) {
    out_x16 o = {f, NULL, NULL, 0};
    if (x16 && x16->data) {
        o.h = x16->data;
        o.ovf = x16->ovf;
        o.bf16 = x16->dtype == LLM_BF16;
    }
    return o;
}

// The 16-bit type of a bk_x16 as a kernel template argument: an op dispatches
// the statements with T16 = __half or __nv_bfloat16 (x16 NULL: __half).
#define X16_DISPATCH(x16, ...)                                                                     \
    do {                                                                                           \
        if ((x16) && (x16)->dtype == LLM_BF16) {                                                   \
            typedef __nv_bfloat16 T16;                                                             \
            __VA_ARGS__;                                                                           \
        } else {                                                                                   \
            typedef __half T16;                                                                    \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)

// --- launchers of the other files (host) -----------------------------------------

void cuda_matmul(backend *b, float *out, const float *x, const bk_matrix *w, const float *bias,
                 int n, const bk_x16 *x16);
int cuda_x16_plan(backend *b, bk_x16 *x16, void *buf, const bk_matrix *w, int n);
// The dequantizing tensor-core GEMM (cuda_gemm_dq.cu): out [n, w.rows] f32 =
// xh [n, w.cols] fp16 @ w^T, I8 scales and bias applied. covers: whether it
// takes w (I8, or BF16 multiplied as fp16), n rows and xh (shape, alignment,
// the row limit LLM_CUDA_DQ_MAX_N).
int cuda_gemm_dq_covers(const bk_matrix *w, int n, const void *xh);
void cuda_gemm_dq(backend *b, float *out, const __half *xh, const bk_matrix *w, const float *bias,
                  int n);
void cuda_attention(backend *b, float *out, const float *q, const void *k_cache,
                    const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                    int head_dim, int block_size, float scale, llm_dtype kv_dtype, float k_scale,
                    float v_scale, int window, const bk_x16 *x16);
// The split-decode partials of a batch, `floats` of them: the batch's
// scratch when it is large enough, else the backend's own (grown on first
// use). NULL with the error set when it cannot be had.
float *cuda_attn_scratch(cuda_backend *c, const bk_attn_batch *bt, size_t floats);
// Decode rows of grouped-query attention (cuda_decode_attention.cu): one
// block per (sequence, KV head, partition) for the whole query-head group.
// fp16, bf16 and fp8 caches (scale already holds fp8's k_scale; v_scale
// multiplies the output). Returns 0 when launched, 1 when the shape is not
// covered (the caller runs the per-head kernel), -1 on error (set in c->base).
int cuda_attn_decode_gqa(cuda_backend *c, out_x16 out, const float *q, const void *k_cache,
                         const void *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                         int hd, int block_size, float scale, llm_dtype kv_dtype, float v_scale,
                         int window);
void cuda_embedding(backend *b, float *out, const bk_matrix *t, const int32_t *ids, int n);
void cuda_rmsnorm(backend *b, float *out, const float *x, const float *w, int n, int dim, float eps,
                  const bk_x16 *x16);
void cuda_add_rmsnorm(backend *b, float *out, float *residual, const float *x, const float *w,
                      int n, int dim, float eps, const bk_x16 *x16);
void cuda_rope(backend *b, float *q, float *k, const int32_t *positions, const float *inv_freq,
               int n, int n_heads, int n_kv_heads, int head_dim);
void cuda_kv_write(backend *b, void *k_cache, void *v_cache, const float *k, const float *v,
                   const int32_t *slot_mapping, int n, int n_kv_heads, int head_dim, int block_size,
                   llm_dtype kv_dtype, float k_scale, float v_scale);
void cuda_silu_mul(backend *b, float *out, const float *gate, const float *up, int n, int hidden,
                   int ld, const bk_x16 *x16);
void cuda_qkv_rope_write(backend *b, float *q_out, const float *qkv, const float *q_norm,
                         const float *k_norm, float eps, const int32_t *positions,
                         const float *inv_freq, void *k_cache, void *v_cache,
                         const int32_t *slot_mapping, int n, int n_heads, int n_kv_heads,
                         int head_dim, int block_size, llm_dtype kv_dtype, float k_scale,
                         float v_scale);
void cuda_gather_rows(backend *b, float *out, const float *x, const int32_t *rows, int m, int dim);
void cuda_argmax(backend *b, int32_t *out, const float *x, int n, int dim);

// Called once at creation: raises the dynamic shared-memory limit of the
// attention kernel that may need more than 48 KB. Returns 0, or -1 with the
// error set.
int cuda_attention_init(cuda_backend *c);

#endif
