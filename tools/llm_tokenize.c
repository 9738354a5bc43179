// llm_tokenize - encode, decode, render chat templates, and benchmark a
// model's tokenizer from the command line.
//
//   llm_tokenize --model DIR < text            ids on one line
//   llm_tokenize --model DIR --decode < ids    the text
//   llm_tokenize --model DIR --json            per stdin line (a JSON string):
//                                              a JSON array of ids
//   llm_tokenize --model DIR --decode --json   per line (a JSON array of ids):
//                                              the text as a JSON string
//   llm_tokenize --model DIR --chat < msgs     the rendered chat template
//   llm_tokenize --model DIR --bench FILE      encode/decode throughput
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "tokenizer.h"
#include "util.h"

// Shortest time a benchmark measures for, for stable figures.
#define BENCH_MIN_SECONDS 1.0

static void usage(FILE *f) {
    fprintf(f, "usage: llm_tokenize --model PATH [options]\n"
               "  PATH is a model directory (with tokenizer.json) or a tokenizer.json file.\n"
               "  Reads stdin; by default prints the token ids of all of it on one line.\n"
               "  --no-special            no post-processor template (add_special_tokens=false)\n"
               "  --decode                read token ids, print the text\n"
               "  --skip-special          with --decode: drop special tokens\n"
               "  --stream                with --decode: decode through the streaming detokenizer\n"
               "                          (with --json: print the list of emitted pieces)\n"
               "  --json                  one input per line: JSON strings to encode, or JSON\n"
               "                          arrays of ids to decode; one JSON result per line\n"
               "  --chat                  read a JSON array of messages (or {\"messages\": [...],\n"
               "                          \"tools\": [...]}), print the rendered chat template\n"
               "  --no-generation-prompt  with --chat: add_generation_prompt=false\n"
               "  --bench FILE            print encode and decode throughput on FILE\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        if (r == 0) break;
        n += r;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
}

// Parses whitespace-separated ids. Returns the count, -1 on a bad token.
static long parse_ids(char *text, int32_t **ids) {
    size_t n = 0, cap = 64;
    int32_t *v = malloc(cap * sizeof *v);
    char *save = NULL;
    for (char *tok = strtok_r(text, " \t\r\n,", &save); v && tok;
         tok = strtok_r(NULL, " \t\r\n,", &save)) {
        char *end;
        long x = strtol(tok, &end, 10);
        if (*end || x < INT32_MIN || x > INT32_MAX) {
            free(v);
            return -1;
        }
        if (n == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) free(v);
            v = nv;
            if (!v) break;
        }
        v[n++] = (int32_t)x;
    }
    *ids = v;
    return v ? (long)n : -1;
}

// Reads the JSON string literal at s (after optional spaces) into a heap
// buffer, keeping embedded NULs (cJSON strings stop at them). Returns NULL
// when s is not a JSON string.
static char *json_string_read(const char *s, size_t *len) {
    while (*s == ' ' || *s == '\t') s++;
    if (*s++ != '"') return NULL;
    char *out = malloc(strlen(s) + 1), *o = out; // escapes never grow the text
    if (!out) return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*s++;
        if (c == '"') break;
        if (c == 0 || c < 0x20) goto bad;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        char e = *s++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u') goto bad;
        unsigned cp = 0;
        for (int k = 0; k < 4; k++, s++) {
            char h = *s;
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0) goto bad;
            cp = cp * 16 + (unsigned)d;
        }
        if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u') {
            unsigned lo = (unsigned)strtoul((char[5]){s[2], s[3], s[4], s[5], 0}, NULL, 16);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; // a lone surrogate
        if (cp < 0x80)
            *o++ = (char)cp;
        else if (cp < 0x800) {
            *o++ = (char)(0xC0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | cp >> 12);
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | cp >> 18);
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *o = 0;
    *len = (size_t)(o - out);
    return out;
bad:
    free(out);
    return NULL;
}

