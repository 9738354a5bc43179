// client_bench.c - see client_bench.h.
#include "client_bench.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_report.h"
#include "sweep_report.h"
#include "util.h"

#define PROBE_IDS 4 // tokens in the prompt of the token-id probe

// Ctrl-C: send no more requests, let those in flight finish, write the results
// of what ran; a second Ctrl-C kills (the handler is reset on the first).
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    interrupted = 1;
}

char *client_resolve_model(const client_target *t, double timeout_s, char *err) {
    if (t->model) return strdup(t->model);
    int status = 0;
    char *body = client_get(t->base_url, "/v1/models", t->api_key, timeout_s, &status, err);
    if (!body) return NULL;
    cJSON *j = cJSON_Parse(body);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d, 0), "id");
    char *m = status == 200 && cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    if (!m) llm_errf(err, "GET %s/v1/models: HTTP %d, no model id", t->base_url, status);
    cJSON_Delete(j);
    free(body);
    return m;
}

// One point's run: the request generator and the finished requests.
typedef struct {
    const client_bench_opts *o;
    const client_workload *w;
    const char *model;
    int token_ids;
    client_rng rng;
    double rate;    // open loop: requests/s; 0: closed loop
    int limit;      // requests to send
    int64_t t_stop; // duration: no request is sent after it (0: none)
    int64_t next_arrival;
    int issued, ok, failed;
    client_req **done;
    int n_done, cap_done;
    const char *label; // progress line; NULL: no progress line
    int64_t t0;
} point_run;

static int sample_len(client_rng *r, int len, double ratio) {
    int lo = (int)(len * (1 - ratio)), hi = (int)(len * (1 + ratio));
    int v = client_rng_int(r, lo, hi);
    return v < 1 ? 1 : v;
}

static client_req *make_req(point_run *pr) {
    const client_workload *w = pr->w;
    client_body_spec b = {.api = pr->o->api,
                          .model = pr->model,
                          .max_tokens = -1,
                          .temperature = w->temperature,
                          .top_p = w->top_p,
                          .ignore_eos = w->ignore_eos};
    int in_len = -1, *ids = NULL;
    char *text = NULL;
    if (w->n_prompts) {
        const client_prompt *p = &w->prompts[pr->issued % w->n_prompts];
        b.prompt = p->prompt;
        b.max_tokens = p->max_tokens;
        if (p->temperature >= 0) b.temperature = p->temperature;
    } else {
        in_len = sample_len(&pr->rng, w->input_len, w->range_ratio);
        if (pr->token_ids) {
            if (!(ids = malloc((size_t)in_len * sizeof *ids))) return NULL;
            client_synthetic_ids(&pr->rng, ids, in_len);
            b.ids = ids, b.n_ids = in_len;
        } else {
            if (!(text = client_synthetic_text(&pr->rng, in_len))) return NULL;
            b.prompt = text;
        }
    }
    if (b.max_tokens < 0)
        b.max_tokens = w->max_tokens >= 0 ? w->max_tokens
                                          : sample_len(&pr->rng, w->output_len, w->range_ratio);
    char *body = client_body(&b);
    free(ids);
    free(text);
    client_req *r = body ? client_req_new(body, b.api != API_GENERATE) : NULL;
    if (!r) return free(body), NULL;
    r->input_len = in_len;
    r->index = pr->issued++;
    return r;
}

static client_req *gen_next(void *ud, int64_t now) {
    point_run *pr = ud;
    if (pr->issued >= pr->limit || interrupted) return NULL;
    int64_t at = 0;
    if (pr->rate > 0) {
        at = pr->next_arrival;
        if (pr->t_stop && (at > pr->t_stop || now >= pr->t_stop)) return NULL;
        pr->next_arrival +=
            (int64_t)(client_arrival_gap_s(&pr->rng, pr->rate, pr->w->burstiness) * 1e9);
    } else if (pr->t_stop && now >= pr->t_stop) {
        return NULL;
    }
    client_req *r = make_req(pr);
    if (r) r->t_sched = at;
    return r; // out of memory ends the point early
}

static void gen_done(void *ud, client_req *r) {
    point_run *pr = ud;
    if (pr->n_done == pr->cap_done) {
        int c = pr->cap_done ? 2 * pr->cap_done : 256;
        client_req **d = realloc(pr->done, (size_t)c * sizeof *d);
        if (!d) {
            client_req_free(r);
            return;
        }
        pr->done = d, pr->cap_done = c;
    }
    pr->done[pr->n_done++] = r;
    if (r->err == CERR_NONE)
        pr->ok++;
    else
        pr->failed++;
}

static void gen_tick(void *ud, int in_flight) {
    point_run *pr = ud;
    if (!pr->label) return;
    double el = (double)(client_now_ns() - pr->t0) / 1e9;
    char total[32] = "";
    if (pr->limit != INT_MAX) snprintf(total, sizeof total, "/%d", pr->limit);
    fprintf(stderr, "\r\033[K%s: %d%s done (%d ok, %d failed), %d in flight, %.1f s", pr->label,
            pr->n_done, total, pr->ok, pr->failed, in_flight, el);
    fflush(stderr);
}

