// cuda_matmul.cu - out [n, rows] = x [n, cols] @ w^T (+ bias), w [rows, cols]
// in F16, BF16, F32 or I8 (per-row scales), fp32 accumulation; x fp32, or
// its 16-bit copy (bk_x16) on the GEMM path.
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
// - n > GEMV_MAX_N: x in the weights' 16-bit type (bf16 for BF16 weights on
//   sm_80+, fp16 otherwise) and cuBLAS GemmEx (F32 weights: cublasSgemm on x
//   as is). The 16-bit x normally comes from the op that produced x (bk_x16,
//   backend.h): cuda_x16_plan tells the forward pass which type, and
//   rmsnorm, add_rmsnorm, silu_mul and attention write the rounded copy
//   beside (or instead of) their f32 output, so a prefill step runs no
//   conversion kernel; the same rounding (nearest even) of the same f32
//   values, so the same bits as converting here. Without a copy (other
//   callers) x is converted here, in chunks that fit the activation workspace.
//   I8 weights, and BF16 on sm_75 (no bf16 tensor cores): up to DQ_MAX_N
//   (128) rows gemm_dq_kernel (cuda_gemm_dq.cu) dequantizes each weight tile
//   to fp16 in shared memory and applies the scales and bias itself; more
//   rows are converted tile by tile into an fp16 workspace for cuBLAS (int8
//   values are exact in fp16; the per-row scale is applied to the fp32
//   result), so no full-precision copy of the weights is ever kept. fp16
//   activations overflow beyond 65504: whichever kernel rounds them flags
//   such a value in the matmul's overflow slot and the next download() or
//   sync() fails the step naming the matmul (cuda_check_overflow).
// - batch-invariant mode (backend.h): the GEMV for every n, GEMV_MAX_N rows
//   per launch; it re-reads the weights once per 8 rows (~34 TFLOP/s at
//   n = 8 on an H200 against ~600 for cuBLAS: predicted).
#include "cuda_common.cuh"

#define EPI_THREADS 256

// --- the GEMV path (n <= GEMV_MAX_N) -----------------------------------------------
//
// Napkin math, bandwidth side (H200: ~4.3 TB/s of copy bandwidth, 132 SMs at
// ~1.98 GHz): ~33 GB/s of weights per SM. Little's law with ~0.7 us of loaded
// DRAM latency wants ~3 MB in flight, ~23 KB per SM: 8 warps x 32 lanes x
// GEMV_LOADS (8) x 16 B = 32 KB per resident block, so one block per SM
// already covers it and two leave room for the barrier bubbles.
// Shared-memory side: each weight element needs x[t][k] for t < n from shared
// memory (4n bytes). A warp that owns R rows reads each x value once for all R
// (registers), so the shared traffic per DRAM byte is 4n / (R x sizeof(W)):
// R is chosen per n so that this stays at <= 4, i.e. <= ~130 GB/s of the
// ~250 GB/s an SM's shared memory gives (128 B/clk). x sits in shared memory
// in the order lanes read it (lane-fastest float4s), so every LDS.128 of a
// warp is 512 contiguous bytes: no bank conflicts.
// Instruction side: per weight element n FFMA + ~1 unpack op (bf16/f16: a
// shift or an AND; int8: PRMT + FADD, exact, cheaper than I2F) + 4n/R/16 LDS:
// at n = 8 bf16 ~9.5 instructions per element, 2.15 T elements/s = ~61% of
// the SMs' issue rate; int8 at n = 8 needs ~10.5 per element at 4.3 T
// elements/s, more than the issue rate: int8 is issue-bound from n ~ 4 on.

