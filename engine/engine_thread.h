// engine_thread.h - the engine for multi-threaded callers (the HTTP server):
// one engine thread owns the engine and the device and runs steps in a
// loop; other threads submit requests through a locked queue and read each
// request's tokens from its own output channel.
#ifndef LLM_ENGINE_THREAD_H
#define LLM_ENGINE_THREAD_H

#include "engine.h"

typedef struct engine_thread engine_thread;
typedef struct et_request et_request;

typedef struct {
    int token;            // -1 when the event only finishes the request
    sample_result sample; // logprobs, when asked for
    int finished;
    const char *finish_reason; // "stop", "length", "abort" when finished
    int n_prompt, n_cached, n_generated;
    double queue_time; // seconds waiting for the first schedule (-1: unknown)
} et_event;

// Starts the engine thread and creates the engine on it. Blocks until the
// engine is ready. Returns NULL with err when creation failed.
engine_thread *et_start(const engine_config *cfg, char *err);

// Submits a request and waits until the engine has accepted or rejected it.
// Returns a handle (the caller owns one reference: et_release it), or NULL
// with err when the engine rejects the request (bad parameters, too long).
et_request *et_submit(engine_thread *t, const int32_t *prompt, int n_prompt,
                      const sampling_params *sp, char *err);

// Waits up to timeout_ms (-1: forever) for the request's next event.
// Returns 1 with *ev filled, 0 on timeout. After the finished event it
// returns 0 at once.
int et_next(et_request *r, et_event *ev, int timeout_ms);

// Asks the engine to abort the request (a client disconnected); its pages
// are freed at the next step and a finished event with "abort" follows
// unless the request had already finished.
void et_abort(et_request *r);

// Asks the engine to abort every admitted request (a server shutting down
// after its grace period); each gets its finished event with "abort".
void et_abort_all(engine_thread *t);

// Drops the caller's reference; the handle is freed once the engine has
// dropped its own. Aborts the request if it is still running.
void et_release(et_request *r);

// A snapshot of the engine's stats taken after its latest step (and after
// its latest admissions); `waiting` also counts the requests submitted and not
// yet taken in by the engine thread (they wait while a step runs).
void et_stats(engine_thread *t, engine_stats *s);
const model_config *et_model_config(const engine_thread *t);
// The device the engine runs on (as resolved from --device auto).
const device_info *et_device(const engine_thread *t);

// Stops the thread: running requests finish with "abort"; then destroys the
// engine. Handles still held by callers stay valid until released (callers
// must not submit or abort concurrently with et_stop).
void et_stop(engine_thread *t);

#endif
