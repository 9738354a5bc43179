// test_chat_template.c - the chat-template renderer against Python's jinja2:
// every case of tests/fixtures/chat_templates/expected.json (written by
// scripts/render_chat_template.py with jinja2 configured as transformers
// configures it) must render to the same bytes, or fail where jinja2 fails;
// plus error messages, loading, and speed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat_template.h"
#include "harness.h"
#include "util.h"

#define FIXTURE_DIR "tests/fixtures/chat_templates/"

static cJSON *read_json(const char *path) {
    char err[LLM_ERR_LEN];
    char *text = llm_read_file(path, NULL, err);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static const char *str_field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// Compiles a templates.json entry. *absent is set when it names a model
// directory that is not there (../shared is optional).
static chat_template *entry_compile(const cJSON *entry, char *err, int *absent) {
    *absent = 0;
    const char *model = str_field(entry, "model"), *file = str_field(entry, "file");
    const char *bos = str_field(entry, "bos_token"), *eos = str_field(entry, "eos_token");
    if (model) {
        struct stat st;
        if (stat(model, &st) != 0) {
            *absent = 1;
            return NULL;
        }
        return chat_template_load(model, err);
    }
    if (file) {
        char *src = llm_read_file(file, NULL, err);
        if (!src) return NULL;
        chat_template *t = chat_template_compile(src, bos, eos, err);
        free(src);
        return t;
    }
    return chat_template_compile(str_field(entry, "source"), bos, eos, err);
}

// Reports where got and want first differ.
static void report_diff(const char *id, const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 30 ? i - 30 : 0;
    harness_fail(__FILE__, __LINE__, "%s: output differs at byte %zu: got \"%.60s\" want \"%.60s\"",
                 id, i, got + from, want + from);
}

TEST(chat_template_matches_jinja2_fixture) {
    cJSON *templates = read_json(FIXTURE_DIR "templates.json");
    cJSON *convs = read_json(FIXTURE_DIR "conversations.json");
    cJSON *cases = read_json(FIXTURE_DIR "expected.json");
    CHECK(templates && convs && cases);
    int n_entries = cJSON_GetArraySize(templates);
    chat_template **compiled = calloc((size_t)n_entries + 1, sizeof *compiled);
    char(*compile_err)[LLM_ERR_LEN] = calloc((size_t)n_entries + 1, LLM_ERR_LEN);
    int *absent = calloc((size_t)n_entries + 1, sizeof *absent);
    for (int i = 0; i < n_entries && templates; i++)
        compiled[i] = entry_compile(cJSON_GetArrayItem(templates, i), compile_err[i], &absent[i]);
    int identical = 0, errors_matched = 0, skipped = 0, total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        total++;
        const char *tname = str_field(c, "template"), *cname = str_field(c, "conversation");
        int agp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt"));
        char id[256];
        snprintf(id, sizeof id, "%s/%s/%s", tname, cname, agp ? "gen" : "nogen");
        int ti = 0;
        while (ti < n_entries &&
               strcmp(str_field(cJSON_GetArrayItem(templates, ti), "name"), tname))
            ti++;
        if (ti == n_entries) {
            harness_fail(__FILE__, __LINE__, "%s: template not in templates.json", id);
            continue;
        }
        if (absent[ti]) {
            skipped++;
            continue;
        }
        const cJSON *conv = cJSON_GetObjectItemCaseSensitive(convs, cname);
        const char *want = str_field(c, "output"), *raised = str_field(c, "raised");
        char err[LLM_ERR_LEN] = "";
        char *got = NULL;
        if (compiled[ti]) {
            got = chat_template_render_vars(compiled[ti],
                                            cJSON_GetObjectItemCaseSensitive(conv, "messages"),
                                            cJSON_GetObjectItemCaseSensitive(conv, "tools"), agp,
                                            cJSON_GetObjectItemCaseSensitive(conv, "vars"), err);
        } else {
            snprintf(err, sizeof err, "%s", compile_err[ti]);
        }
        if (want) {
            if (!got)
                harness_fail(__FILE__, __LINE__, "%s: failed where jinja2 renders: %s", id, err);
            else if (strcmp(got, want) != 0)
                report_diff(id, got, want);
            else
                identical++;
        } else if (got) {
            harness_fail(__FILE__, __LINE__, "%s: rendered where jinja2 fails with %s", id,
                         str_field(c, "error"));
        } else if (raised && !strstr(err, raised)) {
            harness_fail(__FILE__, __LINE__, "%s: error \"%s\" lacks the template's message \"%s\"",
                         id, err, raised);
        } else {
            errors_matched++;
        }
        free(got);
    }
    printf(
        "     chat templates vs jinja2: %d/%d cases byte-identical, %d expected errors raised, %d "
        "skipped (no ../shared)\n",
        identical, total, errors_matched, skipped);
    CHECK(total > 0);
    for (int i = 0; i < n_entries; i++) chat_template_free(compiled[i]);
    free(compiled);
    free(compile_err);
    free(absent);
    cJSON_Delete(templates);
    cJSON_Delete(convs);
    cJSON_Delete(cases);
}