#define GEMV_MAX_N 8 // most rows of x that the GEMV path takes
#define GEMV_WARPS 8 // warps per block
#define GEMV_THREADS (GEMV_WARPS * 32)
#define GEMV_SMEM_BYTES (32 * 1024) // x staged per block and pass (4 blocks fit an SM's 228 KB)
#define GEMV_LOADS 8                // 16-byte weight loads per lane in flight: R rows x U chunks
#define GEMV_MIN_BLOCKS 512         // blocks a launch should have (~4 per SM of a 132-SM GPU)
#define GEMV_MAX_SPLIT 16           // most column splits of a short matrix
#define GEMV_MIN_SPLIT_CHUNKS 2     // a split keeps at least this many chunks per row
#define GEMV_STAGE_BATCH 4          // x float4 loads in flight per thread while staging

// Output rows a warp computes at once for n rows of x: shared traffic per
// DRAM byte 4n / (R x sizeof(W)) <= 4 for 16-bit weights; int8 stops at 4
// rows too (8 rows of 8 sums need more than 255 registers), so from n = 5 on
// it reads 2x more shared memory per weight byte, below its issue limit.
#define GEMV_MAX_ROWS_PER_WARP 4
template <typename WT, int N> __host__ __device__ constexpr int gemv_rows_per_warp() {
    return sizeof(WT) == 1 ? (N <= 2 ? N : 4) : (N <= 2 ? 1 : N <= 4 ? 2 : 4);
}

