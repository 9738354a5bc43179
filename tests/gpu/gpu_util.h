// gpu_util.h - shared helpers of the GPU tests (tests/gpu/test_*.c): the CUDA
// and CPU backends, fresh random inputs, poisoned device buffers and the
// relative-error check (L2 norm of the difference over the L2 norm of the CPU
// result, so near-zero elements do not blow the ratio up).
//
// No GPU: each test is skipped with the reason, and gpu_tests exits 0, unless
// LLM_REQUIRE_GPU is set (as `make test-gpu` does), where a missing GPU fails
// every test. LLM_GPU_FAST=1 shrinks the shapes and uses the tiny model instead of the default
// one (for compute-sanitizer and the CPU emulation).
// LLM_GPU_SEED=N replays a run's random inputs (the seed is printed once).
#ifndef LLM_TEST_GPU_UTIL_H
#define LLM_TEST_GPU_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

// The CUDA backend, created once; NULL after marking the test skipped (or
// failed under LLM_REQUIRE_GPU) when there is no usable GPU.
backend *gpu_backend(void);
// The CPU backend (the reference), created once.
backend *cpu_ref(void);
// 1 when LLM_GPU_FAST is set.
int gpu_fast(void);

// Uniform in [-1, 1), from the run's seed.
float urand(void);
// Uniform integer in [0, n).
int irand(int n);

// Device copy of host bytes (NULL and a test failure when out of memory).
void *gpu_copy_in(backend *g, const void *host, size_t bytes);
// Device buffer of n floats filled with 0xFF bytes (NaN): unwritten outputs show.
float *gpu_poisoned(backend *g, size_t n);
// Host copy of n floats of a device buffer (malloc'd; the caller frees).
float *gpu_copy_out(backend *g, const float *dev, size_t n);

// How many times a kernel of that name (no template arguments) has run so
// far under the CUDA emulation (tests/gpu/emu counts launches); -1 on a
// device, where nothing counts them.
long gpu_kernel_launches(const char *name);

// ||got - want|| / ||want|| (L2, in double); a non-finite got where want is
// finite counts as infinite error.
double rel_err(const float *got, const float *want, size_t n);

// Fails the running test when rel_err(got, want, n) > tol, naming what.
#define CHECK_REL(got, want, n, tol, ...)                                                          \
    do {                                                                                           \
        double e_ = rel_err((got), (want), (n));                                                   \
        if (!(e_ <= (tol))) {                                                                      \
            char what_[256];                                                                       \
            snprintf(what_, sizeof what_, __VA_ARGS__);                                            \
            harness_fail(__FILE__, __LINE__, "%s: relative error %g > %g", what_, e_,              \
                         (double)(tol));                                                           \
        }                                                                                          \
    } while (0)

#endif
