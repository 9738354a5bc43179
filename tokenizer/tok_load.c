// tok_load.c - reads tokenizer.json: the BPE model, added tokens, and the
// pipeline parts (through tok_load_parts.c); frees a tokenizer; id lookups.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"
#include "unicode.h"
#include "util.h"

// Token ids above this are refused: no real vocabulary comes close, and the
// id tables are sized by the largest id.
#define TOK_MAX_ID (1 << 24)

// --- byte-level alphabet (GPT-2's bytes_to_unicode) -------------------------

// Printable Latin-1 bytes stand for themselves; the other 68 (0x00-0x20,
// 0x7F-0xA0 and 0xAD), in order, for U+0100 to U+0143.
uint32_t byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0) return 0x100 + 33 + (b - 0x7F);
    if (b == 0xAD) return 0x100 + 67;
    return b;
}

int cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return cp > 0x20 && (cp < 0x7F || cp > 0xA0) && cp != 0xAD ? (int)cp : -1;
    if (cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp < 0x100 + 67) return (int)(cp - 0x100 - 33 + 0x7F);
    return cp == 0x100 + 67 ? 0xAD : -1;
}

// Converts token text to the model's byte space: unchanged for character
// BPE; for byte-level BPE each character back to its byte. Returns 0, 1 when
// the text has a character outside the byte-level alphabet (no word can
// ever equal it), -1 when out of memory.
static int model_key(const tokenizer *t, const char *s, size_t n, tok_buf *out) {
    out->len = 0;
    if (!t->byte_level) return tok_buf_put(out, s, n);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int r = utf8_decode(s + i, n - i, &cp);
        if (r < 0) return 1;
        int b = cp_to_byte(cp);
        if (b < 0) return 1;
        char c = (char)b;
        if (tok_buf_put(out, &c, 1) != 0) return -1;
        i += (size_t)r;
    }
    return 0;
}

static int get_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= TOK_MAX_ID ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return -1;
    *id = (int32_t)v->valuedouble;
    return 0;
}

// --- the BPE model -----------------------------------------------------------

// The optional string option key of the model, in model byte space, into
// store ("" counts as none: store stays empty).
static int model_opt_str(const tokenizer *t, const cJSON *model, const char *key, tok_buf *store,
                         char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return llm_errf(err, "tokenizer.json: model.%s is not a string", key);
    if (!v->valuestring[0]) return 0;
    int r = model_key(t, v->valuestring, strlen(v->valuestring), store);
    if (r < 0) return llm_errf(err, "out of memory");
    if (r > 0)
        return llm_errf(err, "tokenizer.json: model.%s is not in the byte-level alphabet", key);
    return 0;
}

static int load_vocab(tokenizer *t, const cJSON *vocab, size_t *max_id, char *err) {
    size_t total = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) total += strlen(it->string) + 1;
    // The arena holds each token's text, then (byte-level) its byte form.
    t->arena = llm_malloc(total * (t->byte_level ? 2 : 1) + 1, err);
    if (!t->arena) return -1;
    char *p = t->arena;
    *max_id = 0;
    tok_buf key = {0};
    int rc = -1;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id;
        if (get_id(it, &id) != 0) {
            llm_errf(err, "tokenizer.json: vocab entry \"%s\" has a bad id", it->string);
            goto done;
        }
        if ((size_t)id + 1 > *max_id) *max_id = (size_t)id + 1;
    }
    if (!(t->id_str = llm_calloc(*max_id ? *max_id : 1, sizeof *t->id_str, err))) goto done;
    if (!(t->id_len = llm_calloc(*max_id ? *max_id : 1, sizeof *t->id_len, err))) goto done;
    t->n_ids = *max_id;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        size_t len = strlen(it->string);
        memcpy(p, it->string, len + 1);
        t->id_str[id] = p;
        t->id_len[id] = (uint32_t)len;
        p += len + 1;
        int r = model_key(t, it->string, len, &key);
        if (r < 0) goto oom;
        if (r > 0) continue; // unreachable by BPE
        const char *k = t->id_str[id];
        if (t->byte_level) {
            if (key.len) memcpy(p, key.p, key.len);
            k = p;
            p += key.len;
        }
        if (strmap_put(&t->bpe.vocab, k, key.len, id) != 0) goto oom;
    }
    rc = 0;
    goto done;
oom:
    llm_errf(err, "out of memory");
done:
    tok_buf_free(&key);
    return rc;
}

