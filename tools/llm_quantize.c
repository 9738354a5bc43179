// llm_quantize - writes a Hugging Face model directory with its Linear weights
// in int8 (weight-only, symmetric, per output channel; quant.h), in the
// compressed-tensors layout other engines load: <name>.weight I8 [out, in],
// <name>.weight_scale [out, 1] in the model's float dtype, and
// "quantization_config" in config.json. Streams tensor by tensor from the
// mapped checkpoint, so memory stays near the largest tensor, not the model.
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "quant.h"
#include "safetensors.h"
#include "util.h"

#define CHUNK_BYTES (16u << 20) // int8 rows quantized and written per piece

static void usage(FILE *f) {
    fprintf(f,
            "usage: llm_quantize --model DIR --out DIR2 [--scheme w8a16] [--quantize-embeddings]\n"
            "  --model DIR              Hugging Face model directory (fp16/bf16/fp32 safetensors)\n"
            "  --out DIR2               output directory (created)\n"
            "  --scheme w8a16           int8 weights, 16-bit activations (the only scheme)\n"
            "  --quantize-embeddings    quantize embed_tokens and lm_head too (default: kept)\n");
}

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

// This program's peak resident memory: VmHWM, which starts afresh at exec
// (getrusage's ru_maxrss keeps the parent's peak across fork + exec, so a
// run from a large process reports that process's size).
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    if (kib >= 0) return kib / 1024.0;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
}