// Renders source over one user message; returns the output (heap) or NULL
// with err filled.
static char *render_src(const char *source, char *err) {
    chat_template *t = chat_template_compile(source, "<s>", "</s>", err);
    if (!t) return NULL;
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Hi there\"}]");
    char *out = chat_template_render(t, msgs, NULL, 1, err);
    cJSON_Delete(msgs);
    chat_template_free(t);
    return out;
}

static void check_error(const char *source, const char *want) {
    char err[LLM_ERR_LEN] = "";
    char *out = render_src(source, err);
    CHECK_MSG(out == NULL, "\"%s\" rendered \"%s\", expected error \"%s\"", source, out ? out : "",
              want);
    CHECK_MSG(strstr(err, want) != NULL, "\"%s\": error \"%s\" lacks \"%s\"", source, err, want);
    free(out);
}

static void check_render(const char *source, const char *want) {
    char err[LLM_ERR_LEN] = "";
    char *out = render_src(source, err);
    CHECK_MSG(out != NULL, "\"%s\": %s", source, err);
    if (out) CHECK_STREQ(out, want);
    free(out);
}

TEST(chat_template_errors_name_the_problem_and_line) {
    check_error("Hello\n{{ messages | wordwrap }}",
                "chat template: unknown filter 'wordwrap' at line 2");
    check_error("a\nb\n{% if x is nosuchtest %}{% endif %}", "unknown test 'nosuchtest' at line 3");
    check_error("{% do messages.append(1) %}", "unknown tag 'do' at line 1");
    check_error("\n{% include 'other.jinja' %}", "unsupported tag 'include' at line 2");
    check_error("line\n{{ messages", "tag not closed with '}}' at line 2");
    check_error("{% if true %}\nno end", "missing {% endif %} for the 'if' block at line 1");
    check_error("{% for m in messages %}\n{% endif %}",
                "unexpected 'endif' (expected {% endfor %}");
    check_error("x {# no end", "missing end of comment tag at line 1");
    check_error("{{ 'abc }}", "unterminated string literal at line 1");
    check_error("\n\n{{ 1 + }}", "unexpected 'end of print statement' at line 3");
    check_error("{{ 1 2 }}", "expected end of print statement, got 'integer' at line 1");
    check_error("{% break %}", "'break' outside of a loop");
    check_error("{% raw %}x", "missing end of raw directive");
    check_error("{{ a ? b }}", "unexpected character '?'");
    check_error("{{ (1 ] }}", "unexpected ']'");
}

TEST(chat_template_runtime_errors) {
    check_error("{{ 'a'.zfill(3) }}", "unsupported string method 'zfill' at line 1");
    check_error("{{ x.y }}", "'x' is undefined at line 1");
    check_error("{{ messages[0].content.bad.worse }}", "'str object' has no attribute 'bad'");
    check_error("{{ messages[0].content + 1 }}",
                "unsupported operand type(s) for +: 'str' and 'int'");
    check_error("{{ 1 / 0 }}", "division by zero");
    check_error("{{ messages.append(1) }}", "unsafe");
    check_error("{{ messages | map(attribute='role') }}", "cannot print a generator");
    check_error("{% set g = messages | map(attribute='role') %}{{ g | list }}{{ g | list }}",
                "already iterated");
    check_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macro calls nested too deeply");
    check_error("{{ range(1000000) | length }}", "range too big");
    check_error("{{ cycler(1, 2) }}", "unsupported global function 'cycler'");
    check_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
    // raise_exception's message is the whole error, as the user should see it.
    char err[LLM_ERR_LEN] = "";
    char *out = render_src("{{ raise_exception('Roles must alternate') }}", err);
    CHECK(out == NULL);
    CHECK_STREQ(err, "chat template: Roles must alternate");
}

