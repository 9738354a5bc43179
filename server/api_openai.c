// api_openai.c - POST /v1/completions and /v1/chat/completions, streamed
// (server-sent events, sse.c) or not, in the shapes of the OpenAI API.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_common.h"
#include "util.h"

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

// --- the handlers ---

static enum MHD_Result finish_unary(http_req *q, gen *g, api_kind api, const api_opts *o,
                                    const char *id, const char *echo) {
    server *s = q->s;
    collected c = {0};
    if (api_collect(g, &c, o->logprobs)) {
        gen_finish(g);
        free(c.text);
        free(c.toks);
        return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    }
    cJSON *root = api_envelope(id, api == API_CHAT ? "chat.completion" : "text_completion",
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
                cJSON_AddItemToArray(content, api_chat_lp_entry(s, &c.toks[i]));
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
            api_cmpl_lp_init(&l, elen);
            for (int i = 0; i < c.n_toks; i++) api_cmpl_lp_add(s, &l, &c.toks[i]);
            cJSON_AddItemToObject(ch, "logprobs", l.obj);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    cJSON_AddStringToObject(ch, "finish_reason", g->finish_reason);
    api_add_stop_reason(ch, g);
    cJSON_AddItemToObject(root, "usage", api_usage(g));
    gen_finish(g);
    free(c.text);
    free(c.toks);
    return http_send_json(q, 200, root);
}

// Common tail of both endpoints: limits, submission, then the answer.
static enum MHD_Result run_request(http_req *q, api_kind api, const api_opts *o,
                                   sampling_params *sp, int32_t *ids, int n_ids, char *echo) {
    server *s = q->s;
    enum MHD_Result ret;
    if (!o->max_tokens_set && api == API_CHAT) sp->max_tokens = s->max_model_len - n_ids;
    if (api_prompt_rejected(q, n_ids, sp->max_tokens, api == API_CHAT ? "messages" : "prompt",
                            &ret))
        goto out;
    char err[LLM_ERR_LEN];
    int status;
    if (o->stream) {
        ret = sse_answer(q, api, o, sp, ids, n_ids, api == API_CHAT ? "chatcmpl-" : "cmpl-", echo);
        echo = NULL;
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
