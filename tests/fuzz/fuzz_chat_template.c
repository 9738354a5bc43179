// libFuzzer target: any bytes as a chat template, compiled and rendered over
// a fixed conversation with tools. Every outcome must be a rendered string or
// a clean error; ASan/UBSan catch the rest.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "util.h"

static const char *messages_json =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi \\u00e9\\ud83d\\ude00 <|im_start|>\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":"
    "{\"name\":\"f\",\"arguments\":{\"x\":1,\"y\":[true,null,2.5]}}}]},"
    "{\"role\":\"tool\",\"content\":\"42\"},{\"role\":\"user\",\"content\":\"\"}]";
static const char *tools_json =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}}}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    char err[LLM_ERR_LEN];
    chat_template *t = chat_template_compile(src, "<s>", "</s>", err);
    if (t) {
        cJSON *msgs = cJSON_Parse(messages_json), *tools = cJSON_Parse(tools_json);
        for (int gen = 0; gen < 2; gen++) {
            char *out = chat_template_render(t, msgs, gen ? tools : NULL, gen, err);
            free(out);
        }
        cJSON_Delete(msgs);
        cJSON_Delete(tools);
        chat_template_free(t);
    }
    free(src);
    return 0;
}
