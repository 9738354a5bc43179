// bench_engine - measures the engine: a sweep over batch sizes, input and
// output lengths and memory utilizations (memory, capacity, speed, cost),
// written as raw.jsonl, summary.csv, report.md, SVG plots and report.html;
// and the memory plan alone (`memory`, with --dry-run: no engine at all).
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "engine_args.h"
#include "forward.h"
#include "sweep_report.h"
#include "util.h"

#define MAXV 32

static void usage(FILE *f) {
    fprintf(f, "usage: bench_engine sweep  (--model DIR | --synthetic NAME) [options]\n"
               "       bench_engine latency (--model DIR | --synthetic NAME) [--batch-sizes B "
               "--input-lens I --output-lens O --repeat R --warmup W]\n"
               "       bench_engine throughput (--model DIR | --synthetic NAME) [--num-requests N "
               "--input-lens I --output-lens O]\n"
               "       bench_engine memory (--model DIR | --synthetic NAME) [--dry-run] [options]\n"
               "sweep:\n"
               "  --batch-sizes L        comma list (1,4)\n"
               "  --input-lens L         prompt tokens (32,64)\n"
               "  --output-lens L        generated tokens (8)\n"
               "  --gpu-memory-utilization L   one engine per value (0.9)\n"
               "  --repeat R  --warmup W measured and discarded runs per point (1, 0)\n"
               "  --out DIR              run directory (results/<timestamp>)\n"
               "  --format md|csv|json   also print the summary to stdout\n"
               "  --gpu-hourly-cost X    $/hour of the device: tokens per dollar\n"
               "memory:\n"
               "  --utilizations L       (0.5,0.7,0.8,0.9,0.95)\n"
               "  --seq-lens L           (512,2048,8192)\n"
               "  --dry-run              plan from the configuration alone\n");
    engine_args_usage(f);
}

static int parse_list(const char *s, double *v, int *n) {
    *n = 0;
    while (*s && *n < MAXV) {
        char *end;
        v[(*n)++] = strtod(s, &end);
        if (end == s || !(v[*n - 1] > 0)) return -1;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *n ? 0 : -1;
}

// Resident set size of this process, bytes (VmRSS; 0 when unreadable).
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

// Memory in use on the device the engine runs on: device memory in use
// (cudaMemGetInfo) on a GPU, this process's RSS on the CPU.
typedef struct {
    uint64_t cpu; // RSS before any engine
    uint64_t gpu; // device memory in use before any engine (0 without a GPU)
} mem_baseline;

static mem_baseline baseline_now(device_kind want) {
    mem_baseline b = {rss_bytes(), 0};
    device_info d;
    char err[LLM_ERR_LEN];
    if (want != DEVICE_CPU && device_select(want, &d, err) == 0 && d.kind == DEVICE_CUDA)
        b.gpu = d.total_bytes - d.free_bytes;
    return b;
}

// Growth of the engine's device memory since the baseline.
static uint64_t measured_growth(const engine *e, const mem_baseline *b) {
    if (engine_device(e)->kind == DEVICE_CUDA) {
        uint64_t free_b, total_b;
        engine_memory_info(e, &free_b, &total_b);
        return total_b - free_b > b->gpu ? total_b - free_b - b->gpu : 0;
    }
    uint64_t rss = rss_bytes();
    return rss > b->cpu ? rss - b->cpu : 0;
}

// Copy bandwidth of host memory, GB/s of bytes read + written: the best of 5
// parallel copies of 128 MiB. The floor decode bandwidth is compared with.
static double copy_bandwidth_gbs(void) {
    const size_t n = (size_t)128 << 20, chunks = 64;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a);
        free(b);
        return NAN;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t = llm_now();
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < chunks; c++)
            memcpy(b + c * (n / chunks), a + c * (n / chunks), n / chunks);
        t = llm_now() - t;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    return 2.0 * (double)n / best / 1e9;
}

static double copy_gbs_measured = NAN; // set once per sweep

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Percentile p (0..100) of v[n] (sorted in place); NAN when n == 0.
static double pct(double *v, int n, double p) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double r = p / 100 * (n - 1);
    int i = (int)r;
    return i + 1 < n ? v[i] + (v[i + 1] - v[i]) * (r - i) : v[n - 1];
}

static double mean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : NAN;
}

static double stddev(const double *v, int n) {
    double m = mean(v, n), s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return n > 1 ? sqrt(s / (n - 1)) : 0;
}

// ---- one measurement ----

