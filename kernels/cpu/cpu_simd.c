#include "cpu_simd.h"

#include <stdint.h>
#include <math.h>
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

// The fixed reduction order of the 16 lanes, shared by every version: lane i
// plus lane i + 8, then lanes i and i + 4 of that, then a fixed pair tree.
static inline float reduce16(const float a[16]) {
    float b[8];
    for (int i = 0; i < 8; i++) b[i] = a[i] + a[i + 8];
    float lo0 = b[0] + b[4], lo1 = b[1] + b[5], lo2 = b[2] + b[6], lo3 = b[3] + b[7];
    return (lo0 + lo2) + (lo1 + lo3);
}

// The tail after the whole blocks of 16: one chain, in element order.
static inline float tail_dot(float s, const float *x, const void *w, llm_dtype dt, int from,
                             int n) {
    for (int i = from; i < n; i++) s = __builtin_fmaf(x[i], elem(w, dt, i), s);
    return s;
}

// exp(x) in the operations every version repeats exactly (so the same bits):
// x clamped to [-87, 88] (NaN passes through), n = round(x / ln 2) by the
// 1.5 x 2^23 trick, r = x - n ln 2 in two parts, Cephes' degree-6 polynomial
// for e^r, times 2^n built in the exponent bits. Within ~2 ulp of expf on
// the range; exp(88) for larger x, exp(-87) for smaller.
#define EXP_LO -87.0f
#define EXP_HI 88.0f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_MAGIC 12582912.0f // 1.5 x 2^23
#define EXP_C1 0.693359375f
#define EXP_C2 -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_generic1(float x) {
    x = EXP_LO > x ? EXP_LO : x;
    x = EXP_HI < x ? EXP_HI : x;
    const float t = __builtin_fmaf(x, EXP_LOG2E, EXP_MAGIC);
    const float n = t - EXP_MAGIC;
    float r = __builtin_fmaf(n, -EXP_C1, x);
    r = __builtin_fmaf(n, -EXP_C2, r);
    const float z = r * r;
    float p = __builtin_fmaf(EXP_P0, r, EXP_P1);
    p = __builtin_fmaf(p, r, EXP_P2);
    p = __builtin_fmaf(p, r, EXP_P3);
    p = __builtin_fmaf(p, r, EXP_P4);
    p = __builtin_fmaf(p, r, EXP_P5);
    float y = __builtin_fmaf(p, z, r);
    y = y + 1.0f;
    int32_t tb, mb;
    memcpy(&tb, &t, 4);
    const float magic = EXP_MAGIC;
    memcpy(&mb, &magic, 4);
    const int32_t eb = (int32_t)((uint32_t)(tb - mb + 127) << 23);
    float scale;
    memcpy(&scale, &eb, 4);
    return y * scale;
}

static void exp_generic(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = exp_generic1(x[i]);
}

// silu(g) * u = g / (1 + exp(-g)) * u
static void silu_mul_generic(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + exp_generic1(-g[i])) * u[i];
}

static float dot_generic(const float *x, const void *w, llm_dtype dt, int n) {
    float acc[16] = {0};
    int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = __builtin_fmaf(x[i + l], elem(w, dt, i + l), acc[l]);
    return tail_dot(reduce16(acc), x, w, dt, n16, n);
}

static void axpy_generic(float *y, float a, const void *v, llm_dtype dt, int n) {
    for (int i = 0; i < n; i++) y[i] = __builtin_fmaf(a, elem(v, dt, i), y[i]);
}

static void to_f32_generic(float *dst, const void *src, llm_dtype dt, int n) {
    for (int i = 0; i < n; i++) dst[i] = elem(src, dt, i);
}

static void dot_tile_generic(float *out, int ldo, const float *x, int ldx, int nt, const float *w,
                             int nr, int n) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * ldo + r] =
                dot_generic(x + (size_t)t * ldx, w + (size_t)r * n, LLM_F32, n);
}

