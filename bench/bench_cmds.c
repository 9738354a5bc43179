// bench_cmds.c - bench_engine's subcommands (bench_cmds.h).
#include "bench_cmds.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_plan.h"
#include "bench_run.h"
#include "engine_args.h"
#include "bench_stats.h"
#include "sweep_figs.h"
#include "sweep_report.h"
#include "util.h"

int bench_parse_list(const char *s, double *v, int *n) {
    *n = 0;
    while (*s && *n < BENCH_MAX_LIST) {
        char *end;
        v[(*n)++] = strtod(s, &end);
        if (end == s || !(v[*n - 1] > 0)) return -1;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *n && !*s ? 0 : -1;
}

int bench_parse_engine_list(const char *flag, const char *s, int *v, int *n, char *err) {
    *n = 0;
    if (!s || !*s) return llm_errf(err, "--%s needs a value", flag);
    while (*s) {
        const char *comma = strchr(s, ',');
        const size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char item[32];
        if (*n == BENCH_MAX_LIST || len >= sizeof item)
            return llm_errf(err, "--%s: too many values or one too long", flag);
        memcpy(item, s, len);
        item[len] = '\0';
        engine_config c = engine_config_default();
        int used;
        if (engine_args_apply(&c, flag, item, &used, err) <= 0) return -1;
        v[(*n)++] = flag[0] == 'd' ? c.dtype : c.kv_cache_dtype;
        s += len;
        if (*s == ',' && !*++s) return llm_errf(err, "--%s: a list ends with ','", flag);
    }
    return 0;
}

// ---- sweep ----

// Progress: a line redrawn in place on a terminal; in a pipe or a log, one
// line per finished point (point i of n, elapsed, ETA).
typedef struct {
    int tty, n, done;
    double t0;
} progress;

static void progress_point(progress *g, const char *what) {
    g->done++;
    double el = llm_now() - g->t0, eta = g->done ? el / g->done * (g->n - g->done) : 0;
    char bar[32] = "";
    if (g->tty) { // a bar of 20 cells on a terminal
        int full = g->n ? 20 * g->done / g->n : 20;
        bar[0] = '[';
        for (int i = 0; i < 20; i++) bar[1 + i] = i < full ? '#' : '.';
        snprintf(bar + 21, sizeof bar - 21, "] ");
    }
    fprintf(stderr, "%ssweep: %spoint %d of %d (%s), %.0f s elapsed, ETA %.0f s%s",
            g->tty ? "\r" : "", bar, g->done, g->n, what, el, eta,
            !g->tty || g->done == g->n ? "\n" : "\033[K");
    fflush(stderr);
}

// A sweep in progress: its grid, its output and what every point shares.
typedef struct {
    const bench_options *o;
    double utils[BENCH_MAX_LIST], bss[BENCH_MAX_LIST], ins[BENCH_MAX_LIST], outs[BENCH_MAX_LIST];
    int kvs[BENCH_MAX_LIST]; // KV cache dtypes (engine_config.kv_cache_dtype), outermost
    int nk, nu, nb, ni, no;
    char dir[512];
    FILE *raw; // raw.jsonl: one line per measured run
    const char *model;
    char devname[300];
    mem_baseline mem0;
    double copy_gbs;
    progress pg;
    point *pts;     // [nk x nu x nb x ni x no], or this shard's slice of it
    int *gidx;      // each point's index in the whole grid
    run_result *rr; // [repeat + warmup] one point's runs
    int np;         // points done
    int cur;        // the grid index of the point being measured
} sweep_run;

// Whether grid point g is in this run's slice (every point without --shard).
static int in_shard(const bench_options *o, int g) {
    return o->shard_n <= 0 || g % o->shard_n == o->shard_k;
}

// What an engine has done over its life (the resident-memory prediction).
typedef struct {
    uint64_t pages; // KV pages allocated
    int t, s;       // its largest step's tokens and sequences
} engine_life;

// Parses the grid and opens the result directory and raw.jsonl. Returns 0,
// or the exit status.
static int sweep_open(sweep_run *sw, const bench_options *o) {
    sw->o = o;
    if (bench_parse_list(o->utils ? o->utils : "0.9", sw->utils, &sw->nu) ||
        bench_parse_list(o->bss ? o->bss : "1,4", sw->bss, &sw->nb) ||
        bench_parse_list(o->ins ? o->ins : "32,64", sw->ins, &sw->ni) ||
        bench_parse_list(o->outs ? o->outs : "8", sw->outs, &sw->no)) {
        fprintf(stderr, "bench_engine: bad list (comma-separated positive numbers, at most %d)\n",
                BENCH_MAX_LIST);
        return 2;
    }
    char err[LLM_ERR_LEN];
    sw->nk = 1, sw->kvs[0] = o->ec.kv_cache_dtype;
    if (o->kv_dtypes &&
        bench_parse_engine_list("kv-cache-dtype", o->kv_dtypes, sw->kvs, &sw->nk, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 2;
    }
    for (int i = 0; i < sw->no; i++)
        if (sw->outs[i] < 2) {
            fprintf(stderr, "bench_engine: output lengths must be >= 2 (decode needs a step)\n");
            return 2;
        }
    llm_run_dir(sw->dir, sizeof sw->dir, o->out_dir, "");
    if (sweep_mkdirs(sw->dir)) {
        fprintf(stderr, "bench_engine: %s: %s\n", sw->dir, strerror(errno));
        return 1;
    }
    if (sweep_write_run_info(sw->dir, o->argc, o->argv, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    char *raw_path = llm_path_join(sw->dir, "raw.jsonl");
    sw->raw = raw_path ? fopen(raw_path, "w") : NULL;
    free(raw_path);
    if (!sw->raw) {
        fprintf(stderr, "bench_engine: %s/raw.jsonl: %s\n", sw->dir, strerror(errno));
        return 1;
    }
    const int grid = sw->nk * sw->nu * sw->nb * sw->ni * sw->no;
    int n = 0;
    for (int g = 0; g < grid; g++) n += in_shard(o, g);
    if (!n) {
        fprintf(stderr, "bench_engine: shard %d/%d has no grid point (the grid has %d)\n",
                o->shard_k, o->shard_n, grid);
        return 2;
    }
    sw->pts = calloc((size_t)n, sizeof *sw->pts);
    sw->gidx = calloc((size_t)n, sizeof *sw->gidx);
    sw->rr = calloc((size_t)(o->repeat + o->warmup), sizeof *sw->rr);
    if (!sw->pts || !sw->rr || !sw->gidx) {
        fprintf(stderr, "bench_engine: out of memory\n");
        return 1;
    }
    sw->pg = (progress){.tty = isatty(STDERR_FILENO), .n = n, .t0 = llm_now()};
    sw->model = o->ec.model_dir ? o->ec.model_dir : o->ec.synthetic;
    sw->mem0 = bench_baseline_now(o->ec.device);
    sw->copy_gbs = bench_copy_bandwidth_gbs();
    return 0;
}

// One measured run as a raw.jsonl line: the engine's settings and the run's figures.
static void write_raw_line(sweep_run *sw, const engine_config *ec, const engine_stats *st,
                           const model_config *mc, const point *one, int repeat_index) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", sw->model);
    cJSON_AddStringToObject(j, "device", sw->devname);
    cJSON_AddStringToObject(j, "arch", mc->arch_name);
    cJSON_AddNumberToObject(j, "grid_index", sw->cur);
    cJSON_AddNumberToObject(j, "repeat_index", repeat_index);
    cJSON_AddNumberToObject(j, "gpu_memory_utilization", one->util);
    cJSON_AddNumberToObject(j, "device_total_bytes", (double)st->device_total);
    cJSON_AddNumberToObject(j, "budget_bytes", (double)st->budget);
    cJSON_AddNumberToObject(j, "block_size", st->block_size);
    cJSON_AddStringToObject(j, "kv_cache_dtype", engine_kv_dtype_name(st->kv_dtype));
    cJSON_AddNumberToObject(j, "max_num_seqs", ec->max_num_seqs);
    cJSON_AddNumberToObject(j, "max_num_batched_tokens", st->max_num_batched_tokens);
    cJSON_AddNumberToObject(j, "max_model_len", st->max_model_len);
    cJSON_AddBoolToObject(j, "prefix_caching", ec->prefix_caching);
    cJSON *m = sweep_point_json(one);
    for (cJSON *c = m->child; c; c = c->next)
        cJSON_AddItemToObject(j, c->string, cJSON_Duplicate(c, 1));
    cJSON_Delete(m);
    char *s = cJSON_PrintUnformatted(j);
    size_t len = s ? strlen(s) : 0;
    char *line = s ? realloc(s, len + 2) : NULL;
    if (line) { // one write(2) per line: a kill leaves whole lines, never half of one
        line[len] = '\n';
        const char *p = line;
        size_t left = len + 1;
        ssize_t w = 0;
        while (left && ((w = write(fileno(sw->raw), p, left)) > 0 || (w < 0 && errno == EINTR)))
            if (w > 0) p += w, left -= (size_t)w;
        s = line;
    }
    free(s);
    cJSON_Delete(j);
}

// Measures grid point p on engine e: warmup runs, then repeat runs, each of
// them a raw.jsonl line. Returns 0, or 1 on an engine failure.
static int sweep_point(sweep_run *sw, engine *e, const engine_config *ec, point *p,
                       engine_life *life) {
    const bench_options *o = sw->o;
    const model_config *mc = engine_model_config(e);
    engine_stats st;
    engine_get_stats(e, &st);
    const uint64_t kv_tok_b = st.page_bytes / (uint64_t)st.block_size;
    char err[LLM_ERR_LEN];
    int nr = 0, ok = 1, rc = 0;
    for (int r = 0; r < o->warmup + o->repeat; r++) {
        run_result x = {0};
        x.util = p->util;
        if (run_batch(e, p->bs, p->in, p->out, &sw->mem0, r, &x, err)) {
            fprintf(stderr, "\nbench_engine: %s\n", err);
            rc = 1;
        }
        if (!x.ok) {
            if (!rc && !bench_stop)
                fprintf(stderr, "\nbench_engine: util %.2f batch %d input %d: %s\n", p->util, p->bs,
                        p->in, x.err);
            run_free(&x);
            ok = 0;
            break;
        }
        life->pages += x.kv_peak / st.page_bytes;
        if (x.max_step_tokens > life->t) life->t = x.max_step_tokens;
        if (x.max_step_seqs > life->s) life->s = x.max_step_seqs;
        if (r < o->warmup) {
            run_free(&x);
            continue;
        }
        sw->rr[nr++] = x;
        point one = *p;
        summarize(&one, &x, 1, &st, mc, kv_tok_b, sw->copy_gbs, o->hourly);
        one.ok = 1;
        one.resident = resident_estimate(mc, &st, life->pages, life->t, life->s);
        write_raw_line(sw, ec, &st, mc, &one, r - o->warmup);
    }
    if (ok && nr) {
        summarize(p, sw->rr, nr, &st, mc, kv_tok_b, sw->copy_gbs, o->hourly);
        p->ok = 1;
        p->resident = resident_estimate(mc, &st, life->pages, life->t, life->s);
    } else {
        p->weights = st.weights, p->kv_alloc = st.kv_allocated;
        p->pages = st.pages_total, p->kv_tokens = st.kv_tokens;
    }
    for (int r = 0; r < nr; r++) run_free(&sw->rr[r]);
    return rc;
}

// Every point of engine eng (KV dtype eng / nu, utilization eng % nu) on one
// engine. Returns 0, or 1 on an engine failure.
static int sweep_utilization(sweep_run *sw, int eng) {
    const int per_engine = sw->nb * sw->ni * sw->no, u = eng % sw->nu;
    int mine = 0;
    for (int k = 0; k < per_engine; k++) mine += in_shard(sw->o, eng * per_engine + k);
    if (!mine) return 0; // no point of this engine in the shard
    engine_config ec = sw->o->ec;
    ec.gpu_memory_utilization = sw->utils[u];
    ec.kv_cache_dtype = sw->kvs[eng / sw->nu];
    char err[LLM_ERR_LEN], what[112];
    engine *e = engine_create(&ec, err);
    if (!e) { // its points stay not ok: the report says they did not fit
        fprintf(stderr, "\nbench_engine: utilization %.2f: %s\n", sw->utils[u], err);
        for (int k = 0; k < per_engine; k++) {
            if (!in_shard(sw->o, eng * per_engine + k)) continue;
            sw->gidx[sw->np] = eng * per_engine + k;
            point *p = &sw->pts[sw->np++];
            p->util = sw->utils[u];
            p->kv_dtype = ec.kv_cache_dtype;
            p->bs = (int)sw->bss[k / (sw->ni * sw->no)];
            p->in = (int)sw->ins[k / sw->no % sw->ni];
            p->out = (int)sw->outs[k % sw->no];
            progress_point(&sw->pg, "engine failed");
        }
        return 0;
    }
    const device_info *dv = engine_device(e);
    snprintf(sw->devname, sizeof sw->devname, "%s (%s)", device_name(dv->kind), dv->name);
    engine_life life = {0, 1, 1};
    int rc = 0;
    engine_stats st;
    engine_get_stats(e, &st);
    for (int k = 0; k < per_engine && rc == 0 && !bench_stop; k++) {
        if (!in_shard(sw->o, eng * per_engine + k)) continue;
        sw->cur = sw->gidx[sw->np] = eng * per_engine + k;
        point *p = &sw->pts[sw->np++];
        p->util = sw->utils[u];
        p->kv_dtype = (int)st.kv_dtype;
        p->bs = (int)sw->bss[k / (sw->ni * sw->no)];
        p->in = (int)sw->ins[k / sw->no % sw->ni];
        p->out = (int)sw->outs[k % sw->no];
        rc = sweep_point(sw, e, &ec, p, &life);
        if (bench_stop && !p->ok) { // cut short: its finished runs are in raw.jsonl
            sw->np--;
            break;
        }
        snprintf(what, sizeof what, "%s KV util %.2f batch %d input %d output %d",
                 engine_kv_dtype_name(st.kv_dtype), p->util, p->bs, p->in, p->out);
        progress_point(&sw->pg, what);
    }
    engine_destroy(e);
    return rc;
}

// The summary on stdout in the --format asked for.
static void sweep_print(const sweep_run *sw) {
    const char *format = sw->o->format;
    if (!strcmp(format, "csv")) {
        sweep_write_csv(stdout, sw->pts, sw->np);
    } else if (!strcmp(format, "json")) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < sw->np; i++) cJSON_AddItemToArray(a, sweep_point_json(&sw->pts[i]));
        char *s = cJSON_Print(a);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(a);
    } else {
        sweep_write_md_tables(stdout, sw->pts, sw->np);
    }
}

static int write_points(const char *dir, const sweep_spec *sp, const point *pts, const int *gidx,
                        int n, int grid);

int bench_sweep(const bench_options *o) {
    sweep_run sw = {0};
    bench_stop_signals(1); // SIGINT, SIGTERM: the report of the points done
    int rc = sweep_open(&sw, o);
    for (int g = 0; g < sw.nk * sw.nu && rc == 0 && !bench_stop; g++)
        rc = sweep_utilization(&sw, g);
    if (sw.raw) fclose(sw.raw);
    if (bench_stop && rc == 0)
        fprintf(stderr, "\nbench_engine: %s: stopping; the report holds the %d point(s) done\n",
                bench_stop == SIGINT ? "interrupted" : "terminated", sw.np);
    int any = 0;
    for (int i = 0; i < sw.np; i++) any |= sw.pts[i].ok;
    if (!any && rc == 0) {
        fprintf(stderr, "bench_engine: no grid point could run\n");
        rc = 1;
    }
    char err[LLM_ERR_LEN];
    sweep_spec sp = {
        .model = sw.model, .device = sw.devname, .repeat = o->repeat, .warmup = o->warmup};
    if (rc == 0 && sweep_write_reports(sw.dir, &sp, sw.pts, sw.np, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        rc = 1;
    }
    if (rc == 0 &&
        write_points(sw.dir, &sp, sw.pts, sw.gidx, sw.np, sw.nk * sw.nu * sw.nb * sw.ni * sw.no)) {
        fprintf(stderr, "bench_engine: %s/points.jsonl: %s\n", sw.dir, strerror(errno));
        rc = 1;
    }
    if (rc == 0 && o->format) sweep_print(&sw);
    if (rc == 0) fprintf(stderr, "bench_engine: results in %s/\n", sw.dir);
    free(sw.pts);
    free(sw.gidx);
    free(sw.rr);
    int stopped = bench_stop;
    bench_stop_signals(0);
    return rc == 0 && stopped ? 128 + stopped : rc;
}

// ---- points.jsonl and merge ----

// points.jsonl: one line per grid point of the run (its slice with --shard):
// its grid index, the grid's size, the run's settings, the grid columns to
// read, and the point itself as the hex of its bytes: merge rebuilds the
// reports from exactly what the sweep had, every field and NaN included
// (a points.jsonl of another build, whose point differs, is refused).
static int write_points(const char *dir, const sweep_spec *sp, const point *pts, const int *gidx,
                        int n, int grid) {
    char *path = llm_path_join(dir, "points.jsonl");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return -1;
    char hex[2 * sizeof(point) + 1];
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "grid_index", gidx[i]);
        cJSON_AddNumberToObject(j, "grid_size", grid);
        cJSON_AddStringToObject(j, "model", sp->model ? sp->model : "");
        cJSON_AddStringToObject(j, "device", sp->device ? sp->device : "");
        cJSON_AddNumberToObject(j, "repeat", sp->repeat);
        cJSON_AddNumberToObject(j, "warmup", sp->warmup);
        cJSON_AddNumberToObject(j, "util", pts[i].util);
        cJSON_AddNumberToObject(j, "batch", pts[i].bs);
        cJSON_AddNumberToObject(j, "input", pts[i].in);
        cJSON_AddNumberToObject(j, "output", pts[i].out);
        cJSON_AddBoolToObject(j, "ok", pts[i].ok);
        const unsigned char *b = (const unsigned char *)&pts[i];
        for (size_t k = 0; k < sizeof(point); k++) snprintf(hex + 2 * k, 3, "%02x", b[k]);
        cJSON_AddStringToObject(j, "point_hex", hex);
        char *s = cJSON_PrintUnformatted(j);
        if (s) fprintf(f, "%s\n", s);
        free(s);
        cJSON_Delete(j);
    }
    return fclose(f);
}

