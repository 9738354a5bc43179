#include "backend.h"

#include "util.h"
#ifdef LLM_CUDA
#include "cuda/cuda_backend.h"
#endif

backend *backend_create(const device_info *dev, char *err) {
    if (dev->kind == DEVICE_CPU) return cpu_backend_create(err);
#ifdef LLM_CUDA
    return cuda_backend_create(dev, err);
#else
    llm_errf(err,
             "this binary was built without the CUDA backend (make CUDA=1); run with --device cpu");
    return NULL;
#endif
}
