// sweep_report.h - bench_engine's results: one grid point's figures and the
// files a sweep writes (summary.csv, report.md, SVG plots, report.html).
#ifndef LLM_SWEEP_REPORT_H
#define LLM_SWEEP_REPORT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

// One grid point: statistics over its measured runs (seconds, bytes).
typedef struct {
    double util;
    int kv_dtype; // the KV cache's llm_dtype (F16, BF16, F8E4M3): a grid dimension; -1: auto
                  // (its engine failed before resolving it)
    int bs, in, out, ok;
    // memory
    uint64_t weights, activations, overhead, kv_alloc, kv_peak, measured, predicted;
    uint64_t act_used; // the workspace rows the largest step of the run touched
    uint64_t resident; // predicted RSS growth: see bench_engine.c resident_estimate
    // capacity
    int pages;
    int64_t kv_tokens;
    double max_conc; // requests of in+out tokens the pool holds
    uint64_t preempt;
    // speed
    double prefill_s, prefill_tps, step_med, step_p95, step_p99, decode_tps;
    double ttft_mean, ttft_med, ttft_p95, ttft_p99, tpot_mean, tpot_med, tpot_p95, tpot_p99;
    double total_tps, out_tps, bw_gbs;
    double copy_gbs; // measured copy bandwidth of the device (read + write)
    double bw_frac;  // bw_gbs / copy_gbs
    double tok_per_dollar, usd_per_mtok;
} point;

typedef struct {
    const char *model, *device;
    int repeat, warmup;
} sweep_spec;

// The grid columns of a point, in summary.csv order (util, batch, input, output first).
void sweep_write_csv(FILE *f, const point *pts, int n);

// A point as a JSON object of the csv columns (milliseconds for *_ms) plus "fit".
cJSON *sweep_point_json(const point *p);

// The memory/capacity and speed tables of report.md, in Markdown.
void sweep_write_md_tables(FILE *f, const point *pts, int n);

// Writes summary.csv and report.md into dir (which must exist), then the
// figures and report.html from dir/raw.jsonl (sweep_figures). Returns 0, or
// -1 with err.
int sweep_write_reports(const char *dir, const sweep_spec *sp, const point *pts, int n, char *err);

// mkdir -p. Returns 0, or -1 with errno set.
int sweep_mkdirs(const char *path);

#endif
