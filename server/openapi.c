// openapi.c - GET /openapi.json (the API described in OpenAPI 3.1) and
// GET /docs (a page listing the endpoints).
#include <string.h>

#include "server.h"

#define SAMPLING_PROPS                                                                             \
    "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},"                                         \
    "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},"                           \
    "\"top_p\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":1},"                        \
    "\"top_k\":{\"type\":\"integer\",\"minimum\":-1},"                                             \
    "\"min_p\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"                                 \
    "\"presence_penalty\":{\"type\":\"number\",\"minimum\":-2,\"maximum\":2},"                     \
    "\"frequency_penalty\":{\"type\":\"number\",\"minimum\":-2,\"maximum\":2},"                    \
    "\"repetition_penalty\":{\"type\":\"number\",\"exclusiveMinimum\":0},"                         \
    "\"stop\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":"          \
    "\"string\"},\"maxItems\":8}]},"                                                               \
    "\"stop_token_ids\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"maxItems\":16},"    \
    "\"seed\":{\"type\":\"integer\"},\"ignore_eos\":{\"type\":\"boolean\"},"                       \
    "\"min_tokens\":{\"type\":\"integer\",\"minimum\":0},"                                         \
    "\"n\":{\"type\":\"integer\",\"enum\":[1]},\"user\":{\"type\":\"string\"},"                    \
    "\"model\":{\"type\":\"string\"},"                                                             \
    "\"stream\":{\"type\":\"boolean\"},"                                                           \
    "\"stream_options\":{\"type\":\"object\",\"properties\":{\"include_usage\":{\"type\":"         \
    "\"boolean\"}}}"

#define ERRORS                                                                                     \
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"                                         \
    "\"401\":{\"$ref\":\"#/components/responses/Error\"},"                                         \
    "\"404\":{\"$ref\":\"#/components/responses/Error\"},"                                         \
    "\"413\":{\"$ref\":\"#/components/responses/Error\"},"                                         \
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}"

#define JSON_BODY(schema)                                                                          \
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":" schema "}" \
    "}"                                                                                            \
    "}"

#define OK_JSON(desc)                                                                              \
    "\"200\":{\"description\":\"" desc "\",\"content\":{\"application/json\":{\"schema\":{"        \
    "\"type\":\"object\"}}}}"

