// cuda_device.h - C entry points of the CUDA backend's device management.
#ifndef LLM_CUDA_DEVICE_H
#define LLM_CUDA_DEVICE_H

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

// Describes CUDA device 0 (name, memory, SMs, compute capability). Returns 0,
// or -1 with err naming the CUDA call and error (no driver, no device, ...).
int cuda_device_query(device_info *info, char *err);

#ifdef __cplusplus
}
#endif

#endif