TEST(chat_template_deep_nesting_fails_cleanly) {
    char src[4096];
    size_t n = 0;
    n += (size_t)snprintf(src + n, sizeof src - n, "{{ ");
    for (int i = 0; i < 1000; i++) src[n++] = '(';
    src[n] = 0;
    check_error(src, "nested too deeply");
    n = 0;
    for (int i = 0; i < 400; i++) n += (size_t)snprintf(src + n, sizeof src - n, "{%% if 1 %%}");
    check_error(src, "nested too deeply");
}

TEST(chat_template_source_newlines) {
    check_render("a\r\nb\rc\r\n", "a\nb\nc");
    check_render("x\n\n", "x\n");
    check_render("x", "x");
    check_render("", "");
    check_render("{{ bos_token }}|{{ eos_token }}", "<s>|</s>");
    char err[LLM_ERR_LEN];
    chat_template *t = chat_template_compile("[{{ bos_token }}{{ eos_token }}]", NULL, NULL, err);
    CHECK(t != NULL);
    cJSON *msgs = cJSON_CreateArray();
    char *out = t ? chat_template_render(t, msgs, NULL, 0, err) : NULL;
    CHECK_STREQ(out, "[]");
    free(out);
    cJSON *obj = cJSON_CreateObject();
    CHECK(t && chat_template_render(t, obj, NULL, 0, err) == NULL);
    CHECK_CONTAINS(err, "messages must be a JSON array");
    cJSON_Delete(obj);
    cJSON_Delete(msgs);
    chat_template_free(t);
}

TEST(chat_template_strftime_now) {
    char err[LLM_ERR_LEN];
    char *out = render_src("{{ strftime_now('%Y') }}|{{ strftime_now is defined }}", err);
    CHECK_MSG(out != NULL, "%s", err);
    if (!out) return;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char want[32];
    snprintf(want, sizeof want, "%d|True", tm.tm_year + 1900);
    CHECK_STREQ(out, want);
    free(out);
}

static int write_file(const char *dir, const char *name, const char *text) {
    char *path = llm_path_join(dir, name);
    FILE *f = path ? fopen(path, "wb") : NULL;
    int ok = f && fputs(text, f) >= 0;
    if (f) fclose(f);
    free(path);
    return ok ? 0 : -1;
}

static void remove_file(const char *dir, const char *name) {
    char *path = llm_path_join(dir, name);
    if (path) unlink(path);
    free(path);
}

static char *load_and_render(const char *dir, char *err) {
    chat_template *t = chat_template_load(dir, err);
    if (!t) return NULL;
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"Hi\"}]");
    char *out = chat_template_render(t, msgs, NULL, 1, err);
    cJSON_Delete(msgs);
    chat_template_free(t);
    return out;
}

TEST(chat_template_load_sources) {
    char dir[] = "/tmp/llm_chat_template_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[LLM_ERR_LEN] = "";
    // A list of named templates: "default" is used; an AddedToken's content is
    // the token; a null token is undefined.
    CHECK(write_file(
              dir, "tokenizer_config.json",
              "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<B>\"},"
              " \"eos_token\": null, \"pad_token\": \"<P>\","
              " \"additional_special_tokens\": [\"<x>\", {\"content\": \"<y>\"}],"
              " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
              " {\"name\": \"default\", \"template\": \"{{ bos_token }}|{{ eos_token is defined }}|"
              "{{ pad_token }}|{{ additional_special_tokens | join(',') }}|{{ messages[0].content "
              "}}\"}]}") == 0);
    char *out = load_and_render(dir, err);
    CHECK_MSG(out != NULL, "%s", err);
    CHECK_STREQ(out, "<B>|False|<P>|<x>,<y>|Hi");
    free(out);
    // chat_template.jinja wins over tokenizer_config.json.
    CHECK(write_file(dir, "chat_template.jinja", "jinja file: {{ messages | length }}\n") == 0);
    out = load_and_render(dir, err);
    CHECK_STREQ(out, "jinja file: 1");
    free(out);
    remove_file(dir, "chat_template.jinja");
    // No template at all, and a broken config, are errors saying so.
    CHECK(write_file(dir, "tokenizer_config.json", "{\"bos_token\": \"<s>\"}") == 0);
    CHECK(chat_template_load(dir, err) == NULL);
    CHECK_CONTAINS(err, "no chat template");
    CHECK(write_file(dir, "tokenizer_config.json",
                     "{\"chat_template\": [{\"name\": \"x\", \"template\": \"\"}]}") == 0);
    CHECK(chat_template_load(dir, err) == NULL);
    CHECK_CONTAINS(err, "none named \"default\"");
    CHECK(write_file(dir, "tokenizer_config.json", "{not json") == 0);
    CHECK(chat_template_load(dir, err) == NULL);
    CHECK_CONTAINS(err, "not a JSON object");
    // A template with an unknown feature fails at load, naming it.
    CHECK(write_file(dir, "tokenizer_config.json", "{\"chat_template\": \"{{ x | wordwrap }}\"}") ==
          0);
    CHECK(chat_template_load(dir, err) == NULL);
    CHECK_CONTAINS(err, "unknown filter 'wordwrap' at line 1");
    remove_file(dir, "tokenizer_config.json");
    CHECK(chat_template_load(dir, err) == NULL);
    CHECK_CONTAINS(err, "no chat template");
    rmdir(dir);
}

