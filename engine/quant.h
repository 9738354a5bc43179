// quant.h - symmetric int8 per output channel: w[r][c] ~= q[r][c] * scale[r].
//
// The one quantization rule of the project (llm_quantize, --quantization int8
// at load, and the tests' Python writer all follow it, so they agree bit for
// bit): scale = max_c |w[r][c]| / 127 in f32, rounded to the dtype the scale
// is stored in (upward when round-to-nearest lands below, so that no |w| /
// scale exceeds 127); q = round-half-to-even(w / scale), the quotient taken in
// double, clamped to [-127, 127].
// An all-zero row gets scale 1 and q = 0. Hence |w - q * scale| <= scale / 2
// for every element: half a quantization step.
#ifndef LLM_QUANT_H
#define LLM_QUANT_H

#include <stdint.h>

#include "dtype.h"

#define QUANT_INT8_MAX 127

// Quantizes one row of n elements (src in F32, F16 or BF16) into q [n] and
// returns its scale, a value exactly representable in scale_dt (F32, F16 or
// BF16).
float quant_row_int8(int8_t *q, const void *src, llm_dtype src_dt, int n, llm_dtype scale_dt);

// Quantizes a [rows, cols] matrix row by row (OpenMP over rows): q [rows, cols],
// scales [rows] f32 (each representable in scale_dt).
void quant_matrix_int8(int8_t *q, float *scales, const void *src, llm_dtype src_dt, int64_t rows,
                       int64_t cols, llm_dtype scale_dt);

#endif
