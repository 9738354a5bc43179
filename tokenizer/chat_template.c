// chat_template.c - loads, compiles and renders a model's chat template with
// the Jinja-subset interpreter (jinja_*.c), set up as transformers'
// apply_chat_template sets up jinja2.
#include "chat_template.h"

#include "jinja_eval.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct chat_template {
    jarena arena; // source, tokens and syntax tree
    jnodes body;
    cJSON *vars; // template globals besides messages/tools: bos_token, eos_token...
};

// The special tokens transformers passes to the template (its
// special_tokens_map), when tokenizer_config.json sets them.
static const char *const special_token_keys[] = {"bos_token",  "eos_token", "unk_token",
                                                 "sep_token",  "pad_token", "cls_token",
                                                 "mask_token", NULL};

// Lexes and parses source into t. Returns 0, or -1 with trap->err filled.
static int parse_into(chat_template *t, jinja_trap *trap, const char *source) {
    jarena_init(&t->arena, trap);
    if (setjmp(trap->jmp)) return -1;
    jtoks toks = jinja_lex(&t->arena, source, strlen(source));
    t->body = jinja_parse(&t->arena, &toks);
    t->arena.trap = NULL; // the syntax tree is complete: nothing allocates here again
    return 0;
}

// Compiles source with `vars` (taken over) as extra globals.
static chat_template *compile(const char *source, cJSON *vars, char *err) {
    jinja_trap *trap = malloc(sizeof *trap);
    chat_template *t = calloc(1, sizeof *t);
    if (!trap || !t) {
        free(trap);
        free(t);
        cJSON_Delete(vars);
        llm_errf(err, "out of memory");
        return NULL;
    }
    trap->err = err;
    t->vars = vars;
    int rc = parse_into(t, trap, source);
    free(trap);
    if (rc != 0) {
        chat_template_free(t);
        return NULL;
    }
    return t;
}

chat_template *chat_template_compile(const char *source, const char *bos_token,
                                     const char *eos_token, char *err) {
    cJSON *vars = cJSON_CreateObject();
    if (!vars || !cJSON_AddStringToObject(vars, "bos_token", bos_token ? bos_token : "") ||
        !cJSON_AddStringToObject(vars, "eos_token", eos_token ? eos_token : "")) {
        cJSON_Delete(vars);
        llm_errf(err, "out of memory");
        return NULL;
    }
    return compile(source, vars, err);
}

// A special token's text: a string, or an AddedToken object's "content".
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *content =
        cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "content") : NULL;
    return cJSON_IsString(content) ? content->valuestring : NULL;
}

static cJSON *special_tokens(const cJSON *config) {
    cJSON *vars = cJSON_CreateObject();
    if (!vars || !config) return vars;
    for (int i = 0; special_token_keys[i]; i++) {
        const char *text =
            token_text(cJSON_GetObjectItemCaseSensitive(config, special_token_keys[i]));
        if (text && !cJSON_AddStringToObject(vars, special_token_keys[i], text)) goto oom;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(config, "additional_special_tokens");
    if (cJSON_IsArray(extra)) {
        cJSON *list = cJSON_AddArrayToObject(vars, "additional_special_tokens");
        if (!list) goto oom;
        for (const cJSON *e = extra->child; e; e = e->next) {
            const char *text = token_text(e);
            cJSON *s = text ? cJSON_CreateString(text) : NULL;
            if (!s || !cJSON_AddItemToArray(list, s)) {
                cJSON_Delete(s);
                goto oom;
            }
        }
    }
    return vars;
oom:
    cJSON_Delete(vars);
    return NULL;
}

// The template source in tokenizer_config.json's "chat_template": a string,
// or a list of {"name", "template"} of which "default" is used.
static const char *config_template(const cJSON *config, const char *path, char *err) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
    if (cJSON_IsString(ct)) return ct->valuestring;
    if (cJSON_IsArray(ct)) {
        for (const cJSON *e = ct->child; e; e = e->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *src = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(name) && !strcmp(name->valuestring, "default") &&
                cJSON_IsString(src))
                return src->valuestring;
        }
        llm_errf(err, "%s: \"chat_template\" lists named templates but none named \"default\"",
                 path);
        return NULL;
    }
    llm_errf(err,
             "%s: the model has no chat template (no chat_template.jinja, no \"chat_template\")",
             path);
    return NULL;
}

