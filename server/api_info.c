// api_info.c - what the server says about itself: GET /, /health (503 while
// loading or draining), /metrics (Prometheus text), /version, /v1/models.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_common.h"
#include "util.h"

enum MHD_Result api_health(http_req *q) {
    server *s = q->s;
    cJSON *o = cJSON_CreateObject();
    int st = 200;
    int ready = server_ready(s);
    if (ready == 1 && !server_draining(s)) {
        cJSON_AddStringToObject(o, "status", "ok");
    } else {
        st = 503;
        cJSON_AddStringToObject(o, "status",
                                ready == 0  ? "loading"
                                : ready < 0 ? "failed"
                                            : "shutting_down");
    }
    cJSON_AddStringToObject(o, "model", s->model_name);
    if (ready == 1) {
        engine_stats es;
        et_stats(s->et, &es);
        cJSON_AddNumberToObject(o, "running", es.running);
        cJSON_AddNumberToObject(o, "waiting", es.waiting);
        cJSON_AddNumberToObject(o, "kv_cache_usage",
                                es.pages_total ? (double)es.pages_used / es.pages_total : 0);
    }
    return http_send_json(q, st, o);
}

enum MHD_Result api_root(http_req *q) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "server", "llm");
    cJSON_AddStringToObject(o, "version", SERVER_VERSION);
    cJSON_AddStringToObject(o, "model", q->s->model_name);
    cJSON_AddStringToObject(o, "status", server_ready(q->s) == 1 ? "ok" : "loading");
    cJSON_AddStringToObject(o, "docs", "/docs");
    return http_send_json(q, 200, o);
}

enum MHD_Result api_metrics(http_req *q) {
    server *s = q->s;
    engine_stats es;
    memset(&es, 0, sizeof es);
    uint64_t used = 0, total = 0;
    if (server_ready(s) == 1) {
        et_stats(s->et, &es);
        total = es.device_total;
        used = es.weights + es.activations + es.overhead + es.kv_allocated;
        if (et_device(s->et)->kind == DEVICE_CPU) used = llm_rss_bytes();
    }
    pthread_mutex_lock(&s->mu);
    int in_flight = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    size_t len = 0;
    char *text = metrics_render(&s->metrics, &es, used, total, in_flight, s->model_name, &len);
    if (!text) return http_send_error(q, 500, NULL, NULL, NULL, "out of memory");
    enum MHD_Result r =
        http_send_text(q, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return r;
}

enum MHD_Result api_version(http_req *q) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", SERVER_VERSION);
    return http_send_json(q, 200, o);
}

enum MHD_Result api_models(http_req *q) {
    server *s = q->s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)(long long)s->created);
    cJSON_AddStringToObject(m, "owned_by", "llm");
    cJSON_AddStringToObject(m, "root", s->ecfg.model_dir ? s->ecfg.model_dir : s->ecfg.synthetic);
    cJSON_AddNullToObject(m, "parent");
    cJSON_AddNumberToObject(m, "max_model_len", s->max_model_len);
    cJSON_AddItemToArray(data, m);
    return http_send_json(q, 200, o);
}
