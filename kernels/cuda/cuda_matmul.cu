// cuda_matmul.cu - out [n, rows] = x [n, cols] @ w^T (+ bias), w [rows, cols]
// in F16, BF16, F32 or I8 (per-row scales), fp32 activations and accumulation.
//
// Napkin math (llama-3-8b, H100/H200 class GPU):
// - decode, n <= 8 rows: bandwidth-bound. Each step reads every weight once:
//   ~15 GB in bf16 for the 7.5 G matrix parameters (plus the 1 GB lm_head).
//   At ~3.3-4.8 TB/s (H100 SXM / H200 copy bandwidth, measure it with
//   gpu_bench) that is a floor of ~3.2-4.7 ms per step, whatever n <= 8 is;
//   the FLOPs (2 x 8 x 7.5 G = 120 GFLOP) are nothing. The GEMV kernel below
//   streams each weight row once with 16-byte loads, x in shared memory.
// - prefill, n > 8: compute-bound from n ~ 300 on: 2 x n x 7.5 G FLOP, at the
//   measured cuBLAS fp16 rate (~600-700 TFLOP/s dense on H100 SXM) ~23 us per
//   token. cuBLAS/GemmEx on fp16/bf16 operands, fp32 accumulation.
//
// Paths:
// - n <= GEMV_MAX_N: gemv_kernel, any dtype, any GPU. A row's result adds in
//   one fixed order whatever n is, so a decode token's output does not depend
//   on how many other tokens share its batch.
// - n > GEMV_MAX_N: x is converted to the weights' 16-bit type and cuBLAS
//   multiplies (F32 weights: cublasSgemm on x as is). I8 weights, and BF16
//   weights on sm_75 (no bf16 tensor cores), are converted tile by tile into
//   an fp16 workspace first (int8 values are exact in fp16; the per-row scale
//   is applied to the fp32 result), so no full-precision copy of the weights
//   is ever kept. fp16 activations overflow beyond 65504: the fp16 paths
//   assume activations of fp16-sized range, as fp16 checkpoints do.
#include "cuda_common.cuh"

#define GEMV_MAX_N 8            // most rows of x that the GEMV path takes
#define GEMV_WARPS 8            // output rows per block, one warp each
#define GEMV_X_FLOATS 8192      // shared floats of staged x per block (32 KB)
#define GEMV_KC_MIN 1024        // columns staged per pass at n = 8 (a multiple of 32 x 16)
#define WTILE_BYTES (32u << 20) // fp16 weight tile for the dequantizing cuBLAS path
#define EPI_THREADS 256

// Unpacks 16 bytes of weights into floats.
__device__ __forceinline__ void unpack16(uint4 raw, const __half *, float *f) {
    const __half2 *h = (const __half2 *)&raw;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 v = __half22float2(h[i]);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
}
__device__ __forceinline__ void unpack16(uint4 raw, const __nv_bfloat16 *, float *f) {
    const uint32_t u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void unpack16(uint4 raw, const float *, float *f) {
    f[0] = __uint_as_float(raw.x);
    f[1] = __uint_as_float(raw.y);
    f[2] = __uint_as_float(raw.z);
    f[3] = __uint_as_float(raw.w);
}
__device__ __forceinline__ void unpack16(uint4 raw, const int8_t *, float *f) {
    const uint32_t u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) f[4 * i + j] = (float)(int8_t)(u[i] >> (8 * j));
}

