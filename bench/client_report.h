// client_report.h - llm_client bench's results: raw.jsonl (one record per
// request), the vLLM-keyed result JSON, summary.csv, report.md, report.html
// and SVG plots, and the summary printed on the terminal.
#ifndef LLM_CLIENT_REPORT_H
#define LLM_CLIENT_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "client_metrics.h"

// One measured point: a target x workload at one concurrency or rate.
typedef struct {
    char target[64], workload[64], label[192];
    char model[128];
    client_api api;
    double rate;     // requests/s of an open loop (inf allowed); 0: closed loop
    int concurrency; // closed loop: requests in flight; open loop: the cap (0: none)
    double burstiness;
    int token_ids; // synthetic prompts went as token ids
    client_summary s;
    double hourly_cost; // $/hour of the server (0: none): cost per 1M tokens in reports
} client_point;

// Appends one request's record to raw.jsonl; times are ns from t0 (the point's start).
void client_raw_write(FILE *f, const client_point *p, const client_req *r, int64_t t0);

// The result of a point under vLLM benchmark_serving's keys (duration,
// completed, request_throughput, mean_ttft_ms, p99_itl_ms, ...), plus ours
// (failed, errors_by_type, tokens_source, ...), with per-request input_lens,
// output_lens, ttfts, itls and errors.
cJSON *client_result_json(const client_point *p, client_req *const *reqs, int n);

// Prints vLLM's "Serving Benchmark Result" block for a point.
void client_print_summary(FILE *f, const client_point *p);

// Writes summary.csv, the SVG plots, report.md and report.html into dir.
// Returns 0, or -1 with err.
int client_write_reports(const char *dir, const client_point *pts, int n, char *err);

#endif
