// The tiny models of every family (tests/fixtures/families/) on the CUDA
// backend against transformers, as tests/unit/test_families.c does on the
// CPU: every position's logits, greedy continuations through the engine, and
// the KV cache in the checkpoint's dtype. The bound is the CPU's times
// GPU_TOL_SCALE: with more than 8 rows the matmuls round their activations to
// the weights' dtype for cuBLAS (bf16: 2^-9, like the bf16 K/V rounding that
// sets the CPU bound).
#include <stdio.h>
#include <string.h>

#include "gpu_util.h"
#include "harness.h"
#include "unit/family_golden.h"
#include "util.h"

#define GPU_TOL_SCALE 2.0

TEST(gpu_families_match_transformers) {
    backend *g = gpu_backend();
    if (!g) return;
    for (int i = 0; i < n_family_fixtures; i++) {
        const family_fixture *fx = &family_fixtures[i];
        family_result r;
        if (family_check_logits(g, fx, 0, GPU_TOL_SCALE, &r)) continue;
        CHECK_EQ(r.kv_dtype, fx->dtype[0] == 'b' ? LLM_BF16 : LLM_F16);
        fprintf(stderr, "  %-20s %-4s max |diff| %.2e (%.1e of max |logit| %.1f), top-1 %d/%d\n",
                fx->name, fx->dtype, r.max_abs, r.max_abs / r.max_logit, r.max_logit, r.top1_agree,
                r.positions);
        CHECK_MSG(!g->failed, "%s", g->error);
    }
}

TEST(gpu_families_greedy_match_transformers) {
    backend *g = gpu_backend();
    if (!g) return;
    for (int i = 0; i < n_family_fixtures; i++) {
        const family_fixture *fx = &family_fixtures[i];
        // windows and both cache dtypes are what matter here; under the
        // emulation only those fixtures
        if (gpu_fast() && !strstr(fx->name, "window")) continue;
        family_result r = {0};
        if (family_check_greedy(DEVICE_CUDA, fx, GPU_TOL_SCALE, &r)) continue;
        CHECK_EQ(r.kv_dtype, fx->dtype[0] == 'b' ? LLM_BF16 : LLM_F16);
        fprintf(stderr, "  %-20s %-4s greedy: %d/%d continuations equal (%d part at a near-tie)\n",
                fx->name, fx->dtype, r.greedy_exact, r.greedy_total, r.greedy_near_tie);
        CHECK(r.greedy_exact + r.greedy_near_tie == r.greedy_total && r.greedy_total == 3);
    }
}