static const char openapi[] = "{\"openapi\":\"3.1.0\","
                              "\"info\":{\"title\":\"llm server\",\"version\":\"" SERVER_VERSION
                              "\","
                              "\"description\":\"OpenAI-compatible inference server of the llm "
                              "engine.\"},"
                              "\"components\":{"
                              "\"securitySchemes\":{\"bearer\":{\"type\":\"http\",\"scheme\":"
                              "\"bearer\"}},"
                              "\"schemas\":{"
                              "\"Error\":{\"type\":\"object\",\"required\":[\"error\"],"
                              "\"properties\":{\"error\":{"
                              "\"type\":"
                              "\"object\",\"required\":[\"message\",\"type\",\"param\",\"code\"],"
                              "\"properties\":{"
                              "\"message\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"},"
                              "\"param\":{\"type\":["
                              "\"string\",\"null\"]},\"code\":{\"type\":[\"string\",\"null\"]}}}}},"
                              "\"CompletionRequest\":{\"type\":\"object\",\"required\":[\"prompt\"]"
                              ",\"properties\":{"
                              "\"prompt\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"array\","
                              "\"items\":{\"type\":"
                              "\"integer\"}}]},\"echo\":{\"type\":\"boolean\"},\"logprobs\":{"
                              "\"type\":\"integer\","
                              "\"minimum\":0,\"maximum\":20}," SAMPLING_PROPS "}},"
                              "\"ChatRequest\":{\"type\":\"object\",\"required\":[\"messages\"],"
                              "\"properties\":{"
                              "\"messages\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                              "\"required\":[\"role\"],"
                              "\"properties\":{\"role\":{\"type\":\"string\"},\"content\":{"
                              "\"oneOf\":[{\"type\":"
                              "\"string\"},{\"type\":\"array\"}]}}}},\"max_completion_tokens\":{"
                              "\"type\":\"integer\"},"
                              "\"logprobs\":{\"type\":\"boolean\"},\"top_logprobs\":{\"type\":"
                              "\"integer\",\"minimum\":0,"
                              "\"maximum\":20},\"tools\":{\"type\":\"array\"},\"chat_template_"
                              "kwargs\":{\"type\":"
                              "\"object\"}," SAMPLING_PROPS "}},"
                              "\"SimpleRequest\":{\"type\":\"object\",\"required\":[\"prompt\"],"
                              "\"properties\":{"
                              "\"prompt\":{\"type\":\"string\"},\"stream\":{\"type\":\"boolean\","
                              "\"description\":\"server-sent events: data: {text, generated} "
                              "chunks, the last with finish_reason and usage, then "
                              "[DONE]\"},\"max_tokens\":{\"type\":"
                              "\"integer\",\"default\":128},"
                              "\"temperature\":{\"type\":\"number\"},\"top_p\":{\"type\":"
                              "\"number\"},\"top_k\":{"
                              "\"type\":"
                              "\"integer\"},\"stop\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":"
                              "\"array\"}]}}},"
                              "\"SimpleResponse\":{\"type\":\"object\",\"properties\":{\"text\":{"
                              "\"type\":\"string\"},"
                              "\"prompt\":{\"type\":\"string\"},\"model\":{\"type\":\"string\"},"
                              "\"generated\":{\"type\":"
                              "\"integer\",\"description\":\"tokens "
                              "generated\"},\"full_text\":{\"type\":\"string\"},"
                              "\"finish_reason\":{\"type\":\"string\"},\"usage\":{\"type\":"
                              "\"object\"}}}},"
                              "\"responses\":{\"Error\":{\"description\":\"an error in the OpenAI "
                              "shape\",\"content\":{"
                              "\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"
                              "Error\"}}}}}},"
                              "\"paths\":{"
                              "\"/v1/completions\":{\"post\":{\"summary\":\"Text completion "
                              "(streamed with stream: "
                              "true as server-sent "
                              "events)\",\"security\":[{\"bearer\":[]}]," JSON_BODY(
                                  "{\"$ref\":\"#/components/schemas/CompletionRequest\"}") ",\"resp"
                                                                                           "onses\""
                                                                                           ":"
                                                                                           "{" OK_JSON("a"
                                                                                                       " "
                                                                                                       "t"
                                                                                                       "e"
                                                                                                       "x"
                                                                                                       "t"
                                                                                                       "_"
                                                                                                       "c"
                                                                                                       "o"
                                                                                                       "m"
                                                                                                       "p"
                                                                                                       "l"
                                                                                                       "e"
                                                                                                       "t"
                                                                                                       "i"
                                                                                                       "o"
                                                                                                       "n"
                                                                                                       " "
                                                                                                       "o"
                                                                                                       "b"
                                                                                                       "j"
                                                                                                       "e"
                                                                                                       "c"
                                                                                                       "t"
                                                                                                       ","
                                                                                                       " "
                                                                                                       "o"
                                                                                                       "r"
                                                                                                       " "
                                                                                                       "t"
                                                                                                       "e"
                                                                                                       "x"
                                                                                                       "t"
                                                                                                       "/"
                                                                                                       "e"
                                                                                                       "v"
                                                                                                       "e"
                                                                                                       "n"
                                                                                                       "t"
                                                                                                       "-"
                                                                                                       "s"
                                                                                                       "t"
                                                                                                       "r"
                                                                                                       "e"
                                                                                                       "a"
                                                                                                       "m"
                                                                                                       " "
                                                                                                       "c"
                                                                                                       "h"
                                                                                                       "u"
                                                                                                       "n"
                                                                                                       "k"
                                                                                                       "s") "," ERRORS
                                                                                                            "}}},"
                                                                                                            "\"/v1/chat/completions\":{\"post\":{\"summary\":\"Chat completion through the model's chat "
                                                                                                            "template\",\"security\":[{\"bearer\":[]}]," JSON_BODY("{\"$ref\":\"#/components/schemas/ChatRequest\"}") ",\"responses\":{" OK_JSON("a chat.completion object, or text/event-stream chunks") "," ERRORS
                                                                                                                                                                                                                                                                                                          "}}},"
                                                                                                                                                                                                                                                                                                          "\"/v1/models\":{\"get\":{\"summary\":\"The served model, with max_model_len\","
                                                                                                                                                                                                                                                                                                          "\"security\":[{\"bearer\":[]}],\"responses\":{" OK_JSON(
                                                                                                                                                                                                                                                                                                              "a list of models") "}}},"
                                                                                                                                                                                                                                                                                                                                  "\"/generate\":{\"post\":{\"summary\":\"Simple API: complete a prompt\",\"security\":[{"
                                                                                                                                                                                                                                                                                                                                  "\"bearer\":[]}]," JSON_BODY(
                                                                                                                                                                                                                                                                                                                                      "{\"$ref\":\"#/components/schemas/SimpleRequest\"}") ","
                                                                                                                                                                                                                                                                                                                                                                                           "\"responses\":{\"200\":{\"description\":\"the completion\",\"content\":{"
                                                                                                                                                                                                                                                                                                                                                                                           "\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/SimpleResponse\"}}}}," ERRORS
                                                                                                                                                                                                                                                                                                                                                                                           "}}},"
                                                                                                                                                                                                                                                                                                                                                                                           "\"/chat\":{\"post\":{\"summary\":\"Simple API: the prompt as one user turn through the chat "
                                                                                                                                                                                                                                                                                                                                                                                           "template\",\"security\":[{\"bearer\":[]}]," JSON_BODY("{\"$ref\":\"#/components/schemas/SimpleRequest\"}") ","
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "\"responses\":{\"200\":{\"description\":\"the reply\",\"content\":{\"application/json\":{"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "\"schema\":{\"$ref\":\"#/components/schemas/SimpleResponse\"}}}}," ERRORS
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "\"/tokenize\":{\"post\":{\"summary\":\"Token ids of a prompt or of chat messages\","
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "\"security\":[{\"bearer\":[]}]," JSON_BODY(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\"},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "\"add_special_tokens\":{\"type\":\"boolean\"},\"messages\":{\"type\":\"array\"}}}") ","
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "\"responses\":{" OK_JSON(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    "count, max_model_len, tokens") "," ERRORS
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    "\"/detokenize\":{\"post\":{\"summary\":\"Text of token ids\",\"security\":[{\"bearer\":[]}]," JSON_BODY(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "{\"type\":\"object\",\"required\":[\"tokens\"],\"properties\":{\"tokens\":{"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}}") ","
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  "\"responses\":{" OK_JSON(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "prompt") "," ERRORS
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                "\"/\":{\"get\":{\"summary\":\"Server and model name\",\"responses\":{" OK_JSON("server, version, model") "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "\"/health\":{\"get\":{\"summary\":\"200 when ready, 503 while loading or shutting down\","
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "\"responses\":{" OK_JSON(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                              "status ok") ",\"503\":{\"description\":\"not ready\"}}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "\"/metrics\":{\"get\":{\"summary\":\"Prometheus metrics (vLLM names)\",\"responses\":{"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "\"200\":{\"description\":\"text exposition format 0.0.4\",\"content\":{\"text/plain\":{}}}}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "\"/version\":{\"get\":{\"summary\":\"Server version\",\"responses\":{" OK_JSON("version") "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "\"/openapi.json\":{\"get\":{\"summary\":\"This document\",\"responses\":{" OK_JSON("OpenAPI 3.1") "}}},"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                         "\"/docs\":{\"get\":{\"summary\":\"A page listing the endpoints\",\"responses\":{\"200\":{"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                         "\"description\":\"HTML\",\"content\":{\"text/html\":{}}}}}}}}";

