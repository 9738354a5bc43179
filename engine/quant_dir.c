// quant_dir.c - quant_dir_int8 (quant_dir.h): a checkpoint directory to int8,
// streamed tensor by tensor.
#include "quant_dir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "quant.h"
#include "safetensors.h"
#include "util.h"

#define CHUNK_BYTES (16u << 20) // int8 rows quantized and written per piece

// One output tensor: a copy of a checkpoint tensor, an int8 matrix, or its scales.
typedef enum { OUT_COPY, OUT_INT8, OUT_SCALE } out_kind;

typedef struct {
    out_kind kind;
    const st_tensor *src;
    char *name;
    float *scales; // OUT_SCALE: [rows] f32, computed in the first pass
} out_tensor;

static int is_embedding(const char *name) {
    return strstr(name, "embed_tokens.weight") != NULL || strcmp(name, "lm_head.weight") == 0;
}

static int to_quantize(const st_tensor *t, int embeddings) {
    size_t n = strlen(t->name);
    int float_dt = t->dtype == LLM_F32 || t->dtype == LLM_F16 || t->dtype == LLM_BF16;
    return float_dt && t->ndim == 2 && n > 7 && strcmp(t->name + n - 7, ".weight") == 0 &&
           (embeddings || !is_embedding(t->name));
}

// Drops a processed tensor's pages from this process (they stay in the page
// cache): reading a mapped checkpoint would otherwise keep it all resident.
static void release(const st_tensor *t) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)t->data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)t->data + t->nbytes) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

// Every regular file of src except the weights, config.json and dotfiles.
static int copy_side_files(const char *src, const char *dst, char *err) {
    DIR *d = opendir(src);
    if (!d) return llm_errf(err, "%s: %s", src, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        if (n[0] == '.' || strcmp(n, "config.json") == 0 ||
            strcmp(n, "model.safetensors.index.json") == 0 ||
            (len > 12 && strcmp(n + len - 12, ".safetensors") == 0))
            continue;
        char *from = llm_path_join(src, n), *to = llm_path_join(dst, n);
        struct stat st;
        if (from && to && stat(from, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t size;
            char *data = llm_read_file(from, &size, err);
            FILE *f = data ? fopen(to, "wb") : NULL;
            if (!data)
                rc = -1;
            else if (!f || fwrite(data, 1, size, f) != size)
                rc = llm_errf(err, "%s: cannot write", to);
            if (f && fclose(f) != 0 && rc == 0) rc = llm_errf(err, "%s: cannot write", to);
            free(data);
        }
        free(from);
        free(to);
    }
    closedir(d);
    return rc;
}

static int write_config(const char *src, const char *dst, const model_config *c, char *err) {
    char *in = llm_path_join(src, "config.json"), *out = llm_path_join(dst, "config.json");
    char *text = in ? llm_read_file(in, NULL, err) : NULL;
    char *json = text ? config_set_quantization(text, c, err) : NULL;
    FILE *f = json && out ? fopen(out, "w") : NULL;
    int rc = f && fputs(json, f) >= 0 && fputc('\n', f) != EOF ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    if (rc && json) llm_errf(err, "%s: cannot write", out);
    free(in), free(out), free(text), free(json);
    return rc;
}

// Writes the int8 rows of a matrix piece by piece.
static int put_int8(st_writer *w, const st_tensor *t, llm_dtype scale_dt, int8_t *buf,
                    float *scales, char *err) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    int64_t chunk = (int64_t)CHUNK_BYTES / cols > 0 ? (int64_t)CHUNK_BYTES / cols : 1;
    const size_t row_bytes = (size_t)cols * dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        quant_matrix_int8(buf, scales, (const uint8_t *)t->data + (size_t)r * row_bytes, t->dtype,
                          n, cols, scale_dt);
        if (st_writer_put(w, buf, (size_t)(n * cols), err)) return -1;
    }
    return 0;
}

