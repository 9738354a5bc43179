// cuda_backend.h - C entry points of the CUDA backend (kernels/cuda/).
#ifndef LLM_CUDA_BACKEND_H
#define LLM_CUDA_BACKEND_H

#ifdef __cplusplus
extern "C" { // backend.h and the headers it includes are C
#endif

#include "backend.h"

// Creates the CUDA backend on device 0 (dev as filled by device_select):
// one stream for every op, a cuBLAS handle bound to it. Returns NULL with err
// naming the failing CUDA/cuBLAS call. Every op of backend.h is implemented
// with the CPU backend's semantics; see README.md "CUDA backend".
backend *cuda_backend_create(const device_info *dev, char *err);

#ifdef __cplusplus
}
#endif

#endif
