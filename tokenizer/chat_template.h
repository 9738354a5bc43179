// chat_template.h - renders a model's Jinja chat template with the project's
// own Jinja-subset interpreter, configured as transformers configures jinja2
// (trim_blocks, lstrip_blocks, one trailing newline stripped,
// raise_exception, bos_token, eos_token, add_generation_prompt, messages, tools).
#ifndef LLM_CHAT_TEMPLATE_H
#define LLM_CHAT_TEMPLATE_H

#include <cjson/cJSON.h>

typedef struct chat_template chat_template;

// Loads DIR/chat_template.jinja, else "chat_template" of
// DIR/tokenizer_config.json (a string, or a list of {"name", "template"} from
// which "default" is taken), with the special tokens of tokenizer_config.json
// (bos_token, eos_token, unk/sep/pad/cls/mask_token, additional_special_tokens)
// as template globals; a token the config leaves out or sets to null is
// undefined in the template, as in transformers. Returns NULL and fills err on
// failure (a model without a template is an error saying so; a template using
// a feature the interpreter lacks is an error naming the feature and its line,
// e.g. "chat template: unknown filter 'wordwrap' at line 3").
chat_template *chat_template_load(const char *dir, char *err);

// Compiles template source. bos_token / eos_token may be NULL (then "").
chat_template *chat_template_compile(const char *source, const char *bos_token,
                                     const char *eos_token, char *err);

// Renders messages (a cJSON array of message objects) and tools (a cJSON array,
// or NULL for none: the template sees None). Returns a heap string the caller
// frees, or NULL with err filled: "chat template: MESSAGE" for a
// raise_exception(MESSAGE) in the template, "chat template: ... at line N" for
// other failures (undefined attribute of undefined, type errors...). t is not
// changed: several threads may render with one template at once.
char *chat_template_render(const chat_template *t, const cJSON *messages, const cJSON *tools,
                           int add_generation_prompt, char *err);

// chat_template_render with extra template variables: vars is a cJSON object
// (or NULL) whose members become globals, as the keyword arguments of
// transformers' apply_chat_template do (e.g. {"enable_thinking": false}).
// They override the special tokens; messages, tools, documents (None) and
// add_generation_prompt override them.
char *chat_template_render_vars(const chat_template *t, const cJSON *messages, const cJSON *tools,
                                int add_generation_prompt, const cJSON *vars, char *err);

void chat_template_free(chat_template *t);

#endif
