// The engine thread under concurrent clients: each gets exactly the tokens
// the single-threaded engine gives, aborts free every page, stop is clean.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_thread.h"
#include "harness.h"
#include "tiny_model.h"
#include "util.h"

#define N_CLIENTS 6
#define N_TOK 10

typedef struct {
    engine_thread *t;
    int k;
    int tokens[N_TOK];
    int n;
    int abort_after; // abort after this many tokens (0: never)
    const char *reason;
} client;

static void prompt_of(int k, int32_t *p, int *n) {
    *n = 5 + k * 7;
    for (int i = 0; i < *n; i++) p[i] = (int32_t)((i * 31 + k * 17) % 120);
}

static void *client_main(void *arg) {
    client *c = arg;
    int32_t p[64];
    int n;
    prompt_of(c->k, p, &n);
    sampling_params sp = sampling_params_default();
    sp.temperature = 0;
    // an aborting client asks for many tokens, so that it is still running
    // when its abort arrives however fast the engine is
    sp.max_tokens = c->abort_after ? 400 : N_TOK;
    sp.ignore_eos = 1;
    char err[LLM_ERR_LEN];
    et_request *r = et_submit(c->t, p, n, &sp, err);
    if (!r) return NULL;
    et_event ev;
    while (et_next(r, &ev, 5000) == 1) {
        if (ev.token >= 0 && c->n < N_TOK) c->tokens[c->n++] = ev.token;
        if (c->abort_after && c->n == c->abort_after) et_abort(r);
        if (ev.finished) {
            c->reason = ev.finish_reason;
            break;
        }
    }
    et_release(r);
    return NULL;
}

TEST(engine_thread_concurrent_clients) {
    engine_config cfg = engine_config_default();
    cfg.model_dir = tiny_model_dir();
    cfg.device = DEVICE_CPU;
    cfg.max_num_seqs = 4;
    cfg.max_num_batched_tokens = 32;
    cfg.kv_cache_memory = 40 * 2 * 2 * 16 * 32 * 2;
    char err[LLM_ERR_LEN] = "";
    // reference: one client at a time
    engine_thread *t = et_start(&cfg, err);
    CHECK_MSG(t != NULL, "%s", err);
    if (!t) return;
    client alone[N_CLIENTS], many[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        alone[k] = (client){.t = t, .k = k};
        client_main(&alone[k]);
        CHECK_EQ(alone[k].n, N_TOK);
        CHECK_STREQ(alone[k].reason, "length");
    }
    pthread_t th[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        many[k] = (client){.t = t, .k = k, .abort_after = k == 2 ? 3 : 0};
        pthread_create(&th[k], NULL, client_main, &many[k]);
    }
    for (int k = 0; k < N_CLIENTS; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < N_CLIENTS; k++) {
        if (k == 2) {
            CHECK_STREQ(many[k].reason, "abort");
            CHECK(memcmp(many[k].tokens, alone[k].tokens, sizeof(int) * 3) == 0);
            continue;
        }
        CHECK_EQ(many[k].n, N_TOK);
        CHECK_MSG(memcmp(many[k].tokens, alone[k].tokens, sizeof alone[k].tokens) == 0,
                  "client %d differs", k);
    }
    // a rejected request is a synchronous error
    sampling_params bad = sampling_params_default();
    bad.top_p = 0;
    int32_t p[3] = {1, 2, 3};
    CHECK(et_submit(t, p, 3, &bad, err) == NULL);
    CHECK_CONTAINS(err, "top_p");
    usleep(20000);
    engine_stats s;
    et_stats(t, &s);
    CHECK_EQ(s.pages_used, 0);
    // a request still running at stop finishes with "abort"
    sampling_params longp = sampling_params_default();
    longp.max_tokens = 400;
    longp.ignore_eos = 1;
    et_request *r = et_submit(t, p, 3, &longp, err);
    CHECK(r != NULL);
    et_stop(t);
    et_event ev;
    const char *reason = NULL;
    while (r && et_next(r, &ev, 1000) == 1)
        if (ev.finished) reason = ev.finish_reason;
    CHECK_STREQ(reason, "abort");
    et_release(r);
}

// Hundreds of requests in flight, finishing at different steps: every one is
// found by its id (the engine thread's index grows and shifts entries back
// as they leave) and gets exactly its own count of tokens.
TEST(engine_thread_many_requests_index) {
    enum { N = 300 };
    engine_config cfg = engine_config_default();
    cfg.model_dir = tiny_model_dir();
    cfg.device = DEVICE_CPU;
    cfg.max_num_seqs = 64;
    cfg.max_num_batched_tokens = 256;
    cfg.kv_cache_memory = 8u << 20;
    char err[LLM_ERR_LEN] = "";
    engine_thread *t = et_start(&cfg, err);
    CHECK_MSG(t != NULL, "%s", err);
    if (!t) return;
    et_request **r = calloc(N, sizeof *r);
    for (int i = 0; i < N; i++) {
        sampling_params sp = sampling_params_default();
        sp.temperature = 0;
        sp.ignore_eos = 1;
        sp.max_tokens = 1 + i % 7;
        int32_t p[4] = {(int32_t)(i % 100), 3, 5, 7};
        r[i] = et_submit(t, p, 4, &sp, err);
        CHECK_MSG(r[i] != NULL, "%s", err);
    }
    for (int i = 0; i < N; i++) {
        if (!r[i]) continue;
        et_event ev;
        int n = 0;
        const char *reason = NULL;
        while (!reason && et_next(r[i], &ev, 10000) == 1) {
            if (ev.token >= 0) n++;
            if (ev.finished) reason = ev.finish_reason;
        }
        CHECK_EQ(n, 1 + i % 7);
        CHECK_STREQ(reason ? reason : "(none)", "length");
        et_release(r[i]);
    }
    free(r);
    engine_stats s;
    et_stats(t, &s);
    CHECK_EQ(s.running + s.waiting, 0);
    et_stop(t);
}
