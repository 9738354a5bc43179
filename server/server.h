// server.h - the HTTP inference server's shared state and the helpers its
// handlers use. One libmicrohttpd daemon (a thread per connection) in front of
// one engine thread (engine_thread.h); handlers block on their request's
// event channel, so a slow or stuck client only ever holds its own thread.
#ifndef LLM_SERVER_H
#define LLM_SERVER_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "chat_template.h"
#include "engine_thread.h"
#include "metrics.h"
#include "tokenizer.h"

#define SERVER_VERSION "0.1.0"

typedef struct {
    // flags
    const char *host;
    int port;
    const char *api_key;    // NULL: no authentication
    const char *model_name; // served model name
    size_t max_body_bytes;  // larger bodies get 413
    int max_queue;          // accepted requests not yet running; beyond: 503
    double request_timeout; // seconds; 0 = none
    double shutdown_grace;  // seconds in-flight requests get at SIGTERM
    int log_requests;       // 1: log request bodies too
    engine_config ecfg;

    // set once the model is loaded, then published by storing `ready` with
    // release order; handlers read `ready` with acquire order (server_ready)
    // before touching them
    engine_thread *et;
    tokenizer *tok;
    chat_template *ct; // NULL when the model has none
    int max_model_len;
    int vocab_size;
    double created; // unix time the model was loaded

    int ready;    // 1: serving; 0: loading; -1: failed (atomic)
    int draining; // 1: shutting down, new requests get 503 (atomic)

    pthread_mutex_t mu; // guards the counters below
    int in_flight;      // generation requests accepted and not yet finished
    uint64_t next_id;

    server_metrics metrics;

    int use_generation_config; // 1: the model's generation_config.json sampling defaults
    const char *docs_dir;      // --docs-dir: Swagger UI assets (NULL: looked for)
    struct docs_asset *docs;   // the Swagger UI files served under /docs/ (docs.c)
    int n_docs;
} server;

// One HTTP exchange: the body as it arrives, then what was answered.
typedef struct {
    server *s;
    struct MHD_Connection *conn;
    char *body;
    size_t body_len, body_cap;
    int body_too_large;
    double t_arrival;
    char id[40]; // request id for logs and responses
    // filled by handlers for the access log
    int status;
    int prompt_tokens, completion_tokens;
    const char *finish_reason;
    const char *allow; // the Allow header of a 405
    int streaming;     // the handler answered with a stream
    int refs;          // the connection's, plus a stream's (api_common.h)
    int closed_early;  // the connection ended before the response was sent
    char addr[64];     // client address, for the log
} http_req;

// --- responses (http.c) ---
// Queues a JSON response (takes ownership of body, a cJSON tree, and frees it).
enum MHD_Result http_send_json(http_req *q, int status, cJSON *body);
// Queues a response with the given body text and content type (copied).
enum MHD_Result http_send_text(http_req *q, int status, const char *content_type, const char *text,
                               size_t len);
// Queues an OpenAI-style error: {"error":{"message","type","param","code"}}.
// type NULL picks the usual one for the status; param and code may be NULL.
enum MHD_Result http_send_error(http_req *q, int status, const char *type, const char *param,
                                const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

// 1 when the client has hung up (its socket reports EOF or an error).
int http_client_gone(http_req *q);

// --- handlers ---
enum MHD_Result api_completions(http_req *q, cJSON *body);        // POST /v1/completions
enum MHD_Result api_chat_completions(http_req *q, cJSON *body);   // POST /v1/chat/completions
enum MHD_Result api_generate(http_req *q, cJSON *body, int chat); // POST /generate, /chat
enum MHD_Result api_tokenize(http_req *q, cJSON *body);           // POST /tokenize
enum MHD_Result api_detokenize(http_req *q, cJSON *body);         // POST /detokenize
enum MHD_Result api_models(http_req *q);                          // GET /v1/models
enum MHD_Result api_root(http_req *q);                            // GET /
enum MHD_Result api_health(http_req *q);                          // GET /health
enum MHD_Result api_metrics(http_req *q);                         // GET /metrics
enum MHD_Result api_version(http_req *q);                         // GET /version
enum MHD_Result api_openapi(http_req *q);                         // GET /openapi.json
enum MHD_Result api_docs(http_req *q);                            // GET /docs

// /docs as Swagger UI over /openapi.json (docs.c): docs_load reads the
// assets (swagger-ui-bundle.js, swagger-ui.css, ...) from s->docs_dir or the
// first standard place that has them (the pip package swagger-ui-py in the
// repository's .venv, system Python or /usr/share/javascript); without them
// /docs is a plain page listing the endpoints. Returns -1 with err only when
// an explicit --docs-dir lacks them.
int docs_load(server *s, char *err);
void docs_free(server *s);
// GET /docs/<asset>: 1 with the response queued when url is one, else 0.
int docs_asset_route(http_req *q, const char *url, enum MHD_Result *ret);
// The Swagger UI page (when the assets are loaded; api_docs answers with it).
enum MHD_Result docs_swagger_page(http_req *q);

// Starts the daemon on s->host:s->port. Returns NULL with err on failure.
struct MHD_Daemon *http_start(server *s, char *err);

// The loading state (acquire: the model's fields are visible after a 1) and
// whether the server is shutting down.
static inline int server_ready(const server *s) {
    return __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE);
}
static inline int server_draining(const server *s) {
    return __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
}

// New request id with the given prefix ("cmpl-", "chatcmpl-").
void server_new_id(server *s, const char *prefix, char *out, size_t n);

#endif