static int quantize_dir(const char *in, const char *out, int embeddings, char *err) {
    char rin[PATH_MAX], rout[PATH_MAX];
    if (realpath(in, rin) && realpath(out, rout) && strcmp(rin, rout) == 0)
        return llm_errf(err, "%s: --out must be another directory than --model", out);
    model_config cfg;
    if (config_load(in, &cfg, err)) return -1;
    if (cfg.quant != QUANT_NONE)
        return llm_errf(err,
                        "%s: the model is already quantized (config.json has a "
                        "quantization_config)",
                        in);
    st_model *st = st_open_dir(in, err);
    if (!st) return -1;
    const int n_in = st_count(st);
    out_tensor *ot = calloc((size_t)n_in * 2 + 1, sizeof *ot);
    st_write_tensor *wt = calloc((size_t)n_in * 2 + 1, sizeof *wt);
    int n = 0, rc = -1, n_quant = 0;
    int64_t max_rows = 1, max_chunk = 1;
    uint64_t bytes_in = 0, bytes_q = 0;
    st_writer *w = NULL;
    int8_t *buf = NULL;
    float *tmp_scales = NULL;
    void *scale_buf = NULL;
    if (!ot || !wt) {
        llm_errf(err, "out of memory");
        goto done;
    }
    // The output order: widest dtypes first so every tensor stays aligned to its
    // element size (as the reference writer does): F32 copies, then 16-bit
    // copies and the scales, then the int8 matrices.
    for (size_t width = 4; width >= 1; width /= 2)
        for (int i = 0; i < n_in; i++) {
            const st_tensor *t = st_get(st, i);
            int q = to_quantize(t, embeddings);
            size_t sz = q ? 1 : dtype_size(t->dtype);
            if (q && width == dtype_size(cfg.dtype)) { // the scale, in the model's dtype
                out_tensor *o = &ot[n++];
                o->kind = OUT_SCALE;
                o->src = t;
                o->name = malloc(strlen(t->name) + sizeof "_scale");
                o->scales = malloc((size_t)t->shape[0] * sizeof(float));
                if (!o->name || !o->scales) {
                    llm_errf(err, "out of memory");
                    goto done;
                }
                sprintf(o->name, "%s_scale", t->name);
            }
            if (sz != width) continue;
            out_tensor *o = &ot[n++];
            o->kind = q ? OUT_INT8 : OUT_COPY;
            o->src = t;
            o->name = strdup(t->name);
            if (!o->name) {
                llm_errf(err, "out of memory");
                goto done;
            }
            if (q) {
                n_quant++;
                bytes_in += t->nbytes;
                bytes_q += t->numel + (uint64_t)t->shape[0] * dtype_size(cfg.dtype);
                if (t->shape[0] > max_rows) max_rows = t->shape[0];
                int64_t chunk =
                    (int64_t)CHUNK_BYTES / t->shape[1] > 0 ? (int64_t)CHUNK_BYTES / t->shape[1] : 1;
                chunk = chunk < t->shape[0] ? chunk : t->shape[0];
                if (chunk * t->shape[1] > max_chunk) max_chunk = chunk * t->shape[1];
            }
        }
    if (n_quant == 0) {
        llm_errf(err, "%s: no float Linear weight to quantize", in);
        goto done;
    }
    buf = malloc((size_t)max_chunk);
    tmp_scales = malloc((size_t)max_rows * sizeof(float));
    scale_buf = malloc((size_t)max_rows * dtype_size(cfg.dtype));
    if (!buf || !tmp_scales || !scale_buf) {
        llm_errf(err, "out of memory");
        goto done;
    }
    // Pass 1: the scales (written before the int8 data they belong to).
    for (int i = 0; i < n; i++) {
        if (ot[i].kind != OUT_SCALE) continue;
        const st_tensor *t = ot[i].src;
        const size_t row_bytes = (size_t)t->shape[1] * dtype_size(t->dtype);
        for (int64_t r = 0; r < t->shape[0]; r++)
            ot[i].scales[r] = quant_row_int8(buf, (const uint8_t *)t->data + (size_t)r * row_bytes,
                                             t->dtype, (int)t->shape[1], cfg.dtype);
        release(t);
    }
    for (int i = 0; i < n; i++) {
        const st_tensor *t = ot[i].src;
        st_write_tensor *x = &wt[i];
        x->name = ot[i].name;
        x->dtype = ot[i].kind == OUT_INT8 ? LLM_I8 : ot[i].kind == OUT_SCALE ? cfg.dtype : t->dtype;
        x->ndim = t->ndim;
        memcpy(x->shape, t->shape, sizeof x->shape);
        if (ot[i].kind == OUT_SCALE) x->shape[1] = 1;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        llm_errf(err, "%s: %s", out, strerror(errno));
        goto done;
    }
    char *path = llm_path_join(out, "model.safetensors");
    static const char *const meta[] = {"format", "pt"};
    w = path ? st_writer_open(path, wt, n, meta, 1, err) : NULL;
    free(path);
    if (!w) goto done;
    // Pass 2: the data, tensor by tensor.
    for (int i = 0; i < n; i++) {
        const st_tensor *t = ot[i].src;
        int r = 0;
        if (ot[i].kind == OUT_COPY) {
            r = st_writer_put(w, t->data, t->nbytes, err);
        } else if (ot[i].kind == OUT_SCALE) {
            for (int64_t k = 0; k < t->shape[0]; k++) {
                float v = ot[i].scales[k];
                if (cfg.dtype == LLM_F16)
                    ((uint16_t *)scale_buf)[k] = f32_to_fp16(v);
                else if (cfg.dtype == LLM_BF16)
                    ((uint16_t *)scale_buf)[k] = f32_to_bf16(v);
                else
                    ((float *)scale_buf)[k] = v;
            }
            r = st_writer_put(w, scale_buf, (size_t)t->shape[0] * dtype_size(cfg.dtype), err);
        } else {
            r = put_int8(w, t, cfg.dtype, buf, tmp_scales, err);
        }
        release(t);
        if (r) goto done;
    }
    rc = st_writer_close(w, err);
    w = NULL;
    cfg.quant = QUANT_INT8;
    cfg.quant_embeddings = embeddings;
    if (rc == 0) rc = write_config(in, out, &cfg, err);
    if (rc == 0) rc = copy_side_files(in, out, err);
    if (rc == 0) {
        char a[32], b[32];
        printf("quantized %d matrices to int8 (per output channel, %s scales): %s -> %s; "
               "embeddings %s; peak RSS %.1f MiB\n",
               n_quant, dtype_name(cfg.dtype), llm_fmt_bytes(bytes_in, a, sizeof a),
               llm_fmt_bytes(bytes_q, b, sizeof b), embeddings ? "quantized" : "kept as stored",
               peak_rss_mib());
    }
done:
    st_writer_abort(w);
    for (int i = 0; ot && i < n; i++) {
        free(ot[i].name);
        free(ot[i].scales);
    }
    free(ot), free(wt), free(buf), free(tmp_scales), free(scale_buf);
    st_close(st);
    return rc;
}

int main(int argc, char **argv) {
    enum { O_MODEL = 256, O_OUT, O_SCHEME, O_EMBED };
    static const struct option longopts[] = {
        {"model", required_argument, 0, O_MODEL},
        {"out", required_argument, 0, O_OUT},
        {"scheme", required_argument, 0, O_SCHEME},
        {"quantize-embeddings", no_argument, 0, O_EMBED},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *in = NULL, *out = NULL;
    int embeddings = 0, opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_MODEL:
            in = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_SCHEME:
            if (strcmp(optarg, "w8a16") != 0) {
                fprintf(stderr, "llm_quantize: unknown scheme '%s' (supported: w8a16)\n", optarg);
                return 2;
            }
            break;
        case O_EMBED:
            embeddings = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out || optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[LLM_ERR_LEN];
    double t0 = llm_now();
    if (quantize_dir(in, out, embeddings, err)) {
        fprintf(stderr, "llm_quantize: %s\n", err);
        return 1;
    }
    printf("wrote %s in %.1f s\n", out, llm_now() - t0);
    return 0;
}