// Four weights j*4 .. j*4+3 of 16 bytes, as floats (I8 without its scale).
__device__ __forceinline__ float4 unpack4(uint4 raw, int j, const __half *) {
    const uint32_t u0 = j ? raw.z : raw.x, u1 = j ? raw.w : raw.y;
    const float2 a = __half22float2(*(const __half2 *)&u0),
                 b = __half22float2(*(const __half2 *)&u1);
    return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ float4 unpack4(uint4 raw, int j, const __nv_bfloat16 *) {
    const uint32_t u0 = j ? raw.z : raw.x, u1 = j ? raw.w : raw.y;
    return make_float4(__uint_as_float(u0 << 16), __uint_as_float(u0 & 0xffff0000u),
                       __uint_as_float(u1 << 16), __uint_as_float(u1 & 0xffff0000u));
}
__device__ __forceinline__ float4 unpack4(uint4 raw, int j, const float *) {
    return make_float4(__uint_as_float(raw.x), __uint_as_float(raw.y), __uint_as_float(raw.z),
                       __uint_as_float(raw.w));
}
// int8 b -> float exactly without I2F (a quarter-rate conversion on sm_80/90):
// the byte b + 128 (b ^ 0x80) under the exponent of 2^23 is the float
// 2^23 + b + 128; subtracting 2^23 + 128 leaves b.
#define I8_MAGIC_BITS 0x4B000000u // 2^23 as float bits
#define I8_MAGIC 8388736.0f       // 2^23 + 128
__device__ __forceinline__ float4 unpack4(uint4 raw, int j, const int8_t *) {
    const uint32_t u = (j == 0 ? raw.x : j == 1 ? raw.y : j == 2 ? raw.z : raw.w) ^ 0x80808080u;
    // __byte_perm selector: byte 0 from u (byte e), bytes 1-3 from I8_MAGIC_BITS
    return make_float4(__uint_as_float(__byte_perm(u, I8_MAGIC_BITS, 0x7540)) - I8_MAGIC,
                       __uint_as_float(__byte_perm(u, I8_MAGIC_BITS, 0x7541)) - I8_MAGIC,
                       __uint_as_float(__byte_perm(u, I8_MAGIC_BITS, 0x7542)) - I8_MAGIC,
                       __uint_as_float(__byte_perm(u, I8_MAGIC_BITS, 0x7543)) - I8_MAGIC);
}

// The row's sum, scaled (I8) and biased, each rounded once: the one epilogue
// of both GEMV kernels and of the split reduction.
__device__ __forceinline__ float gemv_finish(float v, const float *scales, const float *bias,
                                             int r) {
    if (scales) v = __fmul_rn(v, scales[r]);
    if (bias) v = __fadd_rn(v, bias[r]);
    return v;
}

// W [rows, cols] WT (I8: * scales [rows]) @ x [N, cols] f32 (+ bias [rows])
// -> out [N, rows] f32.
// PRECOND: w and x 16-byte aligned, cols % (16 / sizeof(WT)) == 0; out does
// not alias x;
// splits > 1: part holds splits x N x rows floats, count[gridDim.x] is zero.
//
// Columns go in chunks of CH = 32 x V (V = weights per 16 bytes): lane l owns
// columns l*V .. l*V+V-1 of every chunk. Block (bx, s) owns output rows
// bx*8R .. bx*8R+8R-1 (warp w: R consecutive rows) over the chunks of split s
// (the chunks cut into `splits` equal runs). A lane adds its columns in
// increasing order into one sum per (row, t); the warp reduces them in a fixed
// butterfly; the splits' sums are added in split order by the last block of
// the row group to finish (a counter). `splits` depends on the matrix shape
// only, and R, U and the passes change which instructions run but not that
// order: a row's result has the same bits for every n.
//
// Loads: each lane issues R x U independent 16-byte loads (U chunks of R rows)
// into registers before the first use; the first batch of each pass before
// the x staging and its barrier. x is staged CPP chunks at a time with
// float4 loads, stored as [t][chunk][j][lane] float4s, the order lanes read.
template <typename WT, int N>
__global__ void __launch_bounds__(GEMV_THREADS)
    gemv_kernel(float *__restrict__ out, const float *__restrict__ x, const WT *__restrict__ w,
                const float *__restrict__ scales, const float *__restrict__ bias,
                float *__restrict__ part, unsigned *__restrict__ count, int rows, int cols,
                int splits) {
    constexpr int V = 16 / sizeof(WT), V4 = V / 4, CH = 32 * V;
    constexpr int R = gemv_rows_per_warp<WT, N>();
    constexpr int U = GEMV_LOADS / R > 1 ? GEMV_LOADS / R : 1;
    constexpr int CPP = GEMV_SMEM_BYTES / (N * CH * 4); // chunks staged per pass (>= 1)
    constexpr int STAGE = (N * CPP * CH / 4 + GEMV_THREADS - 1) / GEMV_THREADS; // float4s/thread
    extern __shared__ float4 xs[];                                              // [N][CPP][V4][32]
    __shared__ int last_block;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row0 = (blockIdx.x * GEMV_WARPS + warp) * R;
    const int nchunks = (cols + CH - 1) / CH, per = (nchunks + splits - 1) / splits;
    const int q_begin = min((int)blockIdx.y * per, nchunks), q_end = min(q_begin + per, nchunks);
    // rows past the end load the last row (their sums are never written)
    const WT *wr = w + (size_t)min(row0, rows - 1) * cols + lane * V;
    int row_off[R];
#pragma unroll
    for (int i = 0; i < R; i++) row_off[i] = (min(row0 + i, rows - 1) - min(row0, rows - 1));
    float acc[R][N];
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int t = 0; t < N; t++) acc[i][t] = 0.0f;
    uint4 raw[R][U];

    for (int p0 = q_begin; p0 < q_end; p0 += CPP) {
        const int p1 = min(p0 + CPP, q_end);
        // the first loads of this pass, in flight across the staging below
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int i = 0; i < R; i++)
                if (p0 + u < p1 && (p0 + u) * CH + lane * V < cols)
                    raw[i][u] = __ldg(
                        (const uint4 *)(wr + (size_t)row_off[i] * cols + (size_t)(p0 + u) * CH));
        __syncthreads(); // every warp is done with the previous pass's x
                         // GEMV_STAGE_BATCH float4 loads in flight per thread at a time: all
                         // STAGE at once would hold STAGE x 4 registers beside raw and acc
#pragma unroll 1
        for (int k0 = 0; k0 < STAGE; k0 += GEMV_STAGE_BATCH)
#pragma unroll
            for (int k = k0; k < k0 + GEMV_STAGE_BATCH && k < STAGE; k++) {
                const int e = threadIdx.x + k * GEMV_THREADS; // [t][cl][f], f < CH / 4
                const int t = e / (CPP * CH / 4), cl = e / (CH / 4) % CPP, f = e % (CH / 4);
                const int c = (p0 + cl) * CH + f * 4;
                if (t < N && p0 + cl < p1 && c < cols)
                    xs[((t * CPP + cl) * V4 + f % V4) * 32 + f / V4] =
                        __ldg((const float4 *)(x + (size_t)t * cols + c));
            }
        __syncthreads();
        for (int q = p0;;) {
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int cl = q + u - p0;
                if (q + u < p1 && (q + u) * CH + lane * V < cols) {
#pragma unroll
                    for (int j = 0; j < V4; j++) {
                        float4 wf[R];
#pragma unroll
                        for (int i = 0; i < R; i++) wf[i] = unpack4(raw[i][u], j, wr);
#pragma unroll
                        for (int t = 0; t < N; t++) {
                            const float4 xx = xs[((t * CPP + cl) * V4 + j) * 32 + lane];
#pragma unroll
                            for (int i = 0; i < R; i++) {
                                acc[i][t] = fmaf(xx.x, wf[i].x, acc[i][t]);
                                acc[i][t] = fmaf(xx.y, wf[i].y, acc[i][t]);
                                acc[i][t] = fmaf(xx.z, wf[i].z, acc[i][t]);
                                acc[i][t] = fmaf(xx.w, wf[i].w, acc[i][t]);
                            }
                        }
                    }
                }
            }
            q += U;
            if (q >= p1) break;
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int i = 0; i < R; i++)
                    if (q + u < p1 && (q + u) * CH + lane * V < cols)
                        raw[i][u] = __ldg(
                            (const uint4 *)(wr + (size_t)row_off[i] * cols + (size_t)(q + u) * CH));
        }
    }
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int t = 0; t < N; t++) {
            const float v = warp_sum(acc[i][t]);
            const int r = row0 + i;
            if (lane != 0 || r >= rows) continue;
            if (splits == 1)
                out[(size_t)t * rows + r] = gemv_finish(v, scales, bias, r);
            else
                part[((size_t)blockIdx.y * N + t) * rows + r] = v;
        }
    if (splits == 1) return;
    // the last block of this row group to finish adds the splits in order
    __threadfence(); // this block's partial sums are visible before its count
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(&count[blockIdx.x], 1u) == (unsigned)splits - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    constexpr int BR = GEMV_WARPS * R; // rows of the block
    for (int e = threadIdx.x; e < N * BR; e += GEMV_THREADS) {
        const int t = e / BR, r = blockIdx.x * BR + e % BR;
        if (r >= rows) continue;
        float v = __ldcg(&part[(size_t)t * rows + r]); // L2: written by other SMs
#pragma unroll 4
        for (int s = 1; s < splits; s++) v += __ldcg(&part[((size_t)s * N + t) * rows + r]);
        out[(size_t)t * rows + r] = gemv_finish(v, scales, bias, r);
    }
    if (threadIdx.x == 0) count[blockIdx.x] = 0; // ready for the next launch
}