// Reads one merge: "a b" or ["a", "b"].
static int merge_parts(const cJSON *m, const char **a, size_t *a_len, const char **b,
                       size_t *b_len) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp) return -1;
        *a = s;
        *a_len = (size_t)(sp - s);
        *b = sp + 1;
        *b_len = strlen(sp + 1);
        return 0;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2) {
        const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
        if (!cJSON_IsString(x) || !cJSON_IsString(y)) return -1;
        *a = x->valuestring;
        *a_len = strlen(*a);
        *b = y->valuestring;
        *b_len = strlen(*b);
        return 0;
    }
    return -1;
}

static int load_merges(tokenizer *t, const cJSON *merges, char *err) {
    tok_buf key = {0}, joined = {0};
    int rc = -1;
    uint32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a, *b;
        size_t a_len, b_len;
        if (merge_parts(m, &a, &a_len, &b, &b_len) != 0) {
            llm_errf(err, "tokenizer.json: merge %u is neither \"a b\" nor [\"a\", \"b\"]", rank);
            goto done;
        }
        // The merged token: a + b without b's continuing_subword_prefix.
        size_t skip = t->bpe.prefix ? t->bpe.prefix_len : 0;
        if (skip > b_len) skip = b_len;
        joined.len = 0;
        if (tok_buf_put(&joined, a, a_len) != 0 ||
            tok_buf_put(&joined, b + skip, b_len - skip) != 0)
            goto oom;
        int32_t ids[3];
        const char *parts[3] = {a, b, joined.p};
        size_t lens[3] = {a_len, b_len, joined.len};
        for (int i = 0; i < 3; i++) {
            int r = model_key(t, parts[i], lens[i], &key);
            if (r < 0) goto oom;
            ids[i] = r ? -1 : strmap_get(&t->bpe.vocab, key.p, key.len);
            if (ids[i] < 0) {
                llm_errf(err, "tokenizer.json: merge %u uses \"%.*s\", which is not in the vocab",
                         rank, (int)lens[i], parts[i]);
                goto done;
            }
        }
        if (pairmap_put(&t->bpe.merges, ids[0], ids[1], rank, ids[2]) != 0) goto oom;
        rank++;
    }
    rc = 0;
    goto done;
oom:
    llm_errf(err, "out of memory");
done:
    tok_buf_free(&key);
    tok_buf_free(&joined);
    return rc;
}

static int load_model(tokenizer *t, const cJSON *model, char *err) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "BPE") != 0)
        return llm_errf(err, "tokenizer.json: model type \"%s\" is not supported (only BPE)",
                        type->valuestring);
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return llm_errf(err, "tokenizer.json: the BPE model needs a vocab object and merges");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return llm_errf(err, "tokenizer.json: BPE dropout is not supported");

    bpe_model *m = &t->bpe;
    m->byte_symbols = t->byte_level;
    if ((m->fuse_unk = tok_json_bool(model, "fuse_unk", 0, "model", err)) < 0) return -1;
    if ((m->byte_fallback = tok_json_bool(model, "byte_fallback", 0, "model", err)) < 0) return -1;
    if ((m->ignore_merges = tok_json_bool(model, "ignore_merges", 0, "model", err)) < 0) return -1;
    if (m->byte_fallback && t->byte_level)
        return llm_errf(err, "tokenizer.json: byte_fallback with a ByteLevel pre-tokenizer "
                             "is not supported");
    if (model_opt_str(t, model, "continuing_subword_prefix", &t->affix[0], err) != 0 ||
        model_opt_str(t, model, "end_of_word_suffix", &t->affix[1], err) != 0)
        return -1;
    if (t->affix[0].len) {
        m->prefix = t->affix[0].p;
        m->prefix_len = t->affix[0].len;
    }
    if (t->affix[1].len) {
        m->suffix = t->affix[1].p;
        m->suffix_len = t->affix[1].len;
    }

    size_t max_id;
    if (load_vocab(t, vocab, &max_id, err) != 0) return -1;
    if (load_merges(t, merges, err) != 0) return -1;

    m->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) {
        tok_buf k = {0};
        int r = model_key(t, unk->valuestring, strlen(unk->valuestring), &k);
        m->unk_id = r == 0 ? strmap_get(&m->vocab, k.p, k.len) : -1;
        tok_buf_free(&k);
        if (r < 0) return llm_errf(err, "out of memory");
        if (m->unk_id < 0)
            return llm_errf(err, "tokenizer.json: unk_token \"%s\" is not in the vocab",
                            unk->valuestring);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->byte_ids[b] = t->byte_level ? -1 : strmap_get(&m->vocab, name, strlen(name));
    }
    return 0;
}

// --- added tokens --------------------------------------------------------------

