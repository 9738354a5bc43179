// bench_run.c - see bench_run.h.
#include "bench_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "forward.h"
#include "util.h"

volatile sig_atomic_t bench_stop;

static void on_stop_signal(int sig) {
    bench_stop = sig;
    signal(sig, SIG_DFL);
}

void bench_stop_signals(int on) {
    bench_stop = 0;
    signal(SIGINT, on ? on_stop_signal : SIG_DFL);
    signal(SIGTERM, on ? on_stop_signal : SIG_DFL);
}

void run_free(run_result *r) {
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

int run_batch(engine *e, int bs, int in, int out, const mem_baseline *mem0, int seed, run_result *r,
              char *err) {
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
        if (bench_stop) { // abort what is left; the caller reports the points done
            for (int i = 0; i < bs; i++) engine_abort(e, ids[i]);
            while (engine_has_work(e))
                if (engine_step(e, &o, &n, err)) break;
            snprintf(r->err, sizeof r->err, "interrupted");
            free(t_first), free(n_gen), free(ids), free(prompt);
            return 0;
        }
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
    r->rss = bench_measured_growth(e, mem0);
    engine_get_stats(e, &st);
    r->preempt = st.preemptions - pre0;
    r->ok = rc == 0;
    free(t_first), free(n_gen), free(ids), free(prompt);
    return rc;
}

// The workspace a step of T tokens and S sequences touches: the list the
// engine allocates (forward_workspace_estimate) at those limits. The CPU
// backend's buffers are allocated lazily, so only this part is resident.
static uint64_t touched_workspace(const model_config *mc, int T, int S, const engine_stats *st) {
    forward_opts fo = {.max_tokens = T,
                       .max_seqs = S,
                       .max_context = st->max_model_len,
                       .block_size = st->block_size};
    return forward_workspace_estimate(mc, &fo);
}

// What RSS should hold after an engine's runs so far: weights, the workspace
// rows its largest step touched, and every KV page ever handed out (the free
// list is LRU, so released pages are not reused before the pool has cycled, and
// a touched page stays resident): min(pages allocated so far, pool) pages.
uint64_t resident_estimate(const model_config *mc, const engine_stats *st, uint64_t life_pages,
                           int life_t, int life_s) {
    uint64_t act = touched_workspace(mc, life_t, life_s, st);
    if (act > st->activations) act = st->activations;
    uint64_t pages =
        life_pages < (uint64_t)st->pages_total ? life_pages : (uint64_t)st->pages_total;
    return st->weights + st->overhead + act + pages * st->page_bytes;
}

void summarize(point *p, run_result *rr, int n, const engine_stats *st, const model_config *mc,
               uint64_t kv_tok_b, double copy_gbs, double hourly) {
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
    p->act_used = touched_workspace(mc, T, S, st);
    if (p->act_used > p->activations) p->act_used = p->activations;
    p->predicted = p->weights + p->act_used + p->overhead + p->kv_peak;
    p->prefill_s = pf / n;
    p->prefill_tps = (double)p->bs * p->in / p->prefill_s;
    p->step_med = bench_pct(steps, ns, 50);
    p->step_p95 = bench_pct(steps, ns, 95);
    p->step_p99 = bench_pct(steps, ns, 99);
    p->decode_tps = dec_t > 0 ? dec_tok / dec_t : NAN;
    p->ttft_mean = bench_mean(ttft, nt), p->ttft_med = bench_pct(ttft, nt, 50),
    p->ttft_p95 = bench_pct(ttft, nt, 95), p->ttft_p99 = bench_pct(ttft, nt, 99);
    p->tpot_mean = bench_mean(tpot, np), p->tpot_med = bench_pct(tpot, np, 50),
    p->tpot_p95 = bench_pct(tpot, np, 95), p->tpot_p99 = bench_pct(tpot, np, 99);
    p->total_tps = (double)p->bs * (p->in + p->out) * n / tot;
    // generated tokens per second of generation: prefill time is not in it
    // (the end-to-end rate, prefill included, is total_tps and the cost's)
    p->out_tps = p->decode_tps;
    double e2e_out = (double)p->bs * p->out * n / tot;
    // bytes a decode step must move: every weight once, plus the KV of each
    // sequence's context (mean context over the decode phase)
    double ctx = p->in + p->out / 2.0;
    p->bw_gbs = ((double)p->weights + (double)p->bs * ctx * (double)kv_tok_b) / p->step_med / 1e9;
    p->copy_gbs = copy_gbs;
    p->bw_frac = p->bw_gbs / p->copy_gbs;
    if (hourly > 0) {
        p->tok_per_dollar = e2e_out * 3600 / hourly;
        p->usd_per_mtok = hourly / 3600 / e2e_out * 1e6;
    } else {
        p->tok_per_dollar = p->usd_per_mtok = NAN;
    }
    free(steps), free(ttft), free(tpot);
}
