// client_report.c - see client_report.h.
#include "client_report.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svg_plot.h"
#include "util.h"

#define CDF_POINTS 200 // points per latency-distribution curve
#define MAX_SERIES 8   // curves per plot (the plot's palette)

static const char *tok_source(const client_summary *s) {
    if (s->tok_usage && !s->tok_chunks && !s->tok_none) return "usage";
    if (s->tok_chunks && !s->tok_usage && !s->tok_none) return "chunks";
    if (!s->completed) return "none";
    return "mixed";
}

static const char *const definitions =
    "- **TTFT** (time to first token): from sending the request to the first streamed chunk "
    "that carries generated text.\n"
    "- **ITL** (inter-token latency): every gap between two consecutive chunks with text.\n"
    "- **TPOT** (time per output token): (E2EL - TTFT) / (output tokens - 1), per request with "
    "at least 2 output tokens.\n"
    "- **E2EL** (end-to-end latency): from sending the request to the end of its response; "
    "*queued E2EL* (open loop) counts from the scheduled send time, so it includes any wait "
    "for a free slot and any retry.\n"
    "- **Output tokens**: the server's `usage.completion_tokens` (requested with "
    "`stream_options.include_usage`); when the server sends none, the number of text chunks "
    "(column *tokens from*).\n"
    "- **Throughput**: completed requests, output tokens, and prompt + output tokens per "
    "second of the point's duration (first send to last response); **goodput**: completed "
    "requests per second that met every SLO given with `--goodput`.\n"
    "- Only completed requests enter the latency and token figures; failed ones are counted "
    "by type. A non-streamed API (/generate) has no TTFT, ITL or TPOT.\n"
    "- Percentiles interpolate linearly between ranks (numpy's default); std is the "
    "population standard deviation.\n";

// --- raw.jsonl and the result JSON ---------------------------------------------

void client_raw_write(FILE *f, const client_point *p, const client_req *r, int64_t t0) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "target", p->target);
    cJSON_AddStringToObject(j, "workload", p->workload);
    cJSON_AddStringToObject(j, "point", p->label);
    cJSON_AddNumberToObject(j, "index", r->index);
    cJSON_AddNumberToObject(j, "scheduled_ns", (double)(r->t_sched - t0));
    cJSON_AddNumberToObject(j, "send_ns", (double)(r->t_send - t0));
    if (r->t_first)
        cJSON_AddNumberToObject(j, "first_ns", (double)(r->t_first - t0));
    else
        cJSON_AddNullToObject(j, "first_ns");
    if (r->t_last)
        cJSON_AddNumberToObject(j, "last_ns", (double)(r->t_last - t0));
    else
        cJSON_AddNullToObject(j, "last_ns");
    cJSON_AddNumberToObject(j, "end_ns", (double)(r->t_end - t0));
    cJSON *gaps = cJSON_AddArrayToObject(j, "chunk_gaps_ns");
    for (int k = 1; k < r->n_chunks; k++)
        cJSON_AddItemToArray(gaps,
                             cJSON_CreateNumber((double)(r->chunk_ts[k] - r->chunk_ts[k - 1])));
    cJSON_AddNumberToObject(j, "chunks", r->n_chunks);
    if (r->prompt_tokens >= 0)
        cJSON_AddNumberToObject(j, "prompt_tokens", r->prompt_tokens);
    else if (r->input_len >= 0)
        cJSON_AddNumberToObject(j, "prompt_tokens", r->input_len);
    else
        cJSON_AddNullToObject(j, "prompt_tokens");
    if (r->output_tokens >= 0)
        cJSON_AddNumberToObject(j, "output_tokens", r->output_tokens);
    else
        cJSON_AddNullToObject(j, "output_tokens");
    static const char *const src[] = {"none", "usage", "chunks"};
    cJSON_AddStringToObject(j, "tokens_source", src[r->tok_src]);
    double t = client_ttft_ms(r), tp = client_tpot_ms(r);
    if (t >= 0)
        cJSON_AddNumberToObject(j, "ttft_ms", t);
    else
        cJSON_AddNullToObject(j, "ttft_ms");
    if (tp >= 0)
        cJSON_AddNumberToObject(j, "tpot_ms", tp);
    else
        cJSON_AddNullToObject(j, "tpot_ms");
    cJSON_AddNumberToObject(j, "e2el_ms", client_e2el_ms(r));
    cJSON_AddNumberToObject(j, "queued_e2el_ms", (double)(r->t_end - r->t_sched) / 1e6);
    cJSON_AddNumberToObject(j, "http_status", r->http_status);
    cJSON_AddNumberToObject(j, "attempts", r->attempts);
    cJSON_AddStringToObject(j, "status", r->err == CERR_NONE ? "ok" : "error");
    if (r->err == CERR_NONE) {
        cJSON_AddNullToObject(j, "error_type");
        cJSON_AddNullToObject(j, "error");
    } else {
        cJSON_AddStringToObject(j, "error_type", client_err_name(r->err));
        cJSON_AddStringToObject(j, "error", r->errmsg);
    }
    char *s = cJSON_PrintUnformatted(j);
    if (s) fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(j);
}

