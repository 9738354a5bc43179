// client_http.h - the transfer engine of llm_client: many concurrent requests
// to an OpenAI-compatible server driven by one thread through libcurl's multi
// interface (curl_multi_poll), with streamed (SSE) responses timestamped per
// chunk on CLOCK_MONOTONIC, failures classified by type, and retries with
// exponential backoff for connection errors, 5xx and 429 only.
#ifndef LLM_CLIENT_HTTP_H
#define LLM_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "client_sse.h"

typedef enum { API_CHAT, API_COMPLETIONS, API_GENERATE } client_api;

// The API's name as on the command line ("openai-chat", ...) and its path.
const char *client_api_name(client_api a);
const char *client_api_path(client_api a);
// Parses an --api value. Returns 0, or -1 when unknown.
int client_api_parse(const char *s, client_api *a);

// Failure types, in report order. CERR_NONE: the request completed.
typedef enum {
    CERR_NONE,
    CERR_CONNECT,        // could not connect, or the connection closed before any response
    CERR_TIMEOUT,        // --timeout passed
    CERR_HTTP_429,       // too many requests
    CERR_HTTP_4XX,       // any other 4xx
    CERR_HTTP_5XX,       // 5xx
    CERR_DROPPED,        // connection closed after the response began, before it was complete
    CERR_MALFORMED_SSE,  // a stream event that is not JSON, or not an SSE stream at all
    CERR_MALFORMED_JSON, // a non-streamed body that is not the expected JSON
    CERR_STREAM_ERROR,   // the server sent an error object inside the stream
    CERR_OTHER,          // any other transport failure
    CERR_COUNT
} client_err;

const char *client_err_name(client_err e);

// Where a request's output token count came from.
typedef enum { TOK_NONE, TOK_USAGE, TOK_CHUNKS } client_tok_src;

// One request: its body, then what was measured. Times are CLOCK_MONOTONIC ns.
typedef struct client_req {
    char *body;      // JSON request body (owned)
    int stream;      // the response is an SSE stream
    int keep_text;   // accumulate the generated text
    int input_len;   // prompt tokens as intended (synthetic), else -1
    int index;       // caller's index (prompt number)
    int64_t t_sched; // when it should be sent (open loop); 0: as soon as a slot is free
    // measured (the last attempt's, for a retried request)
    int64_t t_send, t_first, t_last, t_end; // t_first/t_last: first/last content chunk; 0 if none
    int64_t *chunk_ts;                      // [n_chunks] arrival of each content chunk
    int n_chunks, cap_chunks;
    char *text; // generated text when keep_text (NUL terminated)
    size_t text_len, text_cap;
    int prompt_tokens, completion_tokens; // from the server's usage; -1 if not sent
    int output_tokens;                    // completion_tokens, else n_chunks (see tok_src)
    client_tok_src tok_src;
    int http_status;
    client_err err;
    char errmsg[256];
    int attempts; // 1 + retries
    int done;     // saw [DONE] (stream) or a complete body
    // transfer state (private to client_http.c)
    void *easy;
    void *headers;
    sse_parser sse;
    char *resp; // non-streamed or error body
    size_t resp_len, resp_cap;
    double retry_after_s; // Retry-After of the last response; <0 when absent
    int64_t t_due;        // retry: when to resend
    int64_t t_write;      // arrival of the bytes being parsed
    int is_sse;           // Content-Type: text/event-stream
    const void *drv;      // the client_drive_opts driving it
} client_req;

// Creates a request owning body (a heap string). Returns NULL when out of memory.
client_req *client_req_new(char *body, int stream);
void client_req_free(client_req *r);

typedef struct {
    const char *base_url; // "http://host:port" (a trailing '/' is ignored)
    const char *api_key;  // Bearer token, or NULL
    client_api api;
    double timeout_s; // per attempt, whole transfer
    int max_retries;
    int max_concurrency; // in flight at once; 0: unlimited
    // Returns the next request to send (its t_sched set for open loop), or
    // NULL when there are no more. Called only when a slot is free.
    client_req *(*next)(void *ud, int64_t now);
    // Called when a request has finished for good (completed or failed).
    void (*on_done)(void *ud, client_req *r);
    // Called for each piece of generated text as it arrives (may be NULL).
    void (*on_text)(void *ud, client_req *r, const char *s, size_t n);
    // Called about ten times a second (may be NULL).
    void (*on_tick)(void *ud, int in_flight);
    void *ud;
} client_drive_opts;

typedef struct {
    int max_in_flight; // peak concurrent requests
    int retries;       // resends, over all requests
} client_drive_stats;

// Sends every request next() yields, at most max_concurrency at a time, each
// at its t_sched, and returns when all have finished. Returns 0, or -1 with
// err when libcurl cannot be set up (a failed request is not an error here:
// it is recorded in the request).
int client_drive(const client_drive_opts *o, client_drive_stats *st, char *err);

// One blocking GET of base_url + path. Returns the body (heap) and its status,
// or NULL with err.
char *client_get(const char *base_url, const char *path, const char *api_key, double timeout_s,
                 int *status, char *err);

// CLOCK_MONOTONIC in nanoseconds.
int64_t client_now_ns(void);

// One-time libcurl set-up; call from main before anything else.
int client_global_init(char *err);

#endif
