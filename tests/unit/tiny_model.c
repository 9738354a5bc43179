#include "tiny_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

model_config tiny_config(model_arch arch) {
    model_config c;
    char err[LLM_ERR_LEN];
    model_synthetic_config("smollm2-135m", &c, err);
    static const char *names[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                  "Qwen3ForCausalLM"};
    c.arch = arch;
    snprintf(c.arch_name, sizeof c.arch_name, "%s", names[arch]);
    c.dim = 64;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.hidden_dim = 96;
    c.vocab_size = 100;
    c.tie_embeddings = arch != ARCH_QWEN2;
    c.qkv_bias = arch == ARCH_QWEN2;
    c.qk_norm = arch == ARCH_QWEN3;
    if (arch == ARCH_MISTRAL) {
        c.rope_scaling = ROPE_SCALING_LLAMA3;
        c.rope_factor = 8;
        c.rope_low_freq_factor = 1;
        c.rope_high_freq_factor = 4;
        c.rope_orig_max_position = 32;
        c.rope_theta = 10000;
    }
    return c;
}

static char model_dirs[ARCH_QWEN3 + 1][64];

const char *tiny_model_dir_arch(model_arch arch) {
    char *dir = model_dirs[arch];
    if (dir[0]) return dir;
    model_config c = tiny_config(arch);
    c.vocab_size = 128;
    c.max_position = 1024;
    c.n_eos = 1;
    c.eos_ids[0] = 127;
    char err[LLM_ERR_LEN];
    model_weights *m = model_random(&c, 99 + (uint64_t)arch, LLM_F16, err);
    snprintf(dir, sizeof model_dirs[0], "/tmp/llm_tiny_model_XXXXXX");
    int ok = m && mkdtemp(dir) && model_save(m, dir, err) == 0;
    model_free(m);
    if (!ok) {
        fprintf(stderr, "tiny_model_dir: %s\n", err);
        dir[0] = 0;
        return NULL;
    }
    return dir;
}

const char *tiny_model_dir(void) {
    return tiny_model_dir_arch(ARCH_LLAMA);
}

__attribute__((destructor)) static void remove_tiny_models(void) {
    for (int a = 0; a <= ARCH_QWEN3; a++) {
        if (!model_dirs[a][0]) continue;
        char cmd[sizeof model_dirs + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_dirs[a]);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", model_dirs[a]);
    }
}
