#include "engine_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

struct et_request {
    // submission (written by the caller, read by the engine thread)
    int32_t *prompt;
    int n_prompt;
    sampling_params sp;
    int64_t id;   // engine id once accepted
    int admitted; // 1 accepted, -1 rejected (err holds why)
    char err[LLM_ERR_LEN];
    int abort_wanted;
    // output channel
    pthread_mutex_t mu;
    pthread_cond_t cv;
    et_event *events;
    int head, count, cap; // ring buffer
    int finished;         // the finished event has been queued
    int refs;             // caller + engine
    et_request *next;     // in the submission or live list
    et_request *prev;     // in the live list
    struct engine_thread *owner;
};

struct engine_thread {
    engine *e;
    model_config mcfg;
    device_info dev;
    pthread_t thread;
    pthread_mutex_t mu; // guards everything below
    pthread_cond_t cv;  // wakes the engine thread
    pthread_cond_t admitted_cv;
    et_request *submitted; // waiting for engine_add_request
    int n_submitted;       // how many (counted as waiting by et_stats)
    et_request *live;      // admitted, not yet finished (doubly linked)
    // live requests by engine id: open addressing with linear probing; ids
    // are sequential, so the low bits alone spread them
    et_request **index;
    size_t index_cap, index_n; // cap: 0 or a power of two
    int n_aborts;              // abort requests pending
    int stop;
    int ready; // 1 created, -1 failed
    char err[LLM_ERR_LEN];
    engine_config cfg;
    engine_stats stats;
};

static void req_unref(et_request *r) {
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left) return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->events);
    free(r->prompt);
    free(r);
}

// Queues an event on r's channel (the engine thread only).
static void deliver(et_request *r, const et_event *ev) {
    pthread_mutex_lock(&r->mu);
    if (r->count == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        et_event *v = malloc((size_t)cap * sizeof *v);
        if (v) {
            for (int i = 0; i < r->count; i++) v[i] = r->events[(r->head + i) % r->cap];
            free(r->events);
            r->events = v;
            r->head = 0;
            r->cap = cap;
        }
    }
    if (r->count < r->cap) {
        r->events[(r->head + r->count) % r->cap] = *ev;
        r->count++;
    } else if (ev->finished) { // out of memory: keep at least the end
        r->events[(r->head + r->count - 1) % r->cap] = *ev;
    }
    if (ev->finished) r->finished = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void finish_abort(et_request *r) {
    et_event ev = {.token = -1, .finished = 1, .finish_reason = "abort", .queue_time = -1};
    deliver(r, &ev);
}

static size_t index_home(const engine_thread *t, int64_t id) {
    return (size_t)id & (t->index_cap - 1);
}

static et_request *index_find(const engine_thread *t, int64_t id) {
    if (!t->index_cap) return NULL;
    for (size_t i = index_home(t, id);; i = (i + 1) & (t->index_cap - 1)) {
        if (!t->index[i] || t->index[i]->id == id) return t->index[i];
    }
}

static void index_put(engine_thread *t, et_request *r) {
    size_t i = index_home(t, r->id);
    while (t->index[i]) i = (i + 1) & (t->index_cap - 1);
    t->index[i] = r;
    t->index_n++;
}

// Adds r; at most half full. Returns 0, or -1 when out of memory.
static int index_add(engine_thread *t, et_request *r) {
    if ((t->index_n + 1) * 2 > t->index_cap) {
        size_t cap = t->index_cap ? t->index_cap * 2 : 64;
        et_request **old = t->index;
        size_t old_cap = t->index_cap;
        t->index = calloc(cap, sizeof *t->index);
        if (!t->index) {
            t->index = old;
            return -1;
        }
        t->index_cap = cap;
        t->index_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) index_put(t, old[i]);
        free(old);
    }
    index_put(t, r);
    return 0;
}

// Removes r, shifting later entries of its probe run back (no tombstones).
static void index_remove(engine_thread *t, const et_request *r) {
    const size_t mask = t->index_cap - 1;
    size_t i = index_home(t, r->id);
    while (t->index[i] != r) i = (i + 1) & mask;
    t->index[i] = NULL;
    t->index_n--;
    for (size_t j = (i + 1) & mask; t->index[j]; j = (j + 1) & mask) {
        size_t home = index_home(t, t->index[j]->id);
        // move j back to i unless its home lies cyclically in (i, j]
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        t->index[i] = t->index[j];
        t->index[j] = NULL;
        i = j;
    }
}

