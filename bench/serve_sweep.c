// serve_sweep.c - see serve_sweep.h.
#include "serve_sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_cmds.h"
#include "client_bench.h"
#include "client_http.h"
#include "svg_plot.h"
#include "sweep_figs.h"
#include "sweep_report.h"
#include "util.h"

#define SS_MAX_KEYS 8
#define SS_MAX_POINTS 1024

typedef struct {
    const char *grid, *base_url, *server, *out_dir, *goodput, *concs;
    int in, out, requests, port, warmup;
    double hourly, start_timeout;
    char **fwd; // flags passed on to llm_server
    int nfwd;
} ss_opts;

// The grid: keys (llm_server flags without --) and each one's values as text.
typedef struct {
    int nk;
    char *key[SS_MAX_KEYS];
    cJSON *vals[SS_MAX_KEYS]; // arrays (owned by root)
    cJSON *root;
    int combos;
} ss_grid;

// One measured point: a combination at one concurrency.
typedef struct {
    int combo, conc;
    char label[256]; // the combination's settings
    double out_tps, per_user, req_tps, goodput, ttft_med, tpot_med;
    int completed, failed;
} ss_point;

// The server running now: a SIGINT or SIGTERM outside the bench (which
// handles its own) stops it before this process ends, so no server is left
// holding the port.
static volatile pid_t ss_child;

static void ss_on_signal(int sig) {
    if (ss_child > 0) kill(ss_child, SIGTERM);
    _exit(128 + sig);
}

static const char *ss_value(const ss_grid *g, int combo, int k, char *buf, size_t n) {
    int idx = combo;
    for (int j = g->nk - 1; j > k; j--) idx /= cJSON_GetArraySize(g->vals[j]);
    const cJSON *v = cJSON_GetArrayItem(g->vals[k], idx % cJSON_GetArraySize(g->vals[k]));
    if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else
        snprintf(buf, n, "%g", v ? v->valuedouble : 0);
    return buf;
}

static void ss_label(const ss_grid *g, int combo, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int k = 0; k < g->nk && o < n; k++) {
        char v[64];
        o += (size_t)snprintf(buf + o, n - o, "%s%s=%s", k ? "," : "", g->key[k],
                              ss_value(g, combo, k, v, sizeof v));
    }
}

// Reads the JSON grid: {"flag": [values...] | value, ...}. Returns 0, or -1 with err.
static int ss_grid_load(const char *path, ss_grid *g, char *err) {
    size_t len;
    char *s = llm_read_file(path, &len, err);
    if (!s) return -1;
    g->root = cJSON_Parse(s);
    free(s);
    if (!cJSON_IsObject(g->root))
        return llm_errf(err, "%s: not a JSON object of llm_server flags and value lists", path);
    g->combos = 1;
    for (cJSON *c = g->root->child; c; c = c->next) {
        if (g->nk == SS_MAX_KEYS) return llm_errf(err, "%s: at most %d keys", path, SS_MAX_KEYS);
        if (!cJSON_IsArray(c)) { // a single value: an array of one
            cJSON *a = cJSON_CreateArray();
            cJSON_AddItemToArray(a, cJSON_Duplicate(c, 1));
            a->string = c->string, c->string = NULL; // the key moves to the array
            cJSON_ReplaceItemViaPointer(g->root, c, a);
            c = a;
        }
        int n = cJSON_GetArraySize(c);
        if (n < 1) return llm_errf(err, "%s: \"%s\" has no value", path, c->string);
        for (char *p = c->string; *p; p++)
            if (*p == '_') *p = '-'; // max_num_seqs -> --max-num-seqs
        g->key[g->nk] = c->string, g->vals[g->nk++] = c;
        g->combos *= n;
    }
    if (!g->nk) return llm_errf(err, "%s: no flag to sweep", path);
    return 0;
}

