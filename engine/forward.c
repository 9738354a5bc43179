// forward.c - the transformer forward pass, in the order of the PyTorch
// modelling code it mirrors (LlamaModel.forward), over a flat varlen batch.
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    bk_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
    // On a device: q|k|v and gate|up concatenated into one matrix each (one
    // launch instead of three and two; wq, wk, wv, w_gate, w_up then empty).
    // data NULL: the separate matrices (the CPU backend uses the weights in
    // place, where concatenating would copy them).
    bk_matrix wqkv, w_gu;
    const float *attn_norm, *ffn_norm; // [dim]
    const float *bq, *bk, *bv;         // [q_dim], [kv_dim], [kv_dim] or NULL
    const float *bqkv;                 // wqkv's bias [q_dim + 2 kv_dim] or NULL
    const float *q_norm, *k_norm;      // [head_dim] or NULL
    void *k_cache, *v_cache;           // [num_blocks, n_kv_heads, block_size, head_dim] kv_dtype
    float k_scale, v_scale;            // fp8 K/V scales (backend.h); 1.0 for 16-bit caches
    int window;                        // sliding window in tokens, 0: full causal attention
} fwd_layer;

#define MAX_ALLOCS 1024
#define MAX_GRAPHS 24 // padded decode batch sizes: powers of two up to 2^22, and the cap

// The decode graphs' metadata, int32 sections of one device buffer (and of
// its page-locked host mirror) so that a step uploads it in one copy:
// ids, positions, slots, seq_of [S], query_start [S + 1], context_len [S],
// then the block tables [S, max_blocks] last (a step copies only its rows).
enum { GM_IDS, GM_POS, GM_SLOTS, GM_SEQ_OF, GM_QSTART, GM_CTX, GM_BTAB };
static size_t gm_off(int section, size_t S) {
    return section <= GM_QSTART ? (size_t)section * S : (size_t)section * S + 1;
}

struct forward_ctx {
    backend *b;
    const model_config *cfg;
    forward_opts o;
    llm_dtype kv_dtype; // F16, BF16 or F8E4M3
    bk_matrix embed, lm_head;
    const float *final_norm;
    fwd_layer *layers;
    float *inv_freq; // [head_dim / 2], rope frequencies with any scaling applied
    int logit_rows;  // rows of the logits workspace
    // activations, [max_tokens, width]
    float *x;      // residual stream, dim
    float *xb;     // normed input of a sub-layer, dim
    float *q;      // q_dim
    float *k;      // kv_dim
    float *v;      // kv_dim (after k's rows)
    float *qkv;    // q_dim + 2 kv_dim: a fused projection's rows (the buffer of k and v)
    float *att;    // attention output, q_dim
    float *out;    // sub-layer output before the residual add, dim
    float *gate;   // 2 hidden_dim: gate, or a fused projection's gate|up rows
    float *up;     // hidden_dim: up, or silu(gate) * up of the fused path
    void *x16;     // max(dim, q_dim, hidden) 16-bit: a matmul's input as its GEMM reads it
                   // (x16_plan), written by the op producing the input; NULL on the CPU
    float *sel;    // [logit_rows, dim] rows whose logits are wanted
    float *logits; // [logit_rows, vocab]
    // batch metadata on the device
    int32_t *d_ids, *d_pos, *d_slots, *d_seq_of, *d_qstart, *d_ctx, *d_btab, *d_rows;
    int32_t *d_argmax;          // [max_tokens] greedy token of each wanted row
    int32_t *h_seq_of, *h_rows; // host staging
    // decode graphs (backends with graph_begin): [size index][argmax?]
    void *graphs[MAX_GRAPHS][2];
    int n_graph_sizes, graph_sizes[MAX_GRAPHS];
    int32_t *d_gmeta, *h_gmeta; // the graphs' metadata (gm_off), device and page-locked host
    int graphs_recorded;
    uint64_t graph_steps;
    float *attn_scratch; // split-decode partials (device_workspace), or NULL
    size_t attn_scratch_floats;
    // everything allocated on the device, freed at destroy
    void *allocs[MAX_ALLOCS];
    int n_allocs;
    uint64_t kv_bytes, workspace_bytes, weight_upload_bytes;
};

static void *dev_alloc(forward_ctx *f, size_t bytes, uint64_t *account, char *err) {
    if (f->n_allocs == MAX_ALLOCS) {
        llm_errf(err, "forward: too many device allocations");
        return NULL;
    }
    void *p = f->b->alloc(f->b, bytes ? bytes : 1);
    if (!p) {
        char buf[32];
        llm_errf(err, "forward: out of device memory allocating %s",
                 llm_fmt_bytes(bytes, buf, sizeof buf));
        return NULL;
    }
    f->allocs[f->n_allocs++] = p;
    if (account) *account += bytes;
    return p;
}

// A weight on the backend: the host copy itself on the CPU, an upload elsewhere.
static const void *place(forward_ctx *f, const llm_tensor *t, char *err) {
    if (!t->data) return NULL;
    if (f->b->info.kind == DEVICE_CPU) return t->data;
    size_t bytes =
        (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1) * dtype_size(t->dtype);
    void *d = dev_alloc(f, bytes, &f->weight_upload_bytes, err);
    if (d) f->b->upload(f->b, d, t->data, bytes);
    return d;
}