static void link_live(engine_thread *t, et_request *r) {
    r->prev = NULL;
    r->next = t->live;
    if (t->live) t->live->prev = r;
    t->live = r;
}

static void unlink_live(engine_thread *t, et_request *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        t->live = r->next;
    if (r->next) r->next->prev = r->prev;
    r->next = r->prev = NULL;
    index_remove(t, r);
}

// Admits the submitted requests, in submission order (t->mu held).
static void admit_submitted(engine_thread *t, engine *e) {
    et_request *sub = t->submitted, *rev = NULL;
    t->submitted = NULL;
    t->n_submitted = 0;
    while (sub) { // the list was pushed at the head: reverse it
        et_request *n = sub->next;
        sub->next = rev;
        rev = sub;
        sub = n;
    }
    for (et_request *r = rev, *n; r; r = n) {
        n = r->next;
        r->id = engine_add_request(e, r->prompt, r->n_prompt, &r->sp, r->err);
        r->admitted = r->id >= 0 ? 1 : -1;
        if (r->admitted == 1 && index_add(t, r)) {
            engine_abort(e, r->id); // its abort output finds no request: dropped
            snprintf(r->err, sizeof r->err, "out of memory");
            r->admitted = -1;
        }
        if (r->admitted == 1) {
            link_live(t, r);
        } else {
            r->next = NULL;
            req_unref(r); // the engine's reference
        }
    }
}

// Hands each output to its request's channel; a finished request leaves the
// live list (t->mu held).
static void deliver_outputs(engine_thread *t, const engine_output *out, int n_out) {
    for (int k = 0; k < n_out; k++) {
        et_request *r = index_find(t, out[k].id);
        if (!r) continue;
        et_event ev = {.token = out[k].token,
                       .sample = out[k].sample,
                       .finished = out[k].finished,
                       .finish_reason = out[k].finish_reason,
                       .n_prompt = out[k].n_prompt,
                       .n_cached = out[k].n_cached,
                       .n_generated = out[k].n_generated,
                       .queue_time = out[k].queue_time};
        deliver(r, &ev);
        if (out[k].finished) {
            unlink_live(t, r);
            req_unref(r);
        }
    }
}

// Stopping: everything still live or queued ends with "abort".
static void end_all(engine_thread *t) {
    pthread_mutex_lock(&t->mu);
    for (et_request *r = t->live, *n; r; r = n) {
        n = r->next;
        finish_abort(r);
        req_unref(r);
    }
    t->live = NULL;
    free(t->index);
    t->index = NULL;
    t->index_cap = t->index_n = 0;
    for (et_request *r = t->submitted, *n; r; r = n) {
        n = r->next;
        snprintf(r->err, sizeof r->err, "the engine is shutting down");
        r->admitted = -1;
        req_unref(r);
    }
    t->submitted = NULL;
    t->n_submitted = 0;
    pthread_cond_broadcast(&t->admitted_cv);
    pthread_mutex_unlock(&t->mu);
}

static void *engine_main(void *arg) {
    engine_thread *t = arg;
    char err[LLM_ERR_LEN];
    engine *e = engine_create(&t->cfg, err);
    pthread_mutex_lock(&t->mu);
    t->e = e;
    t->ready = e ? 1 : -1;
    if (!e)
        memcpy(t->err, err, sizeof err);
    else {
        t->mcfg = *engine_model_config(e);
        t->dev = *engine_device(e);
        engine_get_stats(e, &t->stats);
    }
    pthread_cond_broadcast(&t->admitted_cv);
    pthread_mutex_unlock(&t->mu);
    if (!e) return NULL;

    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (!t->stop && !t->submitted && !t->n_aborts && !engine_has_work(e))
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->stop) {
            pthread_mutex_unlock(&t->mu);
            break;
        }
        admit_submitted(t, e);
        pthread_cond_broadcast(&t->admitted_cv);
        // the admitted requests count as waiting from now on, not after the step
        engine_get_stats(e, &t->stats);
        // aborts
        if (t->n_aborts) {
            for (et_request *r = t->live, *n; r; r = n) {
                n = r->next;
                if (!r->abort_wanted) continue;
                engine_abort(e, r->id); // reported by the next step
            }
            t->n_aborts = 0;
        }
        pthread_mutex_unlock(&t->mu);

        engine_output *out;
        int n_out;
        int rc = engine_step(e, &out, &n_out, err);
        pthread_mutex_lock(&t->mu);
        engine_get_stats(e, &t->stats);
        if (rc) { // a backend failure: every live request ends
            for (et_request *r = t->live, *n; r; r = n) {
                n = r->next;
                engine_abort(e, r->id);
            }
            n_out = 0;
        }
        deliver_outputs(t, out, n_out);
        pthread_mutex_unlock(&t->mu);
    }
    end_all(t);
    engine_destroy(e);
    return NULL;
}

