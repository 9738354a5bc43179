// api_objects.c - the JSON objects the OpenAI-style answers share (usage,
// logprobs, the envelope), collecting a generation's text, and the prompt
// length check every generating endpoint makes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_common.h"
#include "util.h"

void api_cmpl_lp_init(cmpl_logprobs *l, size_t offset) {
    l->obj = cJSON_CreateObject();
    l->tokens = cJSON_AddArrayToObject(l->obj, "tokens");
    l->lps = cJSON_AddArrayToObject(l->obj, "token_logprobs");
    l->tops = cJSON_AddArrayToObject(l->obj, "top_logprobs");
    l->offsets = cJSON_AddArrayToObject(l->obj, "text_offset");
    l->offset = offset;
}

void api_cmpl_lp_add(server *s, cmpl_logprobs *l, const gen_token *t) {
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
cJSON *api_chat_lp_entry(server *s, const gen_token *t) {
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

cJSON *api_usage(const gen *g) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", g->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", g->n_generated);
    cJSON_AddNumberToObject(u, "total_tokens", g->n_prompt + g->n_generated);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", g->n_cached);
    return u;
}

void api_add_stop_reason(cJSON *choice, const gen *g) {
    if (g->stop_index >= 0)
        cJSON_AddStringToObject(choice, "stop_reason", g->sp.stop[g->stop_index]);
    else
        cJSON_AddNullToObject(choice, "stop_reason");
}

cJSON *api_envelope(const char *id, const char *object, double created, const char *model) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", created);
    cJSON_AddStringToObject(o, "model", model);
    return o;
}

int api_collect(gen *g, collected *c, int want_tokens) {
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

// 1 when the prompt (field `param`) is empty or leaves no room for
// max_tokens within the context: a 400 is queued into *ret.
int api_prompt_rejected(http_req *q, int n_ids, int max_tokens, const char *param,
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