static void dot4_generic(float out[4], const float *x, const void *w, size_t row_bytes,
                         llm_dtype dt, int n) {
    for (int r = 0; r < 4; r++) out[r] = dot_generic(x, (const char *)w + r * row_bytes, dt, n);
}

static void axpy_seq_generic(float *y, const float *a, int na, const float *v, int ldv, int n) {
    for (int t = 0; t < na; t++) axpy_generic(y, a[t], v + (size_t)t * ldv, LLM_F32, n);
}

static void to_f16_generic(uint16_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

// --- bf16 products (the --cpu-matmul bf16 mode) ----------------------------
//
// vdpbf16ps's arithmetic, lane by lane: lane l of a block of 32 elements adds
// x[2l+1] * w[2l+1], then x[2l] * w[2l] (products of two bf16 are exact in
// f32; each addition rounds to nearest even), with bf16 subnormal inputs read
// as zero and subnormal sums flushed to zero; then the fixed 16-lane tree.

static inline float bf16_daz(uint16_t h) {
    return (h & 0x7f80) ? bf16_to_f32(h) : 0.0f * bf16_to_f32(h); // keeps the sign
}

static inline float ftz(float v) {
    return fabsf(v) < 1.17549435e-38f ? 0.0f * v : v;
}

static float dot_bf16_generic(const uint16_t *x, const uint16_t *w, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i += 32)
        for (int l = 0; l < 16; l++) {
            const int e = i + 2 * l;
            acc[l] = ftz(acc[l] + bf16_daz(x[e + 1]) * bf16_daz(w[e + 1]));
            acc[l] = ftz(acc[l] + bf16_daz(x[e]) * bf16_daz(w[e]));
        }
    return reduce16(acc);
}

static void dot_tile_bf16_generic(float *out, int ldo, const uint16_t *x, int ldx, int nt,
                                  const uint16_t *w, int ldw, int nr, int n) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * ldo + r] =
                dot_bf16_generic(x + (size_t)t * ldx, w + (size_t)r * ldw, n);
}

static void to_bf16_generic(uint16_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

// An int8 value is exact in bf16: the top half of its f32 bits.
static void i8_to_bf16_generic(uint16_t *dst, const int8_t *src, int n) {
    for (int i = 0; i < n; i++) {
        const float f = (float)src[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        dst[i] = (uint16_t)(u >> 16);
    }
}

static const cpu_simd simd_generic = {
    "generic",       dot_generic,           axpy_generic,      to_f32_generic,   dot_tile_generic,
    dot4_generic,    axpy_seq_generic,      exp_generic,       silu_mul_generic, to_f16_generic,
    to_bf16_generic, dot_tile_bf16_generic, i8_to_bf16_generic};

const cpu_simd *cpu_simd_generic(void) {
    return &simd_generic;
}

#ifdef HAVE_X86
// --- AVX2 + FMA + F16C ----------------------------------------------------------
//
// The 16 lanes are two 8-float halves: lo holds lanes 0-7, hi lanes 8-15.

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

// reduce16 on the two halves, with the same additions in the same order.
AVX2 static inline float hsum16(__m256 lo, __m256 hi) {
    __m256 b = _mm256_add_ps(lo, hi);                                              // a[i] + a[i+8]
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1)); // b[i] + b[i+4]
    __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q)); // lo0 + lo2, lo1 + lo3
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

AVX2 static float dot_avx2(const float *x, const void *w, llm_dtype dt, int n) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), load8(w, dt, i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), load8(w, dt, i + 8), hi);
    }
    return tail_dot(hsum16(lo, hi), x, w, dt, n16, n);
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

