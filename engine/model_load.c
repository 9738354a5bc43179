// model_load.c - model_load: a Hugging Face directory's safetensors into a
// model, validated tensor by tensor, kept mapped where the dtype allows and
// converted or quantized into the arena where it does not.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "quant.h"
#include "util.h"

// The dtype a checkpoint tensor lands in: matrices as asked (or as stored),
// norms and biases in F32.
static llm_dtype load_dtype(const tensor_spec *s, llm_dtype stored, const model_load_opts *o) {
    if (!s->is_matrix) return LLM_F32;
    return o->matrix_dtype < 0 ? stored : (llm_dtype)o->matrix_dtype;
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

// What pass 1 found: each tensor's source and, for I8, its scale.
typedef struct {
    const st_tensor **src, **scale; // [specs.n]
    int *per_tensor;                // [specs.n] 1: one scale for the whole I8 matrix
    uint64_t arena;                 // bytes of what does not stay mapped
    uint64_t total;                 // checkpoint bytes read
    int mapped;                     // 1: some tensor stays where it is mapped
} load_plan;

static void load_plan_free(load_plan *lp) {
    free(lp->src);
    free(lp->scale);
    free(lp->per_tensor);
}

// Pass 1: validates every tensor and sizes the arena for what does not stay
// mapped. Returns 0, or -1 with err naming the tensor and the directory.
static int plan_load(const model_weights *m, const spec_list *specs, const char *dir,
                     const model_load_opts *opts, load_plan *lp, char *err) {
    lp->src = llm_calloc((size_t)specs->n, sizeof *lp->src, err);
    lp->scale = llm_calloc((size_t)specs->n, sizeof *lp->scale, err);
    lp->per_tensor = llm_calloc((size_t)specs->n, sizeof *lp->per_tensor, err);
    if (!lp->src || !lp->scale || !lp->per_tensor) return -1;
    for (int i = 0; i < specs->n; i++) {
        const tensor_spec *s = &specs->v[i];
        const st_tensor *t = lp->src[i] = st_find(m->st, s->name);
        if (check_spec(s, t, &m->cfg, dir, err)) return -1;
        if (t->dtype == LLM_I8 &&
            !(lp->scale[i] = find_scale(m->st, s, dir, &lp->per_tensor[i], err)))
            return -1;
        uint64_t rows = (uint64_t)s->shape[0];
        switch (place_of(s, t, opts)) {
        case PLACE_MAP:
            lp->mapped = 1;
            break;
        case PLACE_CONVERT:
            lp->arena += align_up(spec_numel(s) * dtype_size(load_dtype(s, t->dtype, opts)));
            break;
        case PLACE_QUANTIZE:
            lp->arena += align_up(spec_numel(s)) + align_up(rows * sizeof(float));
            break;
        case PLACE_INT8:
            lp->mapped = 1;
            lp->arena += align_up(rows * sizeof(float));
            break;
        }
        lp->total += t->nbytes;
    }
    return 0;
}

// Pass 2: places tensor i of specs by the plan, converting or quantizing into
// the arena at *at (advanced past what it wrote).
static void place_tensor(model_weights *m, const tensor_spec *s, const load_plan *lp, int i,
                         const model_load_opts *opts, uint8_t **at) {
    const st_tensor *src = lp->src[i];
    const uint64_t n = spec_numel(s), rows = (uint64_t)s->shape[0];
    llm_dtype want = load_dtype(s, src->dtype, opts);
    switch (place_of(s, src, opts)) {
    case PLACE_MAP:
        prefault(src->data, src->nbytes);
        set_tensor(s->t, s, (void *)src->data, want);
        break;
    case PLACE_CONVERT:
        if (want == src->dtype)
            memcpy(*at, src->data, src->nbytes);
        else
            convert(*at, want, src->data, src->dtype, n);
        set_tensor(s->t, s, *at, want);
        *at += align_up(n * dtype_size(want));
        break;
    case PLACE_QUANTIZE: {
        float *sc = (float *)(*at + align_up(n));
        quant_matrix_int8((int8_t *)*at, sc, src->data, src->dtype, s->shape[0], s->shape[1],
                          m->cfg.dtype);
        set_tensor(s->t, s, *at, LLM_I8);
        s->t->scale = sc;
        *at += align_up(n) + align_up(rows * sizeof(float));
        break;
    }
    case PLACE_INT8: {
        prefault(src->data, src->nbytes);
        float *sc = (float *)*at;
        const st_tensor *scale = lp->scale[i];
        if (lp->per_tensor[i])
            for (uint64_t r = 0; r < rows; r++) sc[r] = load_elem(scale->data, scale->dtype, 0);
        else
            convert(sc, LLM_F32, scale->data, scale->dtype, rows);
        set_tensor(s->t, s, (void *)src->data, LLM_I8);
        s->t->scale = sc;
        *at += align_up(rows * sizeof(float));
        break;
    }
    }
}

// A layer's fp8 KV scale (k or v) from the checkpoint, if it has one under
// any of the names vLLM loads; *out stays 1.0 otherwise. Returns 0, or -1
// with err for a scale that is not one positive finite F32/F16/BF16 value.
static int find_kv_scale(const st_model *st, int layer, char kv, const char *dir, float *out,
                         char *err) {
    static const char *const forms[] = {"model.layers.%d.self_attn.%c_scale",
                                        "model.layers.%d.self_attn.%c_proj.%c_scale",
                                        "model.layers.%d.self_attn.attn.%c_scale"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, forms[i], layer, kv, kv);
        const st_tensor *t = st_find(st, name);
        if (!t) continue;
        if ((t->dtype != LLM_F32 && t->dtype != LLM_F16 && t->dtype != LLM_BF16) || t->numel != 1)
            return llm_errf(err, "%s: KV cache scale '%s' must be one F32, F16 or BF16 value", dir,
                            name);
        const float v = load_elem(t->data, t->dtype, 0);
        if (!(v > 0.0f) || !isfinite(v))
            return llm_errf(err, "%s: KV cache scale '%s' is %g (must be positive and finite)", dir,
                            name, (double)v);
        *out = v;
        return 0;
    }
    return 0;
}

