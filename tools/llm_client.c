// llm_client - the client and load generator for any OpenAI-compatible server
// (this one, vLLM, llama.cpp's server): one request (--single), a prompts file
// N at a time into a CSV (--batch), a quick benchmark (--benchmark), a chat in
// the terminal (--interactive), and `bench`, the full load generator whose
// figures use vLLM benchmark_serving's definitions and keys.
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_bench.h"
#include "client_config.h"
#include "client_http.h"
#include "client_metrics.h"
#include "client_workload.h"
#include "util.h"

// Defaults of the simple modes; bench's follow vLLM's benchmark (greedy, no retries).
#define MODE_MAX_TOKENS 128
#define MODE_TEMPERATURE 0.7
#define MODE_RETRIES 2
#define BENCH_INPUT_LEN 1024
#define BENCH_OUTPUT_LEN 128
#define BENCH_REQUESTS 100
#define DEFAULT_TIMEOUT_S 60.0
#define DEFAULT_SEED 0

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: llm_client --single (--prompt TEXT | --input FILE --line N) [common]\n"
        "       llm_client --batch --input FILE --output results.csv [--concurrent N] [common]\n"
        "       llm_client --benchmark [--requests N] [--concurrent C] [--prompt TEXT] [common]\n"
        "       llm_client --interactive [common]\n"
        "       llm_client bench [load options] [common]\n"
        "common:\n"
        "  --base-url URL        server (http://localhost:8000)\n"
        "  --api API             openai-chat | openai-completions | generate (openai-chat)\n"
        "  --model NAME          model to ask for (default: the first of /v1/models)\n"
        "  --max-tokens N        tokens to generate (modes: 128; bench: --output-len)\n"
        "  --temperature T  --top-p P   sampling (modes: 0.7; bench: 0; top_p: server's)\n"
        "  --timeout S           per attempt, whole response (60)\n"
        "  --retries N           resends with backoff, connection errors, 5xx, 429 only\n"
        "                        (modes: 2; bench: 0)\n"
        "  --api-key KEY         bearer token (default: $OPENAI_API_KEY)\n"
        "  --seed N              prompts and arrivals (0)\n"
        "bench:\n"
        "  --concurrent C        closed loop: C requests in flight (1); with --request-rate: a "
        "cap\n"
        "  --request-rate R      open loop: Poisson arrivals, R requests/s (inf: all at once)\n"
        "  --burstiness B        gamma shape of the arrivals (1: Poisson)\n"
        "  --requests N | --duration S    how much per point (100 requests)\n"
        "  --warmup N            requests before each point, not measured (0)\n"
        "  --input-len N  --output-len N  --range-ratio R   synthetic prompts (1024, 128, 0)\n"
        "  --prompts FILE        prompts file instead (text lines or JSON)\n"
        "  --ignore-eos          generate exactly the requested tokens\n"
        "  --goodput ttft:MS tpot:MS e2el:MS   SLOs of goodput\n"
        "  --sweep-concurrency L | --sweep-rate L   one point per value (1,2,4 / 1,2,inf)\n"
        "  --config FILE         YAML targets x workloads (see docs/client.md)\n"
        "  --out DIR             results (results/client-<timestamp>)\n"
        "  --quiet               no per-point summary on stdout\n"
        "  --hourly-cost USD     the server's price per hour: reports add cost per 1M tokens\n"
        "exit status: 0 every request succeeded; 3 some failed (results still written);\n"
        "1 every request failed, or an error; 2 bad usage\n");
}

typedef struct {
    int single, batch, benchmark, interactive, bench;
    const char *base_url, *api, *model, *api_key;
    int max_tokens, retries, line, concurrent, requests, warmup, input_len, output_len;
    int ignore_eos, quiet;
    double temperature, top_p, timeout, burstiness, duration, range_ratio;
    double hourly_cost; // $/hour of the server, for cost per 1M tokens (0: none)
    long long seed;
    const char *prompt, *input, *output, *request_rate, *sweep_conc, *sweep_rate, *config, *out;
    const char *prompts;
    char goodput[256];
} options;

