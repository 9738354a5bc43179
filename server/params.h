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

// The model's own sampling defaults (generation_config.json, as vLLM's
// --generation-config auto): each field of a request that leaves it out
// takes it. A *_set of 0 leaves vLLM's default in place. Set once at start-up.
typedef struct {
    int temperature_set, top_p_set, top_k_set, min_p_set, repetition_penalty_set;
    float temperature, top_p, min_p, repetition_penalty;
    int top_k;
} params_defaults;
void params_set_defaults(const params_defaults *d);

// Reads generation_config.json's sampling keys (temperature, top_p, top_k,
// min_p, repetition_penalty) into *d; returns how many were found (0 when the
// file is absent or has none), or -1 with err for a value of a wrong type.
int params_load_defaults(const char *model_dir, params_defaults *d, char *err);

// A field as an integer in [lo, hi]: 0 when absent or null, 1 when set, -1
// with *pe on a wrong type or range.
int params_get_int(const cJSON *body, const char *name, long long lo, long long hi, long long *out,
                   param_error *pe);

// Token ids: a JSON array of integers in [0, vocab_size). Returns a malloc'd
// array (n may be 0) or NULL with *pe.
int *params_token_ids(const cJSON *arr, const char *name, int vocab_size, int *n, param_error *pe);

#endif