static void add_dist(cJSON *j, const char *name, const client_dist *d) {
    char k[64];
    static const char *const pn[] = {"50", "90", "95", "99"};
    const double pv[] = {d->p50, d->p90, d->p95, d->p99};
    snprintf(k, sizeof k, "mean_%s_ms", name);
    cJSON_AddNumberToObject(j, k, d->mean);
    snprintf(k, sizeof k, "median_%s_ms", name);
    cJSON_AddNumberToObject(j, k, d->median);
    snprintf(k, sizeof k, "std_%s_ms", name);
    cJSON_AddNumberToObject(j, k, d->std);
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "p%s_%s_ms", pn[i], name);
        cJSON_AddNumberToObject(j, k, pv[i]);
    }
    snprintf(k, sizeof k, "count_%s", name);
    cJSON_AddNumberToObject(j, k, d->n);
}

cJSON *client_result_json(const client_point *p, client_req *const *reqs, int n) {
    const client_summary *s = &p->s;
    cJSON *j = cJSON_CreateObject();
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%d-%H%M%S", &tm); // vLLM's format (UTC here)
    cJSON_AddStringToObject(j, "date", date);
    cJSON_AddStringToObject(j, "backend", client_api_name(p->api));
    cJSON_AddStringToObject(j, "model_id", p->model);
    cJSON_AddStringToObject(j, "target", p->target);
    cJSON_AddStringToObject(j, "workload", p->workload);
    if (p->rate > 0 && isinf(p->rate))
        cJSON_AddStringToObject(j, "request_rate", "inf");
    else if (p->rate > 0)
        cJSON_AddNumberToObject(j, "request_rate", p->rate);
    else
        cJSON_AddNullToObject(j, "request_rate");
    cJSON_AddNumberToObject(j, "burstiness", p->burstiness);
    if (p->concurrency)
        cJSON_AddNumberToObject(j, "max_concurrency", p->concurrency);
    else
        cJSON_AddNullToObject(j, "max_concurrency");
    cJSON_AddNumberToObject(j, "num_prompts", s->requests);
    cJSON_AddNumberToObject(j, "duration", s->duration_s);
    cJSON_AddNumberToObject(j, "completed", s->completed);
    cJSON_AddNumberToObject(j, "failed", s->failed);
    cJSON *by = cJSON_AddObjectToObject(j, "errors_by_type");
    for (int e = 1; e < CERR_COUNT; e++)
        if (s->by_err[e]) cJSON_AddNumberToObject(by, client_err_name((client_err)e), s->by_err[e]);
    cJSON_AddNumberToObject(j, "retries", s->retries);
    cJSON_AddNumberToObject(j, "total_input_tokens", (double)s->total_input);
    cJSON_AddNumberToObject(j, "total_output_tokens", (double)s->total_output);
    cJSON_AddStringToObject(j, "tokens_source", tok_source(s));
    cJSON_AddBoolToObject(j, "prompt_token_ids", p->token_ids);
    cJSON_AddNumberToObject(j, "request_throughput", s->request_throughput);
    if (s->slo_set)
        cJSON_AddNumberToObject(j, "request_goodput", s->request_goodput);
    else
        cJSON_AddNullToObject(j, "request_goodput");
    cJSON_AddNumberToObject(j, "output_throughput", s->output_throughput);
    cJSON_AddNumberToObject(j, "total_token_throughput", s->total_token_throughput);
    cJSON_AddNumberToObject(j, "max_output_tokens_per_s", s->max_output_tokens_per_s);
    cJSON_AddNumberToObject(j, "max_concurrent_requests", s->max_concurrency);
    add_dist(j, "ttft", &s->ttft);
    add_dist(j, "tpot", &s->tpot);
    add_dist(j, "itl", &s->itl);
    add_dist(j, "e2el", &s->e2el);
    if (s->open_loop) add_dist(j, "queued_e2el", &s->e2el_queued);
    cJSON *il = cJSON_AddArrayToObject(j, "input_lens");
    cJSON *ol = cJSON_AddArrayToObject(j, "output_lens");
    cJSON *tt = cJSON_AddArrayToObject(j, "ttfts");
    cJSON *it = cJSON_AddArrayToObject(j, "itls");
    cJSON *er = cJSON_AddArrayToObject(j, "errors");
    for (int i = 0; i < n; i++) {
        const client_req *r = reqs[i];
        int in = r->prompt_tokens >= 0 ? r->prompt_tokens : r->input_len;
        cJSON_AddItemToArray(il, cJSON_CreateNumber(in));
        cJSON_AddItemToArray(ol, cJSON_CreateNumber(r->err ? 0 : r->output_tokens));
        double t = client_ttft_ms(r);
        cJSON_AddItemToArray(tt, cJSON_CreateNumber(r->err || t < 0 ? 0 : t / 1e3));
        cJSON *g = cJSON_CreateArray();
        for (int k = 1; !r->err && k < r->n_chunks; k++)
            cJSON_AddItemToArray(
                g, cJSON_CreateNumber((double)(r->chunk_ts[k] - r->chunk_ts[k - 1]) / 1e9));
        cJSON_AddItemToArray(it, g);
        cJSON_AddItemToArray(er, cJSON_CreateString(r->err ? r->errmsg : ""));
    }
    return j;
}