// The vocabulary id of token text s, or -1.
static int32_t vocab_id(const tokenizer *t, const char *s, size_t n, tok_buf *key) {
    int r = model_key(t, s, n, key);
    if (r < 0) return -2;
    if (r == 0) return strmap_get(&t->bpe.vocab, key->p ? key->p : "", key->len);
    for (size_t id = 0; id < t->n_ids; id++) // outside the byte-level alphabet
        if (t->id_str[id] && t->id_len[id] == n && memcmp(t->id_str[id], s, n) == 0)
            return (int32_t)id;
    return -1;
}

static int load_one_added(tokenizer *t, const cJSON *it, tok_added *a, tok_buf *key, char *err) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
    if (!cJSON_IsString(content) || get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &a->id))
        return llm_errf(err, "tokenizer.json: added token %zu needs a content and an id",
                        t->n_added);
    a->len = strlen(content->valuestring);
    // As in HF, a token the vocabulary has keeps its vocabulary id.
    int32_t vid = vocab_id(t, content->valuestring, a->len, key);
    if (vid == -2) return llm_errf(err, "out of memory");
    if (vid >= 0) a->id = vid;
    if (!(a->content = llm_malloc(a->len + 1, err))) return -1;
    memcpy(a->content, content->valuestring, a->len + 1);
    int special = tok_json_bool(it, "special", 0, "added token", err);
    if (special < 0) return -1;
    a->special = special;
    if ((a->single_word = tok_json_bool(it, "single_word", 0, "added token", err)) < 0 ||
        (a->lstrip = tok_json_bool(it, "lstrip", 0, "added token", err)) < 0 ||
        (a->rstrip = tok_json_bool(it, "rstrip", 0, "added token", err)) < 0 ||
        (a->normalized = tok_json_bool(it, "normalized", !special, "added token", err)) < 0)
        return -1;
    return 0;
}

static int load_added(tokenizer *t, const cJSON *list, char *err) {
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return llm_errf(err, "tokenizer.json: added_tokens is not a list");
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (!(t->added = llm_calloc(n ? n : 1, sizeof *t->added, err))) return -1;
    tok_buf key = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (cJSON_IsString(content) && !content->valuestring[0]) continue; // HF ignores these
        tok_added *a = &t->added[t->n_added++]; // counted now so that tok_free frees it
        if (load_one_added(t, it, a, &key, err) != 0) {
            tok_buf_free(&key);
            return -1;
        }
    }
    tok_buf_free(&key);
    return 0;
}

// Builds the two tries (special tokens first, as HF orders them) and the
// content -> id map.
static int index_added(tokenizer *t, char *err) {
    tok_buf norm = {0}, tmp = {0};
    int rc = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->n_added; i++) {
            tok_added *a = &t->added[i];
            if (a->special != (pass == 0)) continue;
            if (strmap_get(&t->added_map, a->content, a->len) < 0 &&
                strmap_put(&t->added_map, a->content, a->len, a->id) != 0)
                goto oom;
            const char *s = a->content;
            size_t len = a->len;
            tok_trie *tr = &t->trie_raw;
            if (a->normalized) {
                if (tok_normalize(t, a->content, a->len, &norm, &tmp, &s, &len) != 0) goto oom;
                tr = &t->trie_norm;
            }
            if (len && trie_add(tr, s, len, (int32_t)i) != 0) goto oom;
        }
    }
    rc = 0;
    goto done;
oom:
    llm_errf(err, "out of memory");
done:
    tok_buf_free(&norm);
    tok_buf_free(&tmp);
    return rc;
}

// Fills the id -> string table with added tokens and marks special ids.
static int index_ids(tokenizer *t, char *err) {
    size_t n = t->n_ids;
    for (size_t i = 0; i < t->n_added; i++)
        if ((size_t)t->added[i].id + 1 > n) n = (size_t)t->added[i].id + 1;
    if (n > t->n_ids) {
        char **s = realloc(t->id_str, n * sizeof *s);
        if (s) t->id_str = s;
        uint32_t *l = s ? realloc(t->id_len, n * sizeof *l) : NULL;
        if (l) t->id_len = l;
        if (!s || !l) return llm_errf(err, "out of memory");
        memset(t->id_str + t->n_ids, 0, (n - t->n_ids) * sizeof *s);
        memset(t->id_len + t->n_ids, 0, (n - t->n_ids) * sizeof *l);
        t->n_ids = n;
    }
    if (!(t->id_special = llm_calloc(n ? n : 1, 1, err))) return -1;
    strmap special = {0};
    for (size_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        t->id_str[a->id] = a->content;
        t->id_len[a->id] = (uint32_t)a->len;
        if (a->special && strmap_put(&special, a->content, a->len, 1) != 0) {
            strmap_free(&special);
            return llm_errf(err, "out of memory");
        }
    }
    // HF skips by content: any id whose token text is a special token's.
    for (size_t id = 0; special.count && id < n; id++)
        if (t->id_str[id] && strmap_get(&special, t->id_str[id], t->id_len[id]) >= 0)
            t->id_special[id] = 1;
    strmap_free(&special);
    return 0;
}

