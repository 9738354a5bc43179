// test_client.c - llm_client's pure parts: the incremental SSE parser (events
// split across writes at every byte), numpy-style percentiles, goodput SLOs,
// the arrival sampler, prompts files and request bodies.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_metrics.h"
#include "client_sse.h"
#include "client_workload.h"
#include "harness.h"

typedef struct {
    char got[8][64];
    int n;
} events;

static int collect(void *ud, const char *data, size_t len) {
    events *e = ud;
    if (e->n < 8) snprintf(e->got[e->n++], sizeof e->got[0], "%.*s", (int)len, data);
    return 0;
}

TEST(client_sse_split_at_every_byte) {
    const char *s = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: one\ndata:two\n\n"
                    "data: [DONE]\n\n";
    size_t n = strlen(s);
    for (size_t cut1 = 0; cut1 <= n; cut1++)
        for (size_t cut2 = cut1; cut2 <= n; cut2 += 7) {
            sse_parser p = {0};
            events e = {0};
            CHECK(sse_feed(&p, s, cut1, collect, &e) == 0);
            CHECK(sse_feed(&p, s + cut1, cut2 - cut1, collect, &e) == 0);
            CHECK(sse_feed(&p, s + cut2, n - cut2, collect, &e) == 0);
            CHECK(sse_finish(&p, collect, &e) == 0);
            CHECK_EQ(e.n, 3);
            CHECK_STREQ(e.got[0], "{\"a\":1}");
            CHECK_STREQ(e.got[1], "one\ntwo");
            CHECK_STREQ(e.got[2], "[DONE]");
            sse_free(&p);
        }
}

TEST(client_sse_unterminated_last_event) {
    sse_parser p = {0};
    events e = {0};
    CHECK(sse_feed(&p, "data: x\n\ndata: last", 19, collect, &e) == 0);
    CHECK_EQ(e.n, 1);
    CHECK(sse_finish(&p, collect, &e) == 0);
    CHECK_EQ(e.n, 2);
    CHECK_STREQ(e.got[1], "last");
    sse_free(&p);
}

static int stop_at_first(void *ud, const char *data, size_t len) {
    return 7;
}

TEST(client_sse_callback_stops) {
    sse_parser p = {0};
    CHECK_EQ(sse_feed(&p, "data: a\n\ndata: b\n\n", 18, stop_at_first, NULL), 7);
    sse_free(&p);
}

TEST(client_percentile_like_numpy) {
    const double v[] = {1, 2, 3, 4, 10};
    CHECK_NEAR(client_percentile(v, 5, 0), 1, 1e-12);
    CHECK_NEAR(client_percentile(v, 5, 50), 3, 1e-12);
    CHECK_NEAR(client_percentile(v, 5, 90), 7.6, 1e-12);  // numpy.percentile(v, 90)
    CHECK_NEAR(client_percentile(v, 5, 99), 9.76, 1e-12); // numpy.percentile(v, 99)
    CHECK_NEAR(client_percentile(v, 5, 100), 10, 1e-12);
    CHECK_NEAR(client_percentile(v, 1, 99), 1, 1e-12);
    CHECK_NEAR(client_percentile(v, 0, 50), 0, 1e-12);
}

TEST(client_goodput_slo_parse) {
    client_slo s;
    char err[512];
    CHECK(client_slo_parse(" ttft:200 e2el:1500,tpot:50", &s, err) == 0);
    CHECK_NEAR(s.ttft_ms, 200, 0);
    CHECK_NEAR(s.tpot_ms, 50, 0);
    CHECK_NEAR(s.e2el_ms, 1500, 0);
    CHECK(client_slo_parse("itl:3", &s, err) == -1 && strstr(err, "itl"));
    CHECK(client_slo_parse("ttft:-1", &s, err) == -1);
}

