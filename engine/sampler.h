// sampler.h - per-request token sampling with the semantics of vLLM (V1) and
// the OpenAI API: greedy, temperature, min-p, top-k, top-p, repetition /
// frequency / presence penalties, min_tokens, stop token ids, a seeded
// per-request RNG, and top-N logprobs. Host code; the CPU reference for any
// device sampler.
//
// One sampler_seq per request, used by one thread at a time (creating them
// from several threads is fine). A decode step for that request is:
//
//     sampler_sample(s, logits, vocab, &r, err);  // pick a token
//     sampler_accept(s, r.token, err);             // record it
//     fin = sampler_check_finish(s, r.token);      // stop token or max_tokens?
//
// Order of processing inside sampler_sample (vLLM V1 `Sampler`):
//   1. logprobs, when asked for: log-softmax of the RAW logits (vLLM's default
//      logprobs_mode "raw_logprobs": before bans, penalties and temperature);
//   2. min_tokens: every eos id and stop_token_id gets -inf until min_tokens
//      tokens have been generated (eos too under ignore_eos, as in vLLM, whose
//      _all_stop_token_ids always holds the eos ids);
//   3. penalties: repetition, then frequency, then presence;
//   4. temperature == 0: argmax, ties to the lowest id; otherwise
//      temperature → min-p → top-k → top-p → one draw from the renormalized
//      distribution with the request's RNG.
// vLLM V1 applies min-p (an "argmax-invariant logits processor") before
// top-k/top-p, so top-p measures mass over the tokens min-p and top-k kept.
//
// Determinism: all sums run in double in a fixed order (no threads), one
// uniform draw per sampled step, so the same seed and logits give the same
// tokens whatever else shares the batch. Across machines the only slack is
// libm's exp() (ulp-level differences), which can change a draw only when it
// lands within ~1e-16 of the edge between two tokens' shares (or of the top-p
// cut-off).
#ifndef LLM_SAMPLER_H
#define LLM_SAMPLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAMPLING_MAX_STOP_IDS 16  // stop_token_ids per request
#define SAMPLING_MAX_STOP 8       // stop strings per request
#define SAMPLING_MAX_STOP_LEN 256 // bytes per stop string, without the NUL
#define SAMPLING_MAX_LOGPROBS 20  // OpenAI's top_logprobs limit
#define SAMPLING_MAX_EOS 8        // eos ids a model may declare (Llama-3 has 3)

// Request parameters. Plain data: copy it by value; it owns no memory.
typedef struct {
    float temperature;        // 0 = greedy; validated to [0, 2]; 0 < t < 0.01 acts as 0.01 (vLLM)
    int top_k;                // 0 or -1 = off; keep tokens whose logit >= the k-th largest
    float top_p;              // 1 = off; (0, 1]; keep the smallest top set with mass >= top_p
                              // (ties by lower id; mass within 1e-6 of top_p counts as reaching it)
    float min_p;              // 0 = off; [0, 1]; keep tokens with p >= min_p * p_max
    float repetition_penalty; // 1 = off; > 0; on tokens seen in the prompt or the output
    float presence_penalty;   // 0 = off; [-2, 2]; output tokens only
    float frequency_penalty;  // 0 = off; [-2, 2]; output tokens only, times their count
    uint64_t seed;            // used when has_seed
    int has_seed;             // 0: seeded from the OS (getrandom), unreproducible
    int max_tokens;           // >= 1: at most this many generated tokens
    int min_tokens;           // 0..max_tokens: eos/stop ids banned until this many
    int ignore_eos;           // 1: eos does not stop the request (min_tokens still bans it)
    int stop_token_ids[SAMPLING_MAX_STOP_IDS]; // finish with "stop" when sampled
    int n_stop_token_ids;
    int logprobs; // -1: none; 0: the chosen token's only; 1..20: chosen + top-N
    char stop[SAMPLING_MAX_STOP][SAMPLING_MAX_STOP_LEN + 1]; // NUL-terminated, non-empty
    int n_stop; // see stop.h; stop_create also rejects invalid UTF-8
} sampling_params;

// vLLM's defaults: temperature 1, top_p 1, top_k off, min_p 0, penalties off,
// no seed, max_tokens 16, min_tokens 0, no stop ids or strings, logprobs -1.
sampling_params sampling_params_default(void);

