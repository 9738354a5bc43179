// quant_dir.h - quantizes a Hugging Face model directory to int8 on disk
// (llm_quantize): Linear weights weight-only, symmetric, per output channel
// (quant.h), in the compressed-tensors layout other engines load:
// <name>.weight I8 [out, in], <name>.weight_scale [out, 1] in the model's
// float dtype, and "quantization_config" in config.json. Streams tensor by
// tensor from the mapped checkpoint, so memory stays near the largest tensor,
// not the model.
#ifndef LLM_QUANT_DIR_H
#define LLM_QUANT_DIR_H

#include <stdint.h>

#include "dtype.h"

typedef struct {
    int n_quantized;    // matrices written as int8
    uint64_t bytes_in;  // their bytes in the checkpoint
    uint64_t bytes_out; // their bytes as int8 with scales
    llm_dtype scale_dtype;
} quant_dir_report;

// Writes out (created; must not be in) as the int8 copy of the model in
// directory in: the embedding table and lm_head too when embeddings is 1;
// the other files of in (tokenizer, generation config) copied. Fills *rep
// when not NULL. Returns 0, or -1 with err (an already quantized model, no
// float Linear weight, an unreadable checkpoint, an unwritable out).
int quant_dir_int8(const char *in, const char *out, int embeddings, quant_dir_report *rep,
                   char *err);

#endif