static void free_done(point_run *pr) {
    for (int i = 0; i < pr->n_done; i++) client_req_free(pr->done[i]);
    free(pr->done);
    pr->done = NULL;
    pr->n_done = pr->cap_done = 0;
}

// Drives one run of a point (warm-up or measured).
static int drive(point_run *pr, const client_target *t, int max_conc, client_drive_stats *st,
                 char *err) {
    client_drive_opts d = {.base_url = t->base_url,
                           .api_key = t->api_key,
                           .api = pr->o->api,
                           .timeout_s = pr->o->timeout_s,
                           .max_retries = pr->o->retries,
                           .max_concurrency = max_conc,
                           .next = gen_next,
                           .on_done = gen_done,
                           .on_tick = gen_tick,
                           .ud = pr};
    pr->t0 = pr->next_arrival = client_now_ns();
    int rc = client_drive(&d, st, err);
    if (pr->label) fprintf(stderr, "\r\033[K");
    return rc;
}

// Does the server take a prompt of token ids? One request says.
static int probe_token_ids(const client_bench_opts *o, const client_target *t, const char *model) {
    client_workload w = {.input_len = PROBE_IDS, .max_tokens = 1, .temperature = -1, .top_p = -1};
    client_bench_opts po = *o;
    po.retries = 0;
    point_run pr = {.o = &po, .w = &w, .model = model, .token_ids = 1, .limit = 1};
    client_rng_seed(&pr.rng, o->seed);
    client_drive_stats st;
    char err[LLM_ERR_LEN];
    int ok = drive(&pr, t, 1, &st, err) == 0 && pr.ok == 1;
    if (!ok && pr.n_done)
        fprintf(stderr, "llm_client: %s: a prompt of token ids failed (%s: %s): sending text\n",
                t->base_url, client_err_name(pr.done[0]->err), pr.done[0]->errmsg);
    free_done(&pr);
    return ok;
}

static void slugify(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++) out[k++] = isalnum((unsigned char)*s) || *s == '.' ? *s : '_';
    out[k] = 0;
}

