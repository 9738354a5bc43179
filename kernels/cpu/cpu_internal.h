// cpu_internal.h - the CPU backend's state, shared by its files
// (cpu_backend.c: memory, matmul and the small ops; cpu_attention.c).
#ifndef LLM_CPU_INTERNAL_H
#define LLM_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cpu_pool.h"
#include "cpu_simd.h"

typedef struct {
    backend base; // first: a backend * is a cpu_backend *
    const cpu_simd *simd;
    float *scratch; // per-thread scratch, grown on demand
    size_t scratch_per_thread;
    int n_threads;
    cpu_pool *pool;  // n_threads workers, the caller one of them
    int matmul_bf16; // --cpu-matmul bf16 (cpu_backend_matmul_bf16)
    uint16_t *xb;    // that mode's bf16 activations, grown on demand
    size_t xb_cap;   // elements
    void *att_units; // cpu_attention's work units, grown on demand
    size_t att_units_bytes;
    float fp8_table[256]; // fp8_e4m3_to_f32 of every code, for fp8 K/V
} cpu_backend;

// Scratch of at least `floats` per thread; thread t uses scratch + t *
// scratch_per_thread. NULL when out of memory.
float *cpu_scratch_get(cpu_backend *c, size_t floats);

void cpu_attention(backend *b, float *out, const float *q, const void *k_cache, const void *v_cache,
                   const bk_attn_batch *bt, int n_heads, int n_kv_heads, int head_dim,
                   int block_size, float scale, llm_dtype kv_dtype, float k_scale, float v_scale,
                   int window, const bk_x16 *x16);

// An op's 16-bit copy (bk_x16): compute into cpu_x16_begin's pointer (out, or
// a temporary of `floats` when out is NULL; NULL with b->failed set when
// neither is possible), then cpu_x16_end rounds n rows of dim into x16 (if
// any) and frees the temporary.
float *cpu_x16_begin(backend *b, float *out, const bk_x16 *x16, size_t floats);
void cpu_x16_end(const bk_x16 *x16, float *o, const float *out, int n, int dim);

#endif