// Starts llm_server with combination `combo` on the port; its output to log.
// Returns the pid, or -1 with err.
static pid_t ss_start(const ss_opts *o, const ss_grid *g, int combo, const char *log, char *err) {
    char **av = calloc((size_t)(o->nfwd + 2 * g->nk + 8), sizeof *av);
    char vals[SS_MAX_KEYS][64], flags[SS_MAX_KEYS][80], port[16];
    if (!av) return llm_errf(err, "out of memory");
    int n = 0;
    av[n++] = (char *)o->server;
    for (int i = 0; i < o->nfwd; i++) av[n++] = o->fwd[i];
    snprintf(port, sizeof port, "%d", o->port);
    av[n++] = "--host", av[n++] = "127.0.0.1", av[n++] = "--port", av[n++] = port;
    for (int k = 0; k < g->nk; k++) {
        snprintf(flags[k], sizeof flags[k], "--%s", g->key[k]);
        av[n++] = flags[k], av[n++] = (char *)ss_value(g, combo, k, vals[k], sizeof vals[k]);
    }
    pid_t pid = fork();
    if (pid > 0) ss_child = pid;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
        execv(o->server, av);
        fprintf(stderr, "bench_engine: %s: %s\n", o->server, strerror(errno));
        _exit(127);
    }
    free(av);
    if (pid < 0) return llm_errf(err, "fork: %s", strerror(errno));
    return pid;
}

// Waits for GET /health to answer 200 (pid, when > 0, must stay alive).
// Returns 0, or -1 with err.
static int ss_wait_health(const char *url, pid_t pid, double timeout_s, const char *log,
                          char *err) {
    double t0 = llm_now();
    while (llm_now() - t0 < timeout_s) {
        int status = 0, st;
        char e[LLM_ERR_LEN];
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
            return llm_errf(err, "llm_server exited (status %d) before /health answered: see %s",
                            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), log);
        char *body = client_get(url, "/health", NULL, 2.0, &status, e);
        free(body);
        if (body && status == 200) return 0;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return llm_errf(err, "%s/health did not answer 200 within %.0f s", url, timeout_s);
}

static void ss_stop(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) { // 30 s, then SIGKILL
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            ss_child = 0;
            return;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ss_child = 0;
}

// A CSV line's fields in place (no quoting in llm_client's summary.csv).
static int csv_split(char *line, char **f, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        p = strchr(p, ',');
        if (!p) break;
        *p++ = 0;
    }
    return n;
}

static double csv_num(char **f, int n, int i) {
    return i >= 0 && i < n && f[i][0] ? strtod(f[i], NULL) : NAN;
}

// The points of one combination from its llm_client summary.csv.
static int ss_read_points(const char *dir, int combo, const char *label, ss_point *pts, int *np,
                          char *err) {
    static const char *const want[] = {"concurrency",     "output_throughput", "request_throughput",
                                       "request_goodput", "completed",         "failed",
                                       "median_ttft_ms",  "median_tpot_ms"};
    char *path = llm_path_join(dir, "summary.csv");
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/summary.csv: %s", dir, strerror(errno));
    char line[8192], *fld[128];
    int idx[8], n = fgets(line, sizeof line, f) ? csv_split(line, fld, 128) : 0;
    for (int w = 0; w < 8; w++) {
        idx[w] = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(fld[i], want[w])) idx[w] = i;
    }
    while (fgets(line, sizeof line, f) && *np < SS_MAX_POINTS) {
        n = csv_split(line, fld, 128);
        ss_point *p = &pts[(*np)++];
        *p = (ss_point){.combo = combo, .conc = (int)csv_num(fld, n, idx[0])};
        snprintf(p->label, sizeof p->label, "%s", label);
        p->out_tps = csv_num(fld, n, idx[1]), p->req_tps = csv_num(fld, n, idx[2]);
        p->goodput = csv_num(fld, n, idx[3]);
        p->completed = (int)csv_num(fld, n, idx[4]), p->failed = (int)csv_num(fld, n, idx[5]);
        p->ttft_med = csv_num(fld, n, idx[6]), p->tpot_med = csv_num(fld, n, idx[7]);
        p->per_user = p->conc > 0 ? p->out_tps / p->conc : NAN;
    }
    fclose(f);
    return 0;
}

