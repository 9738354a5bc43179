// bench_plan.h - `bench_engine plan`: what a model will do on a card before
// renting it, without running anything: the dtype the card runs it in, whether
// the weights fit, KV capacity and concurrency at each memory utilization, and
// roofline-predicted decode and prefill speed and cost. The memory figures
// come from the engine's own plan (engine_plan_memory); the speed figures
// from bytes and FLOPs per step over the card's bandwidth and matrix rate,
// times an efficiency factor (the fraction of the roofline reached, measured).
#ifndef LLM_BENCH_PLAN_H
#define LLM_BENCH_PLAN_H

#include <stdint.h>

#include "engine.h"

// A device to plan for.
typedef struct {
    const char *name;     // preset name ("l4"), or "custom" / "cpu"
    const char *label;    // what it is ("NVIDIA L4 24GB")
    uint64_t memory;      // total device memory, bytes (as nvidia-smi reports it)
    double bandwidth_gbs; // memory bandwidth, GB/s
    double tflops;        // dense 16-bit matrix rate (tensor cores), TFLOP/s
    int cc_major, cc_minor;
    const char *source; // where the figures come from
} plan_card;

// The datasheet presets, NULL-name terminated: t4, l4, a10g, a100-40g,
// a100-80g, h100, h200.
extern const plan_card plan_cards[];

// The preset called name, or NULL.
const plan_card *plan_card_find(const char *name);

// One predicted decode step of `batch` sequences at a mean context of `ctx`
// tokens: bytes moved, FLOPs, seconds at the card's rates times efficiency,
// and which floor bounds it.
typedef struct {
    double bytes, flops, seconds;
    int compute_bound;
} plan_step;

// Bytes of the weights a decode step reads for model c at `weights` bytes in
// all (the embedding table is read only by row, unless it is the lm_head).
double plan_weight_read_bytes(const model_config *c, uint64_t weights, llm_dtype dt);

// A decode step: every weight once, each sequence's KV (kv_token_bytes per
// token of context), 2 FLOPs per weight per sequence plus attention.
plan_step plan_decode_step(const model_config *c, double weight_read, double kv_token_bytes,
                           int batch, double ctx, const plan_card *card, double efficiency);

// Seconds to prefill a prompt of n tokens in chunks of `chunk` tokens.
double plan_prefill_seconds(const model_config *c, double weight_read, double kv_token_bytes, int n,
                            int chunk, const plan_card *card, double efficiency);

typedef struct {
    engine_config ec;      // model, dtype, block size, limits
    const plan_card *card; // what to plan for
    double efficiency;     // fraction of the roofline reached (0: the default)
    const double *utils;   // memory utilizations to tabulate
    int n_utils;
    const double *batches; // batch sizes to predict
    int n_batches;
    int input_len, output_len; // the request shape of the speed table
    double hourly;             // $/hour of the card (0: no cost column)
    const char *format;        // "table" (default), "json" or "csv"
} plan_opts;

// The efficiency bench_engine plan uses by default (bench/NOTES.md "plan
// calibration"): one factor for the bandwidth- and the compute-bound side,
// between what the CPU backend measures (0.92-0.96 of the roofline at batch
// 1, 0.65-0.69 at batch 16) and what the CUDA kernels are predicted to reach
// at batch-1 decode on paper (3.53 ms floor / 4.74 ms predicted = 0.74).
#define PLAN_DEFAULT_EFFICIENCY 0.75

// Prints the plan on stdout. Returns 0, or 1 with the reason on stderr.
int bench_plan(const plan_opts *o);

// This machine as a card for the CPU backend: available RAM, the measured
// copy bandwidth, the CPU backend's measured fp16 matmul rate. Returns 0, or
// -1 with err.
int plan_card_cpu(plan_card *card, char *err);

// On the CPU backend (o->card from plan_card_cpu): runs decode at each batch
// size of o and prints the measured tokens/s beside the roofline and the
// plan's prediction, so the efficiency factor can be checked and chosen.
// Returns 0, or 1 with the reason on stderr.
int bench_plan_calibrate(const plan_opts *o);

#endif
