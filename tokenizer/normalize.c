// normalize.c - the normalizers: NFC, Prepend, Replace (string patterns).
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

static void buf_swap(tok_buf *a, tok_buf *b) {
    tok_buf t = *a;
    *a = *b;
    *b = t;
}

// Writes s[0..n) with every non-overlapping pat (left to right) replaced by
// rep into out.
static int replace_all(const char *s, size_t n, const char *pat, size_t pat_len, const char *rep,
                       size_t rep_len, tok_buf *out) {
    out->len = 0;
    size_t i = 0, run = 0;
    while (i + pat_len <= n) {
        if (memcmp(s + i, pat, pat_len) != 0) {
            i++;
            continue;
        }
        if (tok_buf_put(out, s + run, i - run) != 0 || tok_buf_put(out, rep, rep_len) != 0)
            return -1;
        i += pat_len;
        run = i;
    }
    return tok_buf_put(out, s + run, n - run);
}

int tok_normalize(const tokenizer *t, const char *s, size_t n, tok_buf *out, tok_buf *tmp,
                  const char **res, size_t *res_len) {
    const char *cur = s; // the text so far: s itself, or out's bytes
    size_t len = n;
    for (size_t i = 0; i < t->n_norms; i++) {
        const tok_norm *nm = &t->norms[i];
        switch (nm->kind) {
        case NORM_NFC: {
            int r = uni_nfc(cur, len, tmp);
            if (r < 0) return -1;
            if (r == 0) continue;
            break;
        }
        case NORM_PREPEND:
            if (len == 0) continue;
            tmp->len = 0;
            if (tok_buf_put(tmp, nm->a, nm->a_len) != 0 || tok_buf_put(tmp, cur, len) != 0)
                return -1;
            break;
        case NORM_REPLACE:
            if (nm->a_len == 0 || len < nm->a_len) continue;
            if (replace_all(cur, len, nm->a, nm->a_len, nm->b, nm->b_len, tmp) != 0) return -1;
            break;
        }
        buf_swap(out, tmp);
        cur = out->p;
        len = out->len;
    }
    *res = cur;
    *res_len = len;
    return 0;
}