// Prints s[0..n) as a JSON string literal (control characters and NULs escaped).
static void json_string_print(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

// Decodes ids through a stream and returns the concatenation of the pieces
// (*len gets its length). With print_pieces, prints them as a JSON array of
// strings on one line.
static char *stream_decode(const tokenizer *t, const int32_t *ids, size_t n, int skip,
                           int print_pieces, size_t *len, char *err) {
    tok_stream *s = tok_stream_create(t, skip, err);
    if (!s) return NULL;
    size_t cap = 256, count = 0;
    char *all = malloc(cap);
    *len = 0;
    if (print_pieces) putchar('[');
    for (size_t i = 0; all && i <= n; i++) {
        size_t k;
        const char *p = i < n ? tok_stream_push(s, ids[i], &k, err) : tok_stream_flush(s, &k, err);
        char *grown = all;
        while (p && grown && *len + k + 1 > cap) grown = realloc(all, cap *= 2);
        if (!p || !grown) {
            free(all);
            all = NULL;
            break;
        }
        all = grown;
        memcpy(all + *len, p, k);
        *len += k;
        all[*len] = 0;
        if (print_pieces && k) {
            if (count++) putchar(',');
            json_string_print(p, k);
        }
    }
    if (print_pieces) puts("]");
    if (!all && !err[0]) llm_errf(err, "out of memory");
    tok_stream_destroy(s);
    return all;
}

// One --json line: encode a JSON string, or decode a JSON array of ids.
static int json_line(const tokenizer *t, const char *line, int decode, int add_special, int skip,
                     int stream, char *err) {
    if (!decode) {
        size_t n, n_ids;
        char *text = json_string_read(line, &n);
        int32_t *ids;
        if (!text)
            return llm_errf(err, "--json: expected a JSON string per line, got: %.80s", line);
        int rc = tok_encode(t, text, n, add_special, &ids, &n_ids, err);
        free(text);
        if (rc != 0) return -1;
        putchar('[');
        for (size_t i = 0; i < n_ids; i++) printf(i ? ",%d" : "%d", ids[i]);
        puts("]");
        free(ids);
        return 0;
    }
    cJSON *in = cJSON_Parse(line);
    if (!cJSON_IsArray(in)) {
        cJSON_Delete(in);
        return llm_errf(err, "--json: expected a JSON array of ids per line, got: %.80s", line);
    }
    size_t n = (size_t)cJSON_GetArraySize(in), k = 0, len = 0;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        cJSON_Delete(in);
        return llm_errf(err, "out of memory");
    }
    int bad = 0;
    for (const cJSON *it = in->child; it; it = it->next) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : 0.5;
        bad |= v < INT32_MIN || v > INT32_MAX || v != (double)(int32_t)v;
        ids[k++] = bad ? 0 : (int32_t)v;
    }
    cJSON_Delete(in);
    if (bad) {
        free(ids);
        return llm_errf(err, "--json: token ids must be integers: %.80s", line);
    }
    char *text;
    if (stream) {
        text = stream_decode(t, ids, n, skip, 1, &len, err);
    } else {
        text = tok_decode(t, ids, n, skip, &len, err);
        if (text) {
            json_string_print(text, len);
            putchar('\n');
        }
    }
    free(ids);
    free(text);
    return text ? 0 : -1;
}

static int run_json(const tokenizer *t, char *input, int decode, int add_special, int skip,
                    int stream, char *err) {
    char *save = NULL;
    for (char *line = strtok_r(input, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!line[0] || (line[0] == '\r' && !line[1])) continue;
        if (json_line(t, line, decode, add_special, skip, stream, err) != 0) return -1;
    }
    return 0;
}

static int run_chat(const char *model, const char *input, int add_generation_prompt, char *err) {
    cJSON *in = cJSON_Parse(input);
    const cJSON *messages = in, *tools = NULL;
    if (cJSON_IsObject(in)) {
        messages = cJSON_GetObjectItemCaseSensitive(in, "messages");
        tools = cJSON_GetObjectItemCaseSensitive(in, "tools");
    }
    if (!cJSON_IsArray(messages)) {
        cJSON_Delete(in);
        return llm_errf(err, "--chat: stdin must hold a JSON array of messages");
    }
    // The template lives next to tokenizer.json.
    char *dir = strdup(model);
    size_t n = dir ? strlen(dir) : 0;
    if (n > 5 && strcmp(dir + n - 5, ".json") == 0) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
    }
    chat_template *ct = dir ? chat_template_load(dir, err) : NULL;
    char *text = ct ? chat_template_render(ct, messages, tools, add_generation_prompt, err) : NULL;
    if (text) fputs(text, stdout);
    free(text);
    chat_template_free(ct);
    free(dir);
    cJSON_Delete(in);
    return text ? 0 : -1;
}

