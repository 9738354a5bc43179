#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"

// Bytes of the little-endian header length that opens every file.
#define ST_LEN_BYTES 8
// Largest integer a JSON number (a double in cJSON) holds exactly.
#define ST_MAX_JSON_INT 9007199254740992.0 // 2^53
#define ST_INDEX_NAME "model.safetensors.index.json"

// One file image the tensors point into.
typedef struct {
    char *label; // path (or st_parse's label), used in messages
    void *map;   // mmap'ed image owned by the model; NULL for st_parse
    size_t map_len;
} st_source;

struct st_model {
    st_tensor *tensors; // (n) file by file, each file's in data-offset order
    int *source_of;     // (n) index into sources
    int n, cap;
    const st_tensor **by_name; // (n) sorted by name, for st_find
    st_source *sources;        // (n_sources)
    int n_sources;
    char **meta; // (2 * n_meta) key, value pairs of the first file's __metadata__
    int n_meta;
    uint64_t data_bytes;
};

// --- helpers ---------------------------------------------------------------

static int checked_mul(uint64_t a, uint64_t b, uint64_t *out) {
    if (a && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

// A JSON number that is a non-negative integer held exactly by a double.
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= ST_MAX_JSON_INT) || v != (double)(uint64_t)v) return -1;
    *out = (uint64_t)v;
    return 0;
}

// Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid.
static size_t utf8_seq_len(const uint8_t *s, size_t n) {
    uint32_t cp;
    int k = utf8_decode((const char *)s, n, &cp);
    return k > 0 ? (size_t)k : 0;
}

// The reference decodes the header as strict UTF-8 and parses it with a strict
// JSON parser. cJSON lets control bytes through (as whitespace and inside
// strings), skips a leading byte-order mark, and decodes \u0000 into a NUL that
// would cut a name short, so those are rejected here, before cJSON sees the text.
static int check_header_text(const uint8_t *s, size_t n, const char *label, char *err) {
    if (n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) // cJSON would skip it
        return llm_errf(err, "%s: header is not valid JSON: it starts with a byte-order mark",
                        label);
    int in_string = 0, escaped = 0;
    for (size_t i = 0, k; i < n; i += k) {
        uint8_t c = s[i];
        if (!(k = utf8_seq_len(s + i, n - i)))
            return llm_errf(err, "%s: header is not valid UTF-8 (byte %zu)", label, i);
        if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r')))
            return llm_errf(err,
                            "%s: header is not valid JSON: control character 0x%02x at byte %zu",
                            label, c, i);
        if (!in_string) {
            in_string = c == '"';
        } else if (escaped) {
            escaped = 0;
            if (c == 'u' && n - i >= 5 && memcmp(s + i + 1, "0000", 4) == 0)
                return llm_errf(err, "%s: header holds \\u0000 (byte %zu); names cannot hold NUL",
                                label, i - 1);
        } else if (c == '\\') {
            escaped = 1;
        } else if (c == '"') {
            in_string = 0;
        }
    }
    return 0;
}

static int model_reserve(st_model *m, int extra, char *err) {
    if (extra <= m->cap - m->n) return 0;
    if (extra > INT32_MAX / 2 - m->n) return llm_errf(err, "too many tensors");
    int cap = m->cap ? m->cap : 16;
    while (cap < m->n + extra) cap *= 2;
    st_tensor *t = realloc(m->tensors, (size_t)cap * sizeof *t);
    if (!t) return llm_errf(err, "out of memory");
    m->tensors = t;
    int *s = realloc(m->source_of, (size_t)cap * sizeof *s);
    if (!s) return llm_errf(err, "out of memory");
    m->source_of = s;
    m->cap = cap;
    return 0;
}

// Adds a file image to m; m owns map (NULL for none) from here on, even on error.
static int model_add_source(st_model *m, const char *label, void *map, size_t map_len, char *err) {
    st_source *s = realloc(m->sources, (size_t)(m->n_sources + 1) * sizeof *s);
    char *lab = strdup(label);
    if (s) m->sources = s;
    if (!s || !lab) {
        free(lab);
        if (map) munmap(map, map_len);
        return llm_errf(err, "out of memory");
    }
    s[m->n_sources++] = (st_source){lab, map, map_len};
    return 0;
}