typedef enum { F_FLAG, F_STR, F_INT, F_DBL, F_LL } flag_kind;
typedef struct {
    const char *name;
    flag_kind kind;
    size_t off;
} flag;

#define O(f) offsetof(options, f)
static const flag flags[] = {
    {"single", F_FLAG, O(single)},
    {"batch", F_FLAG, O(batch)},
    {"benchmark", F_FLAG, O(benchmark)},
    {"interactive", F_FLAG, O(interactive)},
    {"base-url", F_STR, O(base_url)},
    {"api", F_STR, O(api)},
    {"model", F_STR, O(model)},
    {"api-key", F_STR, O(api_key)},
    {"max-tokens", F_INT, O(max_tokens)},
    {"temperature", F_DBL, O(temperature)},
    {"top-p", F_DBL, O(top_p)},
    {"timeout", F_DBL, O(timeout)},
    {"retries", F_INT, O(retries)},
    {"seed", F_LL, O(seed)},
    {"prompt", F_STR, O(prompt)},
    {"input", F_STR, O(input)},
    {"line", F_INT, O(line)},
    {"output", F_STR, O(output)},
    {"concurrent", F_INT, O(concurrent)},
    {"requests", F_INT, O(requests)},
    {"request-rate", F_STR, O(request_rate)},
    {"burstiness", F_DBL, O(burstiness)},
    {"duration", F_DBL, O(duration)},
    {"warmup", F_INT, O(warmup)},
    {"input-len", F_INT, O(input_len)},
    {"output-len", F_INT, O(output_len)},
    {"range-ratio", F_DBL, O(range_ratio)},
    {"prompts", F_STR, O(prompts)},
    {"ignore-eos", F_FLAG, O(ignore_eos)},
    {"sweep-concurrency", F_STR, O(sweep_conc)},
    {"sweep-rate", F_STR, O(sweep_rate)},
    {"config", F_STR, O(config)},
    {"out", F_STR, O(out)},
    {"quiet", F_FLAG, O(quiet)},
    {"hourly-cost", F_DBL, O(hourly_cost)},
};
#undef O

static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i == 1 && !strcmp(a, "bench")) {
            o->bench = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--goodput")) { // takes every NAME:MS that follows
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) && strchr(argv[i + 1], ':')) {
                size_t len = strlen(o->goodput);
                snprintf(o->goodput + len, sizeof o->goodput - len, " %s", argv[++i]);
            }
            continue;
        }
        const flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof *flags && !f; k++)
            if (!strncmp(a, "--", 2) && !strcmp(a + 2, flags[k].name)) f = &flags[k];
        if (!f) {
            const char *near =
                llm_closest_name(a, flags, sizeof flags / sizeof *flags, sizeof *flags);
            fprintf(stderr, "llm_client: unknown argument '%s'", a);
            if (near && !strncmp(a, "--", 2)) fprintf(stderr, "; did you mean --%s?", near);
            fprintf(stderr, " (--help lists them)\n");
            return -1;
        }
        char *p = (char *)o + f->off;
        if (f->kind == F_FLAG) {
            *(int *)p = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llm_client: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end = NULL;
        switch (f->kind) {
        case F_STR:
            *(const char **)p = v;
            break;
        case F_INT:
            *(int *)p = (int)strtol(v, &end, 10);
            break;
        case F_LL:
            *(long long *)p = strtoll(v, &end, 10);
            break;
        default:
            *(double *)p = strtod(v, &end);
        }
        if (end && (end == v || *end)) {
            fprintf(stderr, "llm_client: %s: '%s' is not a number\n", a, v);
            return -1;
        }
    }
    return 0;
}

// --- the simple modes ------------------------------------------------------------

typedef struct {
    const options *o;
    client_api api;
    char *model; // NULL: not sent
    const char *api_key;
} ctx;

