// api_misc.c - chat prompts, /tokenize, /detokenize, /v1/models.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_common.h"
#include "util.h"

// A copy of messages with every content a plain string (text parts joined
// by newlines, as vLLM joins them).
static cJSON *normalize_messages(const cJSON *msgs, char *err) {
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        llm_errf(err, "'messages' must be a non-empty list of message objects");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            llm_errf(err, "messages[%d] must be an object with a string 'role'", i);
            goto fail;
        }
        cJSON *c = cJSON_Duplicate(m, 1);
        cJSON_AddItemToArray(out, c);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!content || cJSON_IsNull(content) || cJSON_IsString(content)) continue;
        if (!cJSON_IsArray(content)) {
            llm_errf(err, "messages[%d].content must be a string or a list of text parts", i);
            goto fail;
        }
        size_t len = 0;
        for (const cJSON *p = content->child; p; p = p->next) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
                !cJSON_IsString(text)) {
                llm_errf(err,
                         "messages[%d].content: only parts {\"type\": \"text\", \"text\": ...} "
                         "are supported",
                         i);
                goto fail;
            }
            len += strlen(text->valuestring) + 1;
        }
        char *joined = malloc(len + 1), *w = joined;
        if (!joined) {
            llm_errf(err, "out of memory");
            goto fail;
        }
        *w = 0;
        for (const cJSON *p = content->child; p; p = p->next) {
            const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
            if (w != joined) *w++ = '\n';
            size_t n = strlen(t);
            memcpy(w, t, n + 1);
            w += n;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(c, "content", cJSON_CreateString(joined));
        free(joined);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

int api_chat_prompt(server *s, const cJSON *body, int32_t **ids, int *n_ids, const char **param,
                    int *status, char *err) {
    *status = 400;
    *param = "messages";
    if (!s->ct) return llm_errf(err, "this model has no chat template: use /v1/completions");
    cJSON *msgs = normalize_messages(cJSON_GetObjectItemCaseSensitive(body, "messages"), err);
    if (!msgs) return -1;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(body, "chat_template_kwargs");
    if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools)) {
        cJSON_Delete(msgs);
        *param = "tools";
        return llm_errf(err, "'tools' must be a list");
    }
    if (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw)) {
        cJSON_Delete(msgs);
        *param = "chat_template_kwargs";
        return llm_errf(err, "'chat_template_kwargs' must be an object");
    }
    char *text = chat_template_render_vars(s->ct, msgs, cJSON_IsArray(tools) ? tools : NULL, 1,
                                           cJSON_IsObject(kw) ? kw : NULL, err);
    cJSON_Delete(msgs);
    if (!text) return -1;
    size_t n = 0;
    int rc = tok_encode(s->tok, text, strlen(text), 0, ids, &n, err);
    free(text);
    if (rc) return -1;
    *n_ids = (int)n;
    return 0;
}

enum MHD_Result api_tokenize(http_req *q, cJSON *body) {
    server *s = q->s;
    char err[LLM_ERR_LEN];
    int32_t *ids = NULL;
    int n = 0;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_GetObjectItemCaseSensitive(body, "messages")) {
        int status;
        const char *param;
        if (api_chat_prompt(s, body, &ids, &n, &param, &status, err))
            return http_send_error(q, status, NULL, param, NULL, "%s", err);
    } else if (cJSON_IsString(prompt)) {
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(body, "add_special_tokens");
        if (add && !cJSON_IsBool(add))
            return http_send_error(q, 400, NULL, "add_special_tokens", NULL,
                                   "'add_special_tokens' must be true or false");
        size_t nn = 0;
        if (tok_encode(s->tok, prompt->valuestring, strlen(prompt->valuestring),
                       add ? cJSON_IsTrue(add) : 1, &ids, &nn, err))
            return http_send_error(q, 400, NULL, "prompt", NULL, "%s", err);
        n = (int)nn;
    } else {
        return http_send_error(q, 400, NULL, "prompt", NULL,
                               "send 'prompt' (a string) or 'messages' (a chat)");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", n);
    cJSON_AddNumberToObject(o, "max_model_len", s->max_model_len);
    cJSON *t = cJSON_AddArrayToObject(o, "tokens");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(t, cJSON_CreateNumber(ids[i]));
    free(ids);
    return http_send_json(q, 200, o);
}

enum MHD_Result api_detokenize(http_req *q, cJSON *body) {
    server *s = q->s;
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(body, "tokens");
    if (!cJSON_IsArray(tokens))
        return http_send_error(q, 400, NULL, "tokens", NULL,
                               "'tokens' must be a list of token ids");
    param_error pe = {0};
    int n = 0;
    int *ids = params_token_ids(tokens, "tokens", s->vocab_size, &n, &pe);
    if (!ids) return http_send_error(q, 400, NULL, pe.param, NULL, "%s", pe.msg);
    int32_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        free(ids);
        return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    }
    for (int i = 0; i < n; i++) v[i] = ids[i];
    free(ids);
    char err[LLM_ERR_LEN];
    size_t len;
    char *text = tok_decode(s->tok, v, (size_t)n, 0, &len, err);
    free(v);
    if (!text) return http_send_error(q, 500, NULL, NULL, NULL, "%s", err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", text);
    free(text);
    return http_send_json(q, 200, o);
}

enum MHD_Result api_models(http_req *q) {
    server *s = q->s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)(long long)s->created);
    cJSON_AddStringToObject(m, "owned_by", "llm");
    cJSON_AddStringToObject(m, "root", s->ecfg.model_dir ? s->ecfg.model_dir : s->ecfg.synthetic);
    cJSON_AddNullToObject(m, "parent");
    cJSON_AddNumberToObject(m, "max_model_len", s->max_model_len);
    cJSON_AddItemToArray(data, m);
    return http_send_json(q, 200, o);
}