typedef struct {
    double util;
    int bs, in, out;
    int ok; // 0: the batch could not be submitted (err)
    char err[LLM_ERR_LEN];
    double prefill_s; // until every request has its first token
    double decode_s;  // the steps after that
    int decode_steps;
    double *step_s;      // decode step times [decode_steps]
    double *ttft, *tpot; // per request [bs]
    int n_tpot;
    double total_s;
    uint64_t kv_peak; // max pages_used x page_bytes seen
    uint64_t rss;     // growth of device memory in use (RSS on the CPU) since before any engine
    uint64_t preempt; // preemptions during the run
    int max_step_tokens, max_step_seqs; // the largest step's tokens and sequences
} run_result;

static void run_free(run_result *r) {
    free(r->step_s);
    free(r->ttft);
    free(r->tpot);
    memset(r, 0, sizeof *r);
}

// Deterministic pseudo-random prompt ids in [0, vocab), avoiding eos/bos.
static void make_prompt(const model_config *c, int32_t *ids, int n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) {
        int id;
        do {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            id = (int)(x % (uint64_t)c->vocab_size);
        } while (config_is_eos(c, id) || id == c->bos_id);
        ids[i] = id;
    }
}

// Runs bs requests of in prompt tokens and out generated tokens together,
// greedy with ignore_eos. Returns 0 (r->ok says whether it ran), -1 on an
// engine failure (err).
static int run_batch(engine *e, int bs, int in, int out, const mem_baseline *mem0, int seed,
                     run_result *r, char *err) {
    const model_config *c = engine_model_config(e);
    engine_stats st;
    engine_get_stats(e, &st);
    uint64_t pre0 = st.preemptions;
    r->bs = bs, r->in = in, r->out = out;
    r->ttft = calloc((size_t)bs, sizeof(double));
    r->tpot = calloc((size_t)bs, sizeof(double));
    int64_t *ids = calloc((size_t)bs, sizeof *ids);
    int32_t *prompt = malloc((size_t)in * sizeof *prompt);
    int cap = out + 16;
    r->step_s = malloc((size_t)cap * sizeof(double));
    if (!r->ttft || !r->tpot || !ids || !prompt || !r->step_s) {
        free(ids), free(prompt);
        return llm_errf(err, "out of memory");
    }
    sampling_params sp = sampling_params_default();
    sp.temperature = 0;
    sp.ignore_eos = 1;
    sp.max_tokens = out;
    double t0 = llm_now();
    for (int i = 0; i < bs; i++) {
        // a prompt never seen before: no prefix-cache hit across runs or points
        static uint64_t serial;
        make_prompt(c, prompt, in, ++serial);
        ids[i] = engine_add_request(e, prompt, in, &sp, r->err);
        if (ids[i] < 0) {
            for (int j = 0; j < i; j++) engine_abort(e, ids[j]);
            engine_output *o;
            int n;
            while (engine_has_work(e))
                if (engine_step(e, &o, &n, err)) break;
            free(ids), free(prompt);
            return 0;
        }
    }
    double *t_first = calloc((size_t)bs, sizeof(double));
    int *n_gen = calloc((size_t)bs, sizeof(int));
    int firsts = 0, rc = 0;
    double t_prefill_end = 0;
    while (engine_has_work(e)) {
        engine_output *o;
        int n;
        double ts = llm_now();
        if (engine_step(e, &o, &n, err)) {
            rc = -1;
            break;
        }
        double te = llm_now();
        int was_decode = firsts == bs;
        for (int k = 0; k < n; k++) {
            int i = 0;
            while (i < bs && ids[i] != o[k].id) i++;
            if (i == bs || o[k].token < 0) continue;
            if (n_gen[i]++ == 0) {
                t_first[i] = te;
                r->ttft[i] = te - t0;
                if (++firsts == bs) t_prefill_end = te;
            }
            if (o[k].finished && n_gen[i] > 1)
                r->tpot[r->n_tpot++] = (te - t_first[i]) / (n_gen[i] - 1);
        }
        if (was_decode && r->decode_steps < cap) r->step_s[r->decode_steps++] = te - ts;
        uint64_t computed = st.computed_tokens;
        engine_get_stats(e, &st);
        if (st.kv_used > r->kv_peak) r->kv_peak = st.kv_used;
        if ((int)(st.computed_tokens - computed) > r->max_step_tokens)
            r->max_step_tokens = (int)(st.computed_tokens - computed);
        if (st.running > r->max_step_seqs) r->max_step_seqs = st.running;
    }
    double t1 = llm_now();
    r->total_s = t1 - t0;
    r->prefill_s = t_prefill_end - t0;
    r->decode_s = t1 - t_prefill_end;
    r->rss = measured_growth(e, mem0);
    engine_get_stats(e, &st);
    r->preempt = st.preemptions - pre0;
    r->ok = rc == 0;
    free(t_first), free(n_gen), free(ids), free(prompt);
    return rc;
}

