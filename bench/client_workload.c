// client_workload.c - see client_workload.h.
#include "client_workload.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define SYNTH_ID_LO 1000
#define SYNTH_ID_HI 30000

void client_rng_seed(client_rng *r, uint64_t seed) {
    r->s = seed;
}

static uint64_t next64(client_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double client_rng_uniform(client_rng *r) {
    return (double)(next64(r) >> 11) * 0x1.0p-53;
}

int client_rng_int(client_rng *r, int lo, int hi) {
    if (hi <= lo) return lo;
    return lo + (int)(next64(r) % (uint64_t)(hi - lo + 1));
}

static double normal(client_rng *r) {
    double u1 = client_rng_uniform(r), u2 = client_rng_uniform(r);
    return sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
}

double client_rng_gamma(client_rng *r, double shape, double scale) {
    if (shape < 1) { // boost: G(a) = G(a + 1) * U^(1/a)
        double u = client_rng_uniform(r);
        return client_rng_gamma(r, shape + 1, scale) * pow(1 - u, 1 / shape);
    }
    double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = client_rng_uniform(r);
        if (log(1 - u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v * scale;
    }
}

double client_arrival_gap_s(client_rng *r, double rate, double burstiness) {
    if (isinf(rate)) return 0;
    return client_rng_gamma(r, burstiness, 1 / (rate * burstiness));
}

// --- prompts files ---------------------------------------------------------------

static int json_prompts(const char *path, const char *text, client_prompt **out, int *n,
                        char *err) {
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return llm_errf(err, "%s: not a JSON list of prompts", path);
    }
    int cnt = cJSON_GetArraySize(j);
    client_prompt *p = calloc((size_t)cnt + 1, sizeof *p);
    if (!p) return cJSON_Delete(j), llm_errf(err, "out of memory");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const cJSON *s = cJSON_IsString(it) ? it : cJSON_GetObjectItemCaseSensitive(it, "prompt");
        if (!cJSON_IsString(s)) {
            client_prompts_free(p, i);
            cJSON_Delete(j);
            return llm_errf(err, "%s: item %d has no \"prompt\" string", path, i);
        }
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(it, "max_tokens");
        const cJSON *te = cJSON_GetObjectItemCaseSensitive(it, "temperature");
        p[i].prompt = strdup(s->valuestring);
        p[i].max_tokens = cJSON_IsNumber(mt) ? mt->valueint : -1;
        p[i].temperature = cJSON_IsNumber(te) ? te->valuedouble : -1;
        if (!p[i++].prompt) {
            client_prompts_free(p, i);
            cJSON_Delete(j);
            return llm_errf(err, "out of memory");
        }
    }
    cJSON_Delete(j);
    *out = p;
    *n = i;
    return 0;
}

// One CSV record (RFC 4180: fields separated by commas, quoted fields may hold
// commas, newlines and "" for a quote; CRLF or LF line ends) from *pos:
// fills fields (heap strings) and returns their count, 0 at the end of the
// text, or -1 with err (an unterminated quote, too many fields, out of memory).
#define CSV_MAX_FIELDS 64
static int csv_record(const char *path, const char **pos, int *line, char **fields, char *err) {
    const char *p = *pos;
    if (!*p) return 0;
    int nf = 0, start_line = *line;
    for (;;) {
        size_t cap = 64, len = 0;
        char *f = malloc(cap);
        if (!f) goto oom;
        int quoted = *p == '"';
        if (quoted) p++;
        for (;;) {
            char ch = *p;
            if (quoted) {
                if (!ch) {
                    free(f);
                    for (int i = 0; i < nf; i++) free(fields[i]);
                    return llm_errf(err, "%s:%d: a quoted field is not closed", path, start_line);
                }
                if (ch == '"' && p[1] == '"') {
                    p += 2;
                } else if (ch == '"') {
                    p++;
                    quoted = 0;
                    continue;
                } else {
                    if (ch == '\n') (*line)++;
                    p++;
                }
            } else {
                if (!ch || ch == ',' || ch == '\n' || (ch == '\r' && p[1] == '\n')) break;
                p++;
            }
            if (len + 2 > cap) {
                char *g = realloc(f, cap *= 2);
                if (!g) {
                    free(f);
                    goto oom;
                }
                f = g;
            }
            f[len++] = p[-1];
        }
        f[len] = 0;
        if (nf == CSV_MAX_FIELDS) {
            free(f);
            for (int i = 0; i < nf; i++) free(fields[i]);
            return llm_errf(err, "%s:%d: more than %d fields", path, start_line, CSV_MAX_FIELDS);
        }
        fields[nf++] = f;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\r') p++;
        if (*p == '\n') p++, (*line)++;
        break;
    }
    *pos = p;
    return nf;
oom:
    for (int i = 0; i < nf; i++) free(fields[i]);
    return llm_errf(err, "out of memory");
}

