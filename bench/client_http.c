// client_http.c - see client_http.h.
#include "client_http.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

// Backoff before resend k (k = 1, 2, ...): RETRY_BASE_S * 2^(k-1), at most
// RETRY_MAX_S; a Retry-After header is honoured instead (capped at --timeout,
// so a hostile header cannot park a request for an hour).
#define RETRY_BASE_S 0.25
#define RETRY_MAX_S 8.0
#define TICK_NS 100000000LL // on_tick and the idle wake-up: ten times a second
#define ERR_BODY_MAX 4096   // bytes of an error body kept
#define BODY_MAX (64 << 20) // a non-streamed body larger than this is malformed
#define ERRMSG_SNIPPET 80   // characters of an offending event quoted in errmsg

static const char *const api_names[] = {"openai-chat", "openai-completions", "generate"};
static const char *const api_paths[] = {"/v1/chat/completions", "/v1/completions", "/generate"};

const char *client_api_name(client_api a) {
    return api_names[a];
}
const char *client_api_path(client_api a) {
    return api_paths[a];
}

int client_api_parse(const char *s, client_api *a) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, api_names[i])) return *a = (client_api)i, 0;
    return -1;
}

static const char *const err_names[CERR_COUNT] = {
    "none",    "connect",       "timeout",        "http_429",     "http_4xx", "http_5xx",
    "dropped", "malformed_sse", "malformed_json", "stream_error", "other"};

const char *client_err_name(client_err e) {
    return err_names[e];
}

int64_t client_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int client_global_init(char *err) {
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    return rc ? llm_errf(err, "libcurl: %s", curl_easy_strerror(rc)) : 0;
}

client_req *client_req_new(char *body, int stream) {
    client_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->body = body;
    r->stream = stream;
    r->input_len = -1;
    r->prompt_tokens = r->completion_tokens = r->output_tokens = -1;
    r->retry_after_s = -1;
    return r;
}

// Clears what an attempt measured, keeping the body and schedule.
static void req_reset(client_req *r) {
    if (r->easy) curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    r->easy = r->headers = NULL;
    sse_free(&r->sse);
    r->resp_len = r->text_len = 0;
    r->n_chunks = 0;
    r->t_send = r->t_first = r->t_last = r->t_end = 0;
    r->prompt_tokens = r->completion_tokens = r->output_tokens = -1;
    r->tok_src = TOK_NONE;
    r->http_status = 0;
    r->err = CERR_NONE;
    r->errmsg[0] = 0;
    r->done = 0;
    r->retry_after_s = -1;
    r->is_sse = 0;
}

