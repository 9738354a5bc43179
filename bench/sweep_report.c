// sweep_report.c - see sweep_report.h.
#include "sweep_report.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "sweep_figs.h"
#include "util.h"

// ---- output ----

typedef struct {
    const char *name, *fmt;
    size_t off; // offsetof(point, field)
    char kind;  // 'u' uint64, 'i' int, 'I' int64, 'd' double
} column;

#define COL(n, f, field, k)                                                                        \
    { n, f, offsetof(point, field), k }
static const column cols[] = {
    COL("util", "%.2f", util, 'd'),
    COL("batch", "%d", bs, 'i'),
    COL("input", "%d", in, 'i'),
    COL("output", "%d", out, 'i'),
    COL("weights_bytes", "%llu", weights, 'u'),
    COL("activations_bytes", "%llu", activations, 'u'),
    COL("activations_in_use_bytes", "%llu", act_used, 'u'),
    COL("overhead_bytes", "%llu", overhead, 'u'),
    COL("kv_allocated_bytes", "%llu", kv_alloc, 'u'),
    COL("kv_peak_bytes", "%llu", kv_peak, 'u'),
    COL("measured_bytes", "%llu", measured, 'u'),
    COL("predicted_bytes", "%llu", predicted, 'u'),
    COL("predicted_resident_bytes", "%llu", resident, 'u'),
    COL("kv_pages", "%d", pages, 'i'),
    COL("kv_tokens", "%lld", kv_tokens, 'I'),
    COL("max_concurrency", "%.1f", max_conc, 'd'),
    COL("preemptions", "%llu", preempt, 'u'),
    COL("prefill_s", "%.4f", prefill_s, 'd'),
    COL("prefill_tok_s", "%.1f", prefill_tps, 'd'),
    COL("decode_step_median_ms", "%.2f", step_med, 'd'),
    COL("decode_step_p95_ms", "%.2f", step_p95, 'd'),
    COL("decode_step_p99_ms", "%.2f", step_p99, 'd'),
    COL("decode_tok_s", "%.1f", decode_tps, 'd'),
    COL("ttft_mean_ms", "%.1f", ttft_mean, 'd'),
    COL("ttft_median_ms", "%.1f", ttft_med, 'd'),
    COL("ttft_p95_ms", "%.1f", ttft_p95, 'd'),
    COL("ttft_p99_ms", "%.1f", ttft_p99, 'd'),
    COL("tpot_mean_ms", "%.2f", tpot_mean, 'd'),
    COL("tpot_median_ms", "%.2f", tpot_med, 'd'),
    COL("tpot_p95_ms", "%.2f", tpot_p95, 'd'),
    COL("tpot_p99_ms", "%.2f", tpot_p99, 'd'),
    COL("total_tok_s", "%.1f", total_tps, 'd'),
    COL("output_tok_s", "%.1f", out_tps, 'd'),
    COL("decode_bandwidth_gbs", "%.2f", bw_gbs, 'd'),
    COL("copy_bandwidth_gbs", "%.2f", copy_gbs, 'd'),
    COL("decode_bandwidth_frac", "%.3f", bw_frac, 'd'),
    COL("tokens_per_dollar", "%.0f", tok_per_dollar, 'd'),
    COL("usd_per_mtok", "%.4f", usd_per_mtok, 'd'),
};
#define NCOLS ((int)(sizeof cols / sizeof cols[0]))

// A column's value as a double (milliseconds for the *_ms columns).
static double col_value(const point *p, const column *c) {
    const char *b = (const char *)p + c->off;
    double v = c->kind == 'u'   ? (double)*(const uint64_t *)b
               : c->kind == 'i' ? *(const int *)b
               : c->kind == 'I' ? (double)*(const int64_t *)b
                                : *(const double *)b;
    if (strstr(c->name, "_ms")) v *= 1e3;
    return v;
}

static void fmt_col(const point *p, const column *c, char *buf, size_t n) {
    double v = col_value(p, c);
    if (c->kind == 'd' && !isfinite(v))
        snprintf(buf, n, "%s", "");
    else if (c->kind == 'd')
        snprintf(buf, n, c->fmt, v);
    else
        snprintf(buf, n, "%.0f", v);
}

// A point's KV cache dtype as the tables name it ("auto": its engine failed
// before resolving it).
static const char *kv_name(const point *p) {
    return p->kv_dtype < 0 ? "auto" : engine_kv_dtype_name((llm_dtype)p->kv_dtype);
}

void sweep_write_csv(FILE *f, const point *pts, int n) {
    for (int c = 0; c < NCOLS; c++)
        fprintf(f, "%s%s%s", c ? "," : "", cols[c].name, c == 0 ? ",kv_cache_dtype" : "");
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            char b[64];
            fmt_col(&pts[i], &cols[c], b, sizeof b);
            fprintf(f, "%s%s", c ? "," : "", pts[i].ok || c < 4 ? b : "");
            if (c == 0) fprintf(f, ",%s", kv_name(&pts[i]));
        }
        fputc('\n', f);
    }
}

cJSON *sweep_point_json(const point *p) {
    cJSON *o = cJSON_CreateObject();
    for (int c = 0; c < NCOLS; c++) {
        double v = col_value(p, &cols[c]);
        if (isfinite(v))
            cJSON_AddNumberToObject(o, cols[c].name, v);
        else
            cJSON_AddNullToObject(o, cols[c].name);
    }
    cJSON_AddStringToObject(o, "kv_cache_dtype", kv_name(p));
    cJSON_AddBoolToObject(o, "fit", p->ok && p->max_conc >= p->bs);
    return o;
}

