// cuda_device.cu - finds and describes the GPU.
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "cuda_device.h"
#include "util.h"

extern "C" int cuda_device_query(device_info *info, char *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return llm_errf(err, "cudaGetDeviceCount: %s (%s)", cudaGetErrorName(e),
                        cudaGetErrorString(e));
    if (count == 0) return llm_errf(err, "cudaGetDeviceCount: no CUDA device");
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess)
        return llm_errf(err, "cudaGetDeviceProperties: %s (%s)", cudaGetErrorName(e),
                        cudaGetErrorString(e));
    size_t free_b = 0, total_b = 0;
    e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess)
        return llm_errf(err, "cudaMemGetInfo: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
    memset(info, 0, sizeof *info);
    info->kind = DEVICE_CUDA;
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->total_bytes = total_b;
    info->free_bytes = free_b;
    info->cores = prop.multiProcessorCount;
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    return 0;
}
