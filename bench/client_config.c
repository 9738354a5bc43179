// client_config.c - see client_config.h.
#include "client_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

int client_parse_doubles(const char *s, double **out, char *err) {
    int cap = 8, n = 0;
    double *v = malloc((size_t)cap * sizeof *v);
    for (const char *p = s; v && *p;) {
        char *end;
        double x = !strncmp(p, "inf", 3) ? (end = (char *)p + 3, INFINITY) : strtod(p, &end);
        if (end == p || !(x > 0) || (*end && *end != ',')) {
            free(v);
            return llm_errf(err, "expected a comma-separated list of positive numbers, got '%s'",
                            s);
        }
        if (n == cap) {
            double *w = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!w) break;
            v = w;
        }
        v[n++] = x;
        p = *end ? end + 1 : end;
    }
    if (!v || !n) {
        free(v);
        return llm_errf(err, "expected a comma-separated list of positive numbers, got '%s'", s);
    }
    *out = v;
    return n;
}

int client_parse_ints(const char *s, int **out, char *err) {
    double *d;
    int n = client_parse_doubles(s, &d, err);
    if (n < 0) return -1;
    int *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; v && i < n; i++) {
        if (d[i] != floor(d[i]) || d[i] > 1e6) {
            free(v), free(d);
            return llm_errf(err, "expected a comma-separated list of positive integers, got '%s'",
                            s);
        }
        v[i] = (int)d[i];
    }
    free(d);
    if (!v) return llm_errf(err, "out of memory");
    *out = v;
    return n;
}

// --- the YAML tree -------------------------------------------------------------------

typedef struct {
    yaml_document_t *doc;
    const char *path;
    char *err;
} ycx;