// An I8 matrix's per-row f32 scales, placed like the weights.
static const float *place_scales(forward_ctx *f, const llm_tensor *t, char *err) {
    if (f->b->info.kind == DEVICE_CPU) return t->scale;
    size_t bytes = (size_t)t->shape[0] * sizeof(float);
    float *d = dev_alloc(f, bytes, &f->weight_upload_bytes, err);
    if (d) f->b->upload(f->b, d, t->scale, bytes);
    return d;
}

static int place_matrix(forward_ctx *f, bk_matrix *m, const llm_tensor *t, char *err) {
    m->data = place(f, t, err);
    m->dtype = t->dtype;
    m->rows = (int)t->shape[0];
    m->cols = (int)t->shape[1];
    m->scales = t->dtype == LLM_I8 && m->data ? place_scales(f, t, err) : NULL;
    return m->data && (t->dtype != LLM_I8 || m->scales) ? 0 : -1;
}

static int place_vector(forward_ctx *f, const float **v, const llm_tensor *t, char *err) {
    *v = place(f, t, err);
    return !t->data || *v ? 0 : -1;
}

// Uploads the matrices parts[0..np) one after the other as one matrix [sum of
// rows, cols] (their I8 scales and biases likewise, bias_out NULL: none
// wanted). Returns 1 without placing anything when the parts cannot be one
// matrix (different dtypes or widths, some with a bias and some without).
static int place_fused(forward_ctx *f, bk_matrix *m, const float **bias_out,
                       const llm_tensor *const *parts, const llm_tensor *const *biases, int np,
                       char *err) {
    int rows = 0, n_bias = 0;
    for (int i = 0; i < np; i++) {
        const llm_tensor *t = parts[i];
        if (t->dtype != parts[0]->dtype || t->shape[1] != parts[0]->shape[1]) return 1;
        rows += (int)t->shape[0];
        n_bias += biases && biases[i]->data ? 1 : 0;
    }
    if (n_bias != 0 && n_bias != np) return 1;
    const size_t cols = (size_t)parts[0]->shape[1], esz = dtype_size(parts[0]->dtype);
    uint8_t *d = dev_alloc(f, (size_t)rows * cols * esz, &f->weight_upload_bytes, err);
    float *sc = parts[0]->dtype == LLM_I8
                    ? dev_alloc(f, (size_t)rows * sizeof(float), &f->weight_upload_bytes, err)
                    : NULL;
    float *bias =
        n_bias ? dev_alloc(f, (size_t)rows * sizeof(float), &f->weight_upload_bytes, err) : NULL;
    if (!d || (parts[0]->dtype == LLM_I8 && !sc) || (n_bias && !bias)) return -1;
    for (int i = 0, r0 = 0; i < np; i++) {
        const size_t r = (size_t)parts[i]->shape[0];
        f->b->upload(f->b, d + r0 * cols * esz, parts[i]->data, r * cols * esz);
        if (sc) f->b->upload(f->b, sc + r0, parts[i]->scale, r * sizeof(float));
        if (bias) f->b->upload(f->b, bias + r0, biases[i]->data, r * sizeof(float));
        r0 += (int)r;
    }
    *m = (bk_matrix){
        .data = d, .dtype = parts[0]->dtype, .rows = rows, .cols = (int)cols, .scales = sc};
    if (bias_out) *bias_out = bias;
    return 0;
}

// A layer's q|k|v and gate|up projections fused on a device; separate where
// they cannot be (place_fused) and on the CPU.
static int place_projections(forward_ctx *f, fwd_layer *L, const layer_weights *w, char *err) {
    int r_qkv = 1, r_gu = 1;
    if (f->b->info.kind != DEVICE_CPU) {
        const llm_tensor *qkv[3] = {&w->wq, &w->wk, &w->wv}, *b3[3] = {&w->bq, &w->bk, &w->bv};
        const llm_tensor *gu[2] = {&w->w_gate, &w->w_up};
        if ((r_qkv = place_fused(f, &L->wqkv, &L->bqkv, qkv, b3, 3, err)) < 0) return -1;
        if ((r_gu = place_fused(f, &L->w_gu, NULL, gu, NULL, 2, err)) < 0) return -1;
    }
    if (r_qkv && (place_matrix(f, &L->wq, &w->wq, err) || place_matrix(f, &L->wk, &w->wk, err) ||
                  place_matrix(f, &L->wv, &w->wv, err) || place_vector(f, &L->bq, &w->bq, err) ||
                  place_vector(f, &L->bk, &w->bk, err) || place_vector(f, &L->bv, &w->bv, err)))
        return -1;
    if (r_gu &&
        (place_matrix(f, &L->w_gate, &w->w_gate, err) || place_matrix(f, &L->w_up, &w->w_up, err)))
        return -1;
    return 0;
}

