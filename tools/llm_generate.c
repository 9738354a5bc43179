// llm_generate - generates text from the command line: one prompt streamed
// as it is produced, or a file of prompts run together through the engine's
// continuous batching. Without a prompt it loads the model and reports it.
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "engine.h"
#include "engine_args.h"
#include "forward.h"
#include "stop.h"
#include "tokenizer.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: llm_generate (--model DIR | --synthetic NAME) [--prompt TEXT | --prompts-file F] "
        "[options]\n"
        "  --model DIR            Hugging Face model directory\n"
        "  --synthetic NAME       seeded random weights at a real model's shapes (no text)\n"
        "  --prompt TEXT          generate from TEXT, printing tokens as they come\n"
        "  --prompts-file F       one prompt per line, all submitted at once\n"
        "  --jsonl                with --prompts-file: one JSON object per prompt, in input order\n"
        "  --chat                 wrap each prompt as a user turn in the model's chat template\n"
        "  --max-tokens N         tokens to generate (128)\n"
        "  --temperature T        0 = greedy (1.0)\n"
        "  --top-p P  --top-k K  --min-p P  --repetition-penalty R\n"
        "  --seed S               sampling seed (reproducible output)\n"
        "  --stop TEXT            stop string (repeatable, up to 8)\n"
        "  --ignore-eos           keep generating past the end-of-sequence token\n"
        "  --list-tensors         (without a prompt) print every weight tensor\n"
        "  --save DIR             (without a prompt) write the model as an HF directory\n"
        "  --prompt-ids F --logits-out OUT   score token ids (one prompt per line of F) and\n"
        "                         write the logits of every position, raw f32 [tokens, vocab]\n");
    engine_args_usage(f);
}

typedef struct {
    char *prompt;
    int64_t id;
    int32_t *ids;
    size_t n_ids;
    tok_stream *stream;
    stop_checker *stop;
    char *text;
    size_t len, cap;
    int n_generated, n_cached, done;
    const char *finish;
    double t_first, t_done;
} job;

static int append(job *j, const char *s, size_t n) {
    if (j->len + n + 1 > j->cap) {
        size_t cap = (j->len + n + 1) * 2;
        char *t = realloc(j->text, cap);
        if (!t) return -1;
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
    return 0;
}

// Renders prompt as one user turn of the chat template.
static char *render_chat(const chat_template *ct, const char *prompt, char *err) {
    cJSON *msgs = cJSON_CreateArray(), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt);
    cJSON_AddItemToArray(msgs, m);
    char *out = chat_template_render(ct, msgs, NULL, 1, err);
    cJSON_Delete(msgs);
    return out;
}

static char **read_lines(const char *path, int *n, char *err) {
    char *text = llm_read_file(path, NULL, err);
    if (!text) return NULL;
    char **v = NULL;
    int cap = 0;
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = '\0';
        if (!l) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        v[(*n)++] = strdup(line);
    }
    free(text);
    if (*n == 0) llm_errf(err, "%s: no prompts", path);
    return v;
}

static int print_tensor(const char *name, const llm_tensor *t, void *ctx) {
    (void)ctx;
    if (t->ndim == 2)
        printf("  %-52s %-4s [%lld, %lld]%s\n", name, dtype_name(t->dtype), (long long)t->shape[0],
               (long long)t->shape[1], t->scale ? " + f32 scales" : "");
    else
        printf("  %-52s %-4s [%lld]\n", name, dtype_name(t->dtype), (long long)t->shape[0]);
    return 0;
}

