// api_tokenize.c - POST /tokenize and /detokenize.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_common.h"
#include "util.h"

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
