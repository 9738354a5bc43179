// tiny_model.h - tiny random models of each architecture for the unit tests.
#ifndef LLM_TEST_TINY_MODEL_H
#define LLM_TEST_TINY_MODEL_H

#include "model.h"

// dim 64, 2 layers, 4 heads / 2 kv heads of 16, mlp 96, vocab 100; tied
// embeddings except Qwen2; Mistral gets llama3 rope scaling so that path is
// exercised too.
model_config tiny_config(model_arch arch);

// A tiny Llama (vocab 128, eos 127, max 1024 positions) saved once per test
// run under /tmp as a Hugging Face directory, removed at exit. NULL on failure.
const char *tiny_model_dir(void);

// The same for arch (tiny_config's shapes, vocab 128, eos 127, max 1024
// positions); tiny_model_dir() is tiny_model_dir_arch(ARCH_LLAMA).
const char *tiny_model_dir_arch(model_arch arch);

#endif