// 2 weight rows x 2 tokens: 8 accumulators (two halves each), 8 loads per
// 8 FMAs. The rest of the tile goes through dot().
AVX2 static void dot_tile_avx2(float *out, int ldo, const float *x, int ldx, int nt, const float *w,
                               int nr, int n) {
    const int n16 = n & ~15;
    int t = 0;
    for (; t + 2 <= nt; t += 2) {
        const float *x0 = x + (size_t)t * ldx, *x1 = x0 + ldx;
        int r = 0;
        for (; r + 2 <= nr; r += 2) {
            const float *w0 = w + (size_t)r * n, *w1 = w0 + n;
            // named accumulators (an array of them stays in memory: dot4_body)
            __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l;
            __m256 a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
            for (int i = 0; i < n16; i += 16) {
                __m256 vx0 = _mm256_loadu_ps(x0 + i), vx1 = _mm256_loadu_ps(x1 + i);
                __m256 v0 = _mm256_loadu_ps(w0 + i), v1 = _mm256_loadu_ps(w1 + i);
                a0l = _mm256_fmadd_ps(vx0, v0, a0l);
                a1l = _mm256_fmadd_ps(vx1, v0, a1l);
                a2l = _mm256_fmadd_ps(vx0, v1, a2l);
                a3l = _mm256_fmadd_ps(vx1, v1, a3l);
                vx0 = _mm256_loadu_ps(x0 + i + 8), vx1 = _mm256_loadu_ps(x1 + i + 8);
                v0 = _mm256_loadu_ps(w0 + i + 8), v1 = _mm256_loadu_ps(w1 + i + 8);
                a0h = _mm256_fmadd_ps(vx0, v0, a0h);
                a1h = _mm256_fmadd_ps(vx1, v0, a1h);
                a2h = _mm256_fmadd_ps(vx0, v1, a2h);
                a3h = _mm256_fmadd_ps(vx1, v1, a3h);
            }
            out[(size_t)t * ldo + r] = tail_dot(hsum16(a0l, a0h), x0, w0, LLM_F32, n16, n);
            out[(size_t)(t + 1) * ldo + r] = tail_dot(hsum16(a1l, a1h), x1, w0, LLM_F32, n16, n);
            out[(size_t)t * ldo + r + 1] = tail_dot(hsum16(a2l, a2h), x0, w1, LLM_F32, n16, n);
            out[(size_t)(t + 1) * ldo + r + 1] =
                tail_dot(hsum16(a3l, a3h), x1, w1, LLM_F32, n16, n);
        }
        for (; r < nr; r++)
            for (int u = t; u < t + 2; u++)
                out[(size_t)u * ldo + r] =
                    dot_avx2(x + (size_t)u * ldx, w + (size_t)r * n, LLM_F32, n);
    }
    for (; t < nt; t++)
        for (int r = 0; r < nr; r++)
            out[(size_t)t * ldo + r] = dot_avx2(x + (size_t)t * ldx, w + (size_t)r * n, LLM_F32, n);
}

// The body of dot4 for one dtype: inlined with dt a constant, so the loop
// holds no dtype branch.
AVX2 static inline __attribute__((always_inline)) void
dot4_body(float out[4], const float *x, const char *w0, size_t row_bytes, llm_dtype dt, int n) {
    // named accumulators: arrays of vectors are kept in memory by GCC (this
    // loop ran at 26 GB/s of fp16 from memory that way, 38 with names)
    const char *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    const int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16) {
        const __m256 vl = _mm256_loadu_ps(x + i), vh = _mm256_loadu_ps(x + i + 8);
        l0 = _mm256_fmadd_ps(vl, load8(w0, dt, i), l0);
        h0 = _mm256_fmadd_ps(vh, load8(w0, dt, i + 8), h0);
        l1 = _mm256_fmadd_ps(vl, load8(w1, dt, i), l1);
        h1 = _mm256_fmadd_ps(vh, load8(w1, dt, i + 8), h1);
        l2 = _mm256_fmadd_ps(vl, load8(w2, dt, i), l2);
        h2 = _mm256_fmadd_ps(vh, load8(w2, dt, i + 8), h2);
        l3 = _mm256_fmadd_ps(vl, load8(w3, dt, i), l3);
        h3 = _mm256_fmadd_ps(vh, load8(w3, dt, i + 8), h3);
    }
    out[0] = tail_dot(hsum16(l0, h0), x, w0, dt, n16, n);
    out[1] = tail_dot(hsum16(l1, h1), x, w1, dt, n16, n);
    out[2] = tail_dot(hsum16(l2, h2), x, w2, dt, n16, n);
    out[3] = tail_dot(hsum16(l3, h3), x, w3, dt, n16, n);
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