// A CSV prompts file: a header row naming the columns, "prompt" required,
// "max_tokens" and "temperature" optional (empty: not set), others ignored
// (so llm_client --batch's own output reads back as input).
static int csv_prompts(const char *path, const char *text, client_prompt **out, int *n, char *err) {
    if (!strncmp(text, "\xef\xbb\xbf", 3)) text += 3; // a spreadsheet's byte order mark
    const char *pos = text;
    int line = 1;
    char *f[CSV_MAX_FIELDS];
    int nh = csv_record(path, &pos, &line, f, err);
    if (nh <= 0) return nh < 0 ? -1 : llm_errf(err, "%s: empty CSV file", path);
    int c_prompt = -1, c_max = -1, c_temp = -1;
    char heads[256] = "";
    for (int i = 0; i < nh; i++) {
        if (!strcmp(f[i], "prompt")) c_prompt = i;
        if (!strcmp(f[i], "max_tokens")) c_max = i;
        if (!strcmp(f[i], "temperature")) c_temp = i;
        size_t hl = strlen(heads);
        snprintf(heads + hl, sizeof heads - hl, "%s%.40s", i ? "," : "", f[i]);
        free(f[i]);
    }
    if (c_prompt < 0)
        return llm_errf(err,
                        "%s: the first row must be a header with a \"prompt\" column (got: %s)",
                        path, heads);
    int cap = 16, cnt = 0, rc = 0;
    client_prompt *p = malloc((size_t)cap * sizeof *p);
    if (!p) return llm_errf(err, "out of memory");
    for (;;) {
        int row_line = line;
        int nf = csv_record(path, &pos, &line, f, err);
        if (nf <= 0) {
            rc = nf;
            break;
        }
        if (nf == 1 && !f[0][0]) { // a blank line
            free(f[0]);
            continue;
        }
        if (nf != nh) {
            for (int i = 0; i < nf; i++) free(f[i]);
            rc = llm_errf(err, "%s:%d: %d fields, the header has %d", path, row_line, nf, nh);
            break;
        }
        client_prompt q = {f[c_prompt], -1, -1};
        f[c_prompt] = NULL;
        char *end;
        if (c_max >= 0 && f[c_max][0]) {
            long v = strtol(f[c_max], &end, 10);
            if (*end || v < 1 || v > 1 << 30)
                rc = llm_errf(err, "%s:%d: max_tokens '%.40s' is not a positive integer", path,
                              row_line, f[c_max]);
            q.max_tokens = (int)v;
        }
        if (!rc && c_temp >= 0 && f[c_temp][0]) {
            q.temperature = strtod(f[c_temp], &end);
            if (*end || !(q.temperature >= 0))
                rc = llm_errf(err, "%s:%d: temperature '%.40s' is not a number >= 0", path,
                              row_line, f[c_temp]);
        }
        for (int i = 0; i < nf; i++) free(f[i]);
        if (!rc && cnt == cap) {
            client_prompt *g = realloc(p, (size_t)(cap *= 2) * sizeof *p);
            if (!g)
                rc = llm_errf(err, "out of memory");
            else
                p = g;
        }
        if (rc) {
            free(q.prompt);
            break;
        }
        p[cnt++] = q;
    }
    if (!rc && !cnt) rc = llm_errf(err, "%s: no prompts under the header", path);
    if (rc) {
        client_prompts_free(p, cnt);
        return -1;
    }
    *out = p;
    *n = cnt;
    return 0;
}

