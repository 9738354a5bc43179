#include "quant.h"

#include <math.h>

static float load(const void *src, llm_dtype dt, int64_t i) {
    switch (dt) {
    case LLM_F16:
        return fp16_to_f32(((const uint16_t *)src)[i]);
    case LLM_BF16:
        return bf16_to_f32(((const uint16_t *)src)[i]);
    default:
        return ((const float *)src)[i];
    }
}

// The nearest value of dt to s (s > 0, finite) that is >= s.
static float round_scale_up(float s, llm_dtype dt) {
    if (dt == LLM_F16) {
        uint16_t h = f32_to_fp16(s);
        if (fp16_to_f32(h) < s) h++; // positive halves order like their bits
        return fp16_to_f32(h);
    }
    if (dt == LLM_BF16) {
        uint16_t b = f32_to_bf16(s);
        if (bf16_to_f32(b) < s) b++;
        return bf16_to_f32(b);
    }
    return s;
}

float quant_row_int8(int8_t *q, const void *src, llm_dtype src_dt, int n, llm_dtype scale_dt) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(load(src, src_dt, i));
        if (a > amax) amax = a;
    }
    if (!(amax > 0.0f) || !isfinite(amax)) { // all zero (or holding an infinity): q = 0
        for (int i = 0; i < n; i++) q[i] = 0;
        return 1.0f;
    }
    float scale = round_scale_up(amax / (float)QUANT_INT8_MAX, scale_dt);
    for (int i = 0; i < n; i++) {
        // in double, the quotient of two floats rounds to nearest-even the
        // right way (an f32 quotient could round onto a .5 tie it is not on)
        double v = nearbyint((double)load(src, src_dt, i) / (double)scale);
        v = fmin(fmax(v, -QUANT_INT8_MAX), QUANT_INT8_MAX);
        q[i] = (int8_t)v;
    }
    return scale;
}

void quant_matrix_int8(int8_t *q, float *scales, const void *src, llm_dtype src_dt, int64_t rows,
                       int64_t cols, llm_dtype scale_dt) {
    const size_t row_bytes = (size_t)cols * dtype_size(src_dt);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++)
        scales[r] = quant_row_int8(q + r * cols, (const uint8_t *)src + (size_t)r * row_bytes,
                                   src_dt, (int)cols, scale_dt);
}
