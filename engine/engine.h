// engine.h - the public engine API: a model on a device, a paged KV cache
// sized from a memory budget, and a continuous-batching scheduler. The
// server, llm_generate and bench_engine all sit on this API.
//
// Single-threaded: one thread creates the engine and calls everything below
// (engine_thread.h wraps it for multi-threaded callers). Token level: stop
// strings and detokenization belong to the caller, who aborts a request when
// its text hits a stop string.
#ifndef LLM_ENGINE_H
#define LLM_ENGINE_H

#include <stdint.h>

#include "device.h"
#include "model.h"
#include "sampler.h"

typedef struct {
    const char *model_dir;         // Hugging Face directory, or
    const char *synthetic;         // a synthetic model's name (model.h)
    uint64_t seed;                 // of the synthetic weights
    device_kind device;            // DEVICE_AUTO: CUDA when usable
    int dtype;                     // weights as llm_dtype, or -1 as stored
    quant_kind quantization;       // QUANT_INT8: quantize float Linear weights at load
    int block_size;                // tokens per KV page (16)
    int kv_cache_dtype;            // K/V as LLM_F16, LLM_BF16 or LLM_F8E4M3; -1 (auto): the model's
    double gpu_memory_utilization; // fraction of device memory for the engine (0.9)
    uint64_t kv_cache_memory;      // KV bytes; overrides the fraction when > 0
    uint64_t device_memory;        // CPU backend: the "device" total (0: available RAM)
    int max_num_seqs;              // sequences per step (256)
    int max_num_batched_tokens;    // tokens per step (2048; the CPU backend lowers the
                                   // default to ENGINE_CPU_MAX_NUM_BATCHED_TOKENS)
    int max_num_batched_tokens_set; // 1: chosen (the flag sets it), kept even if 2048
    int max_model_len;              // tokens per sequence (0: the model's maximum)
    int prefix_caching;             // 1: reuse cached prompt pages
    int enforce_eager;              // 1: no CUDA graphs for decode steps (--enforce-eager)
    int batch_invariant;            // 1: a row's result does not depend on its batch
                                    // (backend.h batch_invariant; --batch-invariant)
    int cpu_matmul_bf16;            // 1: --cpu-matmul bf16 (cpu_backend_matmul_bf16)
    int device_sampling;            // 1: a step whose sampled rows are all plain greedy
                                    // (sampler_next_is_argmax) picks them by argmax where
                                    // the logits are and downloads only the ids; 0: every
                                    // step downloads the logits and samples on the host
                                    // (same tokens; tests compare the two)
    int verbose;                    // 1: start-up log on stderr
    int allow_long_max_model_len;   // 1: a max_model_len beyond the model's maximum is
                                    // used (with a warning); 0: it is an error
} engine_config;

// The defaults above.
engine_config engine_config_default(void);

// The CPU backend's default tokens per step: a step with a full prompt chunk
// of the default model lasts ~0.57 s on 2 cores at 256 (~2.2 s at 2048), and
// prefill takes 2% longer in all (measured: 1024-token prompt 2230 ms in one
// step, 2274 ms in chunks of 512, 2281 ms of 256, 2288 ms of 128).
#define ENGINE_CPU_MAX_NUM_BATCHED_TOKENS 256

typedef struct {
    // memory, bytes
    uint64_t device_total; // device memory (or --device-memory on CPU)
    uint64_t budget;       // device_total x utilization (or weights+act+overhead+KV override)
    uint64_t weights;
    uint64_t weights_embed;  // of which the embedding table and an untied lm_head
    uint64_t weights_int8;   // of which int8 Linear matrices with their scales
    uint64_t weights_saved;  // what int8 saves against the same matrices in 16 bits
    llm_dtype weights_dtype; // the dtype the float matrices run in (engine_weights_dtype)
    uint64_t activations;    // workspace peak of a step at max_num_batched_tokens
    uint64_t overhead;       // runtime overhead (CUDA context, cuBLAS workspace, graphs)
    uint64_t kv_allocated;   // the KV pool
    uint64_t kv_used;        // pages in use x page bytes
    uint64_t page_bytes;     // one page, all layers, K and V
    llm_dtype kv_dtype;      // of the KV cache: F16, BF16 or F8E4M3
    // pages
    int pages_total, pages_used, pages_cached;
    int block_size;
    int64_t kv_tokens; // pages_total x block_size
    int max_model_len;
    double max_concurrency; // kv_tokens / max_model_len
    // requests
    int running, waiting;
    uint64_t preemptions;
    uint64_t prefix_queries, prefix_hits; // pages looked up / found
    uint64_t prompt_tokens;               // prompt tokens admitted
    uint64_t cached_prompt_tokens;        // of which served from the prefix cache
    uint64_t computed_tokens;             // tokens run through the model (prefill + decode)
    uint64_t generated_tokens;
    uint64_t device_sampled_tokens; // of which picked on the device (see device_sampling)
    uint64_t steps;
    int max_num_batched_tokens; // tokens per step in force (after the CPU default)
} engine_stats;

// What one step produced for one request.
typedef struct {
    int64_t id;
    int token;                 // the new token (-1 when none: finished without one)
    sample_result sample;      // its logprobs, when asked for
    int finished;              // 1: the request is done and forgotten by the engine
    const char *finish_reason; // "stop", "length", "abort", or NULL
    int n_prompt;              // prompt tokens
    int n_cached;              // prompt tokens served from the prefix cache
    int n_generated;           // tokens generated so far, this one included
    double queue_time;         // seconds from engine_add_request to first scheduled (-1: never)
} engine_output;

typedef struct engine engine;