// x [n, cols] f32, w [rows, cols] WT (I8: scales [rows]), bias [rows] or NULL
// -> out [n, rows] f32. One warp per output row, GEMV_WARPS rows per block;
// x is staged through shared memory kc columns at a time (dynamic shared
// memory: n * kc floats). Lane l adds the columns k = l*V (mod 32*V) in
// increasing order (V = elements per 16-byte load; 1 on the scalar path), then
// the warp reduces in a fixed tree: the same order for any n and any kc.
// PRECOND: 1 <= n <= GEMV_MAX_N; kc % (32 * 16) == 0; VEC: cols % V == 0 and
// w 16-byte aligned.
template <typename WT, bool VEC>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_kernel(float *out, const float *x, const WT *w, const float *scales, const float *bias,
                int n, int rows, int cols, int kc) {
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4; // [n, kc]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * GEMV_WARPS + warp;
    const bool active = r < rows; // warp-uniform
    const WT *wr = w + (size_t)(active ? r : 0) * cols;
    float acc[GEMV_MAX_N];
#pragma unroll
    for (int t = 0; t < GEMV_MAX_N; t++) acc[t] = 0.0f;
    for (int k0 = 0; k0 < cols; k0 += kc) {
        const int len = min(kc, cols - k0);
        __syncthreads(); // every warp is done with the previous chunk
        for (int t = 0; t < n; t++)
            for (int k = threadIdx.x; k < len; k += blockDim.x)
                xs[t * kc + k] = x[(size_t)t * cols + k0 + k];
        __syncthreads();
        if (!active) continue;
        if (VEC) {
            constexpr int V = 16 / sizeof(WT);
#pragma unroll 4
            for (int k = lane * V; k < len; k += 32 * V) {
                const uint4 raw = __ldg((const uint4 *)(wr + k0 + k));
                float wf[V];
                unpack16(raw, wr, wf);
#pragma unroll
                for (int t = 0; t < GEMV_MAX_N; t++) {
                    if (t >= n) break;
                    const float4 *xv = (const float4 *)(xs + t * kc + k);
#pragma unroll
                    for (int j = 0; j < V / 4; j++) {
                        const float4 xx = xv[j];
                        acc[t] = fmaf(xx.x, wf[4 * j], acc[t]);
                        acc[t] = fmaf(xx.y, wf[4 * j + 1], acc[t]);
                        acc[t] = fmaf(xx.z, wf[4 * j + 2], acc[t]);
                        acc[t] = fmaf(xx.w, wf[4 * j + 3], acc[t]);
                    }
                }
            }
        } else {
            for (int k = lane; k < len; k += 32) {
                const float wv = load_w(wr, (size_t)k0 + k);
#pragma unroll
                for (int t = 0; t < GEMV_MAX_N; t++) {
                    if (t >= n) break;
                    acc[t] = fmaf(xs[t * kc + k], wv, acc[t]);
                }
            }
        }
    }
    if (!active) return;
    const float s = scales ? scales[r] : 1.0f, bb = bias ? bias[r] : 0.0f;
#pragma unroll
    for (int t = 0; t < GEMV_MAX_N; t++) {
        if (t >= n) break;
        float v = warp_sum(acc[t]);
        if (scales) v *= s;
        if (bias) v += bb;
        if (lane == 0) out[(size_t)t * rows + r] = v;
    }
}

template <typename WT>
static void launch_gemv(backend *b, float *out, const float *x, const bk_matrix *w,
                        const float *bias, int n) {
    const size_t vec_elems = 16 / sizeof(WT);
    const bool vec = w->cols % vec_elems == 0 && ((uintptr_t)w->data & 15) == 0;
    // columns staged per pass: as many as 32 KB of shared memory holds for n
    // rows, a multiple of 512 so each lane's column order stays the same
    int kc = GEMV_X_FLOATS / n / 512 * 512;
    if (kc < GEMV_KC_MIN) kc = GEMV_KC_MIN;
    const size_t smem = (size_t)n * kc * sizeof(float);
    const unsigned int grid = blocks_for((size_t)w->rows, GEMV_WARPS);
    cudaStream_t st = cuda_of(b)->stream;
    const WT *wd = (const WT *)w->data;
    if (vec)
        gemv_kernel<WT, true><<<grid, GEMV_WARPS * 32, smem, st>>>(out, x, wd, w->scales, bias, n,
                                                                   w->rows, w->cols, kc);
    else
        gemv_kernel<WT, false><<<grid, GEMV_WARPS * 32, smem, st>>>(out, x, wd, w->scales, bias, n,
                                                                    w->rows, w->cols, kc);
    LAUNCH_CHECK(b, vec ? "gemv_kernel<vec>" : "gemv_kernel<scalar>");
}

// --- the cuBLAS path ------------------------------------------------------------------

// x [total] f32 -> y [total] fp16 or bf16, round to nearest even.
template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ __half from_f32<__half>(float v) {
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

template <typename T> __global__ void convert_kernel(T *y, const float *x, size_t total) {
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x)
        y[e] = from_f32<T>(x[e]);
}

// w [total] BF16 or I8 (without its scale) -> y [total] fp16.
template <typename WT> __global__ void dequant_f16_kernel(__half *y, const WT *w, size_t total) {
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x)
        y[e] = __float2half_rn(load_w(w, e));
}

// out [n, rows] f32: out[t][r] = out[t][r] * scales[r] + bias[r] (either may be NULL).
__global__ void epilogue_kernel(float *out, const float *scales, const float *bias, int n,
                                int rows) {
    const size_t total = (size_t)n * rows;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(e % rows);
        float v = out[e];
        if (scales) v *= scales[r];
        if (bias) v += bias[r];
        out[e] = v;
    }
}

static unsigned int grid_for(size_t total) {
    const unsigned int g = blocks_for(total, EPI_THREADS);
    return g < 4096 ? (g ? g : 1) : 4096;
}

