// llm_server - the HTTP inference server: the OpenAI API, a simple API,
// health and Prometheus metrics over one engine.
//
//   llm_server --model DIR [--host 127.0.0.1] [--port 8000] [--api-key KEY] ...
//
// Start-up: the port is opened first (GET /health answers 503 "loading"),
// then the model is loaded. SIGTERM/SIGINT: stop accepting, give in-flight
// requests --shutdown-grace seconds to finish, abort the rest (their streams
// end with finish_reason "abort"), exit 0.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_args.h"
#include "params.h"
#include "server.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llm_server --model DIR [options]\n"
            "\n"
            "Serves DIR (a Hugging Face model directory) over HTTP: the OpenAI API\n"
            "(/v1/completions, /v1/chat/completions, /v1/models), /generate, /chat,\n"
            "/tokenize, /detokenize, /health, /metrics, /openapi.json, /docs.\n"
            "\n"
            "server options:\n"
            "  --model DIR               model directory (or --synthetic NAME for random weights)\n"
            "  --host ADDR               address to listen on (127.0.0.1; 0.0.0.0 for all)\n"
            "  --port N                  port (8000)\n"
            "  --api-key KEY             require 'Authorization: Bearer KEY' on /v1/*, /generate,\n"
            "                            /chat, /tokenize, /detokenize (also $LLM_API_KEY)\n"
            "  --served-model-name NAME  the model's name in the API (the directory's name)\n"
            "  --max-queue N             requests waiting beyond N get 503 + Retry-After (0: no "
            "limit)\n"
            "  --request-timeout SEC     abort requests running longer (0: none)\n"
            "  --max-body-bytes N        larger request bodies get 413 (8MiB)\n"
            "  --shutdown-grace SEC      time in-flight requests get at SIGTERM (30)\n"
            "  --log-requests            log each request's body too (access lines are always "
            "logged)\n"
            "  --generation-config auto|vllm   sampling defaults of requests that leave them out:\n"
            "                            the model's generation_config.json (auto, as vLLM), or\n"
            "                            vLLM's own (temperature 1, top_p 1)\n"
            "  --docs-dir DIR|none       Swagger UI's files for /docs (default: found in the\n"
            "                            repository's .venv or the system; none, or not found:\n"
            "                            a plain page listing the endpoints)\n"
            "\n");
    engine_args_usage(f);
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    static char buf[256];
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - start), path + start);
    return buf;
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || d < lo || d > hi) {
        fprintf(stderr, "llm_server: --%s: expected a number in [%g, %g], got '%s'\n", flag, lo, hi,
                v);
        return -1;
    }
    *out = d;
    return 0;
}

// Loads tokenizer, chat template and engine; sets s->ready.
static int load_model(server *s, char *err) {
    const char *dir = s->ecfg.model_dir;
    if (!dir) return llm_errf(err, "--model DIR is required (a synthetic model has no tokenizer)");
    s->tok = tok_load(dir, err);
    if (!s->tok) return -1;
    char cterr[LLM_ERR_LEN];
    s->ct = chat_template_load(dir, cterr);
    if (!s->ct)
        fprintf(stderr,
                "llm_server: no chat template (%s); /v1/chat/completions and /chat "
                "will answer 400\n",
                cterr);
    s->et = et_start(&s->ecfg, err);
    if (!s->et) return -1;
    engine_stats st;
    et_stats(s->et, &st);
    const model_config *mc = et_model_config(s->et);
    s->vocab_size = mc->vocab_size;
    s->max_model_len = st.max_model_len;
    if (s->max_model_len <= 0)
        s->max_model_len = s->ecfg.max_model_len > 0 ? s->ecfg.max_model_len : mc->max_position;
    s->created = (double)time(NULL);
    if (s->use_generation_config) {
        params_defaults d;
        int n = params_load_defaults(dir, &d, err);
        if (n < 0) return -1;
        if (n > 0) {
            params_set_defaults(&d);
            fprintf(stderr, "llm_server: sampling defaults from generation_config.json:");
            if (d.temperature_set) fprintf(stderr, " temperature=%g", d.temperature);
            if (d.top_p_set) fprintf(stderr, " top_p=%g", d.top_p);
            if (d.top_k_set) fprintf(stderr, " top_k=%d", d.top_k);
            if (d.min_p_set) fprintf(stderr, " min_p=%g", d.min_p);
            if (d.repetition_penalty_set)
                fprintf(stderr, " repetition_penalty=%g", d.repetition_penalty);
            fprintf(stderr, " (--generation-config vllm ignores them)\n");
        }
    }
    return 0;
}