static int write_result(const char *dir, const client_point *p, client_req *const *reqs, int n,
                        int single, char *err) {
    char name[256], slug[200];
    slugify(p->label, slug, sizeof slug);
    snprintf(name, sizeof name, single ? "result.json" : "result-%s.json", slug);
    char *path = llm_path_join(dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/%s: %s", dir, name, strerror(errno));
    cJSON *j = client_result_json(p, reqs, n);
    char *s = cJSON_Print(j);
    if (s) fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(j);
    fclose(f);
    return 0;
}

typedef struct {
    const client_bench_opts *o;
    const client_target *t;
    const client_workload *w;
    const char *model;
    int token_ids;
    const char *dir;
    FILE *raw;
    int single; // the run has one point: result.json
    int plain;  // one target and one workload: labels without their names
} point_ctx;

static int by_index(const void *a, const void *b) {
    return (*(client_req *const *)a)->index - (*(client_req *const *)b)->index;
}

static int run_point(const point_ctx *c, double rate, int conc, client_point *pt, char *err) {
    const client_workload *w = c->w;
    memset(pt, 0, sizeof *pt);
    snprintf(pt->target, sizeof pt->target, "%s", c->t->name);
    snprintf(pt->workload, sizeof pt->workload, "%s", w->name);
    snprintf(pt->model, sizeof pt->model, "%s", c->model ? c->model : "");
    pt->api = c->o->api;
    pt->rate = rate;
    pt->concurrency = conc;
    pt->burstiness = w->burstiness;
    pt->token_ids = c->token_ids;
    char what[64];
    if (rate > 0 && isinf(rate))
        snprintf(what, sizeof what, "rate=inf");
    else if (rate > 0)
        snprintf(what, sizeof what, "rate=%g", rate);
    else
        snprintf(what, sizeof what, "c=%d", conc);
    if (rate > 0 && conc) snprintf(what + strlen(what), sizeof what - strlen(what), " c<=%d", conc);
    if (c->plain)
        snprintf(pt->label, sizeof pt->label, "%s", what);
    else
        snprintf(pt->label, sizeof pt->label, "%s/%s %s", pt->target, pt->workload, what);
    const char *progress = isatty(STDERR_FILENO) ? pt->label : NULL;
    client_drive_stats st;
    if (w->warmup) {
        point_run wu = {.o = c->o,
                        .w = w,
                        .model = c->model,
                        .token_ids = c->token_ids,
                        .limit = w->warmup,
                        .label = progress};
        client_rng_seed(&wu.rng, c->o->seed ^ 0x5741524d5550ULL); // not the measured prompts
        int rc = drive(&wu, c->t, conc > 0 ? conc : 1, &st, err);
        free_done(&wu);
        if (rc) return -1;
    }
    point_run pr = {.o = c->o,
                    .w = w,
                    .model = c->model,
                    .token_ids = c->token_ids,
                    .rate = rate,
                    .limit = w->requests > 0 ? w->requests : INT_MAX,
                    .label = progress};
    client_rng_seed(&pr.rng, c->o->seed);
    if (w->duration_s > 0) pr.t_stop = client_now_ns() + (int64_t)(w->duration_s * 1e9);
    if (drive(&pr, c->t, conc, &st, err)) return free_done(&pr), -1;
    int64_t t_last = pr.t0;
    for (int i = 0; i < pr.n_done; i++)
        if (pr.done[i]->t_end > t_last) t_last = pr.done[i]->t_end;
    qsort(pr.done, (size_t)pr.n_done, sizeof *pr.done, by_index); // records in send order
    int rc = client_summarize(pr.done, pr.n_done, (double)(t_last - pr.t0) / 1e9, &c->o->slo,
                              rate > 0, &pt->s);
    if (rc) llm_errf(err, "out of memory");
    pt->s.max_concurrency = st.max_in_flight;
    pt->hourly_cost = c->o->hourly_cost;
    if (c->o->n_requests) *c->o->n_requests += pt->s.requests;
    if (c->o->n_failed) *c->o->n_failed += pt->s.failed;
    for (int i = 0; !rc && i < pr.n_done; i++) client_raw_write(c->raw, pt, pr.done[i], pr.t0);
    if (!rc) rc = write_result(c->dir, pt, pr.done, pr.n_done, c->single, err);
    if (!rc && !c->o->quiet) client_print_summary(stdout, pt);
    fflush(stdout);
    free_done(&pr);
    return rc;
}

int client_bench_run(const client_bench_opts *o, const client_target *t, int nt,
                     const client_workload *w, int nw, char *err) {
    char dir[512];
    llm_run_dir(dir, sizeof dir, o->out_dir, "client-");
    int n_points = 0;
    for (int i = 0; i < nw; i++) {
        for (int k = 0; k < w[i].n_rates; k++)
            if (isinf(w[i].rates[k]) && !w[i].requests && !w[i].n_concs)
                return llm_errf(err, "workload %s: a duration at rate inf needs a concurrency cap",
                                w[i].name);
        int k = w[i].n_rates ? w[i].n_rates : w[i].n_concs ? w[i].n_concs : 1;
        n_points += nt * k;
    }
    if (sweep_mkdirs(dir)) return llm_errf(err, "%s: %s", dir, strerror(errno));
    client_point *pts = calloc((size_t)n_points, sizeof *pts);
    char *path = llm_path_join(dir, "raw.jsonl");
    FILE *raw = path ? fopen(path, "w") : NULL;
    free(path);
    if (!pts || !raw) {
        free(pts);
        if (raw) fclose(raw);
        return llm_errf(err, "%s/raw.jsonl: %s", dir, strerror(errno));
    }
    struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESETHAND}, old;
    sigaction(SIGINT, &sa, &old);
    int np = 0, rc = 0;
    for (int ti = 0; ti < nt && !rc && !interrupted; ti++) {
        char *model = NULL;
        if (o->api != API_GENERATE) {
            char merr[LLM_ERR_LEN];
            if (!(model = client_resolve_model(&t[ti], o->timeout_s, merr)))
                fprintf(stderr, "llm_client: %s: sending no model name (%s)\n", t[ti].name, merr);
        }
        int probed = -1;
        for (int wi = 0; wi < nw && !rc && !interrupted; wi++) {
            point_ctx c = {
                o, &t[ti], &w[wi], model, 0, dir, raw, n_points == 1, nt == 1 && nw == 1};
            if (o->api == API_COMPLETIONS && !w[wi].n_prompts) {
                if (probed < 0) probed = probe_token_ids(o, &t[ti], model);
                c.token_ids = probed;
            }
            if (w[wi].n_rates) {
                int cap = w[wi].n_concs ? w[wi].concs[0] : 0;
                for (int k = 0; k < w[wi].n_rates && !rc && !interrupted; k++)
                    rc = run_point(&c, w[wi].rates[k], cap, &pts[np++], err);
            } else {
                int nc = w[wi].n_concs ? w[wi].n_concs : 1;
                for (int k = 0; k < nc && !rc && !interrupted; k++)
                    rc = run_point(&c, 0, w[wi].n_concs ? w[wi].concs[k] : 1, &pts[np++], err);
            }
        }
        free(model);
    }
    sigaction(SIGINT, &old, NULL);
    if (interrupted)
        fprintf(stderr, "llm_client: interrupted: results of the %d point(s) run\n", np);
    fclose(raw);
    if (!rc) rc = client_write_reports(dir, pts, np, err);
    for (int i = 0; i < np; i++) client_summary_free(&pts[i].s);
    free(pts);
    if (!rc) fprintf(stderr, "llm_client: results in %s/\n", dir);
    return rc;
}