// A point from its points.jsonl hex. Returns 0, or -1 when it is not a
// point of this build.
static int read_point(const cJSON *j, point *out) {
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "point_hex");
    if (!cJSON_IsString(h) || strlen(h->valuestring) != 2 * sizeof(point)) return -1;
    unsigned char *b = (unsigned char *)out;
    for (size_t k = 0; k < sizeof(point); k++) {
        unsigned v;
        if (sscanf(h->valuestring + 2 * k, "%2x", &v) != 1) return -1;
        b[k] = (unsigned char)v;
    }
    return 0;
}

// A file's lines (NULL-terminated array, each malloc'd), or NULL.
static char **read_lines(const char *dir, const char *name, int *n) {
    char *path = llm_path_join(dir, name);
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    *n = 0;
    if (!f) return NULL;
    char **v = NULL, *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        char **nv = realloc(v, sizeof *v * (size_t)(*n + 2));
        if (!nv) break;
        v = nv;
        v[(*n)++] = strdup(line);
        v[*n] = NULL;
    }
    free(line);
    fclose(f);
    if (!v) v = calloc(1, sizeof *v);
    return v;
}

// A raw.jsonl line's order: grid index, then repeat index.
typedef struct {
    int g, r;
    char *line;
} raw_line;

static int raw_cmp(const void *a, const void *b) {
    const raw_line *x = a, *y = b;
    return x->g != y->g ? (x->g > y->g) - (x->g < y->g) : (x->r > y->r) - (x->r < y->r);
}

