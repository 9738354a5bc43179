// tokenizer.h - Hugging Face tokenizer.json tokenizers (BPE, byte-level or
// SentencePiece-style): encoding, decoding and streaming detokenization, token
// for token the same as the `tokenizers` Python package (the reference).
//
// Supported tokenizer.json parts: model BPE (merges as "a b" or ["a", "b"],
// ignore_merges, byte_fallback, unk_token, fuse_unk,
// continuing_subword_prefix, end_of_word_suffix); added tokens (special or
// not, single_word, lstrip, rstrip, normalized); normalizers NFC, Prepend,
// Replace (string pattern), Sequence; pre-tokenizers Split (the GPT-2,
// Llama-3 and Qwen2 regexes, or a string pattern; every split behaviour,
// invert), ByteLevel (with and without use_regex), Digits, Metaspace,
// Sequence; post-processors TemplateProcessing, ByteLevel, Sequence; decoders
// ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence.
// Anything else is a load error that names it (an unknown Split regex included).
//
// Input text is UTF-8. Each byte of it that is not part of a well-formed
// UTF-8 sequence is read as U+FFFD (one replacement character per bad byte);
// nothing else about bad input is an error.
//
// A loaded tokenizer is immutable: any number of threads may encode and
// decode with it at once.
#ifndef LLM_TOKENIZER_H
#define LLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer;

// Loads a tokenizer from path: a directory holding tokenizer.json, or the path
// of a tokenizer.json file. Returns NULL and fills err (LLM_ERR_LEN bytes) when
// the file is missing, malformed, or uses a part this implementation lacks.
tokenizer *tok_load(const char *path, char *err);

// Frees t (NULL is fine).
void tok_free(tokenizer *t);

// Encodes text[0..n). add_special applies the post-processor's template
// (e.g. a leading <s>), as add_special_tokens does in the reference; added
// tokens written in the text are recognized either way. On success returns 0,
// sets *ids to a heap array (free() it; non-NULL even when empty) and *n_ids
// to its length. Returns -1 and fills err when out of memory or n >= 2 GiB.
int tok_encode(const tokenizer *t, const char *text, size_t n, int add_special, int32_t **ids,
               size_t *n_ids, char *err);

// Decodes ids[0..n) into a NUL-terminated heap string (free() it); *len (may
// be NULL) gets its length. skip_special drops special added tokens. Ids that
// name no token are skipped, as the reference does. Bytes that do not form
// valid UTF-8 come out as U+FFFD, so the result is always valid UTF-8.
// Returns NULL and fills err only when out of memory.
char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, int skip_special, size_t *len,
                 char *err);

// One past the largest token id (vocabulary and added tokens).
size_t tok_vocab_size(const tokenizer *t);

// The token string of id as written in tokenizer.json (a byte-level token is
// in its byte-to-unicode form), or NULL when id names no token.
const char *tok_id_to_token(const tokenizer *t, int32_t id);

// The id of token string s (an added token or a vocabulary entry), or -1.
int32_t tok_token_to_id(const tokenizer *t, const char *s);

// 1 when id is a special added token (what skip_special drops).
int tok_is_special(const tokenizer *t, int32_t id);

// --- streaming detokenization --------------------------------------------
//
// One stream per generated sequence: push each new id, get the text it
// completes; flush at the end. The pieces concatenate to exactly
// tok_decode() of all the ids, and every piece is valid UTF-8: bytes of a
// character split across tokens are held until the character is complete.
// With a ByteFallback decoder, text made of <0xNN> byte tokens is held until
// the run of byte tokens ends (the reference decodes a run as a whole: one
// bad byte turns the whole run into U+FFFDs).

typedef struct tok_stream tok_stream;

// Creates a stream over t (which must outlive it). Returns NULL and fills err
// when out of memory.
tok_stream *tok_stream_create(const tokenizer *t, int skip_special, char *err);

// Feeds one id. Returns the newly completed text, possibly "" (NUL-terminated,
// owned by the stream, valid until the next call); *len (may be NULL) gets its
// length. Returns NULL and fills err only when out of memory.
const char *tok_stream_push(tok_stream *s, int32_t id, size_t *len, char *err);

// Ends the sequence: returns whatever was held back (incomplete bytes come out
// as U+FFFD, as tok_decode would give them) and resets the stream for reuse.
// Same ownership and errors as tok_stream_push.
const char *tok_stream_flush(tok_stream *s, size_t *len, char *err);

void tok_stream_destroy(tok_stream *s);

#endif