// Checks p against vLLM's rules (SamplingParams._verify_args): temperature
// finite in [0, 2]; top_p in (0, 1]; top_k -1, 0 or >= 1 (above the vocab
// means off); min_p in [0, 1]; repetition_penalty finite and > 0;
// presence/frequency in [-2, 2]; max_tokens >= 1; 0 <= min_tokens <=
// max_tokens; logprobs in -1..20; stop token ids in [0, vocab_size); counts
// within the capacities above; stop strings non-empty and NUL-terminated
// within SAMPLING_MAX_STOP_LEN bytes. Returns 0, or -1 with a message naming
// the parameter in err (fit for an HTTP 400).
int sampling_params_validate(const sampling_params *p, int vocab_size, char *err);

typedef struct {
    int id;
    float logprob;
} token_logprob;

typedef struct {
    int token;     // the chosen token id
    float logprob; // its raw log-probability; 0 when params.logprobs == -1
    int n_top;     // entries in top: min(params.logprobs, vocab) when > 0, else 0
    token_logprob top[SAMPLING_MAX_LOGPROBS]; // raw logprobs, descending, ties by lower id
} sample_result;

typedef enum {
    SAMPLER_FINISH_NONE,   // keep generating
    SAMPLER_FINISH_STOP,   // eos or a stop token id (stop strings: stop.h)
    SAMPLER_FINISH_LENGTH, // max_tokens reached
} sampler_finish;

// "stop", "length", or NULL for SAMPLER_FINISH_NONE: the OpenAI finish_reason.
const char *sampler_finish_name(sampler_finish f);

typedef struct sampler_seq sampler_seq;

// Creates the per-request state: validates p (as sampling_params_validate),
// copies it, seeds the RNG (xoshiro256** from p->seed via splitmix64, or from
// getrandom() without a seed), and, only when a penalty is on, counts the
// prompt's tokens in a hash map of the distinct tokens seen (prompt and
// output; far leaner than a vocab-sized array, and the penalty pass touches
// only those tokens). eos_ids (n_eos <= SAMPLING_MAX_EOS, may be NULL when 0)
// are the model's end-of-sequence ids; prompt (n_prompt ids, may be NULL when
// 0) is copied from, not kept. Returns NULL with err filled on a bad
// parameter, an id outside [0, vocab_size) or allocation failure.
sampler_seq *sampler_seq_create(const sampling_params *p, int vocab_size, const int *eos_ids,
                                int n_eos, const int *prompt, int n_prompt, char *err);

// Frees s and everything it owns. NULL is a no-op.
void sampler_seq_destroy(sampler_seq *s);

// Picks the next token from logits [vocab] (raw model output for this
// request's last position) and fills out. logits is modified in place: on
// return it holds the processed logits (NaN → -inf, +inf → FLT_MAX, min_tokens
// bans, penalties); temperature and truncation are not written back. Does not
// record the token: call sampler_accept with the token kept. Consumes exactly
// one RNG draw when temperature > 0, none when greedy. Returns 0, or -1 with
// err filled when vocab differs from the one given at creation or no token
// has a finite logit (everything banned); s is unchanged on error.
int sampler_sample(sampler_seq *s, float *logits, int vocab, sample_result *out, char *err);

// 1 when the next sampler_sample(s, ...) would be a plain argmax of the raw
// logits and fill nothing else: temperature exactly 0 (0 < t < 0.01 samples at
// 0.01), no logprobs, no penalty, no min_tokens ban still in force. Its token
// is then the backend's argmax of the same logits (backend.h: ties to the
// lowest id, NaN as -inf, +inf as FLT_MAX), its result {token, logprob 0,
// n_top 0}, and no RNG draw is consumed, so a caller may pick it where the
// logits are (on the device) and go on with sampler_accept as usual.
int sampler_next_is_argmax(const sampler_seq *s);

// Records token as generated: bumps the generated count and, when penalties
// are on, its output count. Returns 0, or -1 with err filled when token is
// outside the vocab or memory runs out (s then counts nothing).
int sampler_accept(sampler_seq *s, int token, char *err);

// 1 when token ends the request by id: one of the eos ids (unless
// ignore_eos) or of stop_token_ids. Ignores min_tokens (see
// sampler_check_finish).
int sampler_is_stop_token(const sampler_seq *s, int token);

// After sampler_accept(s, token): why the request ends, as vLLM's check_stop
// decides: nothing before min_tokens tokens; then STOP for a stop token; then
// LENGTH once max_tokens tokens have been generated.
sampler_finish sampler_check_finish(const sampler_seq *s, int token);

// Tokens accepted so far.
int sampler_n_generated(const sampler_seq *s);

#ifdef __cplusplus
}
#endif

#endif