enum MHD_Result api_openapi(http_req *q) {
    return http_send_text(q, 200, "application/json", openapi, sizeof openapi - 1);
}

static const char docs[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>llm server</title>"
    "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}code{background:#eee}"
    "td{padding:.2em .8em}</style></head><body><h1>llm server " SERVER_VERSION "</h1>"
    "<p>OpenAI-compatible endpoints, a simple API, health and metrics. The full description "
    "is in <a href=\"/openapi.json\">/openapi.json</a>. Endpoints marked * need "
    "<code>Authorization: Bearer KEY</code> when the server runs with <code>--api-key</code>.</p>"
    "<table><tr><th>method</th><th>path</th><th>does</th></tr>"
    "<tr><td>POST</td><td>/v1/completions *</td><td>text completion; <code>stream</code> for "
    "server-sent events</td></tr>"
    "<tr><td>POST</td><td>/v1/chat/completions *</td><td>chat completion through the chat "
    "template</td></tr>"
    "<tr><td>GET</td><td>/v1/models *</td><td>the served model and max_model_len</td></tr>"
    "<tr><td>POST</td><td>/generate *</td><td>simple API: {prompt, max_tokens, temperature, "
    "top_p, top_k, stop} &rarr; {text, prompt, model, generated, full_text, usage}</td></tr>"
    "<tr><td>POST</td><td>/chat *</td><td>the same, the prompt as one user turn</td></tr>"
    "<tr><td>POST</td><td>/tokenize *</td><td>token ids of a prompt or messages</td></tr>"
    "<tr><td>POST</td><td>/detokenize *</td><td>text of token ids</td></tr>"
    "<tr><td>GET</td><td>/health</td><td>200 ready, 503 loading or shutting down</td></tr>"
    "<tr><td>GET</td><td>/metrics</td><td>Prometheus metrics with vLLM's names</td></tr>"
    "<tr><td>GET</td><td>/</td><td>server and model name</td></tr>"
    "<tr><td>GET</td><td>/version</td><td>server version</td></tr>"
    "</table></body></html>";

enum MHD_Result api_docs(http_req *q) {
    if (q->s->n_docs) return docs_swagger_page(q); // Swagger UI when its files are there
    return http_send_text(q, 200, "text/html; charset=utf-8", docs, sizeof docs - 1);
}
