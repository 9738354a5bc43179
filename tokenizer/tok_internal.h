// tok_internal.h - the parts of a loaded tokenizer, shared by the loader
// (tok_load*.c), the encoder (tok_encode.c, pretok.c, added_tokens.c) and the
// decoder (tok_decode.c, tok_stream.c). Not a public interface: use tokenizer.h.
//
// Every Sequence in tokenizer.json (normalizers, pre-tokenizers, decoders,
// post-processors) is flattened into one array of steps: applying a Sequence
// is applying its members in order, so nesting adds nothing.
#ifndef LLM_TOK_INTERNAL_H
#define LLM_TOK_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "bpe.h"
#include "regex_scan.h"
#include "tok_buf.h"
#include "tokenizer.h"

// Longest flattened pipeline accepted (each pre-tokenizer step keeps scratch).
#define TOK_MAX_STEPS 16

typedef enum { NORM_NFC, NORM_PREPEND, NORM_REPLACE } norm_kind;

typedef struct {
    norm_kind kind;
    char *a; // Prepend: the text; Replace: the pattern (a literal string)
    size_t a_len;
    char *b; // Replace: the replacement
    size_t b_len;
} tok_norm;

typedef enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_DIGITS, PRE_METASPACE } pre_kind;

// SplitDelimiterBehavior: what becomes of the matches when splitting.
typedef enum {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_PREV,
    SPLIT_MERGED_NEXT,
    SPLIT_CONTIGUOUS,
} split_behavior;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

typedef struct {
    pre_kind kind;
    regex_kind regex; // Split with a regex; ByteLevel with use_regex (GPT-2)
    char *literal;    // Split with a string pattern
    size_t literal_len;
    split_behavior behavior;
    int invert;
    int add_prefix_space;  // ByteLevel
    int individual_digits; // Digits
    char repl[5];          // Metaspace: the replacement character, UTF-8
    size_t repl_len;
    uint32_t repl_cp;
    prepend_scheme prepend;
    int split;
} tok_pre;

typedef enum {
    DEC_BYTELEVEL,
    DEC_REPLACE,
    DEC_BYTEFALLBACK,
    DEC_FUSE,
    DEC_STRIP,
    DEC_METASPACE
} dec_kind;

typedef struct {
    dec_kind kind;
    char *a; // Replace: pattern; Strip: content (one character), UTF-8
    size_t a_len;
    char *b; // Replace: replacement
    size_t b_len;
    uint32_t cp;  // Strip: the content character; Metaspace: the replacement
    size_t start; // Strip: characters to strip at the start of each token
    size_t stop;  // Strip: ... and at the end
    int prepend;  // Metaspace: its prepend_scheme is not "never"
} tok_dec;

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    int special, single_word, lstrip, rstrip, normalized;
} tok_added;

// A byte trie over added-token contents, for leftmost-longest matching.
typedef struct {
    int32_t child;   // first child node, -1 when none
    int32_t sibling; // next sibling node, -1 when none
    int32_t token;   // index into tokenizer.added of the token ending here, or -1
    uint8_t byte;
} trie_node;

typedef struct {
    trie_node *nodes; // [n]; node 0 is the root
    size_t n, cap;
    uint8_t first[256]; // first[b]: some token starts with byte b
} tok_trie;

// Template value meaning "the encoded text" (Sequence A).
#define TEMPLATE_SEQ (-1)

struct tokenizer {
    bpe_model bpe;
    int byte_level; // a ByteLevel pre-tokenizer ends the pipeline: BPE on raw bytes

    tok_norm norms[TOK_MAX_STEPS];
    size_t n_norms;
    tok_pre pres[TOK_MAX_STEPS];
    size_t n_pres;
    tok_dec decs[TOK_MAX_STEPS];
    size_t n_decs;
    int has_decoder; // 0: decoding joins tokens with spaces, as HF does without one

    int32_t *tmpl; // post-processor template for add_special: ids and TEMPLATE_SEQ
    size_t n_tmpl; // 0: no template (the text alone)

    tok_added *added;
    size_t n_added;
    tok_trie trie_raw;  // added tokens matched before normalization
    tok_trie trie_norm; // added tokens with normalized: true, matched after

    // id -> token string (added tokens override the vocabulary), [n_ids]
    char **id_str;
    uint32_t *id_len;
    uint8_t *id_special; // decoding with skip_special drops these
    size_t n_ids;