static int run_bench(const tokenizer *t, const char *path, double load_s, char *err) {
    size_t len;
    char *text = llm_read_file(path, &len, err);
    if (!text) return -1;
    int32_t *ids = NULL;
    size_t n = 0;
    int iters = 0;
    double t0 = llm_now(), t1;
    do {
        free(ids);
        if (tok_encode(t, text, len, 0, &ids, &n, err) != 0) {
            free(text);
            return -1;
        }
        iters++;
        t1 = llm_now();
    } while (t1 - t0 < BENCH_MIN_SECONDS || iters < 3);
    double enc = (t1 - t0) / iters;
    size_t out_len = 0;
    iters = 0;
    t0 = llm_now();
    do {
        char *s = tok_decode(t, ids, n, 0, &out_len, err);
        if (!s) {
            free(ids);
            free(text);
            return -1;
        }
        free(s);
        iters++;
        t1 = llm_now();
    } while (t1 - t0 < BENCH_MIN_SECONDS || iters < 3);
    double dec = (t1 - t0) / iters;
    printf("load    %.3f s\n", load_s);
    printf("input   %zu bytes, %zu tokens (%.2f bytes/token)\n", len, n,
           n ? (double)len / (double)n : 0.0);
    printf("encode  %.2f MB/s, %.0f tokens/s (%.1f ms per pass)\n", len / enc / 1e6, n / enc,
           enc * 1e3);
    printf("decode  %.2f MB/s, %.0f tokens/s (%.1f ms per pass)\n", out_len / dec / 1e6, n / dec,
           dec * 1e3);
    free(ids);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},
        {"no-special", no_argument, 0, 'n'},
        {"decode", no_argument, 0, 'd'},
        {"skip-special", no_argument, 0, 's'},
        {"stream", no_argument, 0, 'S'},
        {"json", no_argument, 0, 'j'},
        {"chat", no_argument, 0, 'c'},
        {"no-generation-prompt", no_argument, 0, 'g'},
        {"bench", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *bench = NULL;
    int add_special = 1, decode = 0, skip = 0, stream = 0, json = 0, chat = 0, gen_prompt = 1;
    int opt;
    opterr = 0; // a bad flag is reported in one line, with the closest one
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            model = optarg;
            break;
        case 'n':
            add_special = 0;
            break;
        case 'd':
            decode = 1;
            break;
        case 's':
            skip = 1;
            break;
        case 'S':
            stream = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'c':
            chat = 1;
            break;
        case 'g':
            gen_prompt = 0;
            break;
        case 'b':
            bench = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            llm_bad_flag("llm_tokenize", argv[optind - 1], opt == ':', longopts, sizeof *longopts);
            return 2;
        }
    }
    if (!model || optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[LLM_ERR_LEN] = "";
    size_t len = 0;
    char *input = NULL;
    int rc = 1;
    if (chat) {
        if (!(input = read_stdin(&len))) goto oom;
        rc = run_chat(model, input, gen_prompt, err) == 0 ? 0 : 1;
        goto done;
    }
    double t0 = llm_now();
    tokenizer *t = tok_load(model, err);
    if (!t) goto done;
    double load_s = llm_now() - t0;
    if (bench) {
        rc = run_bench(t, bench, load_s, err) == 0 ? 0 : 1;
    } else if (!(input = read_stdin(&len))) {
        llm_errf(err, "out of memory");
    } else if (json) {
        rc = run_json(t, input, decode, add_special, skip, stream, err) == 0 ? 0 : 1;
    } else if (decode) {
        int32_t *ids;
        long n = parse_ids(input, &ids);
        char *text = NULL;
        size_t text_len = 0;
        if (n < 0)
            llm_errf(err, "--decode: stdin must hold integer token ids");
        else if (stream)
            text = stream_decode(t, ids, (size_t)n, skip, 0, &text_len, err);
        else
            text = tok_decode(t, ids, (size_t)n, skip, &text_len, err);
        if (text) fwrite(text, 1, text_len, stdout);
        rc = text ? 0 : 1;
        free(text);
        if (n >= 0) free(ids);
    } else {
        int32_t *ids;
        size_t n;
        if (tok_encode(t, input, len, add_special, &ids, &n, err) == 0) {
            print_ids(ids, n);
            free(ids);
            rc = 0;
        }
    }
    tok_free(t);
    goto done;
oom:
    llm_errf(err, "out of memory");
done:
    free(input);
    if (rc && err[0]) fprintf(stderr, "llm_tokenize: %s\n", err);
    return rc;
}
