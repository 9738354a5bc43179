#include "dtype.h"

#include <math.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[LLM_DTYPE_COUNT] = {
    [LLM_F32] = {"F32", 4}, [LLM_F16] = {"F16", 2},        [LLM_BF16] = {"BF16", 2},
    [LLM_I8] = {"I8", 1},   [LLM_F8E4M3] = {"F8_E4M3", 1},
};

size_t dtype_size(llm_dtype t) {
    return t < LLM_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *dtype_name(llm_dtype t) {
    return t < LLM_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int dtype_parse(const char *s, llm_dtype *t) {
    for (int i = 0; i < LLM_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *t = (llm_dtype)i;
            return 0;
        }
    }
    return -1;
}

float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { // subnormal: normalise into a float exponent
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000 | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_fp16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf / nan
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00; // overflow -> inf
    if (e <= 0) {                      // subnormal or zero in half
        if (e < -10) return sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; // may carry into exp: still right
    return sign | (uint16_t)half;
}

uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); // quiet nan
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float fp8_e4m3_to_f32(uint8_t q) {
    const int exp = (q >> 3) & 0xf, man = q & 7;
    float v;
    if (exp == 0xf && man == 7)
        v = NAN;
    else if (exp == 0) // subnormal: man x 2^-9
        v = ldexpf((float)man, -9);
    else
        v = ldexpf((float)(8 + man), exp - 7 - 3);
    return q & 0x80 ? -v : v;
}

uint8_t f32_to_fp8_e4m3(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80);
    const uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000) return sign | 0x7f;  // NaN
    if (a >= 0x43e00000) return sign | 0x7e; // >= 448, inf included: saturate
    if (a < 0x3c800000) {                    // below 2^-6: subnormal, a multiple of 2^-9
        float m;
        memcpy(&m, &a, 4);
        m *= 512.0f; // exact; 0 <= m < 8
        uint32_t q = (uint32_t)m;
        const float rem = m - (float)q;                  // exact
        if (rem > 0.5f || (rem == 0.5f && (q & 1))) q++; // 8 is 2^-6, the first normal
        return sign | (uint8_t)q;
    }
    // normal: exponent rebiased 127 -> 7, the top 3 of 23 mantissa bits
    uint32_t q = ((((a >> 23) - 127 + 7) << 3) | ((a >> 20) & 7));
    const uint32_t rem = a & 0xfffff;
    if (rem > 0x80000 || (rem == 0x80000 && (q & 1))) q++; // a carry into the exponent is right
    return sign | (uint8_t)q;
}
