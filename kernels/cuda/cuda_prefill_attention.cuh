// cuda_prefill_attention.cuh - private to kernels/cuda/: the tensor-core
// prefill attention (cuda_prefill_attention.cu) as cuda_attention.cu calls it.
#ifndef LLM_CUDA_PREFILL_ATTENTION_CUH
#define LLM_CUDA_PREFILL_ATTENTION_CUH

#include "cuda_common.cuh"

// Computes the rows of the sequences with q_len >= min_q_len of the batch
// (the contract of backend.h's attention) on tensor cores and returns 1, or
// returns 0 without launching anything when this device, head_dim or GQA
// ratio is not covered (then the caller runs its fp32 kernel). The choice
// depends on the device, the KV element type, head_dim and the head counts
// only: never on the batch.
int cuda_prefill_tc(cuda_backend *c, out_x16 out, const float *q, const __half *k_cache,
                    const __half *v_cache, const bk_attn_batch *bt, int n_heads, int n_kv_heads,
                    int head_dim, int block_size, float scale, int window, int min_q_len);
int cuda_prefill_tc(cuda_backend *c, out_x16 out, const float *q, const __nv_bfloat16 *k_cache,
                    const __nv_bfloat16 *v_cache, const bk_attn_batch *bt, int n_heads,
                    int n_kv_heads, int head_dim, int block_size, float scale, int window,
                    int min_q_len);

// Opts the kernels that need more than 48 KB of shared memory in (those that
// fit the device). Call after every other cudaFuncSetAttribute of
// cuda_attention_init (the emulator keeps one limit for all kernels).
// fp8 caches: not covered yet (returns 0: the caller runs the fp32 kernel).
static inline int cuda_prefill_tc(cuda_backend *, out_x16, const float *, const kv_fp8_hw *,
                                  const kv_fp8_hw *, const bk_attn_batch *, int, int, int, int,
                                  float, int, int) {
    return 0;
}
static inline int cuda_prefill_tc(cuda_backend *, out_x16, const float *, const kv_fp8_sw *,
                                  const kv_fp8_sw *, const bk_attn_batch *, int, int, int, int,
                                  float, int, int) {
    return 0;
}

int cuda_prefill_tc_init(cuda_backend *c);

#endif
