#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const struct {
    const char *name;
    model_arch arch;
} known_archs[] = {
    {"LlamaForCausalLM", ARCH_LLAMA},
    {"MistralForCausalLM", ARCH_MISTRAL},
    {"Qwen2ForCausalLM", ARCH_QWEN2},
    {"Qwen3ForCausalLM", ARCH_QWEN3},
};
#define N_KNOWN_ARCHS (int)(sizeof(known_archs) / sizeof(known_archs[0]))

// Largest value any integer hyper-parameter may take; keeps products in range.
#define CONFIG_INT_MAX (1 << 30)

// Reads an integer key. Returns 1 when found, 0 when absent (or JSON null), -1 on a bad value.
static int get_int(const cJSON *obj, const char *key, int *out, const char *label, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < -1 || d > CONFIG_INT_MAX)
        return llm_errf(err, "%s: \"%s\" must be an integer in [-1, %d]", label, key,
                        CONFIG_INT_MAX);
    *out = (int)d;
    return 1;
}

static int get_double(const cJSON *obj, const char *key, double *out, const char *label,
                      char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return llm_errf(err, "%s: \"%s\" must be a number", label, key);
    *out = v->valuedouble;
    return 1;
}

static int get_float(const cJSON *obj, const char *key, float *out, const char *label, char *err) {
    double d = 0;
    int r = get_double(obj, key, &d, label, err);
    if (r == 1) *out = (float)d;
    return r;
}

static int get_bool(const cJSON *obj, const char *key, int *out, const char *label, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return llm_errf(err, "%s: \"%s\" must be true or false", label, key);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int require_int(const cJSON *obj, const char *key, int *out, const char *label, char *err) {
    int r = get_int(obj, key, out, label, err);
    if (r < 0) return -1;
    if (r == 0) return llm_errf(err, "%s: missing required key \"%s\"", label, key);
    if (*out <= 0) return llm_errf(err, "%s: \"%s\" must be positive (got %d)", label, key, *out);
    return 0;
}

static void add_eos(model_config *c, int id) {
    if (id < 0 || config_is_eos(c, id) || c->n_eos == CONFIG_MAX_EOS) return;
    c->eos_ids[c->n_eos++] = id;
}

// eos_token_id may be an integer or a list of integers.
static int read_eos(model_config *c, const cJSON *obj, const char *label, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        add_eos(c, (int)v->valuedouble);
        return 0;
    }
    if (!cJSON_IsArray(v))
        return llm_errf(err, "%s: \"eos_token_id\" must be an integer or a list", label);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e))
            return llm_errf(err, "%s: \"eos_token_id\" list must hold integers", label);
        add_eos(c, (int)e->valuedouble);
    }
    return 0;
}

// rope parameters live in "rope_scaling" (+ top-level "rope_theta"), or, in
// configs written by transformers 5, in "rope_parameters".
static int read_rope(model_config *c, const cJSON *root, const char *label, char *err) {
    c->rope_theta = 10000.0f;
    if (get_double(root, "rope_theta", &c->rope_theta, label, err) < 0) return -1;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (rs && cJSON_IsObject(rs)) {
        if (get_double(rs, "rope_theta", &c->rope_theta, label, err) < 0) return -1;
    } else {
        rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    }
    if (!(c->rope_theta > 0)) return llm_errf(err, "%s: rope_theta must be positive", label);
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs))
        return llm_errf(err, "%s: rope_scaling must be an object or null", label);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(type)) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(type))
        return llm_errf(err, "%s: rope scaling without a \"rope_type\"", label);
    if (strcmp(type->valuestring, "default") == 0) return 0;
    if (strcmp(type->valuestring, "llama3") != 0)
        return llm_errf(err, "%s: unsupported rope scaling type \"%s\" (supported: llama3)", label,
                        type->valuestring);
    c->rope_scaling = ROPE_SCALING_LLAMA3;
    int r = 0;
    r |= get_float(rs, "factor", &c->rope_factor, label, err) <= 0;
    r |= get_float(rs, "low_freq_factor", &c->rope_low_freq_factor, label, err) <= 0;
    r |= get_float(rs, "high_freq_factor", &c->rope_high_freq_factor, label, err) <= 0;
    r |= get_int(rs, "original_max_position_embeddings", &c->rope_orig_max_position, label, err) <=
         0;
    if (r)
        return llm_errf(err,
                        "%s: llama3 rope scaling needs factor, low_freq_factor, high_freq_factor "
                        "and original_max_position_embeddings",
                        label);
    if (!(c->rope_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
        c->rope_orig_max_position <= 0)
        return llm_errf(err, "%s: llama3 rope scaling parameters out of range", label);
    return 0;
}