// One combination: its server (none with --base-url), the bench, its points.
static int ss_combo(const ss_opts *o, const ss_grid *g, int combo, const char *dir, ss_point *pts,
                    int *np, char *err) {
    char sub[600], log[700], url[300], label[256];
    snprintf(sub, sizeof sub, "%s/combo-%d", dir, combo);
    snprintf(log, sizeof log, "%s/server-%d.log", dir, combo);
    pid_t pid = 0;
    if (o->base_url) {
        snprintf(url, sizeof url, "%s", o->base_url);
        snprintf(label, sizeof label, "server=%s", o->base_url);
    } else {
        ss_label(g, combo, label, sizeof label);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", o->port);
        if ((pid = ss_start(o, g, combo, log, err)) < 0) return -1;
    }
    double t0 = llm_now();
    int rc = ss_wait_health(url, pid, o->start_timeout, log, err);
    double concs[BENCH_MAX_LIST];
    int nc = 0, ic[BENCH_MAX_LIST];
    bench_parse_list(o->concs, concs, &nc);
    for (int i = 0; i < nc; i++) ic[i] = (int)concs[i];
    client_workload w = {.name = "serve-sweep",
                         .requests = o->requests,
                         .concs = ic,
                         .n_concs = nc,
                         .input_len = o->in,
                         .output_len = o->out,
                         .max_tokens = -1,
                         .temperature = 0,
                         .top_p = -1,
                         .burstiness = 1,
                         .ignore_eos = 1,
                         .warmup = o->warmup};
    client_target t = {.name = "server", .base_url = url};
    client_bench_opts bo = {.api = API_COMPLETIONS,
                            .timeout_s = 600,
                            .seed = 1,
                            .out_dir = sub,
                            .quiet = 1,
                            .hourly_cost = o->hourly};
    if (rc == 0 && o->goodput && client_slo_parse(o->goodput, &bo.slo, err)) rc = -1;
    if (rc == 0) {
        fprintf(stderr, "serve-sweep: %s: server ready in %.1f s\n", label, llm_now() - t0);
        rc = client_bench_run(&bo, &t, 1, &w, 1, err);
    }
    ss_stop(pid);
    if (rc == 0) rc = ss_read_points(sub, combo, label, pts, np, err);
    return rc;
}

// ---- results ----

static void ss_front(const ss_point *p, int n, int *front) {
    for (int i = 0; i < n; i++) {
        front[i] = isfinite(p[i].per_user) && isfinite(p[i].out_tps);
        for (int j = 0; j < n && front[i]; j++)
            if (j != i && p[j].per_user >= p[i].per_user && p[j].out_tps >= p[i].out_tps &&
                (p[j].per_user > p[i].per_user || p[j].out_tps > p[i].out_tps))
                front[i] = 0;
    }
}

static int ss_cmp_user(const void *a, const void *b) {
    const ss_point *x = *(ss_point *const *)a, *y = *(ss_point *const *)b;
    return (x->per_user > y->per_user) - (x->per_user < y->per_user);
}

// pareto.svg: every point (a line per combination through its concurrencies,
// each mark labelled c=N), and the front (dashed). yscale: 1 per device, or
// tokens per dollar.
static int ss_plot(const char *dir, const char *file, const char *ylabel, double yscale,
                   const ss_point *p, int n, const int *front, int ncombo, char *err) {
    double *x = calloc((size_t)(2 * n + 1), sizeof *x), *y = calloc((size_t)(2 * n + 1), sizeof *y);
    char(*lab)[16] = calloc((size_t)n + 1, sizeof *lab),
    (*key)[300] = calloc((size_t)n + 1, sizeof *key);
    const char **labs = calloc((size_t)n + 1, sizeof *labs),
               **keys = calloc((size_t)n + 1, sizeof *keys);
    svg_xy *s = calloc((size_t)ncombo + 1, sizeof *s);
    const ss_point **fr = calloc((size_t)n + 1, sizeof *fr);
    int rc = -1;
    if (x && y && lab && key && labs && keys && s && fr) {
        int k = 0, nf = 0;
        for (int c = 0; c < ncombo; c++) {
            s[c] = (svg_xy){.color = c, .x = x + k, .y = y + k, .label = labs + k, .key = keys + k};
            for (int i = 0; i < n; i++) {
                if (p[i].combo != c) continue;
                s[c].name = p[i].label;
                x[k] = p[i].per_user, y[k] = p[i].out_tps * yscale;
                snprintf(lab[k], sizeof lab[k], "c=%d", p[i].conc);
                snprintf(key[k], sizeof key[k], "%s,concurrency=%d", p[i].label, p[i].conc);
                labs[k] = lab[k], keys[k] = key[k], k++, s[c].n++;
            }
        }
        for (int i = 0; i < n; i++)
            if (front[i]) fr[nf++] = &p[i];
        qsort(fr, (size_t)nf, sizeof *fr, ss_cmp_user);
        for (int i = 0; i < nf; i++) x[n + i] = fr[i]->per_user, y[n + i] = fr[i]->out_tps * yscale;
        s[ncombo] = (svg_xy){
            .name = "Pareto front", .color = 7, .dashed = 1, .n = nf, .x = x + n, .y = y + n};
        svg_panel pan = {"a line per server setting through its concurrencies (c=N)", s,
                         ncombo + 1};
        svg_figure fig = {"Pareto front: output tokens/s per user vs per device",
                          "output tokens/s per user (output throughput / concurrency)", ylabel, 0};
        char *path = llm_path_join(dir, file);
        rc = svg_panels(path, &fig, &pan, 1, err);
        free(path);
    } else {
        llm_errf(err, "out of memory");
    }
    free(x), free(y), free(lab), free(key), free(labs), free(keys), free(s), free(fr);
    return rc;
}

