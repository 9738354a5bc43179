// model_synthetic.c - models with seeded random weights: the shapes of real
// models by name (memory and speed work without a download) and any
// configuration (tests).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "util.h"

const char *const model_synthetic_names[] = {"smollm2-135m", "llama-3.2-1b", "llama-3-8b",
                                             "qwen2.5-7b",   "qwen3-0.6b",   NULL};

typedef struct {
    const char *name;
    const char *arch_name;
    model_arch arch;
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size, max_position;
    double rms_eps, rope_theta;
    int tie, llama3_rope;
    int bos_id, eos_id;
} synthetic_shape;

// Shapes as in each model's published config.json.
static const synthetic_shape synthetic_shapes[] = {
    {"smollm2-135m", "LlamaForCausalLM", ARCH_LLAMA, 576, 30, 9, 3, 64, 1536, 49152, 8192, 1e-5,
     100000.0f, 1, 0, 1, 2},
    {"llama-3.2-1b", "LlamaForCausalLM", ARCH_LLAMA, 2048, 16, 32, 8, 64, 8192, 128256, 131072,
     1e-5, 500000.0f, 1, 1, 128000, 128001},
    {"llama-3-8b", "LlamaForCausalLM", ARCH_LLAMA, 4096, 32, 32, 8, 128, 14336, 128256, 8192, 1e-5,
     500000.0f, 0, 0, 128000, 128001},
    {"qwen2.5-7b", "Qwen2ForCausalLM", ARCH_QWEN2, 3584, 28, 28, 4, 128, 18944, 152064, 32768, 1e-6,
     1000000.0f, 0, 0, 151643, 151645},
    {"qwen3-0.6b", "Qwen3ForCausalLM", ARCH_QWEN3, 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1e-6,
     1000000.0f, 1, 0, 151643, 151645},
};
#define N_SYNTHETIC (int)(sizeof(synthetic_shapes) / sizeof(synthetic_shapes[0]))

int model_synthetic_config(const char *name, model_config *c, char *err) {
    for (int i = 0; i < N_SYNTHETIC; i++) {
        const synthetic_shape *s = &synthetic_shapes[i];
        if (strcmp(name, s->name) != 0) continue;
        memset(c, 0, sizeof *c);
        c->arch = s->arch;
        snprintf(c->arch_name, sizeof c->arch_name, "%s", s->arch_name);
        c->dim = s->dim;
        c->n_layers = s->n_layers;
        c->n_heads = s->n_heads;
        c->n_kv_heads = s->n_kv_heads;
        c->head_dim = s->head_dim;
        c->hidden_dim = s->hidden_dim;
        c->vocab_size = s->vocab_size;
        c->max_position = s->max_position;
        c->rms_eps = s->rms_eps;
        c->rope_theta = s->rope_theta;
        if (s->llama3_rope) { // Llama 3.1/3.2 rope_scaling
            c->rope_scaling = ROPE_SCALING_LLAMA3;
            c->rope_factor = 32.0f;
            c->rope_low_freq_factor = 1.0f;
            c->rope_high_freq_factor = 4.0f;
            c->rope_orig_max_position = 8192;
        }
        c->tie_embeddings = s->tie;
        c->qkv_bias = s->arch == ARCH_QWEN2;
        c->qk_norm = s->arch == ARCH_QWEN3;
        c->dtype = LLM_BF16;
        c->bos_id = s->bos_id;
        c->n_eos = 1;
        c->eos_ids[0] = s->eos_id;
        return 0;
    }
    char names[256] = "", *p = names;
    for (int i = 0; i < N_SYNTHETIC; i++)
        p += sprintf(p, "%s%s", i ? ", " : "", synthetic_shapes[i].name);
    return llm_errf(err, "unknown synthetic model '%s' (known: %s)", name, names);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define RNG_CHUNK 65536 // elements per independently seeded chunk (parallel, reproducible)

// Fills n elements with uniform values of mean `mean` and std `std`; chunk k
// uses its own stream seeded from (seed, k), so threads change nothing.
static void fill_random(void *dst, llm_dtype dt, uint64_t n, uint64_t seed, float mean, float std) {
    float half_width = std * sqrtf(3.0f);
    uint64_t n_chunks = (n + RNG_CHUNK - 1) / RNG_CHUNK;
#pragma omp parallel for schedule(static)
    for (uint64_t k = 0; k < n_chunks; k++) {
        uint64_t state = seed ^ (k * 0xd1342543de82ef95ull);
        splitmix64(&state);
        uint64_t end = (k + 1) * RNG_CHUNK < n ? (k + 1) * RNG_CHUNK : n;
        for (uint64_t i = k * RNG_CHUNK; i < end; i++) {
            float u = (float)(splitmix64(&state) >> 40) * (1.0f / 16777216.0f); // [0, 1)
            store_elem(dst, dt, i, mean + half_width * (2.0f * u - 1.0f));
        }
    }
}

model_weights *model_synthetic(const char *name, uint64_t seed, llm_dtype dtype, char *err) {
    model_config cfg;
    if (model_synthetic_config(name, &cfg, err)) return NULL;
    return model_random(&cfg, seed, dtype, err);
}

model_weights *model_random(const model_config *c, uint64_t seed, llm_dtype dtype, char *err) {
    if (dtype != LLM_F16 && dtype != LLM_BF16 && dtype != LLM_F32) {
        llm_errf(err, "random weights are F16, BF16 or F32, not %s", dtype_name(dtype));
        return NULL;
    }
    model_config cfg = *c;
    cfg.dtype = dtype;
    model_weights *m = model_new(&cfg, err);
    if (!m) return NULL;
    spec_list specs = {0};
    if (build_specs(m, &specs, err)) goto fail;
    uint64_t arena = 0;
    for (int i = 0; i < specs.n; i++)
        arena += align_up(spec_numel(&specs.v[i]) * dtype_size(spec_dtype(&specs.v[i], dtype)));
    m->arena = aligned_alloc(ARENA_ALIGN, arena);
    if (!m->arena) {
        llm_errf(err, "out of memory: %llu bytes of random weights", (unsigned long long)arena);
        goto fail;
    }
    m->arena_bytes = arena;
    llm_progress prog;
    llm_progress_start(&prog, "generating weights", arena);
    uint64_t off = 0;
    for (int i = 0; i < specs.n; i++) {
        const tensor_spec *s = &specs.v[i];
        llm_dtype dt = spec_dtype(s, dtype);
        uint64_t n = spec_numel(s), bytes = n * dtype_size(dt);
        void *dst = (uint8_t *)m->arena + off;
        uint64_t tseed = seed ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull);
        int is_bias = strstr(s->name, ".bias") != NULL;
        if (s->is_matrix)
            fill_random(dst, dt, n, tseed, 0.0f, 1.0f / sqrtf((float)s->shape[1]));
        else if (is_bias)
            fill_random(dst, dt, n, tseed, 0.0f, 0.02f);
        else
            fill_random(dst, dt, n, tseed, 1.0f, 0.05f); // norm gains near 1
        set_tensor(s->t, s, dst, dt);
        off += align_up(bytes);
        llm_progress_add(&prog, align_up(bytes));
    }
    llm_progress_finish(&prog);
    count_bytes(m, &specs);
    if (cfg.tie_embeddings) m->lm_head = m->embed;
    free(specs.v);
    return m;
fail:
    free(specs.v);
    model_free(m);
    return NULL;
}