// Dollars per million tokens at a throughput (tokens/s) and an hourly price.
static double cost_per_m(double hourly, double tok_per_s) {
    return tok_per_s > 0 ? hourly / 3600.0 / tok_per_s * 1e6 : NAN;
}

// --- terminal summary --------------------------------------------------------------

static void print_dist(FILE *f, const char *title, const char *name, const client_dist *d) {
    fprintf(f, "%s\n", title);
    if (!d->n) {
        fprintf(f, "%-40s%s\n", "(not measured)", "");
        return;
    }
    fprintf(f, "Mean %-35s%.2f\nMedian %-33s%.2f\nP95 %-36s%.2f\nP99 %-36s%.2f\n", name, d->mean,
            name, d->median, name, d->p95, name, d->p99);
}

void client_print_summary(FILE *f, const client_point *p) {
    const client_summary *s = &p->s;
    fprintf(f, "============ Serving Benchmark Result ============\n");
    fprintf(f, "%-40s%s\n", "Point:", p->label);
    fprintf(f, "%-40s%d\n", "Successful requests:", s->completed);
    fprintf(f, "%-40s%d\n", "Failed requests:", s->failed);
    for (int e = 1; e < CERR_COUNT; e++)
        if (s->by_err[e]) fprintf(f, "  %-38s%d\n", client_err_name((client_err)e), s->by_err[e]);
    fprintf(f, "%-40s%d\n", "Retries:", s->retries);
    fprintf(f, "%-40s%.2f\n", "Benchmark duration (s):", s->duration_s);
    fprintf(f, "%-40s%lld\n", "Total input tokens:", (long long)s->total_input);
    fprintf(f, "%-40s%lld (from %s)\n", "Total generated tokens:", (long long)s->total_output,
            tok_source(s));
    fprintf(f, "%-40s%.2f\n", "Request throughput (req/s):", s->request_throughput);
    if (s->slo_set) fprintf(f, "%-40s%.2f\n", "Request goodput (req/s):", s->request_goodput);
    fprintf(f, "%-40s%.2f\n", "Output token throughput (tok/s):", s->output_throughput);
    fprintf(f, "%-40s%.2f\n", "Total Token throughput (tok/s):", s->total_token_throughput);
    fprintf(f, "%-40s%.2f\n", "Peak output token throughput (tok/s):", s->max_output_tokens_per_s);
    fprintf(f, "%-40s%d\n", "Max concurrent requests:", s->max_concurrency);
    if (p->hourly_cost > 0 && s->output_throughput > 0) {
        fprintf(f, "%-40s%.4f\n",
                "Cost per 1M output tokens ($):", cost_per_m(p->hourly_cost, s->output_throughput));
        fprintf(f, "%-40s%.4f\n", "Cost per 1M total tokens ($):",
                cost_per_m(p->hourly_cost, s->total_token_throughput));
    }
    print_dist(f, "---------------Time to First Token----------------", "TTFT (ms):", &s->ttft);
    print_dist(f, "-----Time per Output Token (excl. 1st token)------", "TPOT (ms):", &s->tpot);
    print_dist(f, "---------------Inter-token Latency----------------", "ITL (ms):", &s->itl);
    print_dist(f, "----------------End-to-end Latency----------------", "E2EL (ms):", &s->e2el);
    if (s->open_loop)
        print_dist(f, "-------E2E Latency from the scheduled send--------",
                   "queued E2EL (ms):", &s->e2el_queued);
    fprintf(f, "==================================================\n");
}

