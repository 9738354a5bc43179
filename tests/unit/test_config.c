#include <stdlib.h>

#include "config.h"
#include "harness.h"
#include "util.h"

static const char *smollm2_json =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 576, \"num_hidden_layers\": 30,"
    " \"num_attention_heads\": 9, \"num_key_value_heads\": 3, \"intermediate_size\": 1536,"
    " \"vocab_size\": 49152, \"rope_theta\": 100000, \"rms_norm_eps\": 1e-5,"
    " \"tie_word_embeddings\": true, \"max_position_embeddings\": 8192,"
    " \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"bfloat16\"}";

TEST(config_parses_llama) {
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(config_parse(smollm2_json, "t", &c, err) == 0, "%s", err);
    CHECK_EQ(c.arch, ARCH_LLAMA);
    CHECK_EQ(c.dim, 576);
    CHECK_EQ(c.n_layers, 30);
    CHECK_EQ(c.n_heads, 9);
    CHECK_EQ(c.n_kv_heads, 3);
    CHECK_EQ(c.head_dim, 64); // derived
    CHECK_EQ(c.hidden_dim, 1536);
    CHECK_EQ(c.vocab_size, 49152);
    CHECK_NEAR(c.rope_theta, 100000, 0);
    CHECK_NEAR(c.rms_eps, 1e-5, 1e-12);
    CHECK_EQ(c.tie_embeddings, 1);
    CHECK_EQ(c.qkv_bias, 0);
    CHECK_EQ(c.qk_norm, 0);
    CHECK_EQ(c.dtype, LLM_BF16);
    CHECK_EQ(c.bos_id, 1);
    CHECK_EQ(c.n_eos, 1);
    CHECK(config_is_eos(&c, 2));
    CHECK_EQ(c.rope_scaling, ROPE_SCALING_NONE);
}

TEST(config_llama3_rope_scaling_and_eos_list) {
    const char *j =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 2048,"
        " \"num_hidden_layers\": 16, \"num_attention_heads\": 32, \"num_key_value_heads\": 8,"
        " \"intermediate_size\": 8192, \"vocab_size\": 128256, \"rope_theta\": 500000.0,"
        " \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,"
        " \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192,"
        " \"rope_type\": \"llama3\"}, \"eos_token_id\": [128001, 128008, 128009]}";
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(config_parse(j, "t", &c, err) == 0, "%s", err);
    CHECK_EQ(c.rope_scaling, ROPE_SCALING_LLAMA3);
    CHECK_NEAR(c.rope_factor, 32, 0);
    CHECK_NEAR(c.rope_low_freq_factor, 1, 0);
    CHECK_NEAR(c.rope_high_freq_factor, 4, 0);
    CHECK_EQ(c.rope_orig_max_position, 8192);
    CHECK_EQ(c.n_eos, 3);
    CHECK(config_is_eos(&c, 128009));
    CHECK_EQ(c.dtype, LLM_F16); // no torch_dtype
    // generation_config adds its eos ids without duplicates
    CHECK(config_merge_generation(&c, "{\"eos_token_id\": [128001, 7], \"bos_token_id\": 128000}",
                                  "g", err) == 0);
    CHECK_EQ(c.n_eos, 4);
    CHECK(config_is_eos(&c, 7));
    CHECK_EQ(c.bos_id, 128000);
}

TEST(config_transformers5_rope_parameters) {
    const char *j =
        "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 1024,"
        " \"num_hidden_layers\": 28, \"num_attention_heads\": 16, \"num_key_value_heads\": 8,"
        " \"head_dim\": 128, \"intermediate_size\": 3072, \"vocab_size\": 151936,"
        " \"rope_parameters\": {\"rope_theta\": 1000000, \"rope_type\": \"default\"},"
        " \"sliding_window\": 4096, \"use_sliding_window\": false}";
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(config_parse(j, "t", &c, err) == 0, "%s", err);
    CHECK_EQ(c.arch, ARCH_QWEN3);
    CHECK_EQ(c.qk_norm, 1);
    CHECK_EQ(c.head_dim, 128); // explicit, not dim / heads
    CHECK_NEAR(c.rope_theta, 1e6, 0);
    CHECK_EQ(c.sliding_window, 0); // gated off
}