// y += a[t] * v_t for t < na in order, y held in registers 32 floats at a time.
AVX2 static void axpy_seq_avx2(float *y, const float *a, int na, const float *v, int ldv, int n) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 y0 = _mm256_loadu_ps(y + i), y1 = _mm256_loadu_ps(y + i + 8);
        __m256 y2 = _mm256_loadu_ps(y + i + 16), y3 = _mm256_loadu_ps(y + i + 24);
        for (int t = 0; t < na; t++) {
            const float *vt = v + (size_t)t * ldv + i;
            __m256 at = _mm256_set1_ps(a[t]);
            y0 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt), y0);
            y1 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 8), y1);
            y2 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 16), y2);
            y3 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 24), y3);
        }
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
        _mm256_storeu_ps(y + i + 16, y2);
        _mm256_storeu_ps(y + i + 24, y3);
    }
    for (; i < n; i++)
        for (int t = 0; t < na; t++) y[i] = __builtin_fmaf(a[t], v[(size_t)t * ldv + i], y[i]);
}

// The exp of exp_generic1 on a register of lanes, written once for both
// widths: V the float vector type, VI the integer one, P the intrinsics'
// prefix (_mm256 / _mm512), SI their integer suffix (si256 / si512).
#define EXP_VEC(V, VI, P, SI)                                                                      \
    do {                                                                                           \
        x = P##_max_ps(P##_set1_ps(EXP_LO), x); /* NaN (the second operand) passes */              \
        x = P##_min_ps(P##_set1_ps(EXP_HI), x);                                                    \
        const V magic = P##_set1_ps(EXP_MAGIC);                                                    \
        const V t = P##_fmadd_ps(x, P##_set1_ps(EXP_LOG2E), magic);                                \
        const V n = P##_sub_ps(t, magic);                                                          \
        V r = P##_fmadd_ps(n, P##_set1_ps(-EXP_C1), x);                                            \
        r = P##_fmadd_ps(n, P##_set1_ps(-EXP_C2), r);                                              \
        const V z = P##_mul_ps(r, r);                                                              \
        V p = P##_fmadd_ps(P##_set1_ps(EXP_P0), r, P##_set1_ps(EXP_P1));                           \
        p = P##_fmadd_ps(p, r, P##_set1_ps(EXP_P2));                                               \
        p = P##_fmadd_ps(p, r, P##_set1_ps(EXP_P3));                                               \
        p = P##_fmadd_ps(p, r, P##_set1_ps(EXP_P4));                                               \
        p = P##_fmadd_ps(p, r, P##_set1_ps(EXP_P5));                                               \
        V y = P##_fmadd_ps(p, z, r);                                                               \
        y = P##_add_ps(y, P##_set1_ps(1.0f));                                                      \
        VI e = P##_sub_epi32(P##_castps_##SI(t), P##_castps_##SI(magic));                          \
        e = P##_slli_epi32(P##_add_epi32(e, P##_set1_epi32(127)), 23);                             \
        return P##_mul_ps(y, P##_cast##SI##_ps(e));                                                \
    } while (0)

AVX2 static inline __m256 exp8(__m256 x) {
    EXP_VEC(__m256, __m256i, _mm256, si256);
}

AVX2 static void exp_avx2(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = exp_generic1(x[i]);
}

AVX2 static void silu_mul_avx2(float *out, const float *g, const float *u, int n) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 d = _mm256_add_ps(one, exp8(_mm256_xor_ps(gv, neg)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(gv, d), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + exp_generic1(-g[i])) * u[i];
}