// The same contract for any alignment and any cols, one element at a time
// (odd shapes, weights or x not 16-byte aligned): one warp per output row, x
// staged kc columns per pass (n x kc floats, kc % 32 == 0); lane l adds
// columns l, l + 32, ... in increasing order, the warp reduces in a fixed butterfly: the same
// order for any n. PRECOND: 1 <= n <= GEMV_MAX_N; out does not alias x.
template <typename WT>
__global__ void __launch_bounds__(GEMV_THREADS)
    gemv_scalar_kernel(float *__restrict__ out, const float *__restrict__ x,
                       const WT *__restrict__ w, const float *__restrict__ scales,
                       const float *__restrict__ bias, int n, int rows, int cols, int kc) {
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
        __syncthreads(); // every warp is done with the previous pass
        for (int t = 0; t < n; t++)
            for (int k = threadIdx.x; k < len; k += blockDim.x)
                xs[t * kc + k] = x[(size_t)t * cols + k0 + k];
        __syncthreads();
        if (!active) continue;
        for (int k = lane; k < len; k += 32) {
            const float wv = load_w(wr, (size_t)k0 + k);
#pragma unroll
            for (int t = 0; t < GEMV_MAX_N; t++) {
                if (t >= n) break;
                acc[t] = fmaf(xs[t * kc + k], wv, acc[t]);
            }
        }
    }
    if (!active) return;
