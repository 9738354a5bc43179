// dtype.h - element types of weights and activations, and scalar conversions.
#ifndef LLM_DTYPE_H
#define LLM_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { LLM_F32 = 0, LLM_F16, LLM_BF16, LLM_I8, LLM_DTYPE_COUNT } llm_dtype;

// Bytes per element.
size_t dtype_size(llm_dtype t);
// Safetensors spelling: "F32", "F16", "BF16", "I8".
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

#endif