void client_req_free(client_req *r) {
    if (!r) return;
    req_reset(r);
    free(r->body);
    free(r->chunk_ts);
    free(r->text);
    free(r->resp);
    free(r);
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *b = realloc(*buf, c);
        if (!b) return -1;
        *buf = b, *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

static void set_err(client_req *r, client_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(client_req *r, client_err e, const char *fmt, ...) {
    r->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
    va_end(ap);
}

// --- transfer callbacks ------------------------------------------------------

// A piece of generated text arrived at r->t_write.
static int on_content(client_req *r, const char *s, size_t n) {
    if (!n) return 0;
    if (r->n_chunks == r->cap_chunks) {
        int c = r->cap_chunks ? 2 * r->cap_chunks : 64;
        int64_t *t = realloc(r->chunk_ts, (size_t)c * sizeof *t);
        if (!t) return -1;
        r->chunk_ts = t, r->cap_chunks = c;
    }
    r->chunk_ts[r->n_chunks++] = r->t_write;
    if (!r->t_first) r->t_first = r->t_write;
    r->t_last = r->t_write;
    if (r->keep_text && append(&r->text, &r->text_len, &r->text_cap, s, n)) return -1;
    const client_drive_opts *o = r->drv;
    if (o && o->on_text) o->on_text(o->ud, r, s, n);
    return 0;
}

static void read_usage(client_req *r, const cJSON *j) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (!cJSON_IsObject(u)) return;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    if (cJSON_IsNumber(c)) r->completion_tokens = c->valueint;
    if (cJSON_IsNumber(p)) r->prompt_tokens = p->valueint;
}

static const char *error_message(const cJSON *e) {
    if (cJSON_IsString(e)) return e->valuestring;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    return cJSON_IsString(m) ? m->valuestring : "(no message)";
}

// The generated text of a chunk or body: choices[0].delta.content (chat
// stream), .message.content (chat), .text (completions); "text" (/generate).
static const char *chunk_text(const cJSON *j) {
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    const cJSON *c0 = cJSON_IsArray(ch) ? cJSON_GetArrayItem(ch, 0) : NULL;
    const cJSON *t = NULL;
    if (c0) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(c0, "delta");
        if (!d) d = cJSON_GetObjectItemCaseSensitive(c0, "message");
        t = d ? cJSON_GetObjectItemCaseSensitive(d, "content")
              : cJSON_GetObjectItemCaseSensitive(c0, "text");
    } else {
        t = cJSON_GetObjectItemCaseSensitive(j, "text");
    }
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int on_event(void *ud, const char *data, size_t len) {
    client_req *r = ud;
    if (r->done) return 0; // events after [DONE] are ignored
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        r->done = 1;
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        set_err(r, CERR_MALFORMED_SSE, "event is not a JSON object: %.*s", ERRMSG_SNIPPET, data);
        return 1;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e && !cJSON_IsNull(e)) {
        set_err(r, CERR_STREAM_ERROR, "%s", error_message(e));
        cJSON_Delete(j);
        return 1;
    }
    const char *t = chunk_text(j);
    int rc = t ? on_content(r, t, strlen(t)) : 0;
    read_usage(r, j);
    cJSON_Delete(j);
    return rc;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
    client_req *r = ud;
    size_t bytes = size * n;
    r->t_write = client_now_ns();
    if (r->stream && r->http_status == 200 && r->is_sse)
        return sse_feed(&r->sse, p, bytes, on_event, r) ? 0 : bytes;
    size_t limit = r->http_status == 200 ? BODY_MAX : ERR_BODY_MAX;
    if (r->resp_len + bytes > limit) {
        if (r->http_status == 200) {
            set_err(r, CERR_MALFORMED_JSON, "response body over %d bytes", BODY_MAX);
            return 0;
        }
        bytes = limit - r->resp_len; // keep the start of an error body, drop the rest
    }
    if (append(&r->resp, &r->resp_len, &r->resp_cap, p, bytes)) return 0;
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    client_req *r = ud;
    size_t len = size * n;
    char line[256];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = 0;
    int code;
    if (!strncmp(line, "HTTP/", 5) && sscanf(line, "HTTP/%*s %d", &code) == 1) {
        r->http_status = code; // a new status line (after 100 Continue, redirects)
        r->retry_after_s = -1;
        r->is_sse = 0;
    } else if (!strncasecmp(line, "retry-after:", 12)) {
        char *end;
        double v = strtod(line + 12, &end);
        if (end != line + 12 && v >= 0) r->retry_after_s = v;
    } else if (!strncasecmp(line, "content-type:", 13)) {
        r->is_sse = strstr(line + 13, "text/event-stream") != NULL;
    }
    return len;
}

// --- one attempt: start and classify --------------------------------------------

static int req_start(client_req *r, const client_drive_opts *o, CURLM *m, char *err) {
    CURL *e = curl_easy_init();
    if (!e) return llm_errf(err, "curl_easy_init failed");
    r->easy = e;
    r->drv = o;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:"); // no 100-continue round trip on large bodies
    if (r->stream) h = curl_slist_append(h, "Accept: text/event-stream");
    if (o->api_key && *o->api_key) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->api_key);
        h = curl_slist_append(h, auth);
    }
    r->headers = h;
    char url[2048];
    size_t bl = strlen(o->base_url);
    while (bl && o->base_url[bl - 1] == '/') bl--;
    snprintf(url, sizeof url, "%.*s%s", (int)bl, o->base_url, client_api_path(o->api));
    long tmo = (long)(o->timeout_s * 1000);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, tmo);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    r->attempts++;
    r->t_send = client_now_ns();
    if (curl_multi_add_handle(m, e) != CURLM_OK)
        return llm_errf(err, "curl_multi_add_handle failed");
    return 0;
}

