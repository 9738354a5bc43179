// cuda_gemm_dq.cu - the GEMM of more than 8 rows of fp16 activations with
// weights the tensor cores cannot take as they are stored: I8 (per-row
// scales), and BF16 below sm_80 (no bf16 WMMA there). Each weight tile is
// dequantized to fp16 in shared memory inside the kernel, once per tile and
// block, so no pass over the whole matrix runs first (cuda_matmul.cu's
// matmul_tiled, which cuBLAS then multiplies, writes and reads every weight
// again as fp16: 3 bytes of traffic per int8 weight and call).
//
// out [n, rows] f32 = xh [n, cols] fp16 @ dequant(w)^T, then per row r:
// v * scales[r] (I8), + bias[r] (each rounded once, as the GEMV's epilogue).
// int8 values are exact in fp16; bf16 -> fp16 rounds to nearest even (as
// matmul_tiled's conversion); products are exact and summed in fp32.
//
// Tiles: a block of DQ_THREADS (4 warps) computes DQ_BM rows of x by DQ_BN
// weight rows, warp w a 32 x 32 corner (2 x 2 WMMA 16x16x16 accumulators).
// k advances DQ_BK columns at a time through two shared-memory stages: the
// next x tile by 16-byte cp.async (a plain copy below sm_80) and the next
// weight tile by 16-byte loads into registers are issued before the MMAs of
// the current one; the weights are converted and stored after them. Rows of
// x past n are zero-filled, weight rows past `rows` are zeros; their results
// are never written. The grid's x dimension walks the x tiles, so the blocks
// in flight share the same weight tiles (read from DRAM about once, the x
// tiles from L2).
//
// Napkin math (H200, predicted): per block and k step 64 x 64 x 32 x 2 =
// 262 kFLOP against 16 KB of WMMA fragment loads from shared memory: 16
// FLOP per shared byte, at 128 B/clk an SM's ceiling is ~2 kFLOP/clk, about
// half of Hopper's dense fp16 rate, and legacy mma.sync reaches ~2/3 of that
// rate: ~150-300 TFLOP/s expected. cuBLAS on dequantized tiles runs at
// ~600-700 TFLOP/s after a pass of 3 bytes per weight (~4.7 ms for
// Llama-3-8B's 7.5 G int8 weights): this kernel wins below ~128 rows of x
// and loses above, so cuda_matmul.cu takes it up to DQ_MAX_N rows
// (LLM_CUDA_DQ_MAX_N=rows overrides it, 0 turns it off, for A/B timing).
#include <cuda_pipeline_primitives.h>
#include <mma.h>
#include <stdlib.h>

#include "cuda_common.cuh"

using namespace nvcuda;

#define DQ_BM 64             // rows of x per block
#define DQ_BN 64             // weight rows per block
#define DQ_BK 32             // columns per k step
#define DQ_LDA (DQ_BK + 8)   // halves per shared tile row (80 bytes: 16-byte aligned chunks)
#define DQ_LDC (DQ_BN + 4)   // floats per row of the output staging
#define DQ_THREADS 128       // 4 warps, 2 x 2 corners of 32 x 32
#define DQ_MAX_N_DEFAULT 128 // most rows of x taken by default (see the napkin math)

// Four fp16 values as 8 bytes.
struct alignas(8) dq_half4 {
    __half a, b, c, d;
};

// The fp16 value of a weight: int8 exactly, bf16 rounded to nearest even.
__device__ __forceinline__ __half dq_half(int8_t q) {
    return __float2half_rn((float)q);
}
__device__ __forceinline__ __half dq_half(uint16_t bf16_bits) {
    return __float2half_rn(bf16_bits_to_f32(bf16_bits));
}

// The weight element type as read from memory: int8 or bf16 bits.
template <typename WT> struct dq_elem { typedef int8_t type; };
template <> struct dq_elem<__nv_bfloat16> { typedef uint16_t type; };