TEST(client_arrivals_mean_and_seed) {
    client_rng r, r2;
    const int n = 20000;
    const double shapes[] = {1, 0.5, 4};
    for (int k = 0; k < 3; k++) {
        client_rng_seed(&r, 42);
        double sum = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            double g = client_arrival_gap_s(&r, 10, shapes[k]);
            sum += g, ss += g * g;
        }
        double mean = sum / n, var = ss / n - mean * mean;
        CHECK_NEAR(mean, 0.1, 0.005); // 1 / rate, whatever the burstiness
        // gamma(shape b, scale 1/(rate b)): variance 1 / (rate^2 b)
        CHECK_NEAR(var, 0.01 / shapes[k], 0.1 * 0.01 / shapes[k]);
    }
    client_rng_seed(&r, 7), client_rng_seed(&r2, 7);
    for (int i = 0; i < 100; i++)
        CHECK(client_arrival_gap_s(&r, 3, 1) == client_arrival_gap_s(&r2, 3, 1));
    CHECK(client_arrival_gap_s(&r, INFINITY, 1) == 0);
}

TEST(client_prompts_files) {
    char err[512];
    const char *txt = "build/client_prompts_test.txt", *js = "build/client_prompts_test.json";
    FILE *f = fopen(txt, "w");
    fputs("first\r\n\nsecond line\nthird", f);
    fclose(f);
    f = fopen(js, "w");
    fputs(" [\"a\", {\"prompt\": \"b\", \"max_tokens\": 3, \"temperature\": 0.5}]", f);
    fclose(f);
    client_prompt *p;
    int n;
    CHECK(client_prompts_load(txt, &p, &n, err) == 0);
    CHECK_EQ(n, 3);
    CHECK_STREQ(p[0].prompt, "first");
    CHECK_STREQ(p[2].prompt, "third");
    CHECK_EQ(p[1].max_tokens, -1);
    client_prompts_free(p, n);
    CHECK(client_prompts_load(js, &p, &n, err) == 0);
    CHECK_EQ(n, 2);
    CHECK_STREQ(p[1].prompt, "b");
    CHECK_EQ(p[1].max_tokens, 3);
    CHECK_NEAR(p[1].temperature, 0.5, 0);
    client_prompts_free(p, n);
    f = fopen(js, "w");
    fputs("[{\"text\": 1}]", f);
    fclose(f);
    CHECK(client_prompts_load(js, &p, &n, err) == -1 && strstr(err, "no \"prompt\""));
    remove(txt);
    remove(js);
}

TEST(client_request_bodies) {
    const int ids[] = {1000, 2000};
    client_body_spec b = {.api = API_COMPLETIONS,
                          .model = "m",
                          .max_tokens = 4,
                          .temperature = 0,
                          .top_p = -1,
                          .ids = ids,
                          .n_ids = 2};
    char *s = client_body(&b);
    cJSON *j = cJSON_Parse(s);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "prompt")) == 2);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    CHECK(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
    CHECK(!cJSON_GetObjectItem(j, "top_p") && !cJSON_GetObjectItem(j, "ignore_eos"));
    cJSON_Delete(j);
    free(s);
    b.api = API_GENERATE, b.ids = NULL, b.prompt = "hi", b.ignore_eos = 1;
    s = client_body(&b);
    j = cJSON_Parse(s);
    CHECK_STREQ(cJSON_GetObjectItem(j, "prompt")->valuestring, "hi");
    CHECK(!cJSON_GetObjectItem(j, "stream") && !cJSON_GetObjectItem(j, "model"));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "ignore_eos")));
    cJSON_Delete(j);
    free(s);
    b.api = API_CHAT;
    s = client_body(&b);
    j = cJSON_Parse(s);
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0);
    CHECK_STREQ(cJSON_GetObjectItem(m, "role")->valuestring, "user");
    CHECK_STREQ(cJSON_GetObjectItem(m, "content")->valuestring, "hi");
    cJSON_Delete(j);
    free(s);
}