// What merge gathers from the directories.
typedef struct {
    int grid, nraw;
    point *pts;
    int *have;
    raw_line *raw;
    char model[512], device[300];
    int repeat, warmup;
} merge_acc;

// One points.jsonl line into m. Returns 0, or 1 (printed).
static int merge_point(merge_acc *m, const char *dir, int line, const cJSON *j) {
    const cJSON *gi = cJSON_GetObjectItemCaseSensitive(j, "grid_index"),
                *gs = cJSON_GetObjectItemCaseSensitive(j, "grid_size");
    if (!cJSON_IsNumber(gi) || !cJSON_IsNumber(gs) || gs->valueint < 1 || gi->valueint < 0 ||
        gi->valueint >= gs->valueint || (m->grid >= 0 && gs->valueint != m->grid)) {
        fprintf(stderr, "bench_engine: %s/points.jsonl line %d: not a point of %s grid\n", dir,
                line, m->grid < 0 ? "a" : "the same");
        return 1;
    }
    if (m->grid < 0) {
        m->grid = gs->valueint;
        m->pts = calloc((size_t)m->grid, sizeof *m->pts);
        m->have = calloc((size_t)m->grid, sizeof *m->have);
        if (!m->pts || !m->have) return 1;
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(j, "model"),
                    *r = cJSON_GetObjectItemCaseSensitive(j, "repeat"),
                    *w = cJSON_GetObjectItemCaseSensitive(j, "warmup");
        snprintf(m->model, sizeof m->model, "%s", cJSON_IsString(md) ? md->valuestring : "");
        m->repeat = cJSON_IsNumber(r) ? r->valueint : 1;
        m->warmup = cJSON_IsNumber(w) ? w->valueint : 0;
    }
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(j, "device");
    if (!m->device[0] && cJSON_IsString(dv)) // a shard whose engines all failed has none
        snprintf(m->device, sizeof m->device, "%s", dv->valuestring);
    if (m->have[gi->valueint]++) {
        fprintf(stderr, "bench_engine: grid point %d is in two shards (%s)\n", gi->valueint, dir);
        return 1;
    }
    if (read_point(j, &m->pts[gi->valueint])) {
        fprintf(stderr, "bench_engine: %s/points.jsonl line %d: written by another build\n", dir,
                line);
        return 1;
    }
    return 0;
}

