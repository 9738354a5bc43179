// client_metrics.h - llm_client's figures: per-request latencies from the
// streamed timestamps, and a run's summary (throughput, goodput, latency
// distributions) computed the way vLLM's benchmark_serving computes them.
#ifndef LLM_CLIENT_METRICS_H
#define LLM_CLIENT_METRICS_H

#include "client_http.h"

// The q-th percentile (0..100) of n sorted values, interpolated linearly
// between the two nearest ranks (numpy's default method). 0 when n is 0.
double client_percentile(const double *sorted, int n, double q);

// A distribution in milliseconds; n = 0 when nothing was measured.
typedef struct {
    int n;
    double mean, median, std, p50, p90, p95, p99, min, max;
    double *v; // [n] the values, sorted (owned)
} client_dist;

// Service-level objectives for goodput, in ms; <= 0: not set.
typedef struct {
    double ttft_ms, tpot_ms, e2el_ms;
} client_slo;

// Parses "ttft:MS tpot:MS e2el:MS" (any subset, spaces or commas between).
// Returns 0, or -1 with err.
int client_slo_parse(const char *s, client_slo *slo, char *err);

// Per-request latencies in ms; each < 0 when not measured.
double client_ttft_ms(const client_req *r); // first content chunk - send
double client_e2el_ms(const client_req *r); // end of response - send
double client_tpot_ms(const client_req *r); // (e2el - ttft) / (output tokens - 1)

typedef struct {
    int requests, completed, failed;
    int by_err[CERR_COUNT];
    int retries;
    double duration_s;
    int64_t total_input, total_output;
    int tok_usage, tok_chunks, tok_none; // where completed requests' token counts came from
    double request_throughput, output_throughput, total_token_throughput;
    int slo_set, good;
    double request_goodput;
    int max_concurrency;            // peak requests in flight (set by the caller)
    double max_output_tokens_per_s; // most text chunks in one second (vLLM's peak)
    int open_loop;
    client_dist ttft, tpot, itl, e2el;
    client_dist e2el_queued; // from the scheduled send time (open loop)
} client_summary;

// Summarizes n finished requests run over duration_s. Only completed requests
// enter the token counts and latency figures; failed ones are counted by type.
// Returns 0, or -1 when out of memory.
int client_summarize(client_req *const *reqs, int n, double duration_s, const client_slo *slo,
                     int open_loop, client_summary *s);
void client_summary_free(client_summary *s);

#endif
