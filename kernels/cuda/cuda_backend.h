// cuda_backend.h - C entry points of the CUDA backend (kernels/cuda/).
#ifndef LLM_CUDA_BACKEND_H
#define LLM_CUDA_BACKEND_H

#ifdef __cplusplus
extern "C" { // backend.h and the headers it includes are C
#endif

#include "backend.h"

// Creates the CUDA backend on device 0 (dev as filled by device_select):
// one stream for every op, a cuBLAS handle bound to it. Returns NULL with err
// naming the failing CUDA/cuBLAS call. Every op of backend.h is implemented
// with the CPU backend's semantics; see README.md "CUDA backend".
backend *cuda_backend_create(const device_info *dev, char *err);

// --- micro-benchmarks (tests/gpu/bench_kernels.c), timed with CUDA events --------

// Device-to-device cudaMemcpyAsync of `bytes`, median of `reps`: GB/s counting
// bytes read plus bytes written. Returns 0, or -1 with err.
int cuda_bench_copy(backend *b, size_t bytes, int reps, double *gbps, char *err);

// cuBLAS fp16 GEMM (fp32 accumulation) of [m, k] x [k, n] on random data,
// median of `reps`: TFLOP/s. Returns 0, or -1 with err.
int cuda_bench_gemm_f16(backend *b, int m, int n, int k, int reps, double *tflops, char *err);

// The backend's matmul of x [n, w->cols] by w (w and x device pointers),
// median of `reps` over `n_w` weight copies used in turn (so the weights do
// not stay in L2): milliseconds per call. Returns 0, or -1 with err.
int cuda_bench_matmul(backend *b, const bk_matrix *w, int n_w, const float *x, float *out, int n,
                      int reps, double *ms, char *err);

#ifdef __cplusplus
}
#endif

#endif