// ---- one grid point: statistics over the repeats ----

static uint64_t workspace_estimate(const model_config *c, int max_tokens, int max_seqs,
                                   int logit_rows, int max_context, int block_size);

// What RSS should hold after an engine's runs so far: weights, the workspace
// rows its largest step touched, and every KV page ever handed out (the free
// list is LRU, so released pages are not reused before the pool has cycled, and
// a touched page stays resident): min(pages allocated so far, pool) pages.
static uint64_t resident_estimate(const model_config *mc, const engine_stats *st,
                                  uint64_t life_pages, int life_t, int life_s) {
    uint64_t act =
        workspace_estimate(mc, life_t, life_s, life_s, st->max_model_len, st->block_size);
    if (act > st->activations) act = st->activations;
    uint64_t pages =
        life_pages < (uint64_t)st->pages_total ? life_pages : (uint64_t)st->pages_total;
    return st->weights + st->overhead + act + pages * st->page_bytes;
}

static void summarize(point *p, run_result *rr, int n, const engine_stats *st,
                      const model_config *mc, uint64_t kv_tok_b, double hourly) {
    int ns = 0, nt = 0, np = 0;
    for (int i = 0; i < n; i++) ns += rr[i].decode_steps, nt += rr[i].bs, np += rr[i].n_tpot;
    double *steps = malloc(((size_t)ns + 1) * sizeof(double));
    double *ttft = malloc(((size_t)nt + 1) * sizeof(double));
    double *tpot = malloc(((size_t)np + 1) * sizeof(double));
    double pf = 0, dec_t = 0, dec_tok = 0, tot = 0;
    ns = nt = np = 0;
    for (int i = 0; i < n; i++) {
        run_result *r = &rr[i];
        memcpy(steps + ns, r->step_s, (size_t)r->decode_steps * sizeof(double));
        ns += r->decode_steps;
        memcpy(ttft + nt, r->ttft, (size_t)r->bs * sizeof(double));
        nt += r->bs;
        memcpy(tpot + np, r->tpot, (size_t)r->n_tpot * sizeof(double));
        np += r->n_tpot;
        pf += r->prefill_s, dec_t += r->decode_s, tot += r->total_s;
        dec_tok += (double)r->bs * (r->out - 1);
        if (r->kv_peak > p->kv_peak) p->kv_peak = r->kv_peak;
        if (r->rss > p->measured) p->measured = r->rss;
        p->preempt += r->preempt;
    }
    p->weights = st->weights, p->activations = st->activations, p->overhead = st->overhead;
    p->kv_alloc = st->kv_allocated, p->pages = st->pages_total, p->kv_tokens = st->kv_tokens;
    int pages_per = (p->in + p->out + st->block_size - 1) / st->block_size;
    p->max_conc = (double)st->pages_total / pages_per;
    // the workspace is allocated lazily (CPU) and touched only in the rows a
    // step uses: predict the in-use part from the largest step of the runs
    int T = 1, S = 1;
    for (int i = 0; i < n; i++) {
        if (rr[i].max_step_tokens > T) T = rr[i].max_step_tokens;
        if (rr[i].max_step_seqs > S) S = rr[i].max_step_seqs;
    }
    p->act_used = workspace_estimate(mc, T, S, S, st->max_model_len, st->block_size);
    if (p->act_used > p->activations) p->act_used = p->activations;
    p->predicted = p->weights + p->act_used + p->overhead + p->kv_peak;
    p->prefill_s = pf / n;
    p->prefill_tps = (double)p->bs * p->in / p->prefill_s;
    p->step_med = pct(steps, ns, 50);
    p->step_p99 = pct(steps, ns, 99);
    p->decode_tps = dec_t > 0 ? dec_tok / dec_t : NAN;
    p->ttft_mean = mean(ttft, nt), p->ttft_med = pct(ttft, nt, 50), p->ttft_p99 = pct(ttft, nt, 99);
    p->tpot_mean = mean(tpot, np), p->tpot_med = pct(tpot, np, 50), p->tpot_p99 = pct(tpot, np, 99);
    p->total_tps = (double)p->bs * (p->in + p->out) * n / tot;
    p->out_tps = (double)p->bs * p->out * n / tot;
    // bytes a decode step must move: every weight once, plus the KV of each
    // sequence's context (mean context over the decode phase)
    double ctx = p->in + p->out / 2.0;
    p->bw_gbs = ((double)p->weights + (double)p->bs * ctx * (double)kv_tok_b) / p->step_med / 1e9;
    p->copy_gbs = copy_gbs_measured;
    p->bw_frac = p->bw_gbs / p->copy_gbs;
    if (hourly > 0) {
        p->tok_per_dollar = p->out_tps * 3600 / hourly;
        p->usd_per_mtok = hourly / 3600 / p->out_tps * 1e6;
    } else {
        p->tok_per_dollar = p->usd_per_mtok = NAN;
    }
    free(steps), free(ttft), free(tpot);
}