#pragma unroll
    for (int t = 0; t < GEMV_MAX_N; t++) {
        if (t >= n) break;
        const float v = warp_sum(acc[t]);
        if (lane == 0) out[(size_t)t * rows + r] = gemv_finish(v, scales, bias, r);
    }
}

// Column splits of a GEMV over w: the fewest (a power of two) that give
// GEMV_MIN_BLOCKS blocks at the largest rows-per-warp, at most GEMV_MAX_SPLIT,
// each keeping GEMV_MIN_SPLIT_CHUNKS chunks per row. From the shape only, so
// every n sums a row in the same order.
template <typename WT> static int gemv_splits(int rows, int cols) {
    const int ch = 32 * (16 / (int)sizeof(WT)), chunks = (cols + ch - 1) / ch;
    const int row_blocks = (int)blocks_for((size_t)rows, GEMV_WARPS * GEMV_MAX_ROWS_PER_WARP);
    int s = 1;
    while (s < GEMV_MAX_SPLIT && row_blocks * s < GEMV_MIN_BLOCKS &&
           chunks / (2 * s) >= GEMV_MIN_SPLIT_CHUNKS)
        s *= 2;
    return s;
}

template <typename WT, int N>
static void launch_gemv_n(backend *b, float *out, const float *x, const bk_matrix *w,
                          const float *bias) {
    cuda_backend *c = cuda_of(b);
    const int splits = gemv_splits<WT>(w->rows, w->cols);
    const unsigned row_blocks =
        blocks_for((size_t)w->rows, GEMV_WARPS * gemv_rows_per_warp<WT, N>());
    if (splits > 1 &&
        (row_blocks > GEMV_COUNTERS || (size_t)splits * N * w->rows > GEMV_PARTIAL_FLOATS)) {
        cuda_fail(b, "matmul: GEMV split workspace too small for %dx%d", w->rows, w->cols);
        return;
    }
    gemv_kernel<WT, N>
        <<<dim3(row_blocks, (unsigned)splits), GEMV_THREADS, GEMV_SMEM_BYTES, c->stream>>>(
            out, x, (const WT *)w->data, w->scales, bias, c->gemv_part, c->gemv_count, w->rows,
            w->cols, splits);
    LAUNCH_CHECK(b, "gemv_kernel");
}

template <typename WT>
static void launch_gemv(backend *b, float *out, const float *x, const bk_matrix *w,
                        const float *bias, int n) {
    const int vec_elems = 16 / (int)sizeof(WT);
    if (w->cols % vec_elems || ((uintptr_t)w->data & 15) || ((uintptr_t)x & 15)) {
        // columns staged per pass: as many as GEMV_SMEM_BYTES holds for n rows,
        // a multiple of 32 so that each lane keeps its columns in every pass
        const int kc = GEMV_SMEM_BYTES / 4 / n / 32 * 32;
        gemv_scalar_kernel<WT><<<blocks_for((size_t)w->rows, GEMV_WARPS), GEMV_THREADS,
                                 GEMV_SMEM_BYTES, cuda_of(b)->stream>>>(
            out, x, (const WT *)w->data, w->scales, bias, n, w->rows, w->cols, kc);
        LAUNCH_CHECK(b, "gemv_scalar_kernel");
        return;
    }
    switch (n) {
    case 1:
        return launch_gemv_n<WT, 1>(b, out, x, w, bias);
    case 2:
        return launch_gemv_n<WT, 2>(b, out, x, w, bias);
    case 3:
        return launch_gemv_n<WT, 3>(b, out, x, w, bias);
    case 4:
        return launch_gemv_n<WT, 4>(b, out, x, w, bias);
    case 5:
        return launch_gemv_n<WT, 5>(b, out, x, w, bias);
    case 6:
        return launch_gemv_n<WT, 6>(b, out, x, w, bias);
    case 7:
        return launch_gemv_n<WT, 7>(b, out, x, w, bias);
    default:
        return launch_gemv_n<WT, 8>(b, out, x, w, bias);
    }
}