static client_req *build_req(const ctx *c, const char *prompt, int max_tokens, double temperature,
                             const cJSON *messages) {
    const options *o = c->o;
    client_body_spec b = {.api = c->api,
                          .model = c->model,
                          .max_tokens = max_tokens >= 0      ? max_tokens
                                        : o->max_tokens >= 0 ? o->max_tokens
                                                             : MODE_MAX_TOKENS,
                          .temperature = temperature >= 0        ? temperature
                                         : isnan(o->temperature) ? MODE_TEMPERATURE
                                                                 : o->temperature,
                          .top_p = isnan(o->top_p) ? -1 : o->top_p,
                          .ignore_eos = o->ignore_eos,
                          .prompt = prompt,
                          .messages = messages};
    char *body = client_body(&b);
    client_req *r = body ? client_req_new(body, c->api != API_GENERATE) : NULL;
    if (!r) {
        free(body);
        return NULL;
    }
    r->keep_text = 1;
    return r;
}

typedef struct {
    client_req **reqs;
    int n, next;
    llm_progress pg;
    int progress;
} list_run;

static client_req *list_next(void *ud, int64_t now) {
    list_run *l = ud;
    return l->next < l->n ? l->reqs[l->next++] : NULL;
}

static void list_done(void *ud, client_req *r) {
    list_run *l = ud;
    if (l->progress) llm_progress_add(&l->pg, 1);
}