// The Linear layers' weight quantization, from "quantization_config" as
// compressed-tensors writes it (see config.h for what is supported).
static int quant_error(const char *label, const char *key, const char *got, const char *want,
                       char *err) {
    return llm_errf(err, "%s: quantization_config%s %s is not supported (%s)", label, key, got,
                    want);
}

static int read_quant_group(model_config *c, const cJSON *g, const char *fmt, const char *label,
                            char *err) {
    char key[160];
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(g, "format");
    if (cJSON_IsString(f)) fmt = f->valuestring;
    snprintf(key, sizeof key, ".config_groups.%s.format", g->string);
    if (!fmt) return llm_errf(err, "%s: quantization_config has no \"format\"", label);
    if (strcmp(fmt, "int-quantized") != 0 && strcmp(fmt, "naive-quantized") != 0)
        return quant_error(label, key, fmt, "int-quantized only", err);
    static const char *acts[] = {"input_activations", "output_activations"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(g, acts[i]);
        snprintf(key, sizeof key, ".config_groups.%s.%s", g->string, acts[i]);
        if (a && !cJSON_IsNull(a))
            return quant_error(label, key, "(activation quantization)", "weight-only int8 only",
                               err);
    }
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(g, "weights");
    if (!cJSON_IsObject(w))
        return llm_errf(err, "%s: quantization_config.config_groups.%s has no \"weights\" object",
                        label, g->string);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(w, "type");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(w, "num_bits");
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(w, "symmetric");
    const cJSON *strat = cJSON_GetObjectItemCaseSensitive(w, "strategy");
    const cJSON *dyn = cJSON_GetObjectItemCaseSensitive(w, "dynamic");
    char got[64];
    snprintf(key, sizeof key, ".config_groups.%s.weights.type", g->string);
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "int") != 0)
        return quant_error(label, key, cJSON_IsString(type) ? type->valuestring : "(missing)",
                           "int only", err);
    snprintf(key, sizeof key, ".config_groups.%s.weights.num_bits", g->string);
    if (!cJSON_IsNumber(bits) || bits->valuedouble != 8) {
        snprintf(got, sizeof got, "%g", cJSON_IsNumber(bits) ? bits->valuedouble : NAN);
        return quant_error(label, key, got, "8 bits only", err);
    }
    snprintf(key, sizeof key, ".config_groups.%s.weights.symmetric", g->string);
    if (!cJSON_IsTrue(sym))
        return quant_error(label, key, "false (asymmetric, with zero points)", "symmetric only",
                           err);
    snprintf(key, sizeof key, ".config_groups.%s.weights.strategy", g->string);
    if (!cJSON_IsString(strat) ||
        (strcmp(strat->valuestring, "channel") != 0 && strcmp(strat->valuestring, "tensor") != 0))
        return quant_error(label, key, cJSON_IsString(strat) ? strat->valuestring : "(missing)",
                           "channel or tensor scales only", err);
    snprintf(key, sizeof key, ".config_groups.%s.weights.dynamic", g->string);
    if (cJSON_IsTrue(dyn)) return quant_error(label, key, "true", "static scales only", err);
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(g, "targets"), *t;
    cJSON_ArrayForEach(t, targets) {
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Embedding") == 0) c->quant_embeddings = 1;
    }
    return 0;
}

