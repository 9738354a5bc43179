// client_metrics.c - see client_metrics.h.
#include "client_metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

double client_percentile(const double *v, int n, double q) {
    if (n <= 0) return 0;
    double pos = q / 100.0 * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (v[lo + 1] - v[lo]) * (pos - lo);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Takes ownership of v[n].
static void dist_of(double *v, int n, client_dist *d) {
    memset(d, 0, sizeof *d);
    d->v = v;
    d->n = n;
    if (!n) return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    d->mean = sum / n;
    for (int i = 0; i < n; i++) ss += (v[i] - d->mean) * (v[i] - d->mean);
    d->std = sqrt(ss / n); // numpy's std: population (ddof 0)
    d->median = d->p50 = client_percentile(v, n, 50);
    d->p90 = client_percentile(v, n, 90);
    d->p95 = client_percentile(v, n, 95);
    d->p99 = client_percentile(v, n, 99);
    d->min = v[0];
    d->max = v[n - 1];
}

int client_slo_parse(const char *s, client_slo *slo, char *err) {
    memset(slo, 0, sizeof *slo);
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char name[16];
        double v;
        int used;
        if (sscanf(p, "%15[a-z0-9]:%lf%n", name, &v, &used) != 2 || v <= 0)
            return llm_errf(err, "--goodput: expected NAME:MS (ttft, tpot, e2el), got '%s'", p);
        if (!strcmp(name, "ttft"))
            slo->ttft_ms = v;
        else if (!strcmp(name, "tpot"))
            slo->tpot_ms = v;
        else if (!strcmp(name, "e2el"))
            slo->e2el_ms = v;
        else
            return llm_errf(err, "--goodput: unknown metric '%s' (ttft, tpot, e2el)", name);
        p += used;
    }
    return 0;
}

double client_ttft_ms(const client_req *r) {
    return r->t_first ? (double)(r->t_first - r->t_send) / 1e6 : -1;
}

double client_e2el_ms(const client_req *r) {
    return (double)(r->t_end - r->t_send) / 1e6;
}

double client_tpot_ms(const client_req *r) {
    double t = client_ttft_ms(r);
    if (t < 0 || r->output_tokens < 2) return -1;
    return (client_e2el_ms(r) - t) / (r->output_tokens - 1);
}

// vLLM's max_output_tokens_per_s: the chunks of completed requests counted in
// one-second buckets from the first send; the fullest bucket.
static double peak_tokens_per_s(client_req *const *reqs, int n) {
    int64_t t0 = INT64_MAX, t1 = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i]->err == CERR_NONE && reqs[i]->n_chunks) {
            if (reqs[i]->t_send < t0) t0 = reqs[i]->t_send;
            if (reqs[i]->t_last > t1) t1 = reqs[i]->t_last;
        }
    if (t1 <= t0) return 0;
    int nb = (int)((t1 - t0) / 1000000000LL) + 1, best = 0;
    int *b = calloc((size_t)nb, sizeof *b);
    if (!b) return 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; reqs[i]->err == CERR_NONE && k < reqs[i]->n_chunks; k++) {
            int j = (int)((reqs[i]->chunk_ts[k] - t0) / 1000000000LL);
            if (++b[j] > best) best = b[j];
        }
    free(b);
    return best;
}

int client_summarize(client_req *const *reqs, int n, double duration_s, const client_slo *slo,
                     int open_loop, client_summary *s) {
    memset(s, 0, sizeof *s);
    s->requests = n;
    s->duration_s = duration_s;
    s->open_loop = open_loop;
    int n_itl = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i]->err == CERR_NONE && reqs[i]->n_chunks > 1) n_itl += reqs[i]->n_chunks - 1;
    double *ttft = malloc(((size_t)n + 1) * sizeof *ttft);
    double *tpot = malloc(((size_t)n + 1) * sizeof *tpot);
    double *e2el = malloc(((size_t)n + 1) * sizeof *e2el);
    double *e2q = malloc(((size_t)n + 1) * sizeof *e2q);
    double *itl = malloc(((size_t)n_itl + 1) * sizeof *itl);
    if (!ttft || !tpot || !e2el || !e2q || !itl) {
        free(ttft), free(tpot), free(e2el), free(e2q), free(itl);
        return -1;
    }
    int nt = 0, np = 0, ne = 0, ni = 0;
    s->slo_set = slo && (slo->ttft_ms > 0 || slo->tpot_ms > 0 || slo->e2el_ms > 0);
    for (int i = 0; i < n; i++) {
        const client_req *r = reqs[i];
        s->retries += r->attempts > 1 ? r->attempts - 1 : 0;
        if (r->err != CERR_NONE) {
            s->failed++;
            s->by_err[r->err]++;
            continue;
        }
        s->completed++;
        if (r->prompt_tokens >= 0)
            s->total_input += r->prompt_tokens;
        else if (r->input_len >= 0)
            s->total_input += r->input_len;
        if (r->tok_src == TOK_USAGE)
            s->tok_usage++;
        else if (r->tok_src == TOK_CHUNKS)
            s->tok_chunks++;
        else
            s->tok_none++;
        if (r->output_tokens > 0) s->total_output += r->output_tokens;
        double t = client_ttft_ms(r), p = client_tpot_ms(r), e = client_e2el_ms(r);
        if (t >= 0) ttft[nt++] = t;
        if (p >= 0) tpot[np++] = p;
        e2el[ne] = e;
        e2q[ne++] = (double)(r->t_end - r->t_sched) / 1e6;
        for (int k = 1; k < r->n_chunks; k++)
            itl[ni++] = (double)(r->chunk_ts[k] - r->chunk_ts[k - 1]) / 1e6;
        if (s->slo_set) {
            int ok = 1;
            if (slo->ttft_ms > 0) ok &= t >= 0 && t <= slo->ttft_ms;
            if (slo->tpot_ms > 0) ok &= p < 0 ? r->output_tokens <= 1 : p <= slo->tpot_ms;
            if (slo->e2el_ms > 0) ok &= e <= slo->e2el_ms;
            s->good += ok;
        }
    }
    s->max_output_tokens_per_s = peak_tokens_per_s(reqs, n);
    dist_of(ttft, nt, &s->ttft);
    dist_of(tpot, np, &s->tpot);
    dist_of(e2el, ne, &s->e2el);
    dist_of(e2q, ne, &s->e2el_queued);
    dist_of(itl, ni, &s->itl);
    if (duration_s > 0) {
        s->request_throughput = s->completed / duration_s;
        s->output_throughput = (double)s->total_output / duration_s;
        s->total_token_throughput = (double)(s->total_input + s->total_output) / duration_s;
        s->request_goodput = s->good / duration_s;
    }
    return 0;
}

void client_summary_free(client_summary *s) {
    free(s->ttft.v);
    free(s->tpot.v);
    free(s->itl.v);
    free(s->e2el.v);
    free(s->e2el_queued.v);
    memset(s, 0, sizeof *s);
}
