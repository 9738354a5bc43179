// api_simple.c - POST /generate and /chat: the simple API ({"prompt"} in,
// {"text", "full_text", "generated", ...} out; "stream": true for events).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_common.h"
#include "util.h"

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
    if (api_prompt_rejected(q, n_ids, sp.max_tokens, "prompt", &rejected)) {
        free(ids);
        return rejected;
    }
    int status;
    if (o.stream) { // server-sent events: data: {"text", ...} chunks, then [DONE]
        enum MHD_Result r = sse_answer(q, API_SIMPLE, &o, &sp, ids, n_ids, NULL, NULL);
        free(ids);
        return r;
    }
    gen g;
    if (gen_start(&g, q, ids, n_ids, &sp, &status, err)) {
        free(ids);
        return http_send_error(q, status, NULL, NULL, NULL, "%s", err);
    }
    free(ids);
    collected c = {0};
    if (api_collect(&g, &c, 0)) {
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
    cJSON_AddItemToObject(root, "usage", api_usage(&g));
    gen_finish(&g);
    free(c.text);
    return http_send_json(q, 200, root);
}