// Round to nearest even, like f32_to_fp16 (NaN payloads aside).
AVX2 static void to_f16_avx2(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

static const cpu_simd simd_avx2 = {
    "avx2",          dot_avx2,      axpy_avx2,         to_f32_avx2,   dot_tile_avx2,
    dot4_avx2,       axpy_seq_avx2, exp_avx2,          silu_mul_avx2, to_f16_avx2,
    to_bf16_generic, NULL,          i8_to_bf16_generic};

// --- AVX-512 (F + VL) -------------------------------------------------------------
//
// The 16 lanes are one register. Same order as above, so the same bits.

#define AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))

AVX512 static inline __m512 load16(const void *w, llm_dtype dt, int i) {
    if (dt == LLM_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
    if (dt == LLM_BF16) {
        __m512i u =
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
    if (dt == LLM_I8)
        return _mm512_cvtepi32_ps(
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((const int8_t *)w + i))));
    return _mm512_loadu_ps((const float *)w + i);
}

AVX512 static inline float hsum512(__m512 a) {
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
    return hsum16(_mm512_castps512_ps256(a), hi);
}

AVX512 static float dot_avx512(const float *x, const void *w, llm_dtype dt, int n) {
    __m512 acc = _mm512_setzero_ps();
    int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), load16(w, dt, i), acc);
    return tail_dot(hsum512(acc), x, w, dt, n16, n);
}

AVX512 static void axpy_avx512(float *y, float a, const void *v, llm_dtype dt, int n) {
    __m512 va = _mm512_set1_ps(a);
    int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, load16(v, dt, i), _mm512_loadu_ps(y + i)));
    for (int i = n16; i < n; i++) y[i] = __builtin_fmaf(a, elem(v, dt, i), y[i]);
}

AVX512 static void to_f32_avx512(float *dst, const void *src, llm_dtype dt, int n) {
    int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16) _mm512_storeu_ps(dst + i, load16(src, dt, i));
    for (int i = n16; i < n; i++) dst[i] = elem(src, dt, i);
}