// One directory's points.jsonl and raw.jsonl into m. Returns 0, or 1 (printed).
static int merge_dir(merge_acc *m, const char *dir) {
    int n, rc = 0;
    char **lines = read_lines(dir, "points.jsonl", &n);
    if (!lines) {
        fprintf(stderr, "bench_engine: %s/points.jsonl: %s\n", dir, strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(lines[i]);
        if (rc == 0) rc = merge_point(m, dir, i + 1, j);
        cJSON_Delete(j);
        free(lines[i]);
    }
    free(lines);
    char **rl = read_lines(dir, "raw.jsonl", &n);
    for (int i = 0; rl && i < n; i++) {
        cJSON *j = cJSON_Parse(rl[i]);
        const cJSON *gi = cJSON_GetObjectItemCaseSensitive(j, "grid_index"),
                    *ri = cJSON_GetObjectItemCaseSensitive(j, "repeat_index");
        raw_line *nr = realloc(m->raw, sizeof *m->raw * (size_t)(m->nraw + 1));
        if (nr) {
            m->raw = nr;
            m->raw[m->nraw++] = (raw_line){cJSON_IsNumber(gi) ? gi->valueint : -1,
                                           cJSON_IsNumber(ri) ? ri->valueint : 0, rl[i]};
        } else {
            free(rl[i]);
        }
        cJSON_Delete(j);
    }
    free(rl);
    return rc;
}

// The first shard's run.json into dir (the command line and date of the run
// the shards came from), so the merged report carries them.
static void copy_run_info(const bench_options *o, const char *dir) {
    for (int d = 0; d < o->n_merge_dirs; d++) {
        char *src = llm_path_join(o->merge_dirs[d], "run.json"), err[LLM_ERR_LEN];
        size_t len;
        char *s = src && llm_file_exists(src) ? llm_read_file(src, &len, err) : NULL;
        free(src);
        if (!s) continue;
        char *dst = llm_path_join(dir, "run.json");
        FILE *f = dst ? fopen(dst, "w") : NULL;
        free(dst);
        if (f) fwrite(s, 1, len, f), fclose(f);
        free(s);
        return;
    }
}

int bench_merge(const bench_options *o) {
    merge_acc m = {.grid = -1};
    int rc = 0;
    for (int d = 0; d < o->n_merge_dirs && rc == 0; d++) rc = merge_dir(&m, o->merge_dirs[d]);
    int grid = m.grid, nraw = m.nraw, *have = m.have;
    point *pts = m.pts;
    raw_line *raw = m.raw;
    int missing = 0;
    for (int g = 0; g < grid && rc == 0; g++)
        if (!have[g]) {
            if (!missing++) fprintf(stderr, "bench_engine: grid points missing from the shards:");
            fprintf(stderr, " %d", g);
        }
    if (missing) {
        fprintf(stderr, " (of %d)\n", grid);
        rc = 1;
    }
    if (grid < 0 && rc == 0) {
        fprintf(stderr, "bench_engine: no points in the directories\n");
        rc = 1;
    }
    char dir[512], err[LLM_ERR_LEN];
    if (rc == 0) {
        llm_run_dir(dir, sizeof dir, o->out_dir, "");
        if (sweep_mkdirs(dir)) {
            fprintf(stderr, "bench_engine: %s: %s\n", dir, strerror(errno));
            rc = 1;
        }
    }
    if (rc == 0) {
        copy_run_info(o, dir);
        qsort(raw, (size_t)nraw, sizeof *raw, raw_cmp);
        char *path = llm_path_join(dir, "raw.jsonl");
        FILE *f = path ? fopen(path, "w") : NULL;
        free(path);
        for (int i = 0; f && i < nraw; i++) fprintf(f, "%s\n", raw[i].line);
        int *gidx = malloc(sizeof *gidx * (size_t)grid);
        for (int g = 0; gidx && g < grid; g++) gidx[g] = g;
        sweep_spec sp = {
            .model = m.model, .device = m.device, .repeat = m.repeat, .warmup = m.warmup};
        if (!f || fclose(f) || !gidx || write_points(dir, &sp, pts, gidx, grid, grid)) {
            fprintf(stderr, "bench_engine: %s: cannot write: %s\n", dir, strerror(errno));
            rc = 1;
        } else if (sweep_write_reports(dir, &sp, pts, grid, err)) {
            fprintf(stderr, "bench_engine: %s\n", err);
            rc = 1;
        }
        free(gidx);
    }
    if (rc == 0 && o->format) {
        sweep_run sw = {.o = o, .pts = pts, .np = grid};
        sweep_print(&sw);
    }
    if (rc == 0)
        fprintf(stderr, "bench_engine: merged %d grid points from %d directories into %s/\n", grid,
                o->n_merge_dirs, dir);
    for (int i = 0; i < nraw; i++) free(raw[i].line);
    free(raw);
    free(pts);
    free(have);
    return rc;
}

int bench_report(const char *dir) {
    char err[LLM_ERR_LEN];
    int n;
    if (sweep_figures(dir, &n, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    fprintf(stderr, "bench_engine: report of %d grid point(s) in %s/report.html\n", n, dir);
    return 0;
}

// ---- memory ----

// The memory plan's fixed parts, as the engine logs them.
static void print_plan(const engine_memory_plan *p, const model_config *mc,
                       const engine_config *ec) {
    char a[32], b[32], c[32];
    printf("weights %s (%llu bytes), activation peak %s (%llu bytes, %d batched tokens), "
           "overhead %s\n",
           llm_fmt_bytes(p->weights, a, sizeof a), (unsigned long long)p->weights,
           llm_fmt_bytes(p->activations, b, sizeof b), (unsigned long long)p->activations,
           p->max_num_batched_tokens, llm_fmt_bytes(p->overhead, c, sizeof c));
    printf("KV per token %llu bytes (%d layers x %d kv heads x %d x 2 (K,V) x %zu bytes, %s); page "
           "of %d tokens %s (%llu bytes); max_model_len %d\n",
           (unsigned long long)(p->page_bytes / (uint64_t)ec->block_size), mc->n_layers,
           mc->n_kv_heads, mc->head_dim, dtype_size(p->kv_dtype), engine_kv_dtype_name(p->kv_dtype),
           ec->block_size, llm_fmt_bytes(p->page_bytes, a, sizeof a),
           (unsigned long long)p->page_bytes, p->max_model_len);
}

// What the engine's own weights hold, by kind.
static void print_weight_kinds(const engine_stats *st) {
    char a[32], b[32], c[32], d[32];
    uint64_t other = st->weights - st->weights_embed - st->weights_int8;
    printf("weights by kind: embeddings %s (%llu bytes), int8 matrices with scales %s (%llu "
           "bytes), other %s (%llu bytes); int8 saves %s (%llu bytes) against 16-bit\n",
           llm_fmt_bytes(st->weights_embed, a, sizeof a), (unsigned long long)st->weights_embed,
           llm_fmt_bytes(st->weights_int8, b, sizeof b), (unsigned long long)st->weights_int8,
           llm_fmt_bytes(other, c, sizeof c), (unsigned long long)other,
           llm_fmt_bytes(st->weights_saved, d, sizeof d), (unsigned long long)st->weights_saved);
}

// One table row per utilization: the plan at it, and how many sequences of
// each length fit.
static void print_plan_rows(const engine_config *ec0, const model_config *mc,
                            const engine_memory_plan *base, const double *utils, int nu,
                            const double *lens, int nl) {
    char a[32], b[32], c[32], err[LLM_ERR_LEN];
    printf("\n| util | budget | KV pool | KV tokens | KV pages | predicted total |");
    for (int l = 0; l < nl; l++) printf(" max batch @%d |", (int)lens[l]);
    printf("\n|---|---|---|---|---|---|");
    for (int l = 0; l < nl; l++) printf("---|");
    printf("\n");
    for (int u = 0; u < nu; u++) {
        engine_config ec = *ec0;
        ec.gpu_memory_utilization = utils[u];
        engine_memory_plan p;
        if (engine_plan_memory(&ec, mc, base->weights, base->weights_dtype, base->device_total,
                               base->overhead, &p, err))
            p.pages = 0, p.kv_bytes = 0, p.kv_tokens = 0; // no KV room at this utilization
        uint64_t fixed = p.weights + p.activations + p.overhead;
        printf("| %.2f | %s | %s | %lld | %d | %s |", utils[u],
               llm_fmt_bytes(p.budget, a, sizeof a), llm_fmt_bytes(p.kv_bytes, b, sizeof b),
               (long long)p.kv_tokens, p.pages, llm_fmt_bytes(fixed + p.kv_bytes, c, sizeof c));
        for (int l = 0; l < nl; l++) {
            int per = ((int)lens[l] + ec.block_size - 1) / ec.block_size;
            printf(" %d |", p.pages / per);
        }
        printf("\n");
    }
}

// memory --dry-run with lists of --dtype and --kv-cache-dtype: the plan of
// every combination (weights dtype outer, KV dtype inner) as one column.
static int print_side_by_side(const bench_options *o, const double *utils, int nu,
                              const double *lens, int nl) {
    char err[LLM_ERR_LEN], a[32];
    int dts[BENCH_MAX_LIST], kvs[BENCH_MAX_LIST], nd = 1, nk = 1;
    dts[0] = o->ec.dtype, kvs[0] = o->ec.kv_cache_dtype;
    if ((o->dtypes && bench_parse_engine_list("dtype", o->dtypes, dts, &nd, err)) ||
        (o->kv_dtypes && bench_parse_engine_list("kv-cache-dtype", o->kv_dtypes, kvs, &nk, err))) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 2;
    }
    enum { MAX_COLS = 16 };
    if (nd * nk > MAX_COLS) {
        fprintf(stderr,
                "bench_engine: %d combinations of --dtype x --kv-cache-dtype (at most %d)\n",
                nd * nk, MAX_COLS);
        return 2;
    }
    engine_memory_plan base[MAX_COLS], rows[MAX_COLS][BENCH_MAX_LIST];
    model_config mc[MAX_COLS];
    int n = 0;
    for (int d = 0; d < nd; d++)
        for (int k = 0; k < nk; k++, n++) {
            engine_config ec = o->ec;
            ec.dtype = dts[d], ec.kv_cache_dtype = kvs[k];
            if (engine_plan_dry_run(&ec, &mc[n], &base[n], err) && !base[n].page_bytes) {
                fprintf(stderr, "bench_engine: %s\n", err);
                return 1;
            }
            ec.max_model_len = base[n].max_model_len;
            ec.max_num_batched_tokens = base[n].max_num_batched_tokens;
            ec.device = base[n].device; // the device the dry run resolved
            for (int u = 0; u < nu; u++) {
                ec.gpu_memory_utilization = utils[u];
                if (engine_plan_memory(&ec, &mc[n], base[n].weights, base[n].weights_dtype,
                                       base[n].device_total, base[n].overhead, &rows[n][u], err))
                    rows[n][u].pages = 0, rows[n][u].kv_tokens = 0; // no KV room
            }
        }
    printf("memory plan (dry run: no engine) for %s on a %s device: %d combinations of weights "
           "dtype x KV cache dtype\n\n|",
           o->ec.model_dir ? o->ec.model_dir : o->ec.synthetic,
           llm_fmt_bytes(base[0].device_total, a, sizeof a), n);
    for (int c = 0; c < n; c++)
        printf(" | %s weights, %s KV", dtype_name(base[c].weights_dtype),
               engine_kv_dtype_name(base[c].kv_dtype));
    printf(" |\n|---|");
    for (int c = 0; c < n; c++) printf("---|");
    printf("\n| weights |");
    for (int c = 0; c < n; c++) printf(" %s |", llm_fmt_bytes(base[c].weights, a, sizeof a));
    printf("\n| KV bytes per token |");
    for (int c = 0; c < n; c++)
        printf(" %llu |", (unsigned long long)(base[c].page_bytes / (uint64_t)o->ec.block_size));
    for (int u = 0; u < nu; u++) {
        printf("\n| KV tokens @%.2f |", utils[u]);
        for (int c = 0; c < n; c++)
            printf(" %lld (%.2fx) |", (long long)rows[c][u].kv_tokens,
                   rows[0][u].kv_tokens ? (double)rows[c][u].kv_tokens / rows[0][u].kv_tokens
                                        : 0.0);
    }
    for (int l = 0; l < nl; l++) {
        printf("\n| max batch @%d (%.2f) |", (int)lens[l], utils[nu - 1]);
        const int per = ((int)lens[l] + o->ec.block_size - 1) / o->ec.block_size;
        for (int c = 0; c < n; c++) printf(" %d |", rows[c][nu - 1].pages / per);
    }
    printf("\n");
    return 0;
}

int bench_memory(const bench_options *o) {
    char err[LLM_ERR_LEN], a[32];
    double utils[BENCH_MAX_LIST], lens[BENCH_MAX_LIST];
    int nu, nl;
    if (bench_parse_list(o->utils ? o->utils : "0.5,0.7,0.8,0.9,0.95", utils, &nu) ||
        bench_parse_list(o->seq_lens ? o->seq_lens : "512,2048,8192", lens, &nl)) {
        fprintf(stderr, "bench_engine: bad list\n");
        return 2;
    }
    if ((o->dtypes && strchr(o->dtypes, ',')) || (o->kv_dtypes && strchr(o->kv_dtypes, ','))) {
        if (o->dry_run) return print_side_by_side(o, utils, nu, lens, nl);
        fprintf(stderr, "bench_engine: memory takes lists of --dtype / --kv-cache-dtype with "
                        "--dry-run only (one engine runs otherwise)\n");
        return 2;
    }
    const engine_config *ec = &o->ec;
    const char *model = ec->model_dir ? ec->model_dir : ec->synthetic;
    model_config mc;
    engine_memory_plan base;
    if (o->dry_run) {
        // a budget too small at ec's own utilization still has its table rows
        if (engine_plan_dry_run(ec, &mc, &base, err) && !base.page_bytes) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 1;
        }
        printf("memory plan (dry run: no engine) for %s on a %s device\n", model,
               llm_fmt_bytes(base.device_total, a, sizeof a));
        print_plan(&base, &mc, ec);
        if (mc.quant == QUANT_INT8)
            printf("weights: Linear matrices in int8 (1 byte per element + a 4-byte scale per "
                   "row)%s\n",
                   mc.quant_embeddings ? ", embeddings too" : "");
    } else {
        engine *e = engine_create(ec, err);
        if (!e) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 1;
        }
        engine_stats st;
        engine_get_stats(e, &st);
        mc = *engine_model_config(e);
        base = (engine_memory_plan){.device_total = st.device_total,
                                    .weights = st.weights,
                                    .activations = st.activations,
                                    .overhead = st.overhead,
                                    .page_bytes = st.page_bytes,
                                    .weights_dtype = st.weights_dtype,
                                    .kv_dtype = st.kv_dtype,
                                    .max_model_len = st.max_model_len,
                                    .max_num_batched_tokens = st.max_num_batched_tokens,
                                    .device = engine_device(e)->kind};
        printf("memory plan (measured on %s) for %s on a %s device\n",
               device_name(engine_device(e)->kind), model,
               llm_fmt_bytes(st.device_total, a, sizeof a));
        print_plan(&base, &mc, ec);
        print_weight_kinds(&st);
        engine_destroy(e);
    }
    // the rows at the limits the plan settled (engine_resolve_limits)
    engine_config rc = *ec;
    rc.max_model_len = base.max_model_len;
    rc.max_num_batched_tokens = base.max_num_batched_tokens;
    rc.device = base.device;
    print_plan_rows(&rc, &mc, &base, utils, nu, lens, nl);
    return 0;
}

