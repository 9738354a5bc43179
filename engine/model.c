#include "model.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "util.h"

// One entry per weight tensor the architecture has: its checkpoint name,
// where it lands, and the shape the config implies.
typedef struct {
    char name[96];
    llm_tensor *t;
    int ndim;
    int64_t shape[2];
    int is_matrix; // matrices follow matrix_dtype; vectors become F32
    int is_embed;  // the embedding table or lm_head (not a Linear layer to quantize)
} tensor_spec;

typedef struct {
    tensor_spec *v;
    int n;
} spec_list;

static void spec_add(spec_list *l, llm_tensor *t, int is_matrix, int64_t rows, int64_t cols,
                     const char *fmt, int layer) {
    tensor_spec *s = &l->v[l->n++];
    snprintf(s->name, sizeof s->name, fmt, layer);
    s->t = t;
    s->is_matrix = is_matrix;
    s->ndim = is_matrix ? 2 : 1;
    s->shape[0] = rows;
    s->shape[1] = is_matrix ? cols : 0;
}

#define SPECS_PER_LAYER 14

// Lists every tensor of m's architecture. Returns 0 or -1 (out of memory).
static int build_specs(model_weights *m, spec_list *l, char *err) {
    const model_config *c = &m->cfg;
    l->v = llm_calloc((size_t)c->n_layers * SPECS_PER_LAYER + 3, sizeof *l->v, err);
    if (!l->v) return -1;
    l->n = 0;
    int64_t dim = c->dim, q = config_q_dim(c), kv = config_kv_dim(c), hid = c->hidden_dim;
    spec_add(l, &m->embed, 1, c->vocab_size, dim, "model.embed_tokens.weight", 0);
    for (int i = 0; i < c->n_layers; i++) {
        layer_weights *w = &m->layers[i];
        spec_add(l, &w->attn_norm, 0, dim, 0, "model.layers.%d.input_layernorm.weight", i);
        spec_add(l, &w->wq, 1, q, dim, "model.layers.%d.self_attn.q_proj.weight", i);
        spec_add(l, &w->wk, 1, kv, dim, "model.layers.%d.self_attn.k_proj.weight", i);
        spec_add(l, &w->wv, 1, kv, dim, "model.layers.%d.self_attn.v_proj.weight", i);
        if (c->qkv_bias) {
            spec_add(l, &w->bq, 0, q, 0, "model.layers.%d.self_attn.q_proj.bias", i);
            spec_add(l, &w->bk, 0, kv, 0, "model.layers.%d.self_attn.k_proj.bias", i);
            spec_add(l, &w->bv, 0, kv, 0, "model.layers.%d.self_attn.v_proj.bias", i);
        }
        if (c->qk_norm) {
            spec_add(l, &w->q_norm, 0, c->head_dim, 0, "model.layers.%d.self_attn.q_norm.weight",
                     i);
            spec_add(l, &w->k_norm, 0, c->head_dim, 0, "model.layers.%d.self_attn.k_norm.weight",
                     i);
        }
        spec_add(l, &w->wo, 1, dim, q, "model.layers.%d.self_attn.o_proj.weight", i);
        spec_add(l, &w->ffn_norm, 0, dim, 0, "model.layers.%d.post_attention_layernorm.weight", i);
        spec_add(l, &w->w_gate, 1, hid, dim, "model.layers.%d.mlp.gate_proj.weight", i);
        spec_add(l, &w->w_up, 1, hid, dim, "model.layers.%d.mlp.up_proj.weight", i);
        spec_add(l, &w->w_down, 1, dim, hid, "model.layers.%d.mlp.down_proj.weight", i);
    }
    spec_add(l, &m->final_norm, 0, dim, 0, "model.norm.weight", 0);
    if (!c->tie_embeddings) spec_add(l, &m->lm_head, 1, c->vocab_size, dim, "lm_head.weight", 0);
    for (int i = 0; i < l->n; i++)
        l->v[i].is_embed = l->v[i].t == &m->embed || l->v[i].t == &m->lm_head;
    return 0;
}