// inv_freq[i] = theta^(-2i/head_dim), with Llama 3's frequency-dependent
// scaling when configured (transformers' _compute_llama3_parameters).
static void rope_inv_freq(const model_config *c, float *inv_freq) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / c->head_dim);
        if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
            double old_len = c->rope_orig_max_position;
            double low_wavelen = old_len / c->rope_low_freq_factor;
            double high_wavelen = old_len / c->rope_high_freq_factor;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / c->rope_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (old_len / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0 - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

uint64_t forward_page_bytes(const model_config *c, int block_size, llm_dtype kv_dtype) {
    // K and V, every layer, 2 bytes an element (fp16, bf16) or 1 (fp8)
    return 2ull * (uint64_t)c->n_layers * (uint64_t)block_size * (uint64_t)config_kv_dim(c) *
           (uint64_t)dtype_size(kv_dtype);
}

// The workspace: every buffer forward_create allocates besides weights and
// the KV pool, one entry each; forward_workspace_estimate sums the same list.
enum {
    WS_X,
    WS_XB,
    WS_Q,
    WS_KV, // k then v, or a fused projection's q|k|v rows
    WS_ATT,
    WS_OUT,
    WS_GATE, // gate, or a fused projection's gate|up rows
    WS_UP,   // [max_tokens, width] f32
    WS_SEL,
    WS_LOGITS,   // [logit_rows, dim/vocab] f32
    WS_INV_FREQ, // [head_dim / 2] f32
    WS_IDS,
    WS_POS,
    WS_SLOTS,
    WS_SEQ_OF,
    WS_ROWS,
    WS_ARGMAX, // [max_tokens] int32
    WS_QSTART,
    WS_CTX,
    WS_BTAB,         // per sequence, int32
    WS_ATTN_SCRATCH, // device_workspace: split-decode partials
    WS_GMETA,        // device_workspace: the decode graphs' metadata (gm_off)
    WS_X16,          // device_workspace: [max_tokens, widest matmul input] 16-bit (bk_x16)
    WS_COUNT
};

// Rows of the logits workspace: a step's sequences, at least a few so that
// all-position logits (a prompt's) come in chunks of more than one row.
#define MIN_LOGIT_ROWS 16
static int logit_rows(const forward_opts *o) {
    return o->max_seqs > MIN_LOGIT_ROWS ? o->max_seqs : MIN_LOGIT_ROWS;
}

static void workspace_sizes(const model_config *c, const forward_opts *o, size_t *ws) {
    const size_t T = (size_t)o->max_tokens, S = (size_t)o->max_seqs, R = (size_t)logit_rows(o);
    const size_t q_dim = (size_t)config_q_dim(c), kv_dim = (size_t)config_kv_dim(c);
    const size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    const size_t max_blocks = ((size_t)o->max_context + o->block_size - 1) / o->block_size;
    const size_t f32 = sizeof(float), i32 = sizeof(int32_t);
    ws[WS_X] = ws[WS_XB] = ws[WS_OUT] = T * dim * f32;
    ws[WS_Q] = ws[WS_ATT] = T * q_dim * f32;
    ws[WS_KV] = T * (q_dim + 2 * kv_dim) * f32;
    ws[WS_GATE] = T * 2 * hidden * f32;
    ws[WS_UP] = T * hidden * f32;
    ws[WS_SEL] = R * dim * f32;
    ws[WS_LOGITS] = R * (size_t)c->vocab_size * f32;
    ws[WS_INV_FREQ] = (size_t)c->head_dim / 2 * f32;
    ws[WS_IDS] = ws[WS_POS] = ws[WS_SLOTS] = ws[WS_SEQ_OF] = ws[WS_ROWS] = ws[WS_ARGMAX] = T * i32;
    ws[WS_QSTART] = (S + 1) * i32;
    ws[WS_CTX] = S * i32;
    ws[WS_BTAB] = S * max_blocks * i32;
    ws[WS_ATTN_SCRATCH] =
        o->device_workspace ? attention_scratch_floats((int)S, c->n_heads, c->head_dim) * f32 : 0;
    ws[WS_GMETA] = o->device_workspace ? (gm_off(GM_BTAB, S) + S * max_blocks) * i32 : 0;
    const size_t widest =
        hidden > dim ? (hidden > q_dim ? hidden : q_dim) : (dim > q_dim ? dim : q_dim);
    ws[WS_X16] = o->device_workspace ? T * widest * sizeof(uint16_t) : 0;
}

uint64_t forward_workspace_estimate(const model_config *c, const forward_opts *opts) {
    size_t ws[WS_COUNT];
    workspace_sizes(c, opts, ws);
    uint64_t total = 0;
    for (int i = 0; i < WS_COUNT; i++) total += ws[i];
    return total;
}

llm_dtype forward_resolve_kv_dtype(int requested, llm_dtype weights, llm_dtype checkpoint) {
    if (requested == LLM_F16 || requested == LLM_BF16 || requested == LLM_F8E4M3)
        return (llm_dtype)requested;
    if (weights == LLM_F16 || weights == LLM_BF16) return weights;
    return checkpoint == LLM_BF16 ? LLM_BF16 : LLM_F16;
}

llm_dtype forward_kv_dtype(const forward_ctx *f) {
    return f->kv_dtype;
}

forward_ctx *forward_create(backend *b, const model_weights *m, const forward_opts *opts,
                            char *err) {
    const model_config *c = &m->cfg;
    if (opts->max_tokens <= 0 || opts->max_seqs <= 0 || opts->block_size <= 0 ||
        opts->num_blocks < 0 || opts->max_context <= 0) {
        llm_errf(err, "forward: max_tokens, max_seqs, max_context and block_size must be positive");
        return NULL;
    }
    forward_ctx *f = llm_calloc(1, sizeof *f, err);
    if (!f) return NULL;
    f->b = b;
    f->cfg = c;
    f->o = *opts;
    f->o.device_workspace = b->info.kind != DEVICE_CPU;
    if (opts->kv_dtype != 0 && opts->kv_dtype != LLM_F16 && opts->kv_dtype != LLM_BF16 &&
        opts->kv_dtype != LLM_F8E4M3) {
        llm_errf(err, "forward: the KV cache is F16, BF16 or F8_E4M3, not %s",
                 dtype_name((llm_dtype)opts->kv_dtype));
        free(f);
        return NULL;
    }
    f->kv_dtype = forward_resolve_kv_dtype(opts->kv_dtype, m->embed.dtype, c->dtype);
    f->layers = llm_calloc((size_t)c->n_layers, sizeof *f->layers, err);
    if (!f->layers) goto fail;

    if (place_matrix(f, &f->embed, &m->embed, err)) goto fail;
    if (c->tie_embeddings)
        f->lm_head = f->embed;
    else if (place_matrix(f, &f->lm_head, &m->lm_head, err))
        goto fail;
    if (place_vector(f, &f->final_norm, &m->final_norm, err)) goto fail;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        fwd_layer *L = &f->layers[l];
        L->window = config_layer_window(c, l);
        const int fp8 = f->kv_dtype == LLM_F8E4M3;
        L->k_scale = fp8 ? w->k_scale : 1.0f;
        L->v_scale = fp8 ? w->v_scale : 1.0f;
        if (place_projections(f, L, w, err) || place_matrix(f, &L->wo, &w->wo, err) ||
            place_matrix(f, &L->w_down, &w->w_down, err) ||
            place_vector(f, &L->attn_norm, &w->attn_norm, err) ||
            place_vector(f, &L->ffn_norm, &w->ffn_norm, err) ||
            place_vector(f, &L->q_norm, &w->q_norm, err) ||
            place_vector(f, &L->k_norm, &w->k_norm, err))
            goto fail;
    }

    if (opts->num_blocks > 0 && forward_alloc_kv(f, opts->num_blocks, err)) goto fail;

    size_t ws[WS_COUNT];
    workspace_sizes(c, &f->o, ws);
    void *p[WS_COUNT];
    for (int i = 0; i < WS_COUNT; i++)
        if (!(p[i] = dev_alloc(f, ws[i], &f->workspace_bytes, err))) goto fail;
    f->x = p[WS_X], f->xb = p[WS_XB], f->q = p[WS_Q], f->k = p[WS_KV], f->qkv = p[WS_KV];
    f->v = f->k + (size_t)opts->max_tokens * config_kv_dim(c);
    f->att = p[WS_ATT], f->out = p[WS_OUT], f->gate = p[WS_GATE], f->up = p[WS_UP];
    f->sel = p[WS_SEL], f->logits = p[WS_LOGITS], f->inv_freq = p[WS_INV_FREQ];
    f->d_ids = p[WS_IDS], f->d_pos = p[WS_POS], f->d_slots = p[WS_SLOTS];
    f->d_seq_of = p[WS_SEQ_OF], f->d_rows = p[WS_ROWS], f->d_argmax = p[WS_ARGMAX];
    f->d_qstart = p[WS_QSTART], f->d_ctx = p[WS_CTX], f->d_btab = p[WS_BTAB];
    if (f->o.device_workspace) {
        f->attn_scratch = p[WS_ATTN_SCRATCH];
        f->attn_scratch_floats = ws[WS_ATTN_SCRATCH] / sizeof(float);
        f->d_gmeta = p[WS_GMETA];
        f->x16 = b->x16_plan ? p[WS_X16] : NULL;
        if (b->graph_begin && !(f->h_gmeta = b->host_alloc(b, ws[WS_GMETA]))) {
            llm_errf(err, "forward: out of page-locked host memory for the graphs' metadata");
            goto fail;
        }
    }
    // decode graph sizes: powers of two below the cap, then the cap
    const int cap = opts->max_seqs < opts->max_tokens ? opts->max_seqs : opts->max_tokens;
    for (int sz = 1; sz < cap && f->n_graph_sizes < MAX_GRAPHS - 1; sz *= 2)
        f->graph_sizes[f->n_graph_sizes++] = sz;
    f->graph_sizes[f->n_graph_sizes++] = cap;
    f->logit_rows = logit_rows(opts);
    const size_t T = (size_t)opts->max_tokens;
    f->h_seq_of = llm_malloc(T * 4, err);
    f->h_rows = llm_malloc(T * 4, err);
    if (!f->h_seq_of || !f->h_rows) goto fail;

    float *inv = llm_malloc(ws[WS_INV_FREQ], err);
    if (!inv) goto fail;
    rope_inv_freq(c, inv);
    b->upload(b, f->inv_freq, inv, ws[WS_INV_FREQ]);
    free(inv);
    return f;
fail:
    forward_destroy(f);
    return NULL;
}