// --- the cuBLAS path ------------------------------------------------------------------

// fp16 (ovf not NULL): a value that rounds to inf (|v| >= 65520, the midpoint
// between 65504 and the next power) sets *ovf.
template <typename T>
__global__ void convert_kernel(T *y, const float *x, size_t total, unsigned *ovf) {
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total;
         e += (size_t)gridDim.x * blockDim.x) {
        x16_store(y, ovf, e, x[e]);
    }
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

// An overflow flag for a matmul of w whose activations are rounded to fp16
// (cuda_check_overflow names it by op_layer/op_name); NULL with the error set
// when the flags cannot be checked first.
static unsigned *ovf_slot(backend *b, const bk_matrix *w) {
    cuda_backend *c = cuda_of(b);
    if (c->ovf_n == OVF_SLOTS && cuda_check_overflow(c)) return NULL;
    const int k = c->ovf_n++;
    c->ovf_ops[k].layer = b->op_layer;
    c->ovf_ops[k].name = b->op_name;
    c->ovf_ops[k].rows = w->rows;
    c->ovf_ops[k].cols = w->cols;
    return c->ovf_flags + k;
}

// x [nx, cols] f32 -> the activation workspace as T. PRECOND: nx * cols * sizeof(T) <=
// ACT_WS_BYTES. fp16: the conversion flags values beyond the fp16 range in
// this matmul's overflow slot.
template <typename T>
static const T *convert_x(backend *b, const float *x, size_t total, const bk_matrix *w) {
    cuda_backend *c = cuda_of(b);
    T *xh = (T *)c->act;
    unsigned *ovf = NULL;
    if (is_half<T>::value && !(ovf = ovf_slot(b, w))) return NULL;
    convert_kernel<T><<<grid_for(total), EPI_THREADS, 0, c->stream>>>(xh, x, total, ovf);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        cuda_fail(b, "launch of convert_kernel: %s (%s)", cudaGetErrorName(e),
                  cudaGetErrorString(e));
        return NULL;
    }
    return xh;
}

// I8, or BF16 without bf16 tensor cores: out [nx, rows] (row stride ldc) for
// the fp16 rows xh [nx, cols]; fp16 tiles of weight rows, one GEMM each.
template <typename WT>
static void matmul_tiled(backend *b, float *out, int ldc, const __half *xh, const bk_matrix *w,
                         int nx) {
    cuda_backend *c = cuda_of(b);
    size_t tile_rows = WTILE_BYTES / ((size_t)w->cols * sizeof(__half));
    if (tile_rows >= 64) tile_rows = tile_rows / 64 * 64;
    if (tile_rows > (size_t)w->rows) tile_rows = (size_t)w->rows;
    __half *tile = (__half *)c->wtile;
    for (int r0 = 0; r0 < w->rows; r0 += (int)tile_rows) {
        const int tr = w->rows - r0 < (int)tile_rows ? w->rows - r0 : (int)tile_rows;
        const size_t total = (size_t)tr * w->cols;
        dequant_f16_kernel<WT><<<grid_for(total), EPI_THREADS, 0, c->stream>>>(
            tile, (const WT *)w->data + (size_t)r0 * w->cols, total);
        LAUNCH_CHECK(b, "dequant_f16_kernel");
        gemm_16(b, out + r0, ldc, tile, xh, CUDA_R_16F, tr, nx, w->cols);
        if (b->failed) return;
    }
}