static uint64_t spec_numel(const tensor_spec *s) {
    return (uint64_t)s->shape[0] * (uint64_t)(s->ndim == 2 ? s->shape[1] : 1);
}

static llm_dtype spec_dtype(const tensor_spec *s, llm_dtype matrix_dtype) {
    return s->is_matrix ? matrix_dtype : LLM_F32;
}

// The dtype a checkpoint tensor lands in: matrices as asked (or as stored),
// norms and biases in F32.
static llm_dtype load_dtype(const tensor_spec *s, llm_dtype stored, const model_load_opts *o) {
    if (!s->is_matrix) return LLM_F32;
    return o->matrix_dtype < 0 ? stored : (llm_dtype)o->matrix_dtype;
}

#define ARENA_ALIGN 64 // cache line; also keeps SIMD loads aligned

static uint64_t align_up(uint64_t x) {
    return (x + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
}

static model_weights *model_new(const model_config *c, char *err) {
    model_weights *m = llm_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->cfg = *c;
    m->layers = llm_calloc((size_t)c->n_layers, sizeof *m->layers, err);
    if (!m->layers) {
        free(m);
        return NULL;
    }
    return m;
}

static void set_tensor(llm_tensor *t, const tensor_spec *s, void *data, llm_dtype dt) {
    t->data = data;
    t->dtype = dt;
    t->ndim = s->ndim;
    t->shape[0] = s->shape[0];
    t->shape[1] = s->shape[1];
    t->scale = NULL;
}

static uint64_t tensor_numel(const llm_tensor *t) {
    return (uint64_t)t->shape[0] * (uint64_t)(t->ndim == 2 ? t->shape[1] : 1);
}

// Bytes of a tensor as held, with an I8 matrix's f32 scales.
static uint64_t tensor_bytes(const llm_tensor *t) {
    uint64_t b = tensor_numel(t) * dtype_size(t->dtype);
    return t->dtype == LLM_I8 ? b + (uint64_t)t->shape[0] * sizeof(float) : b;
}

// Fills m's byte counts from its tensors.
static void count_bytes(model_weights *m, const spec_list *specs) {
    m->weight_bytes = m->embed_bytes = m->int8_bytes = m->saved_bytes = 0;
    for (int i = 0; i < specs->n; i++) {
        const llm_tensor *t = specs->v[i].t;
        uint64_t b = tensor_bytes(t);
        m->weight_bytes += b;
        if (specs->v[i].is_embed) m->embed_bytes += b;
        if (t->dtype == LLM_I8) {
            if (!specs->v[i].is_embed) m->int8_bytes += b;
            m->saved_bytes += tensor_numel(t) * 2 - b;
        }
    }
}

static float load_elem(const void *src, llm_dtype dt, uint64_t i) {
    switch (dt) {
    case LLM_F32:
        return ((const float *)src)[i];
    case LLM_F16:
        return fp16_to_f32(((const uint16_t *)src)[i]);
    case LLM_BF16:
        return bf16_to_f32(((const uint16_t *)src)[i]);
    default:
        return 0.0f;
    }
}

static void store_elem(void *dst, llm_dtype dt, uint64_t i, float v) {
    switch (dt) {
    case LLM_F32:
        ((float *)dst)[i] = v;
        break;
    case LLM_F16:
        ((uint16_t *)dst)[i] = f32_to_fp16(v);
        break;
    case LLM_BF16:
        ((uint16_t *)dst)[i] = f32_to_bf16(v);
        break;
    default:
        break;
    }
}

static void convert(void *dst, llm_dtype dst_dt, const void *src, llm_dtype src_dt, uint64_t n) {
#pragma omp parallel for schedule(static)
    for (uint64_t i = 0; i < n; i++) store_elem(dst, dst_dt, i, load_elem(src, src_dt, i));
}

#define PAGE_BYTES 4096

// Reads one byte per page so the checkpoint is in memory before the first
// step (and loading shows real progress), not faulted in during inference.
static void prefault(const void *data, uint64_t nbytes) {
    const volatile uint8_t *p = data;
    uint8_t sink = 0;
    for (uint64_t off = 0; off < nbytes; off += PAGE_BYTES) sink ^= p[off];
    (void)sink;
}

static int check_spec(const tensor_spec *s, const st_tensor *t, const model_config *c,
                      const char *dir, char *err) {
    if (!t) return llm_errf(err, "%s: tensor '%s' is missing from the checkpoint", dir, s->name);
    if (t->dtype == LLM_I8 && s->is_matrix && c->quant != QUANT_INT8)
        return llm_errf(err,
                        "%s: tensor '%s' is I8 but config.json has no compressed-tensors int8 "
                        "quantization_config",
                        dir, s->name);
    if (t->dtype != LLM_F32 && t->dtype != LLM_F16 && t->dtype != LLM_BF16 &&
        !(t->dtype == LLM_I8 && s->is_matrix))
        return llm_errf(err, "%s: tensor '%s' has dtype %s, expected F16, BF16 or F32", dir,
                        s->name, dtype_name(t->dtype));
    int ok = t->ndim == s->ndim;
    for (int d = 0; ok && d < s->ndim; d++) ok = t->shape[d] == s->shape[d];
    if (!ok) {
        char got[96] = "", *p = got;
        for (int d = 0; d < t->ndim && p < got + sizeof got - 24; d++)
            p += sprintf(p, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (s->ndim == 2)
            return llm_errf(err, "%s: tensor '%s' has shape [%s], config implies [%lld, %lld]", dir,
                            s->name, got, (long long)s->shape[0], (long long)s->shape[1]);
        return llm_errf(err, "%s: tensor '%s' has shape [%s], config implies [%lld]", dir, s->name,
                        got, (long long)s->shape[0]);
    }
    return 0;
}

static const char *shape_str(const st_tensor *t, char *buf, size_t len) {
    char *p = buf;
    *p = '\0';
    for (int d = 0; d < t->ndim && p < buf + len - 24; d++)
        p += sprintf(p, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    return buf;
}

// The scale of an I8 checkpoint matrix (<name>_scale) and, if present, its
// zero point (<name>_zero_point, all zeros: symmetric). Sets *per_tensor when
// one scale covers the whole matrix.
static const st_tensor *find_scale(const st_model *st, const tensor_spec *s, const char *dir,
                                   int *per_tensor, char *err) {
    char name[sizeof s->name + 16], got[96];
    snprintf(name, sizeof name, "%s_scale", s->name);
    const st_tensor *sc = st_find(st, name);
    if (!sc) {
        llm_errf(err, "%s: int8 tensor '%s' has no scale tensor '%s'", dir, s->name, name);
        return NULL;
    }
    if (sc->dtype != LLM_F32 && sc->dtype != LLM_F16 && sc->dtype != LLM_BF16) {
        llm_errf(err, "%s: scale tensor '%s' has dtype %s, expected F16, BF16 or F32", dir, name,
                 dtype_name(sc->dtype));
        return NULL;
    }
    const int64_t rows = s->shape[0];
    *per_tensor = sc->numel == 1 && sc->ndim <= 2;
    int per_channel = (sc->ndim == 2 && sc->shape[0] == rows && sc->shape[1] == 1) ||
                      (sc->ndim == 1 && sc->shape[0] == rows);
    if (!per_channel && !*per_tensor) {
        if (sc->ndim == 2 && sc->shape[0] == rows && sc->shape[1] > 1)
            llm_errf(err,
                     "%s: scale tensor '%s' has shape [%s]: grouped scales (%lld groups per row) "
                     "are not supported, only per-channel [%lld, 1] or per-tensor [1]",
                     dir, name, shape_str(sc, got, sizeof got), (long long)sc->shape[1],
                     (long long)rows);
        else
            llm_errf(err, "%s: scale tensor '%s' has shape [%s], expected [%lld, 1] (per channel)",
                     dir, name, shape_str(sc, got, sizeof got), (long long)rows);
        return NULL;
    }
    snprintf(name, sizeof name, "%s_zero_point", s->name);
    const st_tensor *zp = st_find(st, name);
    if (zp)
        for (uint64_t i = 0; i < zp->numel; i++) {
            float z = zp->dtype == LLM_I8 ? (float)((const int8_t *)zp->data)[i]
                                          : load_elem(zp->data, zp->dtype, i);
            if (z != 0.0f) {
                llm_errf(err,
                         "%s: '%s' is not all zeros: asymmetric int8 is not supported "
                         "(symmetric only)",
                         dir, name);
                return NULL;
            }
        }
    return sc;
}

// How a checkpoint tensor lands in memory.
typedef enum {
    PLACE_MAP,      // used where it is mapped
    PLACE_CONVERT,  // converted (or copied) into the arena
    PLACE_QUANTIZE, // quantized into the arena: I8 data, f32 scales
    PLACE_INT8,     // I8 used where it is mapped; its scales converted into the arena
} placement;

static placement place_of(const tensor_spec *s, const st_tensor *t, const model_load_opts *o) {
    if (t->dtype == LLM_I8) return PLACE_INT8;
    if (o->quantize == QUANT_INT8 && s->is_matrix && !s->is_embed) return PLACE_QUANTIZE;
    // quantizing at load reads the checkpoint once and keeps nothing mapped
    if (o->quantize == QUANT_INT8 || load_dtype(s, t->dtype, o) != t->dtype) return PLACE_CONVERT;
    return PLACE_MAP;
}

model_weights *model_load(const char *dir, const model_load_opts *opts, char *err) {
    if (opts->matrix_dtype >= 0 && opts->matrix_dtype != LLM_F16 &&
        opts->matrix_dtype != LLM_BF16 && opts->matrix_dtype != LLM_F32) {
        llm_errf(err, "weights can be loaded as F16, BF16 or F32, not %s",
                 dtype_name((llm_dtype)opts->matrix_dtype));
        return NULL;
    }
    model_config cfg;
    if (config_load(dir, &cfg, err)) return NULL;
    model_weights *m = model_new(&cfg, err);
    if (!m) return NULL;
    spec_list specs = {0};
    const st_tensor **src = NULL, **scale = NULL;
    int *per_tensor = NULL;
    if (build_specs(m, &specs, err)) goto fail;
    m->st = st_open_dir(dir, err);
    if (!m->st) goto fail;

    // Pass 1: validate every tensor, size the arena for what does not stay mapped.
    src = llm_calloc((size_t)specs.n, sizeof *src, err);
    scale = llm_calloc((size_t)specs.n, sizeof *scale, err);
    per_tensor = llm_calloc((size_t)specs.n, sizeof *per_tensor, err);
    if (!src || !scale || !per_tensor) goto fail;
    uint64_t arena = 0, total = 0;
    int mapped = 0;
    for (int i = 0; i < specs.n; i++) {
        const tensor_spec *s = &specs.v[i];
        src[i] = st_find(m->st, s->name);
        if (check_spec(s, src[i], &cfg, dir, err)) goto fail;
        if (src[i]->dtype == LLM_I8 && !(scale[i] = find_scale(m->st, s, dir, &per_tensor[i], err)))
            goto fail;
        uint64_t rows = (uint64_t)s->shape[0];
        switch (place_of(s, src[i], opts)) {
        case PLACE_MAP:
            mapped = 1;
            break;
        case PLACE_CONVERT:
            arena += align_up(spec_numel(s) * dtype_size(load_dtype(s, src[i]->dtype, opts)));
            break;
        case PLACE_QUANTIZE:
            arena += align_up(spec_numel(s)) + align_up(rows * sizeof(float));
            break;
        case PLACE_INT8:
            mapped = 1;
            arena += align_up(rows * sizeof(float));
            break;
        }
        total += src[i]->nbytes;
    }
    if (arena) {
        m->arena = aligned_alloc(ARENA_ALIGN, arena);
        if (!m->arena) {
            llm_errf(err, "out of memory: %llu bytes for converted weights",
                     (unsigned long long)arena);
            goto fail;
        }
        m->arena_bytes = arena;
    }

    // Pass 2: place each tensor, converting or quantizing where asked.
    llm_progress prog;
    llm_progress_start(&prog, opts->quantize ? "quantizing weights" : "loading weights", total);
    prog.is_tty = prog.is_tty && opts->progress;
    uint8_t *at = m->arena;
    for (int i = 0; i < specs.n; i++) {
        const tensor_spec *s = &specs.v[i];
        const uint64_t n = spec_numel(s), rows = (uint64_t)s->shape[0];
        llm_dtype want = load_dtype(s, src[i]->dtype, opts);
        switch (place_of(s, src[i], opts)) {
        case PLACE_MAP:
            prefault(src[i]->data, src[i]->nbytes);
            set_tensor(s->t, s, (void *)src[i]->data, want);
            break;
        case PLACE_CONVERT:
            if (want == src[i]->dtype)
                memcpy(at, src[i]->data, src[i]->nbytes);
            else
                convert(at, want, src[i]->data, src[i]->dtype, n);
            set_tensor(s->t, s, at, want);
            at += align_up(n * dtype_size(want));
            break;
        case PLACE_QUANTIZE: {
            float *sc = (float *)(at + align_up(n));
            quant_matrix_int8((int8_t *)at, sc, src[i]->data, src[i]->dtype, s->shape[0],
                              s->shape[1], cfg.dtype);
            set_tensor(s->t, s, at, LLM_I8);
            s->t->scale = sc;
            at += align_up(n) + align_up(rows * sizeof(float));
            break;
        }
        case PLACE_INT8: {
            prefault(src[i]->data, src[i]->nbytes);
            float *sc = (float *)at;
            if (per_tensor[i])
                for (uint64_t r = 0; r < rows; r++)
                    sc[r] = load_elem(scale[i]->data, scale[i]->dtype, 0);
            else
                convert(sc, LLM_F32, scale[i]->data, scale[i]->dtype, rows);
            set_tensor(s->t, s, (void *)src[i]->data, LLM_I8);
            s->t->scale = sc;
            at += align_up(rows * sizeof(float));
            break;
        }
        }
        llm_progress_add(&prog, src[i]->nbytes);
    }
    llm_progress_finish(&prog);
    if (!mapped) { // everything was copied out: drop the mapping
        st_close(m->st);
        m->st = NULL;
    }
    count_bytes(m, &specs);
    for (int i = 0; i < specs.n; i++)
        if (specs.v[i].t->dtype == LLM_I8) {
            m->cfg.quant = QUANT_INT8;
            if (specs.v[i].is_embed) m->cfg.quant_embeddings = 1;
        }
    if (cfg.tie_embeddings) m->lm_head = m->embed;
    free(src);
    free(scale);
    free(per_tensor);
    free(specs.v);
    return m;

fail:
    free(src);
    free(scale);
    free(per_tensor);
    free(specs.v);
    model_free(m);
    return NULL;
}

// --- synthetic models -------------------------------------------------------

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

// --- quantization -------------------------------------------------------------

static int to_quantize(const tensor_spec *s, int embeddings) {
    return s->is_matrix && s->t->dtype != LLM_I8 && (!s->is_embed || embeddings);
}

static int in_arena(const model_weights *m, const void *p) {
    return m->arena && (const uint8_t *)p >= (const uint8_t *)m->arena &&
           (const uint8_t *)p < (const uint8_t *)m->arena + m->arena_bytes;
}

int model_quantize_int8(model_weights *m, int embeddings, char *err) {
    spec_list specs = {0};
    if (build_specs(m, &specs, err)) return -1;
    // a new arena: the quantized matrices, and copies of what the old one held
    uint64_t bytes = 0;
    for (int i = 0; i < specs.n; i++) {
        const tensor_spec *s = &specs.v[i];
        uint64_t rows = (uint64_t)s->shape[0], n = spec_numel(s);
        if (to_quantize(s, embeddings))
            bytes += align_up(n) + align_up(rows * sizeof(float));
        else if (in_arena(m, s->t->data) || in_arena(m, s->t->scale))
            bytes += align_up(n * dtype_size(s->t->dtype)) +
                     (s->t->scale ? align_up(rows * sizeof(float)) : 0);
    }
    uint8_t *arena = aligned_alloc(ARENA_ALIGN, bytes ? bytes : ARENA_ALIGN), *at = arena;
    if (!arena) {
        free(specs.v);
        return llm_errf(err, "out of memory: %llu bytes for int8 weights",
                        (unsigned long long)bytes);
    }
    for (int i = 0; i < specs.n; i++) {
        const tensor_spec *s = &specs.v[i];
        llm_tensor *t = s->t;
        uint64_t rows = (uint64_t)s->shape[0], n = spec_numel(s);
        if (to_quantize(s, embeddings)) {
            float *sc = (float *)(at + align_up(n));
            quant_matrix_int8((int8_t *)at, sc, t->data, t->dtype, s->shape[0], s->shape[1],
                              m->cfg.dtype);
            set_tensor(t, s, at, LLM_I8);
            t->scale = sc;
            at += align_up(n) + align_up(rows * sizeof(float));
        } else if (in_arena(m, t->data) || in_arena(m, t->scale)) {
            size_t b = n * dtype_size(t->dtype);
            memcpy(at, t->data, b);
            t->data = at;
            at += align_up(b);
            if (t->scale) {
                memcpy(at, t->scale, rows * sizeof(float));
                t->scale = (float *)at;
                at += align_up(rows * sizeof(float));
            }
        }
    }
    free(m->arena);
    m->arena = arena;
    m->arena_bytes = bytes;
    m->cfg.quant = QUANT_INT8;
    m->cfg.quant_embeddings = embeddings;
    if (m->cfg.tie_embeddings) m->lm_head = m->embed;
    count_bytes(m, &specs);
    free(specs.v);
    return 0;
}

uint64_t model_weight_bytes(const model_config *c, llm_dtype dtype) {
    uint64_t dim = (uint64_t)c->dim, q = (uint64_t)config_q_dim(c), kv = (uint64_t)config_kv_dim(c);
    uint64_t hid = (uint64_t)c->hidden_dim, vocab = (uint64_t)c->vocab_size;
    uint64_t mat = q * dim + 2 * kv * dim + dim * q + 3 * hid * dim;
    uint64_t mat_rows = q + 2 * kv + dim + 2 * hid + dim; // rows of those, one scale each
    uint64_t vec =
        2 * dim + (c->qkv_bias ? q + 2 * kv : 0) + (c->qk_norm ? 2 * (uint64_t)c->head_dim : 0);
    int int8 = c->quant == QUANT_INT8;
    uint64_t per_layer = (int8 ? mat + mat_rows * 4 : mat * dtype_size(dtype)) + vec * 4;
    int int8_embed = int8 && c->quant_embeddings;
    uint64_t table = int8_embed ? vocab * dim + vocab * 4 : vocab * dim * dtype_size(dtype);
    uint64_t embed = table * (c->tie_embeddings ? 1 : 2);
    return (uint64_t)c->n_layers * per_layer + embed + dim * 4;
}

// --- enumeration and saving ---------------------------------------------------

int model_foreach_tensor(const model_weights *m, model_tensor_fn fn, void *ctx) {
    spec_list specs = {0};
    // build_specs only takes the addresses of m's tensors; it changes nothing
    if (build_specs((model_weights *)m, &specs, NULL)) return -1;
    int rc = 0;
    for (int i = 0; i < specs.n && rc == 0; i++) rc = fn(specs.v[i].name, specs.v[i].t, ctx);
    free(specs.v);
    return rc;
}

typedef struct {
    st_write_tensor *v;
    int n;
    llm_dtype scale_dtype; // of the <name>_scale tensors written for I8 matrices
} save_list;

static int collect(const char *name, const llm_tensor *t, void *ctx) {
    save_list *l = ctx;
    st_write_tensor *w = &l->v[l->n++];
    w->name = strdup(name);
    w->dtype = t->dtype;
    w->ndim = t->ndim;
    w->shape[0] = t->shape[0];
    w->shape[1] = t->shape[1];
    w->data = t->data;
    if (!w->name) return -1;
    if (t->dtype != LLM_I8) return 0;
    // compressed-tensors: <name>_scale [out, 1] in the model's float dtype
    st_write_tensor *sc = &l->v[l->n++];
    size_t rows = (size_t)t->shape[0];
    void *data = malloc(rows * dtype_size(l->scale_dtype) + 1);
    sc->name = malloc(strlen(name) + sizeof "_scale");
    if (!data || !sc->name) {
        free(data);
        return -1;
    }
    sprintf((char *)sc->name, "%s_scale", name);
    convert(data, l->scale_dtype, t->scale, LLM_F32, rows);
    sc->dtype = l->scale_dtype;
    sc->ndim = 2;
    sc->shape[0] = (int64_t)rows;
    sc->shape[1] = 1;
    sc->data = data;
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text, char *err) {
    char *path = llm_path_join(dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    int rc = f && fputs(text, f) >= 0 ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    if (rc) llm_errf(err, "%s: cannot write", path ? path : name);
    free(path);
    return rc;
}

int model_save(const model_weights *m, const char *dir, char *err) {
    const model_config *c = &m->cfg;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return llm_errf(err, "%s: %s", dir, strerror(errno));
    // two entries per tensor: an I8 matrix is followed by its scale
    save_list l = {llm_calloc((size_t)c->n_layers * SPECS_PER_LAYER * 2 + 6, sizeof *l.v, err), 0,
                   c->dtype};
    if (!l.v) return -1;
    int rc = model_foreach_tensor(m, collect, &l);
    // widest dtypes first, so every tensor's data stays aligned to its element size
    st_write_tensor *sorted = llm_calloc((size_t)l.n + 1, sizeof *sorted, err);
    int ns = 0;
    for (size_t width = 4; sorted && width >= 1; width /= 2)
        for (int i = 0; i < l.n; i++)
            if (dtype_size(l.v[i].dtype) == width) sorted[ns++] = l.v[i];
    char *path = llm_path_join(dir, "model.safetensors");
    static const char *const meta[] = {"format", "pt"};
    if (rc == 0 && path && sorted)
        rc = st_write_file(path, sorted, ns, meta, 1, err);
    else
        rc = llm_errf(err, "out of memory");
    char *cfg = rc == 0 ? config_to_json(c) : NULL;
    if (rc == 0)
        rc = cfg ? write_text(dir, "config.json", cfg, err) : llm_errf(err, "out of memory");
    if (rc == 0) {
        char gen[256];
        snprintf(gen, sizeof gen, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n",
                 c->bos_id, c->n_eos ? c->eos_ids[0] : -1);
        rc = write_text(dir, "generation_config.json", gen, err);
    }
    free(cfg);
    free(path);
    free(sorted);
    for (int i = 0; i < l.n; i++) {
        free((void *)l.v[i].name);
        if (l.v[i].dtype != LLM_I8 && i > 0 && l.v[i - 1].dtype == LLM_I8)
            free((void *)l.v[i].data); // a scale converted by collect
    }
    free(l.v);
    return rc;
}

void model_free(model_weights *m) {
    if (!m) return;
    st_close(m->st);
    free(m->arena);
    free(m->layers);
    free(m);
}
