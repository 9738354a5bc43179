// api_openai.c - POST /v1/completions and /v1/chat/completions, streamed
// (server-sent events) or not, in the shapes of the OpenAI API.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_common.h"
#include "util.h"

// --- logprobs ---

// Completions: {"tokens","token_logprobs","top_logprobs","text_offset"}.
typedef struct {
    cJSON *obj, *tokens, *lps, *tops, *offsets;
    size_t offset; // text offset of the next token
} cmpl_logprobs;

static void cmpl_lp_init(cmpl_logprobs *l, size_t offset) {
    l->obj = cJSON_CreateObject();
    l->tokens = cJSON_AddArrayToObject(l->obj, "tokens");
    l->lps = cJSON_AddArrayToObject(l->obj, "token_logprobs");
    l->tops = cJSON_AddArrayToObject(l->obj, "top_logprobs");
    l->offsets = cJSON_AddArrayToObject(l->obj, "text_offset");
    l->offset = offset;
}

static void cmpl_lp_add(server *s, cmpl_logprobs *l, const gen_token *t) {
    char *text = gen_token_text(s, t->token);
    cJSON_AddItemToArray(l->tokens, cJSON_CreateString(text));
    cJSON_AddItemToArray(l->lps, cJSON_CreateNumber(t->sample.logprob));
    cJSON *top = cJSON_CreateObject();
    for (int i = 0; i < t->sample.n_top; i++) {
        char *tt = gen_token_text(s, t->sample.top[i].id);
        if (!cJSON_GetObjectItemCaseSensitive(top, tt))
            cJSON_AddNumberToObject(top, tt, t->sample.top[i].logprob);
        free(tt);
    }
    cJSON_AddItemToArray(l->tops, top);
    cJSON_AddItemToArray(l->offsets, cJSON_CreateNumber((double)l->offset));
    l->offset += strlen(text);
    free(text);
}

static cJSON *bytes_of(const char *t) {
    cJSON *a = cJSON_CreateArray();
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(*p));
    return a;
}

// Chat: one entry of "content": {"token","logprob","bytes","top_logprobs"}.
static cJSON *chat_lp_entry(server *s, const gen_token *t) {
    cJSON *e = cJSON_CreateObject();
    char *text = gen_token_text(s, t->token);
    cJSON_AddStringToObject(e, "token", text);
    cJSON_AddNumberToObject(e, "logprob", t->sample.logprob);
    cJSON_AddItemToObject(e, "bytes", bytes_of(text));
    free(text);
    cJSON *tops = cJSON_AddArrayToObject(e, "top_logprobs");
    for (int i = 0; i < t->sample.n_top; i++) {
        cJSON *o = cJSON_CreateObject();
        char *tt = gen_token_text(s, t->sample.top[i].id);
        cJSON_AddStringToObject(o, "token", tt);
        cJSON_AddNumberToObject(o, "logprob", t->sample.top[i].logprob);
        cJSON_AddItemToObject(o, "bytes", bytes_of(tt));
        free(tt);
        cJSON_AddItemToArray(tops, o);
    }
    return e;
}

// --- prompts ---

