// emu.h - a CPU emulation of the CUDA subset kernels/cuda/ uses, so that
// gpu_tests can run the real kernels on a machine without a GPU
// (`make test-gpu-emu`). translate.py rewrites each .cu into C++ (launch
// syntax, extern shared arrays); these headers stand in for cuda_runtime.h,
// cuda_fp16.h, cuda_bf16.h, cuda_fp8.h and cublas_v2.h.
//
// Model: blocks run one after another; the threads of a block are fibers
// (ucontext) on one OS thread, switched only at __syncthreads (released when
// every live thread of the block is there) and at warp shuffles (released
// when every live lane of the warp is there), so barrier semantics are real
// and a barrier that not all threads reach is a reported deadlock; a
// full-mask __syncwarp and the votes meet the warp the same way. The
// scheduler's passes alternate ascending and descending thread order, so a
// thread that reads a neighbour's write without a meeting point between them
// reads it unwritten in one of the two. mma.h (WMMA) and
// cuda_pipeline_primitives.h (cp.async) document their own models. Shared
// memory is one buffer per launch (dynamic, filled with NaN bytes) or a
// static; device memory is host memory (cudaMalloc fills it with 0xAB).
// cuBLAS is a naive column-major GEMM accumulating in double. Launch
// configurations are checked against the CUDA limits (block size, grid y/z,
// shared memory against the opted-in limit). EMU_CC=75 (default 90) sets the
// emulated compute capability.
//
// Graphs: between cudaStreamBeginCapture and cudaStreamEndCapture, launches,
// copies, memsets and cuBLAS calls are recorded with their arguments (values
// copied, as a real capture bakes them) and run when the graph is launched;
// cudaMalloc, cudaFree and cudaStreamSynchronize fail then, as they do on a
// device in thread-local capture mode.
//
// Launch counts: emu_kernel_launches(name) says how many times a kernel of
// that name (without template arguments) has run, graph replays included;
// tests read it to check which kernels a step launches.
//
// What it cannot show: races between threads that the fiber order hides,
// memory-model effects, speed, and real cuBLAS rounding.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <math.h>

extern "C" {
unsigned long emu_kernel_launches(const char *name);
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
uint16_t f32_to_bf16(float f);
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n))) // anywhere in a declaration, as nvcc takes it

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct __half {
    uint16_t b;
};
struct __half2 {
    __half x, y;
};
struct __nv_bfloat16 {
    uint16_t b;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return uint4{a, b, c, d};
}
inline float2 make_float2(float a, float b) {
    return float2{a, b};
}
inline float4 make_float4(float a, float b, float c, float d) {
    return float4{a, b, c, d};
}
inline float __half2float(__half h) {
    return fp16_to_f32(h.b);
}
inline __half __float2half_rn(float f) {
    return __half{f32_to_fp16(f)};
}
inline float2 __half22float2(__half2 h) {
    return float2{__half2float(h.x), __half2float(h.y)};
}
inline __half2 __float2half2_rn(float f) {
    return __half2{__float2half_rn(f), __float2half_rn(f)};
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    return __nv_bfloat16{f32_to_bf16(f)};
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
inline __half __ushort_as_half(unsigned short u) {
    return __half{u};
}
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float __int_as_float(int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float __bfloat162float(__nv_bfloat16 b) {
    return __uint_as_float((unsigned)b.b << 16);
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) {
    return float2{__bfloat162float(h.x), __bfloat162float(h.y)};
}
template <class T> inline T __ldg(const T *p) {
    return *p;
}
template <class T> inline T __ldcg(const T *p) {
    return *p;
}
// PRMT: byte i of the result is byte (s >> 4i) & 7 of the 8 bytes {y, x} (x low).
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t v = (uint64_t)y << 32 | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)(v >> (8 * ((s >> (4 * i)) & 7)) & 0xff) << (8 * i);
    return r;
}
// one rounding each, never contracted into an FMA (as on the device)
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline float __fadd_rn(float a, float b) {
    volatile float r = a + b;
    return r;
}
// Blocks run one after another and threads switch only at barriers and
// shuffles, so an atomic is a plain read-modify-write and a fence is nothing.
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    const unsigned old = *p;
    *p = old + v;
    return old;
}
inline void __threadfence() {}
inline int min(int a, int b) {
    return a < b ? a : b;
}
inline int max(int a, int b) {
    return a > b ? a : b;
}