// --- header parsing --------------------------------------------------------

// A parsed tensor entry before it joins the model.
typedef struct {
    st_tensor t;
    uint64_t begin, end;
    int seq; // position in the header, to make the sort total
} st_entry;

static int entry_cmp(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->seq - y->seq;
}

static void fmt_shape(const st_tensor *t, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ", %" PRId64 : "%" PRId64, t->shape[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

// Fills e from the header entry j named name; data_len is the data buffer size.
static int parse_entry(const cJSON *j, const char *name, uint64_t data_len, const char *label,
                       st_entry *e, char *err) {
    if (!cJSON_IsObject(j)) return llm_errf(err, "%s: tensor '%s' is not an object", label, name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *f = j->child; f; f = f->next) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dtype
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot) continue; // the reference ignores unknown fields
        if (*slot)
            return llm_errf(err, "%s: tensor '%s' has two '%s' fields", label, name, f->string);
        *slot = f;
    }
    if (!dtype) return llm_errf(err, "%s: tensor '%s' has no dtype", label, name);
    if (!shape) return llm_errf(err, "%s: tensor '%s' has no shape", label, name);
    if (!offs) return llm_errf(err, "%s: tensor '%s' has no data_offsets", label, name);

    st_tensor *t = &e->t;
    if (!cJSON_IsString(dtype))
        return llm_errf(err, "%s: tensor '%s' dtype is not a string", label, name);
    // F8_E4M3 is a KV cache type here, not a weight type: refused like the other F8 kinds
    if (dtype_parse(dtype->valuestring, &t->dtype) != 0 || t->dtype == LLM_F8E4M3)
        return llm_errf(err,
                        "%s: unsupported dtype '%s' for tensor '%s' (supported: F32 F16 BF16 I8)",
                        label, dtype->valuestring, name);

    if (!cJSON_IsArray(shape))
        return llm_errf(err, "%s: tensor '%s' shape is not an array", label, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return llm_errf(err, "%s: tensor '%s' has %d dims (at most %d supported)", label, name,
                        ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        uint64_t v;
        if (json_uint(s, &v) != 0)
            return llm_errf(err, "%s: tensor '%s' shape[%d] is not a non-negative integer", label,
                            name, d);
        t->shape[d] = (int64_t)v;
        if (checked_mul(t->numel, v, &t->numel) != 0)
            return llm_errf(err, "%s: tensor '%s' element count overflows", label, name);
    }
    if (checked_mul(t->numel, dtype_size(t->dtype), &t->nbytes) != 0)
        return llm_errf(err, "%s: tensor '%s' byte size overflows", label, name);

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(offs->child, &e->begin) != 0 || json_uint(offs->child->next, &e->end) != 0)
        return llm_errf(err,
                        "%s: tensor '%s' data_offsets is not a [begin, end] pair of "
                        "non-negative integers",
                        label, name);
    if (e->end < e->begin)
        return llm_errf(err,
                        "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] end before "
                        "they begin",
                        label, name, e->begin, e->end);
    if (e->end > data_len)
        return llm_errf(err,
                        "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] exceed the "
                        "data buffer (%" PRIu64 " bytes)",
                        label, name, e->begin, e->end, data_len);
    if (e->end - e->begin != t->nbytes) {
        char sh[160];
        fmt_shape(t, sh, sizeof sh);
        return llm_errf(err,
                        "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                        " bytes but shape %s of %s needs %" PRIu64,
                        label, name, e->begin, e->end, e->end - e->begin, sh, dtype_name(t->dtype),
                        t->nbytes);
    }
    return 0;
}

