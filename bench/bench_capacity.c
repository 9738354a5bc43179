// bench_capacity.c - bench_engine capacity: for each memory utilization and
// sequence length L, the most sequences of L tokens the engine runs at once
// without preempting or refusing one, found by running it, beside the memory
// plan's prediction (KV pages / pages per sequence), with the decode step
// time at the frontier. Written as capacity.jsonl (one line per run tried),
// capacity.csv, capacity.md and two SVG figures.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_cmds.h"
#include "bench_run.h"
#include "bench_stats.h"
#include "svg_plot.h"
#include "sweep_figs.h"
#include "sweep_report.h"
#include "util.h"

// One (utilization, length) cell of the frontier.
typedef struct {
    double util;
    int len;
    int predicted;       // pages_total / pages per sequence, at most max_num_seqs
    int measured;        // the largest n that ran at once without preemption (0: none)
    int first_fail;      // the smallest n that did not (0: none tried)
    double step_ms;      // decode step median at the frontier
    double step_fail_ms; // and at first_fail
    char why[256];       // what happened at first_fail
    int tries;
    int out; // generated tokens of each sequence
} cap_cell;

typedef struct {
    const bench_options *o;
    FILE *jsonl;
    mem_baseline mem0;
    int out;         // --output-lens (0: half of each length)
    engine_stats st; // the engine's (pool and page size)
    double t0;
    int tty;
} cap_run;

// Runs n sequences of len tokens (len - out prompt + out generated). Returns
// 1 when all n ran in one step without a preemption, 0 when not (why), -1 on
// an engine failure (err), 2 when a signal cut the run short.
static int cap_try(cap_run *cr, engine *e, cap_cell *c, int n, double *step_ms, char *why,
                   size_t why_n, char *err) {
    run_result r = {0};
    int rc = run_batch(e, n, c->len - c->out, c->out, &cr->mem0, c->tries, &r, err);
    c->tries++;
    if (rc || (bench_stop && !r.ok)) { // an engine failure, or cut short by a signal
        run_free(&r);
        return rc ? -1 : 2;
    }
    int fit = r.ok && r.preempt == 0 && r.max_step_seqs >= n;
    *step_ms = r.decode_steps ? bench_pct(r.step_s, r.decode_steps, 50) * 1e3 : NAN;
    if (!r.ok)
        snprintf(why, why_n, "refused: %.120s", r.err);
    else if (r.preempt)
        snprintf(why, why_n, "%llu preemption(s)", (unsigned long long)r.preempt);
    else if (r.max_step_seqs < n) {
        // room left for one more sequence: not memory, but the token budget per
        // step admitting prompts slower than the first sequences finished
        uint64_t per = (uint64_t)((c->len + cr->st.block_size - 1) / cr->st.block_size);
        int room = r.kv_peak + per * cr->st.page_bytes <= cr->st.kv_allocated;
        snprintf(why, why_n, "at most %d of %d ran at once%s", r.max_step_seqs, n,
                 room ? " (with room in the KV pool: the first finished before the last was "
                        "admitted; raise --output-lens or --max-num-batched-tokens)"
                      : "");
    } else
        why[0] = 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "gpu_memory_utilization", c->util);
    cJSON_AddNumberToObject(j, "seq_len", c->len);
    cJSON_AddNumberToObject(j, "output", c->out);
    cJSON_AddNumberToObject(j, "sequences", n);
    cJSON_AddNumberToObject(j, "predicted_max", c->predicted);
    cJSON_AddBoolToObject(j, "fit", fit);
    cJSON_AddNumberToObject(j, "max_running", r.max_step_seqs);
    cJSON_AddNumberToObject(j, "preemptions", (double)r.preempt);
    cJSON_AddNumberToObject(j, "kv_peak_bytes", (double)r.kv_peak);
    if (isfinite(*step_ms)) cJSON_AddNumberToObject(j, "decode_step_median_ms", *step_ms);
    cJSON_AddNumberToObject(j, "total_s", r.total_s);
    if (why[0]) cJSON_AddStringToObject(j, "why", why);
    char *s = cJSON_PrintUnformatted(j);
    if (s && cr->jsonl) fprintf(cr->jsonl, "%s\n", s), fflush(cr->jsonl);
    free(s);
    cJSON_Delete(j);
    fprintf(stderr, "%scapacity: util %.2f, %d tokens: %d sequence(s) %s%s%s, %.0f s elapsed%s",
            cr->tty ? "\r" : "", c->util, c->len, n, fit ? "fit" : "do not fit", why[0] ? ": " : "",
            why, llm_now() - cr->t0, cr->tty ? "\033[K" : "\n");
    fflush(stderr);
    run_free(&r);
    return fit;
}

