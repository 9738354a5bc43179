// cuda_fp8.h - stands in for the CUDA header under the CPU emulation (see
// emu.h): the e4m3 subset kernels/cuda/ uses, with the semantics of the
// sm_89+ instructions the real header emits (PTX cvt.rn.satfinite.e4m3x2.f32
// and cvt.rn.f16x2.e4m3x2). Written from the format's definition, not from
// common/dtype.c: decoding by the formula, encoding by picking the nearest of
// the 127 finite magnitudes (ties to the even code), so the GPU tests compare
// two independent implementations. Only __NV_E4M3 with __NV_SATFINITE is
// emulated; anything else aborts.
#pragma once
#include "emu.h"

typedef unsigned char __nv_fp8_storage_t;
typedef unsigned short __nv_fp8x2_storage_t;
enum __nv_saturation_t { __NV_NOSAT, __NV_SATFINITE };
enum __nv_fp8_interpretation_t { __NV_E4M3, __NV_E5M2 };
struct __half_raw {
    unsigned short x;
};
struct __half2_raw {
    unsigned short x, y;
};

// The magnitude of e4m3 code c (0..126; 127 is NaN).
inline double emu_e4m3_magnitude(unsigned c) {
    const unsigned e = c >> 3, m = c & 7;
    return e ? std::ldexp(1.0 + m / 8.0, (int)e - 7) : std::ldexp((double)m, -9);
}

inline __nv_fp8_storage_t __nv_cvt_float_to_fp8(float x, __nv_saturation_t sat,
                                                __nv_fp8_interpretation_t t) {
    if (t != __NV_E4M3 || sat != __NV_SATFINITE) {
        fprintf(stderr, "emu cuda_fp8.h: only e4m3 with __NV_SATFINITE is emulated\n");
        abort();
    }
    if (std::isnan(x)) return 0x7f;
    const unsigned char sign = std::signbit(x) ? 0x80 : 0;
    const double a = std::fabs((double)x);
    if (a >= 448.0) return sign | 0x7e; // satfinite: infinities too
    unsigned best = 0;
    for (unsigned c = 1; c <= 126; c++) {
        const double dc = std::fabs(emu_e4m3_magnitude(c) - a);
        const double db = std::fabs(emu_e4m3_magnitude(best) - a);
        if (dc < db || (dc == db && !(c & 1))) best = c;
    }
    return (__nv_fp8_storage_t)(sign | best);
}

inline __half_raw __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t q, __nv_fp8_interpretation_t t) {
    if (t != __NV_E4M3) abort();
    const unsigned c = q & 0x7f;
    float v = c == 0x7f ? NAN : (float)emu_e4m3_magnitude(c); // exact in fp16 as in f32
    if (q & 0x80) v = -v;
    return __half_raw{f32_to_fp16(v)};
}

inline __half2_raw __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t x, __nv_fp8_interpretation_t t) {
    // the low byte is the first element (little-endian, as in memory)
    return __half2_raw{__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)(x & 0xff), t).x,
                       __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)(x >> 8), t).x};
}
