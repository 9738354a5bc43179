// tok_decode.c - token ids to text: the decoder chain (ByteLevel, Replace,
// ByteFallback, Fuse, Strip, Metaspace) over the list of token strings, as
// the reference runs it, then the strings joined.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"
#include "util.h"

// A list of strings stored back to back in one buffer.
typedef struct {
    tok_buf buf;
    size_t *off; // [n + 1] start offsets; off[n] == buf.len
    size_t n, cap;
} strlist;

static int list_begin(strlist *l) {
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *off = realloc(l->off, cap * sizeof *off);
        if (!off) return -1;
        l->off = off;
        l->cap = cap;
    }
    l->off[l->n] = l->buf.len; // the item being written starts here
    return 0;
}

static void list_end(strlist *l) {
    l->off[++l->n] = l->buf.len;
}

static int list_push(strlist *l, const char *s, size_t n) {
    if (list_begin(l) != 0 || tok_buf_put(&l->buf, s, n) != 0) return -1;
    list_end(l);
    return 0;
}

static void list_clear(strlist *l) {
    l->n = 0;
    l->buf.len = 0;
    if (l->off) l->off[0] = 0;
}

static void list_free(strlist *l) {
    tok_buf_free(&l->buf);
    free(l->off);
}

#define ITEM(l, i) ((l)->buf.p + (l)->off[i])
#define ITEM_LEN(l, i) ((l)->off[(i) + 1] - (l)->off[i])

// The byte of a <0xNN> token (Rust's u8::from_str_radix on the two
// characters, so "+A" counts too), or -1.
static int fallback_byte(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0 && !(i == 3 && c == '+')) return -1;
        if (d >= 0) v = v * 16 + d;
    }
    return v;
}

static int dec_bytelevel(strlist *in, strlist *out, tok_buf *tmp, int *pending) {
    tmp->len = 0;
    if (tok_buf_reserve(tmp, 0) != 0) return -1;
    for (size_t i = 0; i < in->n; i++) {
        const char *s = ITEM(in, i);
        size_t n = ITEM_LEN(in, i), start = tmp->len, k = 0;
        while (k < n) {
            uint32_t cp;
            int r = utf8_decode(s + k, n - k, &cp);
            int b = r > 0 ? cp_to_byte(cp) : -1;
            if (b < 0) break;
            char c = (char)b;
            if (tok_buf_put(tmp, &c, 1) != 0) return -1;
            k += (size_t)r;
        }
        if (k < n) { // a character outside the alphabet: the token's own bytes
            tmp->len = start;
            if (tok_buf_put(tmp, s, n) != 0) return -1;
        }
    }
    *pending = utf8_incomplete_tail(tmp->p, tmp->len) > 0;
    if (list_begin(out) != 0 || utf8_lossy(tmp->p, tmp->len, &out->buf) != 0) return -1;
    list_end(out);
    return 0;
}

// A run of byte tokens becomes its text when valid UTF-8, else one U+FFFD per byte.
static int flush_bytes(strlist *out, tok_buf *run) {
    if (!run->len) return 0;
    if (utf8_valid(run->p, run->len)) {
        if (list_push(out, run->p, run->len) != 0) return -1;
    } else {
        for (size_t i = 0; i < run->len; i++)
            if (list_push(out, "\xEF\xBF\xBD", 3) != 0) return -1;
    }
    run->len = 0;
    return 0;
}

static int dec_bytefallback(strlist *in, strlist *out, tok_buf *run, int *pending) {
    run->len = 0;
    *pending = 0;
    for (size_t i = 0; i < in->n; i++) {
        int b = fallback_byte(ITEM(in, i), ITEM_LEN(in, i));
        *pending = b >= 0;
        if (b >= 0) {
            char c = (char)b;
            if (tok_buf_put(run, &c, 1) != 0) return -1;
            continue;
        }
        if (flush_bytes(out, run) != 0 || list_push(out, ITEM(in, i), ITEM_LEN(in, i)) != 0)
            return -1;
    }
    return flush_bytes(out, run);
}