static void print_text(void *ud, client_req *r, const char *s, size_t n) {
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

// Sends reqs, conc at a time; prints generated text as it arrives when echo.
static int run_list(const ctx *c, client_req **reqs, int n, int conc, int echo,
                    const char *progress, client_drive_stats *st, char *err) {
    list_run l = {reqs, n, 0, {0}, progress != NULL};
    if (progress) llm_progress_start(&l.pg, progress, (uint64_t)n);
    client_drive_opts d = {.base_url = c->o->base_url,
                           .api_key = c->api_key,
                           .api = c->api,
                           .timeout_s = c->o->timeout,
                           .max_retries = c->o->retries < 0 ? MODE_RETRIES : c->o->retries,
                           .max_concurrency = conc,
                           .next = list_next,
                           .on_done = list_done,
                           .on_text = echo ? print_text : NULL,
                           .ud = &l};
    int rc = client_drive(&d, st, err);
    if (progress) llm_progress_finish(&l.pg);
    return rc;
}

static void print_failure(const client_req *r) {
    fprintf(stderr, "llm_client: request failed (%s, %d attempt%s): %s\n", client_err_name(r->err),
            r->attempts, r->attempts == 1 ? "" : "s", r->errmsg);
}

static const char *tok_src_name(client_tok_src s) {
    return s == TOK_USAGE ? "usage" : s == TOK_CHUNKS ? "chunks" : "unknown";
}

static int mode_single(const ctx *c, const client_prompt *pr, char *err) {
    client_req *r = build_req(c, pr->prompt, pr->max_tokens, pr->temperature, NULL);
    if (!r) return llm_errf(err, "out of memory");
    client_drive_stats st;
    int rc = run_list(c, &r, 1, 1, 1, NULL, &st, err);
    if (!rc && r->err) {
        if (r->text_len) printf("\n");
        print_failure(r);
        rc = 1;
    } else if (!rc) {
        double t = client_ttft_ms(r);
        printf("%s", r->text_len && r->text[r->text_len - 1] == '\n' ? "" : "\n");
        printf("latency: %.3f s", client_e2el_ms(r) / 1e3);
        if (t >= 0) printf(", ttft: %.1f ms", t);
        printf(", tokens: %d (%s)\n", r->output_tokens, tok_src_name(r->tok_src));
    }
    client_req_free(r);
    return rc;
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

// The exit status of a run of n requests of which `failed` failed: 0 when
// none did, EXIT_SOME_FAILED when some did, 1 (with err) when all did, so
// that cron jobs and CI see a run that achieved nothing.
#define EXIT_SOME_FAILED 3
static int failed_status(int n, int failed, char *err) {
    if (!failed) return 0;
    if (failed < n) {
        fprintf(stderr, "llm_client: %d of %d requests failed (exit status %d)\n", failed, n,
                EXIT_SOME_FAILED);
        return EXIT_SOME_FAILED;
    }
    return llm_errf(err, "all %d requests failed", n);
}

static int mode_batch(const ctx *c, const client_prompt *p, int n, char *err) {
    const options *o = c->o;
    client_req **reqs = calloc((size_t)n, sizeof *reqs);
    if (!reqs) return llm_errf(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        if (!(reqs[i] = build_req(c, p[i].prompt, p[i].max_tokens, p[i].temperature, NULL)))
            rc = llm_errf(err, "out of memory");
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t mono0 = client_now_ns(), real0 = (int64_t)rt.tv_sec * 1000000000LL + rt.tv_nsec;
    client_drive_stats st;
    if (!rc) rc = run_list(c, reqs, n, o->concurrent > 0 ? o->concurrent : 1, 0, "batch", &st, err);
    FILE *f = NULL;
    if (!rc && !(f = fopen(o->output, "w"))) rc = llm_errf(err, "%s: cannot write", o->output);
    int ok = 0;
    if (!rc) {
        fprintf(f, "prompt,response,latency,tokens_generated,timestamp,error,ttft\n");
        for (int i = 0; i < n; i++) {
            const client_req *r = reqs[i];
            int64_t real = real0 + (r->t_send - mono0);
            time_t sec = (time_t)(real / 1000000000LL);
            struct tm tm;
            gmtime_r(&sec, &tm);
            char ts[64];
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
            csv_field(f, p[i].prompt);
            fputc(',', f);
            csv_field(f, r->text ? r->text : "");
            fprintf(f, ",%.4f,", client_e2el_ms(r) / 1e3);
            if (!r->err && r->output_tokens >= 0) fprintf(f, "%d", r->output_tokens);
            fprintf(f, ",%s.%06dZ,", ts, (int)(real % 1000000000LL / 1000));
            if (r->err) {
                char e[300];
                snprintf(e, sizeof e, "%s: %s", client_err_name(r->err), r->errmsg);
                csv_field(f, e);
            }
            double t = client_ttft_ms(r);
            if (!r->err && t >= 0)
                fprintf(f, ",%.4f\n", t / 1e3);
            else
                fprintf(f, ",\n");
            ok += r->err == CERR_NONE;
        }
        fclose(f);
        fprintf(stderr, "llm_client: %d prompts, %d ok, %d failed, %.2f s -> %s\n", n, ok, n - ok,
                (double)(client_now_ns() - mono0) / 1e9, o->output);
        rc = failed_status(n, n - ok, err);
    }
    for (int i = 0; i < n; i++) client_req_free(reqs[i]);
    free(reqs);
    return rc;
}

static int mode_benchmark(const ctx *c, const client_prompt *pr, char *err) {
    const options *o = c->o;
    int n = o->requests > 0 ? o->requests : 10;
    client_req **reqs = calloc((size_t)n, sizeof *reqs);
    if (!reqs) return llm_errf(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (!(reqs[i] = build_req(c, pr->prompt, pr->max_tokens, pr->temperature, NULL)))
            rc = llm_errf(err, "out of memory");
        else
            reqs[i]->keep_text = 0, reqs[i]->index = i;
    }
    client_drive_stats st;
    int64_t t0 = client_now_ns();
    if (!rc)
        rc = run_list(c, reqs, n, o->concurrent > 0 ? o->concurrent : 1, 0, "benchmark", &st, err);
    double wall = (double)(client_now_ns() - t0) / 1e9;
    client_summary s;
    if (!rc && client_summarize(reqs, n, wall, NULL, 0, &s)) rc = llm_errf(err, "out of memory");
    if (!rc) {
        printf("requests: %d (%d ok, %d failed), error rate %.1f%%\n", n, s.completed, s.failed,
               100.0 * s.failed / n);
        for (int e = 1; e < CERR_COUNT; e++)
            if (s.by_err[e]) printf("  %s: %d\n", client_err_name((client_err)e), s.by_err[e]);
        printf("duration: %.3f s, concurrency %d\n", wall, o->concurrent > 0 ? o->concurrent : 1);
        if (s.e2el.n)
            printf("mean latency: %.3f s (p50 %.3f, p95 %.3f, p99 %.3f)\n", s.e2el.mean / 1e3,
                   s.e2el.p50 / 1e3, s.e2el.p95 / 1e3, s.e2el.p99 / 1e3);
        if (s.ttft.n)
            printf("mean ttft: %.1f ms (p50 %.1f, p95 %.1f, p99 %.1f)\n", s.ttft.mean, s.ttft.p50,
                   s.ttft.p95, s.ttft.p99);
        if (o->hourly_cost > 0 && s.output_throughput > 0)
            printf("cost per 1M output tokens: $%.4f (at $%.2f/hour)\n",
                   o->hourly_cost / 3600.0 / s.output_throughput * 1e6, o->hourly_cost);
        printf("requests/s: %.3f\noutput tokens/s: %.2f (%lld tokens, from %s)\n",
               s.request_throughput, s.output_throughput, (long long)s.total_output,
               s.tok_chunks  ? "chunks"
               : s.tok_usage ? "usage"
                             : "none");
        rc = failed_status(n, s.failed, err);
        client_summary_free(&s);
    }
    for (int i = 0; i < n; i++) client_req_free(reqs[i]);
    free(reqs);
    return rc;
}

// A chat in the terminal: the conversation is kept (messages for the chat API,
// a "User:/Assistant:" transcript for the others) and replies are streamed.
// "/reset" forgets it; "/exit", "/quit" or end of input ends.
static int mode_interactive(const ctx *c, char *err) {
    int tty = isatty(STDIN_FILENO);
    cJSON *messages = cJSON_CreateArray();
    char *transcript = strdup("");
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    if (!messages || !transcript) rc = llm_errf(err, "out of memory");
    if (tty)
        printf("llm_client: chat with %s at %s (%s); /help lists the commands\n",
               c->model ? c->model : "the server's model", c->o->base_url, client_api_name(c->api));
    while (!rc) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) break;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            cJSON_Delete(messages);
            messages = cJSON_CreateArray();
            transcript[0] = 0;
            printf("(conversation forgotten)\n");
            fflush(stdout);
            continue;
        }
        if (!strcmp(line, "/help") || !strcmp(line, "/?")) {
            printf("commands: /reset forgets the conversation, /exit or /quit (or end of "
                   "input) ends; anything else is sent to the model\n");
            fflush(stdout);
            continue;
        }
        if (line[0] == '/' && !strchr(line, ' ')) { // a mistyped command is not a prompt
            printf("unknown command %s: /help lists them\n", line);
            fflush(stdout);
            continue;
        }
        size_t tl = strlen(transcript);
        client_req *r;
        if (c->api == API_CHAT) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "role", "user");
            cJSON_AddStringToObject(u, "content", line);
            cJSON_AddItemToArray(messages, u);
            r = build_req(c, NULL, -1, -1, messages);
        } else {
            char *t = realloc(transcript, tl + (size_t)len + 32);
            if (!t) {
                rc = llm_errf(err, "out of memory");
                break;
            }
            transcript = t;
            sprintf(transcript + tl, "User: %s\nAssistant:", line);
            r = build_req(c, transcript, -1, -1, NULL);
        }
        if (!r) {
            rc = llm_errf(err, "out of memory");
            break;
        }
        client_drive_stats st;
        rc = run_list(c, &r, 1, 1, 1, NULL, &st, err);
        printf("\n");
        fflush(stdout);
        if (!rc && r->err) { // forget the unanswered turn
            print_failure(r);
            if (c->api == API_CHAT)
                cJSON_DeleteItemFromArray(messages, cJSON_GetArraySize(messages) - 1);
            else
                transcript[tl] = 0;
        } else if (!rc && c->api == API_CHAT) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "role", "assistant");
            cJSON_AddStringToObject(a, "content", r->text ? r->text : "");
            cJSON_AddItemToArray(messages, a);
        } else if (!rc) {
            size_t n = strlen(transcript);
            char *t = realloc(transcript, n + r->text_len + 2);
            if (t) {
                transcript = t;
                snprintf(transcript + n, r->text_len + 2, "%s\n", r->text ? r->text : "");
            }
        }
        client_req_free(r);
    }
    free(line);
    free(transcript);
    cJSON_Delete(messages);
    return rc;
}

