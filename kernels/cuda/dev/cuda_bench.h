// cuda_bench.h - micro-benchmarks of the CUDA backend for gpu_bench (this
// folder), timed with CUDA events. Development tools: not part of libllm.a.
#ifndef LLM_CUDA_BENCH_H
#define LLM_CUDA_BENCH_H

#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h"

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

// The backend's attention over one causal prompt of `tokens` rows (a fresh
// prefill: context = tokens), fp16 K/V pages of 16 tokens, random data:
// median milliseconds of `reps`. Returns 0, or -1 with err.
int cuda_bench_attention(backend *b, int tokens, int n_heads, int n_kv_heads, int head_dim,
                         int reps, double *ms, char *err);

#ifdef __cplusplus
}
#endif

#endif
