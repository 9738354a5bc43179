// stop.h - stop strings over streamed text. One stop_checker per request is fed
// the detokenized output chunk by chunk (any sizes, boundaries anywhere: inside
// a stop string or a UTF-8 character) and says what may be shown so far.
//
// Rules (vLLM's with include_stop_str_in_output off):
// - text is emitted once it can no longer be the start of a stop string: the
//   longest tail that is a proper prefix of some stop string is held back, and
//   so is an incomplete UTF-8 character at the end; as stop strings are valid
//   UTF-8 (checked), emitted pieces of valid text are whole characters;
// - no byte of a stop string is ever emitted; on a hit the text before it is;
// - the match that ends earliest wins; of matches ending at the same byte, the
//   one that starts earliest (the longest) wins;
// - with no stop strings, chunks pass straight through (no copy) save for an
//   incomplete character at the end, which waits for the rest.
#ifndef LLM_STOP_H
#define LLM_STOP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stop_checker stop_checker;

// Creates a checker for n stop strings (n may be 0; strings may be NULL then).
// The strings are copied; each must be non-empty, valid UTF-8. Returns NULL
// with err filled on a bad string or allocation failure.
stop_checker *stop_create(const char *const *strings, int n, char *err);

// Frees c. NULL is a no-op.
void stop_destroy(stop_checker *c);

// Feeds the next len bytes of output text. *out / *out_len get the text that
// may be shown now: it points into chunk or into c's buffer and stays valid
// until the next call on c (and, when into chunk, while chunk does). Returns 1
// when a stop string was hit (*out then ends right before it; the request is
// done, and later calls emit nothing and return 1 again), 0 when not, or -1
// with err filled when memory runs out (nothing is consumed then).
int stop_push(stop_checker *c, const char *chunk, size_t len, const char **out, size_t *out_len,
              char *err);

// At the end of generation: *out / *out_len get the held-back text (empty
// after a hit), valid until the next call on c. The checker is then empty.
void stop_flush(stop_checker *c, const char **out, size_t *out_len);

// Index (into the strings given to stop_create) of the stop string that was
// hit, or -1 when none was: vLLM's stop_reason.
int stop_hit_index(const stop_checker *c);

#ifdef __cplusplus
}
#endif

#endif
