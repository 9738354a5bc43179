// family_golden.h - the tiny models of every family against transformers
// (tests/fixtures/families/, made by scripts/make_family_golden.py): the
// logits of every position of each prompt, and greedy continuations through
// the engine, on any backend. Shared by the unit tests (CPU) and gpu_tests.
#ifndef LLM_TEST_FAMILY_GOLDEN_H
#define LLM_TEST_FAMILY_GOLDEN_H

#include "backend.h"
#include "device.h"

#define FAMILY_DIR "tests/fixtures/families"

// One model directory: FAMILY_DIR/name/dtype ("bf16" or "f16").
typedef struct {
    const char *name, *dtype;
} family_fixture;

extern const family_fixture family_fixtures[];
extern const int n_family_fixtures;

typedef struct {
    double max_abs;      // max |engine - reference| over every logit of every position
    double max_logit;    // max |reference logit|
    int positions;       // positions compared
    int top1_agree;      // of which the engine's argmax is the reference's
    int top1_near_tie;   // of the others, those where the reference's top two are within 2 tol
    int kv_dtype;        // the KV cache dtype the forward pass used
    int greedy_exact;    // continuations equal to the reference's for every token
    int greedy_total;    // continuations compared
    int greedy_near_tie; // of the others, those that parted at a reference near-tie
} family_result;

// The bound on max |engine - reference| for a model whose KV cache is kv_dtype:
// the weights are the reference's exactly; the engine rounds K and V to the
// cache (bf16: 2^-9 relative, fp16: 2^-12) and the reference logits were
// stored as fp16 (2^-12 relative); see the definition for the figures.
double family_logit_tol(int kv_dtype, double max_logit);

// Every prompt of the fixture in one prefill pass on backend b (pages in
// scattered order) with a kv_dtype cache (forward_opts: 0 for the model's),
// compared position by position within family_logit_tol. Fails the running
// test on a mismatch; returns 0, or -1 when the fixture could not be run.
// tol_scale multiplies the bound (1 on the CPU; the CUDA backend also rounds
// prefill activations to the weights' dtype for cuBLAS).
int family_check_logits(backend *b, const family_fixture *fx, int kv_dtype, double tol_scale,
                        family_result *r);

// Every prompt's greedy continuation through the engine on device (all
// prompts at once, continuous batching), compared with the reference's.
int family_check_greedy(device_kind device, const family_fixture *fx, double tol_scale,
                        family_result *r);

#endif