// Drops the recorded decode graphs (they hold the cache pointers of their time).
static void drop_graphs(forward_ctx *f) {
    for (int i = 0; i < MAX_GRAPHS; i++)
        for (int a = 0; a < 2; a++)
            if (f->graphs[i][a]) {
                f->b->graph_destroy(f->b, f->graphs[i][a]);
                f->graphs[i][a] = NULL;
            }
}

int forward_alloc_kv(forward_ctx *f, int num_blocks, char *err) {
    const model_config *c = f->cfg;
    drop_graphs(f);
    for (int l = 0; l < c->n_layers; l++) { // the pool is the last thing allocated
        fwd_layer *L = &f->layers[l];
        if (!L->k_cache) continue;
        for (int i = 0; i < f->n_allocs; i++)
            if (f->allocs[i] == L->k_cache || f->allocs[i] == L->v_cache) {
                f->b->free(f->b, f->allocs[i]);
                f->allocs[i--] = f->allocs[--f->n_allocs];
            }
        L->k_cache = L->v_cache = NULL;
    }
    f->kv_bytes = 0;
    f->o.num_blocks = 0;
    // per layer K and V, [num_blocks, n_kv_heads, block_size, head_dim] in kv_dtype
    size_t layer_kv =
        (size_t)num_blocks * f->o.block_size * config_kv_dim(c) * dtype_size(f->kv_dtype);
    for (int l = 0; l < c->n_layers; l++) {
        f->layers[l].k_cache = dev_alloc(f, layer_kv, &f->kv_bytes, err);
        f->layers[l].v_cache =
            f->layers[l].k_cache ? dev_alloc(f, layer_kv, &f->kv_bytes, err) : NULL;
        if (!f->layers[l].v_cache) return -1;
    }
    f->o.num_blocks = num_blocks;
    return 0;
}