// Whether words may be cut before U+2581 (see tokenizer.split_at_metaspace):
// character BPE without affixes or ignore_merges (which see whole words),
// U+2581 a token of its own, and no token holding it after another character.
static int metaspace_splits_safely(const tokenizer *t) {
    static const char ms[] = "\xE2\x96\x81";
    const bpe_model *m = &t->bpe;
    if (t->byte_level || m->prefix || m->suffix || m->ignore_merges ||
        strmap_get(&m->vocab, ms, 3) < 0)
        return 0;
    for (size_t id = 0; id < t->n_ids; id++) {
        const char *s = t->id_str[id];
        size_t n = t->id_len[id];
        for (size_t i = 1; s && i + 3 <= n; i++)
            if (memcmp(s + i, ms, 3) == 0 && (i < 3 || memcmp(s + i - 3, ms, 3) != 0)) return 0;
    }
    return 1;
}

// --- public --------------------------------------------------------------------

static int parse_all(tokenizer *t, const cJSON *root, char *err) {
    if (!cJSON_IsObject(root)) return llm_errf(err, "tokenizer.json: not a JSON object");
    // The pre-tokenizer decides the model's byte space, so it comes first.
    if (tok_parse_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), err))
        return -1;
    for (size_t i = 0; i < t->n_pres; i++) {
        if (t->pres[i].kind != PRE_BYTELEVEL) continue;
        if (i + 1 != t->n_pres)
            return llm_errf(err, "tokenizer.json: a ByteLevel pre-tokenizer that is not the "
                                 "last one is not supported");
        t->byte_level = 1;
    }
    if (tok_parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err) ||
        tok_parse_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), err) ||
        tok_parse_post_processor(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err))
        return -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return llm_errf(err, "tokenizer.json: no model");
    if (load_model(t, model, err) != 0) return -1;
    if (load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), err) != 0) return -1;
    if (index_added(t, err) != 0) return -1;
    if (index_ids(t, err) != 0) return -1;
    t->split_at_metaspace = metaspace_splits_safely(t);
    return 0;
}

tokenizer *tok_load(const char *path, char *err) {
    struct stat st;
    char *file = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        file = llm_path_join(path, "tokenizer.json");
    else {
        size_t n = strlen(path);
        if ((file = malloc(n + 1))) memcpy(file, path, n + 1);
    }
    if (!file) {
        llm_errf(err, "out of memory");
        return NULL;
    }
    size_t len;
    char *text = llm_read_file(file, &len, err);
    free(file);
    if (!text) return NULL;
    if (!utf8_valid(text, len)) {
        free(text);
        llm_errf(err, "%s: tokenizer.json is not valid UTF-8", path);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) {
        llm_errf(err, "%s: tokenizer.json is not valid JSON", path);
        return NULL;
    }
    tokenizer *t = llm_calloc(1, sizeof *t, err);
    if (t && parse_all(t, root, err) != 0) {
        tok_free(t);
        t = NULL;
        // Name the file the message is about.
        static const char generic[] = "tokenizer.json: ";
        if (err && strncmp(err, generic, sizeof generic - 1) == 0) {
            char msg[LLM_ERR_LEN];
            snprintf(msg, sizeof msg, "%s", err + sizeof generic - 1);
            llm_errf(err, "%s: %s", path, msg);
        }
    }
    cJSON_Delete(root);
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].a);
        free(t->norms[i].b);
    }
    for (size_t i = 0; i < t->n_pres; i++) free(t->pres[i].literal);
    for (size_t i = 0; i < t->n_decs; i++) {
        free(t->decs[i].a);
        free(t->decs[i].b);
    }
    free(t->tmpl);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    strmap_free(&t->added_map);
    free(t->id_str);
    free(t->id_len);
    free(t->id_special);
    free(t->arena);
    tok_buf_free(&t->affix[0]);
    tok_buf_free(&t->affix[1]);
    free(t);
}

size_t tok_vocab_size(const tokenizer *t) {
    return t->n_ids;
}

const char *tok_id_to_token(const tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ids ? t->id_str[id] : NULL;
}

int tok_is_special(const tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ids && t->id_special[id];
}

int32_t tok_token_to_id(const tokenizer *t, const char *s) {
    size_t n = strlen(s);
    int32_t id = strmap_get(&t->added_map, s, n);
    if (id >= 0) return id;
    for (size_t i = 0; i < t->n_ids; i++)
        if (t->id_str[i] && t->id_len[i] == n && memcmp(t->id_str[i], s, n) == 0) return (int32_t)i;
    return -1;
}
