// sweep_figs.c - see sweep_figs.h.
#include "sweep_figs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svg_plot.h"
#include "util.h"

#ifndef LLM_VERSION
#define LLM_VERSION "unknown"
#endif

// ---- the dimensions and measures of raw.jsonl ----

// Grid dimensions: any raw.jsonl field that names a setting of the run. One
// with a single value in a run is shown in the header, one with several is an
// axis, a series or a panel of every figure. batch and input last: a group's
// order is then batch-major within a panel.
enum { D_UTIL, D_KV, D_DTYPE, D_OUT, D_SEQS, D_MBT, D_BLOCK, D_BATCH, D_INPUT, ND };
static const char *const dim_key[ND] = {
    "gpu_memory_utilization", "kv_cache_dtype", "dtype", "output", "max_num_seqs",
    "max_num_batched_tokens", "block_size",     "batch", "input"};
static const char *const dim_lab[ND] = {"util",   "KV",           "dtype",
                                        "output", "max_num_seqs", "max_batched_tokens",
                                        "block",  "batch",        "input"};

enum { M_DTPS, M_TPOT, M_TTFT, M_PTPS, M_STEP, M_MEAS, M_PRED, M_KVT, M_TOT, M_PRE, NM };
static const char *const met_key[NM] = {
    "decode_tok_s",          "tpot_median_ms", "ttft_median_ms",           "prefill_tok_s",
    "decode_step_median_ms", "measured_bytes", "predicted_resident_bytes", "kv_tokens",
    "total_tok_s",           "preemptions"};

#define MAXVAL 64
#define KEYLEN 320

// One grid point: its runs' measures.
typedef struct {
    int vi[ND];      // value index per dimension
    int n;           // measured runs
    double *run[NM]; // [n] per measure
    double med[NM], lo[NM], hi[NM];
    int noisy;        // 1: spread across repeats; 2: the same work across utilizations
    char key[KEYLEN]; // dim=value,... (every dimension: the marks' data-key)
    char blabel[16];  // "b=4"
} group;

typedef struct {
    char *val[ND][MAXVAL];
    double num[ND][MAXVAL];
    int nv[ND];
    group *g;
    int ng, cap;
    int rows, bad;
    char model[512], device[300], arch[64];
    cJSON *run; // run.json, or NULL
} rep;

static int dim_value(rep *R, int d, const cJSON *v) {
    char buf[64];
    if (cJSON_IsString(v))
        snprintf(buf, sizeof buf, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, sizeof buf, "%g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, sizeof buf, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else
        buf[0] = 0;
    for (int i = 0; i < R->nv[d]; i++)
        if (!strcmp(R->val[d][i], buf)) return i;
    if (R->nv[d] == MAXVAL) return MAXVAL - 1;
    R->val[d][R->nv[d]] = strdup(buf);
    R->num[d][R->nv[d]] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    return R->nv[d]++;
}

static void copy_str(char *dst, size_t n, const cJSON *j, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (cJSON_IsString(v) && !dst[0]) snprintf(dst, n, "%s", v->valuestring);
}

// One raw.jsonl record into its group.
static int add_row(rep *R, const cJSON *j) {
    int vi[ND];
    for (int d = 0; d < ND; d++)
        vi[d] = dim_value(R, d, cJSON_GetObjectItemCaseSensitive(j, dim_key[d]));
    copy_str(R->model, sizeof R->model, j, "model");
    copy_str(R->device, sizeof R->device, j, "device");
    copy_str(R->arch, sizeof R->arch, j, "arch");
    int k = 0;
    while (k < R->ng && memcmp(R->g[k].vi, vi, sizeof vi)) k++;
    if (k == R->ng) {
        if (R->ng == R->cap) {
            int nc = R->cap ? 2 * R->cap : 16;
            group *ng = realloc(R->g, sizeof *ng * (size_t)nc);
            if (!ng) return -1;
            R->g = ng, R->cap = nc;
        }
        memset(&R->g[k], 0, sizeof R->g[k]);
        memcpy(R->g[k].vi, vi, sizeof vi);
        R->ng++;
    }
    group *g = &R->g[k];
    for (int m = 0; m < NM; m++) {
        double *nr = realloc(g->run[m], sizeof *nr * (size_t)(g->n + 1));
        if (!nr) return -1;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, met_key[m]);
        nr[g->n] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        g->run[m] = nr;
    }
    g->n++;
    R->rows++;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Each dimension's values in order (numbers ascending, text as it sorts), the
// groups' indices remapped.
static void sort_values(rep *R) {
    for (int d = 0; d < ND; d++) {
        int n = R->nv[d], order[MAXVAL], map[MAXVAL];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = 1; i < n; i++) // insertion sort: a handful of values
            for (int k = i; k > 0; k--) {
                int a = order[k - 1], b = order[k];
                double x = R->num[d][a], y = R->num[d][b];
                int gt =
                    isfinite(x) && isfinite(y) ? x > y : strcmp(R->val[d][a], R->val[d][b]) > 0;
                if (!gt) break;
                order[k - 1] = b, order[k] = a;
            }
        char *val[MAXVAL];
        double num[MAXVAL];
        for (int i = 0; i < n; i++) {
            val[i] = R->val[d][order[i]], num[i] = R->num[d][order[i]];
            map[order[i]] = i;
        }
        memcpy(R->val[d], val, sizeof(char *) * (size_t)n);
        memcpy(R->num[d], num, sizeof(double) * (size_t)n);
        for (int k = 0; k < R->ng; k++) R->g[k].vi[d] = map[R->g[k].vi[d]];
    }
}

