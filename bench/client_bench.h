// client_bench.h - llm_client's load generator: every target x workload x
// concurrency/rate point, one after another, closed loop (a fixed number of
// requests in flight) or open loop (Poisson/gamma arrivals), with warm-up,
// synthetic or file prompts, and all result files written at the end.
#ifndef LLM_CLIENT_BENCH_H
#define LLM_CLIENT_BENCH_H

#include <stdint.h>

#include "client_metrics.h"
#include "client_workload.h"

typedef struct {
    char *name;     // for reports
    char *base_url; // "http://host:port"
    char *api_key;  // NULL: none
    char *model;    // NULL: the first of GET /v1/models
} client_target;

typedef struct {
    char *name;
    double duration_s; // > 0: send for this long
    int requests;      // > 0: send this many (with a duration: whichever ends first)
    double *rates;     // open-loop points, requests/s (inf: all at once); none: closed loop
    int n_rates;
    int *concs; // closed-loop points; with rates, one value caps requests in flight
    int n_concs;
    int input_len, output_len; // synthetic prompt and output tokens
    double range_ratio;        // lengths uniform in [len * (1 - r), len * (1 + r)]
    int max_tokens;            // >= 0: overrides output_len
    double temperature, top_p; // < 0: not sent
    double burstiness;         // gamma shape of the arrivals (1: Poisson)
    int ignore_eos;
    int warmup;             // requests sent before each point, not measured
    client_prompt *prompts; // prompts instead of synthetic ones (not owned)
    int n_prompts;
} client_workload;

typedef struct {
    client_api api;
    double timeout_s;
    int retries;
    uint64_t seed;
    client_slo slo;
    const char *out_dir; // NULL: results/client-<timestamp>
    int quiet;           // no per-point summary on stdout
    double hourly_cost;  // $/hour of the server: reports add cost per 1M tokens (0: none)
    int *n_requests;     // when set: every measured request, all points
    int *n_failed;       // when set: of which failed
} client_bench_opts;

// Runs every point and writes raw.jsonl, result JSON(s), summary.csv,
// report.md, report.html and the plots into the run directory (printed on
// stderr). Returns 0 (failed requests are results, not errors), or -1 with
// err when a target cannot be reached or a file cannot be written.
int client_bench_run(const client_bench_opts *o, const client_target *t, int nt,
                     const client_workload *w, int nw, char *err);

// The model a target serves: its model, else the first id of GET /v1/models.
// Returns a heap string, or NULL (with err) when neither is known.
char *client_resolve_model(const client_target *t, double timeout_s, char *err);

#endif
