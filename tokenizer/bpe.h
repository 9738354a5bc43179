// bpe.h - the BPE model: a word (one pre-tokenized piece) in, token ids out.
// Merges are applied by rank with a binary heap over a linked list of
// symbols, so a word of n symbols costs O(n log n) whatever its length.
#ifndef LLM_BPE_H
#define LLM_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "tok_buf.h"
#include "tok_map.h"

// A growable list of token ids.
typedef struct {
    int32_t *v; // [cap]
    size_t n, cap;
} tok_ids;

// Appends id. Returns 0, or -1 when out of memory.
int tok_ids_push(tok_ids *ids, int32_t id);

typedef struct {
    strmap vocab;       // token, in the model's byte space -> id
    pairmap merges;     // (left id, right id) -> rank, merged id
    int32_t unk_id;     // id of unk_token, -1 when there is none
    int fuse_unk;       // consecutive unknown characters give one unk
    int byte_fallback;  // unknown characters become <0xNN> byte tokens
    int ignore_merges;  // a word found whole in the vocab is one token
    int byte_symbols;   // words are raw bytes, each byte one initial symbol
                        // (byte-level BPE); else each UTF-8 character is one
    const char *prefix; // continuing_subword_prefix, NULL when none
    size_t prefix_len;
    const char *suffix; // end_of_word_suffix, NULL when none
    size_t suffix_len;
    int32_t byte_ids[256]; // ids of <0x00>..<0xFF> for byte_fallback, -1 if absent
} bpe_model;

typedef struct bpe_sym bpe_sym;
typedef struct bpe_merge bpe_merge;

// Reusable working memory of bpe_word; zero-initialize, free with bpe_scratch_free.
typedef struct {
    bpe_sym *sym;
    size_t sym_cap;
    bpe_merge *heap;
    size_t heap_len, heap_cap;
    tok_buf key;
} bpe_scratch;

void bpe_scratch_free(bpe_scratch *sc);

// Appends the tokens of word w[0..n) (model byte space; valid UTF-8 unless
// byte_symbols) to out, as Hugging Face's BPE model would. Characters that
// are neither in the vocabulary nor covered by byte_fallback become unk, or
// vanish when the model has no unk token. Returns 0, or -1 when out of memory.
int bpe_word(const bpe_model *m, const char *w, size_t n, bpe_scratch *sc, tok_ids *out);

void bpe_free(bpe_model *m);

#endif