// --- summary.csv ---------------------------------------------------------------------

static void errors_str(const client_summary *s, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int e = 1; e < CERR_COUNT && len < n; e++)
        if (s->by_err[e])
            len += (size_t)snprintf(buf + len, n - len, "%s%s:%d", len ? ";" : "",
                                    client_err_name((client_err)e), s->by_err[e]);
}

static void csv_dist_header(FILE *f, const char *name) {
    static const char *const st[] = {"mean", "median", "std", "p50", "p90", "p95", "p99"};
    for (int i = 0; i < 7; i++) fprintf(f, ",%s_%s_ms", st[i], name);
}

static void csv_dist(FILE *f, const client_dist *d) {
    const double v[] = {d->mean, d->median, d->std, d->p50, d->p90, d->p95, d->p99};
    for (int i = 0; i < 7; i++)
        if (d->n)
            fprintf(f, ",%.3f", v[i]);
        else
            fprintf(f, ",");
}

static int write_csv(const char *dir, const client_point *pts, int n, char *err) {
    char *path = llm_path_join(dir, "summary.csv");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/summary.csv: %s", dir, strerror(errno));
    fprintf(f, "target,workload,api,model,mode,concurrency,request_rate,burstiness,requests,"
               "completed,failed,errors,retries,duration_s,total_input_tokens,"
               "total_output_tokens,tokens_source,request_throughput,output_throughput,"
               "total_token_throughput,request_goodput,max_concurrent_requests");
    csv_dist_header(f, "ttft");
    csv_dist_header(f, "tpot");
    csv_dist_header(f, "itl");
    csv_dist_header(f, "e2el");
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        const client_point *p = &pts[i];
        const client_summary *s = &p->s;
        char errs[256];
        errors_str(s, errs, sizeof errs);
        fprintf(f, "%s,%s,%s,%s,%s,%d,", p->target, p->workload, client_api_name(p->api), p->model,
                p->rate > 0 ? "open" : "closed", p->concurrency);
        if (p->rate > 0) fprintf(f, isinf(p->rate) ? "inf" : "%g", p->rate);
        fprintf(f, ",%g,%d,%d,%d,%s,%d,%.3f,%lld,%lld,%s,%.4f,%.3f,%.3f,", p->burstiness,
                s->requests, s->completed, s->failed, errs, s->retries, s->duration_s,
                (long long)s->total_input, (long long)s->total_output, tok_source(s),
                s->request_throughput, s->output_throughput, s->total_token_throughput);
        if (s->slo_set) fprintf(f, "%.4f", s->request_goodput);
        fprintf(f, ",%d", s->max_concurrency);
        csv_dist(f, &s->ttft);
        csv_dist(f, &s->tpot);
        csv_dist(f, &s->itl);
        csv_dist(f, &s->e2el);
        fprintf(f, "\n");
    }
    fclose(f);
    return 0;
}

