// backend.h - the operation table both compute backends implement with the
// same semantics (kernels/cpu/ is the reference; kernels/cuda/ is checked
// against it). The forward pass (engine/forward.c) is written once against
// this table.
//
// Conventions, for every op:
// - Pointers named in a contract are device pointers of the backend (host
//   memory for the CPU backend) unless marked "host".
// - Activations are fp32, row-major, one row per token: x [n, dim].
// - Weight matrices are row-major [out, in] (nn.Linear) in F16, BF16, F32 or
//   I8; accumulation is always fp32. An I8 matrix is symmetric per output
//   channel: w[r][c] = (float)q[r][c] * scales[r].
// - The KV cache is fp16, bf16 or fp8 (kv_dtype: LLM_F16, LLM_BF16 or
//   LLM_F8E4M3; the model's 16-bit dtype by default) and paged: per layer, K
//   and V each [num_blocks, n_kv_heads, block_size, head_dim] elements of
//   kv_dtype (2 bytes, or 1 for fp8; hence void pointers); token t of a
//   sequence lives in block block_table[t / block_size] at offset
//   t % block_size. A slot is block * block_size + offset.
// - fp8 K/V (vLLM's --kv-cache-dtype fp8) carry per-tensor scales, one for K
//   and one for V per layer (k_scale, v_scale: host floats, 1.0 unless the
//   checkpoint has them): stored q = f32_to_fp8_e4m3(x / scale), read value =
//   fp8_e4m3_to_f32(q) * scale (dtype.h: round to nearest even, saturate to
//   +-448). kv_write and attention ignore the scales for 16-bit caches.
// - Ops are asynchronous on devices that queue work; download() and sync()
//   wait for everything queued before them.
#ifndef LLM_BACKEND_H
#define LLM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "dtype.h"

// A weight matrix as the backend holds it.
typedef struct {
    const void *data;    // [rows, cols] in dtype
    llm_dtype dtype;     // F16, BF16, F32 or I8
    int rows;            // out features
    int cols;            // in features
    const float *scales; // I8 only: [rows] f32 per-output-channel scales; else NULL
} bk_matrix;

// The flat, variable-length batch of one forward step, as device arrays.
// Sequence s owns query rows query_start[s] .. query_start[s+1]-1; after
// this step's KV write it has context_len[s] tokens in the cache, so its
// query row r sits at position context_len[s] - q_len + r and attends to
// cache positions 0 .. that position (causal).
typedef struct {
    int n_tokens;                // rows of the batch
    int n_seqs;                  // sequences in the batch
    int max_query_len;           // max over s of q_len
    int max_context_len;         // max over s of context_len
    int max_blocks;              // row stride of block_tables
    const int32_t *query_start;  // [n_seqs + 1]
    const int32_t *context_len;  // [n_seqs]
    const int32_t *block_tables; // [n_seqs, max_blocks]
    const int32_t *seq_of_token; // [n_tokens] index of the sequence of each row
    const int32_t *positions;    // [n_tokens]
    const int32_t *slot_mapping; // [n_tokens] cache slot each row's K/V goes to
    // Device scratch for split decode partials, or NULL: the backend then
    // keeps its own, grown on first use (a GPU's synchronizes to grow it).
    // attention_scratch_floats() says how much a batch may need.
    float *scratch;
    size_t scratch_floats;
} bk_attn_batch;

// Split-decode attention (the CUDA backend's) writes at most
// max_seqs x n_heads x BK_DECODE_MAX_PARTS partial results of head_dim + 2
// floats each.
#define BK_DECODE_MAX_PARTS 16
static inline size_t attention_scratch_floats(int max_seqs, int n_heads, int head_dim) {
    return (size_t)max_seqs * (size_t)n_heads * BK_DECODE_MAX_PARTS * ((size_t)head_dim + 2);
}

