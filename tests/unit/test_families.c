// Every supported model family against Hugging Face transformers
// (tests/fixtures/families/, scripts/make_family_golden.py): Llama GQA untied
// and MHA tied (rope theta 500000), Llama-3 rope scaling, Mistral with an
// 8-token sliding window, Qwen2 with q/k/v bias with and without
// use_sliding_window, Qwen3 q/k norm with head_dim != hidden / heads, tied and
// untied (with a window); bf16 checkpoints (bf16 KV cache) and fp16 ones
// (fp16 KV cache). The logits of every position of prompts of 5, 61 and 180
// tokens within family_logit_tol, and greedy continuations.
#include <stdio.h>

#include "family_golden.h"
#include "harness.h"
#include "util.h"

TEST(families_logits_match_transformers_every_position) {
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    CHECK_MSG(b != NULL, "%s", err);
    for (int i = 0; b && i < n_family_fixtures; i++) {
        const family_fixture *fx = &family_fixtures[i];
        // the KV cache follows the checkpoint's dtype; a bf16 one's forced
        // to fp16 too (its error then drops to fp16's: K/V rounding is all
        // that separates the engine from the reference)
        for (int forced = 0; forced < (fx->dtype[0] == 'b' ? 2 : 1); forced++) {
            family_result r;
            if (family_check_logits(b, fx, forced ? LLM_F16 : 0, 1.0, &r)) continue;
            CHECK_EQ(r.kv_dtype, fx->dtype[0] == 'b' && !forced ? LLM_BF16 : LLM_F16);
            fprintf(stderr,
                    "  %-20s %-4s KV %-4s max |diff| %.2e (%.1e of max |logit| %.1f), top-1 %d/%d "
                    "(+%d at near-ties)\n",
                    fx->name, fx->dtype, r.kv_dtype == LLM_BF16 ? "bf16" : "fp16", r.max_abs,
                    r.max_abs / r.max_logit, r.max_logit, r.top1_agree, r.positions,
                    r.top1_near_tie);
            CHECK(r.positions == 5 + 61 + 180);
        }
    }
    if (b) b->destroy(b);
}

TEST(families_greedy_matches_transformers) {
    for (int i = 0; i < n_family_fixtures; i++) {
        const family_fixture *fx = &family_fixtures[i];
        family_result r = {0};
        if (family_check_greedy(DEVICE_CPU, fx, 1.0, &r)) continue;
        CHECK_EQ(r.kv_dtype, fx->dtype[0] == 'b' ? LLM_BF16 : LLM_F16);
        fprintf(stderr, "  %-20s %-4s greedy: %d/%d continuations equal (%d part at a near-tie)\n",
                fx->name, fx->dtype, r.greedy_exact, r.greedy_total, r.greedy_near_tie);
        CHECK(r.greedy_exact + r.greedy_near_tie == r.greedy_total && r.greedy_total == 3);
    }
}