static void ss_table(FILE *f, const ss_point *p, int n, const int *front, double hourly) {
    fprintf(f,
            "| settings | concurrency | output tok/s (device) | per user | TTFT med ms | TPOT med "
            "ms | goodput req/s | completed | failed | tok/$ | Pareto |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "| %s | %d | %.1f | %.2f | %.0f | %.1f | ", p[i].label, p[i].conc, p[i].out_tps,
                p[i].per_user, p[i].ttft_med, p[i].tpot_med);
        if (isfinite(p[i].goodput))
            fprintf(f, "%.3f", p[i].goodput);
        else
            fprintf(f, "-");
        fprintf(f, " | %d | %d | ", p[i].completed, p[i].failed);
        if (hourly > 0)
            fprintf(f, "%.0f", p[i].out_tps * 3600 / hourly);
        else
            fprintf(f, "-");
        fprintf(f, " | %s |\n", front[i] ? "yes" : "");
    }
}

static void ss_best(FILE *f, const ss_point *p, int n, const char *goodput) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(p[i].goodput) && (best < 0 || p[i].goodput > p[best].goodput)) best = i;
    if (best >= 0)
        fprintf(f,
                "\nBest setting for the goodput SLO `%s`: **%s** at concurrency %d, %.3f "
                "requests/s within the SLO (%.1f output tokens/s).\n",
                goodput, p[best].label, p[best].conc, p[best].goodput, p[best].out_tps);
    else
        fprintf(f, "\nNo goodput SLO given (--goodput \"ttft:MS tpot:MS\"): no best setting.\n");
}

static int ss_write(const char *dir, const ss_opts *o, const ss_point *p, int n, int ncombo,
                    char *err) {
    int *front = calloc((size_t)n + 1, sizeof *front);
    if (!front) return llm_errf(err, "out of memory");
    ss_front(p, n, front);
    char *path = llm_path_join(dir, "raw.jsonl");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    for (int i = 0; f && i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "settings", p[i].label);
        cJSON_AddNumberToObject(j, "concurrency", p[i].conc);
        cJSON_AddNumberToObject(j, "output_throughput", p[i].out_tps);
        cJSON_AddNumberToObject(j, "output_tok_s_per_user", p[i].per_user);
        cJSON_AddNumberToObject(j, "request_throughput", p[i].req_tps);
        if (isfinite(p[i].goodput)) cJSON_AddNumberToObject(j, "request_goodput", p[i].goodput);
        cJSON_AddNumberToObject(j, "median_ttft_ms", p[i].ttft_med);
        cJSON_AddNumberToObject(j, "median_tpot_ms", p[i].tpot_med);
        cJSON_AddNumberToObject(j, "completed", p[i].completed);
        cJSON_AddNumberToObject(j, "failed", p[i].failed);
        cJSON_AddBoolToObject(j, "pareto", front[i]);
        char *s = cJSON_PrintUnformatted(j);
        fprintf(f, "%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    }
    if (f) fclose(f);
    path = llm_path_join(dir, "report.md");
    f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) {
        free(front);
        return llm_errf(err, "%s/report.md: %s", dir, strerror(errno));
    }
    fprintf(f, "# bench_engine serve-sweep\n\nCommand line, version and date: run.json. Each "
               "setting's llm_client results: combo-N/. Figure: pareto.svg.\n\n");
    ss_table(f, p, n, front, o->hourly);
    ss_best(f, p, n, o->goodput);
    fclose(f);
    path = llm_path_join(dir, "summary.csv");
    f = path ? fopen(path, "w") : NULL;
    free(path);
    if (f) {
        fprintf(f,
                "settings,concurrency,output_throughput,output_tok_s_per_user,request_throughput,"
                "request_goodput,median_ttft_ms,median_tpot_ms,completed,failed,pareto\n");
        for (int i = 0; i < n; i++)
            fprintf(f, "\"%s\",%d,%.3f,%.3f,%.4f,%.4f,%.3f,%.3f,%d,%d,%d\n", p[i].label, p[i].conc,
                    p[i].out_tps, p[i].per_user, p[i].req_tps, p[i].goodput, p[i].ttft_med,
                    p[i].tpot_med, p[i].completed, p[i].failed, front[i]);
        fclose(f);
    }
    int rc = ss_plot(dir, "pareto.svg", "output tokens/s per device", 1, p, n, front, ncombo, err);
    if (rc == 0 && o->hourly > 0)
        rc = ss_plot(dir, "pareto_per_dollar.svg", "output tokens per dollar", 3600 / o->hourly, p,
                     n, front, ncombo, err);
    free(front);
    return rc;
}