static int check_batch(const forward_ctx *f, const forward_batch *bt, char *err) {
    const forward_opts *o = &f->o;
    if (bt->n_tokens <= 0 || bt->n_tokens > o->max_tokens)
        return llm_errf(err, "forward: %d tokens in a batch (limit %d)", bt->n_tokens,
                        o->max_tokens);
    if (bt->n_seqs <= 0 || bt->n_seqs > o->max_seqs)
        return llm_errf(err, "forward: %d sequences in a batch (limit %d)", bt->n_seqs,
                        o->max_seqs);
    if (bt->query_start[0] != 0 || bt->query_start[bt->n_seqs] != bt->n_tokens)
        return llm_errf(err, "forward: query_start must run from 0 to n_tokens");
    for (int s = 0; s < bt->n_seqs; s++) {
        int q_len = bt->query_start[s + 1] - bt->query_start[s];
        int ctx = bt->context_len[s];
        if (q_len <= 0 || ctx < q_len || ctx > o->max_context ||
            (ctx + o->block_size - 1) / o->block_size > bt->max_blocks)
            return llm_errf(err, "forward: sequence %d has %d new tokens, context %d (limit %d)", s,
                            q_len, ctx, o->max_context);
    }
    if (o->num_blocks <= 0) return llm_errf(err, "forward: no KV pool allocated");
    if (bt->max_blocks <= 0 ||
        bt->max_blocks > (o->max_context + o->block_size - 1) / o->block_size)
        return llm_errf(err, "forward: block table width %d outside [1, %d]", bt->max_blocks,
                        (o->max_context + o->block_size - 1) / o->block_size);
    const int n_slots = o->num_blocks * o->block_size;
    for (int i = 0; i < bt->n_tokens; i++) {
        if (bt->token_ids[i] < 0 || bt->token_ids[i] >= f->cfg->vocab_size)
            return llm_errf(err, "forward: token id %d out of range [0, %d)", bt->token_ids[i],
                            f->cfg->vocab_size);
        if (bt->slot_mapping[i] < -1 || bt->slot_mapping[i] >= n_slots)
            return llm_errf(err, "forward: slot %d outside the KV pool (%d slots)",
                            bt->slot_mapping[i], n_slots);
    }
    for (int s = 0; s < bt->n_seqs; s++) {
        int used = (bt->context_len[s] + o->block_size - 1) / o->block_size;
        for (int j = 0; j < used; j++) {
            int blk = bt->block_tables[(size_t)s * bt->max_blocks + j];
            if (blk < 0 || blk >= o->num_blocks)
                return llm_errf(err,
                                "forward: sequence %d uses page %d outside the pool (%d pages)", s,
                                blk, o->num_blocks);
        }
    }
    return 0;
}