// --- bench ----------------------------------------------------------------------------

static int mode_bench(const ctx *c, client_prompt *prompts, int n_prompts, char *err) {
    const options *o = c->o;
    client_workload w = {.name = "default",
                         .duration_s = o->duration > 0 ? o->duration : 0,
                         .requests = o->requests > 0   ? o->requests
                                     : o->duration > 0 ? 0
                                                       : BENCH_REQUESTS,
                         .input_len = o->input_len > 0 ? o->input_len : BENCH_INPUT_LEN,
                         .output_len = o->output_len > 0 ? o->output_len : BENCH_OUTPUT_LEN,
                         .range_ratio = o->range_ratio,
                         .max_tokens = o->max_tokens,
                         .temperature = isnan(o->temperature) ? 0 : o->temperature,
                         .top_p = isnan(o->top_p) ? -1 : o->top_p,
                         .burstiness = o->burstiness,
                         .ignore_eos = o->ignore_eos,
                         .warmup = o->warmup,
                         .prompts = prompts,
                         .n_prompts = n_prompts};
    if (o->range_ratio < 0 || o->range_ratio >= 1)
        return llm_errf(err, "--range-ratio must be in [0, 1)");
    if (!(o->burstiness > 0)) return llm_errf(err, "--burstiness must be positive");
    if (o->sweep_conc && (o->sweep_rate || o->request_rate))
        return llm_errf(err,
                        "--sweep-concurrency is a closed loop: no --request-rate/--sweep-rate");
    const char *rates = o->sweep_rate ? o->sweep_rate : o->request_rate;
    if (rates && (w.n_rates = client_parse_doubles(rates, &w.rates, err)) < 0) return -1;
    if (o->sweep_conc && (w.n_concs = client_parse_ints(o->sweep_conc, &w.concs, err)) < 0) {
        free(w.rates);
        return -1;
    }
    int one_conc = o->concurrent > 0 ? o->concurrent : 1;
    if (!o->sweep_conc && (o->concurrent > 0 || (!rates && !o->config)))
        w.concs = &one_conc, w.n_concs = 1;
    client_bench_opts bo = {.api = c->api,
                            .timeout_s = o->timeout,
                            .retries = o->retries < 0 ? 0 : o->retries,
                            .seed = (uint64_t)o->seed,
                            .out_dir = o->out,
                            .quiet = o->quiet,
                            .hourly_cost = o->hourly_cost};
    int n_req = 0, n_failed = 0;
    bo.n_requests = &n_req, bo.n_failed = &n_failed;
    int rc = o->goodput[0] ? client_slo_parse(o->goodput, &bo.slo, err) : 0;
    if (!rc && o->config) {
        client_config cfg;
        if ((rc = client_config_load(o->config, &w, &cfg, err)) == 0) {
            rc = client_bench_run(&bo, cfg.targets, cfg.n_targets, cfg.workloads, cfg.n_workloads,
                                  err);
            client_config_free(&cfg);
        }
    } else if (!rc) {
        client_target t = {(char *)o->base_url, (char *)o->base_url, (char *)c->api_key, c->model};
        const char *host = strstr(o->base_url, "://");
        t.name = (char *)(host ? host + 3 : o->base_url);
        rc = client_bench_run(&bo, &t, 1, &w, 1, err);
    }
    free(w.rates);
    if (w.concs != &one_conc) free(w.concs);
    if (!rc) rc = failed_status(n_req, n_failed, err);
    return rc;
}

