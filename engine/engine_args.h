// engine_args.h - the engine flags that llm_generate, llm_server and
// bench_engine share, parsed the same way everywhere.
#ifndef LLM_ENGINE_ARGS_H
#define LLM_ENGINE_ARGS_H

#include <stdio.h>

#include "engine.h"

// Tries to consume one flag: name is the long option without "--", value its
// argument (NULL for the switches). Returns 1 when the flag is an engine flag
// and was applied to c, 0 when it is not an engine flag, -1 with err on a bad
// value. value may be needed: *used is set to 1 when it was consumed.
int engine_args_apply(engine_config *c, const char *name, const char *value, int *used, char *err);

// The engine flags as getopt_long entries, each returning `val`: splice into
// a program's option table, then hand each `val` hit to engine_args_apply
// with the entry's name (needs <getopt.h>).
#define ENGINE_ARGS_LONGOPTS(val)                                                                  \
    {"device", required_argument, 0, (val)}, {"dtype", required_argument, 0, (val)},               \
        {"quantization", required_argument, 0, (val)},                                             \
        {"gpu-memory-utilization", required_argument, 0, (val)},                                   \
        {"kv-cache-memory", required_argument, 0, (val)},                                          \
        {"device-memory", required_argument, 0, (val)},                                            \
        {"max-num-seqs", required_argument, 0, (val)},                                             \
        {"max-num-batched-tokens", required_argument, 0, (val)},                                   \
        {"max-model-len", required_argument, 0, (val)},                                            \
        {"block-size", required_argument, 0, (val)},                                               \
        {"kv-cache-dtype", required_argument, 0, (val)},                                           \
        {"no-prefix-caching", no_argument, 0, (val)}, {"batch-invariant", no_argument, 0, (val)},  \
        {"enforce-eager", no_argument, 0, (val)}, {"cpu-matmul", required_argument, 0, (val)}, {   \
        "allow-long-max-model-len", no_argument, 0, (val)                                          \
    }

// Prints the engine flags' help lines.
void engine_args_usage(FILE *f);

// Parses a byte count: "1073741824", "512MiB", "4GiB", "1.5GB". Returns 0 or -1.
int engine_args_parse_bytes(const char *s, unsigned long long *out);

#endif
