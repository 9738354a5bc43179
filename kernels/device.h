// device.h - which compute device runs the model, chosen at start-up.
//
// A binary built with CUDA support still runs on a machine without a GPU:
// DEVICE_AUTO picks CUDA only when a usable device is present.
#ifndef LLM_DEVICE_H
#define LLM_DEVICE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DEVICE_AUTO = 0,
    DEVICE_CPU,
    DEVICE_CUDA,
} device_kind;

typedef struct {
    device_kind kind;       // DEVICE_CPU or DEVICE_CUDA, never AUTO
    char name[256];         // "NVIDIA H100 80GB HBM3" or the CPU model
    uint64_t total_bytes;   // device memory (GPU) or physical RAM (CPU)
    uint64_t free_bytes;    // free device memory, or available RAM
    int cores;              // SMs (GPU) or online CPUs
    int cc_major, cc_minor; // compute capability (GPU only)
    char features[64];      // CPU: "avx2 f16c fma" as detected at run time
} device_info;

// Parses "auto", "cpu" or "cuda". Returns 0, or -1 with err.
int device_parse(const char *s, device_kind *out, char *err);
const char *device_name(device_kind k);

// 1 when this binary was built with the CUDA backend.
int device_cuda_compiled(void);

// Resolves `want` to a concrete device and describes it. DEVICE_CUDA fails
// with a clear message when the binary lacks CUDA or no GPU is usable; AUTO
// falls back to the CPU silently. Returns 0, or -1 with err.
int device_select(device_kind want, device_info *info, char *err);

// Fills info for the host CPU (always succeeds).
void device_cpu_info(device_info *info);

#endif