// --- plots -----------------------------------------------------------------------------

typedef struct {
    char file[64], title[128];
} plot_ref;

// Latency distribution (CDF) of one metric, one curve per point.
static int cdf_plot(const char *dir, const client_point *pts, int n, size_t off, const char *name,
                    plot_ref *ref, int *n_ref, char *err) {
    svg_series s[MAX_SERIES];
    double xs[MAX_SERIES][CDF_POINTS], ys[MAX_SERIES][CDF_POINTS];
    int ns = 0;
    for (int i = 0; i < n && ns < MAX_SERIES; i++) {
        const client_dist *d = (const client_dist *)((const char *)&pts[i].s + off);
        if (!d->n) continue;
        int k = d->n < CDF_POINTS ? d->n : CDF_POINTS;
        for (int j = 0; j < k; j++) {
            double q = k == 1 ? 100 : 100.0 * j / (k - 1);
            xs[ns][j] = client_percentile(d->v, d->n, q);
            ys[ns][j] = q;
        }
        s[ns] = (svg_series){pts[i].label, k, xs[ns], ys[ns]};
        ns++;
    }
    if (!ns) return 0;
    plot_ref *r = &ref[(*n_ref)++];
    snprintf(r->file, sizeof r->file, "%s_cdf.svg", name);
    snprintf(r->title, sizeof r->title, "%s distribution (percentile vs ms)", name);
    char *path = llm_path_join(dir, r->file);
    char xl[32];
    snprintf(xl, sizeof xl, "%s (ms)", name);
    int rc = svg_line_plot(path, r->title, xl, "percentile", s, ns, err);
    free(path);
    return rc;
}

typedef double (*point_value)(const client_point *p);
static double v_out_tput(const client_point *p) {
    return p->s.output_throughput;
}
static double v_p99_ttft(const client_point *p) {
    return p->s.ttft.n ? p->s.ttft.p99 : NAN;
}
static double v_p99_e2el(const client_point *p) {
    return p->s.e2el.p99;
}
static double x_of(const client_point *p) {
    return p->rate > 0 ? p->rate : p->concurrency;
}