TEST(chat_template_shared_tokenizers) {
    char err[LLM_ERR_LEN] = "";
    struct stat st;
    if (stat("../shared/tokenizers/llama2-spm", &st) != 0) {
        harness_skip("no ../shared/tokenizers");
        return;
    }
    // The SentencePiece Llama-2 tokenizer ships without a template.
    CHECK(chat_template_load("../shared/tokenizers/llama2-spm", err) == NULL);
    CHECK_CONTAINS(err, "no chat template");
    // Qwen3's config sets bos_token to null: undefined in the template.
    chat_template *t = chat_template_load("../shared/tokenizers/qwen3", err);
    CHECK_MSG(t != NULL, "%s", err);
    chat_template_free(t);
}

// The converted default model's own template renders as the fixture copy of it.
TEST(chat_template_smollm2_model_dir) {
    const char *dir = "models/SmolLM2-135M-Instruct";
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (!llm_file_exists(path)) {
        harness_skip("no converted SmolLM2 model (make model)");
        return;
    }
    char err[LLM_ERR_LEN] = "";
    chat_template *model = chat_template_load(dir, err);
    CHECK_MSG(model != NULL, "%s", err);
    char *src = llm_read_file(FIXTURE_DIR "templates/smollm2.jinja", NULL, err);
    chat_template *copy =
        src ? chat_template_compile(src, "<|im_start|>", "<|im_end|>", err) : NULL;
    cJSON *convs = read_json(FIXTURE_DIR "conversations.json");
    const char *names[] = {"single_user", "system_multi_turn", "tricky_text"};
    for (int i = 0; i < 3 && model && copy && convs; i++) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(convs, names[i]), "messages");
        char *a = chat_template_render(model, msgs, NULL, 1, err),
             *b = chat_template_render(copy, msgs, NULL, 1, err);
        CHECK(a && b && strcmp(a, b) == 0);
        free(a);
        free(b);
    }
    cJSON_Delete(convs);
    chat_template_free(model);
    chat_template_free(copy);
    free(src);
}

// Napkin math: a 6-message Qwen3 conversation with tools is ~2 KB of output
// and a few hundred AST node visits; that should take microseconds.
TEST(chat_template_render_speed) {
    char err[LLM_ERR_LEN] = "";
    struct stat st;
    int have_qwen = stat("../shared/tokenizers/qwen3", &st) == 0;
    chat_template *t;
    if (have_qwen) {
        t = chat_template_load("../shared/tokenizers/qwen3", err);
    } else {
        char *src = llm_read_file(FIXTURE_DIR "templates/tools_macros.jinja", NULL, err);
        t = src ? chat_template_compile(src, "<s>", "</s>", err) : NULL;
        free(src);
    }
    cJSON *convs = read_json(FIXTURE_DIR "conversations.json");
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(convs, "tool_calls_string_args");
    CHECK_MSG(t && conv, "%s", err);
    if (!t || !conv) {
        chat_template_free(t);
        cJSON_Delete(convs);
        return;
    }
    const int reps = 2000;
    size_t bytes = 0;
    double t0 = llm_now();
    for (int i = 0; i < reps; i++) {
        char *out = chat_template_render(t, cJSON_GetObjectItemCaseSensitive(conv, "messages"),
                                         cJSON_GetObjectItemCaseSensitive(conv, "tools"), 1, err);
        CHECK(out != NULL);
        if (!out) break;
        bytes = strlen(out);
        free(out);
    }
    double us = (llm_now() - t0) / reps * 1e6;
    printf("     %s template: %.1f us per render (%zu bytes out)\n",
           have_qwen ? "qwen3" : "tools_macros", us, bytes);
    CHECK_MSG(us < 1000, "rendering took %.1f us", us); // the budget: at most a millisecond
    chat_template_free(t);
    cJSON_Delete(convs);
}
