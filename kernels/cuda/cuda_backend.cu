// cuda_backend.cu - the CUDA backend's table: memory, errors, the stream,
// the cuBLAS handle and the fixed workspaces. The ops live in cuda_ops.cu, cuda_matmul.cu and
// cuda_attention.cu.
//
// Every op is queued on one stream owned by the backend (non-blocking with
// respect to the legacy default stream); cuBLAS is bound to it. upload()
// waits until the copy is done, because callers reuse or free the host
// buffer as soon as it returns; download() and sync() wait for all queued work.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "cuda_common.cuh"

void cuda_fail(backend *b, const char *fmt, ...) {
    if (b->failed) return; // keep the first error: later ones are usually its echoes
    b->failed = 1;
    static const char prefix[] = "cuda: ";
    memcpy(b->error, prefix, sizeof prefix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->error + sizeof prefix - 1, sizeof b->error - (sizeof prefix - 1), fmt, ap);
    va_end(ap);
}

const char *cublas_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS:
        return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
        return "CUBLAS_STATUS_LICENSE_ERROR";
    default:
        return "unknown cuBLAS status";
    }
}

// A workspace grown on first use (only attn_part now; the others are fixed,
// see cuda_common.cuh) grows to 1.5x the request (rounded to 2 MiB) so a
// slowly rising need reallocates a few times, not at every step; growing
// synchronizes the stream.
#define WS_ROUND (2u << 20)

int cuda_ws_reserve(cuda_backend *c, cuda_workspace *w, size_t bytes, const char *what) {
    if (bytes <= w->bytes) return 0;
    backend *b = &c->base;
    if (c->capturing) {
        cuda_fail(b, "the %s workspace would grow while a graph is recorded", what);
        return -1;
    }
    size_t want = bytes + bytes / 2;
    want = (want + WS_ROUND - 1) / WS_ROUND * WS_ROUND;
    if (w->p) {
        // queued kernels may still read the old buffer
        CUDA_CHECK_OR(b, cudaStreamSynchronize(c->stream), return -1);
        CUDA_CHECK_OR(b, cudaFree(w->p), return -1);
        w->p = NULL;
        w->bytes = 0;
    }
    cudaError_t e = cudaMalloc(&w->p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // not sticky: clear it so later launches don't report it
        w->p = NULL;
        char buf[32];
        cuda_fail(b, "cudaMalloc of %s for the %s workspace: %s (%s)",
                  llm_fmt_bytes(want, buf, sizeof buf), what, cudaGetErrorName(e),
                  cudaGetErrorString(e));
        return -1;
    }
    w->bytes = want;
    return 0;
}

static void *cu_alloc(backend *b, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // out of memory is reported by the NULL, not by later ops
        return NULL;
    }
    return p;
}

static void cu_free(backend *b, void *p) {
    if (p) CUDA_CHECK(b, cudaFree(p));
}

// Page-locked host memory: a device-to-host copy into it runs at the link's
// rate (~25-50 GB/s on PCIe 5 / NVLink-C2C) instead of through the driver's
// pageable staging (~10-20 GB/s): 131 MB of logits (256 x 128k) a step.
static void *cu_host_alloc(backend *b, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // reported by the NULL
        return NULL;
    }
    return p;
}

static void cu_host_free(backend *b, void *p) {
    if (p) CUDA_CHECK(b, cudaFreeHost(p));
}

static void cu_upload(backend *b, void *dst, const void *host_src, size_t bytes) {
    cuda_backend *c = cuda_of(b);
    if (!bytes) return;
    CUDA_CHECK(b, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream));
    CUDA_CHECK(b, cudaStreamSynchronize(c->stream));
}

static void cu_upload_async(backend *b, void *dst, const void *host_src, size_t bytes) {
    if (bytes)
        CUDA_CHECK(
            b, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, cuda_of(b)->stream));
}

// --- graphs -----------------------------------------------------------------------
//
// A step recorded by stream capture and replayed by one cudaGraphLaunch: the
// ~300 kernels of a decode step cost one launch's host time, and the GPU runs
// them back to back. The fp16-overflow bookkeeping is host-side (which
// matmul owns which flag, cuda_check_overflow): the recording keeps the
// matmuls it captured and each launch re-arms them.
typedef struct {
    cudaGraphExec_t exec;
    int ovf_n;
    struct {
        int layer, rows, cols;
        const char *name;
    } ovf_ops[OVF_SLOTS];
} cuda_graph;

static int cu_graph_begin(backend *b) {
    cuda_backend *c = cuda_of(b);
    if (c->ovf_n && cuda_check_overflow(c)) return -1; // flags of earlier work first
    CUDA_CHECK_OR(b, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal),
                  return -1);
    c->capturing = 1;
    return 0;
}