static int read_quant(model_config *c, const cJSON *root, const char *label, char *err) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!q || cJSON_IsNull(q)) return 0;
    if (!cJSON_IsObject(q))
        return llm_errf(err, "%s: quantization_config must be an object", label);
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
    if (!cJSON_IsString(method) || strcmp(method->valuestring, "compressed-tensors") != 0)
        return quant_error(label, ".quant_method",
                           cJSON_IsString(method) ? method->valuestring : "(missing)",
                           "compressed-tensors int8 only", err);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(q, "kv_cache_scheme");
    if (kv && !cJSON_IsNull(kv))
        return quant_error(label, ".kv_cache_scheme", "(KV cache quantization)",
                           "an fp8 KV cache is --kv-cache-dtype fp8, which reads the "
                           "checkpoint's k_scale/v_scale tensors",
                           err);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(q, "sparsity_config");
    const cJSON *spf = cJSON_IsObject(sp) ? cJSON_GetObjectItemCaseSensitive(sp, "format") : NULL;
    if (cJSON_IsString(spf) && strcmp(spf->valuestring, "dense") != 0)
        return quant_error(label, ".sparsity_config.format", spf->valuestring, "dense only", err);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(q, "format");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(q, "config_groups"), *g;
    if (!cJSON_IsObject(groups) || !groups->child)
        return llm_errf(err, "%s: quantization_config has no \"config_groups\"", label);
    cJSON_ArrayForEach(g, groups) {
        if (!cJSON_IsObject(g))
            return llm_errf(err, "%s: quantization_config.config_groups.%s must be an object",
                            label, g->string);
        if (read_quant_group(c, g, cJSON_IsString(fmt) ? fmt->valuestring : NULL, label, err))
            return -1;
    }
    c->quant = QUANT_INT8;
    return 0;
}

// Which layers attend through a sliding window, as transformers decides it
// (see config.h). Variants the forward pass does not implement are errors.
static int read_windows(model_config *c, const cJSON *root, const char *label, char *err) {
    static const char *unsupported[] = {"sliding_window_pattern", "attention_chunk_size",
                                        "no_rope_layers"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, unsupported[i]);
        if (v && !cJSON_IsNull(v))
            return llm_errf(err, "%s: \"%s\" is not supported", label, unsupported[i]);
    }
    c->sliding_window = 0;
    memset(c->layer_sliding, 0, sizeof c->layer_sliding);
    if (c->arch == ARCH_LLAMA) return 0;  // LlamaForCausalLM has no window, whatever the keys say
    int use_sw = c->arch == ARCH_MISTRAL; // Qwen configs carry a window but gate it
    if (c->arch != ARCH_MISTRAL && get_bool(root, "use_sliding_window", &use_sw, label, err) < 0)
        return -1;
    int window = 0;
    if (get_int(root, "sliding_window", &window, label, err) < 0) return -1;
    if (!use_sw || window <= 0) return 0;
    if (c->n_layers > CONFIG_MAX_LAYERS)
        return llm_errf(err, "%s: sliding_window with %d layers (at most %d)", label, c->n_layers,
                        CONFIG_MAX_LAYERS);
    c->sliding_window = window;
    if (c->arch == ARCH_MISTRAL) { // MistralForCausalLM: every layer
        memset(c->layer_sliding, 1, (size_t)c->n_layers);
        return 0;
    }
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (types && !cJSON_IsNull(types)) {
        if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != c->n_layers)
            return llm_errf(err, "%s: \"layer_types\" must list one type per layer (%d)", label,
                            c->n_layers);
        for (int l = 0; l < c->n_layers; l++) {
            const cJSON *t = cJSON_GetArrayItem(types, l);
            const char *s = cJSON_IsString(t) ? t->valuestring : "(not a string)";
            if (strcmp(s, "sliding_attention") == 0)
                c->layer_sliding[l] = 1;
            else if (strcmp(s, "full_attention") != 0)
                return llm_errf(err,
                                "%s: layer_types[%d] \"%s\" is not supported (full_attention, "
                                "sliding_attention)",
                                label, l, s);
        }
        return 0;
    }
    int first = 28; // transformers' default max_window_layers
    if (get_int(root, "max_window_layers", &first, label, err) < 0) return -1;
    for (int l = first < 0 ? 0 : first; l < c->n_layers; l++) c->layer_sliding[l] = 1;
    return 0;
}

