// libFuzzer entry for the safetensors reader: st_parse on the input, then every
// tensor is walked and the first and last byte of its data touched, so ASan
// reports any tensor whose data reaches outside the input.
//
//   make fuzz FUZZ_SECONDS=300
//
// A crash found here is kept as tests/fixtures/safetensors/bad/fuzz-*.safetensors,
// which tests/unit/test_safetensors.c feeds to st_parse and st_open_file.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[LLM_ERR_LEN];
    st_model *m = st_parse(data, size, "fuzz", err);
    if (!m) {
        if (strncmp(err, "fuzz: ", 6) != 0 && strcmp(err, "out of memory") != 0) abort();
        return 0;
    }
    volatile uint8_t sink = 0;
    uint64_t total = 0;
    for (int i = 0; i < st_count(m); i++) {
        const st_tensor *t = st_get(m, i);
        if (st_find(m, t->name) != t) abort();
        if (t->nbytes != t->numel * dtype_size(t->dtype) || t->ndim > ST_MAX_DIMS) abort();
        const uint8_t *p = t->data;
        if (p < data || (size_t)(p - data) > size || t->nbytes > size - (size_t)(p - data)) abort();
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
        total += t->nbytes;
    }
    if (total != st_data_bytes(m)) abort();
    (void)st_metadata(m, "format");
    (void)sink;
    st_close(m);
    return 0;
}