// __metadata__: an object of string -> string (null means none, as in the reference).
static int parse_metadata(const cJSON *j, const char *label, st_model *m, int keep, char *err) {
    if (cJSON_IsNull(j)) return 0;
    if (!cJSON_IsObject(j)) return llm_errf(err, "%s: __metadata__ is not an object", label);
    int n = 0;
    for (const cJSON *f = j->child; f; f = f->next, n++)
        if (!cJSON_IsString(f))
            return llm_errf(err, "%s: __metadata__ value of '%s' is not a string", label,
                            f->string);
    if (!keep || n == 0) return 0;
    m->meta = calloc((size_t)n * 2, sizeof *m->meta);
    if (!m->meta) return llm_errf(err, "out of memory");
    for (const cJSON *f = j->child; f; f = f->next, m->n_meta++) {
        m->meta[2 * m->n_meta] = strdup(f->string);
        m->meta[2 * m->n_meta + 1] = strdup(f->valuestring);
        if (!m->meta[2 * m->n_meta] || !m->meta[2 * m->n_meta + 1]) {
            m->n_meta++; // so st_close frees this pair's half that was made
            return llm_errf(err, "out of memory");
        }
    }
    return 0;
}

// Checks that the entries, sorted by offset, tile [0, data_len) exactly: the
// reference's rule (zero-size tensors sit where the previous one ends).
static int check_tiling(const st_entry *e, int n, uint64_t data_len, const char *label, char *err) {
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].begin != at)
            return llm_errf(err,
                            "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] %s: the "
                            "previous tensor ends at byte %" PRIu64,
                            label, e[i].t.name, e[i].begin, e[i].end,
                            e[i].begin > at ? "leave a gap" : "overlap another tensor", at);
        at = e[i].end;
    }
    if (at != data_len)
        return llm_errf(err,
                        "%s: tensors end at byte %" PRIu64 " but the data buffer has %" PRIu64
                        " bytes (trailing bytes)",
                        label, at, data_len);
    return 0;
}

// Parses the file image buf (whose source is already m's last one) and appends
// its tensors to m. On error m may hold a partial __metadata__ but no tensor of it.
static int parse_into(st_model *m, const uint8_t *buf, size_t len, const char *label, char *err) {
    if (len < ST_LEN_BYTES)
        return llm_errf(err,
                        "%s: file too small (%zu bytes; a safetensors file starts with an "
                        "8-byte header length)",
                        label, len);
    uint64_t hlen = 0;
    for (int i = 0; i < ST_LEN_BYTES; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > ST_MAX_HEADER_BYTES)
        return llm_errf(err, "%s: header length %" PRIu64 " exceeds the limit of %u bytes", label,
                        hlen, ST_MAX_HEADER_BYTES);
    if (hlen > len - ST_LEN_BYTES)
        return llm_errf(err, "%s: header length %" PRIu64 " exceeds the file size - 8 (%zu bytes)",
                        label, hlen, len - ST_LEN_BYTES);
    const uint8_t *text = buf + ST_LEN_BYTES;
    const uint8_t *data = text + hlen;
    uint64_t data_len = len - ST_LEN_BYTES - hlen;
    if (check_header_text(text, hlen, label, err) != 0) return -1;

    // cJSON wants a NUL-terminated string to reject trailing garbage.
    char *copy = malloc(hlen + 1);
    if (!copy) return llm_errf(err, "out of memory");
    memcpy(copy, text, hlen);
    copy[hlen] = '\0';
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &stop, 1);
    if (!root) {
        llm_errf(err, "%s: header is not valid JSON (error near byte %td)", label,
                 stop ? stop - copy : (ptrdiff_t)0);
        free(copy);
        return -1;
    }
    free(copy);
    st_entry *e = NULL;
    int n = 0, rc = -1;
    if (!cJSON_IsObject(root)) {
        llm_errf(err, "%s: header is not a JSON object", label);
        goto done;
    }
    int n_keys = cJSON_GetArraySize(root);
    e = calloc((size_t)n_keys + 1, sizeof *e);
    if (!e) {
        llm_errf(err, "out of memory");
        goto done;
    }
    int seen_meta = 0;
    for (const cJSON *j = root->child; j; j = j->next) {
        if (!strcmp(j->string, "__metadata__")) {
            if (seen_meta++) {
                llm_errf(err, "%s: header has two __metadata__ entries", label);
                goto done;
            }
            if (parse_metadata(j, label, m, m->n_sources == 1, err) != 0) goto done;
            continue;
        }
        e[n].seq = n;
        if (parse_entry(j, j->string, data_len, label, &e[n], err) != 0) goto done;
        if (!(e[n].t.name = strdup(j->string))) {
            llm_errf(err, "out of memory");
            goto done;
        }
        e[n].t.data = data + e[n].begin;
        n++;
    }
    qsort(e, (size_t)n, sizeof *e, entry_cmp);
    if (check_tiling(e, n, data_len, label, err) != 0) goto done;
    if (model_reserve(m, n, err) != 0) goto done;
    for (int i = 0; i < n; i++) {
        m->source_of[m->n] = m->n_sources - 1;
        m->tensors[m->n++] = e[i].t;
        m->data_bytes += e[i].t.nbytes;
        e[i].t.name = NULL; // now owned by m
    }
    rc = 0;