// The 16-bit type the GEMM path rounds x to for a matmul of w over n rows:
// LLM_BF16 (BF16 weights with bf16 tensor cores), LLM_F16 (F16, I8, BF16 on
// sm_75), or 0 where x stays f32 (F32 weights, the GEMV, batch-invariant mode).
static llm_dtype gemm_x_dtype(backend *b, const bk_matrix *w, int n) {
    if (n <= GEMV_MAX_N || b->batch_invariant || w->rows <= 0 || w->cols <= 0) return (llm_dtype)0;
    if (w->dtype == LLM_BF16) return cuda_of(b)->cc_major >= 8 ? LLM_BF16 : LLM_F16;
    return w->dtype == LLM_F16 || w->dtype == LLM_I8 ? LLM_F16 : (llm_dtype)0;
}

int cuda_x16_plan(backend *b, bk_x16 *x16, void *buf, const bk_matrix *w, int n) {
    const llm_dtype dt = gemm_x_dtype(b, w, n);
    *x16 = (bk_x16){NULL, dt, NULL};
    if (!dt || !buf || b->failed) return 0;
    if (dt == LLM_F16 && !(x16->ovf = ovf_slot(b, w))) return 0;
    x16->data = buf;
    return 1;
}

// out [nx, rows] (row stride rows) = xh [nx, cols] (in dt) @ w^T; dq: by
// cuda_gemm_dq with the scales and bias applied, else unscaled.
static void gemm_rows(backend *b, float *out, const void *xh, llm_dtype dt, const bk_matrix *w,
                      const float *bias, int nx, int dq) {
    const int rows = w->rows, cols = w->cols;
    if (dq)
        cuda_gemm_dq(b, out, (const __half *)xh, w, bias, nx);
    else if (dt == LLM_BF16)
        gemm_16(b, out, rows, w->data, xh, CUDA_R_16BF, rows, nx, cols);
    else if (w->dtype == LLM_F16)
        gemm_16(b, out, rows, w->data, xh, CUDA_R_16F, rows, nx, cols);
    else if (w->dtype == LLM_BF16)
        matmul_tiled<__nv_bfloat16>(b, out, rows, (const __half *)xh, w, nx);
    else
        matmul_tiled<int8_t>(b, out, rows, (const __half *)xh, w, nx);
}

