// libFuzzer entry for the tokenizer. The first input byte picks a tokenizer
// (bits 2-4: the tiny fixture and, when present, the real ones), whether to
// add special tokens (bit 5), and a mode (bits 0-1):
//   0  the rest of the input is raw text (any bytes) to encode;
//   1  "special-token soup": each byte < 0x80 picks a fragment (special and
//      added tokens, partial ones, spaces, newlines, letters, CJK, emoji,
//      combining marks), other bytes go in raw;
//   2  pairs of bytes are token ids to decode (byte tokens, unknown ids...);
//   3  the same, decoded with skip_special.
// Checks, aborting on failure: encode succeeds; decode output is valid UTF-8;
// streaming the ids gives valid UTF-8 pieces that concatenate to the whole
// decode; and for Llama-3's tokenizer (byte-level, no normalizer),
// decode(encode(text)) is the text with its bad bytes read as U+FFFD.
//
//   make fuzz-tokenizer FUZZ_SECONDS=300
//
// A crash found here is kept in tests/fixtures/tokenizer/fuzz/, which
// tests/unit/test_tokenizer.c runs through every tokenizer.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok_buf.h"
#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

static const char *PATHS[] = {
    "tests/fixtures/tokenizer/tiny/tokenizer.json",
    "../shared/tokenizers/llama3/tokenizer.json",
    "../shared/tokenizers/qwen3/tokenizer.json",
    "../shared/tokenizers/llama2-spm/tokenizer.json",
    "models/SmolLM2-135M-Instruct/tokenizer.json",
};
#define N_PATHS (sizeof PATHS / sizeof PATHS[0])
#define LLAMA3 1 // index in PATHS: lossless round trip

static tokenizer *toks[N_PATHS];

static const char *FRAGMENTS[] = {
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<s>",
    "</s>",
    "<unk>",
    "<think>",
    "</think>",
    "<tool_call>",
    "<|endoftext|>",
    "<|reserved_special_token_7|>",
    "<|im_",
    "<|",
    "|>",
    "<",
    ">",
    "</",
    "<0x41>",
    "<0xE6>",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "\xC2\xA0",
    "\xE3\x80\x80",
    "a",
    "ab",
    "Hello",
    " world",
    "'s",
    "'LL",
    "'ve",
    "x",
    "1",
    "123",
    "12345",
    "\xD9\xA3",
    "\xC2\xBD",
    ".",
    "!",
    "...",
    "--",
    "\xE2\x96\x81",
    "\xC4\xA0",
    "\xE6\x97\xA5",
    "\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xED\x95\x9C",
    "\xE0\xA4\xB9\xE0\xA4\xBF",
    "\xD8\xB9",
    "\xF0\x9F\x98\x80",
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",
    "\xE2\x80\x8D",
    "\xEF\xB8\x8F",
    "e\xCC\x81",
    "\xCC\x81",
    "\xCC\xA3",
    "\xE1\x84\x80",
    "\xE1\x85\xA1",
    "\xE1\x86\xA8",
    "\xEA\xB0\x80",
    "\xE2\x84\xAB",
    "\xC5\xBF",
    "\xEF\xBF\xBD",
    "\x00",
    "\xE2\x80\xA8",
};
#define N_FRAGMENTS (sizeof FRAGMENTS / sizeof FRAGMENTS[0])

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[LLM_ERR_LEN];
    for (size_t i = 0; i < N_PATHS; i++) {
        if (!llm_file_exists(PATHS[i])) continue;
        toks[i] = tok_load(PATHS[i], err);
        if (!toks[i]) abort();
    }
    if (!toks[0]) abort(); // run from the repository root
    return 0;
}

// Streams ids and checks the pieces against the whole decode.
static void check_decode(const tokenizer *t, const int32_t *ids, size_t n, int skip) {
    char err[LLM_ERR_LEN];
    size_t len;
    char *whole = tok_decode(t, ids, n, skip, &len, err);
    if (!whole || strlen(whole) > len || !utf8_valid(whole, len)) abort();
    tok_stream *s = tok_stream_create(t, skip, err);
    if (!s) abort();
    tok_buf all = {0};
    for (size_t i = 0; i <= n; i++) {
        size_t k;
        const char *p = i < n ? tok_stream_push(s, ids[i], &k, err) : tok_stream_flush(s, &k, err);
        if (!p || !utf8_valid(p, k) || tok_buf_put(&all, p, k) != 0) abort();
    }
    if (all.len != len || (len && memcmp(all.p, whole, len) != 0)) abort();
    tok_buf_free(&all);
    tok_stream_destroy(s);
    free(whole);
}

static void check_text(size_t which, const char *text, size_t n, int add_special) {
    const tokenizer *t = toks[which];
    char err[LLM_ERR_LEN];
    int32_t *ids;
    size_t n_ids;
    if (tok_encode(t, text, n, add_special, &ids, &n_ids, err) != 0) abort();
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= tok_vocab_size(t)) abort();
    check_decode(t, ids, n_ids, 0);
    check_decode(t, ids, n_ids, 1);
    if (which == LLAMA3) {
        tok_buf want = {0};
        size_t len;
        char *back = tok_decode(t, ids, n_ids, 0, &len, err);
        if (utf8_repair(text, n, &want) != 0 || !back || len != want.len ||
            (len && memcmp(back, want.p, len) != 0))
            abort();
        free(back);
        tok_buf_free(&want);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t which = (data[0] >> 2) % N_PATHS;
    if (!toks[which]) which = 0;
    int mode = data[0] & 3, add_special = (data[0] >> 5) & 1;
    data++;
    size--;
    if (mode == 2 || mode == 3) {
        size_t n = size / 2, vocab = tok_vocab_size(toks[which]);
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids) abort();
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
            // byte tokens and single characters live low in every vocabulary
            ids[i] = (int32_t)(v & 0x8000 ? v % (vocab + 16) : v % 300);
        }
        check_decode(toks[which], ids, n, mode == 3);
        free(ids);
        return 0;
    }
    if (mode == 0) {
        check_text(which, (const char *)data, size, add_special);
        return 0;
    }
    tok_buf text = {0};
    for (size_t i = 0; i < size; i++) {
        const char *f = FRAGMENTS[data[i] % N_FRAGMENTS];
        size_t len = f[0] ? strlen(f) : 1; // "\x00" is one NUL byte
        int r = data[i] < 0x80 ? tok_buf_put(&text, f, len) : tok_buf_put(&text, &data[i], 1);
        if (r != 0) abort();
    }
    check_text(which, text.p ? text.p : "", text.len, add_special);
    tok_buf_free(&text);
    return 0;
}
