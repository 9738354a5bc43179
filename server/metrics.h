// metrics.h - the server's Prometheus metrics, named as vLLM names them so
// that existing dashboards work: request latencies as histograms with vLLM's
// buckets, finished requests by reason, errors by type. Engine-side counters
// (tokens, preemptions, prefix cache) come from engine_stats when rendered.
#ifndef LLM_METRICS_H
#define LLM_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define METRICS_MAX_BUCKETS 24

typedef struct {
    int n;                                    // finite buckets; +Inf is implied
    const double *bounds;                     // [n] upper bounds, ascending
    uint64_t counts[METRICS_MAX_BUCKETS + 1]; // per bucket (not cumulative); last: +Inf
    double sum;
    uint64_t count;
} metrics_histogram;

enum { METRICS_FINISH_STOP, METRICS_FINISH_LENGTH, METRICS_FINISH_ABORT, METRICS_FINISH_N };

// Error classes counted by llm_http_errors_total{status,type}.
#define METRICS_MAX_ERROR_KINDS 32

typedef struct {
    pthread_mutex_t mu;
    metrics_histogram ttft, itl, e2e, queue, prompt_len, gen_len;
    uint64_t finished[METRICS_FINISH_N];
    struct {
        int status;
        char type[40];
        uint64_t n;
    } errors[METRICS_MAX_ERROR_KINDS];
    int n_errors;
    uint64_t http_requests;
} server_metrics;

void metrics_init(server_metrics *m);
void metrics_destroy(server_metrics *m);

// A finished generation request: its latencies in seconds (ttft < 0 when no
// token came), token counts and finish reason ("stop", "length", "abort").
void metrics_request_done(server_metrics *m, double queue_s, double ttft_s, double e2e_s,
                          int prompt_tokens, int gen_tokens, const char *finish_reason);
// One gap between two consecutive tokens of a request, in seconds.
void metrics_itl(server_metrics *m, double gap_s);
// An HTTP error answered (any 4xx/5xx), by status and OpenAI error type.
void metrics_error(server_metrics *m, int status, const char *type);
void metrics_http_request(server_metrics *m);

// Renders the Prometheus text exposition (version 0.0.4) into a malloc'd
// string: the histograms and counters above, the engine's counters and
// gauges from st, device memory used/total, and `in_flight`. model_name is
// the value of every sample's model_name label. NULL when out of memory.
char *metrics_render(server_metrics *m, const engine_stats *st, uint64_t mem_used,
                     uint64_t mem_total, int in_flight, const char *model_name, size_t *len);

#endif
