// model_quant.c - model_quantize_int8: a loaded model's float Linear
// weights to symmetric per-channel int8 (quant.h), in a new arena.
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "quant.h"
#include "util.h"

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
