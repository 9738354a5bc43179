// safetensors.h - reader (mmap, validated) and writer for the safetensors format.
//
// File layout: 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value", ...}}, then the data buffer; offsets are
// relative to the data buffer.
//
// Validation follows the reference implementation: header at most 100 MB and
// valid JSON object; each tensor's dtype known (F32 F16 BF16 I8), shape
// non-negative with numel x dtype size == end - begin (no overflow); tensors,
// sorted by offset, tile the data buffer exactly (no overlap, no hole, the last
// one ends at the end of the file); names unique. Any violation is an error
// naming the file and the problem; nothing is ever read out of bounds.
#ifndef LLM_SAFETENSORS_H
#define LLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

typedef struct {
    char *name;
    llm_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    const void *data; // points into the mapped file (read-only)
} st_tensor;

// A set of tensors from one file or from all shards of a sharded model.
typedef struct st_model st_model;

// Opens one .safetensors file (mmap). Returns NULL and fills err on failure.
st_model *st_open_file(const char *path, char *err);

// Opens a model directory: DIR/model.safetensors, or every shard listed in
// DIR/model.safetensors.index.json ("weight_map": name -> file). A tensor
// listed in the index but absent from its shard, or present in two files, is
// an error. Returns NULL and fills err on failure.
st_model *st_open_dir(const char *dir, char *err);

// Parses and validates a header held in memory (the whole file image), without
// taking ownership of buf; tensors' data point into buf. `label` names the
// source in error messages. Used by st_open_file and by the fuzzer.
st_model *st_parse(const uint8_t *buf, size_t len, const char *label, char *err);

int st_count(const st_model *m);
const st_tensor *st_get(const st_model *m, int i);
// NULL when absent.
const st_tensor *st_find(const st_model *m, const char *name);
// Value of a __metadata__ key (of the first file), or NULL.
const char *st_metadata(const st_model *m, const char *key);
// Total bytes of tensor data.
uint64_t st_data_bytes(const st_model *m);

// Unmaps and frees everything; tensors' data pointers become invalid.
void st_close(st_model *m);

// One tensor to write: data must hold numel(shape) x dtype_size bytes.
typedef struct {
    const char *name;
    llm_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} st_write_tensor;

// Writes a safetensors file with the given tensors (in the given order) and
// optional metadata (n_meta key/value string pairs). Data offsets are laid out
// in order; the header is padded with spaces to a multiple of 8 bytes.
// Returns 0, or -1 with err filled (and no partial file left behind).
int st_write_file(const char *path, const st_write_tensor *tensors, int n,
                  const char *const *meta_kv, int n_meta, char *err);

#endif
