// dtype.h - element types of weights and activations, and scalar conversions.
#ifndef LLM_DTYPE_H
#define LLM_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// LLM_F8E4M3 is the KV cache's fp8 (--kv-cache-dtype fp8): OCP/NVIDIA e4m3fn,
// torch.float8_e4m3fn, safetensors "F8_E4M3": 1 sign, 4 exponent (bias 7) and
// 3 mantissa bits, no infinities, NaN = S.1111.111, largest finite +-448,
// smallest subnormal 2^-9.
typedef enum { LLM_F32 = 0, LLM_F16, LLM_BF16, LLM_I8, LLM_F8E4M3, LLM_DTYPE_COUNT } llm_dtype;

// Bytes per element.
size_t dtype_size(llm_dtype t);
// Safetensors spelling: "F32", "F16", "BF16", "I8", "F8_E4M3".
const char *dtype_name(llm_dtype t);
// Parses the safetensors spelling. Returns 0 and sets *t, or -1 when unknown.
int dtype_parse(const char *s, llm_dtype *t);

// IEEE half <-> float, round to nearest even; NaN and Inf are preserved.
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);

// bfloat16 <-> float; f32_to_bf16 rounds to nearest even and keeps NaN a NaN.
static inline float bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_bf16(float f);

// fp8 e4m3fn <-> float. fp8_e4m3_to_f32 is exact for every code (0x7f and
// 0xff are NaN; 0x80 is -0). f32_to_fp8_e4m3 rounds to nearest, ties to even,
// and saturates as vLLM's fp8 cast does (CUDA __nv_cvt_float_to_fp8 with
// __NV_SATFINITE, PTX cvt.rn.satfinite.e4m3x2.f32): a magnitude of 448 or more,
// infinities included, becomes +-448 (0x7e / 0xfe); NaN stays NaN (0x7f with
// its sign bit). torch's cast differs only there: it gives NaN from 464 up.
float fp8_e4m3_to_f32(uint8_t q);
uint8_t f32_to_fp8_e4m3(float f);

#endif
