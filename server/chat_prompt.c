// chat_prompt.c - a chat request's messages through the model's chat
// template into token ids (chat completions, /chat, /tokenize).
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
