#include "cpu_simd.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

// --- generic ------------------------------------------------------------------

static inline float elem(const void *w, llm_dtype dt, int i) {
    switch (dt) {
    case LLM_F16:
        return fp16_to_f32(((const uint16_t *)w)[i]);
    case LLM_BF16:
        return bf16_to_f32(((const uint16_t *)w)[i]);
    case LLM_I8:
        return (float)((const int8_t *)w)[i];
    default:
        return ((const float *)w)[i];
    }
}

// The fixed reduction order of the 8 lanes, shared with the AVX2 version.
static inline float reduce8(const float a[8]) {
    float lo0 = a[0] + a[4], lo1 = a[1] + a[5], lo2 = a[2] + a[6], lo3 = a[3] + a[7];
    return (lo0 + lo2) + (lo1 + lo3);
}

static float dot_generic(const float *x, const void *w, llm_dtype dt, int n) {
    float acc[8] = {0};
    int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8)
        for (int l = 0; l < 8; l++) acc[l] = __builtin_fmaf(x[i + l], elem(w, dt, i + l), acc[l]);
    float s = reduce8(acc);
    for (int i = n8; i < n; i++) s = __builtin_fmaf(x[i], elem(w, dt, i), s);
    return s;
}

static void axpy_generic(float *y, float a, const void *v, llm_dtype dt, int n) {
    for (int i = 0; i < n; i++) y[i] = __builtin_fmaf(a, elem(v, dt, i), y[i]);
}

static void to_f32_generic(float *dst, const void *src, llm_dtype dt, int n) {
    for (int i = 0; i < n; i++) dst[i] = elem(src, dt, i);
}

static void dot4x2_generic(float *out, int ldo, const float *x, const float *w, int n) {
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 2; t++)
            out[t * ldo + r] = dot_generic(x + (long)t * n, w + (long)r * n, LLM_F32, n);
}

static void dot4_generic(float out[4], const float *x, const void *w, size_t row_bytes,
                         llm_dtype dt, int n) {
    for (int r = 0; r < 4; r++) out[r] = dot_generic(x, (const char *)w + r * row_bytes, dt, n);
}

static const cpu_simd simd_generic = {"generic",      dot_generic,    axpy_generic,
                                      to_f32_generic, dot4x2_generic, dot4_generic};

const cpu_simd *cpu_simd_generic(void) {
    return &simd_generic;
}

// --- AVX2 + FMA + F16C ----------------------------------------------------------

#ifdef HAVE_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline __m256 load8(const void *w, llm_dtype dt, int i) {
    if (dt == LLM_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    if (dt == LLM_BF16) {
        __m256i u =
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    if (dt == LLM_I8)
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)w + i))));
    return _mm256_loadu_ps((const float *)w + i);
}

AVX2 static inline float hsum(__m256 v) {
    float a[8];
    _mm256_storeu_ps(a, v);
    return reduce8(a);
}

AVX2 static float dot_avx2(const float *x, const void *w, llm_dtype dt, int n) {
    __m256 acc = _mm256_setzero_ps();
    int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), load8(w, dt, i), acc);
    float s = hsum(acc);
    for (int i = n8; i < n; i++) s = __builtin_fmaf(x[i], elem(w, dt, i), s);
    return s;
}

AVX2 static void axpy_avx2(float *y, float a, const void *v, llm_dtype dt, int n) {
    __m256 va = _mm256_set1_ps(a);
    int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load8(v, dt, i), _mm256_loadu_ps(y + i)));
    for (int i = n8; i < n; i++) y[i] = __builtin_fmaf(a, elem(v, dt, i), y[i]);
}

AVX2 static void to_f32_avx2(float *dst, const void *src, llm_dtype dt, int n) {
    int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8) _mm256_storeu_ps(dst + i, load8(src, dt, i));
    for (int i = n8; i < n; i++) dst[i] = elem(src, dt, i);
}