int main(int argc, char **argv) {
    options o = {.base_url = "http://localhost:8000",
                 .api = "openai-chat",
                 .max_tokens = -1,
                 .retries = -1,
                 .temperature = NAN,
                 .top_p = NAN,
                 .timeout = DEFAULT_TIMEOUT_S,
                 .burstiness = 1,
                 .seed = DEFAULT_SEED};
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (parse_args(argc, argv, &o)) return 2;
    int modes = o.single + o.batch + o.benchmark + o.interactive + o.bench;
    if (modes != 1) {
        fprintf(stderr, "llm_client: give exactly one of --single, --batch, --benchmark, "
                        "--interactive, bench\n");
        return 2;
    }
    char err[LLM_ERR_LEN] = "";
    ctx c = {&o, API_CHAT, NULL, o.api_key ? o.api_key : getenv("OPENAI_API_KEY")};
    if (client_api_parse(o.api, &c.api)) {
        fprintf(stderr,
                "llm_client: --api: '%s' is not openai-chat, openai-completions or generate\n",
                o.api);
        return 2;
    }
    if (!(o.timeout > 0)) {
        fprintf(stderr, "llm_client: --timeout must be positive\n");
        return 2;
    }
    if (client_global_init(err)) {
        fprintf(stderr, "llm_client: %s\n", err);
        return 1;
    }
    // the prompts: --input/--prompts FILE, or --prompt TEXT
    client_prompt *prompts = NULL, one = {(char *)o.prompt, -1, -1};
    int n_prompts = 0, rc = 0;
    const char *file = o.input ? o.input : o.prompts;
    if (file && client_prompts_load(file, &prompts, &n_prompts, err)) rc = 1;
    if (!rc && (o.single || o.benchmark)) {
        if (!o.prompt && !file && o.single)
            rc = llm_errf(err, "--single needs --prompt TEXT or --input FILE --line N");
        if (!o.prompt && !file && o.benchmark) one.prompt = "Write a short story about a robot.";
        if (!rc && !o.prompt && file) {
            int line = o.line > 0 ? o.line : 1;
            if (line > n_prompts)
                rc = llm_errf(err, "--line %d: %s has %d prompts", line, file, n_prompts);
            else
                one = prompts[line - 1];
        }
    }
    if (!rc && o.batch && (!file || !o.output))
        rc = llm_errf(err, "--batch needs --input FILE and --output FILE");
    if (!rc && c.api != API_GENERATE && !o.config) {
        const client_target t = {NULL, (char *)o.base_url, (char *)c.api_key, (char *)o.model};
        char merr[LLM_ERR_LEN];
        if (!(c.model = client_resolve_model(&t, o.timeout, merr)) && !o.bench)
            fprintf(stderr, "llm_client: sending no model name (%s)\n", merr);
    }
    if (!rc) {
        if (o.single)
            rc = mode_single(&c, &one, err);
        else if (o.batch)
            rc = mode_batch(&c, prompts, n_prompts, err);
        else if (o.benchmark)
            rc = mode_benchmark(&c, &one, err);
        else if (o.interactive)
            rc = mode_interactive(&c, err);
        else if (o.prompt && !file)
            rc = mode_bench(&c, &one, 1, err);
        else
            rc = mode_bench(&c, prompts, n_prompts, err);
    }
    if (rc && err[0]) fprintf(stderr, "llm_client: %s\n", err);
    client_prompts_free(prompts, n_prompts);
    free(c.model);
    curl_global_cleanup();
    return rc == EXIT_SOME_FAILED ? EXIT_SOME_FAILED : rc ? 1 : 0;
}
