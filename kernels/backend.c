#include "backend.h"

#include "util.h"

backend *backend_create(const device_info *dev, char *err) {
    if (dev->kind == DEVICE_CPU) return cpu_backend_create(err);
    llm_errf(err, "the CUDA backend's ops are not written yet; run with --device cpu");
    return NULL;
}