// report.html: the run's command line, version and date, the figures, the table.
static int ss_html(const char *dir, const ss_point *p, int n, double hourly, char *err) {
    char *path = llm_path_join(dir, "run.json"), e[LLM_ERR_LEN];
    size_t len;
    char *s = path ? llm_read_file(path, &len, e) : NULL;
    free(path);
    cJSON *run = s ? cJSON_Parse(s) : NULL;
    free(s);
    path = llm_path_join(dir, "report.html");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) {
        cJSON_Delete(run);
        return llm_errf(err, "%s/report.html: %s", dir, strerror(errno));
    }
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>serve-sweep</title>"
               "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:"
               "1px solid #ccc;padding:2px 6px}</style></head><body>\n<h1>bench_engine "
               "serve-sweep</h1>\n<table>\n");
    static const char *const keys[] = {"command", "version", "date"};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(run, keys[i]);
        fprintf(f, "<tr><th>%s</th><td><code>", keys[i]);
        for (const char *c = cJSON_IsString(v) ? v->valuestring : "?"; *c; c++)
            fputs(*c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[]){*c, 0}, f);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</table>\n<p><img src=\"pareto.svg\" alt=\"Pareto front\"></p>\n", f);
    if (hourly > 0) fputs("<p><img src=\"pareto_per_dollar.svg\" alt=\"per dollar\"></p>\n", f);
    fputs("<table>\n<tr><th>settings</th><th>concurrency</th><th>output tok/s</th><th>per user"
          "</th><th>TTFT median</th><th>TPOT median</th><th>completed</th><th>failed</th></tr>\n",
          f);
    for (int i = 0; i < n; i++)
        fprintf(f,
                "<tr><td>%s</td><td>%d</td><td>%.1f tok/s</td><td>%.2f tok/s</td><td>%.0f ms</td>"
                "<td>%.1f ms</td><td>%d</td><td>%d</td></tr>\n",
                p[i].label, p[i].conc, p[i].out_tps, p[i].per_user, p[i].ttft_med, p[i].tpot_med,
                p[i].completed, p[i].failed);
    fputs("</table>\n</body></html>\n", f);
    cJSON_Delete(run);
    return fclose(f) ? llm_errf(err, "%s/report.html: write failed", dir) : 0;
}

// ---- command line ----

static void ss_usage(FILE *f) {
    fprintf(f, "usage: bench_engine serve-sweep --grid FILE.json [options] [llm_server flags]\n"
               "       bench_engine serve-sweep --base-url URL [options]\n"
               "  --grid FILE          {\"max_num_seqs\": [4, 16], \"gpu_memory_utilization\": "
               "[0.5, 0.9], ...}:\n"
               "                       llm_server flags, a server per combination\n"
               "  --base-url URL       measure a server already running (one setting)\n"
               "  --concurrency L      requests in flight, a point each (1,4)\n"
               "  --input-len N --output-len N   synthetic request shape (128, 64)\n"
               "  --num-requests N     per point (16); --warmup N per point (1)\n"
               "  --goodput SLO        \"ttft:MS tpot:MS e2el:MS\": goodput and the best setting\n"
               "  --gpu-hourly-cost X  $/hour: output tokens per dollar (pareto_per_dollar.svg)\n"
               "  --server PATH        llm_server binary (beside bench_engine)\n"
               "  --port N             the servers' port (8231); --start-timeout S (300)\n"
               "  --out DIR            result directory (results/serve-sweep-<timestamp>)\n"
               "  anything else (--model DIR, --synthetic NAME, --device cpu, ...) goes to every "
               "llm_server\n");
}