static void series_name(const client_point *p, int many_workloads, char *buf, size_t n) {
    if (many_workloads)
        snprintf(buf, n, "%s/%s", p->target, p->workload);
    else
        snprintf(buf, n, "%s", p->target);
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// A metric vs concurrency (the closed-loop points, open 0) or vs request
// rate (the open-loop points, open 1: rates as evenly spaced categories, so
// that inf has its place), one line per target (and workload).
static int sweep_plot(const char *dir, const client_point *pts, int n, int open, point_value fv,
                      const char *file, const char *title, const char *yl, plot_ref *ref,
                      int *n_ref, char *err) {
    int many_w = 0, first = -1;
    double rates[64];
    int n_rates = 0;
    for (int i = 0; i < n; i++) {
        if ((pts[i].rate > 0) != open) continue;
        if (first < 0) first = i;
        many_w |= strcmp(pts[i].workload, pts[first].workload) != 0;
        int k = 0;
        while (k < n_rates && rates[k] != pts[i].rate) k++;
        if (open && k == n_rates && n_rates < 64) rates[n_rates++] = pts[i].rate;
    }
    if (first < 0) return 0;
    qsort(rates, (size_t)n_rates, sizeof *rates, by_double);
    char tick_buf[64][24];
    const char *ticks[64];
    for (int k = 0; k < n_rates; k++) {
        if (isinf(rates[k]))
            snprintf(tick_buf[k], sizeof tick_buf[k], "inf");
        else
            snprintf(tick_buf[k], sizeof tick_buf[k], "%g", rates[k]);
        ticks[k] = tick_buf[k];
    }
    char names[MAX_SERIES][160];
    double *xs = malloc((size_t)n * MAX_SERIES * sizeof *xs);
    double *ys = malloc((size_t)n * MAX_SERIES * sizeof *ys);
    svg_series s[MAX_SERIES];
    int ns = 0;
    if (!xs || !ys) return free(xs), free(ys), llm_errf(err, "out of memory");
    for (int i = 0; i < n; i++) {
        if ((pts[i].rate > 0) != open) continue;
        char nm[160];
        series_name(&pts[i], many_w, nm, sizeof nm);
        int k = 0;
        while (k < ns && strcmp(names[k], nm)) k++;
        if (k == ns) {
            if (ns == MAX_SERIES) continue;
            snprintf(names[ns], sizeof names[ns], "%s", nm);
            s[ns] = (svg_series){names[ns], 0, xs + (size_t)ns * n, ys + (size_t)ns * n};
            ns++;
        }
        double x = x_of(&pts[i]);
        if (open) {
            int r = 0;
            while (r < n_rates && rates[r] != pts[i].rate) r++;
            x = r;
        }
        ((double *)s[k].x)[s[k].n] = x;
        ((double *)s[k].y)[s[k].n++] = fv(&pts[i]);
    }
    plot_ref *r = &ref[(*n_ref)++];
    snprintf(r->file, sizeof r->file, "%s", file);
    snprintf(r->title, sizeof r->title, "%s", title);
    char *path = llm_path_join(dir, file);
    int rc = open ? svg_line_plot_categories(path, title, "request rate (req/s)", yl, s, ns, ticks,
                                             n_rates, err)
                  : svg_line_plot(path, title, "concurrency (requests in flight)", yl, s, ns, err);
    free(path);
    free(xs);
    free(ys);
    return rc;
}

// --- report.md / report.html -------------------------------------------------------------

static void table_row(FILE *f, char (*c)[200], int nc, int html) {
    fputs(html ? "<tr>" : "|", f);
    for (int k = 0; k < nc; k++) fprintf(f, html ? "<td>%s</td>" : " %s |", c[k]);
    fputs(html ? "</tr>\n" : "\n", f);
}

static void table_head(FILE *f, const char *const *head, int nh, int html) {
    fputs(html ? "<div class=\"t\"><table>\n<tr>" : "|", f);
    for (int i = 0; i < nh; i++) fprintf(f, html ? "<th>%s</th>" : " %s |", head[i]);
    fputs(html ? "</tr>\n" : "\n|", f);
    for (int i = 0; !html && i < nh; i++) fputs("---|", f);
    if (!html) fputs("\n", f);
}

// Two tables, so that neither is wider than a screen: counts and throughput
// (with the cost per 1M tokens when --hourly-cost is given), then latencies.
static void md_table(FILE *f, const client_point *pts, int n, int html) {
    static const char *const head[] = {"point",      "completed", "failed",      "errors",
                                       "duration s", "req/s",     "out tok/s",   "total tok/s",
                                       "goodput",    "max conc",  "tokens from", "$/1M out tok",
                                       "$/1M tok"};
    int cost = 0;
    for (int i = 0; i < n; i++) cost |= pts[i].hourly_cost > 0;
    const int nh = cost ? 13 : 11;
    table_head(f, head, nh, html);
    for (int i = 0; i < n; i++) {
        const client_summary *s = &pts[i].s;
        char c[13][200];
        char errs[256];
        errors_str(s, errs, sizeof errs);
        snprintf(c[0], sizeof c[0], "%s", pts[i].label);
        snprintf(c[1], sizeof c[1], "%d", s->completed);
        snprintf(c[2], sizeof c[2], "%d", s->failed);
        snprintf(c[3], sizeof c[3], "%.199s", *errs ? errs : "-");
        snprintf(c[4], sizeof c[4], "%.2f", s->duration_s);
        snprintf(c[5], sizeof c[5], "%.3f", s->request_throughput);
        snprintf(c[6], sizeof c[6], "%.1f", s->output_throughput);
        snprintf(c[7], sizeof c[7], "%.1f", s->total_token_throughput);
        if (s->slo_set)
            snprintf(c[8], sizeof c[8], "%.3f", s->request_goodput);
        else
            snprintf(c[8], sizeof c[8], "-");
        snprintf(c[9], sizeof c[9], "%d", s->max_concurrency);
        snprintf(c[10], sizeof c[10], "%s", tok_source(s));
        double hc = pts[i].hourly_cost;
        double co = cost_per_m(hc, s->output_throughput),
               ct = cost_per_m(hc, s->total_token_throughput);
        snprintf(c[11], sizeof c[11], hc > 0 && isfinite(co) ? "%.4f" : "-", co);
        snprintf(c[12], sizeof c[12], hc > 0 && isfinite(ct) ? "%.4f" : "-", ct);
        table_row(f, c, nh, html);
    }
    if (html) fputs("</table></div>\n", f);
    fputs(html ? "<p>Latencies (ms): mean, p50, p95, p99.</p>\n"
               : "\nLatencies (ms): mean, p50, p95, p99.\n\n",
          f);
    static const char *const lhead[] = {
        "point",    "TTFT mean", "TTFT p50", "TTFT p95", "TTFT p99", "TPOT mean",
        "TPOT p50", "TPOT p95",  "TPOT p99", "ITL mean", "ITL p50",  "ITL p95",
        "ITL p99",  "E2EL mean", "E2EL p50", "E2EL p95", "E2EL p99"};
    table_head(f, lhead, 17, html);
    for (int i = 0; i < n; i++) {
        const client_summary *s = &pts[i].s;
        char c[17][200];
        snprintf(c[0], sizeof c[0], "%s", pts[i].label);
        const client_dist *d[] = {&s->ttft, &s->tpot, &s->itl, &s->e2el};
        for (int k = 0; k < 4; k++) {
            const double v[] = {d[k]->mean, d[k]->p50, d[k]->p95, d[k]->p99};
            for (int q = 0; q < 4; q++)
                if (d[k]->n)
                    snprintf(c[1 + 4 * k + q], sizeof c[0], "%.1f", v[q]);
                else
                    snprintf(c[1 + 4 * k + q], sizeof c[0], "-");
        }
        table_row(f, c, 17, html);
    }
    if (html) fputs("</table></div>\n", f);
}

int client_write_reports(const char *dir, const client_point *pts, int n, char *err) {
    if (write_csv(dir, pts, n, err)) return -1;
    plot_ref refs[12];
    int nr = 0;
    if (cdf_plot(dir, pts, n, offsetof(client_summary, ttft), "TTFT", refs, &nr, err) ||
        cdf_plot(dir, pts, n, offsetof(client_summary, tpot), "TPOT", refs, &nr, err) ||
        cdf_plot(dir, pts, n, offsetof(client_summary, itl), "ITL", refs, &nr, err) ||
        cdf_plot(dir, pts, n, offsetof(client_summary, e2el), "E2EL", refs, &nr, err))
        return -1;
    // closed-loop points against concurrency, open-loop ones against rate:
    // two axes, never one shared
    if (n > 1 &&
        (sweep_plot(dir, pts, n, 0, v_out_tput, "throughput_sweep.svg",
                    "Output throughput vs concurrency", "output tokens/s", refs, &nr, err) ||
         sweep_plot(dir, pts, n, 0, v_p99_ttft, "p99_ttft_sweep.svg", "TTFT p99 vs concurrency",
                    "ms", refs, &nr, err) ||
         sweep_plot(dir, pts, n, 0, v_p99_e2el, "p99_e2el_sweep.svg", "E2EL p99 vs concurrency",
                    "ms", refs, &nr, err) ||
         sweep_plot(dir, pts, n, 1, v_out_tput, "throughput_rate_sweep.svg",
                    "Output throughput vs request rate", "output tokens/s", refs, &nr, err) ||
         sweep_plot(dir, pts, n, 1, v_p99_ttft, "p99_ttft_rate_sweep.svg",
                    "TTFT p99 vs request rate", "ms", refs, &nr, err) ||
         sweep_plot(dir, pts, n, 1, v_p99_e2el, "p99_e2el_rate_sweep.svg",
                    "E2EL p99 vs request rate", "ms", refs, &nr, err)))
        return -1;
    char *path = llm_path_join(dir, "report.md");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/report.md: %s", dir, strerror(errno));
    fprintf(f, "# llm_client bench\n\n%d point(s); latencies in ms.\n\n", n);
    md_table(f, pts, n, 0);
    fprintf(f, "\n## Definitions\n\n%s\n## Plots\n\n", definitions);
    for (int i = 0; i < nr; i++) fprintf(f, "![%s](%s)\n\n", refs[i].title, refs[i].file);
    fclose(f);
    path = llm_path_join(dir, "report.html");
    f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/report.html: %s", dir, strerror(errno));
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>llm_client bench"
               "</title><style>body{font-family:sans-serif;max-width:1240px}"
               "table{border-collapse:collapse;font-size:13px}"
               "td,th{border:1px solid #ccc;padding:2px 5px;text-align:right}"
               "td:first-child,th:first-child{text-align:left}"
               ".t{overflow-x:auto;max-width:100%%}img{max-width:100%%}</style></head><body>\n"
               "<h1>llm_client bench</h1>\n<p>Latencies in ms.</p>\n");
    md_table(f, pts, n, 1);
    for (int i = 0; i < nr; i++)
        fprintf(f, "<p><img src=\"%s\" alt=\"%s\"></p>\n", refs[i].file, refs[i].title);
    fprintf(f, "<h2>Definitions</h2>\n<ul>\n");
    for (const char *l = definitions; *l;) { // the Markdown list, as HTML
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        fputs("<li>", f);
        int bold = 0;
        for (size_t k = 2; k < len; k++) {
            if (l[k] == '*' && l[k + 1] == '*') {
                fputs(bold ? "</b>" : "<b>", f);
                bold = !bold, k++;
            } else if (l[k] == '<')
                fputs("&lt;", f);
            else if (l[k] == '>')
                fputs("&gt;", f);
            else if (l[k] == '&')
                fputs("&amp;", f);
            else if (l[k] != '*' && l[k] != '`')
                fputc(l[k], f);
        }
        fputs("</li>\n", f);
        l += len + (e ? 1 : 0);
    }
    fprintf(f, "</ul>\n</body></html>\n");
    fclose(f);
    return 0;
}
