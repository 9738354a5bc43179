#include "params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int fail(param_error *pe, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(param_error *pe, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pe->msg, sizeof pe->msg, fmt, ap);
    va_end(ap);
    pe->param = param;
    return -1;
}

static const cJSON *field(const cJSON *body, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int params_get_int(const cJSON *body, const char *name, long long lo, long long hi, long long *out,
                   param_error *pe) {
    const cJSON *v = field(body, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
        return fail(pe, name, "'%s' must be an integer", name);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return fail(pe, name, "'%s' must be between %lld and %lld, got %.17g", name, lo, hi,
                    v->valuedouble);
    *out = (long long)v->valuedouble;
    return 1;
}

static int get_float(const cJSON *body, const char *name, double lo, double hi, float *out,
                     param_error *pe) {
    const cJSON *v = field(body, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(pe, name, "'%s' must be a number", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return fail(pe, name, "'%s' must be between %g and %g, got %.17g", name, lo, hi,
                    v->valuedouble);
    *out = (float)v->valuedouble;
    return 1;
}

static int get_bool(const cJSON *body, const char *name, int *out, param_error *pe) {
    const cJSON *v = field(body, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return fail(pe, name, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 1;
}

int *params_token_ids(const cJSON *arr, const char *name, int vocab_size, int *n, param_error *pe) {
    int count = cJSON_GetArraySize(arr);
    int *ids = malloc((size_t)(count ? count : 1) * sizeof *ids);
    if (!ids) {
        fail(pe, name, "out of memory");
        return NULL;
    }
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble >= vocab_size) {
            free(ids);
            fail(pe, name, "'%s' must hold token ids, integers in [0, %d)", name, vocab_size);
            return NULL;
        }
        ids[i] = (int)e->valuedouble;
    }
    *n = count;
    return ids;
}

static int get_stop(const cJSON *body, sampling_params *sp, param_error *pe) {
    const cJSON *v = field(body, "stop");
    if (!v) return 0;
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) return 0;
        if (strlen(v->valuestring) > SAMPLING_MAX_STOP_LEN)
            return fail(pe, "stop", "'stop' strings are limited to %d bytes",
                        SAMPLING_MAX_STOP_LEN);
        snprintf(sp->stop[0], sizeof sp->stop[0], "%s", v->valuestring);
        sp->n_stop = 1;
        return 0;
    }
    if (!cJSON_IsArray(v)) return fail(pe, "stop", "'stop' must be a string or a list of strings");
    if (cJSON_GetArraySize(v) > SAMPLING_MAX_STOP)
        return fail(pe, "stop", "'stop' may hold at most %d strings", SAMPLING_MAX_STOP);
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return fail(pe, "stop", "'stop' must be a string or a list of strings");
        if (!e->valuestring[0]) continue;
        if (strlen(e->valuestring) > SAMPLING_MAX_STOP_LEN)
            return fail(pe, "stop", "'stop' strings are limited to %d bytes",
                        SAMPLING_MAX_STOP_LEN);
        snprintf(sp->stop[sp->n_stop], sizeof sp->stop[0], "%s", e->valuestring);
        sp->n_stop++;
    }
    return 0;
}

static params_defaults model_defaults;

void params_set_defaults(const params_defaults *d) {
    model_defaults = *d;
}

int params_load_defaults(const char *model_dir, params_defaults *d, char *err) {
    memset(d, 0, sizeof *d);
    char *path = llm_path_join(model_dir, "generation_config.json");
    if (!path) return llm_errf(err, "out of memory");
    char *text = llm_file_exists(path) ? llm_read_file(path, NULL, err) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    int n = 0, rc = 0;
    static const char *const keys[] = {"temperature", "top_p", "top_k", "min_p",
                                       "repetition_penalty"};
    for (int k = 0; j && k < 5 && !rc; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            rc = llm_errf(err, "%s: '%s' must be a number", path, keys[k]);
            break;
        }
        double x = v->valuedouble;
        n++;
        if (k == 0) d->temperature = (float)x, d->temperature_set = x >= 0;
        if (k == 1) d->top_p = (float)x, d->top_p_set = x > 0 && x <= 1;
        if (k == 2) d->top_k = (int)x, d->top_k_set = x >= -1;
        if (k == 3) d->min_p = (float)x, d->min_p_set = x >= 0 && x <= 1;
        if (k == 4) d->repetition_penalty = (float)x, d->repetition_penalty_set = x > 0;
    }
    cJSON_Delete(j);
    free(path);
    return rc ? rc : n;
}