// Rows m0 .. m0 + DQ_BM - 1 of x, columns k0 .. k0 + DQ_BK - 1, into dst
// ([DQ_BM][DQ_LDA] halves) by 16-byte asynchronous copies, committed as one
// group; rows past n are zero-filled (their source is row 0, never read).
__device__ __forceinline__ void dq_load_x(__half *dst, const __half *__restrict__ xh, int m0, int n,
                                          int cols, int k0) {
    for (int c = threadIdx.x; c < DQ_BM * DQ_BK / 8; c += DQ_THREADS) {
        const int r = c / (DQ_BK / 8), k = c % (DQ_BK / 8) * 8;
        const bool in = m0 + r < n;
        __pipeline_memcpy_async(dst + r * DQ_LDA + k,
                                xh + (size_t)(in ? m0 + r : 0) * cols + k0 + k, 16, in ? 0 : 16);
    }
    __pipeline_commit();
}

// This thread's 16-byte pieces of weight rows r0 .. r0 + DQ_BN - 1, columns
// k0 .. k0 + DQ_BK - 1, into registers (rows past `rows`: zeros).
template <typename WT, int WL>
__device__ __forceinline__ void dq_load_w(uint4 *wr, const WT *__restrict__ w, int r0, int rows,
                                          int cols, int k0) {
    constexpr int V = 16 / sizeof(WT); // weights per 16 bytes
#pragma unroll
    for (int i = 0; i < WL; i++) {
        const int c = threadIdx.x + i * DQ_THREADS, r = c / (DQ_BK / V), k = c % (DQ_BK / V) * V;
        wr[i] = r0 + r < rows ? __ldg((const uint4 *)(w + (size_t)(r0 + r) * cols + k0 + k))
                              : make_uint4(0u, 0u, 0u, 0u);
    }
}

// The pieces of dq_load_w as fp16 into dst ([DQ_BN][DQ_LDA] halves).
template <typename WT, int WL>
__device__ __forceinline__ void dq_store_w(__half *dst, const uint4 *wr) {
    typedef typename dq_elem<WT>::type E;
    constexpr int V = 16 / sizeof(WT);
#pragma unroll
    for (int i = 0; i < WL; i++) {
        const int c = threadIdx.x + i * DQ_THREADS, r = c / (DQ_BK / V), k = c % (DQ_BK / V) * V;
        const E *e = (const E *)&wr[i];
        dq_half4 *d = (dq_half4 *)(dst + r * DQ_LDA + k);
#pragma unroll
        for (int j = 0; j < V / 4; j++)
            d[j] = dq_half4{dq_half(e[4 * j]), dq_half(e[4 * j + 1]), dq_half(e[4 * j + 2]),
                            dq_half(e[4 * j + 3])};
    }
}

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> dq_acc;

// The warp's 32 x 32 corner (rows wm.., weight rows wn..) += the stage's tiles.
__device__ __forceinline__ void dq_mma(dq_acc (&acc)[2][2], const __half *as, const __half *ws,
                                       int wm, int wn) {
#pragma unroll
    for (int kk = 0; kk < DQ_BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            wmma::load_matrix_sync(a[i], as + (wm + 16 * i) * DQ_LDA + kk, DQ_LDA);
            // B(k, j) = w[j][k]: the weight tile [j][k] read column-major
            wmma::load_matrix_sync(b[i], ws + (wn + 16 * i) * DQ_LDA + kk, DQ_LDA);
        }
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
}

