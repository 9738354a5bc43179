#include "gpu_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

static backend *g_gpu, *g_cpu;
static int g_tried;
static char g_why[LLM_ERR_LEN];
static uint64_t g_rng;

static void seed_once(void) {
    if (g_rng) return;
    const char *s = getenv("LLM_GPU_SEED");
    g_rng = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    if (!g_rng) g_rng = 1;
    fprintf(stderr, "gpu tests: LLM_GPU_SEED=%llu\n", (unsigned long long)g_rng);
}

float urand(void) {
    seed_once();
    g_rng ^= g_rng >> 12; // xorshift64*
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    uint64_t r = g_rng * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

int irand(int n) {
    int v = (int)((urand() + 1.0f) * 0.5f * (float)n);
    return v < 0 ? 0 : v >= n ? n - 1 : v;
}

int gpu_fast(void) {
    return getenv("LLM_GPU_FAST") != NULL;
}

backend *gpu_backend(void) {
    if (!g_tried) {
        g_tried = 1;
        device_info d;
        if (device_select(DEVICE_CUDA, &d, g_why) == 0) g_gpu = backend_create(&d, g_why);
        if (!g_gpu && !getenv("LLM_REQUIRE_GPU"))
            fprintf(stderr, "gpu tests: SKIP, no CUDA device (%s)\n", g_why);
    }
    if (!g_gpu) {
        if (getenv("LLM_REQUIRE_GPU"))
            harness_fail(__FILE__, __LINE__, "no CUDA device: %s", g_why);
        else
            harness_skip(g_why);
    }
    return g_gpu;
}

backend *cpu_ref(void) {
    if (!g_cpu) {
        char err[LLM_ERR_LEN];
        g_cpu = cpu_backend_create(err);
        if (!g_cpu) harness_fail(__FILE__, __LINE__, "cpu backend: %s", err);
    }
    return g_cpu;
}

__attribute__((destructor)) static void destroy_backends(void) {
    if (g_gpu) g_gpu->destroy(g_gpu);
    if (g_cpu) g_cpu->destroy(g_cpu);
}

void *gpu_copy_in(backend *g, const void *host, size_t bytes) {
    void *d = g->alloc(g, bytes);
    if (!d) {
        harness_fail(__FILE__, __LINE__, "device out of memory (%zu bytes)", bytes);
        return NULL;
    }
    g->upload(g, d, host, bytes);
    return d;
}

float *gpu_poisoned(backend *g, size_t n) {
    float *d = g->alloc(g, n * sizeof(float));
    if (!d) {
        harness_fail(__FILE__, __LINE__, "device out of memory (%zu floats)", n);
        return NULL;
    }
    g->memset(g, d, 0xFF, n * sizeof(float));
    return d;
}

float *gpu_copy_out(backend *g, const float *dev, size_t n) {
    float *h = malloc(n * sizeof(float) + 1);
    if (h) g->download(g, h, dev, n * sizeof(float));
    return h;
}

// Defined by the emulator (tests/gpu/emu/emu.cpp) only.
unsigned long emu_kernel_launches(const char *name) __attribute__((weak));

long gpu_kernel_launches(const char *name) {
    return emu_kernel_launches ? (long)emu_kernel_launches(name) : -1;
}

double rel_err(const float *got, const float *want, size_t n) {
    if (!got || !want) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && isfinite(want[i])) return INFINITY;
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