// The batch's metadata to the device; fills *ab, the attention ops' view of it.
static void upload_batch(forward_ctx *f, const forward_batch *bt, bk_attn_batch *ab) {
    backend *b = f->b;
    const int n = bt->n_tokens;
    for (int s = 0; s < bt->n_seqs; s++)
        for (int i = bt->query_start[s]; i < bt->query_start[s + 1]; i++) f->h_seq_of[i] = s;
    int max_q = 0, max_ctx = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        int q_len = bt->query_start[s + 1] - bt->query_start[s];
        max_q = q_len > max_q ? q_len : max_q;
        max_ctx = bt->context_len[s] > max_ctx ? bt->context_len[s] : max_ctx;
    }
    b->upload(b, f->d_ids, bt->token_ids, (size_t)n * 4);
    b->upload(b, f->d_pos, bt->positions, (size_t)n * 4);
    b->upload(b, f->d_slots, bt->slot_mapping, (size_t)n * 4);
    b->upload(b, f->d_seq_of, f->h_seq_of, (size_t)n * 4);
    b->upload(b, f->d_qstart, bt->query_start, (size_t)(bt->n_seqs + 1) * 4);
    b->upload(b, f->d_ctx, bt->context_len, (size_t)bt->n_seqs * 4);
    b->upload(b, f->d_btab, bt->block_tables, (size_t)bt->n_seqs * bt->max_blocks * 4);
    *ab = (bk_attn_batch){
        .n_tokens = n,
        .n_seqs = bt->n_seqs,
        .max_query_len = max_q,
        .max_context_len = max_ctx,
        .max_blocks = bt->max_blocks,
        .query_start = f->d_qstart,
        .context_len = f->d_ctx,
        .block_tables = f->d_btab,
        .seq_of_token = f->d_seq_of,
        .positions = f->d_pos,
        .slot_mapping = f->d_slots,
        .scratch = f->attn_scratch,
        .scratch_floats = f->attn_scratch_floats,
    };
}

// Names the next matmul for the backend's error messages (layer -1: none).
static void name_op(backend *b, int layer, const char *name) {
    b->op_layer = layer;
    b->op_name = name;
}

// A matmul, named; x16: its input's 16-bit copy (plan_x16), or NULL.
static void mm(backend *b, int layer, const char *name, float *out, const float *x,
               const bk_matrix *w, const float *bias, int n, const bk_x16 *x16) {
    name_op(b, layer, name);
    b->matmul(b, out, x, w, bias, n, x16);
}

// The 16-bit copy of the input of the matmul `name` (w over n rows) into
// f->x16 when the backend's matmul rounds its input (bk_x16): *s filled and
// returned, for the op that produces the input and the matmul; else NULL.
static const bk_x16 *plan_x16(forward_ctx *f, bk_x16 *s, int layer, const char *name,
                              const bk_matrix *w, int n) {
    if (!f->x16) return NULL;
    name_op(f->b, layer, name);
    return f->b->x16_plan(f->b, s, f->x16, w, n) ? s : NULL;
}

// The attention block of layer l: x += out (the previous sub-layer's, l > 0),
// xb = norm(x), the q|k|v projections, rope and the cache write, attention,
// o_proj into out. 16-bit copies (x16) of the qkv and o_proj inputs where the
// backend's GEMMs take them, written by the norm and the attention; a fused
// q|k|v projection is the norm's only reader, o_proj the attention's, so
// with a copy they write only that.
static void attention_block(forward_ctx *f, const bk_attn_batch *ab, int l) {
    backend *b = f->b;
    const model_config *c = f->cfg;
    const fwd_layer *L = &f->layers[l];
    const int n = ab->n_tokens, dim = c->dim, hd = c->head_dim;
    const float eps = (float)c->rms_eps;
    bk_x16 s;
    const bk_x16 *x16 = plan_x16(f, &s, l, L->wqkv.data ? "qkv_proj" : "q_proj",
                                 L->wqkv.data ? &L->wqkv : &L->wq, n);
    float *xb = x16 && L->wqkv.data ? NULL : f->xb;
    if (l == 0)
        b->rmsnorm(b, xb, f->x, L->attn_norm, n, dim, eps, x16);
    else
        b->add_rmsnorm(b, xb, f->x, f->out, L->attn_norm, n, dim, eps, x16);
    if (L->wqkv.data) { // one projection, then norm + rope + cache write in one op
        mm(b, l, "qkv_proj", f->qkv, xb, &L->wqkv, L->bqkv, n, x16);
        b->qkv_rope_write(b, f->q, f->qkv, L->q_norm, L->k_norm, eps, ab->positions, f->inv_freq,
                          L->k_cache, L->v_cache, ab->slot_mapping, n, c->n_heads, c->n_kv_heads,
                          hd, f->o.block_size, f->kv_dtype, L->k_scale, L->v_scale);
    } else { // x16 is in wq's type; a matmul of another type converts xb itself
        mm(b, l, "q_proj", f->q, xb, &L->wq, L->bq, n, x16);
        mm(b, l, "k_proj", f->k, xb, &L->wk, L->bk, n, x16);
        mm(b, l, "v_proj", f->v, xb, &L->wv, L->bv, n, x16);
        if (L->q_norm) { // Qwen3: RMSNorm over each head before rope
            b->rmsnorm(b, f->q, f->q, L->q_norm, n * c->n_heads, hd, eps, NULL);
            b->rmsnorm(b, f->k, f->k, L->k_norm, n * c->n_kv_heads, hd, eps, NULL);
        }
        b->rope(b, f->q, f->k, ab->positions, f->inv_freq, n, c->n_heads, c->n_kv_heads, hd);
        b->kv_write(b, L->k_cache, L->v_cache, f->k, f->v, ab->slot_mapping, n, c->n_kv_heads, hd,
                    f->o.block_size, f->kv_dtype, L->k_scale, L->v_scale);
    }
    // o_proj reads the attention output only: with a copy, that alone
    const bk_x16 *xo = plan_x16(f, &s, l, "o_proj", &L->wo, n);
    b->attention(b, xo ? NULL : f->att, f->q, L->k_cache, L->v_cache, ab, c->n_heads, c->n_kv_heads,
                 hd, f->o.block_size, 1.0f / sqrtf((float)hd), f->kv_dtype, L->k_scale, L->v_scale,
                 L->window, xo);
    mm(b, l, "o_proj", f->out, xo ? NULL : f->att, &L->wo, NULL, n, xo);
}

