// http.c - the libmicrohttpd side of the server: routing, request bodies,
// authentication, JSON and error responses, the access log.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_common.h"
#include "utf8.h"
#include "util.h"

// --- responses ---

static void add_common_headers(http_req *q, struct MHD_Response *r) {
    MHD_add_response_header(r, "X-Request-Id", q->id);
    MHD_add_response_header(r, "Server", "llm/" SERVER_VERSION);
}

enum MHD_Result http_send_text(http_req *q, int status, const char *content_type, const char *text,
                               size_t len) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", content_type);
    add_common_headers(q, r);
    if (status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 405 && q->allow) MHD_add_response_header(r, "Allow", q->allow);
    enum MHD_Result ret = MHD_queue_response(q->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    q->status = status;
    return ret;
}

enum MHD_Result http_send_json(http_req *q, int status, cJSON *body) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";
        return http_send_text(q, 500, "application/json", oom, sizeof oom - 1);
    }
    enum MHD_Result ret = http_send_text(q, status, "application/json", text, strlen(text));
    free(text);
    return ret;
}

static const char *default_error_type(int status) {
    switch (status) {
    case 401:
        return "authentication_error";
    case 404:
        return "not_found_error";
    case 405:
        return "method_not_allowed_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
        return "service_unavailable";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

enum MHD_Result http_send_error(http_req *q, int status, const char *type, const char *param,
                                const char *code, const char *fmt, ...) {
    char msg[LLM_ERR_LEN + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!type) type = default_error_type(status);
    metrics_error(&q->s->metrics, status, type);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    return http_send_json(q, status, root);
}

int http_client_gone(http_req *q) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void server_new_id(server *s, const char *prefix, char *out, size_t n) {
    pthread_mutex_lock(&s->mu);
    uint64_t k = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    // a per-process random part keeps ids unique across restarts
    static uint64_t salt;
    if (!salt) salt = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ull;
    snprintf(out, n, "%s%012llx%08llx", prefix, (unsigned long long)(salt & 0xffffffffffffull),
             (unsigned long long)k);
}

// --- the access handler ---

// Constant-time comparison of the bearer token.
static int key_ok(server *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++)
        diff |= (unsigned char)h[i] ^ (unsigned char)s->api_key[i % (b ? b : 1)];
    return diff == 0;
}

// Bodies up to this many times the limit are drained before the 413.
#define DRAIN_LIMIT_FACTOR 16

typedef enum { R_GET = 1, R_POST = 2 } route_methods;

static enum MHD_Result api_generate_plain(http_req *q, cJSON *body) {
    return api_generate(q, body, 0);
}
static enum MHD_Result api_generate_chat(http_req *q, cJSON *body) {
    return api_generate(q, body, 1);
}

typedef struct {
    const char *path;
    int methods;
    int protected_; // needs the API key
    int needs_model;
    enum MHD_Result (*get)(http_req *q);               // GET endpoints
    enum MHD_Result (*post)(http_req *q, cJSON *body); // POST endpoints: the body's JSON object
} route;

static const route routes[] = {
    {"/", R_GET, 0, 0, api_root, NULL},
    {"/health", R_GET, 0, 0, api_health, NULL},
    {"/metrics", R_GET, 0, 0, api_metrics, NULL},
    {"/version", R_GET, 0, 0, api_version, NULL},
    {"/openapi.json", R_GET, 0, 0, api_openapi, NULL},
    {"/docs", R_GET, 0, 0, api_docs, NULL},
    {"/v1/models", R_GET, 1, 1, api_models, NULL},
    {"/v1/completions", R_POST, 1, 1, NULL, api_completions},
    {"/v1/chat/completions", R_POST, 1, 1, NULL, api_chat_completions},
    {"/generate", R_POST, 1, 1, NULL, api_generate_plain},
    {"/chat", R_POST, 1, 1, NULL, api_generate_chat},
    {"/tokenize", R_POST, 1, 1, NULL, api_tokenize},
    {"/detokenize", R_POST, 1, 1, NULL, api_detokenize},
};

static enum MHD_Result dispatch(http_req *q, const route *rt) {
    if (rt->get) return rt->get(q);

    // POST endpoints with a JSON body

    // POST endpoints with a JSON body
    if (q->body_too_large)
        return http_send_error(q, 413, NULL, NULL, NULL,
                               "request body is larger than the limit of %zu bytes",
                               q->s->max_body_bytes);
    if (!q->body_len)
        return http_send_error(q, 400, NULL, NULL, NULL,
                               "request body is empty: expected a JSON object");
    if (!utf8_valid(q->body, q->body_len))
        return http_send_error(q, 400, NULL, NULL, NULL, "request body is not valid UTF-8");
    const char *end = NULL;
    cJSON *body = cJSON_ParseWithLengthOpts(q->body, q->body_len, &end, 0);
    if (!body) {
        size_t at = end && end >= q->body ? (size_t)(end - q->body) : 0;
        return http_send_error(q, 400, NULL, NULL, NULL,
                               "request body is not valid JSON (error near byte %zu)", at);
    }
    enum MHD_Result r;
    if (!cJSON_IsObject(body)) {
        r = http_send_error(q, 400, NULL, NULL, NULL, "request body must be a JSON object");
    } else {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
        if (model && !cJSON_IsNull(model) && !cJSON_IsString(model))
            r = http_send_error(q, 400, NULL, "model", NULL, "'model' must be a string");
        else if (cJSON_IsString(model) && strcmp(model->valuestring, q->s->model_name) != 0)
            r = http_send_error(q, 404, NULL, "model", "model_not_found",
                                "The model `%.200s` does not exist.", model->valuestring);
        else
            r = rt->post(q, body);
    }
    cJSON_Delete(body);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    server *s = cls;
    http_req *q = *con_cls;
    if (!q) { // first call: headers only
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        q->s = s;
        q->conn = conn;
        q->t_arrival = llm_now();
        q->refs = 1;
        snprintf(q->addr, sizeof q->addr, "-");
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, q->addr,
                      sizeof q->addr);
        server_new_id(s, "req-", q->id, sizeof q->id);
        *con_cls = q;
        metrics_http_request(&s->metrics);
        // a body over the limit is read and dropped, then answered 413 (a
        // client that is still sending would not see an early answer); one
        // announced absurdly large is answered at once and the connection closed
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body_bytes) {
            q->body_too_large = 1;
            if (strtoull(cl, NULL, 10) > DRAIN_LIMIT_FACTOR * (unsigned long long)s->max_body_bytes)
                return http_send_error(q, 413, NULL, NULL, NULL,
                                       "request body is larger than the limit of %zu bytes",
                                       s->max_body_bytes);
        }
        return MHD_YES;
    }
    if (*upload_data_size) { // a piece of the body
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (q->body_too_large || q->body_len + n > s->max_body_bytes) {
            q->body_too_large = 1;
            return MHD_YES; // keep reading; answered once the body is in
        }
        if (q->body_len + n + 1 > q->body_cap) {
            size_t cap = q->body_cap ? q->body_cap : 4096;
            while (cap < q->body_len + n + 1) cap *= 2;
            char *b = realloc(q->body, cap);
            if (!b) return MHD_NO;
            q->body = b;
            q->body_cap = cap;
        }
        memcpy(q->body + q->body_len, upload_data, n);
        q->body_len += n;
        q->body[q->body_len] = 0;
        return MHD_YES;
    }
    if (q->status) return MHD_YES; // already answered (413 on the headers)

    // the whole request is in: route it
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(routes[i].path, url)) rt = &routes[i];
    enum MHD_Result asset;
    if (!rt && (!strcmp(method, "GET") || !strcmp(method, "HEAD")) &&
        docs_asset_route(q, url, &asset))
        return asset; // Swagger UI's files under /docs/
    if (!rt) return http_send_error(q, 404, NULL, NULL, NULL, "no such endpoint: %.200s", url);
    int m = !strcmp(method, "GET") || !strcmp(method, "HEAD") ? R_GET
            : !strcmp(method, "POST")                         ? R_POST
                                                              : 0;
    if (!(rt->methods & m)) {
        q->allow = rt->methods == R_GET ? "GET, HEAD" : "POST";
        return http_send_error(q, 405, NULL, NULL, NULL, "method %.20s is not allowed on %s",
                               m ? method : "(other)", rt->path);
    }
    if (rt->protected_ && s->api_key && !key_ok(s, conn))
        return http_send_error(q, 401, NULL, NULL, "invalid_api_key",
                               "Incorrect or missing API key: send 'Authorization: Bearer KEY'.");
    int ready = server_ready(s);
    if (rt->needs_model && ready != 1)
        return http_send_error(q, 503, NULL, NULL, NULL,
                               ready == 0 ? "the model is still loading"
                                          : "the model failed to load");
    if (rt->needs_model && server_draining(s))
        return http_send_error(q, 503, NULL, NULL, NULL, "the server is shutting down");
    if (s->log_requests)
        fprintf(stderr, "request %s %s %s body=%.*s%s\n", q->id, method, url,
                q->body_len > 2000 ? 2000 : (int)q->body_len, q->body ? q->body : "",
                q->body_len > 2000 ? "..." : "");
    (void)version;
    return dispatch(q, rt);
}

