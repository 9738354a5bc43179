// model.h - a model's weights in memory: loaded from a Hugging Face directory
// (safetensors) or built with seeded random values at the exact shapes of a
// real model (synthetic, for memory and speed work).
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stdint.h>

#include "config.h"
#include "dtype.h"
#include "safetensors.h"

// A weight tensor in host memory, row-major. Matrices are [out, in] as in
// PyTorch's nn.Linear. data is NULL for a tensor the architecture lacks. An
// I8 matrix is symmetric int8 per output channel: w[r][c] = data[r][c] * scale[r].
typedef struct {
    void *data;
    llm_dtype dtype;
    int ndim;
    int64_t shape[2];
    float *scale; // (shape[0]) f32, I8 matrices only; else NULL
} llm_tensor;

typedef struct {
    llm_tensor attn_norm; // (dim)
    llm_tensor wq;        // (n_heads * head_dim, dim)
    llm_tensor wk;        // (n_kv_heads * head_dim, dim)
    llm_tensor wv;        // (n_kv_heads * head_dim, dim)
    llm_tensor bq;        // (n_heads * head_dim)     Qwen2 only
    llm_tensor bk;        // (n_kv_heads * head_dim)  Qwen2 only
    llm_tensor bv;        // (n_kv_heads * head_dim)  Qwen2 only
    llm_tensor q_norm;    // (head_dim)               Qwen3 only
    llm_tensor k_norm;    // (head_dim)               Qwen3 only
    llm_tensor wo;        // (dim, n_heads * head_dim)
    llm_tensor ffn_norm;  // (dim)
    llm_tensor w_gate;    // (hidden_dim, dim)
    llm_tensor w_up;      // (hidden_dim, dim)
    llm_tensor w_down;    // (dim, hidden_dim)
    // fp8 KV cache scales (backend.h), 1.0 unless the checkpoint has the
    // scalar tensors self_attn.k_scale / v_scale (vLLM, llm-compressor;
    // also self_attn.k_proj.k_scale / v_proj.v_scale and self_attn.attn.*)
    float k_scale, v_scale;
} layer_weights;

typedef struct {
    model_config cfg;
    llm_tensor embed;      // (vocab_size, dim)
    layer_weights *layers; // (n_layers)
    llm_tensor final_norm; // (dim)
    llm_tensor lm_head;    // (vocab_size, dim); same data as embed when tied
    uint64_t weight_bytes; // bytes of all distinct weight tensors (int8 scales included)
    uint64_t embed_bytes;  // of which the embedding table and an untied lm_head
    uint64_t int8_bytes;   // of which I8 Linear matrices and their scales (not embeddings)
    uint64_t saved_bytes;  // what the I8 matrices save against the same matrices in 16 bits
    // storage: the mapped checkpoint (tensors kept in their dtype point into
    // it) and one arena for converted or generated tensors
    st_model *st;
    void *arena;
    uint64_t arena_bytes;
} model_weights;

// How weights should land in memory.
typedef struct {
    // Matrices are converted to this dtype; -1 keeps the checkpoint's dtype.
    // Norm weights and biases are always kept in F32.
    int matrix_dtype;
    // QUANT_INT8: quantize the float Linear weights to int8 at load (quant.h),
    // scales rounded to the checkpoint's dtype as llm_quantize writes them;
    // the embedding table and lm_head stay as they are. QUANT_NONE: as stored.
    quant_kind quantize;
    // Show a progress bar on a terminal while loading.
    int progress;
} model_load_opts;

// Loads DIR (config.json, generation_config.json, model.safetensors or
// shards). Every tensor the architecture needs must be present with the shape
// the config implies and a float dtype (F32, F16, BF16), or I8 when config.json
// declares compressed-tensors int8 (config.h): an I8 <name> then needs
// <name>_scale, a float [out, 1] or [out] (per channel) or [1] / [1, 1] / []
// (per tensor); a <name>_zero_point, if present, must be all zeros. I8
// matrices stay I8 whatever matrix_dtype says; their scales become f32. An
// absent, misshapen or wrongly typed tensor or scale (a grouped [out, groups]
// scale among them) is an error naming the tensor and the file. Returns
// NULL and fills err on failure (nothing is leaked).
model_weights *model_load(const char *dir, const model_load_opts *opts, char *err);

// Names of the synthetic shapes, NULL-terminated: "smollm2-135m", "llama-3.2-1b",
// "llama-3-8b", "qwen2.5-7b", "qwen3-0.6b".
extern const char *const model_synthetic_names[];

// Fills *c with the configuration of a named synthetic model. Returns 0, or -1
// with err listing the known names.
int model_synthetic_config(const char *name, model_config *c, char *err);

// Builds a model of the named shape with seeded random weights (uniform with
// std 1/sqrt(fan_in) for matrices, near 1 for norms) in `dtype` (F16, BF16 or
// F32). The same name, seed and dtype give the same bits on every machine.
model_weights *model_synthetic(const char *name, uint64_t seed, llm_dtype dtype, char *err);

// Builds a model of any configuration with seeded random weights, as above
// (tests use tiny configurations of each architecture).
model_weights *model_random(const model_config *c, uint64_t seed, llm_dtype dtype, char *err);

// Quantizes every float Linear weight of m to int8 (quant.h), and the
// embedding table and lm_head too when embeddings is 1; scales are rounded to
// m->cfg.dtype. Sets m->cfg.quant (and quant_embeddings) and the byte counts.
// Returns 0, or -1 with err when out of memory (m is then unchanged).
int model_quantize_int8(model_weights *m, int embeddings, char *err);

// Writes m as a Hugging Face directory (config.json, generation_config.json,
// model.safetensors) that model_load and transformers both read; an int8
// model in the compressed-tensors layout (<name>_scale in cfg.dtype, [out, 1]).
int model_save(const model_weights *m, const char *dir, char *err);

// Checkpoint tensor name of each weight, for error messages and saving:
// calls fn(name, tensor, ctx) for every present tensor (lm_head only if untied).
typedef int (*model_tensor_fn)(const char *name, const llm_tensor *t, void *ctx);
int model_foreach_tensor(const model_weights *m, model_tensor_fn fn, void *ctx);

// Predicted bytes of the weights of config c with float matrices in dtype
// (norms/biases in F32); with c->quant == QUANT_INT8 the Linear matrices (and
// the embedding table when c->quant_embeddings) take 1 byte per element plus
// 4 per row (f32 scales).
uint64_t model_weight_bytes(const model_config *c, llm_dtype dtype);

void model_free(model_weights *m);

#endif
