// model_internal.h - what the model files of engine/ share (model.c,
// model_load.c, model_synthetic.c, model_quant.c, model_save.c): the list of
// an architecture's tensors, the weight arena, element conversion. Not a
// public header: nothing outside these files includes it.
#ifndef LLM_MODEL_INTERNAL_H
#define LLM_MODEL_INTERNAL_H

#include <stdint.h>

#include "model.h"

// One entry per weight tensor the architecture has: its checkpoint name,
// where it lands, and the shape the config implies.
typedef struct {
    char name[96];
    llm_tensor *t;
    int ndim;
    int64_t shape[2];
    int is_matrix; // matrices follow matrix_dtype; vectors become F32
    int is_embed;  // the embedding table or lm_head (not a Linear layer to quantize)
} tensor_spec;

typedef struct {
    tensor_spec *v;
    int n;
} spec_list;

// Most tensors a layer has (Qwen2's biases and Qwen3's norms included).
#define SPECS_PER_LAYER 14

// Lists every tensor of m's architecture into l (l->v is malloc'd: the
// caller frees it). Returns 0, or -1 with err when out of memory.
int build_specs(model_weights *m, spec_list *l, char *err);
uint64_t spec_numel(const tensor_spec *s);
// Matrices in matrix_dtype, vectors (norms, biases) in F32.
llm_dtype spec_dtype(const tensor_spec *s, llm_dtype matrix_dtype);

// Tensors in the arena start on a cache line (also keeps SIMD loads aligned).
#define ARENA_ALIGN 64
uint64_t align_up(uint64_t x);

// An empty model of config c (layers allocated). NULL with err when out of memory.
model_weights *model_new(const model_config *c, char *err);
// Points t at data of dtype dt with s's shape (no scale).
void set_tensor(llm_tensor *t, const tensor_spec *s, void *data, llm_dtype dt);
uint64_t tensor_numel(const llm_tensor *t);
// Fills m's byte counts (weight_bytes, embed_bytes, int8_bytes, saved_bytes).
void count_bytes(model_weights *m, const spec_list *specs);

// Element i of src (F32, F16 or BF16) as f32; stores v as element i of dst.
float load_elem(const void *src, llm_dtype dt, uint64_t i);
void store_elem(void *dst, llm_dtype dt, uint64_t i, float v);
// n elements of src_dt into dst_dt (parallel).
void convert(void *dst, llm_dtype dst_dt, const void *src, llm_dtype src_dt, uint64_t n);

#endif