// No prompt: load the model alone and describe it.
static int report_model(const engine_config *ec, int list, const char *save_dir) {
    char err[LLM_ERR_LEN], b1[32];
    model_weights *m;
    if (ec->model_dir) {
        model_load_opts lo = {
            .matrix_dtype = ec->dtype, .quantize = ec->quantization, .progress = 1};
        m = model_load(ec->model_dir, &lo, err);
    } else {
        m = model_synthetic(ec->synthetic, ec->seed,
                            ec->dtype < 0 ? LLM_BF16 : (llm_dtype)ec->dtype, err);
        if (m && ec->quantization == QUANT_INT8 && model_quantize_int8(m, 0, err)) {
            model_free(m);
            m = NULL;
        }
    }
    if (!m) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    const model_config *c = &m->cfg;
    printf("model      %s (%s)\n", ec->model_dir ? ec->model_dir : ec->synthetic, c->arch_name);
    printf("shape      %d layers, dim %d, %d heads / %d kv heads x %d, mlp %d, vocab %d\n",
           c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim,
           c->vocab_size);
    printf("rope       theta %g%s, max positions %d, rms eps %g%s%s%s\n", c->rope_theta,
           c->rope_scaling == ROPE_SCALING_LLAMA3 ? " (llama3 scaling)" : "", c->max_position,
           c->rms_eps, c->tie_embeddings ? ", tied embeddings" : "",
           c->qkv_bias ? ", qkv bias" : "", c->qk_norm ? ", q/k norm" : "");
    printf("weights    %s in %s (%s)\n", llm_fmt_bytes(m->weight_bytes, b1, sizeof b1),
           dtype_name(m->embed.dtype),
           m->st           ? "mapped from the checkpoint"
           : ec->model_dir ? "copied out of the checkpoint"
                           : "generated");
    if (m->int8_bytes) {
        char b2[32], b3[32];
        printf("int8       %s of int8 matrices with scales, %s of embeddings; %s saved\n",
               llm_fmt_bytes(m->int8_bytes, b1, sizeof b1),
               llm_fmt_bytes(m->embed_bytes, b2, sizeof b2),
               llm_fmt_bytes(m->saved_bytes, b3, sizeof b3));
    }
    if (list) model_foreach_tensor(m, print_tensor, NULL);
    int rc = 0;
    if (save_dir) {
        if (model_save(m, save_dir, err)) {
            fprintf(stderr, "llm_generate: %s\n", err);
            rc = 1;
        } else {
            printf("saved      %s\n", save_dir);
        }
    }
    model_free(m);
    return rc;
}