namespace emu {
const dim3 &tid();
void sync_block();
float shfl_xor(float v, int m);
// A warp meeting point: returns when every live lane of the calling thread's
// warp has reached one (__syncwarp, the WMMA ops of mma.h).
void warp_meet();
// Whether pred is nonzero on any (all) live lanes of the warp (a meeting point).
int warp_vote(int pred, bool all);
// mma_sync's exchange: each thread's published elements (mma.h).
extern const float *mma_pub[1024];
// cp.async (cuda_pipeline_primitives.h): a thread's recorded copies, groups, waits.
void async_copy(void *dst, const void *src, size_t size, size_t zfill);
void async_commit();
void async_wait(size_t prior);
void *dyn_smem();
extern dim3 g_block_idx, g_block_dim, g_grid_dim;
bool begin_launch(dim3 g, dim3 b, size_t smem);
void run_blocks(const std::function<void()> &body);
struct stream_s;
} // namespace emu
#define threadIdx (emu::tid())
#define blockIdx (emu::g_block_idx)
#define blockDim (emu::g_block_dim)
#define gridDim (emu::g_grid_dim)
inline void __syncthreads() {
    emu::sync_block();
}
inline float __shfl_xor_sync(unsigned, float v, int m) {
    return emu::shfl_xor(v, m);
}
inline int __shfl_xor_sync(unsigned, int v, int m) { // the bits travel as a float's
    float f;
    memcpy(&f, &v, sizeof f);
    f = emu::shfl_xor(f, m);
    memcpy(&v, &f, sizeof v);
    return v;
}

// --- runtime ---
typedef int cudaError_t;
enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100,
    cudaErrorStreamCaptureUnsupported = 900
};
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph *cudaGraphExec_t;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal,
    cudaStreamCaptureModeThreadLocal,
    cudaStreamCaptureModeRelaxed
};
typedef emu::stream_s *cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
#define cudaStreamNonBlocking 1
struct cudaDeviceProp {
    char name[256];
    int major, minor;
    size_t sharedMemPerBlockOptin;
    int multiProcessorCount;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaMalloc(void **p, size_t n);
template <class T> cudaError_t cudaMalloc(T **p, size_t n) {
    return cudaMalloc((void **)p, n);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
template <class T> cudaError_t cudaMallocHost(T **p, size_t n) {
    return cudaMallocHost((void **)p, n);
}
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st);
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st);
cudaError_t cudaStreamSynchronize(cudaStream_t);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *, unsigned);
cudaError_t cudaStreamDestroy(cudaStream_t);
cudaError_t cudaSetDevice(int);
cudaError_t cudaGetDeviceCount(int *);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *, int);
cudaError_t cudaMemGetInfo(size_t *, size_t *);
cudaError_t emu_set_attr(int value);
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode);
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *, cudaGraph_t, unsigned long long);
cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t);
cudaError_t cudaGraphDestroy(cudaGraph_t);
template <class F> cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int v) {
    return emu_set_attr(v);
}

namespace emu {
struct Cfg {
    dim3 g, b;
    size_t smem;
    Cfg(dim3 g_, dim3 b_, size_t s = 0, cudaStream_t = nullptr) : g(g_), b(b_), smem(s) {}
};
// While a stream is captured, work is recorded (run at the graph's launch).
bool capturing();
void record(std::function<void()> op);
// Counts a run of the kernel `name` (emu_kernel_launches reads the counts).
void count_launch(const char *name);
template <class L, class... A> void launch(Cfg c, const char *name, L lam, A... args) {
    std::tuple<A...> t(args...);
    auto run = [c, name, lam, t] {
        if (!begin_launch(c.g, c.b, c.smem)) return;
        count_launch(name);
        run_blocks([&] { std::apply(lam, t); });
    };
    if (!capturing())
        run();
    else if (begin_launch(c.g, c.b, c.smem)) // a bad configuration fails at capture, as on a device
        record(run);
}
} // namespace emu

// --- cuBLAS ---
typedef int cublasStatus_t;
enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16
};
typedef struct emu_blas *cublasHandle_t;
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef enum { CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT } cublasGemmAlgo_t;
cublasStatus_t cublasCreate(cublasHandle_t *);
cublasStatus_t cublasDestroy(cublasHandle_t);
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t);
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t);
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType_t, int lda,
                            const void *B, cudaDataType_t, int ldb, const void *beta, void *C,
                            cudaDataType_t, int ldc, cublasComputeType_t, cublasGemmAlgo_t);
cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t, cublasOperation_t, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B,
                           int ldb, const float *beta, float *C, int ldc);
// A full-warp __syncwarp is a warp meeting point (so lanes' shared-memory
// writes before it are seen by the others after it); a partial mask is a
// no-op (the emulator has no sub-warp meeting points).
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask == 0xffffffffu) emu::warp_meet();
}
inline int __any_sync(unsigned, int pred) {
    return emu::warp_vote(pred, false);
}
inline int __all_sync(unsigned, int pred) {
    return emu::warp_vote(pred, true);
}