TEST(config_qwen2_has_qkv_bias_mistral_window) {
    const char *q =
        "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 896,"
        " \"num_hidden_layers\": 24, \"num_attention_heads\": 14, \"num_key_value_heads\": 2,"
        " \"intermediate_size\": 4864, \"vocab_size\": 151936}";
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(config_parse(q, "t", &c, err) == 0, "%s", err);
    CHECK_EQ(c.qkv_bias, 1);
    CHECK_EQ(c.head_dim, 64);
    const char *m =
        "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 4096,"
        " \"num_hidden_layers\": 32, \"num_attention_heads\": 32, \"num_key_value_heads\": 8,"
        " \"intermediate_size\": 14336, \"vocab_size\": 32000, \"sliding_window\": 4096}";
    CHECK_MSG(config_parse(m, "t", &c, err) == 0, "%s", err);
    CHECK_EQ(c.arch, ARCH_MISTRAL);
    CHECK_EQ(c.sliding_window, 4096);
}

static void expect_error(const char *json, const char *needle) {
    model_config c;
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(config_parse(json, "cfg.json", &c, err) == -1, "accepted: %s", json);
    CHECK_CONTAINS(err, needle);
    CHECK_CONTAINS(err, "cfg.json");
}

TEST(config_errors_are_clear) {
    expect_error("{", "not valid JSON");
    expect_error("[1]", "not a JSON object");
    expect_error("{\"hidden_size\": 1}", "architectures");
    expect_error("{\"architectures\": [\"GPT2LMHeadModel\"]}",
                 "unsupported architecture \"GPT2LMHeadModel\"");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}",
                 "missing required key \"num_hidden_layers\"");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64.5, "
                 "\"num_hidden_layers\": 2,"
                 " \"num_attention_heads\": 4, \"intermediate_size\": 8, \"vocab_size\": 10}",
                 "\"hidden_size\" must be an integer");
    expect_error(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 2,"
        " \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"intermediate_size\": 8,"
        " \"vocab_size\": 10}",
        "multiple of num_key_value_heads");
    expect_error(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 2,"
        " \"num_attention_heads\": 4, \"intermediate_size\": 8, \"vocab_size\": 10,"
        " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}}",
        "unsupported rope scaling type \"yarn\"");
    expect_error(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 2,"
        " \"num_attention_heads\": 4, \"intermediate_size\": 8, \"vocab_size\": 10,"
        " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4}}",
        "llama3 rope scaling needs");
    expect_error(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 2,"
        " \"num_attention_heads\": 4, \"intermediate_size\": 8, \"vocab_size\": 10,"
        " \"hidden_act\": \"gelu\"}",
        "unsupported hidden_act");
}

TEST(config_json_round_trip) {
    model_config a, b;
    char err[LLM_ERR_LEN] = "";
    CHECK(config_parse(smollm2_json, "t", &a, err) == 0);
    char *j = config_to_json(&a);
    CHECK(j != NULL);
    CHECK_MSG(config_parse(j, "round trip", &b, err) == 0, "%s", err);
    CHECK_EQ(b.dim, a.dim);
    CHECK_EQ(b.n_kv_heads, a.n_kv_heads);
    CHECK_EQ(b.tie_embeddings, a.tie_embeddings);
    CHECK_EQ(b.dtype, a.dtype);
    CHECK_NEAR(b.rms_eps, a.rms_eps, 1e-12);
    free(j);
}

