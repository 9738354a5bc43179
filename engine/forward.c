// forward.c - the transformer forward pass, in the order of the PyTorch
// modelling code it mirrors (LlamaModel.forward), over a flat varlen batch.
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    bk_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
    const float *attn_norm, *ffn_norm; // [dim]
    const float *bq, *bk, *bv;         // [q_dim], [kv_dim], [kv_dim] or NULL
    const float *q_norm, *k_norm;      // [head_dim] or NULL
    void *k_cache, *v_cache;           // [num_blocks, n_kv_heads, block_size, head_dim] kv_dtype
    float k_scale, v_scale;            // fp8 K/V scales (backend.h); 1.0 for 16-bit caches
    int window;                        // sliding window in tokens, 0: full causal attention
} fwd_layer;

#define MAX_ALLOCS 1024

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
    float *v;      // kv_dim
    float *att;    // attention output, q_dim
    float *out;    // sub-layer output before the residual add, dim
    float *gate;   // hidden_dim
    float *up;     // hidden_dim
    float *sel;    // [logit_rows, dim] rows whose logits are wanted
    float *logits; // [logit_rows, vocab]
    // batch metadata on the device
    int32_t *d_ids, *d_pos, *d_slots, *d_seq_of, *d_qstart, *d_ctx, *d_btab, *d_rows;
    int32_t *d_argmax;          // [max_tokens] greedy token of each wanted row
    int32_t *h_seq_of, *h_rows; // host staging
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
    WS_K,
    WS_V,
    WS_ATT,
    WS_OUT,
    WS_GATE,
    WS_UP, // [max_tokens, width] f32
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
    WS_BTAB, // per sequence, int32
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
    ws[WS_K] = ws[WS_V] = T * kv_dim * f32;
    ws[WS_GATE] = ws[WS_UP] = T * hidden * f32;
    ws[WS_SEL] = R * dim * f32;
    ws[WS_LOGITS] = R * (size_t)c->vocab_size * f32;
    ws[WS_INV_FREQ] = (size_t)c->head_dim / 2 * f32;
    ws[WS_IDS] = ws[WS_POS] = ws[WS_SLOTS] = ws[WS_SEQ_OF] = ws[WS_ROWS] = ws[WS_ARGMAX] = T * i32;
    ws[WS_QSTART] = (S + 1) * i32;
    ws[WS_CTX] = S * i32;
    ws[WS_BTAB] = S * max_blocks * i32;
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
        if (place_matrix(f, &L->wq, &w->wq, err) || place_matrix(f, &L->wk, &w->wk, err) ||
            place_matrix(f, &L->wv, &w->wv, err) || place_matrix(f, &L->wo, &w->wo, err) ||
            place_matrix(f, &L->w_gate, &w->w_gate, err) ||
            place_matrix(f, &L->w_up, &w->w_up, err) ||
            place_matrix(f, &L->w_down, &w->w_down, err) ||
            place_vector(f, &L->attn_norm, &w->attn_norm, err) ||
            place_vector(f, &L->ffn_norm, &w->ffn_norm, err) ||
            place_vector(f, &L->bq, &w->bq, err) || place_vector(f, &L->bk, &w->bk, err) ||
            place_vector(f, &L->bv, &w->bv, err) || place_vector(f, &L->q_norm, &w->q_norm, err) ||
            place_vector(f, &L->k_norm, &w->k_norm, err))
            goto fail;
    }

    if (opts->num_blocks > 0 && forward_alloc_kv(f, opts->num_blocks, err)) goto fail;

    size_t ws[WS_COUNT];
    workspace_sizes(c, opts, ws);
    void *p[WS_COUNT];
    for (int i = 0; i < WS_COUNT; i++)
        if (!(p[i] = dev_alloc(f, ws[i], &f->workspace_bytes, err))) goto fail;
    f->x = p[WS_X], f->xb = p[WS_XB], f->q = p[WS_Q], f->k = p[WS_K], f->v = p[WS_V];
    f->att = p[WS_ATT], f->out = p[WS_OUT], f->gate = p[WS_GATE], f->up = p[WS_UP];
    f->sel = p[WS_SEL], f->logits = p[WS_LOGITS], f->inv_freq = p[WS_INV_FREQ];
    f->d_ids = p[WS_IDS], f->d_pos = p[WS_POS], f->d_slots = p[WS_SLOTS];
    f->d_seq_of = p[WS_SEQ_OF], f->d_rows = p[WS_ROWS], f->d_argmax = p[WS_ARGMAX];
    f->d_qstart = p[WS_QSTART], f->d_ctx = p[WS_CTX], f->d_btab = p[WS_BTAB];
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