// The register tile: 4 weight rows x NT tokens (NT <= 6), 4 x NT accumulators
// of the 32 registers, 4 + NT loads per 4 x NT FMAs. NT is a constant where
// this is inlined; the accumulators are named registers (an array of them,
// GCC keeps in memory), and the `NT > t` tests fold away.
#define TILE_T 6
// CALL with NT_ the constant min(left, TILE_T): one inlined copy per width.
#define TILE_BY_NT(left, CALL)                                                                     \
    switch ((left) < TILE_T ? (left) : TILE_T) {                                                   \
    case 1: {                                                                                      \
        enum { NT_ = 1 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    case 2: {                                                                                      \
        enum { NT_ = 2 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    case 3: {                                                                                      \
        enum { NT_ = 3 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    case 4: {                                                                                      \
        enum { NT_ = 4 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    case 5: {                                                                                      \
        enum { NT_ = 5 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    default: {                                                                                     \
        enum { NT_ = 6 };                                                                          \
        CALL;                                                                                      \
    } break;                                                                                       \
    }
#define TILE_ZERO(t) __m512 a0##t = _mm512_setzero_ps(), a1##t = a0##t, a2##t = a0##t, a3##t = a0##t
#define TILE_STEP(t)                                                                               \
    if (NT > t) {                                                                                  \
        __m512 xv = _mm512_loadu_ps(x + (size_t)t * ldx + i);                                      \
        a0##t = _mm512_fmadd_ps(xv, w0, a0##t);                                                    \
        a1##t = _mm512_fmadd_ps(xv, w1, a1##t);                                                    \
        a2##t = _mm512_fmadd_ps(xv, w2, a2##t);                                                    \
        a3##t = _mm512_fmadd_ps(xv, w3, a3##t);                                                    \
    }
#define TILE_OUT(t)                                                                                \
    if (NT > t) {                                                                                  \
        const float *xt = x + (size_t)t * ldx;                                                     \
        float *o = out + (size_t)t * ldo;                                                          \
        o[0] = tail_dot(hsum512(a0##t), xt, w, LLM_F32, n16, n);                                   \
        o[1] = tail_dot(hsum512(a1##t), xt, w + n, LLM_F32, n16, n);                               \
        o[2] = tail_dot(hsum512(a2##t), xt, w + 2 * (size_t)n, LLM_F32, n16, n);                   \
        o[3] = tail_dot(hsum512(a3##t), xt, w + 3 * (size_t)n, LLM_F32, n16, n);                   \
    }
AVX512 static inline __attribute__((always_inline)) void
tile4(float *out, int ldo, const float *x, int ldx, const float *w, int n, const int NT) {
    TILE_ZERO(0);
    TILE_ZERO(1);
    TILE_ZERO(2);
    TILE_ZERO(3);
    TILE_ZERO(4);
    TILE_ZERO(5);
    const int n16 = n & ~15;
    const float *wr1 = w + n, *wr2 = w + 2 * (size_t)n, *wr3 = w + 3 * (size_t)n;
    for (int i = 0; i < n16; i += 16) {
        __m512 w0 = _mm512_loadu_ps(w + i), w1 = _mm512_loadu_ps(wr1 + i);
        __m512 w2 = _mm512_loadu_ps(wr2 + i), w3 = _mm512_loadu_ps(wr3 + i);
        TILE_STEP(0)
        TILE_STEP(1)
        TILE_STEP(2)
        TILE_STEP(3)
        TILE_STEP(4)
        TILE_STEP(5)
    }
    TILE_OUT(0)
    TILE_OUT(1)
    TILE_OUT(2)
    TILE_OUT(3)
    TILE_OUT(4)
    TILE_OUT(5)
}

AVX512 static void dot_tile_avx512(float *out, int ldo, const float *x, int ldx, int nt,
                                   const float *w, int nr, int n) {
    int r = 0;
    for (; r + 4 <= nr; r += 4) {
        const float *wr = w + (size_t)r * n;
        for (int t = 0; t < nt; t += TILE_T) {
            float *o = out + (size_t)t * ldo + r;
            const float *xt = x + (size_t)t * ldx;
            TILE_BY_NT(nt - t, tile4(o, ldo, xt, ldx, wr, n, NT_));
        }
    }
    for (; r < nr; r++) // rows past the last whole group of 4
        for (int t = 0; t < nt; t++)
            out[(size_t)t * ldo + r] =
                dot_avx512(x + (size_t)t * ldx, w + (size_t)r * n, LLM_F32, n);
}

// y += a[t] * v_t for t < na in order, y held in registers 64 floats at a time.
AVX512 static void axpy_seq_avx512(float *y, const float *a, int na, const float *v, int ldv,
                                   int n) {
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
        __m512 y2 = _mm512_loadu_ps(y + i + 32), y3 = _mm512_loadu_ps(y + i + 48);
        for (int t = 0; t < na; t++) {
            const float *vt = v + (size_t)t * ldv + i;
            __m512 at = _mm512_set1_ps(a[t]);
            y0 = _mm512_fmadd_ps(at, _mm512_loadu_ps(vt), y0);
            y1 = _mm512_fmadd_ps(at, _mm512_loadu_ps(vt + 16), y1);
            y2 = _mm512_fmadd_ps(at, _mm512_loadu_ps(vt + 32), y2);
            y3 = _mm512_fmadd_ps(at, _mm512_loadu_ps(vt + 48), y3);
        }
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + 16, y1);
        _mm512_storeu_ps(y + i + 32, y2);
        _mm512_storeu_ps(y + i + 48, y3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 y0 = _mm512_loadu_ps(y + i);
        for (int t = 0; t < na; t++)
            y0 =
                _mm512_fmadd_ps(_mm512_set1_ps(a[t]), _mm512_loadu_ps(v + (size_t)t * ldv + i), y0);
        _mm512_storeu_ps(y + i, y0);
    }
    for (; i < n; i++)
        for (int t = 0; t < na; t++) y[i] = __builtin_fmaf(a[t], v[(size_t)t * ldv + i], y[i]);
}

AVX512 static inline __attribute__((always_inline)) void
dot4_body512(float out[4], const float *x, const char *w0, size_t row_bytes, llm_dtype dt, int n) {
    const char *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; // named: see dot4_body
    const int n16 = n & ~15;
    for (int i = 0; i < n16; i += 16) {
        const __m512 vx = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(vx, load16(w0, dt, i), a0);
        a1 = _mm512_fmadd_ps(vx, load16(w1, dt, i), a1);
        a2 = _mm512_fmadd_ps(vx, load16(w2, dt, i), a2);
        a3 = _mm512_fmadd_ps(vx, load16(w3, dt, i), a3);
    }
    out[0] = tail_dot(hsum512(a0), x, w0, dt, n16, n);
    out[1] = tail_dot(hsum512(a1), x, w1, dt, n16, n);
    out[2] = tail_dot(hsum512(a2), x, w2, dt, n16, n);
    out[3] = tail_dot(hsum512(a3), x, w3, dt, n16, n);
}

AVX512 static void dot4_avx512(float out[4], const float *x, const void *w, size_t row_bytes,
                               llm_dtype dt, int n) {
    switch (dt) {
    case LLM_F16:
        dot4_body512(out, x, w, row_bytes, LLM_F16, n);
        break;
    case LLM_BF16:
        dot4_body512(out, x, w, row_bytes, LLM_BF16, n);
        break;
    case LLM_I8:
        dot4_body512(out, x, w, row_bytes, LLM_I8, n);
        break;
    default:
        dot4_body512(out, x, w, row_bytes, LLM_F32, n);
        break;
    }
}

AVX512 static inline __m512 exp16(__m512 x) {
    EXP_VEC(__m512, __m512i, _mm512, si512);
}

AVX512 static void exp_avx512(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = exp_generic1(x[i]);
}

AVX512 static void silu_mul_avx512(float *out, const float *g, const float *u, int n) {
    int i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i);
        __m512 ng = _mm512_castsi512_ps(
            _mm512_xor_si512(_mm512_castps_si512(gv), _mm512_set1_epi32(INT32_MIN)));
        __m512 d = _mm512_add_ps(one, exp16(ng));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(gv, d), _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + exp_generic1(-g[i])) * u[i];
}

// RNE to bf16 in integer arithmetic (exactly f32_to_bf16, subnormals and
// NaN included).
AVX512 static void to_bf16_avx512(uint16_t *dst, const float *src, int n) {
    int i = 0;
    const __m512i lsb = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_castps_si512(_mm512_loadu_ps(src + i));
        __m512i r = _mm512_add_epi32(
            u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), lsb)));
        r = _mm512_srli_epi32(r, 16);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absmask), inf);
        r = _mm512_mask_mov_epi32(
            r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

AVX512 static void i8_to_bf16_avx512(uint16_t *dst, const int8_t *src, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        v = _mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(v)), 16);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(v));
    }
    i8_to_bf16_generic(dst + i, src + i, n - i);
}

#define AVX512BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,f16c")))
#define BF_ZERO(t) __m512 b0##t = _mm512_setzero_ps(), b1##t = b0##t, b2##t = b0##t, b3##t = b0##t
#define BF_STEP(t)                                                                                 \
    if (NT > t) {                                                                                  \
        __m512bh xv = (__m512bh)_mm512_loadu_si512(x + (size_t)t * ldx + i);                       \
        b0##t = _mm512_dpbf16_ps(b0##t, xv, w0);                                                   \
        b1##t = _mm512_dpbf16_ps(b1##t, xv, w1);                                                   \
        b2##t = _mm512_dpbf16_ps(b2##t, xv, w2);                                                   \
        b3##t = _mm512_dpbf16_ps(b3##t, xv, w3);                                                   \
    }
#define BF_OUT(t)                                                                                  \
    if (NT > t) {                                                                                  \
        float *o = out + (size_t)t * ldo;                                                          \
        o[0] = hsum512(b0##t), o[1] = hsum512(b1##t), o[2] = hsum512(b2##t),                       \
        o[3] = hsum512(b3##t);                                                                     \
    }
// 4 bf16 weight rows x NT bf16 tokens, 32 elements a step (vdpbf16ps).
AVX512BF16 static inline __attribute__((always_inline)) void tile4_bf16(float *out, int ldo,
                                                                        const uint16_t *x, int ldx,
                                                                        const uint16_t *w, int ldw,
                                                                        int n, const int NT) {
    BF_ZERO(0);
    BF_ZERO(1);
    BF_ZERO(2);
    BF_ZERO(3);
    BF_ZERO(4);
    BF_ZERO(5);
    for (int i = 0; i < n; i += 32) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + i);
        __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + ldw + i);
        __m512bh w2 = (__m512bh)_mm512_loadu_si512(w + 2 * (size_t)ldw + i);
        __m512bh w3 = (__m512bh)_mm512_loadu_si512(w + 3 * (size_t)ldw + i);
        BF_STEP(0)
        BF_STEP(1)
        BF_STEP(2)
        BF_STEP(3)
        BF_STEP(4)
        BF_STEP(5)
    }
    BF_OUT(0)
    BF_OUT(1)
    BF_OUT(2)
    BF_OUT(3)
    BF_OUT(4)
    BF_OUT(5)
}

AVX512BF16 static float dot_bf16_avx512(const uint16_t *x, const uint16_t *w, int n) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 32)
        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(x + i),
                               (__m512bh)_mm512_loadu_si512(w + i));
    return hsum512(acc);
}

AVX512BF16 static void dot_tile_bf16_avx512(float *out, int ldo, const uint16_t *x, int ldx, int nt,
                                            const uint16_t *w, int ldw, int nr, int n) {
    int r = 0;
    for (; r + 4 <= nr; r += 4) {
        const uint16_t *wr = w + (size_t)r * ldw;
        for (int t = 0; t < nt; t += TILE_T) {
            float *o = out + (size_t)t * ldo + r;
            const uint16_t *xt = x + (size_t)t * ldx;
            TILE_BY_NT(nt - t, tile4_bf16(o, ldo, xt, ldx, wr, ldw, n, NT_));
        }
    }
    for (; r < nr; r++)
        for (int t = 0; t < nt; t++)
            out[(size_t)t * ldo + r] = dot_bf16_avx512(x + (size_t)t * ldx, w + (size_t)r * ldw, n);
}

static const cpu_simd simd_avx512 = {
    "avx512",       dot_avx512,           axpy_avx512,      to_f32_avx512,   dot_tile_avx512,
    dot4_avx512,    axpy_seq_avx512,      exp_avx512,       silu_mul_avx512, to_f16_avx2,
    to_bf16_avx512, dot_tile_bf16_avx512, i8_to_bf16_avx512};

static int have_avx2(void) {
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C); // clang lacks "f16c" here
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

static int have_avx512(void) {
    return have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
#endif

const cpu_simd *cpu_simd_named(const char *name) {
    if (!strcmp(name, "generic")) return &simd_generic;
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (!strcmp(name, "avx2")) return have_avx2() ? &simd_avx2 : NULL;
    if (!strcmp(name, "avx512")) return have_avx512() ? &simd_avx512 : NULL;
#endif
    return NULL;
}

const cpu_simd *cpu_simd_get(void) {
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (have_avx512()) return &simd_avx512;
    if (have_avx2()) return &simd_avx2;
#endif
    return &simd_generic;
}

int cpu_simd_has_bf16_dot(void) {
#ifdef HAVE_X86
    __builtin_cpu_init();
    return have_avx512() && __builtin_cpu_supports("avx512bf16") &&
           __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}