engine_thread *et_start(const engine_config *cfg, char *err) {
    engine_thread *t = llm_calloc(1, sizeof *t, err);
    if (!t) return NULL;
    t->cfg = *cfg;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    pthread_cond_init(&t->admitted_cv, NULL);
    if (pthread_create(&t->thread, NULL, engine_main, t) != 0) {
        llm_errf(err, "cannot start the engine thread");
        free(t);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->ready) pthread_cond_wait(&t->admitted_cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    if (t->ready < 0) {
        llm_errf(err, "%s", t->err);
        pthread_join(t->thread, NULL);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        pthread_cond_destroy(&t->admitted_cv);
        free(t);
        return NULL;
    }
    return t;
}

et_request *et_submit(engine_thread *t, const int32_t *prompt, int n_prompt,
                      const sampling_params *sp, char *err) {
    if (n_prompt <= 0) {
        llm_errf(err, "the prompt is empty");
        return NULL;
    }
    et_request *r = llm_calloc(1, sizeof *r, err);
    if (!r) return NULL;
    r->prompt = llm_malloc((size_t)n_prompt * sizeof(int32_t), err);
    if (!r->prompt) {
        free(r);
        return NULL;
    }
    memcpy(r->prompt, prompt, (size_t)n_prompt * sizeof(int32_t));
    r->n_prompt = n_prompt;
    r->sp = *sp;
    r->refs = 2;
    r->owner = t;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    pthread_mutex_lock(&t->mu);
    if (t->stop) {
        pthread_mutex_unlock(&t->mu);
        llm_errf(err, "the engine is shutting down");
        r->refs = 1;
        req_unref(r);
        return NULL;
    }
    r->next = t->submitted;
    t->submitted = r;
    t->n_submitted++;
    pthread_cond_signal(&t->cv);
    while (!r->admitted) pthread_cond_wait(&t->admitted_cv, &t->mu);
    int ok = r->admitted == 1;
    pthread_mutex_unlock(&t->mu);
    if (!ok) {
        llm_errf(err, "%s", r->err);
        req_unref(r);
        return NULL;
    }
    return r;
}

int et_next(et_request *r, et_event *ev, int timeout_ms) {
    pthread_mutex_lock(&r->mu);
    if (timeout_ms < 0) {
        while (!r->count && !r->finished) pthread_cond_wait(&r->cv, &r->mu);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        while (!r->count && !r->finished)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) break;
    }
    int got = 0;
    if (r->count) {
        *ev = r->events[r->head];
        r->head = (r->head + 1) % r->cap;
        r->count--;
        got = 1;
    }
    pthread_mutex_unlock(&r->mu);
    return got;
}

void et_abort(et_request *r) {
    pthread_mutex_lock(&r->mu);
    int done = r->finished;
    pthread_mutex_unlock(&r->mu);
    if (done) return; // also after et_stop, which finishes every request
    engine_thread *t = r->owner;
    pthread_mutex_lock(&t->mu);
    if (!r->abort_wanted) {
        r->abort_wanted = 1;
        t->n_aborts++;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void et_abort_all(engine_thread *t) {
    pthread_mutex_lock(&t->mu);
    for (et_request *r = t->live; r; r = r->next)
        if (!r->abort_wanted) {
            r->abort_wanted = 1;
            t->n_aborts++;
        }
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void et_release(et_request *r) {
    if (!r) return;
    et_abort(r);
    req_unref(r);
}

void et_stats(engine_thread *t, engine_stats *s) {
    pthread_mutex_lock(&t->mu);
    *s = t->stats;
    // requests submitted while a step runs wait too, though the engine has
    // not taken them in yet
    s->waiting += t->n_submitted;
    pthread_mutex_unlock(&t->mu);
}

const model_config *et_model_config(const engine_thread *t) {
    return &t->mcfg;
}

const device_info *et_device(const engine_thread *t) {
    return &t->dev;
}

void et_stop(engine_thread *t) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    pthread_cond_destroy(&t->admitted_cv);
    free(t);
}
