// tok_load_parts.c - reads the normalizer, pre_tokenizer, post_processor and
// decoder sections of tokenizer.json into flat arrays of steps.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"
#include "util.h"

static const char *type_of(const cJSON *j) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int is_none(const cJSON *j) {
    return !j || cJSON_IsNull(j);
}

int tok_json_bool(const cJSON *j, const char *key, int def, const char *what, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsBool(v)) return llm_errf(err, "tokenizer.json: %s.%s is not a boolean", what, key);
    return cJSON_IsTrue(v);
}

// A string field, or NULL (with err) when absent or not a string.
static const char *get_str(const cJSON *j, const char *key, const char *what, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) {
        llm_errf(err, "tokenizer.json: %s needs a string \"%s\"", what, key);
        return NULL;
    }
    return v->valuestring;
}

static char *dup_str(const char *s, size_t *len, char *err) {
    *len = strlen(s);
    char *d = llm_malloc(*len + 1, err);
    if (d) memcpy(d, s, *len + 1);
    return d;
}

// The single code point of s, or -1 when s is not exactly one character.
static int64_t single_cp(const char *s) {
    size_t n = strlen(s);
    uint32_t cp;
    if (n == 0 || utf8_decode(s, n, &cp) != (int)n) return -1;
    return cp;
}

// A {"String": "..."} pattern; Regex patterns are refused (naming what uses them).
static const char *string_pattern(const cJSON *j, const char *what, char *err) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(pat, "String");
    if (cJSON_IsString(s)) return s->valuestring;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    if (cJSON_IsString(r))
        llm_errf(err, "tokenizer.json: %s with a Regex pattern (%s) is not supported", what,
                 r->valuestring);
    else
        llm_errf(err, "tokenizer.json: %s needs a pattern", what);
    return NULL;
}

// --- normalizers -----------------------------------------------------------

int tok_parse_normalizer(tokenizer *t, const cJSON *j, char *err) {
    if (is_none(j)) return 0;
    const char *type = type_of(j);
    if (!type) return llm_errf(err, "tokenizer.json: normalizer without a type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list))
            return llm_errf(err, "tokenizer.json: Sequence needs normalizers");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (tok_parse_normalizer(t, it, err) != 0) return -1;
        return 0;
    }
    if (t->n_norms == TOK_MAX_STEPS) return llm_errf(err, "tokenizer.json: too many normalizers");
    tok_norm *n = &t->norms[t->n_norms];
    memset(n, 0, sizeof *n);
    if (strcmp(type, "NFC") == 0) {
        n->kind = NORM_NFC;
    } else if (strcmp(type, "Prepend") == 0) {
        const char *s = get_str(j, "prepend", "Prepend normalizer", err);
        if (!s || !(n->a = dup_str(s, &n->a_len, err))) return -1;
        n->kind = NORM_PREPEND;
    } else if (strcmp(type, "Replace") == 0) {
        const char *pat = string_pattern(j, "Replace normalizer", err);
        const char *content = pat ? get_str(j, "content", "Replace normalizer", err) : NULL;
        if (!content) return -1;
        n->kind = NORM_REPLACE;
        if (!(n->a = dup_str(pat, &n->a_len, err))) return -1;
        if (!(n->b = dup_str(content, &n->b_len, err))) return -1;
    } else {
        return llm_errf(err, "tokenizer.json: normalizer type \"%s\" is not supported", type);
    }
    t->n_norms++;
    return 0;
}

// --- pre-tokenizers --------------------------------------------------------

static int parse_behavior(const cJSON *j, split_behavior *b, char *err) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    const char *s = get_str(j, "behavior", "Split pre-tokenizer", err);
    if (!s) return -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *b = (split_behavior)i;
            return 0;
        }
    return llm_errf(err, "tokenizer.json: unknown split behavior \"%s\"", s);
}

// Metaspace's prepend_scheme, or the legacy add_prefix_space.
static int parse_prepend_scheme(const cJSON *j, prepend_scheme *p, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "always") == 0)
            *p = PREPEND_ALWAYS;
        else if (strcmp(v->valuestring, "first") == 0)
            *p = PREPEND_FIRST;
        else if (strcmp(v->valuestring, "never") == 0)
            *p = PREPEND_NEVER;
        else
            return llm_errf(err, "tokenizer.json: unknown prepend_scheme \"%s\"", v->valuestring);
        return 0;
    }
    int add = tok_json_bool(j, "add_prefix_space", 1, "Metaspace", err);
    if (add < 0) return -1;
    *p = add ? PREPEND_ALWAYS : PREPEND_NEVER;
    return 0;
}