// --prompt-ids: each line of ids_path (token ids separated by spaces) runs
// through the model once, as one prefill; the logits of every position go to
// out_path as raw little-endian f32, [tokens, vocab], prompt after prompt.
static int dump_logits(const engine_config *ec, const char *ids_path, const char *out_path) {
    char err[LLM_ERR_LEN];
    int n_lines = 0, rc = 1;
    char **lines = read_lines(ids_path, &n_lines, err);
    if (!lines) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    int32_t **ids = calloc((size_t)n_lines, sizeof *ids);
    int *n_ids = calloc((size_t)n_lines, sizeof *n_ids), max_n = 1;
    for (int i = 0; i < n_lines && ids; i++) {
        ids[i] = malloc(strlen(lines[i]) / 2 * sizeof(int32_t) + sizeof(int32_t));
        char *p = lines[i], *end;
        for (long v = strtol(p, &end, 10); ids[i] && end != p; v = strtol(p, &end, 10)) {
            ids[i][n_ids[i]++] = (int32_t)v;
            p = end;
        }
        max_n = n_ids[i] > max_n ? n_ids[i] : max_n;
    }
    model_load_opts lo = {.matrix_dtype = ec->dtype, .quantize = ec->quantization};
    model_weights *m = model_load(ec->model_dir, &lo, err);
    device_info dev;
    backend *b = m && device_select(ec->device, &dev, err) == 0 ? backend_create(&dev, err) : NULL;
    if (b && engine_backend_modes(b, ec, err)) {
        b->destroy(b);
        b = NULL;
    }
    const int bs = 16, n_blocks = (max_n + bs - 1) / bs;
    forward_opts fo = {.max_tokens = max_n,
                       .max_seqs = 1,
                       .max_context = max_n,
                       .block_size = bs,
                       .num_blocks = n_blocks,
                       .kv_dtype = ec->kv_cache_dtype > 0 ? ec->kv_cache_dtype : 0};
    forward_ctx *f = b ? forward_create(b, m, &fo, err) : NULL;
    const size_t vocab = f ? (size_t)m->cfg.vocab_size : 0;
    float *logits = f ? malloc((size_t)max_n * vocab * sizeof(float)) : NULL;
    int32_t *pos = malloc((size_t)max_n * sizeof *pos),
            *slot = malloc((size_t)max_n * sizeof *slot);
    int32_t *btab = malloc((size_t)n_blocks * sizeof *btab);
    FILE *out = logits ? fopen(out_path, "wb") : NULL;
    if (!out) {
        if (logits) snprintf(err, sizeof err, "%s: cannot write", out_path);
        goto done;
    }
    for (int i = 0; i < max_n; i++) pos[i] = i, slot[i] = i;
    for (int i = 0; i < n_blocks; i++) btab[i] = i;
    for (int i = 0; i < n_lines; i++) {
        int32_t qs[2] = {0, n_ids[i]}, ctx[1] = {n_ids[i]};
        forward_batch fb = {.n_tokens = n_ids[i],
                            .n_seqs = 1,
                            .token_ids = ids[i],
                            .positions = pos,
                            .slot_mapping = slot,
                            .query_start = qs,
                            .context_len = ctx,
                            .block_tables = btab,
                            .max_blocks = n_blocks,
                            .all_logits = 1};
        if (forward_run(f, &fb, logits, err)) goto done;
        if (fwrite(logits, sizeof(float) * vocab, (size_t)n_ids[i], out) != (size_t)n_ids[i]) {
            snprintf(err, sizeof err, "%s: write failed", out_path);
            goto done;
        }
    }
    rc = 0;
done:
    if (out && fclose(out) != 0 && rc == 0) {
        snprintf(err, sizeof err, "%s: write failed", out_path);
        rc = 1;
    }
    if (rc) fprintf(stderr, "llm_generate: %s\n", err);
    forward_destroy(f);
    if (b) b->destroy(b);
    model_free(m);
    for (int i = 0; i < n_lines; i++) {
        free(lines[i]);
        if (ids) free(ids[i]);
    }
    free(lines), free(ids), free(n_ids), free(logits), free(pos), free(slot), free(btab);
    return rc;
}

static void print_jsonl(const job *j, int n_prompt) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", j->prompt);
    cJSON_AddStringToObject(o, "text", j->text ? j->text : "");
    cJSON_AddNumberToObject(o, "prompt_tokens", n_prompt);
    cJSON_AddNumberToObject(o, "cached_prompt_tokens", j->n_cached);
    cJSON_AddNumberToObject(o, "generated_tokens", j->n_generated);
    cJSON_AddStringToObject(o, "finish_reason", j->finish ? j->finish : "abort");
    cJSON_AddNumberToObject(o, "ttft_s", j->t_first);
    cJSON_AddNumberToObject(o, "latency_s", j->t_done);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

// The command line.
typedef struct {
    engine_config ec;
    sampling_params sp;
    const char *prompt, *prompts_file, *save_dir, *ids_file, *logits_out;
    const char *stops[SAMPLING_MAX_STOP];
    int n_stops, chat, jsonl, list;
} gen_opts;

