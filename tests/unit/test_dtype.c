#include "dtype.h"
#include "harness.h"

#include <math.h>

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

// fp8 e4m3fn decoding of every code against the format's definition, written
// out independently: (-1)^s x 2^(e-7) x (1 + m/8), subnormals m x 2^-9,
// S.1111.111 NaN. (tests/integration/test_fp8.py checks both directions
// against ml_dtypes' float8_e4m3fn.)
TEST(fp8_e4m3_decodes_every_code) {
    int bad = 0;
    for (int q = 0; q < 256; q++) {
        const int s = q >> 7, e = (q >> 3) & 15, m = q & 7;
        const double want =
            (s ? -1.0 : 1.0) * (e ? pow(2.0, e - 7) * (1.0 + m / 8.0) : m * pow(2.0, -9));
        const float got = fp8_e4m3_to_f32((uint8_t)q);
        if (e == 15 && m == 7)
            bad += !(got != got);
        else
            bad += (double)got != want || !!signbit(got) != s;
        // every finite code survives a round trip, -0 included
        if (!(e == 15 && m == 7)) bad += f32_to_fp8_e4m3(got) != q;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
    CHECK_EQ(fp8_e4m3_to_f32(0x01), 0.001953125f); // 2^-9
}

TEST(fp8_e4m3_rounding_and_saturation) {
    CHECK_EQ(f32_to_fp8_e4m3(1.0f), 0x38);
    CHECK_EQ(f32_to_fp8_e4m3(1.0625f), 0x38); // halfway 1 and 1.125: ties to even (1)
    CHECK_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a); // halfway 1.125 and 1.25: even is 1.25
    CHECK_EQ(f32_to_fp8_e4m3(1.0626f), 0x39); // just above halfway: up
    CHECK_EQ(f32_to_fp8_e4m3(-3.75f), 0xc7);  // -1.875 x 2
    CHECK_EQ(f32_to_fp8_e4m3(15.5f), 0x58);   // halfway 15 and 16: even carries to 16
    CHECK_EQ(f32_to_fp8_e4m3(448.0f), 0x7e);
    CHECK_EQ(f32_to_fp8_e4m3(463.9f), 0x7e);
    CHECK_EQ(f32_to_fp8_e4m3(464.0f), 0x7e);    // halfway to 480 (no such value): saturates
    CHECK_EQ(f32_to_fp8_e4m3(1e30f), 0x7e);     // saturates
    CHECK_EQ(f32_to_fp8_e4m3(-INFINITY), 0xfe); // -448
    CHECK_EQ(f32_to_fp8_e4m3(NAN) & 0x7f, 0x7f);
    CHECK_EQ(f32_to_fp8_e4m3(0.0009765625f), 0x00); // 2^-10, half the smallest: even (0)
    CHECK_EQ(f32_to_fp8_e4m3(0.0029296875f), 0x02); // 1.5 x 2^-9: even (2)
    CHECK_EQ(f32_to_fp8_e4m3(0.0009766f), 0x01);    // just above 2^-10: up
    CHECK_EQ(f32_to_fp8_e4m3(0.0146484375f), 0x08); // 7.5 x 2^-9: even is 8 = 2^-6 (normal)
    CHECK_EQ(f32_to_fp8_e4m3(-1e-30f), 0x80);       // -0
    CHECK_EQ(f32_to_fp8_e4m3(0.01f), f32_to_fp8_e4m3(0.0100001f));
    CHECK_EQ(dtype_size(LLM_F8E4M3), 1);
}