// A quantization in progress.
typedef struct {
    const char *in, *out;
    int embeddings;
    model_config cfg;
    st_model *st;
    out_tensor *ot;      // the output tensors, in file order
    st_write_tensor *wt; // their header entries
    int n;
    int64_t max_rows, max_chunk; // buffer sizes
    int8_t *buf;
    float *tmp_scales;
    void *scale_buf;
    quant_dir_report rep;
} qdir;

// One output tensor, named name (copied) or name + "_scale". Returns it, or
// NULL with err when out of memory.
static out_tensor *add_out(qdir *q, out_kind kind, const st_tensor *t, char *err) {
    out_tensor *o = &q->ot[q->n++];
    o->kind = kind;
    o->src = t;
    o->name = malloc(strlen(t->name) + sizeof "_scale");
    if (o->name) sprintf(o->name, kind == OUT_SCALE ? "%s_scale" : "%s", t->name);
    if (kind == OUT_SCALE) o->scales = malloc((size_t)t->shape[0] * sizeof(float));
    if (!o->name || (kind == OUT_SCALE && !o->scales)) {
        llm_errf(err, "out of memory");
        return NULL;
    }
    return o;
}

// The output tensors in file order, widest dtypes first so every tensor stays
// aligned to its element size (as the reference writer does): F32 copies,
// then 16-bit copies and the scales, then the int8 matrices; and the buffer
// sizes. Returns 0, or -1 with err.
static int plan_outputs(qdir *q, char *err) {
    const int n_in = st_count(q->st);
    q->ot = calloc((size_t)n_in * 2 + 1, sizeof *q->ot);
    q->wt = calloc((size_t)n_in * 2 + 1, sizeof *q->wt);
    if (!q->ot || !q->wt) return llm_errf(err, "out of memory");
    q->max_rows = q->max_chunk = 1;
    for (size_t width = 4; width >= 1; width /= 2)
        for (int i = 0; i < n_in; i++) {
            const st_tensor *t = st_get(q->st, i);
            int quantize = to_quantize(t, q->embeddings);
            size_t sz = quantize ? 1 : dtype_size(t->dtype);
            // the scale, in the model's dtype
            if (quantize && width == dtype_size(q->cfg.dtype) && !add_out(q, OUT_SCALE, t, err))
                return -1;
            if (sz != width) continue;
            if (!add_out(q, quantize ? OUT_INT8 : OUT_COPY, t, err)) return -1;
            if (!quantize) continue;
            q->rep.n_quantized++;
            q->rep.bytes_in += t->nbytes;
            q->rep.bytes_out += t->numel + (uint64_t)t->shape[0] * dtype_size(q->cfg.dtype);
            if (t->shape[0] > q->max_rows) q->max_rows = t->shape[0];
            int64_t chunk =
                (int64_t)CHUNK_BYTES / t->shape[1] > 0 ? (int64_t)CHUNK_BYTES / t->shape[1] : 1;
            chunk = chunk < t->shape[0] ? chunk : t->shape[0];
            if (chunk * t->shape[1] > q->max_chunk) q->max_chunk = chunk * t->shape[1];
        }
    if (q->rep.n_quantized == 0)
        return llm_errf(err, "%s: no float Linear weight to quantize", q->in);
    q->buf = malloc((size_t)q->max_chunk);
    q->tmp_scales = malloc((size_t)q->max_rows * sizeof(float));
    q->scale_buf = malloc((size_t)q->max_rows * dtype_size(q->cfg.dtype));
    if (!q->buf || !q->tmp_scales || !q->scale_buf) return llm_errf(err, "out of memory");
    for (int i = 0; i < q->n; i++) {
        const st_tensor *t = q->ot[i].src;
        st_write_tensor *x = &q->wt[i];
        x->name = q->ot[i].name;
        x->dtype = q->ot[i].kind == OUT_INT8    ? LLM_I8
                   : q->ot[i].kind == OUT_SCALE ? q->cfg.dtype
                                                : t->dtype;
        x->ndim = t->ndim;
        memcpy(x->shape, t->shape, sizeof x->shape);
        if (q->ot[i].kind == OUT_SCALE) x->shape[1] = 1;
    }
    return 0;
}