enum {
    O_MODEL = 256,
    O_SYNTH,
    O_PROMPT,
    O_FILE,
    O_JSONL,
    O_CHAT,
    O_MAXTOK,
    O_TEMP,
    O_TOPP,
    O_TOPK,
    O_MINP,
    O_REP,
    O_SEED,
    O_STOP,
    O_IGNORE,
    O_LIST,
    O_SAVE,
    O_IDS,
    O_LOGITS,
    O_ENGINE
};
static const struct option longopts[] = {
    {"model", required_argument, 0, O_MODEL},
    {"synthetic", required_argument, 0, O_SYNTH},
    {"prompt", required_argument, 0, O_PROMPT},
    {"prompts-file", required_argument, 0, O_FILE},
    {"jsonl", no_argument, 0, O_JSONL},
    {"chat", no_argument, 0, O_CHAT},
    {"max-tokens", required_argument, 0, O_MAXTOK},
    {"temperature", required_argument, 0, O_TEMP},
    {"top-p", required_argument, 0, O_TOPP},
    {"top-k", required_argument, 0, O_TOPK},
    {"min-p", required_argument, 0, O_MINP},
    {"repetition-penalty", required_argument, 0, O_REP},
    {"seed", required_argument, 0, O_SEED},
    {"stop", required_argument, 0, O_STOP},
    {"ignore-eos", no_argument, 0, O_IGNORE},
    {"list-tensors", no_argument, 0, O_LIST},
    {"save", required_argument, 0, O_SAVE},
    {"prompt-ids", required_argument, 0, O_IDS},
    {"logits-out", required_argument, 0, O_LOGITS},
    // engine flags (engine_args.c)
    ENGINE_ARGS_LONGOPTS(O_ENGINE),
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

// One option into o. Returns -1 to go on, else the exit status.
static int apply_option(gen_opts *o, int opt, int idx, char **argv) {
    char *end = NULL, err[LLM_ERR_LEN];
    sampling_params *sp = &o->sp;
    switch (opt) {
    case O_MODEL:
        o->ec.model_dir = optarg;
        break;
    case O_SYNTH:
        o->ec.synthetic = optarg;
        break;
    case O_PROMPT:
        o->prompt = optarg;
        break;
    case O_FILE:
        o->prompts_file = optarg;
        break;
    case O_JSONL:
        o->jsonl = 1;
        break;
    case O_CHAT:
        o->chat = 1;
        break;
    case O_MAXTOK:
        sp->max_tokens = (int)strtol(optarg, &end, 10);
        break;
    case O_TEMP:
        sp->temperature = strtof(optarg, &end);
        break;
    case O_TOPP:
        sp->top_p = strtof(optarg, &end);
        break;
    case O_TOPK:
        sp->top_k = (int)strtol(optarg, &end, 10);
        break;
    case O_MINP:
        sp->min_p = strtof(optarg, &end);
        break;
    case O_REP:
        sp->repetition_penalty = strtof(optarg, &end);
        break;
    case O_SEED:
        sp->seed = strtoull(optarg, &end, 10);
        sp->has_seed = 1;
        break;
    case O_STOP:
        if (o->n_stops == SAMPLING_MAX_STOP) {
            fprintf(stderr, "llm_generate: at most %d --stop strings\n", SAMPLING_MAX_STOP);
            return 2;
        }
        o->stops[o->n_stops++] = optarg;
        break;
    case O_IGNORE:
        sp->ignore_eos = 1;
        break;
    case O_LIST:
        o->list = 1;
        break;
    case O_SAVE:
        o->save_dir = optarg;
        break;
    case O_IDS:
        o->ids_file = optarg;
        break;
    case O_LOGITS:
        o->logits_out = optarg;
        break;
    case O_ENGINE: {
        int used;
        if (engine_args_apply(&o->ec, longopts[idx].name, optarg, &used, err) != 1) {
            fprintf(stderr, "llm_generate: %s\n", err);
            return 2;
        }
        break;
    }
    case 'h':
        usage(stdout);
        return 0;
    default:
        llm_bad_flag("llm_generate", argv[optind - 1], opt == ':', longopts, sizeof *longopts);
        return 2;
    }
    if (end && *end) {
        fprintf(stderr, "llm_generate: --%s: not a number: '%s'\n", longopts[idx].name, optarg);
        return 2;
    }
    return -1;
}

// The command line into o, checked. Returns -1 to go on, else the exit status.
static int parse_args(int argc, char **argv, gen_opts *o) {
    *o = (gen_opts){.ec = engine_config_default(), .sp = sampling_params_default()};
    o->ec.verbose = 1;
    o->sp.max_tokens = 128;
    int opt, idx = 0, rc;
    opterr = 0; // a bad flag is reported in one line, with the closest one
    while ((opt = getopt_long(argc, argv, ":h", longopts, &idx)) != -1)
        if ((rc = apply_option(o, opt, idx, argv)) >= 0) return rc;
    if (!o->ec.model_dir == !o->ec.synthetic || optind != argc || (o->prompt && o->prompts_file)) {
        usage(stderr);
        return 2;
    }
    if (!o->ids_file != !o->logits_out ||
        (o->ids_file && (o->prompt || o->prompts_file || !o->ec.model_dir))) {
        fprintf(stderr, "llm_generate: --prompt-ids and --logits-out go together, with --model and "
                        "without --prompt or --prompts-file\n");
        return 2;
    }
    char err[LLM_ERR_LEN];
    if ((o->prompt || o->prompts_file) && !o->ec.model_dir) {
        fprintf(
            stderr,
            "llm_generate: text generation needs --model (a synthetic model has no tokenizer)\n");
        return 2;
    }
    if (sampling_params_validate(&o->sp, 1 << 30, err)) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 2;
    }
    return -1;
}