static int cmp_group(const void *a, const void *b) {
    const group *x = a, *y = b;
    for (int d = 0; d < ND; d++)
        if (x->vi[d] != y->vi[d]) return x->vi[d] - y->vi[d];
    return 0;
}

// Medians, spreads, keys and flags of every group.
static void finish_groups(rep *R) {
    qsort(R->g, (size_t)R->ng, sizeof *R->g, cmp_group);
    for (int k = 0; k < R->ng; k++) {
        group *g = &R->g[k];
        for (int m = 0; m < NM; m++) {
            double *v = malloc(sizeof *v * (size_t)g->n);
            int n = 0;
            for (int i = 0; v && i < g->n; i++)
                if (isfinite(g->run[m][i])) v[n++] = g->run[m][i];
            if (n) qsort(v, (size_t)n, sizeof *v, cmp_double);
            g->med[m] = !n ? NAN : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
            g->lo[m] = n ? v[0] : NAN, g->hi[m] = n ? v[n - 1] : NAN;
            free(v);
        }
        static const int timed[] = {M_STEP, M_TPOT, M_TTFT};
        for (int t = 0; t < 3; t++) {
            int m = timed[t];
            if (g->n > 1 && g->med[m] > 0 && (g->hi[m] - g->lo[m]) / g->med[m] > SWEEP_NOISY_SPREAD)
                g->noisy = 1;
        }
        size_t o = 0;
        for (int d = 0; d < ND && o < sizeof g->key; d++)
            o += (size_t)snprintf(g->key + o, sizeof g->key - o, "%s%s=%s", d ? "," : "",
                                  dim_key[d], R->val[d][g->vi[d]]);
        snprintf(g->blabel, sizeof g->blabel, "b=%s", R->val[D_BATCH][g->vi[D_BATCH]]);
    }
    // the same work (all but the utilization alike) should take the same time
    for (int a = 0; a < R->ng; a++) {
        double lo = INFINITY, hi = 0;
        for (int b = 0; b < R->ng; b++) {
            int same = 1;
            for (int d = 0; d < ND; d++)
                if (d != D_UTIL && R->g[a].vi[d] != R->g[b].vi[d]) same = 0;
            double s = R->g[b].med[M_STEP];
            if (!same || !isfinite(s)) continue;
            if (s < lo) lo = s;
            if (s > hi) hi = s;
        }
        if (hi > 1.5 * lo && !R->g[a].noisy) R->g[a].noisy = 2;
    }
}

static void rep_free(rep *R) {
    for (int d = 0; d < ND; d++)
        for (int i = 0; i < R->nv[d]; i++) free(R->val[d][i]);
    for (int k = 0; k < R->ng; k++)
        for (int m = 0; m < NM; m++) free(R->g[k].run[m]);
    free(R->g);
    cJSON_Delete(R->run);
}

