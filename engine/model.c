// model.c - a model's tensors: the list each architecture has (the one
// source of tensor names and shapes), the arena they live in, element
// conversion, byte counts and the predicted weight bytes of a config. Loading
// is model_load.c, synthetic models model_synthetic.c, int8 model_quant.c,
// saving model_save.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "util.h"

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

int build_specs(model_weights *m, spec_list *l, char *err) {
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

uint64_t spec_numel(const tensor_spec *s) {
    return (uint64_t)s->shape[0] * (uint64_t)(s->ndim == 2 ? s->shape[1] : 1);
}

llm_dtype spec_dtype(const tensor_spec *s, llm_dtype matrix_dtype) {
    return s->is_matrix ? matrix_dtype : LLM_F32;
}

uint64_t align_up(uint64_t x) {
    return (x + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
}

model_weights *model_new(const model_config *c, char *err) {
    model_weights *m = llm_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->cfg = *c;
    m->layers = llm_calloc((size_t)c->n_layers, sizeof *m->layers, err);
    if (!m->layers) {
        free(m);
        return NULL;
    }
    for (int l = 0; l < c->n_layers; l++) m->layers[l].k_scale = m->layers[l].v_scale = 1.0f;
    return m;
}

void set_tensor(llm_tensor *t, const tensor_spec *s, void *data, llm_dtype dt) {
    t->data = data;
    t->dtype = dt;
    t->ndim = s->ndim;
    t->shape[0] = s->shape[0];
    t->shape[1] = s->shape[1];
    t->scale = NULL;
}

uint64_t tensor_numel(const llm_tensor *t) {
    return (uint64_t)t->shape[0] * (uint64_t)(t->ndim == 2 ? t->shape[1] : 1);
}

// Bytes of a tensor as held, with an I8 matrix's f32 scales.
static uint64_t tensor_bytes(const llm_tensor *t) {
    uint64_t b = tensor_numel(t) * dtype_size(t->dtype);
    return t->dtype == LLM_I8 ? b + (uint64_t)t->shape[0] * sizeof(float) : b;
}

void count_bytes(model_weights *m, const spec_list *specs) {
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

float load_elem(const void *src, llm_dtype dt, uint64_t i) {
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

void store_elem(void *dst, llm_dtype dt, uint64_t i, float v) {
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

void convert(void *dst, llm_dtype dst_dt, const void *src, llm_dtype src_dt, uint64_t n) {
#pragma omp parallel for schedule(static)
    for (uint64_t i = 0; i < n; i++) store_elem(dst, dst_dt, i, load_elem(src, src_dt, i));
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

int model_foreach_tensor(const model_weights *m, model_tensor_fn fn, void *ctx) {
    spec_list specs = {0};
    // build_specs only takes the addresses of m's tensors; it changes nothing
    if (build_specs((model_weights *)m, &specs, NULL)) return -1;
    int rc = 0;
    for (int i = 0; i < specs.n && rc == 0; i++) rc = fn(specs.v[i].name, specs.v[i].t, ctx);
    free(specs.v);
    return rc;
}

void model_free(model_weights *m) {
    if (!m) return;
    st_close(m->st);
    free(m->arena);
    free(m->layers);
    free(m);
}