int params_parse(const cJSON *body, api_kind api, int vocab_size, sampling_params *sp, api_opts *o,
                 param_error *pe) {
    *sp = sampling_params_default();
    const params_defaults *md = &model_defaults;
    if (md->temperature_set) sp->temperature = md->temperature;
    if (md->top_p_set) sp->top_p = md->top_p;
    if (md->top_k_set) sp->top_k = md->top_k;
    if (md->min_p_set) sp->min_p = md->min_p;
    if (md->repetition_penalty_set) sp->repetition_penalty = md->repetition_penalty;
    memset(o, 0, sizeof *o);
    long long v;
    int r;
    // the token limit: chat also takes OpenAI's newer name
    const char *mt_name = "max_tokens";
    if (api == API_CHAT && field(body, "max_completion_tokens")) mt_name = "max_completion_tokens";
    if ((r = params_get_int(body, mt_name, 1, 1 << 30, &v, pe)) < 0) return -1;
    if (r) {
        sp->max_tokens = (int)v;
        o->max_tokens_set = 1;
    }
    if (get_float(body, "temperature", 0, 2, &sp->temperature, pe) < 0) return -1;
    if (get_float(body, "top_p", 0, 1, &sp->top_p, pe) < 0) return -1;
    if (field(body, "top_p") && sp->top_p <= 0)
        return fail(pe, "top_p", "'top_p' must be in (0, 1], got %g", sp->top_p);
    if ((r = params_get_int(body, "top_k", -1, 1 << 30, &v, pe)) < 0) return -1;
    if (r) sp->top_k = (int)v;
    if (get_float(body, "min_p", 0, 1, &sp->min_p, pe) < 0) return -1;
    if (get_float(body, "presence_penalty", -2, 2, &sp->presence_penalty, pe) < 0) return -1;
    if (get_float(body, "frequency_penalty", -2, 2, &sp->frequency_penalty, pe) < 0) return -1;
    if (get_float(body, "repetition_penalty", 1e-6, 1e6, &sp->repetition_penalty, pe) < 0)
        return -1;
    if ((r = params_get_int(body, "seed", -(1ll << 53), 1ll << 53, &v, pe)) < 0) return -1;
    if (r) {
        sp->seed = (uint64_t)v;
        sp->has_seed = 1;
    }
    if (get_bool(body, "ignore_eos", &sp->ignore_eos, pe) < 0) return -1;
    if ((r = params_get_int(body, "min_tokens", 0, 1 << 30, &v, pe)) < 0) return -1;
    if (r) sp->min_tokens = (int)v;
    if (get_stop(body, sp, pe)) return -1;
    const cJSON *ids = field(body, "stop_token_ids");
    if (ids) {
        if (!cJSON_IsArray(ids))
            return fail(pe, "stop_token_ids", "'stop_token_ids' must be a list of token ids");
        if (cJSON_GetArraySize(ids) > SAMPLING_MAX_STOP_IDS)
            return fail(pe, "stop_token_ids", "'stop_token_ids' may hold at most %d ids",
                        SAMPLING_MAX_STOP_IDS);
        int n;
        int *t = params_token_ids(ids, "stop_token_ids", vocab_size, &n, pe);
        if (!t) return -1;
        for (int i = 0; i < n; i++) sp->stop_token_ids[i] = t[i];
        sp->n_stop_token_ids = n;
        free(t);
    }
    if ((r = params_get_int(body, "n", 1, 1 << 30, &v, pe)) < 0) return -1;
    if (r && v != 1) return fail(pe, "n", "only n=1 is supported");
    if ((r = params_get_int(body, "best_of", 1, 1 << 30, &v, pe)) < 0) return -1;
    if (r && v != 1) return fail(pe, "best_of", "only best_of=1 is supported");
    const cJSON *user = field(body, "user");
    if (user && !cJSON_IsString(user)) return fail(pe, "user", "'user' must be a string");

    if (api == API_SIMPLE && get_bool(body, "stream", &o->stream, pe) < 0) return -1;
    if (api != API_SIMPLE) {
        if (get_bool(body, "stream", &o->stream, pe) < 0) return -1;
        const cJSON *so = field(body, "stream_options");
        if (so) {
            if (!cJSON_IsObject(so))
                return fail(pe, "stream_options", "'stream_options' must be an object");
            if (!o->stream)
                return fail(pe, "stream_options", "'stream_options' needs 'stream': true");
            if (get_bool(so, "include_usage", &o->include_usage, pe) < 0) return -1;
        }
    }
    if (api == API_COMPLETIONS) {
        if (get_bool(body, "echo", &o->echo, pe) < 0) return -1;
        if ((r = params_get_int(body, "logprobs", 0, SAMPLING_MAX_LOGPROBS, &v, pe)) < 0) return -1;
        if (r) {
            o->logprobs = 1;
            sp->logprobs = (int)v;
        }
        if (o->echo && o->logprobs)
            return fail(pe, "echo",
                        "'echo' together with 'logprobs' (prompt logprobs) is not "
                        "supported");
    } else if (api == API_CHAT) {
        if (get_bool(body, "logprobs", &o->logprobs, pe) < 0) return -1;
        if ((r = params_get_int(body, "top_logprobs", 0, SAMPLING_MAX_LOGPROBS, &v, pe)) < 0)
            return -1;
        if (r && !o->logprobs)
            return fail(pe, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
        o->top_logprobs = r ? (int)v : 0;
        if (o->logprobs) sp->logprobs = o->top_logprobs;
    }
    if (sp->min_tokens > sp->max_tokens && o->max_tokens_set)
        return fail(pe, "min_tokens", "'min_tokens' (%d) must not exceed 'max_tokens' (%d)",
                    sp->min_tokens, sp->max_tokens);
    return 0;
}