// A one-line progress report on a terminal (point i of n, ETA); silent in pipes.
typedef struct {
    int tty, n, done;
    double t0;
} progress;

static void progress_point(progress *g, const char *what) {
    g->done++;
    if (!g->tty) return;
    double el = llm_now() - g->t0, eta = g->done ? el / g->done * (g->n - g->done) : 0;
    fprintf(stderr, "\rsweep: point %d of %d (%s), %.0f s elapsed, ETA %.0f s   %s", g->done, g->n,
            what, el, eta, g->done == g->n ? "\n" : "");
    fflush(stderr);
}

// ---- subcommands ----

typedef struct {
    engine_config ec;
    const char *utils, *bss, *ins, *outs, *seq_lens, *out_dir, *format;
    int repeat, warmup, dry_run, num_requests;
    double hourly;
} options;

static int cmd_sweep(options *o) {
    char err[LLM_ERR_LEN];
    double utils[MAXV], bss[MAXV], ins[MAXV], outs[MAXV];
    int nu, nb, ni, no;
    if (parse_list(o->utils ? o->utils : "0.9", utils, &nu) ||
        parse_list(o->bss ? o->bss : "1,4", bss, &nb) ||
        parse_list(o->ins ? o->ins : "32,64", ins, &ni) ||
        parse_list(o->outs ? o->outs : "8", outs, &no)) {
        fprintf(stderr, "bench_engine: bad list (comma-separated positive numbers, at most %d)\n",
                MAXV);
        return 2;
    }
    for (int i = 0; i < no; i++)
        if (outs[i] < 2) {
            fprintf(stderr, "bench_engine: output lengths must be >= 2 (decode needs a step)\n");
            return 2;
        }
    char dir[512];
    llm_run_dir(dir, sizeof dir, o->out_dir, "");
    if (sweep_mkdirs(dir)) {
        fprintf(stderr, "bench_engine: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char *raw_path = llm_path_join(dir, "raw.jsonl");
    FILE *raw = fopen(raw_path, "w");
    free(raw_path);
    if (!raw) {
        fprintf(stderr, "bench_engine: %s/raw.jsonl: %s\n", dir, strerror(errno));
        return 1;
    }
    const int n = nu * nb * ni * no;
    point *pts = calloc((size_t)n, sizeof *pts);
    run_result *rr = calloc((size_t)(o->repeat + o->warmup), sizeof *rr);
    progress pg = {.tty = isatty(STDERR_FILENO), .n = n, .t0 = llm_now()};
    char what[96];
    int np = 0, rc = 0;
    const char *model = o->ec.model_dir ? o->ec.model_dir : o->ec.synthetic;
    char devname[300] = "";
    mem_baseline mem0 = baseline_now(o->ec.device);
    copy_gbs_measured = copy_bandwidth_gbs();
    for (int u = 0; u < nu && rc == 0; u++) {
        engine_config ec = o->ec;
        ec.gpu_memory_utilization = utils[u];
        engine *e = engine_create(&ec, err);
        if (!e) {
            fprintf(stderr, "\nbench_engine: utilization %.2f: %s\n", utils[u], err);
            for (int k = 0; k < nb * ni * no; k++, np++) {
                pts[np].util = utils[u];
                pts[np].bs = (int)bss[k / (ni * no)];
                pts[np].in = (int)ins[k / no % ni];
                pts[np].out = (int)outs[k % no];
                progress_point(&pg, "engine failed");
            }
            continue;
        }
        const device_info *dv = engine_device(e);
        snprintf(devname, sizeof devname, "%s (%s)", device_name(dv->kind), dv->name);
        const model_config *mc = engine_model_config(e);
        engine_stats st;
        engine_get_stats(e, &st);
        uint64_t kv_tok_b = st.page_bytes / (uint64_t)st.block_size;
        uint64_t life_pages = 0;    // KV pages allocated over the engine's life
        int life_t = 1, life_s = 1; // its largest step
        for (int b = 0; b < nb && rc == 0; b++)
            for (int i = 0; i < ni && rc == 0; i++)
                for (int k = 0; k < no && rc == 0; k++) {
                    point *p = &pts[np++];
                    p->util = utils[u], p->bs = (int)bss[b], p->in = (int)ins[i];
                    p->out = (int)outs[k];
                    int nr = 0, ok = 1;
                    for (int r = 0; r < o->warmup + o->repeat; r++) {
                        run_result x = {0};
                        x.util = p->util;
                        if (run_batch(e, p->bs, p->in, p->out, &mem0, r, &x, err)) {
                            fprintf(stderr, "\nbench_engine: %s\n", err);
                            rc = 1;
                        }
                        if (!x.ok) {
                            if (!rc)
                                fprintf(stderr, "\nbench_engine: util %.2f batch %d input %d: %s\n",
                                        p->util, p->bs, p->in, x.err);
                            run_free(&x);
                            ok = 0;
                            break;
                        }
                        life_pages += x.kv_peak / st.page_bytes;
                        if (x.max_step_tokens > life_t) life_t = x.max_step_tokens;
                        if (x.max_step_seqs > life_s) life_s = x.max_step_seqs;
                        uint64_t resident = resident_estimate(mc, &st, life_pages, life_t, life_s);
                        if (r < o->warmup) {
                            run_free(&x);
                            continue;
                        }
                        rr[nr++] = x;
                        cJSON *j = cJSON_CreateObject();
                        cJSON_AddStringToObject(j, "model", model);
                        cJSON_AddStringToObject(j, "device", devname);
                        cJSON_AddStringToObject(j, "arch", mc->arch_name);
                        cJSON_AddNumberToObject(j, "repeat_index", r - o->warmup);
                        cJSON_AddNumberToObject(j, "gpu_memory_utilization", p->util);
                        cJSON_AddNumberToObject(j, "device_total_bytes", (double)st.device_total);
                        cJSON_AddNumberToObject(j, "budget_bytes", (double)st.budget);
                        cJSON_AddNumberToObject(j, "block_size", st.block_size);
                        cJSON_AddNumberToObject(j, "max_num_seqs", ec.max_num_seqs);
                        cJSON_AddNumberToObject(j, "max_num_batched_tokens",
                                                st.max_num_batched_tokens);
                        cJSON_AddNumberToObject(j, "max_model_len", st.max_model_len);
                        cJSON_AddBoolToObject(j, "prefix_caching", ec.prefix_caching);
                        point one = *p;
                        summarize(&one, &x, 1, &st, mc, kv_tok_b, o->hourly);
                        one.ok = 1;
                        one.resident = resident;
                        cJSON *m = sweep_point_json(&one);
                        for (cJSON *c = m->child; c; c = c->next)
                            cJSON_AddItemToObject(j, c->string, cJSON_Duplicate(c, 1));
                        cJSON_Delete(m);
                        char *s = cJSON_PrintUnformatted(j);
                        fprintf(raw, "%s\n", s);
                        free(s);
                        cJSON_Delete(j);
                    }
                    if (ok && nr) {
                        summarize(p, rr, nr, &st, mc, kv_tok_b, o->hourly);
                        p->ok = 1;
                        p->resident = resident_estimate(mc, &st, life_pages, life_t, life_s);
                    } else {
                        p->weights = st.weights, p->kv_alloc = st.kv_allocated;
                        p->pages = st.pages_total, p->kv_tokens = st.kv_tokens;
                    }
                    for (int r = 0; r < nr; r++) run_free(&rr[r]);
                    snprintf(what, sizeof what, "util %.2f batch %d input %d output %d", p->util,
                             p->bs, p->in, p->out);
                    progress_point(&pg, what);
                }
        engine_destroy(e);
    }
    fclose(raw);
    int any = 0;
    for (int i = 0; i < np; i++) any |= pts[i].ok;
    if (!any && rc == 0) {
        fprintf(stderr, "bench_engine: no grid point could run\n");
        rc = 1;
    }
    sweep_spec sp = {.model = model, .device = devname, .repeat = o->repeat, .warmup = o->warmup};
    if (rc == 0 && sweep_write_reports(dir, &sp, pts, np, err)) {
        fprintf(stderr, "bench_engine: %s\n", err);
        rc = 1;
    }
    if (rc == 0 && o->format) {
        if (!strcmp(o->format, "csv")) {
            sweep_write_csv(stdout, pts, np);
        } else if (!strcmp(o->format, "json")) {
            cJSON *a = cJSON_CreateArray();
            for (int i = 0; i < np; i++) cJSON_AddItemToArray(a, sweep_point_json(&pts[i]));
            char *s = cJSON_Print(a);
            printf("%s\n", s);
            free(s);
            cJSON_Delete(a);
        } else {
            sweep_write_md_tables(stdout, pts, np);
        }
    }
    if (rc == 0) fprintf(stderr, "bench_engine: results in %s/\n", dir);
    free(pts);
    free(rr);
    return rc;
}

// The forward workspace forward_create allocates (engine/forward.c), bytes.
static uint64_t workspace_estimate(const model_config *c, int max_tokens, int max_seqs,
                                   int logit_rows, int max_context, int block_size) {
    const uint64_t T = (uint64_t)max_tokens, S = (uint64_t)max_seqs, rows = (uint64_t)logit_rows;
    const uint64_t q = (uint64_t)config_q_dim(c), kv = (uint64_t)config_kv_dim(c);
    const uint64_t max_blocks = ((uint64_t)max_context + block_size - 1) / block_size;
    uint64_t b = T * (3 * (uint64_t)c->dim + 2 * q + 2 * kv + 2 * (uint64_t)c->hidden_dim) * 4;
    b += rows * (uint64_t)c->dim * 4 + rows * (uint64_t)c->vocab_size * 4;
    b += (uint64_t)c->head_dim / 2 * 4;
    b += 5 * T * 4 + (S + 1) * 4 + S * 4 + S * max_blocks * 4;
    return b;
}

static int cmd_memory(options *o) {
    char err[LLM_ERR_LEN], a[32], b[32], c[32];
    double utils[MAXV], lens[MAXV];
    int nu, nl;
    if (parse_list(o->utils ? o->utils : "0.5,0.7,0.8,0.9,0.95", utils, &nu) ||
        parse_list(o->seq_lens ? o->seq_lens : "512,2048,8192", lens, &nl)) {
        fprintf(stderr, "bench_engine: bad list\n");
        return 2;
    }
    engine_config ec = o->ec;
    model_config mc;
    uint64_t total, weights, act, overhead = 0, page;
    engine_stats st = {0};
    int max_len;
    const char *model = ec.model_dir ? ec.model_dir : ec.synthetic;
    if (o->dry_run) {
        if (ec.model_dir ? config_load(ec.model_dir, &mc, err)
                         : model_synthetic_config(ec.synthetic, &mc, err)) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 1;
        }
        llm_dtype dt = ec.dtype >= 0 ? (llm_dtype)ec.dtype : ec.model_dir ? mc.dtype : LLM_BF16;
        if (ec.quantization == QUANT_INT8) mc.quant = QUANT_INT8;
        weights = model_weight_bytes(&mc, dt);
        max_len = ec.max_model_len && ec.max_model_len < mc.max_position ? ec.max_model_len
                                                                         : mc.max_position;
        act =
            workspace_estimate(&mc, ec.max_num_batched_tokens, ec.max_num_seqs,
                               ec.max_num_seqs > 16 ? ec.max_num_seqs : 16, max_len, ec.block_size);
        total = ec.device_memory;
        if (!total) {
            device_info d;
            device_cpu_info(&d);
            total = d.free_bytes + weights;
        }
        printf("memory plan (dry run: no engine) for %s on a %s device\n", model,
               llm_fmt_bytes(total, a, sizeof a));
    } else {
        engine *e = engine_create(&ec, err);
        if (!e) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 1;
        }
        engine_get_stats(e, &st);
        mc = *engine_model_config(e);
        weights = st.weights, act = st.activations, overhead = st.overhead;
        total = st.device_total, max_len = st.max_model_len;
        printf("memory plan (measured on %s) for %s on a %s device\n",
               device_name(engine_device(e)->kind), model, llm_fmt_bytes(total, a, sizeof a));
        engine_destroy(e);
    }
    page = forward_page_bytes(&mc, ec.block_size);
    printf("weights %s (%llu bytes), activation peak %s (%llu bytes, %d batched tokens), "
           "overhead %s\n",
           llm_fmt_bytes(weights, a, sizeof a), (unsigned long long)weights,
           llm_fmt_bytes(act, b, sizeof b), (unsigned long long)act, ec.max_num_batched_tokens,
           llm_fmt_bytes(overhead, c, sizeof c));
    if (!o->dry_run) {
        char d[32];
        printf("weights by kind: embeddings %s (%llu bytes), int8 matrices with scales %s (%llu "
               "bytes), other %s (%llu bytes); int8 saves %s (%llu bytes) against 16-bit\n",
               llm_fmt_bytes(st.weights_embed, a, sizeof a), (unsigned long long)st.weights_embed,
               llm_fmt_bytes(st.weights_int8, b, sizeof b), (unsigned long long)st.weights_int8,
               llm_fmt_bytes(weights - st.weights_embed - st.weights_int8, c, sizeof c),
               (unsigned long long)(weights - st.weights_embed - st.weights_int8),
               llm_fmt_bytes(st.weights_saved, d, sizeof d), (unsigned long long)st.weights_saved);
    } else if (mc.quant == QUANT_INT8) {
        printf("weights: Linear matrices in int8 (1 byte per element + a 4-byte scale per row)%s\n",
               mc.quant_embeddings ? ", embeddings too" : "");
    }
    printf("KV per token %llu bytes (%d layers x %d kv heads x %d x 2 (K,V) x dtype); page of %d "
           "tokens %s; max_model_len %d\n\n",
           (unsigned long long)(page / (uint64_t)ec.block_size), mc.n_layers, mc.n_kv_heads,
           mc.head_dim, ec.block_size, llm_fmt_bytes(page, a, sizeof a), max_len);
    printf("| util | budget | KV pool | KV tokens | predicted total |");
    for (int l = 0; l < nl; l++) printf(" max batch @%d |", (int)lens[l]);
    printf("\n|---|---|---|---|---|");
    for (int l = 0; l < nl; l++) printf("---|");
    printf("\n");
    for (int u = 0; u < nu; u++) {
        uint64_t budget = ec.kv_cache_memory ? weights + act + overhead + ec.kv_cache_memory
                                             : (uint64_t)((double)total * utils[u]);
        uint64_t fixed = weights + act + overhead;
        uint64_t pages = budget > fixed ? (budget - fixed) / page : 0;
        printf("| %.2f | %s | %s | %llu | %s |", utils[u], llm_fmt_bytes(budget, a, sizeof a),
               llm_fmt_bytes(pages * page, b, sizeof b),
               (unsigned long long)(pages * (uint64_t)ec.block_size),
               llm_fmt_bytes(fixed + pages * page, c, sizeof c));
        for (int l = 0; l < nl; l++) {
            uint64_t per = ((uint64_t)lens[l] + ec.block_size - 1) / ec.block_size;
            printf(" %llu |", (unsigned long long)(pages / per));
        }
        printf("\n");
    }
    return 0;
}