// The prompt of a completions request as token ids: a string, a list of ids,
// or a list holding exactly one of those.
static int32_t *completion_prompt(http_req *q, const cJSON *body, int *n, char **text,
                                  param_error *pe) {
    server *s = q->s;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    *text = NULL;
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 &&
        (cJSON_IsString(p->child) || cJSON_IsArray(p->child)))
        p = p->child;
    if (!p || cJSON_IsNull(p)) {
        pe->param = "prompt";
        snprintf(pe->msg, sizeof pe->msg, "'prompt' is required");
        return NULL;
    }
    if (cJSON_IsString(p)) {
        char err[LLM_ERR_LEN];
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (tok_encode(s->tok, p->valuestring, strlen(p->valuestring), 1, &ids, &n_ids, err)) {
            pe->param = "prompt";
            snprintf(pe->msg, sizeof pe->msg, "cannot tokenize the prompt: %s", err);
            return NULL;
        }
        *n = (int)n_ids;
        *text = strdup(p->valuestring);
        return ids;
    }
    if (cJSON_IsArray(p)) {
        if (cJSON_GetArraySize(p) > 1 && !cJSON_IsNumber(p->child)) {
            pe->param = "prompt";
            snprintf(pe->msg, sizeof pe->msg,
                     "a batch of prompts is not supported: send one prompt per request");
            return NULL;
        }
        int *ids = params_token_ids(p, "prompt", s->vocab_size, n, pe);
        if (!ids) return NULL;
        int32_t *out = malloc((size_t)(*n ? *n : 1) * sizeof *out);
        if (out)
            for (int i = 0; i < *n; i++) out[i] = ids[i];
        free(ids);
        return out;
    }
    pe->param = "prompt";
    snprintf(pe->msg, sizeof pe->msg, "'prompt' must be a string or a list of token ids");
    return NULL;
}

// --- the response objects ---

static cJSON *usage_obj(const gen *g) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", g->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", g->n_generated);
    cJSON_AddNumberToObject(u, "total_tokens", g->n_prompt + g->n_generated);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", g->n_cached);
    return u;
}

static void add_stop_reason(cJSON *choice, const gen *g) {
    if (g->stop_index >= 0)
        cJSON_AddStringToObject(choice, "stop_reason", g->sp.stop[g->stop_index]);
    else
        cJSON_AddNullToObject(choice, "stop_reason");
}

static cJSON *envelope(const char *id, const char *object, double created, const char *model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", created);
    cJSON_AddStringToObject(o, "model", model);
    return o;
}

// --- streaming ---

typedef struct {
    gen g;
    http_req *q;
    api_kind api;
    api_opts o;
    char id[48];
    double created;
    char *echo_text; // completions with echo: sent in the first chunk
    int started;     // chat: the role chunk went out
    int ended;       // [DONE] queued
    size_t lp_offset;
    char *buf;
    size_t len, off, cap;
} sse_stream;

static int sse_put(sse_stream *st, cJSON *chunk) {
    char *t = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    if (!t) return -1;
    size_t n = strlen(t), need = st->len + n + 9;
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        while (cap < need) cap *= 2;
        char *b = realloc(st->buf, cap);
        if (!b) {
            free(t);
            return -1;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, "data: ", 6);
    memcpy(st->buf + st->len + 6, t, n);
    memcpy(st->buf + st->len + 6 + n, "\n\n", 2);
    st->len += n + 8;
    free(t);
    return 0;
}

static cJSON *chunk_base(sse_stream *st) {
    return envelope(st->id, st->api == API_CHAT ? "chat.completion.chunk" : "text_completion",
                    st->created, st->q->s->model_name);
}