done:
    for (int i = 0; e && i < n; i++) free(e[i].t.name);
    free(e);
    cJSON_Delete(root);
    return rc;
}

static int by_name_cmp(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y);
}

// Builds the name index; a name in two places is an error.
static int build_index(st_model *m, char *err) {
    m->by_name = malloc((size_t)(m->n ? m->n : 1) * sizeof *m->by_name);
    if (!m->by_name) return llm_errf(err, "out of memory");
    for (int i = 0; i < m->n; i++) m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, (size_t)m->n, sizeof *m->by_name, by_name_cmp);
    for (int i = 1; i < m->n; i++) {
        const st_tensor *a = m->by_name[i - 1], *b = m->by_name[i];
        if (strcmp(a->name, b->name) != 0) continue;
        int sa = m->source_of[a - m->tensors], sb = m->source_of[b - m->tensors];
        if (sa == sb)
            return llm_errf(err, "%s: duplicate tensor name '%s'", m->sources[sa].label, a->name);
        return llm_errf(err, "tensor '%s' is in both %s and %s", a->name, m->sources[sa].label,
                        m->sources[sb].label);
    }
    return 0;
}

// --- public: reading -------------------------------------------------------

st_model *st_parse(const uint8_t *buf, size_t len, const char *label, char *err) {
    st_model *m = calloc(1, sizeof *m);
    if (!m) {
        llm_errf(err, "out of memory");
        return NULL;
    }
    if (model_add_source(m, label, NULL, 0, err) != 0 || parse_into(m, buf, len, label, err) != 0 ||
        build_index(m, err) != 0) {
        st_close(m);
        return NULL;
    }
    return m;
}