// The 16-bit copy of a matmul's input (x16): a backend whose matmul rounds
// x to a 16-bit type for its GEMM (CUDA: more than 8 rows, not
// batch-invariant) says so through x16_plan, and the op that produces x
// (rmsnorm, add_rmsnorm, silu_mul, attention) writes the rounded copy in the same pass;
// the matmul then multiplies the copy and runs no conversion of its own.
typedef struct {
    void *data;      // [n, cols] in dtype, row-major
    llm_dtype dtype; // LLM_F16 or LLM_BF16: round to nearest even (dtype.h)
    unsigned *ovf;   // LLM_F16: a device flag the writer sets nonzero when a
                     // value rounds beyond the fp16 range (|v| >= 65520); or NULL
} bk_x16;

typedef struct backend backend;

struct backend {
    device_info info;
    // Set by an op that failed (out of memory, a device error); the forward
    // pass checks it after each step and reports error.
    int failed;
    char error[512];
    // Batch-invariant mode (--batch-invariant; the engine sets it before the
    // first step): every op computes a row with the same operations in the
    // same order whatever other rows share the call, so a row's bits do not
    // depend on the batch. The CPU backend always is (a no-op there); the
    // CUDA backend then runs every matmul through its GEMV (fp32
    // activations, 8 rows at a time) and every attention row through one
    // kernel whose key split depends on the row's own position only.
    int batch_invariant;
    // The op the forward pass is running, for error messages: layer (-1:
    // none) and matrix name (NULL: unknown). Set before each matmul.
    int op_layer;
    const char *op_name;

    // --- memory ---
    // Device allocation; NULL when out of memory. free(NULL) is a no-op.
    void *(*alloc)(backend *b, size_t bytes);
    void (*free)(backend *b, void *p);
    // host -> device and device -> host copies; download waits for queued work.
    void (*upload)(backend *b, void *dst, const void *host_src, size_t bytes);
    void (*download)(backend *b, void *host_dst, const void *src, size_t bytes);
    // Host memory that download() and upload() move fastest: page-locked on a
    // GPU (a pageable copy goes through a staging buffer at about half the
    // speed), plain memory on the CPU. For buffers copied every step, e.g. the
    // logits the host samples from. NULL when out of memory; host_free(NULL)
    // is a no-op. Freed before the backend is destroyed.
    void *(*host_alloc)(backend *b, size_t bytes);
    void (*host_free)(backend *b, void *p);
    // host -> device copy that does not wait for the copy: host_src must come
    // from host_alloc and stay unchanged until the next download() or sync()
    // returns. (The CPU backend copies at once.)
    void (*upload_async)(backend *b, void *dst, const void *host_src, size_t bytes);
    // Fills bytes with a byte value (tests poison outputs with it).
    void (*memset)(backend *b, void *dst, int value, size_t bytes);
    // Waits for all queued work.
    void (*sync)(backend *b);
    // Free and total device memory in bytes.
    void (*memory_info)(backend *b, uint64_t *free_bytes, uint64_t *total_bytes);

    // --- ops ---
    // out [n, dim] f32 = table[ids[i]] (table [vocab, dim] F16/BF16/F32, or
    // I8 with --quantize-embeddings: q[ids[i]] * scales[ids[i]]).
    // PRECOND: 0 <= ids[i] < table.rows.
    void (*embedding)(backend *b, float *out, const bk_matrix *table, const int32_t *ids, int n);

    // RMSNorm of each row: out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * w.
    // x, out [n, dim] f32 (out may alias x); w [dim] f32. x16 not NULL: out
    // rounded to x16->dtype into x16->data [n, dim] too (bk_x16); out may
    // then be NULL (only the copy is written).
    void (*rmsnorm)(backend *b, float *out, const float *x, const float *w, int n, int dim,
                    float eps, const bk_x16 *x16);