chat_template *chat_template_load(const char *dir, char *err) {
    char *config_path = llm_path_join(dir, "tokenizer_config.json");
    char *jinja_path = llm_path_join(dir, "chat_template.jinja");
    char *text = NULL, *source = NULL;
    cJSON *config = NULL;
    chat_template *t = NULL;
    if (!config_path || !jinja_path) {
        llm_errf(err, "out of memory");
        goto done;
    }
    if (llm_file_exists(config_path)) {
        if (!(text = llm_read_file(config_path, NULL, err))) goto done;
        config = cJSON_Parse(text);
        if (!cJSON_IsObject(config)) {
            llm_errf(err, "%s: not a JSON object", config_path);
            goto done;
        }
    }
    const char *src;
    if (llm_file_exists(jinja_path)) {
        if (!(source = llm_read_file(jinja_path, NULL, err))) goto done;
        src = source;
    } else if (config) {
        if (!(src = config_template(config, config_path, err))) goto done;
    } else {
        llm_errf(err,
                 "%s: no chat template (neither chat_template.jinja nor tokenizer_config.json)",
                 dir);
        goto done;
    }
    cJSON *vars = special_tokens(config);
    if (!vars) {
        llm_errf(err, "out of memory");
        goto done;
    }
    t = compile(src, vars, err);
done:
    cJSON_Delete(config);
    free(text);
    free(source);
    free(config_path);
    free(jinja_path);
    return t;
}

char *chat_template_render_vars(const chat_template *t, const cJSON *messages, const cJSON *tools,
                                int add_generation_prompt, const cJSON *vars, char *err) {
    if (!cJSON_IsArray(messages)) {
        llm_errf(err, "chat template: messages must be a JSON array");
        return NULL;
    }
    if (vars && !cJSON_IsObject(vars)) {
        llm_errf(err, "chat template: template variables must be a JSON object");
        return NULL;
    }
    // The trap and arena live on the heap: their pointers do not change
    // between setjmp and longjmp, so they are valid after an unwind.
    struct state {
        jinja_trap trap;
        jarena arena;
    } *st = malloc(sizeof *st);
    if (!st) {
        llm_errf(err, "out of memory");
        return NULL;
    }
    st->trap.err = err;
    jarena_init(&st->arena, &st->trap);
    if (setjmp(st->trap.jmp)) {
        jarena_free(&st->arena);
        free(st);
        return NULL;
    }
    jctx c = {.a = &st->arena, .trap = &st->trap};
    jscope *globals = jarena_zalloc(c.a, sizeof *globals);
    const cJSON *layers[2] = {t->vars, vars};
    for (int k = 0; k < 2; k++)
        for (const cJSON *e = layers[k] ? layers[k]->child : NULL; e; e = e->next)
            jscope_set(&c, globals, e->string, jval_from_cjson(c.a, e));
    jscope_set(&c, globals, "messages", jval_from_cjson(c.a, messages));
    jscope_set(&c, globals, "tools", tools ? jval_from_cjson(c.a, tools) : jval_none());
    jscope_set(&c, globals, "documents", jval_none());
    jscope_set(&c, globals, "add_generation_prompt", jval_bool(add_generation_prompt));
    jscope *top = jarena_zalloc(c.a, sizeof *top);
    top->parent = globals;
    jbuf out;
    jbuf_init(&out, c.a);
    jinja_exec(&c, top, &t->body, &out);
    char *result = malloc(out.n + 1);
    if (result) {
        if (out.n) memcpy(result, out.p, out.n);
        result[out.n] = 0;
    } else {
        llm_errf(err, "out of memory");
    }
    jarena_free(&st->arena);
    free(st);
    return result;
}

char *chat_template_render(const chat_template *t, const cJSON *messages, const cJSON *tools,
                           int add_generation_prompt, char *err) {
    return chat_template_render_vars(t, messages, tools, add_generation_prompt, NULL, err);
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    jarena_free(&t->arena);
    cJSON_Delete(t->vars);
    free(t);
}