// ---- latency and throughput ----

// latency: one batch (first batch size, input and output length), prefill
// then decode, mean +- stddev over --repeat runs after --warmup.
int bench_latency(const bench_options *o) {
    char err[LLM_ERR_LEN];
    double bs[BENCH_MAX_LIST], in[BENCH_MAX_LIST], out[BENCH_MAX_LIST], u[BENCH_MAX_LIST];
    int n1, n2, n3, nu;
    if (bench_parse_list(o->bss ? o->bss : "1", bs, &n1) ||
        bench_parse_list(o->ins ? o->ins : "32", in, &n2) ||
        bench_parse_list(o->outs ? o->outs : "8", out, &n3) || out[0] < 2) {
        fprintf(stderr, "bench_engine: bad --batch-sizes, --input-lens or --output-lens\n");
        return 2;
    }
    engine_config ec = o->ec;
    if (o->utils && bench_parse_list(o->utils, u, &nu) == 0) ec.gpu_memory_utilization = u[0];
    mem_baseline mem0 = bench_baseline_now(ec.device);
    engine *e = engine_create(&ec, err);
    if (!e) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    int R = o->repeat, rc = 0;
    double *pf = calloc((size_t)R, sizeof(double)), *dc = calloc((size_t)R, sizeof(double));
    double *tot = calloc((size_t)R, sizeof(double));
    for (int r = 0; r < o->warmup + R && rc == 0; r++) {
        run_result x = {0};
        if (!pf || !dc || !tot) {
            fprintf(stderr, "bench_engine: out of memory\n");
            rc = 1;
        } else if (run_batch(e, (int)bs[0], (int)in[0], (int)out[0], &mem0, r, &x, err) || !x.ok) {
            fprintf(stderr, "bench_engine: %s\n", x.ok ? err : x.err);
            rc = 1;
        } else if (r >= o->warmup) {
            int k = r - o->warmup;
            pf[k] = x.prefill_s, tot[k] = x.total_s;
            dc[k] = x.decode_steps ? x.decode_s / x.decode_steps : NAN;
        }
        run_free(&x);
    }
    if (rc == 0) {
        printf("batch %d, input %d, output %d, %d run(s)\n", (int)bs[0], (int)in[0], (int)out[0],
               R);
        printf("prefill      %.2f +- %.2f ms\n", bench_mean(pf, R) * 1e3,
               bench_stddev(pf, R) * 1e3);
        printf("decode step  %.2f +- %.2f ms\n", bench_mean(dc, R) * 1e3,
               bench_stddev(dc, R) * 1e3);
        printf("end to end   %.2f +- %.2f ms\n", bench_mean(tot, R) * 1e3,
               bench_stddev(tot, R) * 1e3);
    }
    free(pf), free(dc), free(tot);
    engine_destroy(e);
    return rc;
}

