// model_save.c - model_save: a model as a Hugging Face directory
// (config.json, generation_config.json, model.safetensors; int8 in the
// compressed-tensors layout).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model_internal.h"
#include "util.h"

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