void http_req_ref(http_req *q) {
    __atomic_add_fetch(&q->refs, 1, __ATOMIC_ACQ_REL);
}

void http_req_unref(http_req *q) {
    if (__atomic_sub_fetch(&q->refs, 1, __ATOMIC_ACQ_REL)) return;
    double ms = (llm_now() - q->t_arrival) * 1e3;
    fprintf(stderr,
            "access %s %s status=%d prompt_tokens=%d completion_tokens=%d finish=%s "
            "latency_ms=%.1f%s\n",
            q->id, q->addr, q->status, q->prompt_tokens, q->completion_tokens,
            q->finish_reason ? q->finish_reason : "-", ms,
            q->closed_early ? " (client closed the connection)" : "");
    free(q->body);
    free(q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    http_req *q = *con_cls;
    if (!q) return;
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) q->closed_early = 1;
    http_req_unref(q);
}

static void on_log(void *cls, const char *fmt, va_list ap) {
    fprintf(stderr, "llm_server: http: ");
    vfprintf(stderr, fmt, ap);
}

// Connection threads run handlers and the detokenizer, nothing deep.
#define THREAD_STACK_BYTES (512 * 1024)
#define MAX_CONNECTIONS 4096
#define IDLE_TIMEOUT_S 60

struct MHD_Daemon *http_start(server *s, char *err) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    if (inet_pton(AF_INET, s->host, &addr.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(s->host, NULL, &hints, &res) != 0 || !res) {
            llm_errf(err, "--host %s: not an IPv4 address or a resolvable name", s->host);
            return NULL;
        }
        addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    // a thread per connection: handlers block on their request's events
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ITC | MHD_USE_ERROR_LOG,
        (uint16_t)s->port, NULL, NULL, on_request, s,
        // the logger must come first to catch every message
        MHD_OPTION_EXTERNAL_LOGGER, on_log, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        // idle connections (a stalled body, a silent client) are closed
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK_BYTES,
        // no SO_REUSEPORT: a second server on a busy port must fail, not share
        // the port's traffic (libmicrohttpd still sets SO_REUSEADDR, so a
        // restart is not held up by connections in TIME_WAIT)
        MHD_OPTION_END);
    if (!d)
        llm_errf(err,
                 "cannot listen on %s:%d: the port is in use (another llm_server?) or not "
                 "allowed; choose another with --port",
                 s->host, s->port);
    return d;
}