static int parse_root(const cJSON *root, const char *label, model_config *c, char *err) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) return llm_errf(err, "%s: missing \"architectures\"", label);
    int found = 0;
    for (int i = 0; i < N_KNOWN_ARCHS; i++) {
        if (strcmp(a0->valuestring, known_archs[i].name) == 0) {
            c->arch = known_archs[i].arch;
            found = 1;
        }
    }
    if (!found)
        return llm_errf(err,
                        "%s: unsupported architecture \"%s\" (supported: LlamaForCausalLM, "
                        "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                        label, a0->valuestring);
    snprintf(c->arch_name, sizeof c->arch_name, "%s", a0->valuestring);

    if (require_int(root, "hidden_size", &c->dim, label, err) ||
        require_int(root, "num_hidden_layers", &c->n_layers, label, err) ||
        require_int(root, "num_attention_heads", &c->n_heads, label, err) ||
        require_int(root, "intermediate_size", &c->hidden_dim, label, err) ||
        require_int(root, "vocab_size", &c->vocab_size, label, err))
        return -1;

    // Optional keys, with the defaults transformers uses.
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    c->max_position = 2048;
    c->rms_eps = 1e-6;
    c->tie_embeddings = 0;
    if (get_int(root, "num_key_value_heads", &c->n_kv_heads, label, err) < 0 ||
        get_int(root, "head_dim", &c->head_dim, label, err) < 0 ||
        get_int(root, "max_position_embeddings", &c->max_position, label, err) < 0 ||
        get_double(root, "rms_norm_eps", &c->rms_eps, label, err) < 0 ||
        get_bool(root, "tie_word_embeddings", &c->tie_embeddings, label, err) < 0)
        return -1;
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0)
        return llm_errf(
            err, "%s: num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
            label, c->n_heads, c->n_kv_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 != 0 || c->head_dim > 1024)
        return llm_errf(err, "%s: head_dim must be even and in [2, 1024] (got %d)", label,
                        c->head_dim);
    if (c->max_position <= 0)
        return llm_errf(err, "%s: max_position_embeddings must be positive", label);
    if (!(c->rms_eps > 0)) return llm_errf(err, "%s: rms_norm_eps must be positive", label);

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu") != 0)
        return llm_errf(err, "%s: unsupported hidden_act \"%s\" (supported: silu)", label,
                        act->valuestring);
    int flag = 0;
    if (get_bool(root, "mlp_bias", &flag, label, err) < 0) return -1;
    if (flag) return llm_errf(err, "%s: mlp_bias is not supported", label);
    flag = 0;
    if (get_bool(root, "attention_bias", &flag, label, err) < 0) return -1;
    if (flag && c->arch != ARCH_QWEN2)
        return llm_errf(err, "%s: attention_bias is not supported for %s", label, c->arch_name);
    c->qkv_bias = c->arch == ARCH_QWEN2;
    c->qk_norm = c->arch == ARCH_QWEN3;

    if (read_windows(c, root, label, err)) return -1;

    if (read_rope(c, root, label, err)) return -1;

    c->dtype = LLM_F16;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    if (!cJSON_IsString(dt)) dt = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    if (cJSON_IsString(dt)) {
        if (strcmp(dt->valuestring, "bfloat16") == 0)
            c->dtype = LLM_BF16;
        else if (strcmp(dt->valuestring, "float32") == 0)
            c->dtype = LLM_F32;
    }

    if (read_quant(c, root, label, err)) return -1;

    c->bos_id = -1;
    if (get_int(root, "bos_token_id", &c->bos_id, label, err) < 0) return -1;
    if (read_eos(c, root, label, err)) return -1;
    return 0;
}

int config_parse(const char *json, const char *label, model_config *c, char *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root) return llm_errf(err, "%s: not valid JSON", label);
    int rc = cJSON_IsObject(root) ? parse_root(root, label, c, err)
                                  : llm_errf(err, "%s: not a JSON object", label);
    cJSON_Delete(root);
    return rc;
}

int config_merge_generation(model_config *c, const char *json, const char *label, char *err) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return llm_errf(err, "%s: not a JSON object", label);
    }
    int bos = -1, rc = 0;
    if (get_int(root, "bos_token_id", &bos, label, err) < 0)
        rc = -1;
    else if (bos >= 0)
        c->bos_id = bos;
    if (rc == 0) rc = read_eos(c, root, label, err);
    cJSON_Delete(root);
    return rc;
}

int config_load(const char *dir, model_config *c, char *err) {
    char *path = llm_path_join(dir, "config.json");
    if (!path) return llm_errf(err, "out of memory");
    char *text = llm_read_file(path, NULL, err);
    int rc = text ? config_parse(text, path, c, err) : -1;
    free(text);
    free(path);
    if (rc) return rc;

    path = llm_path_join(dir, "generation_config.json");
    if (!path) return llm_errf(err, "out of memory");
    if (llm_file_exists(path)) {
        text = llm_read_file(path, NULL, err);
        rc = text ? config_merge_generation(c, text, path, err) : -1;
        free(text);
    }
    free(path);
    return rc;
}