// Maps path read-only and appends its tensors to m.
static int add_file(st_model *m, const char *path, char *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return llm_errf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return llm_errf(err, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < ST_LEN_BYTES) { // mmap cannot map an empty file
        close(fd);
        return llm_errf(err,
                        "%s: file too small (%zu bytes; a safetensors file starts with an "
                        "8-byte header length)",
                        path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) return llm_errf(err, "%s: mmap: %s", path, strerror(map_errno));
    if (model_add_source(m, path, map, len, err) != 0) return -1;
    return parse_into(m, map, len, path, err);
}

st_model *st_open_file(const char *path, char *err) {
    st_model *m = calloc(1, sizeof *m);
    if (!m) {
        llm_errf(err, "out of memory");
        return NULL;
    }
    if (add_file(m, path, err) != 0 || build_index(m, err) != 0) {
        st_close(m);
        return NULL;
    }
    return m;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Opens every shard named in the index at index_path; see st_open_dir.
static st_model *open_sharded(const char *dir, const char *index_path, char *err) {
    st_model *m = NULL;
    cJSON *root = NULL;
    const char **files = NULL;
    char *path = NULL;
    size_t len;
    char *text = llm_read_file(index_path, &len, err);
    if (!text) return NULL;
    root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) {
        llm_errf(err, "%s: not valid JSON", index_path);
        goto fail;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        llm_errf(err, "%s: no \"weight_map\" object with at least one tensor", index_path);
        goto fail;
    }
    // The distinct shard names, sorted, so each file opens once and in a fixed order.
    int n_map = cJSON_GetArraySize(wm), n_files = 0;
    files = malloc((size_t)n_map * sizeof *files);
    if (!files) {
        llm_errf(err, "out of memory");
        goto fail;
    }
    for (const cJSON *j = wm->child; j; j = j->next) {
        if (!cJSON_IsString(j) || !j->valuestring[0] || strchr(j->valuestring, '/')) {
            llm_errf(err, "%s: weight_map entry for '%s' is not a file name in %s", index_path,
                     j->string, dir);
            goto fail;
        }
        files[n_files++] = j->valuestring;
    }
    qsort(files, (size_t)n_files, sizeof *files, str_cmp);
    int k = 0;
    for (int i = 0; i < n_files; i++)
        if (k == 0 || strcmp(files[k - 1], files[i]) != 0) files[k++] = files[i];
    n_files = k;

    if (!(m = calloc(1, sizeof *m))) {
        llm_errf(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n_files; i++) {
        if (!(path = llm_path_join(dir, files[i]))) {
            llm_errf(err, "out of memory");
            goto fail;
        }
        if (!llm_file_exists(path)) {
            llm_errf(err, "%s: shard listed in %s is missing", path, ST_INDEX_NAME);
            goto fail;
        }
        if (add_file(m, path, err) != 0) goto fail;
        free(path);
        path = NULL;
    }
    if (build_index(m, err) != 0) goto fail;
    // Shard i is sources[i]: check every listed tensor is where the index says.
    for (const cJSON *j = wm->child; j; j = j->next) {
        const st_tensor *t = st_find(m, j->string);
        const char **f = bsearch(&j->valuestring, files, (size_t)n_files, sizeof *files, str_cmp);
        if (!t) {
            llm_errf(err, "%s: tensor '%s' is not in %s", index_path, j->string,
                     m->sources[f - files].label);
            goto fail;
        }
        int s = m->source_of[t - m->tensors];
        if (s != f - files) {
            llm_errf(err, "%s: tensor '%s' is listed in %s but found in %s", index_path, j->string,
                     j->valuestring, m->sources[s].label);
            goto fail;
        }
    }
    free(files);
    cJSON_Delete(root);
    return m;
fail:
    free(path);
    free(files);
    cJSON_Delete(root);
    st_close(m);
    return NULL;
}

st_model *st_open_dir(const char *dir, char *err) {
    char *single = llm_path_join(dir, "model.safetensors");
    char *index = llm_path_join(dir, ST_INDEX_NAME);
    st_model *m = NULL;
    if (!single || !index)
        llm_errf(err, "out of memory");
    else if (llm_file_exists(single))
        m = st_open_file(single, err);
    else if (llm_file_exists(index))
        m = open_sharded(dir, index, err);
    else
        llm_errf(err, "%s: no model.safetensors or %s", dir, ST_INDEX_NAME);
    free(single);
    free(index);
    return m;
}

int st_count(const st_model *m) {
    return m->n;
}

const st_tensor *st_get(const st_model *m, int i) {
    return i >= 0 && i < m->n ? &m->tensors[i] : NULL;
}

const st_tensor *st_find(const st_model *m, const char *name) {
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, m->by_name[mid]->name);
        if (c == 0) return m->by_name[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_model *m, const char *key) {
    const char *v = NULL; // a repeated key: the last one wins, as in the reference
    for (int i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta[2 * i], key)) v = m->meta[2 * i + 1];
    return v;
}

uint64_t st_data_bytes(const st_model *m) {
    return m->data_bytes;
}

void st_close(st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->tensors[i].name);
    for (int i = 0; i < 2 * m->n_meta; i++) free(m->meta[i]);
    for (int i = 0; i < m->n_sources; i++) {
        if (m->sources[i].map) munmap(m->sources[i].map, m->sources[i].map_len);
        free(m->sources[i].label);
    }
    free(m->tensors);
    free(m->source_of);
    free(m->by_name);
    free(m->sources);
    free(m->meta);
    free(m);
}