// A generation run: the prompts as jobs on one engine.
typedef struct {
    const gen_opts *o;
    tokenizer *tok;
    chat_template *ct;
    char **lines; // --prompts-file's prompts, or NULL for --prompt
    job *jobs;
    int n_jobs;
    engine *e;
    double t0;
} gen_run;

// Loads the tokenizer, template and prompts, creates the engine and submits
// every prompt. Returns 0, or 1 with the reason printed.
static int gen_start(gen_run *g, const gen_opts *o) {
    char err[LLM_ERR_LEN];
    g->o = o;
    g->n_jobs = 1;
    if (!(g->tok = tok_load(o->ec.model_dir, err))) goto fail;
    if (o->chat && !(g->ct = chat_template_load(o->ec.model_dir, err))) goto fail;
    if (o->prompts_file && !(g->lines = read_lines(o->prompts_file, &g->n_jobs, err))) goto fail;
    engine_config ec = o->ec;
    if (!o->prompts_file && ec.max_num_seqs > 1)
        ec.max_num_seqs = 1; // one prompt: no room for more
    if (!(g->e = engine_create(&ec, err))) goto fail;
    if (!(g->jobs = calloc((size_t)g->n_jobs, sizeof *g->jobs))) {
        llm_errf(err, "out of memory");
        goto fail;
    }
    g->t0 = llm_now();
    for (int i = 0; i < g->n_jobs; i++) {
        job *j = &g->jobs[i];
        j->prompt = g->lines ? g->lines[i] : (char *)o->prompt;
        char *text = o->chat ? render_chat(g->ct, j->prompt, err) : strdup(j->prompt);
        int bad =
            !text || tok_encode(g->tok, text, strlen(text), !o->chat, &j->ids, &j->n_ids, err);
        free(text);
        if (bad || !(j->stream = tok_stream_create(g->tok, 1, err)) ||
            !(j->stop = stop_create(o->stops, o->n_stops, err)) ||
            (j->id = engine_add_request(g->e, j->ids, (int)j->n_ids, &o->sp, err)) < 0)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "llm_generate: %s\n", err);
    return 1;
}

// Text of job j so far: kept, and printed as it comes for a single --prompt.
static void emit(gen_run *g, job *j, const char *s, size_t n) {
    append(j, s, n);
    if (!g->lines) fwrite(s, 1, n, stdout), fflush(stdout);
}

// One engine output for job j: its token through the detokenizer and the stop
// strings; at the end, what they held back. Returns 0, or 1 with the reason printed.
static int gen_output(gen_run *g, job *j, const engine_output *out, double now) {
    char err[LLM_ERR_LEN];
    const char *piece = "", *show;
    size_t plen = 0, slen = 0;
    if (out->token >= 0) {
        if (!j->n_generated) j->t_first = now;
        j->n_generated = out->n_generated;
        j->n_cached = out->n_cached;
        if (!out->finished || strcmp(out->finish_reason, "stop") != 0 ||
            !config_is_eos(engine_model_config(g->e), out->token))
            piece = tok_stream_push(j->stream, out->token, &plen, err);
    }
    int hit = piece ? stop_push(j->stop, piece, plen, &show, &slen, err) : -1;
    if (hit < 0) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    emit(g, j, show, slen);
    if (hit != 1 && !out->finished) return 0;
    if (hit == 1 && !out->finished) engine_abort(g->e, j->id);
    if (!hit) {
        piece = tok_stream_flush(j->stream, &plen, err);
        if (piece && stop_push(j->stop, piece, plen, &show, &slen, err) >= 0)
            emit(g, j, show, slen);
        stop_flush(j->stop, &show, &slen);
        emit(g, j, show, slen);
    }
    j->finish = hit == 1 ? "stop" : out->finish_reason;
    j->done = 1;
    j->t_done = now;
    return 0;
}