    // Fused residual add + RMSNorm: residual += x, then out = rmsnorm(residual).
    // residual, x, out [n, dim] f32 (out may alias x, not residual); x16 as
    // rmsnorm's.
    void (*add_rmsnorm)(backend *b, float *out, float *residual, const float *x, const float *w,
                        int n, int dim, float eps, const bk_x16 *x16);

    // out [n, w.rows] f32 = x [n, w.cols] f32 @ w^T (+ bias [w.rows] f32 if not NULL).
    // An I8 w is dequantized on the fly (q * scales[row]); no full-precision
    // copy of the weights is made. A backend that rounds x to fp16 (CUDA, more
    // than 8 rows) fails the step, naming op_layer/op_name, when a value of x
    // is beyond the fp16 range (|x| > 65504): never silent inf/NaN.
    // x16 not NULL: x rounded as x16_plan announced for this w and n, written
    // by the op that produced x; the backend may multiply it instead of x
    // (the same numbers as rounding x itself), and x may then be NULL.
    // PRECOND: out does not alias x.
    void (*matmul)(backend *b, float *out, const float *x, const bk_matrix *w, const float *bias,
                   int n, const bk_x16 *x16);

    // Whether matmul(w) over n rows rounds x to 16 bits. Yes: fills *x16 =
    // {buf, the type, an overflow flag for LLM_F16 that reports op_layer /
    // op_name (set them first)} and returns 1; the caller hands x16 to the op
    // that produces x and then to that matmul. buf holds n x w.cols 16-bit
    // elements (the caller's). No (also: F32 weights, decode-sized n, batch-
    // invariant mode): returns 0. NULL where the backend never rounds (CPU).
    int (*x16_plan)(backend *b, bk_x16 *x16, void *buf, const bk_matrix *w, int n);

    // Rotary embedding in place, rotate-half convention (pairs i, i + head_dim/2):
    // q [n, n_heads * head_dim], k [n, n_kv_heads * head_dim] f32, positions [n],
    // inv_freq [head_dim / 2] f32 (already scaled, e.g. llama3). The angle of
    // pair i at position p is (float)p * inv_freq[i], computed in fp32 as
    // transformers does.
    void (*rope)(backend *b, float *q, float *k, const int32_t *positions, const float *inv_freq,
                 int n, int n_heads, int n_kv_heads, int head_dim);

    // Writes each row's K and V into the cache at slot_mapping[i]:
    // k, v [n, n_kv_heads * head_dim] f32 -> k_cache, v_cache (kv_dtype, F16
    // or BF16 rounded to nearest even: f32_to_fp16 / f32_to_bf16; F8E4M3:
    // f32_to_fp8_e4m3(k / k_scale), f32_to_fp8_e4m3(v / v_scale), the
    // division in IEEE f32; [num_blocks, n_kv_heads, block_size, head_dim]).
    // Every backend writes the same bits. A negative slot skips the row.
    void (*kv_write)(backend *b, void *k_cache, void *v_cache, const float *k, const float *v,
                     const int32_t *slot_mapping, int n, int n_kv_heads, int head_dim,
                     int block_size, llm_dtype kv_dtype, float k_scale, float v_scale);

    // The step after a fused q|k|v projection, one op for what rmsnorm (per
    // head), rope and kv_write do to separate q, k and v:
    // qkv [n, (n_heads + 2 n_kv_heads) * head_dim] f32, each row q | k | v;
    // q_norm, k_norm [head_dim] f32 or NULL (Qwen3: RMSNorm over each head
    // with eps, before rope); then rope (as rope()) on q and k;
    // q_out [n, n_heads * head_dim] f32 = the rotated q; the rotated k and v
    // are written into the caches at slot_mapping as kv_write does (fp8:
    // divided by k_scale / v_scale; a negative slot skips the row). q_out
    // does not alias qkv.
    void (*qkv_rope_write)(backend *b, float *q_out, const float *qkv, const float *q_norm,
                           const float *k_norm, float eps, const int32_t *positions,
                           const float *inv_freq, void *k_cache, void *v_cache,
                           const int32_t *slot_mapping, int n, int n_heads, int n_kv_heads,
                           int head_dim, int block_size, llm_dtype kv_dtype, float k_scale,
                           float v_scale);