// The frontier of one cell: the prediction first, then one more; up by
// doubling while it fits, down by halving the gap when it does not.
static int cap_search(cap_run *cr, engine *e, cap_cell *c, char *err) {
    int lo = 0, hi = 0, n = c->predicted > 0 ? c->predicted : 1;
    char why[256];
    while (!bench_stop && (hi == 0 || hi - lo > 1)) {
        double ms;
        int fit = cap_try(cr, e, c, n, &ms, why, sizeof why, err);
        if (fit < 0) return -1;
        if (fit == 2) {
            snprintf(c->why, sizeof c->why, "interrupted while running %d", n);
            break;
        }
        if (fit) {
            lo = n, c->step_ms = ms;
            n = hi ? (lo + hi) / 2 : n == c->predicted ? n + 1 : 2 * n;
        } else {
            hi = n, c->step_fail_ms = ms;
            snprintf(c->why, sizeof c->why, "%s", why);
            n = (lo + hi) / 2;
            if (n <= lo) break;
        }
    }
    c->measured = lo, c->first_fail = hi;
    return 0;
}

// The cells of utilization u on one engine. Returns 0, or 1 (printed).
static int cap_utilization(cap_run *cr, double util, const double *lens, int nl, cap_cell *cells) {
    engine_config ec = cr->o->ec;
    ec.gpu_memory_utilization = util;
    char err[LLM_ERR_LEN];
    engine *e = engine_create(&ec, err);
    if (!e) {
        fprintf(stderr, "bench_engine: utilization %.2f: %s\n", util, err);
        for (int l = 0; l < nl; l++)
            cells[l] = (cap_cell){.util = util, .len = (int)lens[l]},
            snprintf(cells[l].why, 256, "no engine: %.120s", err);
        return 0;
    }
    engine_stats st;
    engine_get_stats(e, &st);
    cr->st = st;
    int rc = 0;
    for (int l = 0; l < nl && rc == 0 && !bench_stop; l++) {
        cap_cell *c = &cells[l];
        *c = (cap_cell){.util = util, .len = (int)lens[l], .step_ms = NAN, .step_fail_ms = NAN};
        c->out = cr->out ? cr->out : c->len / 2;
        int per = (c->len + st.block_size - 1) / st.block_size;
        c->predicted = st.pages_total / per;
        if (c->predicted > ec.max_num_seqs) c->predicted = ec.max_num_seqs;
        if (c->len > st.max_model_len) {
            snprintf(c->why, sizeof c->why, "longer than max_model_len %d", st.max_model_len);
            continue;
        }
        if (cap_search(cr, e, c, err)) {
            fprintf(stderr, "\nbench_engine: %s\n", err);
            rc = 1;
        }
    }
    engine_destroy(e);
    return rc;
}

static void cap_table(FILE *f, const cap_cell *c, int n) {
    fprintf(f,
            "| util | seq len | predicted max | measured max | diff | decode step at the frontier "
            "| first that did not fit | why |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        char step[32] = "-", fail[32] = "-";
        if (isfinite(c[i].step_ms)) snprintf(step, sizeof step, "%.1f ms", c[i].step_ms);
        if (c[i].first_fail) snprintf(fail, sizeof fail, "%d", c[i].first_fail);
        fprintf(f, "| %.2f | %d | %d | %d | %+d | %s | %s | %s |\n", c[i].util, c[i].len,
                c[i].predicted, c[i].measured, c[i].measured - c[i].predicted, step, fail,
                c[i].why);
    }
}

// The frontier (measured solid, predicted dashed) and the decode step at it,
// against sequence length, a series per utilization.
static int cap_figures(const char *dir, const cap_cell *c, int n, const double *utils, int nu,
                       char *err) {
    double *x = calloc((size_t)n + 1, sizeof *x), *ym = calloc((size_t)n + 1, sizeof *ym);
    double *yp = calloc((size_t)n + 1, sizeof *yp), *ys = calloc((size_t)n + 1, sizeof *ys);
    svg_xy *s = calloc((size_t)(2 * nu), sizeof *s), *t = calloc((size_t)nu, sizeof *t);
    char(*names)[48] = calloc((size_t)(2 * nu), sizeof *names);
    int rc = -1;
    if (x && ym && yp && ys && s && t && names) {
        for (int u = 0, i = 0; u < nu; u++) {
            int k0 = i;
            for (; i < n && c[i].util == utils[u]; i++) {
                x[i] = c[i].len, ym[i] = c[i].measured, yp[i] = c[i].predicted;
                ys[i] = c[i].step_ms;
            }
            snprintf(names[2 * u], 48, "util=%g measured", utils[u]);
            snprintf(names[2 * u + 1], 48, "util=%g predicted", utils[u]);
            s[2 * u] =
                (svg_xy){.name = names[2 * u], .color = u, .n = i - k0, .x = x + k0, .y = ym + k0};
            s[2 * u + 1] = (svg_xy){.name = names[2 * u + 1],
                                    .color = u,
                                    .dashed = 1,
                                    .n = i - k0,
                                    .x = x + k0,
                                    .y = yp + k0};
            t[u] =
                (svg_xy){.name = names[2 * u], .color = u, .n = i - k0, .x = x + k0, .y = ys + k0};
        }
        svg_panel p1 = {"sequences that run at once without preemption", s, 2 * nu};
        svg_panel p2 = {"median decode step with the frontier's sequences running", t, nu};
        svg_figure f1 = {"Capacity frontier: measured vs predicted", "sequence length, tokens",
                         "concurrent sequences", 0};
        svg_figure f2 = {"Decode step time at the capacity frontier", "sequence length, tokens",
                         "decode step, ms", 0};
        char *a = llm_path_join(dir, "capacity.svg"), *b = llm_path_join(dir, "capacity_step.svg");
        rc = svg_panels(a, &f1, &p1, 1, err) || svg_panels(b, &f2, &p2, 1, err) ? -1 : 0;
        free(a), free(b);
    } else {
        llm_errf(err, "out of memory");
    }
    free(x), free(ym), free(yp), free(ys), free(s), free(t), free(names);
    return rc;
}

