// bench_run.h - one measured batch on an engine (bench_engine's unit of
// work) and the statistics of a grid point over its repeated runs.
#ifndef LLM_BENCH_RUN_H
#define LLM_BENCH_RUN_H

#include <signal.h>
#include <stdint.h>

#include "bench_stats.h"
#include "engine.h"
#include "sweep_report.h"
#include "util.h"

// One measured batch.
typedef struct {
    double util;
    int bs, in, out;
    int ok; // 0: the batch could not be submitted (err)
    char err[LLM_ERR_LEN];
    double prefill_s; // until every request has its first token
    double decode_s;  // the steps after that
    int decode_steps;
    double *step_s;      // decode step times [decode_steps]
    double *ttft, *tpot; // per request [bs]
    int n_tpot;
    double total_s;
    uint64_t kv_peak; // max pages_used x page_bytes seen
    uint64_t rss;     // growth of device memory in use (RSS on the CPU) since before any engine
    uint64_t preempt; // preemptions during the run
    int max_step_tokens, max_step_seqs; // the largest step's tokens and sequences
} run_result;

// Set (by a SIGINT or SIGTERM handler) to stop: run_batch aborts its
// requests at the next step and returns with ok = 0 and err "interrupted".
extern volatile sig_atomic_t bench_stop;

// SIGINT and SIGTERM set bench_stop (to the signal) and restore the default
// action, so a second one ends the process at once; bench_stop_signals(0)
// puts the defaults back.
void bench_stop_signals(int on);

// Frees a run's arrays and zeroes it.
void run_free(run_result *r);

// Runs bs requests of in prompt tokens and out generated tokens together,
// greedy with ignore_eos, each prompt new (no prefix-cache hit across runs).
// Returns 0 (r->ok says whether it could be submitted, r->err why not), -1 on
// an engine failure (err).
int run_batch(engine *e, int bs, int in, int out, const mem_baseline *mem0, int seed, run_result *r,
              char *err);

// What RSS should hold after an engine's runs so far, whose pages allocated
// over its life were life_pages and whose largest step had life_t tokens and
// life_s sequences.
uint64_t resident_estimate(const model_config *mc, const engine_stats *st, uint64_t life_pages,
                           int life_t, int life_s);

// Fills p (util, bs, in, out set) with the statistics of its n runs on an
// engine with stats st; kv_tok_b is KV bytes per token, copy_gbs the measured
// copy bandwidth, hourly the device's $/hour (0: no cost figures).
void summarize(point *p, run_result *rr, int n, const engine_stats *st, const model_config *mc,
               uint64_t kv_tok_b, double copy_gbs, double hourly);

#endif