// throughput: --num-requests N requests of the first input and output length
// submitted at once; prints request, total and output tokens/s.
int bench_throughput(const bench_options *o) {
    char err[LLM_ERR_LEN];
    double in[BENCH_MAX_LIST], out[BENCH_MAX_LIST];
    int n2, n3;
    if (bench_parse_list(o->ins ? o->ins : "32", in, &n2) ||
        bench_parse_list(o->outs ? o->outs : "8", out, &n3) || out[0] < 2 || o->num_requests < 1) {
        fprintf(stderr, "bench_engine: bad --input-lens, --output-lens or --num-requests\n");
        return 2;
    }
    mem_baseline mem0 = bench_baseline_now(o->ec.device);
    engine *e = engine_create(&o->ec, err);
    if (!e) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    int rc = 0, N = o->num_requests;
    for (int r = 0; r < o->warmup + o->repeat && rc == 0; r++) {
        run_result x = {0};
        if (run_batch(e, N, (int)in[0], (int)out[0], &mem0, r, &x, err) || !x.ok) {
            fprintf(stderr, "bench_engine: %s\n", x.ok ? err : x.err);
            rc = 1;
        } else if (r >= o->warmup) {
            printf("run %d: %d requests of %d+%d tokens in %.3f s: %.2f requests/s, %.1f total "
                   "tokens/s, %.1f output tokens/s, %llu preemptions\n",
                   r - o->warmup + 1, N, (int)in[0], (int)out[0], x.total_s, N / x.total_s,
                   (double)N * (in[0] + out[0]) / x.total_s, (double)N * out[0] / x.total_s,
                   (unsigned long long)x.preempt);
        }
        run_free(&x);
    }
    engine_destroy(e);
    return rc;
}

