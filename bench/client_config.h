// client_config.h - llm_client bench's workloads file (YAML, through libyaml):
//
//   targets:                       # servers to compare
//     - name: local
//       base_url: http://localhost:8000
//       api_key: sk-...            # optional
//       model: my-model            # optional: else the first of /v1/models
//   workloads:
//     - name: chat-short
//       requests: 50               # or duration: 30 (seconds)
//       concurrency: [1, 4, 16]    # closed loop points, or
//       rps: [1, 2, inf]           # open loop points (concurrency: N then caps them)
//       input_len: 128
//       output_len: 32
//       max_tokens: 32             # optional: overrides output_len
//       temperature: 0
//       prompts: prompts.txt       # or a list of strings; else synthetic prompts
//
// Every key of a workload may be left out: the command line's value is used.
#ifndef LLM_CLIENT_CONFIG_H
#define LLM_CLIENT_CONFIG_H

#include "client_bench.h"

typedef struct {
    client_target *targets;
    int n_targets;
    client_workload *workloads;
    int n_workloads;
    client_prompt **prompt_sets; // [n_workloads] prompts each workload owns (or NULL)
} client_config;

// Loads path. Workloads start from *defaults (its lists and prompts are
// shared, not copied); targets need a base_url. Returns 0, or -1 with err
// naming the file and the key.
int client_config_load(const char *path, const client_workload *defaults, client_config *c,
                       char *err);
void client_config_free(client_config *c);

// Parses "1,2,4" into a heap array of ints / doubles ("inf" allowed).
// Returns the count, or -1 with err.
int client_parse_ints(const char *s, int **out, char *err);
int client_parse_doubles(const char *s, double **out, char *err);

#endif