// n > GEMV_MAX_N rows through cuBLAS or cuda_gemm_dq: on x16 (the producing
// op's 16-bit copy) in one pass when it is there, else on x converted in
// chunks of rows whose 16-bit copy fits the fixed activation workspace (one
// chunk up to ACT_WS_BYTES / (2 x cols) rows). Returns 1 when the scales and
// bias were applied (cuda_gemm_dq), else 0 (also on failure).
static int matmul_cublas(backend *b, float *out, const float *x, const bk_matrix *w,
                         const float *bias, int n, const bk_x16 *x16) {
    cuda_backend *c = cuda_of(b);
    const int rows = w->rows, cols = w->cols;
    const llm_dtype dt = gemm_x_dtype(b, w, n);
    const int use16 = x16 && x16->data && x16->dtype == dt;
    // fp16 activations with weights that are not fp16: dequantized in the GEMM
    const int dq = dt == LLM_F16 && w->dtype != LLM_F16 &&
                   cuda_gemm_dq_covers(w, n, use16 ? x16->data : c->act);
    if (use16) {
        gemm_rows(b, out, x16->data, dt, w, bias, n, dq);
        return dq;
    }
    if (!x) {
        cuda_fail(b, "matmul: no f32 input, and no 16-bit copy in the GEMM's type");
        return 0;
    }
    if (w->dtype == LLM_F32) {
        const float one = 1.0f, zero = 0.0f;
        cublasStatus_t st = cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one,
                                        (const float *)w->data, cols, x, cols, &zero, out, rows);
        if (st != CUBLAS_STATUS_SUCCESS) cuda_fail(b, "cublasSgemm: %s", cublas_status_name(st));
        return 0;
    }
    const size_t chunk = ACT_WS_BYTES / ((size_t)cols * sizeof(__half));
    if (!dt || chunk == 0 || WTILE_BYTES / ((size_t)cols * sizeof(__half)) == 0) {
        if (dt)
            cuda_fail(b, "matmul: %d columns exceed the fixed workspaces", cols);
        else
            cuda_fail(b, "matmul: unsupported weight dtype %d", (int)w->dtype);
        return 0;
    }
    for (int r0 = 0; r0 < n && !b->failed; r0 += (int)chunk) {
        const int nx = n - r0 < (int)chunk ? n - r0 : (int)chunk;
        const size_t total = (size_t)nx * cols;
        const float *xc = x + (size_t)r0 * cols;
        const void *xh = dt == LLM_BF16 ? (const void *)convert_x<__nv_bfloat16>(b, xc, total, w)
                                        : (const void *)convert_x<__half>(b, xc, total, w);
        if (xh) gemm_rows(b, out + (size_t)r0 * rows, xh, dt, w, bias, nx, dq);
    }
    return dq;
}

void cuda_matmul(backend *b, float *out, const float *x, const bk_matrix *w, const float *bias,
                 int n, const bk_x16 *x16) {
    if (n <= 0 || w->rows <= 0) return;
    if (w->dtype == LLM_I8 && !w->scales) {
        cuda_fail(b, "matmul: an I8 matrix needs its scales");
        return;
    }
    // Batch-invariant mode: the GEMV for every n, GEMV_MAX_N rows per launch
    // (a row's bits are the same for every n <= GEMV_MAX_N, so for every n).
    if (n <= GEMV_MAX_N || b->batch_invariant) {
        if (!x) {
            cuda_fail(b, "matmul: the GEMV of %d rows needs its f32 input", n);
            return;
        }
        for (int r0 = 0; r0 < n && !b->failed; r0 += GEMV_MAX_N) {
            const int nr = n - r0 < GEMV_MAX_N ? n - r0 : GEMV_MAX_N;
            const float *xr = x + (size_t)r0 * w->cols;
            float *orow = out + (size_t)r0 * w->rows;
            switch (w->dtype) {
            case LLM_F16:
                launch_gemv<__half>(b, orow, xr, w, bias, nr);
                break;
            case LLM_BF16:
                launch_gemv<__nv_bfloat16>(b, orow, xr, w, bias, nr);
                break;
            case LLM_F32:
                launch_gemv<float>(b, orow, xr, w, bias, nr);
                break;
            case LLM_I8:
                launch_gemv<int8_t>(b, orow, xr, w, bias, nr);
                break;
            default:
                cuda_fail(b, "matmul: unsupported weight dtype %d", (int)w->dtype);
                return;
            }
        }
        return;
    }
    if (w->cols <= 0) { // an empty sum: cuBLAS rejects k = 0
        CUDA_CHECK(
            b, cudaMemsetAsync(out, 0, (size_t)n * w->rows * sizeof(float), cuda_of(b)->stream));
    } else {
        const int done = matmul_cublas(b, out, x, w, bias, n, x16);
        if (done || b->failed) return;
    }
    const float *scales = w->dtype == LLM_I8 ? w->scales : NULL;
    if (!scales && !bias) return;
    epilogue_kernel<<<grid_for((size_t)n * w->rows), EPI_THREADS, 0, cuda_of(b)->stream>>>(
        out, scales, bias, n, w->rows);
    LAUNCH_CHECK(b, "epilogue_kernel");
}