// The MLP block of layer l: x += out (o_proj's), xb = norm(x), out =
// down(silu(gate(xb)) * up(xb)); gate|up fused or separate. 16-bit copies
// (x16) for the gate|up and down inputs where the backend's GEMMs take them:
// written by the norm and by silu_mul, which then write no f32 output the
// matmuls would not read.
static void mlp_block(forward_ctx *f, int l, int n) {
    backend *b = f->b;
    const model_config *c = f->cfg;
    const fwd_layer *L = &f->layers[l];
    const int dim = c->dim, hid = c->hidden_dim;
    const float eps = (float)c->rms_eps;
    const int fused = L->w_gu.data != NULL;
    bk_x16 s;
    const bk_x16 *x16 =
        plan_x16(f, &s, l, fused ? "gate_up_proj" : "gate_proj", fused ? &L->w_gu : &L->w_gate, n);
    float *xb = x16 && fused ? NULL : f->xb;
    b->add_rmsnorm(b, xb, f->x, f->out, L->ffn_norm, n, dim, eps, x16);
    float *act = fused ? f->up : f->gate; // silu(gate) * up
    if (fused) {
        mm(b, l, "gate_up_proj", f->gate, xb, &L->w_gu, NULL, n, x16);
    } else {
        mm(b, l, "gate_proj", f->gate, xb, &L->w_gate, NULL, n, x16);
        mm(b, l, "up_proj", f->up, xb, &L->w_up, NULL, n, x16);
    }
    bk_x16 sd;
    const bk_x16 *xd = plan_x16(f, &sd, l, "down_proj", &L->w_down, n);
    if (fused)
        b->silu_mul(b, xd ? NULL : act, f->gate, f->gate + hid, n, hid, 2 * hid, xd);
    else
        b->silu_mul(b, xd ? NULL : act, f->gate, f->up, n, hid, hid, xd);
    mm(b, l, "down_proj", f->out, xd ? NULL : act, &L->w_down, NULL, n, xd);
}

// The model: token ids (device, [n_tokens]) in, the final-normed hidden
// state of every row in f->xb.
static void transformer(forward_ctx *f, const bk_attn_batch *ab, const int32_t *ids) {
    backend *b = f->b;
    const model_config *c = f->cfg;
    const int n = ab->n_tokens;
    b->embedding(b, f->x, &f->embed, ids, n);
    for (int l = 0; l < c->n_layers; l++) {
        attention_block(f, ab, l);
        mlp_block(f, l, n);
    }
    b->add_rmsnorm(b, f->xb, f->x, f->out, f->final_norm, n, c->dim, (float)c->rms_eps, NULL);
}

// The lm_head over the wanted rows of f->xb, a workspace-full at a time: their
// logits into logits (host) or, when ids is not NULL, only their argmax into ids.
static void lm_head(forward_ctx *f, const forward_batch *bt, float *logits, int32_t *ids) {
    backend *b = f->b;
    const model_config *c = f->cfg;
    int m = 0;
    if (bt->all_logits)
        for (int i = 0; i < bt->n_tokens; i++) f->h_rows[m++] = i;
    else
        for (int s = 0; s < bt->n_seqs; s++) f->h_rows[m++] = bt->query_start[s + 1] - 1;
    b->upload(b, f->d_rows, f->h_rows, (size_t)m * 4);
    for (int r0 = 0; r0 < m; r0 += f->logit_rows) {
        int cnt = m - r0 < f->logit_rows ? m - r0 : f->logit_rows;
        b->gather_rows(b, f->sel, f->xb, f->d_rows + r0, cnt, c->dim);
        mm(b, -1, "lm_head", f->logits, f->sel, &f->lm_head, NULL, cnt, NULL);
        if (ids)
            b->argmax(b, f->d_argmax + r0, f->logits, cnt, c->vocab_size);
        else
            b->download(b, logits + (size_t)r0 * c->vocab_size, f->logits,
                        (size_t)cnt * c->vocab_size * 4);
    }
    if (ids) b->download(b, ids, f->d_argmax, (size_t)m * 4);
}

// --- decode graphs -------------------------------------------------------------------

// The index of the graph size a decode batch of n sequences pads to, or -1
// when the batch is not one a graph takes.
static int graph_slot(const forward_ctx *f, const forward_batch *bt) {
    if (!f->h_gmeta || f->o.enforce_eager || bt->all_logits || bt->n_tokens != bt->n_seqs)
        return -1;
    for (int i = 0; i < f->n_graph_sizes; i++)
        if (bt->n_seqs <= f->graph_sizes[i]) return i;
    return -1;
}