static int load_kv_scales(model_weights *m, const char *dir, char *err) {
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (find_kv_scale(m->st, l, 'k', dir, &m->layers[l].k_scale, err) ||
            find_kv_scale(m->st, l, 'v', dir, &m->layers[l].v_scale, err))
            return -1;
    return 0;
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
    load_plan lp = {0};
    if (build_specs(m, &specs, err) || !(m->st = st_open_dir(dir, err)) ||
        plan_load(m, &specs, dir, opts, &lp, err) || load_kv_scales(m, dir, err))
        goto fail;
    if (lp.arena) {
        m->arena = aligned_alloc(ARENA_ALIGN, lp.arena);
        if (!m->arena) {
            llm_errf(err, "out of memory: %llu bytes for converted weights",
                     (unsigned long long)lp.arena);
            goto fail;
        }
        m->arena_bytes = lp.arena;
    }
    llm_progress prog;
    llm_progress_start(&prog, opts->quantize ? "quantizing weights" : "loading weights", lp.total);
    prog.is_tty = prog.is_tty && opts->progress;
    uint8_t *at = m->arena;
    for (int i = 0; i < specs.n; i++) {
        place_tensor(m, &specs.v[i], &lp, i, opts, &at);
        llm_progress_add(&prog, lp.src[i]->nbytes);
    }
    llm_progress_finish(&prog);
    if (!lp.mapped) { // everything was copied out: drop the mapping
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
    load_plan_free(&lp);
    free(specs.v);
    return m;

fail:
    load_plan_free(&lp);
    free(specs.v);
    model_free(m);
    return NULL;
}
