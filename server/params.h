// params.h - request bodies into sampling parameters, with the checks and
// messages of an OpenAI-compatible server: each wrong type or out-of-range
// value is a 400 naming the field.
#ifndef LLM_PARAMS_H
#define LLM_PARAMS_H

#include <cjson/cJSON.h>

#include "sampler.h"

typedef enum { API_COMPLETIONS, API_CHAT, API_SIMPLE } api_kind;

typedef struct {
    int stream;
    int include_usage;
    int echo;           // completions
    int max_tokens_set; // 0: the API's default applies
    int top_logprobs;   // chat: entries per token (logprobs on)
    int logprobs;       // 1: report logprobs
} api_opts;

// Field validation failure: the field and a message fit for an HTTP 400.
typedef struct {
    const char *param;
    char msg[600];
} param_error;

// Reads the sampling fields of body into *sp (starting from vLLM's
// defaults) and the API switches into *o. vocab_size bounds the token ids.
// Returns 0, or -1 with *pe filled.
int params_parse(const cJSON *body, api_kind api, int vocab_size, sampling_params *sp, api_opts *o,
                 param_error *pe);

// A field as an integer in [lo, hi]: 0 when absent or null, 1 when set, -1
// with *pe on a wrong type or range.
int params_get_int(const cJSON *body, const char *name, long long lo, long long hi, long long *out,
                   param_error *pe);

// Token ids: a JSON array of integers in [0, vocab_size). Returns a malloc'd
// array (n may be 0) or NULL with *pe.
int *params_token_ids(const cJSON *arr, const char *name, int vocab_size, int *n, param_error *pe);

#endif