// One chunk of new text (and the logprobs of the tokens behind it), or the
// final chunk with finish_reason when fin.
static int sse_chunk(sse_stream *st, const char *text, int fin) {
    gen *g = &st->g;
    server *s = st->q->s;
    if (st->api == API_SIMPLE) {         // /generate, /chat: {"text", "generated"}; the last adds
        cJSON *c = cJSON_CreateObject(); // finish_reason and usage
        cJSON_AddStringToObject(c, "text", fin ? "" : text);
        cJSON_AddStringToObject(c, "model", s->model_name);
        cJSON_AddNumberToObject(c, "generated", g->n_generated);
        if (fin) {
            cJSON_AddStringToObject(c, "finish_reason", g->finish_reason);
            cJSON_AddItemToObject(c, "usage", usage_obj(g));
        } else {
            cJSON_AddNullToObject(c, "finish_reason");
        }
        return sse_put(st, c);
    }
    cJSON *c = chunk_base(st), *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (st->api == API_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!fin) cJSON_AddStringToObject(delta, "content", text);
        if (st->o.logprobs && !fin) {
            cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON *content = cJSON_AddArrayToObject(lp, "content");
            for (int i = 0; i < g->n_toks; i++)
                cJSON_AddItemToArray(content, chat_lp_entry(s, &g->toks[i]));
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        cJSON_AddStringToObject(ch, "text", fin ? "" : text);
        if (st->o.logprobs && !fin) {
            cmpl_logprobs l;
            cmpl_lp_init(&l, st->lp_offset);
            for (int i = 0; i < g->n_toks; i++) cmpl_lp_add(s, &l, &g->toks[i]);
            st->lp_offset = l.offset;
            cJSON_AddItemToObject(ch, "logprobs", l.obj);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    if (fin) {
        cJSON_AddStringToObject(ch, "finish_reason", g->finish_reason);
        add_stop_reason(ch, g);
    } else {
        cJSON_AddNullToObject(ch, "finish_reason");
    }
    if (st->o.include_usage) cJSON_AddNullToObject(c, "usage");
    return sse_put(st, c);
}

// Fills st->buf with the next events' chunks; 0 when nothing more will come.
static int sse_refill(sse_stream *st) {
    gen *g = &st->g;
    st->len = st->off = 0;
    if (st->ended) return 0;
    char err[LLM_ERR_LEN];
    if (!st->started) {
        st->started = 1;
        if (st->api == API_CHAT) {
            cJSON *c = chunk_base(st), *choices = cJSON_AddArrayToObject(c, "choices");
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddItemToArray(choices, ch);
            cJSON_AddNumberToObject(ch, "index", 0);
            cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
            cJSON_AddStringToObject(delta, "role", "assistant");
            cJSON_AddStringToObject(delta, "content", "");
            cJSON_AddNullToObject(ch, "logprobs");
            cJSON_AddNullToObject(ch, "finish_reason");
            if (st->o.include_usage) cJSON_AddNullToObject(c, "usage");
            return sse_put(st, c) ? -1 : 1;
        }
        if (st->echo_text && st->echo_text[0]) {
            int saved = g->n_toks;
            g->n_toks = 0; // the echo carries no token logprobs
            int rc = sse_chunk(st, st->echo_text, 0);
            g->n_toks = saved;
            st->lp_offset = strlen(st->echo_text);
            return rc ? -1 : 1;
        }
    }
    while (!g->done) {
        if (gen_wait(g, err)) break;
        if (g->text_len || g->n_toks) {
            if (sse_chunk(st, g->text ? g->text : "", 0)) return -1;
            if (!g->done) return 1;
        }
    }
    if (sse_chunk(st, "", 1)) return -1;
    if (st->o.include_usage) {
        cJSON *c = chunk_base(st);
        cJSON_AddArrayToObject(c, "choices");
        cJSON_AddItemToObject(c, "usage", usage_obj(g));
        if (sse_put(st, c)) return -1;
    }
    static const char done[] = "data: [DONE]\n\n";
    if (st->len + sizeof done > st->cap) {
        char *b = realloc(st->buf, st->len + sizeof done);
        if (!b) return -1;
        st->buf = b;
        st->cap = st->len + sizeof done;
    }
    memcpy(st->buf + st->len, done, sizeof done - 1);
    st->len += sizeof done - 1;
    st->ended = 1;
    return 1;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max) {
    sse_stream *st = cls;
    while (st->off == st->len) {
        int r = sse_refill(st);
        if (r < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (r == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls) {
    sse_stream *st = cls;
    gen_finish(&st->g);
    http_req_unref(st->q);
    free(st->echo_text);
    free(st->buf);
    free(st);
}

static enum MHD_Result start_stream(http_req *q, sse_stream *st) {
    st->q = q;
    http_req_ref(q);
    q->streaming = 1;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, st, sse_free);
    if (!r) {
        sse_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Request-Id", q->id);
    q->status = 200;
    enum MHD_Result ret = MHD_queue_response(q->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

// --- the handlers ---

// Runs a non-streamed request to the end; its text and logprobs are built
// by the caller from what this gathers.
typedef struct {
    char *text;
    size_t len, cap;
    gen_token *toks;
    int n_toks, cap_toks;
} collected;

static int collect(gen *g, collected *c, int want_tokens) {
    char err[LLM_ERR_LEN];
    while (!g->done) {
        if (gen_wait(g, err)) return -1;
        if (g->text_len) {
            if (c->len + g->text_len + 1 > c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 256;
                while (cap < c->len + g->text_len + 1) cap *= 2;
                char *t = realloc(c->text, cap);
                if (!t) return -1;
                c->text = t;
                c->cap = cap;
            }
            memcpy(c->text + c->len, g->text, g->text_len);
            c->len += g->text_len;
        }
        if (want_tokens && g->n_toks) {
            if (c->n_toks + g->n_toks > c->cap_toks) {
                int cap = c->cap_toks ? c->cap_toks * 2 : 16;
                while (cap < c->n_toks + g->n_toks) cap *= 2;
                gen_token *t = realloc(c->toks, (size_t)cap * sizeof *t);
                if (!t) return -1;
                c->toks = t;
                c->cap_toks = cap;
            }
            memcpy(c->toks + c->n_toks, g->toks, (size_t)g->n_toks * sizeof *g->toks);
            c->n_toks += g->n_toks;
        }
    }
    if (!c->text) c->text = strdup("");
    if (c->text) c->text[c->len] = 0;
    return c->text ? 0 : -1;
}

static enum MHD_Result finish_unary(http_req *q, gen *g, api_kind api, const api_opts *o,
                                    const char *id, const char *echo) {
    server *s = q->s;
    collected c = {0};
    if (collect(g, &c, o->logprobs)) {
        gen_finish(g);
        free(c.text);
        free(c.toks);
        return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    }
    cJSON *root = envelope(id, api == API_CHAT ? "chat.completion" : "text_completion",
                           (double)time(NULL), s->model_name);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (api == API_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", c.text);
        if (o->logprobs) {
            cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON *content = cJSON_AddArrayToObject(lp, "content");
            for (int i = 0; i < c.n_toks; i++)
                cJSON_AddItemToArray(content, chat_lp_entry(s, &c.toks[i]));
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        size_t elen = echo ? strlen(echo) : 0;
        char *full = malloc(elen + c.len + 1);
        if (full) {
            memcpy(full, echo ? echo : "", elen);
            memcpy(full + elen, c.text, c.len + 1);
        }
        cJSON_AddStringToObject(ch, "text", full ? full : c.text);
        free(full);
        if (o->logprobs) {
            cmpl_logprobs l;
            cmpl_lp_init(&l, elen);
            for (int i = 0; i < c.n_toks; i++) cmpl_lp_add(s, &l, &c.toks[i]);
            cJSON_AddItemToObject(ch, "logprobs", l.obj);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    cJSON_AddStringToObject(ch, "finish_reason", g->finish_reason);
    add_stop_reason(ch, g);
    cJSON_AddItemToObject(root, "usage", usage_obj(g));
    gen_finish(g);
    free(c.text);
    free(c.toks);
    return http_send_json(q, 200, root);
}

// 1 when the prompt (field `param`) is empty or leaves no room for
// max_tokens within the context: a 400 is queued into *ret.
static int prompt_rejected(http_req *q, int n_ids, int max_tokens, const char *param,
                           enum MHD_Result *ret) {
    const int limit = q->s->max_model_len;
    if (n_ids == 0) {
        *ret = http_send_error(q, 400, NULL, param, NULL, "the prompt is empty");
        return 1;
    }
    if (n_ids < limit && (long long)n_ids + max_tokens <= limit) return 0;
    *ret = http_send_error(q, 400, NULL, param, "context_length_exceeded",
                           "This model's maximum context length is %d tokens. However, you "
                           "requested %lld tokens (%d in the %s, %d in the completion). Please "
                           "reduce the length of the %s or completion.",
                           limit, (long long)n_ids + max_tokens, n_ids, param, max_tokens, param);
    return 1;
}

// Common tail of both endpoints: limits, submission, then the answer.
static enum MHD_Result run_request(http_req *q, api_kind api, const api_opts *o,
                                   sampling_params *sp, int32_t *ids, int n_ids, char *echo) {
    server *s = q->s;
    enum MHD_Result ret;
    if (!o->max_tokens_set && api == API_CHAT) sp->max_tokens = s->max_model_len - n_ids;
    if (prompt_rejected(q, n_ids, sp->max_tokens, api == API_CHAT ? "messages" : "prompt", &ret))
        goto out;
    char err[LLM_ERR_LEN];
    int status;
    if (o->stream) {
        sse_stream *st = calloc(1, sizeof *st);
        if (!st) {
            ret = http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
            goto out;
        }
        if (gen_start(&st->g, q, ids, n_ids, sp, &status, err)) {
            free(st);
            ret = http_send_error(q, status, NULL, NULL, NULL, "%s", err);
            goto out;
        }
        st->api = api;
        st->o = *o;
        st->created = (double)time(NULL);
        server_new_id(s, api == API_CHAT ? "chatcmpl-" : "cmpl-", st->id, sizeof st->id);
        st->echo_text = echo;
        echo = NULL;
        ret = start_stream(q, st);
        goto out;
    }
    gen g;
    if (gen_start(&g, q, ids, n_ids, sp, &status, err)) {
        ret = http_send_error(q, status, NULL, NULL, NULL, "%s", err);
        goto out;
    }
    char id[48];
    server_new_id(s, api == API_CHAT ? "chatcmpl-" : "cmpl-", id, sizeof id);
    ret = finish_unary(q, &g, api, o, id, echo);
out:
    free(ids);
    free(echo);
    return ret;
}

enum MHD_Result api_completions(http_req *q, cJSON *body) {
    server *s = q->s;
    sampling_params sp;
    api_opts o;
    param_error pe = {0};
    if (params_parse(body, API_COMPLETIONS, s->vocab_size, &sp, &o, &pe))
        return http_send_error(q, 400, NULL, pe.param, NULL, "%s", pe.msg);
    int n_ids = 0;
    char *text = NULL;
    int32_t *ids = completion_prompt(q, body, &n_ids, &text, &pe);
    if (!ids) return http_send_error(q, 400, NULL, pe.param, NULL, "%s", pe.msg);
    char *echo = NULL;
    if (o.echo) {
        if (text) {
            echo = text;
            text = NULL;
        } else {
            char err[LLM_ERR_LEN];
            size_t len;
            echo = tok_decode(s->tok, ids, (size_t)n_ids, 0, &len, err);
        }
    }
    free(text);
    return run_request(q, API_COMPLETIONS, &o, &sp, ids, n_ids, echo);
}

enum MHD_Result api_chat_completions(http_req *q, cJSON *body) {
    server *s = q->s;
    sampling_params sp;
    api_opts o;
    param_error pe = {0};
    if (params_parse(body, API_CHAT, s->vocab_size, &sp, &o, &pe))
        return http_send_error(q, 400, NULL, pe.param, NULL, "%s", pe.msg);
    int32_t *ids = NULL;
    int n_ids = 0;
    int status = 400;
    char err[LLM_ERR_LEN];
    const char *param = "messages";
    if (api_chat_prompt(s, body, &ids, &n_ids, &param, &status, err))
        return http_send_error(q, status, NULL, param, NULL, "%s", err);
    return run_request(q, API_CHAT, &o, &sp, ids, n_ids, NULL);
}

// --- /generate and /chat: the simple API ---

// Default tokens for the simple API when max_tokens is absent.
#define SIMPLE_DEFAULT_MAX_TOKENS 128

enum MHD_Result api_generate(http_req *q, cJSON *body, int chat) {
    server *s = q->s;
    sampling_params sp;
    api_opts o;
    param_error pe = {0};
    if (params_parse(body, API_SIMPLE, s->vocab_size, &sp, &o, &pe))
        return http_send_error(q, 400, NULL, pe.param, NULL, "%s", pe.msg);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    int has_messages = chat && cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!has_messages && !cJSON_IsString(prompt))
        return http_send_error(q, 400, NULL, "prompt", NULL, "'prompt' must be a string");
    char err[LLM_ERR_LEN];
    int32_t *ids = NULL;
    int n_ids = 0;
    if (chat) {
        cJSON *wrapped = NULL;
        const cJSON *src = body;
        if (!has_messages) { // one user turn
            wrapped = cJSON_CreateObject();
            cJSON *msgs = cJSON_AddArrayToObject(wrapped, "messages");
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddStringToObject(m, "content", prompt->valuestring);
            cJSON_AddItemToArray(msgs, m);
            src = wrapped;
        }
        int status = 400;
        const char *param = "prompt";
        int rc = api_chat_prompt(s, src, &ids, &n_ids, &param, &status, err);
        cJSON_Delete(wrapped);
        if (rc) return http_send_error(q, status, NULL, param, NULL, "%s", err);
    } else {
        size_t n = 0;
        if (tok_encode(s->tok, prompt->valuestring, strlen(prompt->valuestring), 1, &ids, &n, err))
            return http_send_error(q, 400, NULL, "prompt", NULL, "cannot tokenize the prompt: %s",
                                   err);
        n_ids = (int)n;
    }
    if (!o.max_tokens_set) {
        sp.max_tokens = SIMPLE_DEFAULT_MAX_TOKENS;
        if (n_ids < s->max_model_len && sp.max_tokens > s->max_model_len - n_ids)
            sp.max_tokens = s->max_model_len - n_ids;
    }
    enum MHD_Result rejected;
    if (prompt_rejected(q, n_ids, sp.max_tokens, "prompt", &rejected)) {
        free(ids);
        return rejected;
    }
    int status;
    if (o.stream) { // server-sent events: data: {"text", ...} chunks, then [DONE]
        sse_stream *st = calloc(1, sizeof *st);
        if (!st) {
            free(ids);
            return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
        }
        if (gen_start(&st->g, q, ids, n_ids, &sp, &status, err)) {
            free(st);
            free(ids);
            return http_send_error(q, status, NULL, NULL, NULL, "%s", err);
        }
        free(ids);
        st->api = API_SIMPLE;
        st->o = o;
        st->created = (double)time(NULL);
        return start_stream(q, st);
    }
    gen g;
    if (gen_start(&g, q, ids, n_ids, &sp, &status, err)) {
        free(ids);
        return http_send_error(q, status, NULL, NULL, NULL, "%s", err);
    }
    free(ids);
    collected c = {0};
    if (collect(&g, &c, 0)) {
        gen_finish(&g);
        free(c.text);
        return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "text", c.text);
    const char *ptext = cJSON_IsString(prompt) ? prompt->valuestring : "";
    cJSON_AddStringToObject(root, "prompt", ptext);
    cJSON_AddStringToObject(root, "model", s->model_name);
    cJSON_AddNumberToObject(root, "generated", g.n_generated);
    // /generate continues the prompt; /chat answers it, so a newline parts them
    size_t plen = strlen(ptext), sep = chat && plen ? 1 : 0;
    char *full = malloc(plen + sep + c.len + 1);
    if (full) {
        memcpy(full, ptext, plen);
        if (sep) full[plen] = '\n';
        memcpy(full + plen + sep, c.text, c.len + 1);
        cJSON_AddStringToObject(root, "full_text", full);
        free(full);
    }
    cJSON_AddStringToObject(root, "finish_reason", g.finish_reason);
    cJSON_AddItemToObject(root, "usage", usage_obj(&g));
    gen_finish(&g);
    free(c.text);
    return http_send_json(q, 200, root);
}
