// forward.h - the transformer forward pass over one flat, variable-length
// batch, written once against the backend interface (kernels/backend.h).
//
// A batch is any mix of prompt chunks and decode tokens of several sequences:
// rows are grouped by sequence; each row has a position and a KV-cache slot;
// each sequence has a block table of cache pages. The caller (the scheduler,
// or llm_generate's single-sequence loop) owns page allocation.
#ifndef LLM_FORWARD_H
#define LLM_FORWARD_H

#include <stdint.h>

#include "backend.h"
#include "model.h"

typedef struct forward_ctx forward_ctx;

typedef struct {
    int max_tokens;  // most rows in one forward call (activation workspace)
    int max_seqs;    // most sequences in one call
    int max_context; // longest context of a sequence (max_model_len)
    int block_size;  // tokens per KV page (16 by default)
    int num_blocks;  // pages in the KV pool (0: none yet, see forward_alloc_kv)
    // K/V element type: LLM_F16, LLM_BF16 or LLM_F8E4M3 (with the model's
    // per-layer k_scale/v_scale); 0 (LLM_F32, never a KV type) picks the
    // model's (forward_resolve_kv_dtype).
    int kv_dtype;
    // 1: decode steps run eagerly, op by op, on a backend that has graphs
    // (vLLM's --enforce-eager); 0: each padded batch size is recorded once
    // and replayed (see forward_run).
    int enforce_eager;
    // 1: the workspace also holds what a GPU backend needs (split-decode
    // scratch, the decode graphs' metadata). forward_create sets it from the
    // backend; the memory plan sets it for the device it plans.
    int device_workspace;
} forward_opts;

// One step's batch, host arrays (see bk_attn_batch for the semantics).
typedef struct {
    int n_tokens;
    int n_seqs;
    const int32_t *token_ids;    // [n_tokens]
    const int32_t *positions;    // [n_tokens]
    const int32_t *slot_mapping; // [n_tokens]
    const int32_t *query_start;  // [n_seqs + 1]
    const int32_t *context_len;  // [n_seqs]
    const int32_t *block_tables; // [n_seqs, max_blocks]
    int max_blocks;
    int all_logits; // 1: logits of every row; 0: of each sequence's last row
} forward_batch;

// Puts the model's weights on the backend (the CPU backend uses them where
// they are), allocates the KV pool and the workspace for opts. The model must
// outlive the context. Returns NULL with err on failure (nothing leaked).
forward_ctx *forward_create(backend *b, const model_weights *m, const forward_opts *opts,
                            char *err);

// Allocates the KV pool of num_blocks pages (replacing any earlier pool).
// Returns 0, or -1 with err when the device is out of memory.
int forward_alloc_kv(forward_ctx *f, int num_blocks, char *err);

// Runs the batch: writes its K/V into the cache and fills logits (host,
// [n_seqs or n_tokens, vocab] f32, see all_logits). Returns 0, or -1 with err
// (a batch beyond the opts' limits, a backend failure).
// On a backend with graphs (CUDA) a batch of decode rows only (one row per
// sequence, not all_logits) is padded to the next size of 1, 2, 4, ... up to
// min(max_seqs, max_tokens) with rows that write nothing; the first step of
// each size records the step as a graph, later ones replay it: one packed
// upload, one graph launch, one download. The padding rows do not change the
// real rows' results (every op computes a row from that row alone).
int forward_run(forward_ctx *f, const forward_batch *batch, float *logits, char *err);

// As forward_run, but fills ids (host, [n_seqs or n_tokens] int32, see
// all_logits) with each wanted row's greedy token instead of its logits: the
// backend's argmax (backend.h: ties to the lowest id, NaN as -inf, +inf as
// FLT_MAX, -1 for a row with nothing above -inf), computed where the logits
// are, so only the ids cross to the host: 4 bytes a row instead of vocab * 4.
// Returns 0, or -1 with err as forward_run.
int forward_run_argmax(forward_ctx *f, const forward_batch *batch, int32_t *ids, char *err);

// The KV cache dtype for a request (LLM_F16, LLM_BF16 or LLM_F8E4M3; anything
// else is "auto"), the weights' dtype as loaded and the checkpoint's (config.json):
// the request when given; else the weights' when 16-bit; else BF16 for a
// bf16 checkpoint and F16 otherwise (F32 and int8 weights of an fp16
// checkpoint). vLLM's "auto": a bf16 model keeps bf16 K/V (fp16 overflows to
// inf past 65504, which models trained in bf16 can reach).
llm_dtype forward_resolve_kv_dtype(int requested, llm_dtype weights, llm_dtype checkpoint);

// The context's KV cache dtype (LLM_F16, LLM_BF16 or LLM_F8E4M3).
llm_dtype forward_kv_dtype(const forward_ctx *f);

// Decode graphs recorded since creation and steps run through one (0 on
// backends without graphs or with enforce_eager).
void forward_graph_counts(const forward_ctx *f, int *recorded, uint64_t *replayed);

// Bytes of the KV pool, of one page (all layers, K and V, 16-bit either
// dtype), and of the workspace.
// Bytes of the KV pool, of one page (all layers, K and V, of kv_dtype: 2
// bytes an element, 1 for fp8), and of the workspace.
uint64_t forward_kv_bytes(const forward_ctx *f);
uint64_t forward_workspace_bytes(const forward_ctx *f);
// The workspace forward_create allocates for a model of config c with opts,
// without creating anything: the same list of buffers, so it equals
// forward_workspace_bytes of such a context to the byte (the memory plan's
// activation figure, engine.h).
uint64_t forward_workspace_estimate(const model_config *c, const forward_opts *opts);
uint64_t forward_page_bytes(const model_config *c, int block_size, llm_dtype kv_dtype);

void forward_destroy(forward_ctx *f);

#endif