static void http_error(client_req *r) {
    int s = r->http_status;
    client_err e = s == 429   ? CERR_HTTP_429
                   : s >= 500 ? CERR_HTTP_5XX
                   : s >= 400 ? CERR_HTTP_4XX
                              : CERR_OTHER;
    const char *msg = r->resp ? r->resp : "";
    cJSON *j = r->resp_len ? cJSON_ParseWithLength(r->resp, r->resp_len) : NULL;
    const cJSON *eo = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (eo) msg = error_message(eo);
    set_err(r, e, "HTTP %d: %.200s", s, msg);
    cJSON_Delete(j);
}

// A complete non-streamed body.
static void parse_body(client_req *r) {
    cJSON *j = cJSON_ParseWithLength(r->resp ? r->resp : "", r->resp_len);
    const char *t = cJSON_IsObject(j) ? chunk_text(j) : NULL;
    if (!t) {
        set_err(r, CERR_MALFORMED_JSON, "body is not a completion: %.*s", ERRMSG_SNIPPET,
                r->resp ? r->resp : "");
    } else {
        r->t_write = r->t_end;
        if (on_content(r, t, strlen(t)) == 0) r->done = 1;
        // a non-streamed body has no first-token time and no inter-token gaps
        r->t_first = 0;
        r->n_chunks = 0;
        read_usage(r, j);
    }
    cJSON_Delete(j);
}

static void classify(client_req *r, CURLcode rc) {
    r->t_end = client_now_ns();
    if (r->err != CERR_NONE) return; // set by a callback (malformed_sse, stream_error, body size)
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        set_err(r, CERR_TIMEOUT, "no complete response within the timeout");
    } else if (rc != CURLE_OK && r->http_status == 0) {
        set_err(r,
                rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                        rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR
                    ? CERR_CONNECT
                    : CERR_OTHER,
                "%s", curl_easy_strerror(rc));
    } else if (r->http_status != 200) {
        http_error(r);
    } else if (rc != CURLE_OK) {
        set_err(r, CERR_DROPPED, "%s", curl_easy_strerror(rc));
    } else if (r->stream && r->is_sse) {
        if (sse_finish(&r->sse, on_event, r) || r->err) {
            if (!r->err) set_err(r, CERR_OTHER, "out of memory");
        } else if (!r->done) {
            set_err(r, CERR_DROPPED, "stream ended before [DONE]");
        }
    } else if (r->stream) {
        set_err(r, CERR_MALFORMED_SSE, "response is not an event stream: %.*s", ERRMSG_SNIPPET,
                r->resp ? r->resp : "");
    } else {
        parse_body(r);
    }
    if (r->completion_tokens >= 0) {
        r->output_tokens = r->completion_tokens;
        r->tok_src = TOK_USAGE;
    } else if (r->stream) {
        r->output_tokens = r->n_chunks;
        r->tok_src = TOK_CHUNKS;
    }
}

static int retryable(const client_req *r) {
    return r->err == CERR_CONNECT || r->err == CERR_HTTP_5XX || r->err == CERR_HTTP_429;
}

static double backoff_s(const client_req *r, const client_drive_opts *o) {
    if (r->retry_after_s >= 0) return fmin(r->retry_after_s, o->timeout_s);
    return fmin(RETRY_BASE_S * pow(2, r->attempts - 1), RETRY_MAX_S);
}

// --- the driver ------------------------------------------------------------------

