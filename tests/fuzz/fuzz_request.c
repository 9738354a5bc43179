// libFuzzer entry for the server's request bodies: the input is parsed as JSON
// and, when it is an object, read as a completions, chat and simple-API
// request (server/params.c). Every outcome must be a success whose values
// pass the engine's own validation, or an error naming a field with a
// message; ASan and UBSan watch the rest.
//
//   make fuzz-request FUZZ_SECONDS=300
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "sampler.h"
#include "util.h"

#define FUZZ_VOCAB 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return 0;
    }
    static const api_kind kinds[] = {API_COMPLETIONS, API_CHAT, API_SIMPLE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        sampling_params sp;
        api_opts o;
        param_error pe = {0};
        if (params_parse(body, kinds[k], FUZZ_VOCAB, &sp, &o, &pe) == 0) {
            char err[LLM_ERR_LEN];
            // what the parser accepts, the engine accepts (or rejects with a message)
            if (sampling_params_validate(&sp, FUZZ_VOCAB, err) != 0 && !err[0]) abort();
            if (sp.n_stop < 0 || sp.n_stop > SAMPLING_MAX_STOP) abort();
            for (int i = 0; i < sp.n_stop; i++)
                if (!sp.stop[i][0] || strlen(sp.stop[i]) > SAMPLING_MAX_STOP_LEN) abort();
        } else if (!pe.param || !pe.msg[0]) {
            abort();
        }
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_IsArray(prompt)) {
        param_error pe = {0};
        int n = 0;
        int *ids = params_token_ids(prompt, "prompt", FUZZ_VOCAB, &n, &pe);
        if (ids)
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= FUZZ_VOCAB) abort();
        free(ids);
    }
    cJSON_Delete(body);
    return 0;
}