// --- public: writing -------------------------------------------------------

// Checks the tensors and computes each one's byte size into nbytes.
static int check_write(const st_write_tensor *ts, int n, const char *const *meta_kv, int n_meta,
                       uint64_t *nbytes, char *err) {
    for (int i = 0; i < n; i++) {
        const st_write_tensor *t = &ts[i];
        if (!t->name || !utf8_valid(t->name, strlen(t->name)) || !strcmp(t->name, "__metadata__"))
            return llm_errf(err, "tensor %d: name missing, not UTF-8 or reserved", i);
        if (t->dtype >= LLM_DTYPE_COUNT)
            return llm_errf(err, "tensor '%s': bad dtype %d", t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            return llm_errf(err, "tensor '%s': %d dims (0 to %d supported)", t->name, t->ndim,
                            ST_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || (double)t->shape[d] > ST_MAX_JSON_INT ||
                checked_mul(numel, (uint64_t)t->shape[d], &numel) != 0)
                return llm_errf(err, "tensor '%s': bad shape[%d] = %" PRId64, t->name, d,
                                t->shape[d]);
        if (checked_mul(numel, dtype_size(t->dtype), &nbytes[i]) != 0)
            return llm_errf(err, "tensor '%s': byte size overflows", t->name);
        if (nbytes[i] && !t->data) return llm_errf(err, "tensor '%s': no data", t->name);
    }
    for (int i = 0; i < 2 * n_meta; i++)
        if (!meta_kv[i] || !utf8_valid(meta_kv[i], strlen(meta_kv[i])))
            return llm_errf(err, "metadata entry %d is missing or not UTF-8", i / 2);
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) return llm_errf(err, "out of memory");
    for (int i = 0; i < n; i++) names[i] = ts[i].name;
    qsort(names, (size_t)n, sizeof *names, str_cmp);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++)
        if (!strcmp(names[i - 1], names[i]))
            rc = llm_errf(err, "duplicate tensor name '%s'", names[i]);
    free(names);
    return rc;
}

static int add_uint(cJSON *arr, uint64_t v) {
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    cJSON *j = cJSON_CreateRaw(num); // printed as written: never in exponent form
    return j && cJSON_AddItemToArray(arr, j) ? 0 : -1;
}

// The compact header JSON: __metadata__ first, then the tensors in order.
static char *header_json(const st_write_tensor *ts, int n, const uint64_t *nbytes,
                         const char *const *meta_kv, int n_meta) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok = 1;
    if (n_meta > 0) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        ok = md != NULL;
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(md, meta_kv[2 * i], meta_kv[2 * i + 1]) != NULL;
    }
    uint64_t at = 0;
    for (int i = 0; ok && i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, ts[i].name);
        ok = t && cJSON_AddStringToObject(t, "dtype", dtype_name(ts[i].dtype));
        cJSON *shape = ok ? cJSON_AddArrayToObject(t, "shape") : NULL;
        ok = shape != NULL;
        for (int d = 0; ok && d < ts[i].ndim; d++)
            ok = add_uint(shape, (uint64_t)ts[i].shape[d]) == 0;
        cJSON *offs = ok ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offs && add_uint(offs, at) == 0 && add_uint(offs, at + nbytes[i]) == 0;
        at += nbytes[i];
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

struct st_writer {
    char *path, *tmp;
    FILE *f;
    uint64_t want, done; // data bytes promised by the header, written so far
};

void st_writer_abort(st_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}