// Which layers slide, as transformers decides it: Mistral every layer,
// Qwen2/Qwen3 only with use_sliding_window, by layer_types or else from
// max_window_layers on (layers with index >= it); Llama never.
TEST(config_sliding_window_per_layer) {
    model_config c;
    char err[LLM_ERR_LEN] = "";
#define HEAD(arch)                                                                                 \
    "{\"architectures\": [\"" arch "\"], \"hidden_size\": 64, \"num_hidden_layers\": 4,"           \
    " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100"
    CHECK_MSG(config_parse(HEAD("MistralForCausalLM") ", \"sliding_window\": 8}", "t", &c, err) ==
                  0,
              "%s", err);
    for (int l = 0; l < 4; l++) CHECK_EQ(config_layer_window(&c, l), 8);
    CHECK_EQ(config_layer_window(&c, 4), 0);
    CHECK(config_parse(HEAD("MistralForCausalLM") ", \"sliding_window\": null}", "t", &c, err) ==
          0);
    CHECK_EQ(config_layer_window(&c, 0), 0);
    // Qwen2: layers 2 and 3 slide (index >= max_window_layers)
    CHECK(
        config_parse(HEAD("Qwen2ForCausalLM") ", \"use_sliding_window\": true,"
                                              " \"sliding_window\": 16, \"max_window_layers\": 2}",
                     "t", &c, err) == 0);
    CHECK_EQ(config_layer_window(&c, 1), 0);
    CHECK_EQ(config_layer_window(&c, 2), 16);
    CHECK_EQ(config_layer_window(&c, 3), 16);
    // default max_window_layers 28: none of 4 layers
    CHECK(config_parse(HEAD("Qwen3ForCausalLM") ", \"use_sliding_window\": true,"
                                                " \"sliding_window\": 16}",
                       "t", &c, err) == 0);
    CHECK_EQ(config_layer_window(&c, 3), 0);
    // layer_types wins over max_window_layers
    CHECK(
        config_parse(HEAD("Qwen3ForCausalLM") ", \"use_sliding_window\": true, \"sliding_window\":"
                                              " 16, \"max_window_layers\": 0, \"layer_types\":"
                                              " [\"sliding_attention\", \"full_attention\","
                                              " \"full_attention\", \"sliding_attention\"]}",
                     "t", &c, err) == 0);
    CHECK_EQ(config_layer_window(&c, 0), 16);
    CHECK_EQ(config_layer_window(&c, 1), 0);
    CHECK_EQ(config_layer_window(&c, 3), 16);
    // gated off: no window whatever layer_types says
    CHECK(
        config_parse(HEAD("Qwen2ForCausalLM") ", \"use_sliding_window\": false,"
                                              " \"sliding_window\": 16, \"max_window_layers\": 0}",
                     "t", &c, err) == 0);
    CHECK_EQ(config_layer_window(&c, 3), 0);
    CHECK(config_parse(HEAD("LlamaForCausalLM") ", \"sliding_window\": 16}", "t", &c, err) == 0);
    CHECK_EQ(config_layer_window(&c, 0), 0);
    // variants the forward pass does not implement are refused, naming the field
    expect_error(HEAD("Qwen2ForCausalLM") ", \"use_sliding_window\": true, \"sliding_window\": 16,"
                                          " \"layer_types\": [\"full_attention\","
                                          " \"chunked_attention\", \"full_attention\","
                                          " \"full_attention\"]}",
                 "layer_types[1] \"chunked_attention\"");
    expect_error(HEAD("Qwen2ForCausalLM") ", \"use_sliding_window\": true, \"sliding_window\": 16,"
                                          " \"layer_types\": [\"full_attention\"]}",
                 "layer_types");
    expect_error(HEAD("MistralForCausalLM") ", \"sliding_window\": [4096, 4096]}",
                 "\"sliding_window\"");
    expect_error(HEAD("MistralForCausalLM") ", \"sliding_window_pattern\": 6}",
                 "sliding_window_pattern");
    expect_error(HEAD("LlamaForCausalLM") ", \"attention_chunk_size\": 8192}",
                 "attention_chunk_size");
    expect_error(HEAD("LlamaForCausalLM") ", \"rope_scaling\": {\"rope_type\": \"yarn\","
                                          " \"factor\": 4}}",
                 "unsupported rope scaling type \"yarn\"");
    // saved and parsed again: the same windows
    CHECK(
        config_parse(HEAD("Qwen3ForCausalLM") ", \"use_sliding_window\": true,"
                                              " \"sliding_window\": 16, \"max_window_layers\": 3}",
                     "t", &c, err) == 0);
    char *s = config_to_json(&c);
    model_config back;
    CHECK(s && config_parse(s, "saved", &back, err) == 0);
    for (int l = 0; l < 4; l++) CHECK_EQ(config_layer_window(&back, l), config_layer_window(&c, l));
    free(s);
#undef HEAD
}