// The command line.
enum {
    O_MODEL = 256,
    O_HOST,
    O_PORT,
    O_KEY,
    O_NAME,
    O_QUEUE,
    O_TIMEOUT,
    O_BODY,
    O_GRACE,
    O_LOGREQ,
    O_GENCFG,
    O_DOCS,
    O_ENGINE
};
static const struct option longopts[] = {
    {"model", required_argument, 0, O_MODEL},
    {"host", required_argument, 0, O_HOST},
    {"port", required_argument, 0, O_PORT},
    {"api-key", required_argument, 0, O_KEY},
    {"served-model-name", required_argument, 0, O_NAME},
    {"max-queue", required_argument, 0, O_QUEUE},
    {"request-timeout", required_argument, 0, O_TIMEOUT},
    {"max-body-bytes", required_argument, 0, O_BODY},
    {"shutdown-grace", required_argument, 0, O_GRACE},
    {"log-requests", no_argument, 0, O_LOGREQ},
    {"generation-config", required_argument, 0, O_GENCFG},
    {"docs-dir", required_argument, 0, O_DOCS},
    // engine flags (engine_args.c)
    ENGINE_ARGS_LONGOPTS(O_ENGINE),
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

// One option into s. Returns -1 to go on, else the exit status.
static int apply_option(server *s, int opt, int idx, char **argv) {
    char err[LLM_ERR_LEN];
    double d;
    switch (opt) {
    case O_MODEL:
        s->ecfg.model_dir = optarg;
        break;
    case O_HOST:
        s->host = optarg;
        break;
    case O_PORT:
        if (parse_num("port", optarg, 1, 65535, &d)) return 2;
        s->port = (int)d;
        break;
    case O_KEY:
        s->api_key = optarg[0] ? optarg : NULL;
        break;
    case O_NAME:
        s->model_name = optarg;
        break;
    case O_QUEUE:
        if (parse_num("max-queue", optarg, 0, 1e9, &d)) return 2;
        s->max_queue = (int)d;
        break;
    case O_TIMEOUT:
        if (parse_num("request-timeout", optarg, 0, 1e9, &s->request_timeout)) return 2;
        break;
    case O_BODY:
        if (parse_num("max-body-bytes", optarg, 1024, 1e12, &d)) return 2;
        s->max_body_bytes = (size_t)d;
        break;
    case O_GRACE:
        if (parse_num("shutdown-grace", optarg, 0, 1e6, &s->shutdown_grace)) return 2;
        break;
    case O_LOGREQ:
        s->log_requests = 1;
        break;
    case O_GENCFG:
        if (strcmp(optarg, "auto") && strcmp(optarg, "vllm")) {
            fprintf(stderr, "llm_server: --generation-config must be auto or vllm (got '%s')\n",
                    optarg);
            return 2;
        }
        s->use_generation_config = !strcmp(optarg, "auto");
        break;
    case O_DOCS:
        s->docs_dir = optarg;
        break;
    case O_ENGINE: {
        int used;
        if (engine_args_apply(&s->ecfg, longopts[idx].name, optarg, &used, err) != 1) {
            fprintf(stderr, "llm_server: %s\n", err);
            return 2;
        }
        break;
    }
    case 'h':
        usage(stdout);
        return 0;
    default:
        llm_bad_flag("llm_server", argv[optind - 1], opt == ':', longopts, sizeof *longopts);
        return 2;
    }
    return -1;
}

// The command line into s, with the defaults first. Returns -1 to go on, else
// the exit status.
static int parse_args(int argc, char **argv, server *s) {
    s->host = "127.0.0.1";
    s->port = 8000;
    s->max_body_bytes = 8u << 20;
    s->shutdown_grace = 30;
    s->use_generation_config = 1;
    s->ecfg = engine_config_default();
    s->ecfg.verbose = 1;
    s->api_key = getenv("LLM_API_KEY");
    if (s->api_key && !s->api_key[0]) s->api_key = NULL;
    int opt, idx = 0, rc;
    opterr = 0; // unknown flags and missing values are reported below, with a suggestion
    while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1)
        if ((rc = apply_option(s, opt, idx, argv)) >= 0) return rc;
    if (optind < argc) {
        fprintf(stderr, "llm_server: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!s->ecfg.model_dir) {
        usage(stderr);
        fprintf(stderr, "llm_server: --model DIR is required\n");
        return 2;
    }
    if (!s->model_name) s->model_name = base_name(s->ecfg.model_dir);
    return -1;
}

// After SIGTERM/SIGINT: stop accepting, give in-flight requests the grace
// period (a second signal cuts it short), then abort what is left and wait
// for their streams to end.
static void drain(server *s, struct MHD_Daemon *d_http, sigset_t *sigs, int sig) {
    fprintf(stderr, "llm_server: %s: stopping; in-flight requests get %.0f s\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", s->shutdown_grace);
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    MHD_socket lfd = MHD_quiesce_daemon(d_http);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    struct timespec zero = {0, 0};
    double until = llm_now() + s->shutdown_grace;
    int left;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        left = s->in_flight;
        pthread_mutex_unlock(&s->mu);
        if (!left || llm_now() > until) break;
        struct timespec nap = {0, 50 * 1000000L};
        if (sigtimedwait(sigs, NULL, &zero) > 0) break;
        nanosleep(&nap, NULL);
    }
    if (!left) return;
    fprintf(stderr, "llm_server: aborting %d request(s)\n", left);
    et_abort_all(s->et);
    double hard = llm_now() + 10;
    while (llm_now() < hard) {
        pthread_mutex_lock(&s->mu);
        left = s->in_flight;
        pthread_mutex_unlock(&s->mu);
        if (!left) break;
        struct timespec nap = {0, 20 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

int main(int argc, char **argv) {
    llm_omp_default_wait(argv); // a short OpenMP spin: see util.h
    static server srv;
    server *s = &srv;
    int rc = parse_args(argc, argv, s);
    if (rc >= 0) return rc;
    char err[LLM_ERR_LEN];
    pthread_mutex_init(&s->mu, NULL);
    metrics_init(&s->metrics);
    if (docs_load(s, err)) { // an explicit --docs-dir that is not usable
        fprintf(stderr, "llm_server: %s\n", err);
        return 2;
    }

    // signals are taken by sigwait below; every thread inherits the mask
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d_http = http_start(s, err);
    if (!d_http) {
        fprintf(stderr, "llm_server: %s\n", err);
        return 1;
    }
    fprintf(stderr, "llm_server: loading %s\n", s->ecfg.model_dir);
    if (load_model(s, err)) {
        fprintf(stderr, "llm_server: %s\n", err);
        __atomic_store_n(&s->ready, -1, __ATOMIC_RELEASE);
        MHD_stop_daemon(d_http);
        return 1;
    }
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    fprintf(stderr, "llm_server: serving %s on http://%s:%d (max_model_len %d)%s\n", s->model_name,
            s->host, s->port, s->max_model_len, s->api_key ? ", API key required" : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    drain(s, d_http, &sigs, sig);
    MHD_stop_daemon(d_http);
    et_stop(s->et);
    chat_template_free(s->ct);
    tok_free(s->tok);
    metrics_destroy(&s->metrics);
    docs_free(s);
    pthread_mutex_destroy(&s->mu);
    fprintf(stderr, "llm_server: stopped\n");
    return 0;
}
