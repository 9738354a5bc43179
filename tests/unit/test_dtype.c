#include "dtype.h"
#include "harness.h"

TEST(dtype_names_round_trip) {
    for (int i = 0; i < LLM_DTYPE_COUNT; i++) {
        llm_dtype t;
        CHECK(dtype_parse(dtype_name((llm_dtype)i), &t) == 0);
        CHECK_EQ(t, i);
    }
    llm_dtype t;
    CHECK(dtype_parse("F64", &t) == -1);
    CHECK_EQ(dtype_size(LLM_BF16), 2);
    CHECK_EQ(dtype_size(LLM_I8), 1);
}

// Every one of the 65536 half values must survive half -> float -> half
// (NaNs stay NaNs), which pins both conversions to IEEE semantics.
TEST(fp16_round_trips_every_value) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        uint16_t back = f32_to_fp16(f);
        int is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (is_nan ? !(f != f) : back != h) bad++;
    }
    CHECK_EQ(bad, 0);
}

TEST(fp16_known_values_and_rounding) {
    CHECK_EQ(f32_to_fp16(1.0f), 0x3c00);
    CHECK_EQ(f32_to_fp16(-2.0f), 0xc000);
    CHECK_EQ(f32_to_fp16(65504.0f), 0x7bff);
    CHECK_EQ(f32_to_fp16(65520.0f), 0x7c00);           // rounds up to inf
    CHECK_EQ(f32_to_fp16(5.9604645e-8f), 0x0001);      // smallest subnormal
    CHECK_EQ(f32_to_fp16(2.9802322e-8f), 0x0000);      // half of it: ties to even (0)
    CHECK_EQ(f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00); // tie -> even
    CHECK_EQ(f32_to_fp16(1.0f + 3.0f / 2048), 0x3c02); // tie -> even (up)
    CHECK_NEAR(fp16_to_f32(0x3555), 0.333251953125, 0);
}

TEST(bf16_rounding) {
    CHECK_EQ(f32_to_bf16(1.0f), 0x3f80);
    CHECK_NEAR(bf16_to_f32(0x3f80), 1.0, 0);
    CHECK_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80); // tie -> even
    CHECK_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    uint16_t nan = f32_to_bf16(0.0f / 0.0f);
    float back = bf16_to_f32(nan);
    CHECK(back != back);
}
