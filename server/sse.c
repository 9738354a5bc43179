// sse.c - streamed answers: server-sent events of the OpenAI chunk shapes
// (chat.completion.chunk, text_completion) and of the simple API, fed by the
// request's generation as tokens arrive.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_common.h"
#include "util.h"

typedef struct {
    gen g;
    http_req *q;
    api_kind api;
    api_opts o;
    char id[48];
    double created;
    char *echo_text; // completions with echo: sent in the first chunk
    int started;     // chat: the role chunk went out
    int ended;       // [DONE] queued
    size_t lp_offset;
    char *buf;
    size_t len, off, cap;
} sse_stream;

static int sse_put(sse_stream *st, cJSON *chunk) {
    char *t = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    if (!t) return -1;
    size_t n = strlen(t), need = st->len + n + 9;
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        while (cap < need) cap *= 2;
        char *b = realloc(st->buf, cap);
        if (!b) {
            free(t);
            return -1;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, "data: ", 6);
    memcpy(st->buf + st->len + 6, t, n);
    memcpy(st->buf + st->len + 6 + n, "\n\n", 2);
    st->len += n + 8;
    free(t);
    return 0;
}

static cJSON *chunk_base(sse_stream *st) {
    return api_envelope(st->id, st->api == API_CHAT ? "chat.completion.chunk" : "text_completion",
                        st->created, st->q->s->model_name);
}

// One chunk of new text (and the logprobs of the tokens behind it), or the
// final chunk with finish_reason when fin.
static int sse_chunk(sse_stream *st, const char *text, int fin) {
    gen *g = &st->g;
    server *s = st->q->s;
    if (st->api == API_SIMPLE) {         // /generate, /chat: {"text", "generated"}; the last adds
        cJSON *c = cJSON_CreateObject(); // finish_reason and usage
        cJSON_AddStringToObject(c, "text", fin ? "" : text);
        cJSON_AddStringToObject(c, "model", s->model_name);
        cJSON_AddNumberToObject(c, "generated", g->n_generated);
        if (fin) {
            cJSON_AddStringToObject(c, "finish_reason", g->finish_reason);
            cJSON_AddItemToObject(c, "usage", api_usage(g));
        } else {
            cJSON_AddNullToObject(c, "finish_reason");
        }
        return sse_put(st, c);
    }
    cJSON *c = chunk_base(st), *choices = cJSON_AddArrayToObject(c, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (st->api == API_CHAT) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (!fin) cJSON_AddStringToObject(delta, "content", text);
        if (st->o.logprobs && !fin) {
            cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
            cJSON *content = cJSON_AddArrayToObject(lp, "content");
            for (int i = 0; i < g->n_toks; i++)
                cJSON_AddItemToArray(content, api_chat_lp_entry(s, &g->toks[i]));
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    } else {
        cJSON_AddStringToObject(ch, "text", fin ? "" : text);
        if (st->o.logprobs && !fin) {
            cmpl_logprobs l;
            api_cmpl_lp_init(&l, st->lp_offset);
            for (int i = 0; i < g->n_toks; i++) api_cmpl_lp_add(s, &l, &g->toks[i]);
            st->lp_offset = l.offset;
            cJSON_AddItemToObject(ch, "logprobs", l.obj);
        } else {
            cJSON_AddNullToObject(ch, "logprobs");
        }
    }
    if (fin) {
        cJSON_AddStringToObject(ch, "finish_reason", g->finish_reason);
        api_add_stop_reason(ch, g);
    } else {
        cJSON_AddNullToObject(ch, "finish_reason");
    }
    if (st->o.include_usage) cJSON_AddNullToObject(c, "usage");
    return sse_put(st, c);
}

// Fills st->buf with the next events' chunks; 0 when nothing more will come.
static int sse_refill(sse_stream *st) {
    gen *g = &st->g;
    st->len = st->off = 0;
    if (st->ended) return 0;
    char err[LLM_ERR_LEN];
    if (!st->started) {
        st->started = 1;
        if (st->api == API_CHAT) {
            cJSON *c = chunk_base(st), *choices = cJSON_AddArrayToObject(c, "choices");
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddItemToArray(choices, ch);
            cJSON_AddNumberToObject(ch, "index", 0);
            cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
            cJSON_AddStringToObject(delta, "role", "assistant");
            cJSON_AddStringToObject(delta, "content", "");
            cJSON_AddNullToObject(ch, "logprobs");
            cJSON_AddNullToObject(ch, "finish_reason");
            if (st->o.include_usage) cJSON_AddNullToObject(c, "usage");
            return sse_put(st, c) ? -1 : 1;
        }
        if (st->echo_text && st->echo_text[0]) {
            int saved = g->n_toks;
            g->n_toks = 0; // the echo carries no token logprobs
            int rc = sse_chunk(st, st->echo_text, 0);
            g->n_toks = saved;
            st->lp_offset = strlen(st->echo_text);
            return rc ? -1 : 1;
        }
    }
    while (!g->done) {
        if (gen_wait(g, err)) break;
        if (g->text_len || g->n_toks) {
            if (sse_chunk(st, g->text ? g->text : "", 0)) return -1;
            if (!g->done) return 1;
        }
    }
    if (sse_chunk(st, "", 1)) return -1;
    if (st->o.include_usage) {
        cJSON *c = chunk_base(st);
        cJSON_AddArrayToObject(c, "choices");
        cJSON_AddItemToObject(c, "usage", api_usage(g));
        if (sse_put(st, c)) return -1;
    }
    static const char done[] = "data: [DONE]\n\n";
    if (st->len + sizeof done > st->cap) {
        char *b = realloc(st->buf, st->len + sizeof done);
        if (!b) return -1;
        st->buf = b;
        st->cap = st->len + sizeof done;
    }
    memcpy(st->buf + st->len, done, sizeof done - 1);
    st->len += sizeof done - 1;
    st->ended = 1;
    return 1;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max) {
    sse_stream *st = cls;
    while (st->off == st->len) {
        int r = sse_refill(st);
        if (r < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (r == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = st->len - st->off < max ? st->len - st->off : max;
    memcpy(out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls) {
    sse_stream *st = cls;
    gen_finish(&st->g);
    http_req_unref(st->q);
    free(st->echo_text);
    free(st->buf);
    free(st);
}

static enum MHD_Result start_stream(http_req *q, sse_stream *st) {
    st->q = q;
    http_req_ref(q);
    q->streaming = 1;
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, st, sse_free);
    if (!r) {
        sse_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Request-Id", q->id);
    q->status = 200;
    enum MHD_Result ret = MHD_queue_response(q->conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result sse_answer(http_req *q, api_kind api, const api_opts *o, sampling_params *sp,
                           const int32_t *ids, int n_ids, const char *id_prefix, char *echo_text) {
    char err[LLM_ERR_LEN];
    int status;
    sse_stream *st = calloc(1, sizeof *st);
    if (!st) {
        free(echo_text);
        return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    }
    if (gen_start(&st->g, q, ids, n_ids, sp, &status, err)) {
        free(st);
        free(echo_text);
        return http_send_error(q, status, NULL, NULL, NULL, "%s", err);
    }
    st->api = api;
    st->o = *o;
    st->created = (double)time(NULL);
    if (id_prefix) server_new_id(q->s, id_prefix, st->id, sizeof st->id);
    st->echo_text = echo_text;
    return start_stream(q, st);
}