// latency: one batch (first batch size, input and output length), prefill
// then decode, mean +- stddev over --repeat runs after --warmup.
static int cmd_latency(options *o) {
    char err[LLM_ERR_LEN];
    double bs[MAXV], in[MAXV], out[MAXV];
    int n1, n2, n3;
    if (parse_list(o->bss ? o->bss : "1", bs, &n1) || parse_list(o->ins ? o->ins : "32", in, &n2) ||
        parse_list(o->outs ? o->outs : "8", out, &n3) || out[0] < 2) {
        fprintf(stderr, "bench_engine: bad --batch-sizes, --input-lens or --output-lens\n");
        return 2;
    }
    double u[MAXV];
    int nu;
    if (o->utils && parse_list(o->utils, u, &nu) == 0) o->ec.gpu_memory_utilization = u[0];
    mem_baseline mem0 = baseline_now(o->ec.device);
    engine *e = engine_create(&o->ec, err);
    if (!e) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    int R = o->repeat, rc = 0;
    double *pf = calloc((size_t)R, sizeof(double)), *dc = calloc((size_t)R, sizeof(double));
    double *tot = calloc((size_t)R, sizeof(double));
    for (int r = 0; r < o->warmup + R && rc == 0; r++) {
        run_result x = {0};
        if (run_batch(e, (int)bs[0], (int)in[0], (int)out[0], &mem0, r, &x, err) || !x.ok) {
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
        printf("prefill      %.2f +- %.2f ms\n", mean(pf, R) * 1e3, stddev(pf, R) * 1e3);
        printf("decode step  %.2f +- %.2f ms\n", mean(dc, R) * 1e3, stddev(dc, R) * 1e3);
        printf("end to end   %.2f +- %.2f ms\n", mean(tot, R) * 1e3, stddev(tot, R) * 1e3);
    }
    free(pf), free(dc), free(tot);
    engine_destroy(e);
    return rc;
}

// throughput: --num-requests N requests of the first input and output length
// submitted at once; prints request, total and output tokens/s.
static int cmd_throughput(options *o) {
    char err[LLM_ERR_LEN];
    double in[MAXV], out[MAXV];
    int n2, n3;
    if (parse_list(o->ins ? o->ins : "32", in, &n2) ||
        parse_list(o->outs ? o->outs : "8", out, &n3) || out[0] < 2 || o->num_requests < 1) {
        fprintf(stderr, "bench_engine: bad --input-lens, --output-lens or --num-requests\n");
        return 2;
    }
    mem_baseline mem0 = baseline_now(o->ec.device);
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

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    options o = {.ec = engine_config_default(), .repeat = 1, .num_requests = 16};
    char err[LLM_ERR_LEN];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2)) {
            fprintf(stderr, "bench_engine: unexpected argument '%s'\n", arg);
            return 2;
        }
        char name[64];
        const char *eq = strchr(arg, '='), *val;
        int inline_val = eq != NULL;
        snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2),
                 arg + 2);
        val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        const char **sv = NULL;
        if (!strcmp(name, "dry-run")) {
            o.dry_run = 1;
            continue;
        }
        if (!strcmp(name, "help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(name, "gpu-memory-utilization") || !strcmp(name, "utilizations"))
            sv = &o.utils;
        else if (!strcmp(name, "model"))
            sv = &o.ec.model_dir;
        else if (!strcmp(name, "synthetic"))
            sv = &o.ec.synthetic;
        else if (!strcmp(name, "batch-sizes"))
            sv = &o.bss;
        else if (!strcmp(name, "input-lens"))
            sv = &o.ins;
        else if (!strcmp(name, "output-lens"))
            sv = &o.outs;
        else if (!strcmp(name, "seq-lens"))
            sv = &o.seq_lens;
        else if (!strcmp(name, "out"))
            sv = &o.out_dir;
        else if (!strcmp(name, "format"))
            sv = &o.format;
        int is_num = !strcmp(name, "repeat") || !strcmp(name, "warmup") ||
                     !strcmp(name, "gpu-hourly-cost") || !strcmp(name, "num-requests");
        if (sv || is_num) {
            if (!val) {
                fprintf(stderr, "bench_engine: --%s needs a value\n", name);
                return 2;
            }
            if (sv)
                *sv = val;
            else if (!strcmp(name, "repeat"))
                o.repeat = atoi(val);
            else if (!strcmp(name, "warmup"))
                o.warmup = atoi(val);
            else if (!strcmp(name, "num-requests"))
                o.num_requests = atoi(val);
            else
                o.hourly = atof(val);
            if (!inline_val) i++;
            continue;
        }
        int used = 0;
        int r = engine_args_apply(&o.ec, name, val, &used, err);
        if (r < 0) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 2;
        }
        if (r == 0) {
            fprintf(stderr, "bench_engine: unknown option --%s\n", name);
            return 2;
        }
        if (used && !inline_val) i++;
    }
    if (o.repeat < 1 || o.warmup < 0 || o.hourly < 0) {
        fprintf(stderr, "bench_engine: --repeat >= 1, --warmup >= 0, --gpu-hourly-cost >= 0\n");
        return 2;
    }
    if (!o.ec.model_dir == !o.ec.synthetic) {
        fprintf(stderr, "bench_engine: give --model DIR or --synthetic NAME\n");
        return 2;
    }
    if (o.format && strcmp(o.format, "md") && strcmp(o.format, "csv") && strcmp(o.format, "json")) {
        fprintf(stderr, "bench_engine: --format md, csv or json\n");
        return 2;
    }
    if (!strcmp(cmd, "sweep")) return cmd_sweep(&o);
    if (!strcmp(cmd, "memory")) return cmd_memory(&o);
    if (!strcmp(cmd, "latency")) return cmd_latency(&o);
    if (!strcmp(cmd, "throughput")) return cmd_throughput(&o);
    fprintf(stderr, "bench_engine: unknown command '%s' (sweep, memory, latency, throughput)\n",
            cmd);
    return 2;
}