// check_data: the tensors' data pointers must be set (st_write_file).
static st_writer *writer_open(const char *path, const st_write_tensor *tensors, int n,
                              const char *const *meta_kv, int n_meta, int check_data, char *err) {
    if (n < 0 || n_meta < 0) {
        llm_errf(err, "%s: bad tensor or metadata count", path);
        return NULL;
    }
    uint64_t *nbytes = malloc((size_t)(n ? n : 1) * sizeof *nbytes);
    st_writer *w = calloc(1, sizeof *w);
    char *json = NULL;
    if (!nbytes || !w) goto oom;
    st_write_tensor *shapes = malloc((size_t)(n ? n : 1) * sizeof *shapes);
    if (!shapes) goto oom;
    for (int i = 0; i < n; i++) {
        shapes[i] = tensors[i];
        if (!check_data) shapes[i].data = ""; // the data comes later
    }
    int bad = check_write(shapes, n, meta_kv, n_meta, nbytes, err);
    free(shapes);
    if (bad) {
        char why[LLM_ERR_LEN];
        snprintf(why, sizeof why, "%s", err ? err : "");
        llm_errf(err, "%s: %s", path, why);
        goto fail;
    }
    for (int i = 0; i < n; i++) w->want += nbytes[i];
    if (!(json = header_json(tensors, n, nbytes, meta_kv, n_meta)) || !(w->path = strdup(path)) ||
        !(w->tmp = malloc(strlen(path) + 5)))
        goto oom;
    sprintf(w->tmp, "%s.tmp", path);
    // The reference pads the header with spaces so the data starts 8-aligned.
    size_t hlen = strlen(json);
    size_t pad = (ST_LEN_BYTES - hlen % ST_LEN_BYTES) % ST_LEN_BYTES;
    uint8_t len_le[ST_LEN_BYTES];
    for (int i = 0; i < ST_LEN_BYTES; i++) len_le[i] = (uint8_t)((uint64_t)(hlen + pad) >> (8 * i));
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        llm_errf(err, "%s: %s", w->tmp, strerror(errno));
        goto fail;
    }
    if (fwrite(len_le, 1, sizeof len_le, w->f) != sizeof len_le ||
        fwrite(json, 1, hlen, w->f) != hlen || fwrite("        ", 1, pad, w->f) != pad) {
        llm_errf(err, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    free(nbytes);
    free(json);
    return w;
oom:
    llm_errf(err, "out of memory");
fail:
    free(nbytes);
    free(json);
    st_writer_abort(w);
    return NULL;
}

st_writer *st_writer_open(const char *path, const st_write_tensor *tensors, int n,
                          const char *const *meta_kv, int n_meta, char *err) {
    return writer_open(path, tensors, n, meta_kv, n_meta, 0, err);
}

int st_writer_put(st_writer *w, const void *data, size_t bytes, char *err) {
    if (bytes > w->want - w->done)
        return llm_errf(err, "%s: %llu bytes more than the header declares", w->path,
                        (unsigned long long)(bytes - (w->want - w->done)));
    if (bytes && fwrite(data, 1, bytes, w->f) != bytes)
        return llm_errf(err, "%s: write failed: %s", w->path, strerror(errno));
    w->done += bytes;
    return 0;
}

int st_writer_close(st_writer *w, char *err) {
    int rc = 0;
    if (w->done != w->want) {
        rc = llm_errf(err, "%s: %llu of %llu data bytes written", w->path,
                      (unsigned long long)w->done, (unsigned long long)w->want);
    } else {
        int ok = fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
        int saved_errno = errno;
        if (fclose(w->f) != 0 && ok) ok = 0, saved_errno = errno;
        w->f = NULL;
        if (ok && rename(w->tmp, w->path) != 0) ok = 0, saved_errno = errno;
        if (!ok) rc = llm_errf(err, "%s: write failed: %s", w->path, strerror(saved_errno));
    }
    if (rc) {
        st_writer_abort(w);
        return -1;
    }
    free(w->path);
    free(w->tmp);
    free(w);
    return 0;
}

int st_write_file(const char *path, const st_write_tensor *tensors, int n,
                  const char *const *meta_kv, int n_meta, char *err) {
    st_writer *w = writer_open(path, tensors, n, meta_kv, n_meta, 1, err);
    if (!w) return -1;
    for (int i = 0; i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (uint64_t)tensors[i].shape[d];
        if (st_writer_put(w, tensors[i].data, numel * dtype_size(tensors[i].dtype), err)) {
            st_writer_abort(w);
            return -1;
        }
    }
    return st_writer_close(w, err);
}
