// rig.c - see rig.h.
#include "rig.h"

#include <stdlib.h>

#include "harness.h"
#include "util.h"

int rig_batch_build(rig_batch *rb, const rig_chunk *ch, int n_seqs, int block_size, int max_blocks,
                    int all_logits) {
    int n = 0;
    for (int s = 0; s < n_seqs; s++) n += ch[s].len;
    rb->tok = malloc((size_t)n * 4), rb->pos = malloc((size_t)n * 4);
    rb->slot = malloc((size_t)n * 4), rb->qstart = malloc((size_t)(n_seqs + 1) * 4);
    rb->ctx = malloc((size_t)n_seqs * 4), rb->btab = malloc((size_t)n_seqs * max_blocks * 4);
    if (!rb->tok || !rb->pos || !rb->slot || !rb->qstart || !rb->ctx || !rb->btab) {
        rig_batch_free(rb);
        return -1;
    }
    n = 0;
    rb->qstart[0] = 0;
    for (int s = 0; s < n_seqs; s++) {
        for (int i = 0; i < ch[s].len; i++, n++) {
            int p = ch[s].done + i;
            rb->tok[n] = ch[s].ids[p];
            rb->pos[n] = p;
            rb->slot[n] = ch[s].pages[p / block_size] * block_size + p % block_size;
        }
        rb->qstart[s + 1] = n;
        rb->ctx[s] = ch[s].done + ch[s].len;
        for (int j = 0; j < max_blocks; j++) rb->btab[s * max_blocks + j] = ch[s].pages[j];
    }
    rb->fb = (forward_batch){.n_tokens = n,
                             .n_seqs = n_seqs,
                             .token_ids = rb->tok,
                             .positions = rb->pos,
                             .slot_mapping = rb->slot,
                             .query_start = rb->qstart,
                             .context_len = rb->ctx,
                             .block_tables = rb->btab,
                             .max_blocks = max_blocks,
                             .all_logits = all_logits};
    return 0;
}

void rig_batch_free(rig_batch *rb) {
    free(rb->tok), free(rb->pos), free(rb->slot), free(rb->qstart), free(rb->ctx), free(rb->btab);
    rb->tok = rb->pos = rb->slot = rb->qstart = rb->ctx = rb->btab = NULL;
}

int rig_run(forward_ctx *f, const rig_chunk *ch, int n_seqs, int block_size, int max_blocks,
            float *logits, int all_logits) {
    rig_batch rb;
    if (rig_batch_build(&rb, ch, n_seqs, block_size, max_blocks, all_logits)) {
        CHECK_MSG(0, "rig: out of memory");
        return -1;
    }
    char err[LLM_ERR_LEN] = "";
    int rc = forward_run(f, &rb.fb, logits, err);
    CHECK_MSG(rc == 0, "forward_run: %s", err);
    rig_batch_free(&rb);
    return rc;
}
