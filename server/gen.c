#include "gen.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

// How often a waiting handler checks that its client is still there.
#define GEN_POLL_MS 100

int gen_start(gen *g, http_req *q, const int32_t *ids, int n_ids, const sampling_params *sp,
              int *status, char *err) {
    server *s = q->s;
    memset(g, 0, sizeof *g);
    g->s = s;
    g->q = q;
    g->sp = *sp;
    g->stop_index = -1;
    g->queue_time = -1;
    g->t_start = q->t_arrival;
    g->n_prompt = n_ids;
    *status = 400;

    pthread_mutex_lock(&s->mu);
    if (server_draining(s)) {
        pthread_mutex_unlock(&s->mu);
        *status = 503;
        return llm_errf(err, "the server is shutting down");
    }
    if (s->max_queue > 0) {
        engine_stats es;
        et_stats(s->et, &es);
        if (s->in_flight - es.running >= s->max_queue) {
            pthread_mutex_unlock(&s->mu);
            *status = 503;
            return llm_errf(err, "the server is overloaded: %d requests are queued (--max-queue)",
                            s->in_flight - es.running);
        }
    }
    s->in_flight++;
    g->counted = 1;
    pthread_mutex_unlock(&s->mu);

    const char *stops[SAMPLING_MAX_STOP];
    for (int i = 0; i < sp->n_stop; i++) stops[i] = sp->stop[i];
    g->ts = tok_stream_create(s->tok, 1, err);
    if (g->ts) g->stop = stop_create(stops, sp->n_stop, err);
    if (g->stop) g->r = et_submit(s->et, ids, n_ids, sp, err);
    if (!g->r) {
        gen_finish(g);
        return -1;
    }
    return 0;
}

static int append_text(gen *g, const char *p, size_t n, char *err) {
    if (!n) return 0;
    if (g->text_len + n + 1 > g->text_cap) {
        size_t cap = g->text_cap ? g->text_cap * 2 : 256;
        while (cap < g->text_len + n + 1) cap *= 2;
        char *t = realloc(g->text, cap);
        if (!t) return llm_errf(err, "out of memory");
        g->text = t;
        g->text_cap = cap;
    }
    memcpy(g->text + g->text_len, p, n);
    g->text_len += n;
    g->text[g->text_len] = 0;
    return 0;
}

static int push_token(gen *g, const et_event *ev, char *err) {
    if (g->n_toks == g->toks_cap) {
        int cap = g->toks_cap ? g->toks_cap * 2 : 8;
        gen_token *t = realloc(g->toks, (size_t)cap * sizeof *t);
        if (!t) return llm_errf(err, "out of memory");
        g->toks = t;
        g->toks_cap = cap;
    }
    g->toks[g->n_toks].token = ev->token;
    g->toks[g->n_toks].sample = ev->sample;
    g->n_toks++;
    return 0;
}

// Feeds one event's text through the detokenizer and the stop strings.
static int consume(gen *g, const et_event *ev, char *err) {
    server *s = g->s;
    const char *piece = NULL, *show;
    size_t plen = 0, slen = 0;
    if (ev->token >= 0) {
        double now = llm_now();
        if (g->n_generated == 0)
            g->t_first = now;
        else
            metrics_itl(&s->metrics, now - g->t_last);
        g->t_last = now;
        g->n_generated = ev->n_generated;
        g->n_cached = ev->n_cached;
        if (g->queue_time < 0) g->queue_time = ev->queue_time;
        if (push_token(g, ev, err)) return -1;
        int eos_stop = ev->finished && ev->finish_reason && !strcmp(ev->finish_reason, "stop") &&
                       config_is_eos(et_model_config(s->et), ev->token);
        if (!eos_stop) {
            piece = tok_stream_push(g->ts, ev->token, &plen, err);
            if (!piece) return -1;
        }
    }
    if (ev->n_prompt) g->n_prompt = ev->n_prompt;
    int hit = 0;
    if (piece) {
        hit = stop_push(g->stop, piece, plen, &show, &slen, err);
        if (hit < 0) return -1;
        if (append_text(g, show, slen, err)) return -1;
    }
    if (hit == 1) {
        g->done = 1;
        g->finish_reason = "stop";
        g->stop_index = stop_hit_index(g->stop);
        et_abort(g->r);
        return 0;
    }
    if (ev->finished) {
        piece = tok_stream_flush(g->ts, &plen, err);
        if (!piece) return -1;
        hit = stop_push(g->stop, piece, plen, &show, &slen, err);
        if (hit < 0 || append_text(g, show, slen, err)) return -1;
        if (hit == 1) {
            g->stop_index = stop_hit_index(g->stop);
        } else {
            stop_flush(g->stop, &show, &slen);
            if (append_text(g, show, slen, err)) return -1;
        }
        g->done = 1;
        g->finish_reason = hit == 1 ? "stop" : ev->finish_reason;
    }
    return 0;
}

int gen_wait(gen *g, char *err) {
    g->text_len = 0;
    g->n_toks = 0;
    if (g->text) g->text[0] = 0;
    if (g->done) return 0;
    server *s = g->s;
    et_event ev;
    for (;;) {
        // checked between events too: a request streaming tokens steadily
        // must still notice its deadline and a client that left
        double now = llm_now();
        if (now - g->t_checked >= GEN_POLL_MS * 1e-3) {
            g->t_checked = now;
            int timed_out = s->request_timeout > 0 && now - g->t_start > s->request_timeout;
            if (timed_out || http_client_gone(g->q)) {
                et_abort(g->r);
                g->done = 1;
                g->finish_reason = "abort";
                if (timed_out) metrics_error(&s->metrics, 504, "request_timeout");
                return 0;
            }
        }
        if (et_next(g->r, &ev, GEN_POLL_MS)) break;
    }
    do {
        if (consume(g, &ev, err)) {
            et_abort(g->r);
            g->done = 1;
            g->finish_reason = "abort";
            return -1;
        }
    } while (!g->done && et_next(g->r, &ev, 0));
    return 0;
}

void gen_finish(gen *g) {
    server *s = g->s;
    if (!s) return;
    if (g->r) {
        if (!g->done) {
            g->done = 1;
            g->finish_reason = "abort";
        }
        double now = llm_now();
        double ttft = g->n_generated ? g->t_first - g->t_start : -1;
        metrics_request_done(&s->metrics, g->queue_time, ttft, now - g->t_start, g->n_prompt,
                             g->n_generated, g->finish_reason);
        et_release(g->r); // aborts a request still running
        g->r = NULL;
    }
    if (g->counted) {
        pthread_mutex_lock(&s->mu);
        s->in_flight--;
        pthread_mutex_unlock(&s->mu);
        g->counted = 0;
    }
    g->q->prompt_tokens = g->n_prompt;
    g->q->completion_tokens = g->n_generated;
    g->q->finish_reason = g->finish_reason;
    tok_stream_destroy(g->ts);
    stop_destroy(g->stop);
    free(g->text);
    free(g->toks);
    g->ts = NULL;
    g->stop = NULL;
    g->text = NULL;
    g->toks = NULL;
    g->s = NULL;
}

char *gen_token_text(server *s, int token) {
    char err[LLM_ERR_LEN];
    size_t len;
    int32_t id = token;
    char *t = tok_decode(s->tok, &id, 1, 0, &len, err);
    return t ? t : strdup("");
}