// out [n, m] (row stride ldc) = xh [n, k] @ a^T, a [m, k] row-major, both of
// cuBLAS type `ty`, fp32 accumulation and output. Column-major view: C (m x n,
// ldc) = A^T (A: k x m, lda = k) x B (k x n, ldb = k).
static void gemm_16(backend *b, float *out, int ldc, const void *a, const void *xh,
                    cudaDataType_t ty, int m, int n, int k) {
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(b, cublasGemmEx(cuda_of(b)->blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, ty,
                                 k, xh, ty, k, &zero, out, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
}

template <typename T> static T *convert_x(backend *b, const float *x, size_t total) {
    cuda_backend *c = cuda_of(b);
    if (cuda_ws_reserve(c, &c->act, total * sizeof(T), "activation")) return NULL;
    T *xh = (T *)c->act.p;
    convert_kernel<T><<<grid_for(total), EPI_THREADS, 0, c->stream>>>(xh, x, total);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        cuda_fail(b, "launch of convert_kernel: %s (%s)", cudaGetErrorName(e),
                  cudaGetErrorString(e));
        return NULL;
    }
    return xh;
}

// I8, or BF16 without bf16 tensor cores: fp16 tiles of weight rows, one GEMM each.
template <typename WT>
static void matmul_tiled(backend *b, float *out, const float *x, const bk_matrix *w, int n) {
    cuda_backend *c = cuda_of(b);
    const __half *xh = convert_x<__half>(b, x, (size_t)n * w->cols);
    if (!xh) return;
    size_t tile_rows = WTILE_BYTES / ((size_t)w->cols * sizeof(__half));
    tile_rows = tile_rows < 64 ? 64 : tile_rows / 64 * 64;
    if (tile_rows > (size_t)w->rows) tile_rows = (size_t)w->rows;
    if (cuda_ws_reserve(c, &c->wtile, tile_rows * w->cols * sizeof(__half), "weight tile")) return;
    __half *tile = (__half *)c->wtile.p;
    for (int r0 = 0; r0 < w->rows; r0 += (int)tile_rows) {
        const int tr = w->rows - r0 < (int)tile_rows ? w->rows - r0 : (int)tile_rows;
        const size_t total = (size_t)tr * w->cols;
        dequant_f16_kernel<WT><<<grid_for(total), EPI_THREADS, 0, c->stream>>>(
            tile, (const WT *)w->data + (size_t)r0 * w->cols, total);
        LAUNCH_CHECK(b, "dequant_f16_kernel");
        gemm_16(b, out + r0, w->rows, tile, xh, CUDA_R_16F, tr, n, w->cols);
        if (b->failed) return;
    }
}

static void matmul_cublas(backend *b, float *out, const float *x, const bk_matrix *w, int n) {
    cuda_backend *c = cuda_of(b);
    const int rows = w->rows, cols = w->cols;
    switch (w->dtype) {
    case LLM_F32: {
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_CHECK(b, cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one,
                                    (const float *)w->data, cols, x, cols, &zero, out, rows));
        return;
    }
    case LLM_F16: {
        const __half *xh = convert_x<__half>(b, x, (size_t)n * cols);
        if (xh) gemm_16(b, out, rows, w->data, xh, CUDA_R_16F, rows, n, cols);
        return;
    }
    case LLM_BF16:
        if (c->cc_major >= 8) {
            const __nv_bfloat16 *xb = convert_x<__nv_bfloat16>(b, x, (size_t)n * cols);
            if (xb) gemm_16(b, out, rows, w->data, xb, CUDA_R_16BF, rows, n, cols);
        } else {
            matmul_tiled<__nv_bfloat16>(b, out, x, w, n);
        }
        return;
    case LLM_I8:
        matmul_tiled<int8_t>(b, out, x, w, n);
        return;
    default:
        cuda_fail(b, "matmul: unsupported weight dtype %d", (int)w->dtype);
    }
}

void cuda_matmul(backend *b, float *out, const float *x, const bk_matrix *w, const float *bias,
                 int n) {
    if (n <= 0 || w->rows <= 0) return;
    if (w->dtype == LLM_I8 && !w->scales) {
        cuda_fail(b, "matmul: an I8 matrix needs its scales");
        return;
    }
    if (n <= GEMV_MAX_N) {
        switch (w->dtype) {
        case LLM_F16:
            launch_gemv<__half>(b, out, x, w, bias, n);
            return;
        case LLM_BF16:
            launch_gemv<__nv_bfloat16>(b, out, x, w, bias, n);
            return;
        case LLM_F32:
            launch_gemv<float>(b, out, x, w, bias, n);
            return;
        case LLM_I8:
            launch_gemv<int8_t>(b, out, x, w, bias, n);
            return;
        default:
            cuda_fail(b, "matmul: unsupported weight dtype %d", (int)w->dtype);
            return;
        }
    }
    if (w->cols <= 0) { // an empty sum: cuBLAS rejects k = 0
        CUDA_CHECK(
            b, cudaMemsetAsync(out, 0, (size_t)n * w->rows * sizeof(float), cuda_of(b)->stream));
    } else {
        matmul_cublas(b, out, x, w, n);
        if (b->failed) return;
    }
    const float *scales = w->dtype == LLM_I8 ? w->scales : NULL;
    if (!scales && !bias) return;
    epilogue_kernel<<<grid_for((size_t)n * w->rows), EPI_THREADS, 0, cuda_of(b)->stream>>>(
        out, scales, bias, n, w->rows);
    LAUNCH_CHECK(b, "epilogue_kernel");
}