// Steps the engine until every job is done. Returns 0, or 1 with the reason printed.
static int gen_loop(gen_run *g) {
    char err[LLM_ERR_LEN];
    while (engine_has_work(g->e)) {
        engine_output *out;
        int n_out;
        if (engine_step(g->e, &out, &n_out, err)) {
            fprintf(stderr, "llm_generate: %s\n", err);
            return 1;
        }
        double now = llm_now() - g->t0;
        for (int k = 0; k < n_out; k++) {
            job *j = NULL;
            for (int i = 0; i < g->n_jobs; i++)
                if (g->jobs[i].id == out[k].id && !g->jobs[i].done) j = &g->jobs[i];
            if (j && gen_output(g, j, &out[k], now)) return 1;
        }
    }
    return 0;
}

// The texts (a file of prompts) and the run's figures on stderr.
static void gen_report(const gen_run *g) {
    engine_stats st;
    engine_get_stats(g->e, &st);
    double total = llm_now() - g->t0;
    const job *j0 = &g->jobs[0];
    if (!g->lines) {
        printf("\n");
        fflush(stdout);
        double decode_s = j0->t_done - j0->t_first;
        fprintf(stderr,
                "prompt %d tokens, generated %d tokens (%s), time to first token %.3f s, "
                "decode %.2f tokens/s\n",
                (int)j0->n_ids, j0->n_generated, j0->finish, j0->t_first,
                j0->n_generated > 1 ? (j0->n_generated - 1) / decode_s : 0.0);
        return;
    }
    for (int i = 0; i < g->n_jobs; i++) {
        const job *j = &g->jobs[i];
        if (g->o->jsonl)
            print_jsonl(j, (int)j->n_ids);
        else
            printf("=== %d: %s\n%s\n", i, j->prompt, j->text ? j->text : "");
    }
    fprintf(stderr,
            "%d prompts: %llu prompt tokens (%llu from the prefix cache), %llu generated, %.2f s, "
            "%.1f tokens/s total, %llu preemptions\n",
            g->n_jobs, (unsigned long long)st.prompt_tokens,
            (unsigned long long)st.cached_prompt_tokens, (unsigned long long)st.generated_tokens,
            total, (double)(st.computed_tokens) / total, (unsigned long long)st.preemptions);
}

static void gen_free(gen_run *g) {
    for (int i = 0; g->jobs && i < g->n_jobs; i++) {
        free(g->jobs[i].ids);
        free(g->jobs[i].text);
        tok_stream_destroy(g->jobs[i].stream);
        stop_destroy(g->jobs[i].stop);
    }
    for (int i = 0; g->lines && i < g->n_jobs; i++) free(g->lines[i]);
    free(g->lines);
    free(g->jobs);
    engine_destroy(g->e);
    chat_template_free(g->ct);
    tok_free(g->tok);
}

int main(int argc, char **argv) {
    llm_omp_default_wait(argv); // a short OpenMP spin: see util.h
    gen_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.ids_file) return dump_logits(&o.ec, o.ids_file, o.logits_out);
    if (!o.prompt && !o.prompts_file) return report_model(&o.ec, o.list, o.save_dir);
    gen_run g = {0};
    rc = gen_start(&g, &o);
    if (rc == 0) rc = gen_loop(&g);
    if (rc == 0) gen_report(&g);
    gen_free(&g);
    return rc;
}