static int parse_metaspace_char(const cJSON *j, char repl[5], size_t *len, uint32_t *cp,
                                char *err) {
    const char *s = get_str(j, "replacement", "Metaspace", err);
    if (!s) return -1;
    int64_t c = single_cp(s);
    if (c < 0) return llm_errf(err, "tokenizer.json: Metaspace replacement must be one character");
    *len = strlen(s);
    memcpy(repl, s, *len + 1);
    *cp = (uint32_t)c;
    return 0;
}

int tok_parse_pre_tokenizer(tokenizer *t, const cJSON *j, char *err) {
    if (is_none(j)) return 0;
    const char *type = type_of(j);
    if (!type) return llm_errf(err, "tokenizer.json: pre_tokenizer without a type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(list))
            return llm_errf(err, "tokenizer.json: Sequence needs pretokenizers");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (tok_parse_pre_tokenizer(t, it, err) != 0) return -1;
        return 0;
    }
    if (t->n_pres == TOK_MAX_STEPS) return llm_errf(err, "tokenizer.json: too many pre-tokenizers");
    tok_pre *p = &t->pres[t->n_pres];
    memset(p, 0, sizeof *p);
    if (strcmp(type, "Split") == 0) {
        p->kind = PRE_SPLIT;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (cJSON_IsString(re)) {
            p->regex = regex_identify(re->valuestring);
            if (p->regex == REGEX_NONE)
                return llm_errf(err,
                                "tokenizer.json: Split regex %s is none of the known "
                                "pre-tokenizer regexes (GPT-2, Llama-3, Qwen2)",
                                re->valuestring);
        } else if (cJSON_IsString(lit)) {
            if (!(p->literal = dup_str(lit->valuestring, &p->literal_len, err))) return -1;
        } else {
            return llm_errf(err, "tokenizer.json: Split pre-tokenizer needs a pattern");
        }
        if (parse_behavior(j, &p->behavior, err) != 0) return -1;
        if ((p->invert = tok_json_bool(j, "invert", 0, "Split", err)) < 0) return -1;
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->kind = PRE_BYTELEVEL;
        if ((p->add_prefix_space = tok_json_bool(j, "add_prefix_space", 1, "ByteLevel", err)) < 0)
            return -1;
        int use_regex = tok_json_bool(j, "use_regex", 1, "ByteLevel", err);
        if (use_regex < 0) return -1;
        p->regex = use_regex ? REGEX_GPT2 : REGEX_NONE;
        p->behavior = SPLIT_ISOLATED;
    } else if (strcmp(type, "Digits") == 0) {
        p->kind = PRE_DIGITS;
        if ((p->individual_digits = tok_json_bool(j, "individual_digits", 0, "Digits", err)) < 0)
            return -1;
        p->behavior = p->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
    } else if (strcmp(type, "Metaspace") == 0) {
        p->kind = PRE_METASPACE;
        if (parse_metaspace_char(j, p->repl, &p->repl_len, &p->repl_cp, err) != 0) return -1;
        if (parse_prepend_scheme(j, &p->prepend, err) != 0) return -1;
        if ((p->split = tok_json_bool(j, "split", 1, "Metaspace", err)) < 0) return -1;
        p->behavior = SPLIT_MERGED_NEXT;
    } else {
        return llm_errf(err, "tokenizer.json: pre_tokenizer type \"%s\" is not supported", type);
    }
    t->n_pres++;
    return 0;
}

// --- decoders --------------------------------------------------------------

static int parse_count(const cJSON *j, const char *key, size_t *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e6 ||
        v->valuedouble != (double)(size_t)v->valuedouble)
        return llm_errf(err, "tokenizer.json: Strip.%s is not a small non-negative integer", key);
    *out = (size_t)v->valuedouble;
    return 0;
}