    // Causal paged attention over the batch (see bk_attn_batch):
    // q [n_tokens, n_heads * head_dim] f32 -> out [n_tokens, n_heads * head_dim] f32,
    // softmax(q k^T * scale) v over each row's visible cache positions, query
    // head h reading kv head h / (n_heads / n_kv_heads) (GQA). Caches in
    // kv_dtype (F16, BF16, or F8E4M3 read as value x k_scale / v_scale; a
    // backend may apply the scales to the scores and the output instead,
    // which is the same up to f32 rounding). window 0: the row at position p sees positions
    // 0..p; window w > 0 (a sliding-window layer): only p - w < j <= p, the
    // last w positions, itself included (transformers, vLLM). Positions out
    // of the window are never read, so their pages may hold anything.
    // x16 as rmsnorm's (out may be NULL then).
    void (*attention)(backend *b, float *out, const float *q, const void *k_cache,
                      const void *v_cache, const bk_attn_batch *batch, int n_heads, int n_kv_heads,
                      int head_dim, int block_size, float scale, llm_dtype kv_dtype, float k_scale,
                      float v_scale, int window, const bk_x16 *x16);

    // out [n, hidden] = silu(gate) * up; gate, up [n, hidden] f32 whose rows
    // are ld >= hidden floats apart (hidden: contiguous; 2 * hidden: the two
    // halves of a fused gate|up projection, up = gate + hidden). out is
    // contiguous; it may alias gate only when ld == hidden. x16 as rmsnorm's
    // (out may be NULL then).
    void (*silu_mul)(backend *b, float *out, const float *gate, const float *up, int n, int hidden,
                     int ld, const bk_x16 *x16);

    // out [m, dim] = x[rows[j]] for j < m; x [n, dim] f32, rows [m].
    void (*gather_rows)(backend *b, float *out, const float *x, const int32_t *rows, int m,
                        int dim);

    // out [n] int32 = the index of the largest value of each row of x [n, dim]
    // f32, ties to the lowest index: the greedy pick of engine/sampler.c,
    // whose rules it follows exactly. NaN counts as -inf and +inf as FLT_MAX
    // (so +inf ties with FLT_MAX, and -0 with +0); a row with no value above
    // -inf (all -inf or NaN) gives -1, where the sampler reports an error.
    void (*argmax)(backend *b, int32_t *out, const float *x, int n, int dim);

    // --- graphs (NULL where the backend has none, as the CPU's) ---
    // graph_begin: the ops queued until graph_end are recorded, not run (no
    // download, sync, upload or alloc in between). graph_end returns the
    // recording (NULL with the error set on failure); graph_launch queues it
    // as one launch with the same arguments: the same pointers and sizes,
    // while the data they point to may change between launches.
    int (*graph_begin)(backend *b);
    void *(*graph_end)(backend *b);
    void (*graph_launch)(backend *b, void *graph);
    void (*graph_destroy)(backend *b, void *graph);

    // Releases the backend and everything it allocated internally.
    void (*destroy)(backend *b);
};

// Creates the backend for a selected device (see device.h). Returns NULL with
// err filled when the device cannot be used.
backend *backend_create(const device_info *dev, char *err);

// The CPU backend (always available).
backend *cpu_backend_create(char *err);
// --cpu-matmul bf16: from now on the CPU backend b multiplies BF16 matrices
// (whose columns are a multiple of 32) by activations rounded to bf16, with
// the AVX-512 BF16 dot product, for every row count alike (so still batch-
// invariant). Returns 0, or -1 with err set when this CPU (or LLM_CPU_SIMD's
// choice) lacks that instruction.
int cpu_backend_matmul_bf16(backend *b, char *err);

#endif