// 4 weight rows x 2 tokens: 8 accumulators, 6 loads per 8 FMAs.
AVX2 static void dot4x2_avx2(float *out, int ldo, const float *x, const float *w, int n) {
    const float *x0 = x, *x1 = x + n;
    const float *w0 = w, *w1 = w + n, *w2 = w + 2L * n, *w3 = w + 3L * n;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
    __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8) {
        __m256 vx0 = _mm256_loadu_ps(x0 + i), vx1 = _mm256_loadu_ps(x1 + i);
        __m256 v = _mm256_loadu_ps(w0 + i);
        a00 = _mm256_fmadd_ps(vx0, v, a00);
        a01 = _mm256_fmadd_ps(vx1, v, a01);
        v = _mm256_loadu_ps(w1 + i);
        a10 = _mm256_fmadd_ps(vx0, v, a10);
        a11 = _mm256_fmadd_ps(vx1, v, a11);
        v = _mm256_loadu_ps(w2 + i);
        a20 = _mm256_fmadd_ps(vx0, v, a20);
        a21 = _mm256_fmadd_ps(vx1, v, a21);
        v = _mm256_loadu_ps(w3 + i);
        a30 = _mm256_fmadd_ps(vx0, v, a30);
        a31 = _mm256_fmadd_ps(vx1, v, a31);
    }
    float s[8] = {hsum(a00), hsum(a01), hsum(a10), hsum(a11),
                  hsum(a20), hsum(a21), hsum(a30), hsum(a31)};
    const float *ws[4] = {w0, w1, w2, w3}, *xs[2] = {x0, x1};
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 2; t++) {
            float acc = s[r * 2 + t];
            for (int i = n8; i < n; i++) acc = __builtin_fmaf(xs[t][i], ws[r][i], acc);
            out[t * ldo + r] = acc;
        }
}

// The body of dot4 for one dtype: inlined with dt a constant, so the loop
// holds no dtype branch.
AVX2 static inline __attribute__((always_inline)) void
dot4_body(float out[4], const float *x, const char *w0, size_t row_bytes, llm_dtype dt, int n) {
    const char *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const int n8 = n & ~7;
    for (int i = 0; i < n8; i += 8) {
        __m256 vx = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(vx, load8(w0, dt, i), a0);
        a1 = _mm256_fmadd_ps(vx, load8(w1, dt, i), a1);
        a2 = _mm256_fmadd_ps(vx, load8(w2, dt, i), a2);
        a3 = _mm256_fmadd_ps(vx, load8(w3, dt, i), a3);
    }
    float s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
    const char *ws[4] = {w0, w1, w2, w3};
    for (int r = 0; r < 4; r++) {
        for (int i = n8; i < n; i++) s[r] = __builtin_fmaf(x[i], elem(ws[r], dt, i), s[r]);
        out[r] = s[r];
    }
}

AVX2 static void dot4_avx2(float out[4], const float *x, const void *w, size_t row_bytes,
                           llm_dtype dt, int n) {
    switch (dt) {
    case LLM_F16:
        dot4_body(out, x, w, row_bytes, LLM_F16, n);
        break;
    case LLM_BF16:
        dot4_body(out, x, w, row_bytes, LLM_BF16, n);
        break;
    case LLM_I8:
        dot4_body(out, x, w, row_bytes, LLM_I8, n);
        break;
    default:
        dot4_body(out, x, w, row_bytes, LLM_F32, n);
        break;
    }
}

static const cpu_simd simd_avx2 = {"avx2",      dot_avx2,    axpy_avx2,
                                   to_f32_avx2, dot4x2_avx2, dot4_avx2};
#endif

const cpu_simd *cpu_simd_get(void) {
#ifdef HAVE_X86
    __builtin_cpu_init();
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C); // clang lacks "f16c" here
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return &simd_avx2;
#endif
    return &simd_generic;
}