int tok_parse_decoder(tokenizer *t, const cJSON *j, char *err) {
    if (is_none(j)) return 0;
    const char *type = type_of(j);
    if (!type) return llm_errf(err, "tokenizer.json: decoder without a type");
    t->has_decoder = 1;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(list)) return llm_errf(err, "tokenizer.json: Sequence needs decoders");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (tok_parse_decoder(t, it, err) != 0) return -1;
        return 0;
    }
    if (t->n_decs == TOK_MAX_STEPS) return llm_errf(err, "tokenizer.json: too many decoders");
    tok_dec *d = &t->decs[t->n_decs];
    memset(d, 0, sizeof *d);
    if (strcmp(type, "ByteLevel") == 0) {
        d->kind = DEC_BYTELEVEL;
    } else if (strcmp(type, "ByteFallback") == 0) {
        d->kind = DEC_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        d->kind = DEC_FUSE;
    } else if (strcmp(type, "Replace") == 0) {
        const char *pat = string_pattern(j, "Replace decoder", err);
        const char *content = pat ? get_str(j, "content", "Replace decoder", err) : NULL;
        if (!content) return -1;
        d->kind = DEC_REPLACE;
        if (!(d->a = dup_str(pat, &d->a_len, err))) return -1;
        if (!(d->b = dup_str(content, &d->b_len, err))) return -1;
    } else if (strcmp(type, "Strip") == 0) {
        const char *content = get_str(j, "content", "Strip decoder", err);
        if (!content) return -1;
        int64_t cp = single_cp(content);
        if (cp < 0) return llm_errf(err, "tokenizer.json: Strip content must be one character");
        d->kind = DEC_STRIP;
        d->cp = (uint32_t)cp;
        if (parse_count(j, "start", &d->start, err) != 0) return -1;
        if (parse_count(j, "stop", &d->stop, err) != 0) return -1;
    } else if (strcmp(type, "Metaspace") == 0) {
        char repl[5];
        size_t len;
        prepend_scheme scheme;
        d->kind = DEC_METASPACE;
        if (parse_metaspace_char(j, repl, &len, &d->cp, err) != 0) return -1;
        if (parse_prepend_scheme(j, &scheme, err) != 0) return -1;
        d->prepend = scheme != PREPEND_NEVER;
    } else {
        return llm_errf(err, "tokenizer.json: decoder type \"%s\" is not supported", type);
    }
    t->n_decs++;
    return 0;
}

// --- post-processors -------------------------------------------------------

// Parses TemplateProcessing.single into ids and TEMPLATE_SEQ.
static int parse_template(const cJSON *j, int32_t **out, size_t *n_out, char *err) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsArray(single))
        return llm_errf(err, "tokenizer.json: TemplateProcessing needs a \"single\" list");
    size_t cap = 0, n = 0;
    int32_t *v = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *ids = NULL; // NULL: the text itself
        if (sp) {
            const char *name = get_str(sp, "id", "TemplateProcessing SpecialToken", err);
            if (!name) goto fail;
            const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name);
            ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
            if (!cJSON_IsArray(ids)) {
                llm_errf(err, "tokenizer.json: template special token \"%s\" has no ids", name);
                goto fail;
            }
        } else if (!seq) {
            llm_errf(err, "tokenizer.json: unknown TemplateProcessing piece");
            goto fail;
        }
        size_t k = ids ? (size_t)cJSON_GetArraySize(ids) : 1;
        if (n + k > cap) {
            cap = (n + k) * 2;
            int32_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                llm_errf(err, "out of memory");
                goto fail;
            }
            v = nv;
        }
        if (!ids) {
            v[n++] = TEMPLATE_SEQ;
            continue;
        }
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) {
            if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX ||
                id->valuedouble != (double)(int32_t)id->valuedouble) {
                llm_errf(err, "tokenizer.json: bad id in TemplateProcessing special_tokens");
                goto fail;
            }
            v[n++] = (int32_t)id->valuedouble;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
fail:
    free(v);
    return -1;
}

int tok_parse_post_processor(tokenizer *t, const cJSON *j, char *err) {
    if (is_none(j)) return 0;
    const char *type = type_of(j);
    if (!type) return llm_errf(err, "tokenizer.json: post_processor without a type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(list)) return llm_errf(err, "tokenizer.json: Sequence needs processors");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (tok_parse_post_processor(t, it, err) != 0) return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) return 0; // only moves offsets
    if (strcmp(type, "TemplateProcessing") != 0)
        return llm_errf(err, "tokenizer.json: post_processor type \"%s\" is not supported", type);
    int32_t *tmpl = NULL;
    size_t n = 0;
    if (parse_template(j, &tmpl, &n, err) != 0) return -1;
    if (!t->tmpl) {
        t->tmpl = tmpl;
        t->n_tmpl = n;
        return 0;
    }
    // A later template wraps the earlier one's output: substitute it for the text.
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += tmpl[i] == TEMPLATE_SEQ ? t->n_tmpl : 1;
    int32_t *v = llm_malloc((total ? total : 1) * sizeof *v, err);
    if (!v) {
        free(tmpl);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (tmpl[i] != TEMPLATE_SEQ)
            v[k++] = tmpl[i];
        else
            for (size_t m = 0; m < t->n_tmpl; m++) v[k++] = t->tmpl[m];
    }
    free(tmpl);
    free(t->tmpl);
    t->tmpl = v;
    t->n_tmpl = total;
    return 0;
}