int config_is_eos(const model_config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}

// compressed-tensors' quantization_config for weight-only int8 per channel,
// as llm-compressor writes it for the W8A16 scheme.
static cJSON *quant_json(const model_config *c) {
    cJSON *q = cJSON_CreateObject();
    cJSON *groups = cJSON_AddObjectToObject(q, "config_groups");
    cJSON *g = cJSON_AddObjectToObject(groups, "group_0");
    cJSON_AddNullToObject(g, "input_activations");
    cJSON_AddNullToObject(g, "output_activations");
    cJSON *targets = cJSON_AddArrayToObject(g, "targets");
    cJSON_AddItemToArray(targets, cJSON_CreateString("Linear"));
    if (c->quant_embeddings) cJSON_AddItemToArray(targets, cJSON_CreateString("Embedding"));
    cJSON *w = cJSON_AddObjectToObject(g, "weights");
    cJSON_AddNullToObject(w, "actorder");
    cJSON_AddNullToObject(w, "block_structure");
    cJSON_AddFalseToObject(w, "dynamic");
    cJSON_AddNullToObject(w, "group_size");
    cJSON_AddNumberToObject(w, "num_bits", 8);
    cJSON_AddStringToObject(w, "observer", "minmax");
    cJSON_AddObjectToObject(w, "observer_kwargs");
    cJSON_AddStringToObject(w, "strategy", "channel");
    cJSON_AddTrueToObject(w, "symmetric");
    cJSON_AddStringToObject(w, "type", "int");
    cJSON_AddStringToObject(q, "format", "int-quantized");
    cJSON_AddNullToObject(q, "global_compression_ratio");
    cJSON *ignore = cJSON_AddArrayToObject(q, "ignore");
    if (!c->quant_embeddings || !c->tie_embeddings)
        cJSON_AddItemToArray(ignore, cJSON_CreateString("lm_head"));
    cJSON_AddNullToObject(q, "kv_cache_scheme");
    cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(q, "quantization_status", "compressed");
    return q;
}

char *config_set_quantization(const char *json, const model_config *c, char *err) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        llm_errf(err, "config.json: not a JSON object");
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    cJSON_AddItemToObject(root, "quantization_config", quant_json(c));
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) llm_errf(err, "out of memory");
    return s;
}

char *config_to_json(const model_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(c->arch_name));
    static const char *model_types[] = {"llama", "mistral", "qwen2", "qwen3"};
    cJSON_AddStringToObject(o, "model_type", model_types[c->arch]);
    cJSON_AddNumberToObject(o, "hidden_size", c->dim);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_position);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->rms_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
        cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", c->rope_factor);
        cJSON_AddNumberToObject(rs, "low_freq_factor", c->rope_low_freq_factor);
        cJSON_AddNumberToObject(rs, "high_freq_factor", c->rope_high_freq_factor);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_max_position);
    } else {
        cJSON_AddNullToObject(o, "rope_scaling");
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddBoolToObject(o, "attention_bias", c->qkv_bias);
    cJSON_AddBoolToObject(o, "mlp_bias", 0);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    if (c->arch == ARCH_QWEN2 || c->arch == ARCH_QWEN3)
        cJSON_AddBoolToObject(o, "use_sliding_window", c->sliding_window > 0);
    if (c->sliding_window > 0 && c->arch != ARCH_LLAMA) {
        cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
        if (c->arch != ARCH_MISTRAL) {
            cJSON *types = cJSON_AddArrayToObject(o, "layer_types");
            for (int l = 0; l < c->n_layers; l++)
                cJSON_AddItemToArray(types, cJSON_CreateString(config_layer_window(c, l)
                                                                   ? "sliding_attention"
                                                                   : "full_attention"));
        }
    }
    static const char *torch_dtypes[] = {"float32", "float16", "bfloat16", "int8"};
    cJSON_AddStringToObject(o, "torch_dtype", torch_dtypes[c->dtype]);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", c->bos_id);
    if (c->n_eos == 1)
        cJSON_AddNumberToObject(o, "eos_token_id", c->eos_ids[0]);
    else if (c->n_eos > 1)
        cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(c->eos_ids, c->n_eos));
    if (c->quant == QUANT_INT8) cJSON_AddItemToObject(o, "quantization_config", quant_json(c));
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