int client_prompts_load(const char *path, client_prompt **out, int *n, char *err) {
    char *text = llm_read_file(path, NULL, err);
    if (!text) return -1;
    const char *s = text;
    size_t plen = strlen(path);
    if (plen > 4 && !strcasecmp(path + plen - 4, ".csv")) {
        int rc = csv_prompts(path, text, out, n, err);
        free(text);
        return rc;
    }
    while (isspace((unsigned char)*s)) s++;
    if (*s == '[') {
        int rc = json_prompts(path, s, out, n, err);
        free(text);
        return rc;
    }
    int cap = 16, cnt = 0;
    client_prompt *p = malloc((size_t)cap * sizeof *p);
    for (char *line = text, *nl; p && line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if (!len) continue;
        if (cnt == cap) {
            client_prompt *q = realloc(p, (size_t)(cap *= 2) * sizeof *p);
            if (!q) break;
            p = q;
        }
        p[cnt] = (client_prompt){strdup(line), -1, -1};
        if (!p[cnt++].prompt) break;
        if (!nl) break;
    }
    free(text);
    if (!p || (cnt && !p[cnt - 1].prompt)) {
        client_prompts_free(p, cnt);
        return llm_errf(err, "out of memory");
    }
    if (!cnt) {
        free(p);
        return llm_errf(err, "%s: no prompts", path);
    }
    *out = p;
    *n = cnt;
    return 0;
}

void client_prompts_free(client_prompt *p, int n) {
    for (int i = 0; p && i < n; i++) free(p[i].prompt);
    free(p);
}

// --- synthetic prompts -------------------------------------------------------------

void client_synthetic_ids(client_rng *r, int *ids, int n) {
    for (int i = 0; i < n; i++) ids[i] = client_rng_int(r, SYNTH_ID_LO, SYNTH_ID_HI - 1);
}

static const char *const words[] = {
    "the",     "time",    "people",   "year",  "way",    "day",   "man",    "thing",
    "woman",   "life",    "child",    "world", "school", "state", "family", "group",
    "country", "problem", "hand",     "part",  "place",  "case",  "week",   "company",
    "system",  "program", "question", "work",  "number", "night", "point",  "home",
    "water",   "room",    "mother",   "area",  "money",  "story"};

char *client_synthetic_text(client_rng *r, int n_words) {
    size_t cap = (size_t)n_words * 10 + 1, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    int nw = (int)(sizeof words / sizeof *words);
    for (int i = 0; i < n_words; i++) {
        const char *w = words[client_rng_int(r, 0, nw - 1)];
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? " " : "", w);
    }
    return s;
}

// --- request bodies ----------------------------------------------------------------

char *client_body(const client_body_spec *b) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    if (b->model && b->api != API_GENERATE) cJSON_AddStringToObject(j, "model", b->model);
    if (b->api == API_CHAT) {
        cJSON *m = b->messages ? cJSON_Duplicate(b->messages, 1) : cJSON_CreateArray();
        if (!b->messages) {
            cJSON *u = cJSON_CreateObject();
            cJSON_AddStringToObject(u, "role", "user");
            cJSON_AddStringToObject(u, "content", b->prompt ? b->prompt : "");
            cJSON_AddItemToArray(m, u);
        }
        cJSON_AddItemToObject(j, "messages", m);
    } else if (b->ids && b->api == API_COMPLETIONS) {
        cJSON_AddItemToObject(j, "prompt", cJSON_CreateIntArray(b->ids, b->n_ids));
    } else {
        cJSON_AddStringToObject(j, "prompt", b->prompt ? b->prompt : "");
    }
    if (b->max_tokens >= 0) cJSON_AddNumberToObject(j, "max_tokens", b->max_tokens);
    if (b->temperature >= 0) cJSON_AddNumberToObject(j, "temperature", b->temperature);
    if (b->top_p >= 0) cJSON_AddNumberToObject(j, "top_p", b->top_p);
    if (b->ignore_eos) cJSON_AddBoolToObject(j, "ignore_eos", 1);
    if (b->seed) cJSON_AddNumberToObject(j, "seed", (double)b->seed);
    if (b->api != API_GENERATE) {
        cJSON_AddBoolToObject(j, "stream", 1);
        cJSON *so = cJSON_AddObjectToObject(j, "stream_options");
        cJSON_AddBoolToObject(so, "include_usage", 1);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}