// Pass 1: the scales (written before the int8 data they belong to).
static void compute_scales(qdir *q) {
    for (int i = 0; i < q->n; i++) {
        if (q->ot[i].kind != OUT_SCALE) continue;
        const st_tensor *t = q->ot[i].src;
        const size_t row_bytes = (size_t)t->shape[1] * dtype_size(t->dtype);
        for (int64_t r = 0; r < t->shape[0]; r++)
            q->ot[i].scales[r] =
                quant_row_int8(q->buf, (const uint8_t *)t->data + (size_t)r * row_bytes, t->dtype,
                               (int)t->shape[1], q->cfg.dtype);
        release(t);
    }
}

// Pass 2: model.safetensors, tensor by tensor. Returns 0, or -1 with err.
static int write_tensors(qdir *q, char *err) {
    if (mkdir(q->out, 0755) != 0 && errno != EEXIST)
        return llm_errf(err, "%s: %s", q->out, strerror(errno));
    char *path = llm_path_join(q->out, "model.safetensors");
    static const char *const meta[] = {"format", "pt"};
    st_writer *w = path ? st_writer_open(path, q->wt, q->n, meta, 1, err) : NULL;
    free(path);
    if (!w) return -1;
    const llm_dtype sdt = q->cfg.dtype;
    for (int i = 0; i < q->n; i++) {
        const st_tensor *t = q->ot[i].src;
        int r = 0;
        if (q->ot[i].kind == OUT_COPY) {
            r = st_writer_put(w, t->data, t->nbytes, err);
        } else if (q->ot[i].kind == OUT_SCALE) {
            for (int64_t k = 0; k < t->shape[0]; k++) {
                float v = q->ot[i].scales[k];
                if (sdt == LLM_F16)
                    ((uint16_t *)q->scale_buf)[k] = f32_to_fp16(v);
                else if (sdt == LLM_BF16)
                    ((uint16_t *)q->scale_buf)[k] = f32_to_bf16(v);
                else
                    ((float *)q->scale_buf)[k] = v;
            }
            r = st_writer_put(w, q->scale_buf, (size_t)t->shape[0] * dtype_size(sdt), err);
        } else {
            r = put_int8(w, t, sdt, q->buf, q->tmp_scales, err);
        }
        release(t);
        if (r) {
            st_writer_abort(w);
            return -1;
        }
    }
    return st_writer_close(w, err);
}

int quant_dir_int8(const char *in, const char *out, int embeddings, quant_dir_report *rep,
                   char *err) {
    char rin[PATH_MAX], rout[PATH_MAX];
    if (realpath(in, rin) && realpath(out, rout) && strcmp(rin, rout) == 0)
        return llm_errf(err, "%s: --out must be another directory than --model", out);
    qdir q = {.in = in, .out = out, .embeddings = embeddings};
    if (config_load(in, &q.cfg, err)) return -1;
    if (q.cfg.quant != QUANT_NONE)
        return llm_errf(err,
                        "%s: the model is already quantized (config.json has a "
                        "quantization_config)",
                        in);
    if (!(q.st = st_open_dir(in, err))) return -1;
    int rc = plan_outputs(&q, err);
    if (rc == 0) compute_scales(&q);
    if (rc == 0) rc = write_tensors(&q, err);
    q.cfg.quant = QUANT_INT8;
    q.cfg.quant_embeddings = embeddings;
    if (rc == 0) rc = write_config(in, out, &q.cfg, err);
    if (rc == 0) rc = copy_side_files(in, out, err);
    q.rep.scale_dtype = q.cfg.dtype;
    if (rc == 0 && rep) *rep = q.rep;
    for (int i = 0; q.ot && i < q.n; i++) {
        free(q.ot[i].name);
        free(q.ot[i].scales);
    }
    free(q.ot), free(q.wt), free(q.buf), free(q.tmp_scales), free(q.scale_buf);
    st_close(q.st);
    return rc;
}