// Parses argv into o. Returns -1 to go on, else the exit status.
static int ss_parse(int argc, char **argv, ss_opts *o) {
    static const char *const names[] = {
        "--grid",        "--base-url",        "--server",       "--out",          "--goodput",
        "--concurrency", "--input-len",       "--output-len",   "--num-requests", "--port",
        "--warmup",      "--gpu-hourly-cost", "--start-timeout"};
    const char **strs[] = {&o->grid, &o->base_url, &o->server, &o->out_dir, &o->goodput, &o->concs};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            ss_usage(stdout);
            return 0;
        }
        int k = 0;
        while (k < 13 && strcmp(argv[i], names[k])) k++;
        if (k == 13) { // llm_server's
            o->fwd[o->nfwd++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_engine: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (k < 6)
            *strs[k] = v;
        else if (k == 6)
            o->in = (int)strtol(v, &end, 10);
        else if (k == 7)
            o->out = (int)strtol(v, &end, 10);
        else if (k == 8)
            o->requests = (int)strtol(v, &end, 10);
        else if (k == 9)
            o->port = (int)strtol(v, &end, 10);
        else if (k == 10)
            o->warmup = (int)strtol(v, &end, 10);
        else if (k == 11)
            o->hourly = strtod(v, &end);
        else
            o->start_timeout = strtod(v, &end);
        if (end && (*end || end == v)) {
            fprintf(stderr, "bench_engine: %s: not a number: '%s'\n", names[k], v);
            return 2;
        }
    }
    double c[BENCH_MAX_LIST];
    int nc;
    if ((!o->grid) == (!o->base_url) || bench_parse_list(o->concs, c, &nc) || o->in < 1 ||
        o->out < 2 || o->requests < 1 || o->warmup < 0) {
        fprintf(stderr, "bench_engine: serve-sweep needs --grid FILE or --base-url URL (one), "
                        "--concurrency a list of positive numbers, --input-len >= 1, "
                        "--output-len >= 2, --num-requests >= 1\n");
        return 2;
    }
    return -1;
}

int bench_serve_sweep(int argc, char **argv) {
    ss_opts o = {.concs = "1,4",
                 .in = 128,
                 .out = 64,
                 .requests = 16,
                 .port = 8231,
                 .warmup = 1,
                 .start_timeout = 300};
    o.fwd = calloc((size_t)argc, sizeof *o.fwd);
    if (!o.fwd) return 1;
    int rc = ss_parse(argc, argv, &o);
    char server[4096], err[LLM_ERR_LEN], dir[512];
    if (rc < 0 && !o.server) { // llm_server beside this binary
        snprintf(server, sizeof server, "%s", argv[0]);
        char *slash = strrchr(server, '/');
        snprintf(slash ? slash + 1 : server,
                 sizeof server - (size_t)(slash ? slash + 1 - server : 0), "llm_server");
        o.server = server;
    }
    ss_grid g = {.combos = 1};
    if (rc < 0 && o.grid && ss_grid_load(o.grid, &g, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        rc = 2;
    }
    ss_point *pts = rc < 0 ? calloc(SS_MAX_POINTS, sizeof *pts) : NULL;
    if (rc < 0) {
        llm_run_dir(dir, sizeof dir, o.out_dir, "serve-sweep-");
        if (!pts || client_global_init(err) || sweep_mkdirs(dir) ||
            sweep_write_run_info(dir, argc, argv, err)) {
            fprintf(stderr, "bench_engine: %s: cannot set up (%s)\n", dir, strerror(errno));
            rc = 1;
        }
    }
    int np = 0;
    double t0 = llm_now();
    signal(SIGINT, ss_on_signal);
    signal(SIGTERM, ss_on_signal);
    for (int c = 0; rc < 0 && c < g.combos; c++) {
        if (ss_combo(&o, &g, c, dir, pts, &np, err)) {
            fprintf(stderr, "bench_engine: serve-sweep: setting %d of %d: %s\n", c + 1, g.combos,
                    err);
            rc = 1;
            break;
        }
        double el = llm_now() - t0;
        fprintf(stderr, "serve-sweep: setting %d of %d done, %.0f s elapsed, ETA %.0f s\n", c + 1,
                g.combos, el, el / (c + 1) * (g.combos - c - 1));
    }
    if (rc < 0 &&
        (ss_write(dir, &o, pts, np, g.combos, err) || ss_html(dir, pts, np, o.hourly, err))) {
        fprintf(stderr, "bench_engine: %s\n", err);
        rc = 1;
    }
    if (rc < 0) {
        fprintf(stderr, "bench_engine: serve-sweep: %d point(s) of %d setting(s) in %s/\n", np,
                g.combos, dir);
        rc = 0;
    }
    cJSON_Delete(g.root);
    free(pts);
    free(o.fwd);
    return rc;
}
