// cpu_simd.h - the inner loops of the CPU backend, in a plain C version and an
// AVX2/FMA/F16C version chosen once at run time (cpu_simd_init).
//
// Every dot product, whichever version, adds in the same order for a given
// length: 8 lanes of partial sums over whole blocks of 8, reduced in a fixed
// tree, then the tail. So a row's result never depends on which other rows
// share its batch (batch invariance).
#ifndef LLM_CPU_SIMD_H
#define LLM_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

typedef struct {
    const char *name; // "avx2" or "generic"
    // sum_i x[i] * w[i], w in dtype (F16, BF16, F32, or I8: the raw integers)
    float (*dot)(const float *x, const void *w, llm_dtype dt, int n);
    // y[i] += a * v[i], v in dtype
    void (*axpy)(float *y, float a, const void *v, llm_dtype dt, int n);
    // dst[i] = (float)src[i]
    void (*to_f32)(float *dst, const void *src, llm_dtype dt, int n);
    // out[t * ldo + r] = dot(x + t * n, w + r * n) for r < 4, t < 2, f32 w.
    // Same arithmetic as dot() on each pair.
    void (*dot4x2)(float *out, int ldo, const float *x, const float *w, int n);
    // out[r] = dot(x, w + r * row_bytes, dt, n) for r < 4: four rows of one
    // weight matrix against one token, as four independent accumulator chains
    // (decode is latency-bound on one chain). Same arithmetic as dot() per row.
    void (*dot4)(float out[4], const float *x, const void *w, size_t row_bytes, llm_dtype dt,
                 int n);
} cpu_simd;

// The best version this CPU supports (AVX2 + FMA + F16C, else generic).
const cpu_simd *cpu_simd_get(void);
// The plain C version (tests compare the two).
const cpu_simd *cpu_simd_generic(void);

#endif
