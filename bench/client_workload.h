// client_workload.h - what llm_client sends: prompts files, seeded synthetic
// prompts, Poisson/gamma arrival times, and the JSON request bodies of the
// three APIs.
#ifndef LLM_CLIENT_WORKLOAD_H
#define LLM_CLIENT_WORKLOAD_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "client_http.h"

// splitmix64: small, seedable, good enough for workloads.
typedef struct {
    uint64_t s;
} client_rng;

void client_rng_seed(client_rng *r, uint64_t seed);
double client_rng_uniform(client_rng *r);          // [0, 1)
int client_rng_int(client_rng *r, int lo, int hi); // lo..hi inclusive
// Gamma(shape, scale) (Marsaglia-Tsang); shape 1 is the exponential.
double client_rng_gamma(client_rng *r, double shape, double scale);

// The gap to the next arrival of an open loop at rate requests/s with the
// given burstiness (vLLM's: gamma with shape burstiness, mean 1/rate; 1 is
// Poisson). rate inf: 0.
double client_arrival_gap_s(client_rng *r, double rate, double burstiness);

// One prompt of a prompts file; max_tokens < 0 and temperature < 0 when the
// file does not set them.
typedef struct {
    char *prompt;
    int max_tokens;
    double temperature;
} client_prompt;

// Reads a prompts file: text (one prompt per non-empty line), JSON (a list
// of strings, or of objects with "prompt" and optional "max_tokens",
// "temperature") or, for a name ending in .csv, CSV (RFC 4180 quoting; a
// header row with a "prompt" column and optional "max_tokens", "temperature";
// other columns ignored). Returns 0 with a heap array in *out, or -1 with err.
int client_prompts_load(const char *path, client_prompt **out, int *n, char *err);
void client_prompts_free(client_prompt *p, int n);

// Synthetic prompts of a given token length. As token ids: uniform in
// [SYNTH_ID_LO, SYNTH_ID_HI), a range inside every common vocabulary that
// avoids the special tokens at its ends. As text (a server that takes no ids,
// or the chat API): words that are one token each in common BPE vocabularies.
void client_synthetic_ids(client_rng *r, int *ids, int n);
char *client_synthetic_text(client_rng *r, int n_words);

typedef struct {
    client_api api;
    const char *model;  // NULL: not sent
    int max_tokens;     // < 0: not sent
    double temperature; // < 0: not sent
    double top_p;       // < 0: not sent
    int ignore_eos;
    uint64_t seed;      // 0: not sent
    const char *prompt; // the prompt text, or
    const int *ids;     // token ids (completions only)
    int n_ids;
    const cJSON *messages; // chat: the whole conversation instead of prompt
} client_body_spec;

// The request body (heap string): streamed with usage for the OpenAI APIs,
// plain for /generate. NULL when out of memory.
char *client_body(const client_body_spec *b);

#endif
