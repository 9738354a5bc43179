// rig.h - the forward-batch rig the model tests share (CPU, int8, golden and
// GPU tests): chunks of several sequences, each on its own list of KV pages,
// turned into one forward_batch and run.
#ifndef LLM_TEST_RIG_H
#define LLM_TEST_RIG_H

#include <stdint.h>

#include "forward.h"

// One sequence's part of a step: its tokens ids[done .. done + len), at
// positions done.., on the pages of its block table pages[0 .. max_blocks).
typedef struct {
    const int *ids;   // the sequence's whole token list
    int done, len;    // tokens already in the cache, tokens run now
    const int *pages; // [max_blocks] its block table
} rig_chunk;

// A forward_batch and the host arrays behind it.
typedef struct {
    forward_batch fb;
    int32_t *tok, *pos, *slot, *qstart, *ctx, *btab;
} rig_batch;

// Fills rb with the chunks of n_seqs sequences (pages of block_size tokens,
// block tables max_blocks wide), logits of every row when all_logits. Returns
// 0, or -1 when out of memory. rig_batch_free releases the arrays.
int rig_batch_build(rig_batch *rb, const rig_chunk *ch, int n_seqs, int block_size, int max_blocks,
                    int all_logits);
void rig_batch_free(rig_batch *rb);

// Builds the batch and runs it through f (forward_run); a failure fails the
// running test with forward's message. Returns forward_run's status.
int rig_run(forward_ctx *f, const rig_chunk *ch, int n_seqs, int block_size, int max_blocks,
            float *logits, int all_logits);

#endif
