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

// Prints the engine flags' help lines.
void engine_args_usage(FILE *f);

// Parses a byte count: "1073741824", "512MiB", "4GiB", "1.5GB". Returns 0 or -1.
int engine_args_parse_bytes(const char *s, unsigned long long *out);

#endif