int forward_alloc_kv(forward_ctx *f, int num_blocks, char *err) {
    const model_config *c = f->cfg;
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
    };
}

// A matmul, named for the backend's error messages (layer -1: none).
static void mm(backend *b, int layer, const char *name, float *out, const float *x,
               const bk_matrix *w, const float *bias, int n) {
    b->op_layer = layer;
    b->op_name = name;
    b->matmul(b, out, x, w, bias, n);
}

// The model: token ids in, the final-normed hidden state of every row in f->xb.
static void transformer(forward_ctx *f, const bk_attn_batch *ab) {
    backend *b = f->b;
    const model_config *c = f->cfg;
    const int n = ab->n_tokens, dim = c->dim, hd = c->head_dim;
    const float eps = (float)c->rms_eps;
    const float scale = 1.0f / sqrtf((float)hd);

    b->embedding(b, f->x, &f->embed, f->d_ids, n);
    for (int l = 0; l < c->n_layers; l++) {
        const fwd_layer *L = &f->layers[l];
        // attention block: xb = norm(x); att = attention(rope(q), rope(k), v)
        if (l == 0)
            b->rmsnorm(b, f->xb, f->x, L->attn_norm, n, dim, eps);
        else
            b->add_rmsnorm(b, f->xb, f->x, f->out, L->attn_norm, n, dim, eps);
        mm(b, l, "q_proj", f->q, f->xb, &L->wq, L->bq, n);
        mm(b, l, "k_proj", f->k, f->xb, &L->wk, L->bk, n);
        mm(b, l, "v_proj", f->v, f->xb, &L->wv, L->bv, n);
        if (L->q_norm) { // Qwen3: RMSNorm over each head before rope
            b->rmsnorm(b, f->q, f->q, L->q_norm, n * c->n_heads, hd, eps);
            b->rmsnorm(b, f->k, f->k, L->k_norm, n * c->n_kv_heads, hd, eps);
        }
        b->rope(b, f->q, f->k, f->d_pos, f->inv_freq, n, c->n_heads, c->n_kv_heads, hd);
        b->kv_write(b, L->k_cache, L->v_cache, f->k, f->v, f->d_slots, n, c->n_kv_heads, hd,
                    f->o.block_size, f->kv_dtype, L->k_scale, L->v_scale);
        b->attention(b, f->att, f->q, L->k_cache, L->v_cache, ab, c->n_heads, c->n_kv_heads, hd,
                     f->o.block_size, scale, f->kv_dtype, L->k_scale, L->v_scale, L->window);
        mm(b, l, "o_proj", f->out, f->att, &L->wo, NULL, n);
        // MLP block: x += att_out; xb = norm(x); out = down(silu(gate(xb)) * up(xb))
        b->add_rmsnorm(b, f->xb, f->x, f->out, L->ffn_norm, n, dim, eps);
        mm(b, l, "gate_proj", f->gate, f->xb, &L->w_gate, NULL, n);
        mm(b, l, "up_proj", f->up, f->xb, &L->w_up, NULL, n);
        b->silu_mul(b, f->gate, f->gate, f->up, n, c->hidden_dim);
        mm(b, l, "down_proj", f->out, f->gate, &L->w_down, NULL, n);
    }
    b->add_rmsnorm(b, f->xb, f->x, f->out, f->final_norm, n, dim, eps);
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
        mm(b, -1, "lm_head", f->logits, f->sel, &f->lm_head, NULL, cnt);
        if (ids)
            b->argmax(b, f->d_argmax + r0, f->logits, cnt, c->vocab_size);
        else
            b->download(b, logits + (size_t)r0 * c->vocab_size, f->logits,
                        (size_t)cnt * c->vocab_size * 4);
    }
    if (ids) b->download(b, ids, f->d_argmax, (size_t)m * 4);
}

static int run(forward_ctx *f, const forward_batch *bt, float *logits, int32_t *ids, char *err) {
    if (check_batch(f, bt, err)) return -1;
    bk_attn_batch ab;
    upload_batch(f, bt, &ab);
    transformer(f, &ab);
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

uint64_t forward_kv_bytes(const forward_ctx *f) {
    return f->kv_bytes;
}
uint64_t forward_workspace_bytes(const forward_ctx *f) {
    return f->workspace_bytes;
}

void forward_destroy(forward_ctx *f) {
    if (!f) return;
    for (int i = 0; i < f->n_allocs; i++) f->b->free(f->b, f->allocs[i]);
    free(f->h_seq_of);
    free(f->h_rows);
    free(f->layers);
    free(f);
}