    char *arena;      // backing store of vocabulary strings
    tok_buf affix[2]; // storage of bpe.prefix and bpe.suffix
    // Words may be cut before each U+2581 that follows another character: no
    // vocabulary token spans such a place, so no merge can cross it and the
    // pieces encode independently (SentencePiece-style models, whose whole
    // text is otherwise one word). Set at load when that holds.
    int split_at_metaspace;
    strmap added_map; // added token content -> id
};

// Loader parts (tok_load_parts.c). Each returns 0, or -1 with err filled.
// A boolean field of j: def when absent or null; -1 with err when not a
// boolean (what names j in the message).
int tok_json_bool(const cJSON *j, const char *key, int def, const char *what, char *err);

// A JSON null or absent part is fine (none).
int tok_parse_normalizer(tokenizer *t, const cJSON *j, char *err);
int tok_parse_pre_tokenizer(tokenizer *t, const cJSON *j, char *err);
int tok_parse_decoder(tokenizer *t, const cJSON *j, char *err);
int tok_parse_post_processor(tokenizer *t, const cJSON *j, char *err);

// Applies the normalizers to s[0..n). Sets *res/*res_len to the result:
// either s itself or bytes in out. Returns 0, or -1 when out of memory.
int tok_normalize(const tokenizer *t, const char *s, size_t n, tok_buf *out, tok_buf *tmp,
                  const char **res, size_t *res_len);

// Added tokens (added_tokens.c).
int trie_add(tok_trie *tr, const char *s, size_t n, int32_t token);
void trie_free(tok_trie *tr);
// The longest added token that starts at s[pos]: its index into t->added,
// with *end set past it; -1 when none.
int32_t trie_longest(const tok_trie *tr, const char *s, size_t n, size_t pos, size_t *end);

// One piece of text after splitting on added tokens: either an added token
// (id >= 0) or text to normalize and pre-tokenize (id < 0).
typedef struct {
    size_t start, end;
    int32_t id;
} tok_span;

typedef struct {
    tok_span *v;
    size_t n, cap;
} tok_spans;

// Splits s[0..n) on the added tokens of trie tr as HF's AddedVocabulary does
// (leftmost-longest, single_word, lstrip, rstrip). Appends to out. Returns 0 or -1.
int added_split(const tokenizer *t, const tok_trie *tr, const char *s, size_t n, tok_spans *out);

// A word -> tokens cache for one tok_encode call: text repeats its words.
typedef struct {
    uint32_t hash;
    uint32_t key_off, key_len; // the word: keys.p[key_off..]
    uint32_t ids_off, ids_n;   // its tokens: ids.v[ids_off..]
} word_entry;

typedef struct {
    word_entry *slots; // [cap]; key_len == 0 marks an empty slot
    size_t cap, count;
    tok_buf keys;
    tok_ids ids;
} word_cache;

// Working state of one tok_encode call.
typedef struct {
    const tokenizer *t;
    tok_ids *out;
    bpe_scratch bpe;
    word_cache cache;
    tok_buf stage[TOK_MAX_STEPS]; // text rewritten by pre-tokenizer step i
} tok_enc;

// Appends the tokens of one pre-tokenized word to e->out (tok_encode.c).
// Returns 0 or -1 when out of memory.
int tok_encode_word(tok_enc *e, const char *w, size_t n);

// The same for a word no merge crosses out of, through e->cache
// (word_cache.c). Returns 0 or -1 when out of memory.
int word_cache_encode(tok_enc *e, const char *w, size_t n);
void word_cache_free(word_cache *c);

// Runs pre-tokenizer steps step.. over the text s[0..n) (valid UTF-8) and
// appends the BPE tokens of every resulting piece to e->out. at_start: s
// begins the original input (Metaspace's prepend_scheme "first"). Returns 0
// or -1 when out of memory.
int pretok_run(tok_enc *e, size_t step, const char *s, size_t n, int at_start);

// Decodes ids[0..n) into out (replacing its contents). *pending is set when
// the text ends in bytes that later tokens could still change: an incomplete
// UTF-8 sequence (ByteLevel), or a run of <0xNN> tokens (ByteFallback).
// Returns 0 or -1 when out of memory.
int tok_decode_into(const tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                    tok_buf *out, int *pending);

// 1 when decoding drops id (unknown, or special with skip_special).
int tok_decode_skips(const tokenizer *t, int32_t id, int skip_special);

// Byte-level alphabet (GPT-2's bytes_to_unicode): the code point standing
// for byte b, and the byte a code point stands for (-1 when none).
uint32_t byte_to_cp(uint8_t b);
int cp_to_byte(uint32_t cp);

#endif