// Fills the page-locked metadata for the batch padded to B rows and queues
// its upload; *ab views it. A padding row is a sequence of one token that
// writes no K/V (slot -1) and reads the first page of sequence 0 (written, so
// finite); its results are never read.
static void upload_graph_batch(forward_ctx *f, const forward_batch *bt, int B, bk_attn_batch *ab) {
    const size_t S = (size_t)f->o.max_seqs;
    const int MB = (f->o.max_context + f->o.block_size - 1) / f->o.block_size, n = bt->n_seqs;
    int32_t *h = f->h_gmeta, *d = f->d_gmeta;
    for (int i = 0; i < B; i++) {
        const int real = i < n;
        h[gm_off(GM_IDS, S) + i] = real ? bt->token_ids[i] : 0;
        h[gm_off(GM_POS, S) + i] = real ? bt->positions[i] : 0;
        h[gm_off(GM_SLOTS, S) + i] = real ? bt->slot_mapping[i] : -1;
        h[gm_off(GM_SEQ_OF, S) + i] = i;
        h[gm_off(GM_QSTART, S) + i] = i;
        h[gm_off(GM_CTX, S) + i] = real ? bt->context_len[i] : 1;
        int32_t *row = h + gm_off(GM_BTAB, S) + (size_t)i * MB;
        if (real) {
            const int used = (bt->context_len[i] + f->o.block_size - 1) / f->o.block_size;
            memcpy(row, bt->block_tables + (size_t)i * bt->max_blocks, (size_t)used * 4);
        } else {
            row[0] = bt->block_tables[0];
        }
    }
    h[gm_off(GM_QSTART, S) + B] = B;
    f->b->upload_async(f->b, d, h, (gm_off(GM_BTAB, S) + (size_t)B * MB) * sizeof(int32_t));
    *ab = (bk_attn_batch){
        .n_tokens = B,
        .n_seqs = B,
        .max_query_len = 1,
        .max_context_len = f->o.max_context, // the split's grid covers any context
        .max_blocks = MB,
        .query_start = d + gm_off(GM_QSTART, S),
        .context_len = d + gm_off(GM_CTX, S),
        .block_tables = d + gm_off(GM_BTAB, S),
        .seq_of_token = d + gm_off(GM_SEQ_OF, S),
        .positions = d + gm_off(GM_POS, S),
        .slot_mapping = d + gm_off(GM_SLOTS, S),
        .scratch = f->attn_scratch,
        .scratch_floats = f->attn_scratch_floats,
    };
}

// A decode step through the graph of its padded size (recorded on first use):
// the model and the lm_head over every row (row i is sequence i's last), then
// the argmax when ids is not NULL.
static int run_graph(forward_ctx *f, const forward_batch *bt, int slot, float *logits, int32_t *ids,
                     char *err) {
    backend *b = f->b;
    const int B = f->graph_sizes[slot], n = bt->n_seqs, vocab = f->cfg->vocab_size;
    bk_attn_batch ab;
    upload_graph_batch(f, bt, B, &ab);
    void **g = &f->graphs[slot][ids != NULL];
    if (!*g && !b->failed && b->graph_begin(b) == 0) {
        transformer(f, &ab, f->d_gmeta + gm_off(GM_IDS, (size_t)f->o.max_seqs));
        mm(b, -1, "lm_head", f->logits, f->xb, &f->lm_head, NULL, B, NULL);
        if (ids) b->argmax(b, f->d_argmax, f->logits, B, vocab);
        *g = b->graph_end(b);
        f->graphs_recorded += *g != NULL;
    }
    if (*g) {
        b->graph_launch(b, *g);
        f->graph_steps++;
    }
    if (ids)
        b->download(b, ids, f->d_argmax, (size_t)n * 4);
    else
        b->download(b, logits, f->logits, (size_t)n * vocab * 4);
    if (b->failed || !*g) return llm_errf(err, "forward: %s", b->error);
    return 0;
}

static int run(forward_ctx *f, const forward_batch *bt, float *logits, int32_t *ids, char *err) {
    if (check_batch(f, bt, err)) return -1;
    const int slot = graph_slot(f, bt);
    if (slot >= 0) return run_graph(f, bt, slot, logits, ids, err);
    bk_attn_batch ab;
    upload_batch(f, bt, &ab);
    transformer(f, &ab, f->d_ids);
    lm_head(f, bt, logits, ids);
    if (f->b->failed) return llm_errf(err, "forward: %s", f->b->error);
    return 0;
}

int forward_run(forward_ctx *f, const forward_batch *bt, float *logits, char *err) {
    return run(f, bt, logits, NULL, err);
}

int forward_run_argmax(forward_ctx *f, const forward_batch *bt, int32_t *ids, char *err) {
    return run(f, bt, NULL, ids, err);
}

void forward_graph_counts(const forward_ctx *f, int *recorded, uint64_t *replayed) {
    *recorded = f->graphs_recorded;
    *replayed = f->graph_steps;
}

uint64_t forward_kv_bytes(const forward_ctx *f) {
    return f->kv_bytes;
}
uint64_t forward_workspace_bytes(const forward_ctx *f) {
    return f->workspace_bytes;
}

void forward_destroy(forward_ctx *f) {
    if (!f) return;
    drop_graphs(f);
    if (f->h_gmeta) f->b->host_free(f->b, f->h_gmeta);
    for (int i = 0; i < f->n_allocs; i++) f->b->free(f->b, f->allocs[i]);
    free(f->h_seq_of);
    free(f->h_rows);
    free(f->layers);
    free(f);
}