static int cap_write(const char *dir, const cap_cell *c, int n, const double *utils, int nu,
                     char *err) {
    char *path = llm_path_join(dir, "capacity.csv");
    FILE *f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/capacity.csv: %s", dir, strerror(errno));
    fprintf(f, "util,seq_len,predicted_max,measured_max,decode_step_ms_at_frontier,first_fail,"
               "decode_step_ms_at_first_fail,why\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%.2f,%d,%d,%d,%.2f,%d,%.2f,\"%s\"\n", c[i].util, c[i].len, c[i].predicted,
                c[i].measured, c[i].step_ms, c[i].first_fail, c[i].step_fail_ms, c[i].why);
    fclose(f);
    path = llm_path_join(dir, "capacity.md");
    f = path ? fopen(path, "w") : NULL;
    free(path);
    if (!f) return llm_errf(err, "%s/capacity.md: %s", dir, strerror(errno));
    fprintf(f, "# bench_engine capacity\n\nThe command line, version and date: run.json. "
               "Figures: capacity.svg, capacity_step.svg.\n\n");
    cap_table(f, c, n);
    fclose(f);
    return cap_figures(dir, c, n, utils, nu, err);
}

int bench_capacity(const bench_options *o) {
    double utils[BENCH_MAX_LIST], lens[BENCH_MAX_LIST], outs[BENCH_MAX_LIST] = {0};
    int nu, nl, no;
    if (bench_parse_list(o->utils ? o->utils : "0.9", utils, &nu) ||
        bench_parse_list(o->seq_lens ? o->seq_lens : "512,2048", lens, &nl) ||
        (o->outs && (bench_parse_list(o->outs, outs, &no) || outs[0] < 2))) {
        fprintf(stderr, "bench_engine: capacity: bad --gpu-memory-utilization, --seq-lens or "
                        "--output-lens (comma-separated positive numbers; output >= 2)\n");
        return 2;
    }
    for (int l = 0; l < nl; l++)
        if (lens[l] <= outs[0] || lens[l] < 4) {
            fprintf(stderr, "bench_engine: capacity: --seq-lens must exceed --output-lens (%g)\n",
                    outs[0]);
            return 2;
        }
    char dir[512], err[LLM_ERR_LEN];
    llm_run_dir(dir, sizeof dir, o->out_dir, "capacity-");
    cap_cell *cells = calloc((size_t)(nu * nl), sizeof *cells);
    cap_run cr = {.o = o, .out = (int)outs[0], .t0 = llm_now(), .tty = isatty(STDERR_FILENO)};
    if (!cells || sweep_mkdirs(dir) || sweep_write_run_info(dir, o->argc, o->argv, err)) {
        fprintf(stderr, "bench_engine: %s: cannot write\n", dir);
        free(cells);
        return 1;
    }
    char *path = llm_path_join(dir, "capacity.jsonl");
    cr.jsonl = path ? fopen(path, "w") : NULL;
    free(path);
    cr.mem0 = bench_baseline_now(o->ec.device);
    bench_stop_signals(1); // SIGINT, SIGTERM: the files of the cells done
    int rc = 0;
    for (int u = 0; u < nu && rc == 0 && !bench_stop; u++)
        rc = cap_utilization(&cr, utils[u], lens, nl, cells + u * nl);
    if (cr.jsonl) fclose(cr.jsonl);
    int n = 0; // the cells reached (all, unless a signal stopped the runs)
    for (int i = 0; i < nu * nl; i++)
        if (cells[i].len) cells[n++] = cells[i];
    if (rc == 0 && cap_write(dir, cells, n, utils, nu, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        rc = 1;
    }
    if (rc == 0) {
        cap_table(stdout, cells, n);
        fprintf(stderr, "bench_engine: %sresults in %s/\n",
                bench_stop ? "interrupted: the runs done; " : "", dir);
    }
    free(cells);
    int stopped = bench_stop;
    bench_stop_signals(0);
    return rc == 0 && stopped ? 128 + stopped : rc;
}