static void *cu_graph_end(backend *b) {
    cuda_backend *c = cuda_of(b);
    cudaGraph_t g = NULL;
    c->capturing = 0;
    const int n_ovf = c->ovf_n;
    c->ovf_n = 0; // nothing ran: the recording owns these flags now
    CUDA_CHECK_OR(b, cudaStreamEndCapture(c->stream, &g), return NULL);
    if (b->failed) { // an op failed while recording
        cudaGraphDestroy(g);
        return NULL;
    }
    cuda_graph *cg = (cuda_graph *)calloc(1, sizeof *cg);
    if (!cg) {
        cudaGraphDestroy(g);
        cuda_fail(b, "out of host memory for a graph");
        return NULL;
    }
    cudaError_t e = cudaGraphInstantiate(&cg->exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        free(cg);
        cuda_fail(b, "cudaGraphInstantiate: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        return NULL;
    }
    cg->ovf_n = n_ovf;
    memcpy(cg->ovf_ops, c->ovf_ops, (size_t)n_ovf * sizeof cg->ovf_ops[0]);
    return cg;
}

static void cu_graph_launch(backend *b, void *graph) {
    cuda_backend *c = cuda_of(b);
    cuda_graph *cg = (cuda_graph *)graph;
    if (c->ovf_n && cuda_check_overflow(c)) return;
    CUDA_CHECK(b, cudaGraphLaunch(cg->exec, c->stream));
    c->ovf_n = cg->ovf_n;
    memcpy(c->ovf_ops, cg->ovf_ops, (size_t)cg->ovf_n * sizeof c->ovf_ops[0]);
}

static void cu_graph_destroy(backend *b, void *graph) {
    cuda_graph *cg = (cuda_graph *)graph;
    if (!cg) return;
    cudaGraphExecDestroy(cg->exec);
    free(cg);
}

int cuda_check_overflow(cuda_backend *c) {
    backend *b = &c->base;
    const int n = c->ovf_n;
    if (n == 0) return 0;
    c->ovf_n = 0;
    unsigned flags[OVF_SLOTS];
    CUDA_CHECK_OR(b,
                  cudaMemcpyAsync(flags, c->ovf_flags, (size_t)n * sizeof(unsigned),
                                  cudaMemcpyDeviceToHost, c->stream),
                  return -1);
    CUDA_CHECK_OR(b, cudaStreamSynchronize(c->stream), return -1);
    int k = 0;
    while (k < n && !flags[k]) k++;
    if (k == n) return 0;
    CUDA_CHECK_OR(b, cudaMemsetAsync(c->ovf_flags, 0, (size_t)n * sizeof(unsigned), c->stream),
                  return -1);
    char where[96] = "a matmul";
    if (c->ovf_ops[k].name && c->ovf_ops[k].layer >= 0)
        snprintf(where, sizeof where, "layer %d %s", c->ovf_ops[k].layer, c->ovf_ops[k].name);
    else if (c->ovf_ops[k].name)
        snprintf(where, sizeof where, "%s", c->ovf_ops[k].name);
    cuda_fail(b,
              "fp16 overflow: an activation entering %s (%dx%d weights) is beyond the fp16 "
              "range (|x| > 65504) and would be inf in the fp16 GEMM; the step's results are "
              "dropped. Run this model with --dtype bf16 or f32, or --batch-invariant (fp32 "
              "activations)",
              where, c->ovf_ops[k].rows, c->ovf_ops[k].cols);
    return -1;
}

static void cu_download(backend *b, void *host_dst, const void *src, size_t bytes) {
    cuda_backend *c = cuda_of(b);
    if (bytes)
        CUDA_CHECK(b, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(b, cudaStreamSynchronize(c->stream));
    cuda_check_overflow(c);
}

static void cu_memset(backend *b, void *dst, int value, size_t bytes) {
    if (bytes) CUDA_CHECK(b, cudaMemsetAsync(dst, value, bytes, cuda_of(b)->stream));
}

static void cu_sync(backend *b) {
    CUDA_CHECK(b, cudaStreamSynchronize(cuda_of(b)->stream));
    cuda_check_overflow(cuda_of(b));
}

static void cu_memory_info(backend *b, uint64_t *free_bytes, uint64_t *total_bytes) {
    size_t f = 0, t = 0;
    *free_bytes = *total_bytes = 0;
    CUDA_CHECK(b, cudaMemGetInfo(&f, &t));
    *free_bytes = f;
    *total_bytes = t;
}

static void cu_destroy(backend *b) {
    if (!b) return;
    cuda_backend *c = cuda_of(b);
    if (c->stream) cudaStreamSynchronize(c->stream);
    cudaFree(c->blas_ws);
    cudaFree(c->act);
    cudaFree(c->wtile);
    cudaFree(c->gemv_part);
    cudaFree(c->gemv_count);
    cudaFree(c->attn_count);
    cudaFree(c->ovf_flags);
    cudaFree(c->attn_part.p);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

// A creation step: on failure fill err, undo, return NULL.
#define CREATE_CHECK(call)                                                                         \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            llm_errf(err, "cuda backend: %s: %s (%s)", #call, cudaGetErrorName(e_),                \
                     cudaGetErrorString(e_));                                                      \
            cu_destroy(&c->base);                                                                  \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

extern "C" backend *cuda_backend_create(const device_info *dev, char *err) {
    cuda_backend *c = (cuda_backend *)llm_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    backend *b = &c->base;
    b->info = *dev;
    CREATE_CHECK(cudaSetDevice(0));
    cudaDeviceProp prop;
    CREATE_CHECK(cudaGetDeviceProperties(&prop, 0));
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    c->smem_optin = prop.sharedMemPerBlockOptin;
    if (prop.major < 7 || (prop.major == 7 && prop.minor < 5)) {
        llm_errf(err, "cuda backend: %s is compute capability %d.%d; sm_75 or newer is needed",
                 prop.name, prop.major, prop.minor);
        cu_destroy(b);
        return NULL;
    }
    CREATE_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    // the fixed workspaces (cuda_common.cuh): no op allocates during a step
    CREATE_CHECK(cudaMalloc(&c->blas_ws, BLAS_WS_BYTES));
    CREATE_CHECK(cudaMalloc(&c->act, ACT_WS_BYTES));
    CREATE_CHECK(cudaMalloc(&c->wtile, WTILE_BYTES));
    CREATE_CHECK(cudaMalloc(&c->gemv_part, GEMV_PARTIAL_FLOATS * sizeof(float)));
    CREATE_CHECK(cudaMalloc(&c->gemv_count, GEMV_COUNTERS * sizeof(unsigned)));
    CREATE_CHECK(cudaMemsetAsync(c->gemv_count, 0, GEMV_COUNTERS * sizeof(unsigned), c->stream));
    CREATE_CHECK(cudaMalloc(&c->attn_count, ATTN_COUNTERS * sizeof(unsigned)));
    CREATE_CHECK(cudaMemsetAsync(c->attn_count, 0, ATTN_COUNTERS * sizeof(unsigned), c->stream));
    CREATE_CHECK(cudaMalloc(&c->ovf_flags, OVF_SLOTS * sizeof(unsigned)));
    CREATE_CHECK(cudaMemsetAsync(c->ovf_flags, 0, OVF_SLOTS * sizeof(unsigned), c->stream));
    CREATE_CHECK(cudaStreamSynchronize(c->stream));
    cublasStatus_t s = cublasCreate(&c->blas);
    // after cublasSetStream, which resets the workspace to cuBLAS's own pool
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetStream(c->blas, c->stream);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WS_BYTES);
    if (s != CUBLAS_STATUS_SUCCESS) {
        llm_errf(err, "cuda backend: cublasCreate/SetStream/SetWorkspace: %s",
                 cublas_status_name(s));
        cu_destroy(b);
        return NULL;
    }
    if (cuda_attention_init(c)) {
        llm_errf(err, "cuda backend: %s", b->error);
        cu_destroy(b);
        return NULL;
    }
    b->alloc = cu_alloc;
    b->free = cu_free;
    b->host_alloc = cu_host_alloc;
    b->host_free = cu_host_free;
    b->upload = cu_upload;
    b->upload_async = cu_upload_async;
    b->graph_begin = cu_graph_begin;
    b->graph_end = cu_graph_end;
    b->graph_launch = cu_graph_launch;
    b->graph_destroy = cu_graph_destroy;
    b->download = cu_download;
    b->memset = cu_memset;
    b->sync = cu_sync;
    b->memory_info = cu_memory_info;
    b->embedding = cuda_embedding;
    b->rmsnorm = cuda_rmsnorm;
    b->add_rmsnorm = cuda_add_rmsnorm;
    b->matmul = cuda_matmul;
    b->x16_plan = cuda_x16_plan;
    b->rope = cuda_rope;
    b->kv_write = cuda_kv_write;
    b->attention = cuda_attention;
    b->silu_mul = cuda_silu_mul;
    b->qkv_rope_write = cuda_qkv_rope_write;
    b->gather_rows = cuda_gather_rows;
    b->argmax = cuda_argmax;
    b->destroy = cu_destroy;
    return b;
}
