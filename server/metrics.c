#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// vLLM's bucket bounds (vllm/v1/metrics/loggers.py), in seconds or tokens.
static const double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                     0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0,
                                     20.0,  40.0,  80.0, 160., 640., 2560.};
static const double itl_bounds[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                    0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double e2e_bounds[] = {0.3,  0.5,   0.8,  1.0,  1.5,  2.0,   2.5,
                                    5.0,  10.0,  15.0, 20.0, 30.0, 40.0,  50.0,
                                    60.0, 120.0, 240., 480., 960., 1920., 7680.};
static const double len_bounds[] = {1,    2,    5,    10,    20,    50,    100,    200,   500,
                                    1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000};

#define NB(a) ((int)(sizeof a / sizeof a[0]))

static void hist_init(metrics_histogram *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

static void hist_observe(metrics_histogram *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void metrics_init(server_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, ttft_bounds, NB(ttft_bounds));
    hist_init(&m->itl, itl_bounds, NB(itl_bounds));
    hist_init(&m->e2e, e2e_bounds, NB(e2e_bounds));
    hist_init(&m->queue, e2e_bounds, NB(e2e_bounds));
    hist_init(&m->prompt_len, len_bounds, NB(len_bounds));
    hist_init(&m->gen_len, len_bounds, NB(len_bounds));
}

void metrics_destroy(server_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void metrics_request_done(server_metrics *m, double queue_s, double ttft_s, double e2e_s,
                          int prompt_tokens, int gen_tokens, const char *finish_reason) {
    pthread_mutex_lock(&m->mu);
    if (queue_s >= 0) hist_observe(&m->queue, queue_s);
    if (ttft_s >= 0) hist_observe(&m->ttft, ttft_s);
    hist_observe(&m->e2e, e2e_s);
    hist_observe(&m->prompt_len, prompt_tokens);
    hist_observe(&m->gen_len, gen_tokens);
    int k = METRICS_FINISH_ABORT;
    if (finish_reason && !strcmp(finish_reason, "stop")) k = METRICS_FINISH_STOP;
    if (finish_reason && !strcmp(finish_reason, "length")) k = METRICS_FINISH_LENGTH;
    m->finished[k]++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_itl(server_metrics *m, double gap_s) {
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->itl, gap_s);
    pthread_mutex_unlock(&m->mu);
}

void metrics_error(server_metrics *m, int status, const char *type) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_errors && !(m->errors[i].status == status && !strcmp(m->errors[i].type, type)))
        i++;
    if (i == m->n_errors && m->n_errors < METRICS_MAX_ERROR_KINDS) {
        m->errors[i].status = status;
        snprintf(m->errors[i].type, sizeof m->errors[i].type, "%s", type);
        m->errors[i].n = 0;
        m->n_errors++;
    }
    if (i < m->n_errors) m->errors[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_http_request(server_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->http_requests++;
    pthread_mutex_unlock(&m->mu);
}

// --- rendering ---

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->buf = p;
        b->cap = cap;
    }
}

static void header(sbuf *b, const char *name, const char *type, const char *help) {
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_hist(sbuf *b, const char *name, const char *help, const metrics_histogram *h,
                     const char *labels) {
    header(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, h->bounds[i],
            (unsigned long long)cum);
    }
    cum += h->counts[h->n];
    put(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    put(b, "%s_sum{%s} %.9g\n", name, labels, h->sum);
    put(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

static void put_value(sbuf *b, const char *name, const char *type, const char *help,
                      const char *labels, double v) {
    header(b, name, type, help);
    put(b, "%s{%s} %.17g\n", name, labels, v);
}

char *metrics_render(server_metrics *m, const engine_stats *st, uint64_t mem_used,
                     uint64_t mem_total, int in_flight, const char *model_name, size_t *len) {
    sbuf b = {.cap = 16384};
    b.buf = malloc(b.cap);
    if (!b.buf) return NULL;
    char labels[300];
    // label values escape backslash, quote and newline
    size_t o = (size_t)snprintf(labels, sizeof labels, "model_name=\"");
    for (const char *p = model_name; *p && o < sizeof labels - 4; p++) {
        if (*p == '\\' || *p == '"') labels[o++] = '\\';
        if (*p == '\n') {
            labels[o++] = '\\';
            labels[o++] = 'n';
            continue;
        }
        labels[o++] = *p;
    }
    labels[o++] = '"';
    labels[o] = 0;

    put_value(&b, "vllm:num_requests_running", "gauge",
              "Number of requests in model execution batches.", labels, st->running);
    put_value(&b, "vllm:num_requests_waiting", "gauge",
              "Number of requests waiting to be processed.", labels, st->waiting);
    double usage = st->pages_total ? (double)st->pages_used / st->pages_total : 0.0;
    put_value(&b, "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
              labels, usage);
    put_value(&b, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
              labels, (double)st->prompt_tokens);
    put_value(&b, "vllm:generation_tokens_total", "counter",
              "Number of generation tokens processed.", labels, (double)st->generated_tokens);
    put_value(&b, "vllm:num_preemptions_total", "counter",
              "Cumulative number of preemptions from the engine.", labels, (double)st->preemptions);
    put_value(&b, "vllm:prefix_cache_queries_total", "counter",
              "Prefix cache queries, in terms of number of queried tokens.", labels,
              (double)st->prompt_tokens);
    put_value(&b, "vllm:prefix_cache_hits_total", "counter",
              "Prefix cache hits, in terms of number of cached tokens.", labels,
              (double)st->cached_prompt_tokens);

    pthread_mutex_lock(&m->mu);
    static const char *const reasons[METRICS_FINISH_N] = {"stop", "length", "abort"};
    header(&b, "vllm:request_success_total", "counter",
           "Count of successfully processed requests.");
    for (int k = 0; k < METRICS_FINISH_N; k++)
        put(&b, "vllm:request_success_total{finished_reason=\"%s\",%s} %llu\n", reasons[k], labels,
            (unsigned long long)m->finished[k]);
    put_hist(&b, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
             &m->ttft, labels);
    put_hist(&b, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
             &m->itl, labels);
    put_hist(&b, "vllm:e2e_request_latency_seconds",
             "Histogram of end to end request latency in seconds.", &m->e2e, labels);
    put_hist(&b, "vllm:request_queue_time_seconds",
             "Histogram of time spent in WAITING phase for request.", &m->queue, labels);
    put_hist(&b, "vllm:request_prompt_tokens", "Number of prefill tokens processed.",
             &m->prompt_len, labels);
    put_hist(&b, "vllm:request_generation_tokens", "Number of generation tokens processed.",
             &m->gen_len, labels);
    header(&b, "llm_http_errors_total", "counter", "HTTP error responses by status and type.");
    for (int i = 0; i < m->n_errors; i++)
        put(&b, "llm_http_errors_total{status=\"%d\",type=\"%s\"} %llu\n", m->errors[i].status,
            m->errors[i].type, (unsigned long long)m->errors[i].n);
    put_value(&b, "llm_http_requests_total", "counter", "HTTP requests received.", labels,
              (double)m->http_requests);
    pthread_mutex_unlock(&m->mu);

    put_value(&b, "llm_device_memory_used_bytes", "gauge",
              "Device memory in use. GPU: the engine's allocations (weights, workspace, overhead, "
              "KV pool); CPU backend: the process's resident memory (RSS), which grows as KV "
              "pages are first touched.",
              labels, (double)mem_used);
    put_value(&b, "llm_device_memory_reserved_bytes", "gauge",
              "Device memory the engine's plan reserves: weights, activation workspace, overhead "
              "and the whole KV pool (on the CPU backend mostly not yet resident).",
              labels, (double)(st->weights + st->activations + st->overhead + st->kv_allocated));
    put_value(&b, "llm_device_memory_total_bytes", "gauge", "Device memory in total.", labels,
              (double)mem_total);
    put_value(&b, "llm_kv_cache_pages_used", "gauge", "KV-cache pages in use.", labels,
              st->pages_used);
    put_value(&b, "llm_kv_cache_pages_capacity", "gauge", "KV-cache pages in the pool.", labels,
              st->pages_total);
    put_value(&b, "llm_requests_in_flight", "gauge",
              "Generation requests accepted and not yet finished.", labels, in_flight);
    put_value(&b, "llm_engine_steps_total", "counter", "Engine steps run.", labels,
              (double)st->steps);
    put_value(&b, "llm_device_sampled_tokens_total", "counter",
              "Tokens picked by argmax on the device (greedy steps), not sampled on the host.",
              labels, (double)st->device_sampled_tokens);
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    *len = b.len;
    return b.buf;
}
