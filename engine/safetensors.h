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
// one ends at the end of the file; a zero-size tensor sits where the previous
// one ends); names unique. Any violation is an error naming the file and the
// problem; nothing is ever read out of bounds.
//
// Where we differ from the reference (safetensors 0.8): it also takes other
// dtypes (F64, I32, U8, BOOL, the F8 kinds, ...), more than ST_MAX_DIMS dims,
// two identical entries under one name (the last wins) and "\u0000" inside
// names; we refuse all of these. cJSON keeps no number text, so an integral
// value written as 2.0, 2e0 or 02 is read as 2 where the reference refuses it.
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
// DIR/model.safetensors.index.json ("weight_map": name -> file name in DIR),
// each mapped once. A tensor listed in the index but absent from its shard, or
// present in two files, and a missing shard are errors; tensors a shard holds
// beyond the index are kept. Returns NULL and fills err on failure.
st_model *st_open_dir(const char *dir, char *err);

// Parses and validates a header held in memory (the whole file image), without
// taking ownership of buf; tensors' data point into buf. `label` names the
// source in error messages. Used by st_open_file and by the fuzzer.
st_model *st_parse(const uint8_t *buf, size_t len, const char *label, char *err);

// Tensors are numbered file by file (shards in file-name order), each file's
// in data-offset order. st_get returns NULL when i is out of range.
int st_count(const st_model *m);
const st_tensor *st_get(const st_model *m, int i);
// NULL when absent.
const st_tensor *st_find(const st_model *m, const char *name);
// Value of a __metadata__ key (of the first file), or NULL. A key repeated in
// the header has its last value, as in the reference.
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
// optional metadata (meta_kv holds n_meta key, value pairs: 2 * n_meta strings),
// written first. Data offsets are laid out in order with nothing between
// tensors (the format allows no padding), so a tensor's data is aligned to its
// element size only when the tensors before it keep it so: put wide dtypes
// first, as the reference does. The header is padded with spaces to a multiple
// of 8 bytes. The file is written to PATH.tmp and renamed into place.
// Returns 0, or -1 with err filled (and no partial file left behind).
int st_write_file(const char *path, const st_write_tensor *tensors, int n,
                  const char *const *meta_kv, int n_meta, char *err);

// A streaming writer, for files larger than memory: st_writer_open writes the
// header from the tensors' names, dtypes and shapes (their data pointers are
// not used), then st_writer_put appends the data buffer in pieces, tensor
// after tensor in the given order, and st_writer_close checks that exactly
// the bytes the header promised came, flushes, and renames PATH.tmp into
// place. Validation and layout are st_write_file's. On any error the
// function returns -1 with err (NULL for open), and st_writer_abort (also
// safe after a failed put) removes PATH.tmp and frees the writer.
typedef struct st_writer st_writer;
st_writer *st_writer_open(const char *path, const st_write_tensor *tensors, int n,
                          const char *const *meta_kv, int n_meta, char *err);
int st_writer_put(st_writer *w, const void *data, size_t bytes, char *err);
// Returns 0 and frees w, or -1 with err (w is then freed and PATH.tmp removed).
int st_writer_close(st_writer *w, char *err);
void st_writer_abort(st_writer *w);

#endif