// raw.jsonl (and run.json) of dir into R. Returns 0, or -1 with err.
static int rep_load(rep *R, const char *dir, char *err) {
    char *path = llm_path_join(dir, "raw.jsonl");
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/raw.jsonl: %s", dir, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '\n') continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "batch");
        if (!j || !cJSON_IsNumber(b))
            R->bad++; // a line cut short by a kill, or not a run's record
        else if (add_row(R, j)) {
            cJSON_Delete(j);
            free(line);
            fclose(f);
            return llm_errf(err, "out of memory");
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (!R->ng) return llm_errf(err, "%s/raw.jsonl: no measured run", dir);
    sort_values(R);
    finish_groups(R);
    path = llm_path_join(dir, "run.json");
    size_t len;
    char *s = path && llm_file_exists(path) ? llm_read_file(path, &len, err) : NULL;
    free(path);
    R->run = s ? cJSON_Parse(s) : NULL;
    free(s);
    return 0;
}

// ---- panels: one per combination of the varying dimensions off the axes ----

// The panel of each group (panel_of[ng]) for a figure whose axes, series and
// point labels use dimensions a, b and c (-1: none), and each panel's title. Returns the
// number of panels.
static int make_panels(const rep *R, int a, int b, int c, int *panel_of, char (*titles)[160],
                       int max) {
    int np = 0, first[256];
    for (int k = 0; k < R->ng; k++) {
        int p = 0;
        for (; p < np; p++) {
            int same = 1;
            for (int d = 0; d < ND; d++)
                if (d != a && d != b && d != c && R->nv[d] > 1 &&
                    R->g[first[p]].vi[d] != R->g[k].vi[d])
                    same = 0;
            if (same) break;
        }
        if (p == np && np < max && np < 256) {
            first[np] = k;
            size_t o = 0;
            titles[np][0] = 0;
            for (int d = 0; d < ND; d++)
                if (d != a && d != b && d != c && R->nv[d] > 1)
                    o += (size_t)snprintf(titles[np] + o, o < 160 ? 160 - o : 0, "%s%s=%s",
                                          o ? ", " : "", dim_lab[d], R->val[d][R->g[k].vi[d]]);
            if (!titles[np][0]) snprintf(titles[np], 160, "every point");
            np++;
        }
        panel_of[k] = p < np ? p : np - 1;
    }
    return np;
}

// A line figure: y = measure ym (and a dashed ym2 beside it, -1: none)
// against dimension xd, or against measure xm when xd < 0; one series per
// value of dimension sd; one panel per combination of the other varying
// dimensions.
typedef struct {
    const char *file, *title, *xlabel, *ylabel;
    int xd, xm, ym, ym2, sd, label;
    double xscale, yscale;
    const char *name1, *name2; // series name suffixes of ym and ym2
} line_fig;

// Buffers of one figure: per panel, per series, ng points.
typedef struct {
    svg_panel *panels;
    svg_xy *series;
    double *buf;
    const char **keys, **labels;
    int *noisy;
    char (*names)[96];
    char (*titles)[160];
} fig_mem;

static void fig_mem_free(fig_mem *m) {
    free(m->panels), free(m->series), free(m->buf), free(m->keys), free(m->labels);
    free(m->noisy), free(m->names), free(m->titles);
}

static int fig_mem_alloc(fig_mem *m, int npan, int nser, int ng) {
    size_t ns = (size_t)npan * (size_t)nser, pts = ns * (size_t)ng;
    m->panels = calloc((size_t)npan, sizeof *m->panels);
    m->series = calloc(ns, sizeof *m->series);
    m->buf = calloc(pts * 4, sizeof *m->buf);
    m->keys = calloc(pts, sizeof *m->keys);
    m->labels = calloc(pts, sizeof *m->labels);
    m->noisy = calloc(pts, sizeof *m->noisy);
    m->names = calloc((size_t)nser, sizeof *m->names);
    m->titles = calloc((size_t)(npan > 0 ? npan : 1), sizeof *m->titles);
    return m->panels && m->series && m->buf && m->keys && m->labels && m->noisy && m->names &&
                   m->titles
               ? 0
               : -1;
}

// Series s of panel p with its point arrays.
static svg_xy *fig_series(fig_mem *m, int p, int s, int nser, int ng) {
    size_t i = (size_t)p * (size_t)nser + (size_t)s, o = i * (size_t)ng;
    svg_xy *q = &m->series[i];
    if (!q->x) {
        q->x = m->buf + 4 * o;
        q->y = m->buf + 4 * o + ng;
        q->ylo = m->buf + 4 * o + 2 * ng;
        q->yhi = m->buf + 4 * o + 3 * ng;
        q->key = m->keys + o, q->label = m->labels + o, q->noisy = m->noisy + o;
        q->name = m->names[s];
    }
    return q;
}

static void add_point(svg_xy *q, const group *g, double x, int ym, double ys, int label) {
    int i = q->n++;
    ((double *)q->x)[i] = x;
    ((double *)q->y)[i] = g->med[ym] * ys;
    ((double *)q->ylo)[i] = g->lo[ym] * ys;
    ((double *)q->yhi)[i] = g->hi[ym] * ys;
    ((const char **)q->key)[i] = g->key;
    ((const char **)q->label)[i] = label ? g->blabel : NULL;
    ((int *)q->noisy)[i] = g->noisy;
}

static int line_figure(const rep *R, const char *dir, const line_fig *lf, char *err) {
    int *panel_of = malloc(sizeof(int) * (size_t)R->ng), nv = R->nv[lf->sd];
    int nser = nv * (lf->ym2 >= 0 ? 2 : 1);
    fig_mem m = {0};
    char(*titles)[160] = calloc(256, sizeof *titles);
    int np = panel_of && titles
                 ? make_panels(R, lf->xd, lf->sd, lf->label ? D_BATCH : -1, panel_of, titles, 256)
                 : 0;
    if (!panel_of || !titles || fig_mem_alloc(&m, np, nser, R->ng)) {
        free(panel_of), free(titles), fig_mem_free(&m);
        return llm_errf(err, "out of memory");
    }
    for (int s = 0; s < nser; s++)
        snprintf(m.names[s], sizeof m.names[s], "%s=%s%s", dim_lab[lf->sd], R->val[lf->sd][s % nv],
                 s < nv ? (lf->name1 ? lf->name1 : "") : lf->name2);
    for (int k = 0; k < R->ng; k++) {
        const group *g = &R->g[k];
        int sv = g->vi[lf->sd];
        double x = lf->xd >= 0 ? R->num[lf->xd][g->vi[lf->xd]] : g->med[lf->xm] * lf->xscale;
        svg_xy *q = fig_series(&m, panel_of[k], sv, nser, R->ng);
        q->color = sv;
        add_point(q, g, x, lf->ym, lf->yscale, lf->label);
        if (lf->ym2 >= 0) {
            q = fig_series(&m, panel_of[k], nv + sv, nser, R->ng);
            q->color = sv, q->dashed = 1;
            add_point(q, g, x, lf->ym2, lf->yscale, 0);
        }
    }
    for (int p = 0; p < np; p++)
        m.panels[p] = (svg_panel){titles[p], m.series + (size_t)p * (size_t)nser, nser};
    for (size_t i = 0; i < (size_t)np * (size_t)nser; i++)
        if (!m.series[i].name) m.series[i].name = m.names[i % (size_t)nser];
    char *path = llm_path_join(dir, lf->file);
    svg_figure f = {lf->title, lf->xlabel, lf->ylabel, 0};
    int rc = svg_panels(path, &f, m.panels, np, err);
    free(path), free(panel_of), free(titles);
    fig_mem_free(&m);
    return rc;
}

// Predicted resident memory against measured, every point, one series per
// utilization, with the +-5% band the memory model is held to.
static int memory_scatter(const rep *R, const char *dir, char *err) {
    const double MiB = 1.0 / (1024 * 1024);
    int nv = R->nv[D_UTIL];
    fig_mem m = {0};
    if (fig_mem_alloc(&m, 1, nv, R->ng)) {
        fig_mem_free(&m);
        return llm_errf(err, "out of memory");
    }
    for (int s = 0; s < nv; s++)
        snprintf(m.names[s], sizeof m.names[s], "util=%s", R->val[D_UTIL][s]);
    for (int k = 0; k < R->ng; k++) {
        const group *g = &R->g[k];
        svg_xy *q = fig_series(&m, 0, g->vi[D_UTIL], nv, R->ng);
        q->color = g->vi[D_UTIL], q->markers_only = 1;
        add_point(q, g, g->med[M_MEAS] * MiB, M_PRED, MiB, 0);
    }
    for (int s = 0; s < nv; s++)
        if (!m.series[s].name) m.series[s].name = m.names[s];
    m.panels[0] = (svg_panel){"every point (band: predicted within 5% of measured)", m.series, nv};
    char *path = llm_path_join(dir, "memory_predicted_vs_measured.svg");
    svg_figure f = {"Predicted resident memory vs measured", "measured MiB (RSS growth)",
                    "predicted resident MiB", 0.05};
    int rc = svg_panels(path, &f, m.panels, 1, err);
    free(path);
    fig_mem_free(&m);
    return rc;
}

// KV tokens the pool holds against utilization, a series per KV dtype (one
// value per engine: the first point of each).
static int kv_capacity(const rep *R, const char *dir, char *err) {
    int nv = R->nv[D_KV], nu = R->nv[D_UTIL];
    fig_mem m = {0};
    if (fig_mem_alloc(&m, 1, nv, nu)) {
        fig_mem_free(&m);
        return llm_errf(err, "out of memory");
    }
    for (int s = 0; s < nv; s++) snprintf(m.names[s], sizeof m.names[s], "KV=%s", R->val[D_KV][s]);
    for (int s = 0; s < nv; s++)
        for (int u = 0; u < nu; u++)
            for (int k = 0; k < R->ng; k++) {
                const group *g = &R->g[k];
                if (g->vi[D_KV] != s || g->vi[D_UTIL] != u) continue;
                svg_xy *q = fig_series(&m, 0, s, nv, nu);
                q->color = s;
                add_point(q, g, R->num[D_UTIL][u], M_KVT, 1, 0);
                ((const char **)q->key)[q->n - 1] = NULL; // an engine's figure, not a point's
                ((int *)q->noisy)[q->n - 1] = 0;
                break;
            }
    for (int s = 0; s < nv; s++)
        if (!m.series[s].name) m.series[s].name = m.names[s];
    m.panels[0] = (svg_panel){"KV tokens the pool holds", m.series, nv};
    char *path = llm_path_join(dir, "kv_capacity_vs_util.svg");
    svg_figure f = {"KV cache capacity vs memory utilization", "gpu_memory_utilization",
                    "KV tokens", 0};
    int rc = svg_panels(path, &f, m.panels, 1, err);
    free(path);
    fig_mem_free(&m);
    return rc;
}

// Heat maps of measure ym over batch x input, one per panel.
static int heat_figure(const rep *R, const char *dir, const char *file, const char *title, int ym,
                       char *err) {
    int nx = R->nv[D_BATCH], ny = R->nv[D_INPUT], *panel_of = malloc(sizeof(int) * (size_t)R->ng);
    char(*titles)[160] = calloc(256, sizeof *titles);
    int np = panel_of && titles ? make_panels(R, D_BATCH, D_INPUT, -1, panel_of, titles, 256) : 0;
    size_t cells = (size_t)np * (size_t)nx * (size_t)ny;
    double *v = malloc(sizeof *v * (cells + 1));
    const char **keys = calloc(cells + 1, sizeof *keys);
    int *noisy = calloc(cells + 1, sizeof *noisy);
    svg_heat *hp = calloc((size_t)np + 1, sizeof *hp);
    if (!panel_of || !titles || !v || !keys || !noisy || !hp) {
        free(panel_of), free(titles), free(v), free(keys), free(noisy), free(hp);
        return llm_errf(err, "out of memory");
    }
    for (size_t i = 0; i < cells; i++) v[i] = NAN;
    for (int k = 0; k < R->ng; k++) {
        const group *g = &R->g[k];
        size_t c = (size_t)panel_of[k] * (size_t)(nx * ny) +
                   (size_t)(g->vi[D_INPUT] * nx + g->vi[D_BATCH]);
        v[c] = g->med[ym], keys[c] = g->key, noisy[c] = g->noisy;
    }
    for (int p = 0; p < np; p++) {
        size_t o = (size_t)p * (size_t)(nx * ny);
        hp[p] = (svg_heat){titles[p], v + o, keys + o, noisy + o};
    }
    char *path = llm_path_join(dir, file);
    int rc = svg_heatmaps(path, title, "batch size", "input tokens",
                          (const char *const *)R->val[D_BATCH], nx,
                          (const char *const *)R->val[D_INPUT], ny, hp, np, err);
    free(path), free(panel_of), free(titles), free(v), free(keys), free(noisy), free(hp);
    return rc;
}

static const char *const figure_files[] = {"throughput_vs_latency.svg",
                                           "ttft_vs_input.svg",
                                           "prefill_vs_input.svg",
                                           "memory_vs_batch.svg",
                                           "memory_predicted_vs_measured.svg",
                                           "heat_decode_tok_s.svg",
                                           "heat_tpot.svg",
                                           "latency_vs_batch.svg",
                                           "kv_capacity_vs_util.svg"};
#define NFIG ((int)(sizeof figure_files / sizeof *figure_files))

static int write_figures(const rep *R, const char *dir, char *err) {
    const double MiB = 1.0 / (1024 * 1024);
    const line_fig lines[] = {
        {figure_files[0], "Decode throughput vs time per output token (a point per batch size)",
         "TPOT median, ms", "decode tokens/s", -1, M_TPOT, M_DTPS, -1, D_INPUT, 1, 1, 1, NULL,
         NULL},
        {figure_files[1], "Time to first token vs input length", "input tokens", "TTFT median, ms",
         D_INPUT, 0, M_TTFT, -1, D_BATCH, 0, 1, 1, NULL, NULL},
        {figure_files[2], "Prefill throughput vs input length", "input tokens", "prefill tokens/s",
         D_INPUT, 0, M_PTPS, -1, D_BATCH, 0, 1, 1, NULL, NULL},
        {figure_files[3], "Memory vs batch size: measured (solid) and predicted resident (dashed)",
         "batch size", "MiB", D_BATCH, 0, M_MEAS, M_PRED, D_INPUT, 0, 1, MiB, " measured",
         " predicted"},
        {figure_files[7], "Decode step latency (median) vs batch size", "batch size",
         "decode step, ms", D_BATCH, 0, M_STEP, -1, D_INPUT, 0, 1, 1, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        if (line_figure(R, dir, &lines[i], err)) return -1;
    if (memory_scatter(R, dir, err) || kv_capacity(R, dir, err) ||
        heat_figure(R, dir, figure_files[5], "Decode tokens/s over batch size x input length",
                    M_DTPS, err) ||
        heat_figure(R, dir, figure_files[6], "TPOT median (ms) over batch size x input length",
                    M_TPOT, err))
        return -1;
    return 0;
}

// ---- report.html ----

static void html_text(FILE *f, const char *s) {
    for (; s && *s; s++)
        fputs(*s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : (char[]){*s, 0}, f);
}

// A duration in milliseconds as people read it.
static void fmt_ms(double ms, char *b, size_t n) {
    if (!isfinite(ms))
        snprintf(b, n, "-");
    else if (ms >= 1000)
        snprintf(b, n, "%.2f s", ms / 1e3);
    else
        snprintf(b, n, ms >= 100 ? "%.0f ms" : ms >= 10 ? "%.1f ms" : "%.2f ms", ms);
}

static void fmt_rate(double v, char *b, size_t n) {
    if (!isfinite(v))
        snprintf(b, n, "-");
    else if (v >= 1e4)
        snprintf(b, n, "%.1fk tok/s", v / 1e3);
    else
        snprintf(b, n, "%.1f tok/s", v);
}

static void fmt_count(double v, char *b, size_t n) {
    long long x = (long long)llround(v);
    if (!isfinite(v))
        snprintf(b, n, "-");
    else if (x >= 1000000)
        snprintf(b, n, "%lld,%03lld,%03lld", x / 1000000, x / 1000 % 1000, x % 1000);
    else if (x >= 1000)
        snprintf(b, n, "%lld,%03lld", x / 1000, x % 1000);
    else
        snprintf(b, n, "%lld", x);
}

// A measure's median with its spread across repeats (half the range, % of the median).
static void cell(FILE *f, const group *g, int m, void (*fmt)(double, char *, size_t)) {
    char b[48];
    fmt(g->med[m], b, sizeof b);
    fprintf(f, "<td>%s", b);
    if (g->n > 1 && g->med[m] > 0)
        fprintf(f, " <small>&plusmn;%.0f%%</small>", 50 * (g->hi[m] - g->lo[m]) / g->med[m]);
    fputs("</td>", f);
}

static void html_head(FILE *f, const rep *R) {
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>bench_engine sweep"
               "</title><style>body{font-family:sans-serif;max-width:1400px}"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
               "text-align:right}th{background:#f4f4f4}code{white-space:pre-wrap}"
               "tr.noisy td{background:#fdecea}</style></head><body>\n"
               "<h1>bench_engine sweep</h1>\n<table class=\"meta\">\n");
    static const char *const run_keys[][2] = {
        {"command", "command line"}, {"version", "version"}, {"date", "date (UTC)"}};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(R->run, run_keys[i][0]);
        fprintf(f, "<tr><th>%s</th><td style=\"text-align:left\"><code>", run_keys[i][1]);
        html_text(f, cJSON_IsString(v) ? v->valuestring : "(not recorded: no run.json)");
        fputs("</code></td></tr>\n", f);
    }
    const char *rows[][2] = {{"model", R->model}, {"architecture", R->arch}, {"device", R->device}};
    for (int i = 0; i < 3; i++) {
        fprintf(f, "<tr><th>%s</th><td style=\"text-align:left\">", rows[i][0]);
        html_text(f, rows[i][1]);
        fputs("</td></tr>\n", f);
    }
    fputs("<tr><th>fixed settings</th><td style=\"text-align:left\">", f);
    for (int d = 0, o = 0; d < ND; d++)
        if (R->nv[d] == 1 && R->val[d][0][0]) {
            fprintf(f, "%s%s = ", o++ ? ", " : "", dim_key[d]);
            html_text(f, R->val[d][0]);
        }
    fprintf(f,
            "</td></tr>\n<tr><th>points</th><td style=\"text-align:left\">%d grid points, %d "
            "measured runs",
            R->ng, R->rows);
    if (R->bad) fprintf(f, " (%d raw.jsonl line(s) that did not parse were skipped)", R->bad);
    fputs("</td></tr>\n</table>\n", f);
}

static void html_table(FILE *f, const rep *R) {
    fputs("<h2>Every point</h2>\n<p>Medians over the repeats; &plusmn; is half the range across "
          "them. Rows in red are noisy: a timing whose range exceeds 25% of its median, or the "
          "same work (every setting but the utilization alike) whose decode step differs more "
          "than 1.5x between utilizations (another process on the device).</p>\n<table>\n<tr>",
          f);
    for (int d = 0; d < ND; d++)
        if (R->nv[d] > 1 || d >= D_BATCH || d == D_UTIL) fprintf(f, "<th>%s</th>", dim_lab[d]);
    fputs("<th>runs</th><th>decode</th><th>TPOT</th><th>TTFT</th><th>prefill</th><th>decode step"
          "</th><th>measured</th><th>predicted resident</th><th>diff</th><th>KV tokens</th>"
          "<th>preempt</th><th>noisy</th></tr>\n",
          f);
    for (int k = 0; k < R->ng; k++) {
        const group *g = &R->g[k];
        char a[32], b[32];
        fprintf(f, "<tr%s>", g->noisy ? " class=\"noisy\"" : "");
        for (int d = 0; d < ND; d++)
            if (R->nv[d] > 1 || d >= D_BATCH || d == D_UTIL) {
                fputs("<td>", f);
                html_text(f, R->val[d][g->vi[d]]);
                fputs("</td>", f);
            }
        fprintf(f, "<td>%d</td>", g->n);
        cell(f, g, M_DTPS, fmt_rate);
        cell(f, g, M_TPOT, fmt_ms);
        cell(f, g, M_TTFT, fmt_ms);
        cell(f, g, M_PTPS, fmt_rate);
        cell(f, g, M_STEP, fmt_ms);
        double meas = g->med[M_MEAS], pred = g->med[M_PRED];
        fprintf(f, "<td>%s</td><td>%s</td><td>%+.1f%%</td>",
                llm_fmt_bytes(isfinite(meas) ? (uint64_t)meas : 0, a, sizeof a),
                llm_fmt_bytes(isfinite(pred) ? (uint64_t)pred : 0, b, sizeof b),
                meas > 0 ? (pred - meas) / meas * 100 : NAN);
        fmt_count(g->med[M_KVT], a, sizeof a);
        fprintf(f, "<td>%s</td><td>%.0f</td><td>%s</td></tr>\n", a, g->hi[M_PRE],
                g->noisy == 1   ? "repeats"
                : g->noisy == 2 ? "across util"
                                : "");
    }
    fputs("</table>\n", f);
}

// An SVG file's document inline (without its XML declaration).
static void html_inline_svg(FILE *f, const char *dir, const char *file) {
    char *path = llm_path_join(dir, file), err[LLM_ERR_LEN];
    size_t len;
    char *s = path ? llm_read_file(path, &len, err) : NULL;
    free(path);
    const char *body = s ? strstr(s, "<svg") : NULL;
    fprintf(f, "<figure id=\"%.*s\">\n", (int)(strlen(file) - 4), file);
    if (body) fputs(body, f);
    fprintf(f, "<figcaption><a href=\"%s\">%s</a></figcaption></figure>\n", file, file);
    free(s);
}

static int write_html(const rep *R, const char *dir, char *err) {
    char *path = llm_path_join(dir, "report.html");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/report.html: %s", dir, strerror(errno));
    html_head(f, R);
    fputs("<p>Every grid dimension with more than one value is an axis, a series or a panel "
          "(small multiples: one panel per value of the dimensions off the axes). Whiskers: the "
          "range across repeats; a red ring: a noisy point. Every measured point is a mark "
          "(<code>class=\"pt\"</code>, its settings in <code>data-key</code>).</p>\n",
          f);
    for (int i = 0; i < NFIG; i++) html_inline_svg(f, dir, figure_files[i]);
    html_table(f, R);
    fputs("</body></html>\n", f);
    if (fclose(f)) return llm_errf(err, "%s/report.html: write failed", dir);
    return 0;
}

// ---- entry points ----

int sweep_write_run_info(const char *dir, int argc, char *const *argv, char *err) {
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) * 4 + 3;
    char *cmd = calloc(n, 1);
    if (!cmd) return llm_errf(err, "out of memory");
    size_t o = 0;
    for (int i = 0; i < argc; i++) { // each argument quoted when the shell would split it
        int q = !argv[i][0] || strpbrk(argv[i], " \t'\"$*?;&|<>()\\`") != NULL;
        if (i) cmd[o++] = ' ';
        if (q) cmd[o++] = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'')
                memcpy(cmd + o, "'\\''", 4), o += 4;
            else
                cmd[o++] = *c;
        }
        if (q) cmd[o++] = '\'';
    }
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", cmd);
    cJSON_AddStringToObject(j, "version", LLM_VERSION);
    cJSON_AddStringToObject(j, "date", date);
    free(cmd);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    char *path = llm_path_join(dir, "run.json");
    FILE *f = path && s ? fopen(path, "w") : NULL;
    free(path);
    int rc = f && fprintf(f, "%s\n", s) > 0 ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    free(s);
    return rc ? llm_errf(err, "%s/run.json: cannot write", dir) : 0;
}

int sweep_figures(const char *dir, int *n_points, char *err) {
    rep R = {0};
    int rc = rep_load(&R, dir, err);
    if (rc == 0) rc = write_figures(&R, dir, err);
    if (rc == 0) rc = write_html(&R, dir, err);
    if (n_points) *n_points = R.ng;
    rep_free(&R);
    return rc;
}