// PRECOND: cols % DQ_BK == 0; xh and w 16-byte aligned; n >= 1.
template <typename WT>
__global__ void __launch_bounds__(DQ_THREADS)
    gemm_dq_kernel(float *__restrict__ out, const __half *__restrict__ xh, const WT *__restrict__ w,
                   const float *__restrict__ scales, const float *__restrict__ bias, int n,
                   int rows, int cols) {
    constexpr int WL = DQ_BN * DQ_BK * (int)sizeof(WT) / 16 / DQ_THREADS; // int8 1, bf16 2
    __shared__ __align__(128) __half as[2][DQ_BM * DQ_LDA];
    __shared__ __align__(128) __half ws[2][DQ_BN * DQ_LDA];
    __shared__ __align__(128) float cs[DQ_BM * DQ_LDC];
    const int warp = threadIdx.x >> 5, m0 = blockIdx.x * DQ_BM, r0 = blockIdx.y * DQ_BN;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32, nk = cols / DQ_BK;
    dq_acc acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    uint4 wr[WL];
    dq_load_x(as[0], xh, m0, n, cols, 0);
    dq_load_w<WT, WL>(wr, w, r0, rows, cols, 0);
    dq_store_w<WT, WL>(ws[0], wr);
    __pipeline_wait_prior(0);
    __syncthreads();
    for (int kt = 0; kt < nk; kt++) {
        const int cur = kt & 1;
        const bool next = kt + 1 < nk;
        if (next) { // in flight across the MMAs: the other stage was released by the last barrier
            dq_load_x(as[cur ^ 1], xh, m0, n, cols, (kt + 1) * DQ_BK);
            dq_load_w<WT, WL>(wr, w, r0, rows, cols, (kt + 1) * DQ_BK);
        }
        dq_mma(acc, as[cur], ws[cur], wm, wn);
        if (next) dq_store_w<WT, WL>(ws[cur ^ 1], wr);
        __pipeline_wait_prior(0);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(cs + (wm + 16 * i) * DQ_LDC + wn + 16 * j, acc[i][j], DQ_LDC,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < DQ_BM * DQ_BN; e += DQ_THREADS) {
        const int i = e / DQ_BN, j = e % DQ_BN, m = m0 + i, r = r0 + j;
        if (m >= n || r >= rows) continue;
        float v = cs[i * DQ_LDC + j];
        if (scales) v = __fmul_rn(v, scales[r]);
        if (bias) v = __fadd_rn(v, bias[r]);
        out[(size_t)m * rows + r] = v;
    }
}

// The most rows of x this kernel takes: DQ_MAX_N_DEFAULT, or the
// environment's LLM_CUDA_DQ_MAX_N (read at each call, as gpu_bench switches it).
static int dq_max_n() {
    const char *s = getenv("LLM_CUDA_DQ_MAX_N");
    const int v = s && *s ? atoi(s) : DQ_MAX_N_DEFAULT;
    return v < 0 ? 0 : v;
}

int cuda_gemm_dq_covers(const bk_matrix *w, int n, const void *xh) {
    return (w->dtype == LLM_I8 || w->dtype == LLM_BF16) && n <= dq_max_n() &&
           w->cols % DQ_BK == 0 && ((uintptr_t)w->data & 15) == 0 && ((uintptr_t)xh & 15) == 0 &&
           (w->rows + DQ_BN - 1) / DQ_BN <= 65535;
}

void cuda_gemm_dq(backend *b, float *out, const __half *xh, const bk_matrix *w, const float *bias,
                  int n) {
    const dim3 grid(blocks_for((size_t)n, DQ_BM), blocks_for((size_t)w->rows, DQ_BN));
    cudaStream_t st = cuda_of(b)->stream;
    if (w->dtype == LLM_I8)
        gemm_dq_kernel<int8_t><<<grid, DQ_THREADS, 0, st>>>(out, xh, (const int8_t *)w->data,
                                                            w->scales, bias, n, w->rows, w->cols);
    else
        gemm_dq_kernel<__nv_bfloat16><<<grid, DQ_THREADS, 0, st>>>(
            out, xh, (const __nv_bfloat16 *)w->data, NULL, bias, n, w->rows, w->cols);
    LAUNCH_CHECK(b, "gemm_dq_kernel");
}