void sweep_write_md_tables(FILE *f, const point *pts, int n) {
    char a[32], b[32], c[32], d[32], g[32], h[32], k[32], m[32];
    fprintf(f,
            "## Memory and capacity\n\n"
            "| util | KV | batch | input | output | weights | act. peak | act. in use | KV alloc | "
            "KV peak used | "
            "measured | predicted in use | predicted resident | diff | KV pages | KV tokens | "
            "max conc. | fit | preempt |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        if (!p->ok) {
            fprintf(f, "| %.2f | %s | %d | %d | %d | (could not run) |||||||||||||| no | |\n",
                    p->util, kv_name(p), p->bs, p->in, p->out);
            continue;
        }
        double diff = p->measured ? ((double)p->resident - p->measured) / p->measured * 100 : NAN;
        fprintf(
            f,
            "| %.2f | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %+.1f%% | %d | "
            "%lld | %.1f | %s | %llu |\n",
            p->util, kv_name(p), p->bs, p->in, p->out, llm_fmt_bytes(p->weights, a, sizeof a),
            llm_fmt_bytes(p->activations, b, sizeof b), llm_fmt_bytes(p->act_used, k, sizeof k),
            llm_fmt_bytes(p->kv_alloc, c, sizeof c), llm_fmt_bytes(p->kv_peak, d, sizeof d),
            llm_fmt_bytes(p->measured, g, sizeof g), llm_fmt_bytes(p->predicted, h, sizeof h),
            llm_fmt_bytes(p->resident, m, sizeof m), diff, p->pages, (long long)p->kv_tokens,
            p->max_conc, p->max_conc >= p->bs ? "yes" : "no", (unsigned long long)p->preempt);
    }
    fprintf(
        f, "\n## Speed\n\n"
           "| util | KV | batch | input | output | prefill s | prefill tok/s | step med ms | "
           "step p95/p99 ms | decode tok/s | TTFT mean/med/p95/p99 ms | TPOT mean/med/p95/p99 ms | "
           "total tok/s | output tok/s | decode GB/s (of copy bw) | tok/$ | $/M out tok |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        if (!p->ok) continue;
        fprintf(
            f,
            "| %.2f | %s | %d | %d | %d | %.3f | %.1f | %.2f | %.2f / %.2f | %.1f | %.0f / %.0f "
            "/ %.0f / %.0f | %.2f / %.2f / %.2f / %.2f | %.1f | %.1f | %.2f (%.0f%%) | ",
            p->util, kv_name(p), p->bs, p->in, p->out, p->prefill_s, p->prefill_tps,
            p->step_med * 1e3, p->step_p95 * 1e3, p->step_p99 * 1e3, p->decode_tps,
            p->ttft_mean * 1e3, p->ttft_med * 1e3, p->ttft_p95 * 1e3, p->ttft_p99 * 1e3,
            p->tpot_mean * 1e3, p->tpot_med * 1e3, p->tpot_p95 * 1e3, p->tpot_p99 * 1e3,
            p->total_tps, p->out_tps, p->bw_gbs, 100.0 * p->bw_frac);
        if (isfinite(p->usd_per_mtok))
            fprintf(f, "%.0f | %.4f |\n", p->tok_per_dollar, p->usd_per_mtok);
        else
            fprintf(f, "- | - |\n");
    }
}

int sweep_write_reports(const char *dir, const sweep_spec *sp, const point *pts, int n, char *err) {
    char *path = llm_path_join(dir, "summary.csv");
    FILE *f = fopen(path, "w");
    free(path);
    if (!f) return llm_errf(err, "%s/summary.csv: %s", dir, strerror(errno));
    sweep_write_csv(f, pts, n);
    fclose(f);
    path = llm_path_join(dir, "report.md");
    f = fopen(path, "w");
    free(path);
    if (!f) return llm_errf(err, "%s/report.md: %s", dir, strerror(errno));
    fprintf(f,
            "# bench_engine sweep\n\nmodel `%s`, device %s, %d measured run(s) per point after "
            "%d warm-up run(s).\n\n",
            sp->model, sp->device, sp->repeat, sp->warmup);
    fprintf(
        f,
        "Memory: *measured* is the growth of the process's resident set (VmRSS) since "
        "before the first engine was created: the weights once read, the workspace rows "
        "and KV pages actually touched (the CPU backend's pools are allocated lazily). "
        "*Predicted* is the analytic in-use figure: weights + activations in use (the "
        "forward workspace at the largest step's tokens and sequences) + overhead + KV "
        "peak in use (max pages used x page bytes). *act. peak* is the workspace the "
        "engine reserves at max_num_batched_tokens, which the budget subtracts before "
        "sizing the KV pool; *predicted resident* adds what RSS cannot forget: the workspace rows "
        "of the largest step so far and every KV page handed out since the engine started (the "
        "free list is LRU, so a released page is reused only after the pool has cycled, and a "
        "touched page stays resident); diff = (predicted resident - measured) / measured.\n\n");
    fprintf(f, "The figures (every grid dimension as an axis, a series or a panel, the spread "
               "across repeats, noisy points flagged) and the command line, version and date "
               "are in report.html.\n\n");
    sweep_write_md_tables(f, pts, n);
    fclose(f);
    return sweep_figures(dir, NULL, err);
}

int sweep_mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}