static yaml_node_t *map_get(ycx *c, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_str(ycx *c, yaml_node_t *m, const char *key, char **out) {
    yaml_node_t *n = map_get(c, m, key);
    if (!n) return 0;
    const char *s = scalar(n);
    if (!s) return llm_errf(c->err, "%s: '%s' must be a string", c->path, key);
    free(*out);
    *out = strdup(s);
    return 0;
}

static int get_num(ycx *c, yaml_node_t *m, const char *key, double *out) {
    yaml_node_t *n = map_get(c, m, key);
    if (!n) return 0;
    const char *s = scalar(n);
    char *end = NULL;
    double v = s && !strcmp(s, "inf") ? INFINITY : s ? strtod(s, &end) : NAN;
    if (!s || (end && (end == s || *end)))
        return llm_errf(c->err, "%s: '%s' must be a number", c->path, key);
    *out = v;
    return 0;
}

static int get_int(ycx *c, yaml_node_t *m, const char *key, int *out) {
    double v = *out;
    if (get_num(c, m, key, &v)) return -1;
    if (v != floor(v) || fabs(v) > 1e9)
        return llm_errf(c->err, "%s: '%s' must be an integer", c->path, key);
    *out = (int)v;
    return 0;
}

// A scalar or a list of scalars, as a comma-separated string for the parsers above.
static int get_list(ycx *c, yaml_node_t *m, const char *key, char *buf, size_t n) {
    yaml_node_t *v = map_get(c, m, key);
    buf[0] = 0;
    if (!v) return 0;
    if (scalar(v)) {
        snprintf(buf, n, "%s", scalar(v));
        return 1;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return llm_errf(c->err, "%s: '%s' must be a value or a list", c->path, key);
    size_t len = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        const char *s = scalar(yaml_document_get_node(c->doc, *it));
        if (!s) return llm_errf(c->err, "%s: '%s' must hold values", c->path, key);
        len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%s%s", len ? "," : "", s);
    }
    return 1;
}

static int load_target(ycx *c, yaml_node_t *m, client_target *t, int i) {
    if (!m || m->type != YAML_MAPPING_NODE)
        return llm_errf(c->err, "%s: targets[%d] must be a mapping", c->path, i);
    if (get_str(c, m, "name", &t->name) || get_str(c, m, "base_url", &t->base_url) ||
        get_str(c, m, "api_key", &t->api_key) || get_str(c, m, "model", &t->model))
        return -1;
    if (!t->base_url) return llm_errf(c->err, "%s: targets[%d] has no base_url", c->path, i);
    if (!t->name) t->name = strdup(t->base_url);
    return 0;
}

static int load_prompts(ycx *c, yaml_node_t *m, client_workload *w, client_prompt **own) {
    yaml_node_t *v = map_get(c, m, "prompts");
    if (!v) return 0;
    if (scalar(v)) {
        if (client_prompts_load(scalar(v), own, &w->n_prompts, c->err)) return -1;
        w->prompts = *own;
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return llm_errf(c->err, "%s: 'prompts' must be a file name or a list", c->path);
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    client_prompt *p = calloc((size_t)n + 1, sizeof *p);
    if (!p) return llm_errf(c->err, "out of memory");
    *own = p;
    for (int i = 0; i < n; i++) {
        const char *s = scalar(yaml_document_get_node(c->doc, v->data.sequence.items.start[i]));
        if (!s) return llm_errf(c->err, "%s: prompts[%d] must be a string", c->path, i);
        p[i] = (client_prompt){strdup(s), -1, -1};
        w->n_prompts = i + 1;
    }
    w->prompts = p;
    return n ? 0 : llm_errf(c->err, "%s: 'prompts' is empty", c->path);
}

// A copy of the command line's list, so that every workload owns its lists.
static void *dup(const void *p, size_t n) {
    void *q = p && n ? malloc(n) : NULL;
    if (q) memcpy(q, p, n);
    return q;
}

static int load_workload(ycx *c, yaml_node_t *m, client_workload *w, client_prompt **own, int i) {
    if (!m || m->type != YAML_MAPPING_NODE)
        return llm_errf(c->err, "%s: workloads[%d] must be a mapping", c->path, i);
    char *name = NULL, list[1024];
    if (get_str(c, m, "name", &name)) return -1;
    if (!name) {
        char b[32];
        snprintf(b, sizeof b, "workload%d", i);
        name = strdup(b);
    }
    w->name = name;
    double dur = -1;
    int req = -1;
    if (get_num(c, m, "duration", &dur) || get_int(c, m, "requests", &req) ||
        get_int(c, m, "input_len", &w->input_len) || get_int(c, m, "output_len", &w->output_len) ||
        get_int(c, m, "max_tokens", &w->max_tokens) ||
        get_num(c, m, "temperature", &w->temperature) || get_num(c, m, "top_p", &w->top_p) ||
        get_num(c, m, "range_ratio", &w->range_ratio) ||
        get_num(c, m, "burstiness", &w->burstiness) || get_int(c, m, "warmup", &w->warmup))
        return -1;
    yaml_node_t *ie = map_get(c, m, "ignore_eos");
    if (ie) w->ignore_eos = scalar(ie) && !strcmp(scalar(ie), "true");
    if (dur > 0 || req > 0) { // either, or both: whichever ends first
        w->duration_s = dur > 0 ? dur : 0;
        w->requests = req > 0 ? req : 0;
    }
    int k = get_list(c, m, "rps", list, sizeof list);
    if (k < 0) return -1;
    if (k) {
        free(w->rates);
        w->rates = NULL;
        if ((w->n_rates = client_parse_doubles(list, &w->rates, c->err)) < 0) return -1;
    }
    if ((k = get_list(c, m, "concurrency", list, sizeof list)) < 0) return -1;
    if (k) {
        free(w->concs);
        w->concs = NULL;
        if ((w->n_concs = client_parse_ints(list, &w->concs, c->err)) < 0) return -1;
    }
    return load_prompts(c, m, w, own);
}

int client_config_load(const char *path, const client_workload *defaults, client_config *cfg,
                       char *err) {
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f) return llm_errf(err, "%s: cannot open", path);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        llm_errf(err, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    ycx c = {&doc, path, err};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *ts = map_get(&c, root, "targets"), *ws = map_get(&c, root, "workloads");
    int rc = 0;
    if (!ts || ts->type != YAML_SEQUENCE_NODE || !ws || ws->type != YAML_SEQUENCE_NODE) {
        rc = llm_errf(err, "%s: needs 'targets' and 'workloads' lists", path);
        goto out;
    }
    int nt = (int)(ts->data.sequence.items.top - ts->data.sequence.items.start);
    int nw = (int)(ws->data.sequence.items.top - ws->data.sequence.items.start);
    cfg->targets = calloc((size_t)nt + 1, sizeof *cfg->targets);
    cfg->workloads = calloc((size_t)nw + 1, sizeof *cfg->workloads);
    cfg->prompt_sets = calloc((size_t)nw + 1, sizeof *cfg->prompt_sets);
    if (!cfg->targets || !cfg->workloads || !cfg->prompt_sets) {
        rc = llm_errf(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < nt && !rc; i++, cfg->n_targets++)
        rc = load_target(&c, yaml_document_get_node(&doc, ts->data.sequence.items.start[i]),
                         &cfg->targets[i], i);
    for (int i = 0; i < nw && !rc; i++, cfg->n_workloads++) {
        cfg->workloads[i] = *defaults;
        cfg->workloads[i].name = NULL;
        cfg->workloads[i].rates = dup(defaults->rates, (size_t)defaults->n_rates * sizeof(double));
        cfg->workloads[i].concs = dup(defaults->concs, (size_t)defaults->n_concs * sizeof(int));
        rc = load_workload(&c, yaml_document_get_node(&doc, ws->data.sequence.items.start[i]),
                           &cfg->workloads[i], &cfg->prompt_sets[i], i);
    }
    if (!rc && (!nt || !nw))
        rc = llm_errf(err, "%s: 'targets' and 'workloads' must not be empty", path);
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc) client_config_free(cfg);
    return rc;
}

void client_config_free(client_config *c) {
    for (int i = 0; i < c->n_targets; i++) {
        free(c->targets[i].name), free(c->targets[i].base_url);
        free(c->targets[i].api_key), free(c->targets[i].model);
    }
    for (int i = 0; i < c->n_workloads; i++) {
        client_workload *w = &c->workloads[i];
        free(w->name);
        free(w->rates);
        free(w->concs);
        // lists parsed from this file are owned; inherited ones are not
        client_prompts_free(c->prompt_sets[i], c->prompt_sets[i] ? w->n_prompts : 0);
    }
    free(c->targets);
    free(c->workloads);
    free(c->prompt_sets);
    memset(c, 0, sizeof *c);
}