static int dec_replace(const tok_dec *d, strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = ITEM(in, i);
        size_t n = ITEM_LEN(in, i), run = 0, k = 0;
        if (list_begin(out) != 0) return -1;
        while (d->a_len && k + d->a_len <= n) {
            if (memcmp(s + k, d->a, d->a_len) != 0) {
                k++;
                continue;
            }
            if (tok_buf_put(&out->buf, s + run, k - run) != 0 ||
                tok_buf_put(&out->buf, d->b, d->b_len) != 0)
                return -1;
            k += d->a_len;
            run = k;
        }
        if (tok_buf_put(&out->buf, s + run, n - run) != 0) return -1;
        list_end(out);
    }
    return 0;
}

static int dec_strip(const tok_dec *d, strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = ITEM(in, i);
        size_t n = ITEM_LEN(in, i), a = 0, z = n;
        for (size_t k = 0; k < d->start && a < n; k++) {
            uint32_t cp;
            int r = utf8_next(s + a, n - a, &cp);
            if (cp != d->cp) break;
            a += (size_t)r;
        }
        for (size_t k = 0; k < d->stop && z > a; k++) {
            size_t p = z - 1;
            while (p > a && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
            uint32_t cp;
            utf8_next(s + p, z - p, &cp);
            if (cp != d->cp) break;
            z = p;
        }
        if (list_push(out, s + a, z - a) != 0) return -1;
    }
    return 0;
}

static int dec_metaspace(const tok_dec *d, strlist *in, strlist *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *s = ITEM(in, i);
        size_t n = ITEM_LEN(in, i), run = 0, k = 0;
        if (list_begin(out) != 0) return -1;
        while (k < n) {
            uint32_t cp;
            size_t r = (size_t)utf8_next(s + k, n - k, &cp);
            if (cp == d->cp) {
                if (tok_buf_put(&out->buf, s + run, k - run) != 0) return -1;
                if (!(i == 0 && d->prepend) && tok_buf_put(&out->buf, " ", 1) != 0) return -1;
                run = k + r;
            }
            k += r;
        }
        if (tok_buf_put(&out->buf, s + run, n - run) != 0) return -1;
        list_end(out);
    }
    return 0;
}

static int dec_fuse(strlist *in, strlist *out) {
    return list_push(out, in->buf.p ? in->buf.p : "", in->buf.len);
}

int tok_decode_skips(const tokenizer *t, int32_t id, int skip_special) {
    if (id < 0 || (size_t)id >= t->n_ids || !t->id_str[id]) return 1;
    return skip_special && t->id_special[id];
}

int tok_decode_into(const tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                    tok_buf *out, int *pending) {
    strlist a = {0}, b = {0};
    tok_buf tmp = {0};
    int rc = -1;
    *pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok_decode_skips(t, ids[i], skip_special)) continue;
        if (list_push(&a, t->id_str[ids[i]], t->id_len[ids[i]]) != 0) goto done;
    }
    for (size_t s = 0; s < t->n_decs; s++) {
        const tok_dec *d = &t->decs[s];
        int r = 0, p = 0;
        list_clear(&b);
        switch (d->kind) {
        case DEC_BYTELEVEL:
            r = dec_bytelevel(&a, &b, &tmp, &p);
            break;
        case DEC_BYTEFALLBACK:
            r = dec_bytefallback(&a, &b, &tmp, &p);
            break;
        case DEC_REPLACE:
            r = dec_replace(d, &a, &b);
            break;
        case DEC_STRIP:
            r = dec_strip(d, &a, &b);
            break;
        case DEC_METASPACE:
            r = dec_metaspace(d, &a, &b);
            break;
        case DEC_FUSE:
            r = dec_fuse(&a, &b);
            break;
        }
        if (r != 0) goto done;
        *pending |= p;
        strlist swap = a;
        a = b;
        b = swap;
    }
    out->len = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (!t->has_decoder && i > 0 && tok_buf_put(out, " ", 1) != 0) goto done;
        if (tok_buf_put(out, ITEM(&a, i), ITEM_LEN(&a, i)) != 0) goto done;
    }
    rc = tok_buf_put(out, "", 0);
done:
    list_free(&a);
    list_free(&b);
    tok_buf_free(&tmp);
    return rc;
}

char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, int skip_special, size_t *len,
                 char *err) {
    tok_buf out = {0};
    int pending;
    if (tok_decode_into(t, ids, n, skip_special, &out, &pending) != 0) {
        tok_buf_free(&out);
        llm_errf(err, "tok_decode: out of memory");
        return NULL;
    }
    if (len) *len = out.len;
    char *s = tok_buf_take(&out);
    if (!s) llm_errf(err, "tok_decode: out of memory");
    return s;
}
