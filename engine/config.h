// config.h - the model hyper-parameters the forward pass needs, read from a
// Hugging Face model directory (config.json + generation_config.json).
#ifndef LLM_CONFIG_H
#define LLM_CONFIG_H

#include "dtype.h"

typedef enum {
    ARCH_LLAMA = 0, // LlamaForCausalLM
    ARCH_MISTRAL,   // MistralForCausalLM (same graph as Llama)
    ARCH_QWEN2,     // Qwen2ForCausalLM: bias on q, k, v projections
    ARCH_QWEN3,     // Qwen3ForCausalLM: RMSNorm on q and k per head
} model_arch;

typedef enum {
    ROPE_SCALING_NONE = 0,
    ROPE_SCALING_LLAMA3, // frequency-dependent scaling of Llama 3.1+
} rope_scaling_type;

#define CONFIG_MAX_EOS 8
// Most layers a model with sliding-window layers may have (layer_sliding).
#define CONFIG_MAX_LAYERS 1024

// Weight quantization of a checkpoint (config.json "quantization_config").
typedef enum {
    QUANT_NONE = 0,
    // compressed-tensors "int-quantized": weight-only, symmetric int8 per
    // output channel (or per tensor): <name>.weight I8 [out, in] and
    // <name>.weight_scale [out, 1] (or [1]) in a float dtype.
    QUANT_INT8,
} quant_kind;

typedef struct {
    model_arch arch;
    char arch_name[48]; // "LlamaForCausalLM", ...
    int dim;            // hidden_size
    int n_layers;       // num_hidden_layers
    int n_heads;        // num_attention_heads
    int n_kv_heads;     // num_key_value_heads (GQA: divides n_heads)
    int head_dim;       // head_dim, default dim / n_heads
    int hidden_dim;     // intermediate_size (MLP)
    int vocab_size;     // vocab_size
    int max_position;   // max_position_embeddings
    double rms_eps;     // rms_norm_eps
    double rope_theta;  // rope_theta
    rope_scaling_type rope_scaling;
    float rope_factor;           // llama3: factor
    float rope_low_freq_factor;  // llama3: low_freq_factor
    float rope_high_freq_factor; // llama3: high_freq_factor
    int rope_orig_max_position;  // llama3: original_max_position_embeddings
    int sliding_window;          // 0 when attention is global (see layer_sliding)
    int tie_embeddings;          // lm_head shares embed_tokens
    int qkv_bias;                // q/k/v projections carry a bias (Qwen2)
    int qk_norm;                 // q/k RMSNorm over head_dim (Qwen3)
    llm_dtype dtype;             // torch_dtype of the checkpoint (F16 when absent)
    quant_kind quant;            // quantization of the Linear weights
    int quant_embeddings;        // QUANT_INT8: the embedding table is quantized too
    int bos_id;                  // -1 when none
    int n_eos;                   // eos ids from config.json and generation_config.json
    int eos_ids[CONFIG_MAX_EOS];
    // Sliding-window attention (transformers' masking_utils, vLLM): layer l
    // with layer_sliding[l] lets the query at position i see the keys j with
    // i - sliding_window < j <= i (config_layer_window). Mistral: every layer
    // when sliding_window is set; Qwen2/Qwen3: when use_sliding_window, the
    // layers layer_types marks "sliding_attention", or else those with index
    // >= max_window_layers. Llama: never.
    unsigned char layer_sliding[CONFIG_MAX_LAYERS];
} model_config;

// Parses config.json text. `label` names the source in errors. Missing
// required keys (hidden_size, num_hidden_layers, num_attention_heads,
// intermediate_size, vocab_size), an unknown architecture, an unsupported
// rope_scaling type or inconsistent shapes are errors. A quantization_config
// must be compressed-tensors, format int-quantized (or naive-quantized), every
// group weight-only symmetric 8-bit int with strategy channel or tensor;
// anything else (another method, group or block strategy, asymmetric, other
// bit widths, activation or KV cache quantization) is an error naming the key.
// Returns 0 or -1 with err.
int config_parse(const char *json, const char *label, model_config *c, char *err);

// Merges generation_config.json text: its eos_token_id(s) and bos_token_id
// join the config's. Returns 0 or -1 with err.
int config_merge_generation(model_config *c, const char *json, const char *label, char *err);

// Reads DIR/config.json and, when present, DIR/generation_config.json.
int config_load(const char *dir, model_config *c, char *err);

// Derived sizes.
static inline int config_q_dim(const model_config *c) {
    return c->n_heads * c->head_dim;
}
static inline int config_kv_dim(const model_config *c) {
    return c->n_kv_heads * c->head_dim;
}
// The window of layer l in tokens, 0 for full causal attention.
static inline int config_layer_window(const model_config *c, int l) {
    return c->sliding_window > 0 && l >= 0 && l < CONFIG_MAX_LAYERS && c->layer_sliding[l]
               ? c->sliding_window
               : 0;
}
// 1 when id is one of the eos ids.
int config_is_eos(const model_config *c, int id);

// Writes c as a Hugging Face config.json (for synthetic models saved to disk),
// with its quantization_config when quantized. Returns a heap string or NULL.
char *config_to_json(const model_config *c);

// config.json text with "quantization_config" set to c's (compressed-tensors,
// int-quantized, channel; "ignore" lists lm_head, and the embedding is a
// target only when c->quant_embeddings); every other key is kept as written.
// Returns a heap string, or NULL with err when json is not a JSON object.
char *config_set_quantization(const char *json, const model_config *c, char *err);

#endif