// The memory plan, as vLLM defines it: budget = device_total x
// gpu_memory_utilization; KV bytes = budget - weights - activations (the
// forward workspace at max_num_batched_tokens) - runtime overhead, or
// kv_cache_memory when given; pages = KV bytes / page bytes.
typedef struct {
    uint64_t device_total; // device memory (the CPU backend: --device-memory or RAM + weights)
    uint64_t budget;       // device_total x utilization, or the fixed parts + kv_cache_memory
    uint64_t weights;
    uint64_t activations;    // forward_workspace_estimate at the engine's limits
    uint64_t overhead;       // runtime overhead (CUDA context, cuBLAS, lazily grown workspaces)
    uint64_t page_bytes;     // one page, all layers, K and V
    uint64_t kv_bytes;       // pages x page_bytes
    llm_dtype weights_dtype; // the float matrices' dtype
    llm_dtype kv_dtype;      // the KV cache's (forward_resolve_kv_dtype)
    int pages;
    int block_size;
    int max_model_len;
    int max_num_batched_tokens; // the token budget the activations are sized for
    int64_t kv_tokens;          // pages x block_size
    double max_concurrency;     // kv_tokens / max_model_len
    device_kind device;         // the backend whose workspace the activations count (CUDA: also the
                                // split-decode scratch and the decode graphs' metadata)
} engine_memory_plan;

// The dtype a model's float matrices run in: `requested` (an llm_dtype), or
// when it is -1 the checkpoint's own, `stored`. On a device of compute
// capability cc (major * 10 + minor; 0 for the CPU) below 8.0, which has no
// bf16 arithmetic (no bf16 cuBLAS GEMM, no bf16 MMA), a stored bf16 runs as
// fp16, as vLLM does; a bf16 asked for explicitly stays, on slower kernels.
// *why gets the reason in either case, else NULL.
llm_dtype engine_weights_dtype(llm_dtype stored, int requested, int cc, const char **why);

// The longest sequence cfg allows on a model of config mc: cfg->max_model_len,
// or the model's maximum when that is 0 (engine_resolve_limits has checked a
// larger value).
int engine_max_model_len(const engine_config *cfg, const model_config *mc);

// The --kv-cache-dtype spelling of a KV cache dtype: "fp16", "bf16", "fp8".
const char *engine_kv_dtype_name(llm_dtype kv_dtype);

// The limits cfg leaves to the engine, settled for a model of config mc on a
// device of kind `kind`: max_model_len (0: the model's maximum; larger than
// it is an error unless allow_long_max_model_len, which warns when verbose)
// and, on the CPU, the smaller default token budget
// (ENGINE_CPU_MAX_NUM_BATCHED_TOKENS) unless one was chosen. engine_create
// and the memory plan's dry run both call it. Returns 0, or -1 with err.
int engine_resolve_limits(engine_config *cfg, const model_config *mc, device_kind kind, char *err);

// The one computation of the memory plan: for a model of config mc whose
// weights take `weights` bytes, on a device of device_total bytes with
// `overhead` bytes of runtime overhead, at cfg's limits. engine_create calls it
// with what it loaded and measured, engine_plan_dry_run with predictions, so
// the start-up log and `bench_engine memory --dry-run` cannot disagree.
// Returns 0, or -1 with err when the budget leaves no KV page.
int engine_plan_memory(const engine_config *cfg, const model_config *mc, uint64_t weights,
                       llm_dtype weights_dtype, uint64_t device_total, uint64_t overhead,
                       engine_memory_plan *p, char *err);

// The plan without loading a weight: mc from cfg's config.json or synthetic
// shape (with cfg->quantization applied), weights from model_weight_bytes in
// the dtype the engine would load, device_total = cfg->device_memory or (the
// CPU's "device") available RAM + weights, no overhead. Returns 0, or -1 with
// err (unreadable config, or no KV page fits).
int engine_plan_dry_run(const engine_config *cfg, model_config *mc, engine_memory_plan *p,
                        char *err);

// Loads the model, creates the backend, sizes the KV cache from the memory
// budget (DESIGN.md "Memory budget") and logs it when verbose. Returns NULL
// with err on failure (bad model, device, or a budget that leaves no KV room).
engine *engine_create(const engine_config *cfg, char *err);
// The backend modes cfg asks for (--batch-invariant, --cpu-matmul bf16), set
// on b before its first op: engine_create's, and any tool driving a backend
// itself. -1 with err set when b cannot run one.
struct backend;
int engine_backend_modes(struct backend *b, const engine_config *cfg, char *err);

// Queues a request: its prompt tokens (copied) and sampling parameters.
// Returns its id (>= 0), or -1 with err when the request can never run
// (empty prompt, a token outside the vocabulary, bad sampling parameters,
// longer than max_model_len or than the whole KV cache).
int64_t engine_add_request(engine *e, const int32_t *prompt, int n_prompt,
                           const sampling_params *sp, char *err);

// Finishes a request now ("abort"); its pages are freed. Returns 0, or -1
// when the id is unknown (already finished). The next step reports it once
// with finish_reason "abort".
int engine_abort(engine *e, int64_t id);

// Runs one scheduling step: schedules decodes then prefill chunks, runs the
// model once, samples. *out points to an array (owned by the engine, valid
// until the next call) of *n_out outputs. Returns 0, or -1 with err on a
// backend failure.
int engine_step(engine *e, engine_output **out, int *n_out, char *err);

// 1 while any request is waiting or running.
int engine_has_work(const engine *e);

void engine_get_stats(const engine *e, engine_stats *s);
const model_config *engine_model_config(const engine *e);
const device_info *engine_device(const engine *e);
// Free and total memory of the engine's device now (the backend's figures:
// cudaMemGetInfo on a GPU, available and physical RAM on the CPU).
void engine_memory_info(const engine *e, uint64_t *free_bytes, uint64_t *total_bytes);

void engine_destroy(engine *e);

#endif
