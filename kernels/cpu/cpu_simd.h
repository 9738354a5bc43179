// cpu_simd.h - the inner loops of the CPU backend, in a plain C version, an
// AVX2/FMA/F16C version and an AVX-512 version, one chosen at start-up
// (cpu_simd_get: the best this CPU has; LLM_CPU_SIMD names another).
//
// Every dot product, whichever version and whichever loop (dot, dot4,
// dot_tile), adds in the same order for a given length: 16 lanes of partial
// sums, lane l over elements 16j + l in increasing j, one fused multiply-add
// each; then lane i + lane i+8, then i + i+4 of those, then a fixed pair tree;
// then the elements past the last whole block of 16, in order. So a row's
// result never depends on which other rows share its batch (batch
// invariance), and every version gives the same bits.
#ifndef LLM_CPU_SIMD_H
#define LLM_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

typedef struct {
    const char *name; // "avx512", "avx2" or "generic"
    // sum_i x[i] * w[i], w in dtype (F16, BF16, F32, or I8: the raw integers)
    float (*dot)(const float *x, const void *w, llm_dtype dt, int n);
    // y[i] += a * v[i], v in dtype
    void (*axpy)(float *y, float a, const void *v, llm_dtype dt, int n);
    // dst[i] = (float)src[i]
    void (*to_f32)(float *dst, const void *src, llm_dtype dt, int n);
    // out[t * ldo + r] = dot(x + t * ldx, w + r * n, F32, n) for t < nt,
    // r < nr: a tile of tokens against f32 weight rows (the prefill matmul's
    // register-tiled kernel; attention's queries against a block of keys).
    // Same arithmetic as dot() on each pair.
    void (*dot_tile)(float *out, int ldo, const float *x, int ldx, int nt, const float *w, int nr,
                     int n);
    // out[r] = dot(x, w + r * row_bytes, dt, n) for r < 4: four rows of one
    // weight matrix against one token, as four independent accumulator chains
    // (decode is latency-bound on one chain). Same arithmetic as dot() per row.
    void (*dot4)(float out[4], const float *x, const void *w, size_t row_bytes, llm_dtype dt,
                 int n);
    // y[i] += a[t] * v[t * ldv + i] for t < na in increasing t, i < n: the
    // same arithmetic as na calls of axpy(y, a[t], v + t * ldv, F32, n), with y
    // kept in registers across t (attention's probabilities times values).
    void (*axpy_seq)(float *y, const float *a, int na, const float *v, int ldv, int n);
    // y[i] = exp(x[i]) (y may be x), by one fixed sequence of operations in
    // every version: within ~2 ulp of expf, clamped to exp(-87)..exp(88).
    void (*exp)(float *y, const float *x, int n);
    // out[i] = g[i] / (1 + exp(-g[i])) * u[i] with that exp.
    void (*silu_mul)(float *out, const float *g, const float *u, int n);
    // dst[i] = f32_to_fp16(src[i]): round to nearest even (a NaN's payload
    // may differ).
    void (*to_f16)(uint16_t *dst, const float *src, int n);
    // dst[i] = f32_to_bf16(src[i]) (round to nearest even).
    void (*to_bf16)(uint16_t *dst, const float *src, int n);
    // The --cpu-matmul bf16 mode's products: out[t * ldo + r] = the dot of
    // bf16 rows x + t * ldx and w + r * ldw over n elements (n a multiple of
    // 32), as vdpbf16ps adds (see cpu_simd.c); NULL in the AVX2 version. The
    // generic one emulates it, slowly (tests); use cpu_simd_has_bf16_dot().
    void (*dot_tile_bf16)(float *out, int ldo, const uint16_t *x, int ldx, int nt,
                          const uint16_t *w, int ldw, int nr, int n);
    // dst[i] = src[i] as bf16 (exact: |src| <= 128).
    void (*i8_to_bf16)(uint16_t *dst, const int8_t *src, int n);
} cpu_simd;

// The best version this CPU supports (AVX-512 F+VL, else AVX2 + FMA + F16C,
// else generic).
const cpu_simd *cpu_simd_get(void);
// The version of that name ("avx512", "avx2", "generic"), or NULL when this
// CPU lacks it or the name is unknown.
const cpu_simd *cpu_simd_named(const char *name);
// Whether this CPU runs the AVX-512 version's bf16 products (AVX512_BF16).
int cpu_simd_has_bf16_dot(void);
// The plain C version (tests compare the two).
const cpu_simd *cpu_simd_generic(void);

#endif