// ---- plan ----

// The card o names: a preset, this machine (cpu), or --device-memory with
// --bandwidth and --flops. Returns 0, or the exit status with the reason printed.
static int plan_card_of(const bench_options *o, plan_card *card) {
    char err[LLM_ERR_LEN];
    if (o->gpu && !strcmp(o->gpu, "cpu")) {
        if (plan_card_cpu(card, err) == 0) return 0;
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    if (o->gpu) {
        const plan_card *p = plan_card_find(o->gpu);
        if (p) {
            *card = *p;
            return 0;
        }
        fprintf(stderr, "bench_engine: unknown --gpu '%s' (cpu", o->gpu);
        for (p = plan_cards; p->name; p++) fprintf(stderr, ", %s", p->name);
        fprintf(stderr, "; or --device-memory B --bandwidth GBS --flops TFLOPS)\n");
        return 2;
    }
    int major = 9, minor = 0;
    if (!o->ec.device_memory || !(o->bandwidth > 0) || !(o->flops > 0) ||
        (o->cc && sscanf(o->cc, "%d.%d", &major, &minor) != 2)) {
        fprintf(stderr, "bench_engine: plan needs --gpu CARD, or --device-memory B --bandwidth GBS "
                        "--flops TFLOPS [--compute-capability X.Y]\n");
        return 2;
    }
    *card = (plan_card){.name = "custom",
                        .label = "a custom card",
                        .memory = o->ec.device_memory,
                        .bandwidth_gbs = o->bandwidth,
                        .tflops = o->flops,
                        .cc_major = major,
                        .cc_minor = minor,
                        .source = "--device-memory, --bandwidth, --flops"};
    return 0;
}

int bench_plan_cmd(const bench_options *o) {
    double utils[BENCH_MAX_LIST], bss[BENCH_MAX_LIST], ins[BENCH_MAX_LIST], outs[BENCH_MAX_LIST];
    int nu, nb, ni, no;
    if (bench_parse_list(o->utils ? o->utils : "0.5,0.7,0.8,0.9,0.95", utils, &nu) ||
        bench_parse_list(o->bss ? o->bss : "1,2,4,8,16,32,64,128,256", bss, &nb) ||
        bench_parse_list(o->ins ? o->ins : "512", ins, &ni) ||
        bench_parse_list(o->outs ? o->outs : "128", outs, &no) || outs[0] < 2) {
        fprintf(stderr, "bench_engine: bad list (comma-separated positive numbers)\n");
        return 2;
    }
    plan_card card;
    int rc = plan_card_of(o, &card);
    if (rc) return rc;
    plan_opts po = {.ec = o->ec,
                    .card = &card,
                    .efficiency = o->efficiency,
                    .utils = utils,
                    .n_utils = nu,
                    .batches = bss,
                    .n_batches = nb,
                    .input_len = (int)ins[0],
                    .output_len = (int)outs[0],
                    .hourly = o->hourly,
                    .format = o->format};
    char dir[4096];
    if (o->config) { // a config.json: its folder, read as a model directory
        snprintf(dir, sizeof dir, "%s", o->config);
        char *slash = strrchr(dir, '/');
        if (slash && !strcmp(slash + 1, "config.json"))
            *slash = '\0';
        else if (!strcmp(dir, "config.json"))
            snprintf(dir, sizeof dir, ".");
        po.ec.model_dir = dir;
    }
    if (o->calibrate) {
        if (strcmp(card.name, "cpu")) {
            fprintf(stderr, "bench_engine: --calibrate runs on this machine: use --gpu cpu\n");
            return 2;
        }
        return bench_plan_calibrate(&po);
    }
    return bench_plan(&po);
}