int client_drive(const client_drive_opts *o, client_drive_stats *st, char *err) {
    memset(st, 0, sizeof *st);
    CURLM *m = curl_multi_init();
    if (!m) return llm_errf(err, "curl_multi_init failed");
    client_req *pending = NULL;  // next request, waiting for its t_sched
    client_req **delayed = NULL; // retries waiting for their t_due
    int n_delayed = 0, cap_delayed = 0, in_flight = 0, exhausted = 0, rc = 0;
    int64_t next_tick = client_now_ns() + TICK_NS;
    for (;;) {
        int running;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            client_req *r;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(m, e);
            in_flight--;
            classify(r, res);
            if (retryable(r) && r->attempts <= o->max_retries) {
                if (n_delayed == cap_delayed) {
                    cap_delayed = cap_delayed ? 2 * cap_delayed : 16;
                    client_req **d = realloc(delayed, (size_t)cap_delayed * sizeof *d);
                    if (!d) {
                        rc = llm_errf(err, "out of memory");
                        goto out;
                    }
                    delayed = d;
                }
                r->t_due = r->t_end + (int64_t)(backoff_s(r, o) * 1e9);
                delayed[n_delayed++] = r;
                st->retries++;
            } else {
                curl_easy_cleanup(r->easy);
                r->easy = NULL;
                o->on_done(o->ud, r);
            }
        }
        int64_t now = client_now_ns();
        int free_slot = !o->max_concurrency || in_flight < o->max_concurrency;
        for (int i = 0; i < n_delayed && free_slot; i++) {
            client_req *r = delayed[i];
            if (r->t_due > now) continue;
            delayed[i--] = delayed[--n_delayed];
            int64_t sched = r->t_sched, due = r->t_due;
            int attempts = r->attempts;
            req_reset(r);
            r->t_sched = sched, r->t_due = due, r->attempts = attempts;
            if ((rc = req_start(r, o, m, err))) goto out;
            in_flight++;
            free_slot = !o->max_concurrency || in_flight < o->max_concurrency;
        }
        while (!exhausted && free_slot) {
            if (!pending && !(pending = o->next(o->ud, now))) {
                exhausted = 1;
                break;
            }
            if (pending->t_sched > now) break;
            if (!pending->t_sched) pending->t_sched = now;
            if ((rc = req_start(pending, o, m, err))) goto out;
            pending = NULL;
            in_flight++;
            free_slot = !o->max_concurrency || in_flight < o->max_concurrency;
        }
        if (in_flight > st->max_in_flight) st->max_in_flight = in_flight;
        if (exhausted && !in_flight && !n_delayed) break;
        if (now >= next_tick) {
            if (o->on_tick) o->on_tick(o->ud, in_flight);
            next_tick = now + TICK_NS;
        }
        int64_t wake = next_tick;
        if (pending && free_slot && pending->t_sched < wake) wake = pending->t_sched;
        for (int i = 0; i < n_delayed; i++)
            if (delayed[i]->t_due < wake) wake = delayed[i]->t_due;
        int64_t wait = wake - client_now_ns();
        int wait_ms = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        if (running || wait_ms) curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
out:
    free(delayed);
    curl_multi_cleanup(m);
    return rc;
}

// --- one blocking GET -------------------------------------------------------------

typedef struct {
    char *buf;
    size_t len, cap;
} membuf;

static size_t get_write(char *p, size_t size, size_t n, void *ud) {
    membuf *b = ud;
    return append(&b->buf, &b->len, &b->cap, p, size * n) ? 0 : size * n;
}

char *client_get(const char *base_url, const char *path, const char *api_key, double timeout_s,
                 int *status, char *err) {
    CURL *e = curl_easy_init();
    if (!e) return llm_errf(err, "curl_easy_init failed"), NULL;
    char url[2048], auth[1024];
    size_t bl = strlen(base_url);
    while (bl && base_url[bl - 1] == '/') bl--;
    snprintf(url, sizeof url, "%.*s%s", (int)bl, base_url, path);
    struct curl_slist *h = NULL;
    if (api_key && *api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        h = curl_slist_append(h, auth);
    }
    membuf b = {0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, get_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(e);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        free(b.buf);
        return llm_errf(err, "GET %s: %s", url, curl_easy_strerror(rc)), NULL;
    }
    *status = (int)code;
    if (!b.buf && append(&b.buf, &b.len, &b.cap, "", 0))
        return llm_errf(err, "out of memory"), NULL;
    return b.buf;
}
