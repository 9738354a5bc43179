// emu.cpp - the runtime behind emu.h: the fiber scheduler of a block, device
// memory, the device properties and a naive cuBLAS.
#include "emu.h"
#include <map>
#include <string>
#include <ucontext.h>
#include <vector>

namespace emu {
dim3 g_block_idx, g_block_dim, g_grid_dim;
static cudaError_t g_err;
static int g_attr_limit = 48 * 1024;
static void *g_dyn;
static size_t g_dyn_bytes;
static int cc() {
    const char *s = getenv("EMU_CC");
    return s ? atoi(s) : 90;
}
static size_t optin() {
    int c = cc();
    return c >= 90 ? 232448 : c >= 80 ? 166912 : 65536;
}

struct Fiber {
    ucontext_t ctx;
    dim3 tid;
    int state;
    char *stack;
};
#define STACK (128 * 1024)
static std::vector<Fiber> F;
static int cur;
static ucontext_t sched_ctx;
static const std::function<void()> *g_body;
// A shuffle's values: two buffers used in turn (parity per thread), so a lane
// that reads its partner's value after the warp's meeting point cannot find
// it overwritten: the partner writes that buffer again only two shuffles
// later, past a meeting point this lane has not reached. One switch per shuffle.
static float xchg[2][1024];
static int xparity[1024];

const dim3 &tid() {
    return F[cur].tid;
}
void *dyn_smem() {
    return g_dyn;
}
static void yield_state(int st) {
    F[cur].state = st;
    swapcontext(&F[cur].ctx, &sched_ctx);
}
void sync_block() {
    yield_state(1);
}
float shfl_xor(float v, int m) {
    int t = F[cur].tid.x, lane = t & 31, base = t & ~31;
    const int p = xparity[t];
    xparity[t] ^= 1;
    xchg[p][t] = v;
    yield_state(2);
    return xchg[p][base + (lane ^ m)];
}
void warp_meet() {
    yield_state(2);
}
// Votes: like shuffles, two buffers used in turn per thread.
static int votes[2][1024];
static int vparity[1024];
int warp_vote(int pred, bool all) {
    const int t = F[cur].tid.x, base = t & ~31, n = std::min(32, (int)g_block_dim.x - base);
    const int p = vparity[t];
    vparity[t] ^= 1;
    votes[p][t] = pred != 0;
    yield_state(2);
    int any = 0, every = 1;
    for (int i = base; i < base + n; i++)
        if (F[i].state != 3) any |= votes[p][i], every &= votes[p][i];
    return all ? every : any;
}
const float *mma_pub[1024];

struct Copy {
    void *dst;
    const void *src;
    size_t size, zfill;
    size_t group; // the thread's commit count when it was recorded
};
static std::vector<Copy> pending[1024];
static size_t commits[1024];
static void do_copy(const Copy &c) {
    memcpy(c.dst, c.src, c.size - c.zfill);
    memset((char *)c.dst + (c.size - c.zfill), 0, c.zfill);
}
void async_copy(void *dst, const void *src, size_t size, size_t zfill) {
    if ((size != 4 && size != 8 && size != 16) || zfill > size || (uintptr_t)dst % size ||
        (uintptr_t)src % size) {
        fprintf(stderr, "EMU: __pipeline_memcpy_async(%p, %p, %zu, %zu): bad size or alignment\n",
                dst, src, size, zfill);
        abort();
    }
    const Copy c{dst, src, size, zfill, commits[F[cur].tid.x]};
    if (cc() < 80)
        do_copy(c);
    else
        pending[F[cur].tid.x].push_back(c);
}
void async_commit() {
    commits[F[cur].tid.x]++;
}
void async_wait(size_t prior) {
    const int t = F[cur].tid.x;
    std::vector<Copy> &p = pending[t];
    size_t keep = 0;
    for (size_t i = 0; i < p.size(); i++)
        if (p[i].group + prior < commits[t]) // committed, and not among the prior most recent
            do_copy(p[i]);
        else
            p[keep++] = p[i];
    p.resize(keep);
}

static void trampoline() {
    (*g_body)();
    F[cur].state = 3;
    swapcontext(&F[cur].ctx, &sched_ctx);
}

static std::map<std::string, unsigned long> g_launches;
void count_launch(const char *name) {
    g_launches[name]++;
}

bool begin_launch(dim3 g, dim3 b, size_t smem) {
    unsigned nt = b.x * b.y * b.z;
    size_t limit = smem > 48 * 1024 ? (size_t)g_attr_limit : 48 * 1024;
    if (nt == 0 || nt > 1024 || g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535 ||
        g.x > 2147483647u || smem > limit || b.y != 1 || b.z != 1) {
        fprintf(stderr, "EMU: bad launch grid (%u,%u,%u) block (%u,%u,%u) smem %zu (limit %zu)\n",
                g.x, g.y, g.z, b.x, b.y, b.z, smem, limit);
        g_err = cudaErrorInvalidConfiguration;
        return false;
    }
    if (smem > g_dyn_bytes || !g_dyn) {
        free(g_dyn);
        g_dyn_bytes = smem > 16 ? smem : 16;
        g_dyn = aligned_alloc(128, (g_dyn_bytes + 127) / 128 * 128); // WMMA needs 32
    }
    memset(g_dyn, 0xFF, g_dyn_bytes);
    g_grid_dim = g;
    g_block_dim = b;
    return true;
}

static void run_block(const std::function<void()> &body) {
    int n = (int)g_block_dim.x;
    while ((int)F.size() < n) {
        F.emplace_back();
        F.back().stack = (char *)malloc(STACK);
    }
    g_body = &body;
    for (int i = 0; i < n; i++) {
        F[i].tid = dim3(i, 0, 0);
        F[i].state = 0;
        xparity[i] = 0;
        vparity[i] = 0;
        pending[i].clear();
        commits[i] = 0;
        getcontext(&F[i].ctx);
        F[i].ctx.uc_stack.ss_sp = F[i].stack;
        F[i].ctx.uc_stack.ss_size = STACK;
        F[i].ctx.uc_link = nullptr;
        makecontext(&F[i].ctx, trampoline, 0);
    }
    // Passes alternate between ascending and descending thread order, so a
    // thread reading what a neighbour writes before a meeting point it skipped
    // (a missing __syncwarp or barrier) reads it unwritten in one of them.
    for (int pass = 0;; pass++) {
        bool ran = false;
        for (int k = 0; k < n; k++) {
            const int i = pass % 2 ? n - 1 - k : k;
            if (F[i].state == 0) {
                cur = i;
                swapcontext(&sched_ctx, &F[i].ctx);
                ran = true;
            }
        }
        bool all_done = true;
        for (int i = 0; i < n; i++) all_done &= F[i].state == 3;
        if (all_done) return;
        bool released = false;
        for (int w = 0; w < (n + 31) / 32; w++) {
            int live = 0, at = 0;
            for (int i = w * 32; i < n && i < w * 32 + 32; i++) {
                live += F[i].state != 3;
                at += F[i].state == 2;
            }
            if (live && at == live) {
                for (int i = w * 32; i < n && i < w * 32 + 32; i++)
                    if (F[i].state == 2) F[i].state = 0;
                released = true;
            }
        }
        if (!released) {
            int live = 0, at = 0;
            for (int i = 0; i < n; i++) {
                live += F[i].state != 3;
                at += F[i].state == 1;
            }
            if (live && at == live) {
                for (int i = 0; i < n; i++)
                    if (F[i].state == 1) F[i].state = 0;
                released = true;
            }
        }
        if (!ran && !released) {
            fprintf(stderr, "EMU: barrier deadlock in block (%u,%u,%u):", g_block_idx.x,
                    g_block_idx.y, g_block_idx.z);
            for (int i = 0; i < n; i++) fprintf(stderr, " %d", F[i].state);
            fprintf(stderr, "\n");
            abort();
        }
    }
}

void run_blocks(const std::function<void()> &body) {
    for (unsigned z = 0; z < g_grid_dim.z; z++)
        for (unsigned y = 0; y < g_grid_dim.y; y++)
            for (unsigned x = 0; x < g_grid_dim.x; x++) {
                g_block_idx = dim3(x, y, z);
                run_block(body);
            }
}
} // namespace emu

unsigned long emu_kernel_launches(const char *name) {
    auto it = emu::g_launches.find(name);
    return it == emu::g_launches.end() ? 0 : it->second;
}

const char *cudaGetErrorName(cudaError_t e) {
    return e ? "cudaErrorEmu" : "cudaSuccess";
}
const char *cudaGetErrorString(cudaError_t e) {
    return e ? "emulated error" : "no error";
}
cudaError_t cudaGetLastError() {
    cudaError_t e = emu::g_err;
    emu::g_err = 0;
    return e;
}
// --- stream capture and graphs ---
struct emu_graph {
    std::vector<std::function<void()>> ops;
};
static emu_graph *g_capture; // the graph being recorded, or NULL
namespace emu {
bool capturing() {
    return g_capture != nullptr;
}
void record(std::function<void()> op) {
    g_capture->ops.push_back(std::move(op));
}
} // namespace emu
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    g_capture = new emu_graph;
    return 0;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!g_capture) return cudaErrorInvalidValue;
    *g = g_capture;
    g_capture = nullptr;
    return 0;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = new emu_graph(*g);
    return 0;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    for (auto &op : e->ops) op();
    return 0;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return 0;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return 0;
}

cudaError_t cudaMalloc(void **p, size_t n) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    size_t r = (n + 255) / 256 * 256;
    *p = aligned_alloc(256, r ? r : 256);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xAB, r);
    return 0;
}
cudaError_t cudaFree(void *p) {
    if (g_capture) return cudaErrorStreamCaptureUnsupported;
    free(p);
    return 0;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? 0 : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return 0;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    if (g_capture)
        emu::record([d, s, n] { memcpy(d, s, n); });
    else
        memcpy(d, s, n);
    return 0;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) {
    if (g_capture)
        emu::record([d, v, n] { memset(d, v, n); });
    else
        memset(d, v, n);
    return 0;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return g_capture ? cudaErrorStreamCaptureUnsupported : 0;
}
static int dummy_stream;
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)&dummy_stream;
    return 0;
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
    return 0;
}
cudaError_t cudaSetDevice(int) {
    return 0;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return 0;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    int c = emu::cc();
    snprintf(p->name, sizeof p->name, "EMU sm_%d", c);
    p->major = c / 10;
    p->minor = c % 10;
    p->sharedMemPerBlockOptin = emu::optin();
    p->multiProcessorCount = 4;
    return 0;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    *f = 1ull << 30;
    *t = 2ull << 30;
    return 0;
}
cudaError_t emu_set_attr(int v) {
    if ((size_t)v > emu::optin()) return cudaErrorInvalidValue;
    emu::g_attr_limit = v;
    return 0;
}

static int dummy_blas;
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t)&dummy_blas;
    return 0;
}
cublasStatus_t cublasDestroy(cublasHandle_t) {
    return 0;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) {
    return 0;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *p, size_t bytes) {
    return p && bytes ? 0 : CUBLAS_STATUS_INVALID_VALUE;
}
static float ld(const void *p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_16F) return fp16_to_f32(((const uint16_t *)p)[i]);
    if (t == CUDA_R_16BF) {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return ((const float *)p)[i];
}
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           float alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                           cudaDataType_t bt, int ldb, float beta, float *C, int ldc) {
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta == CUBLAS_OP_N ? m : k) ||
        ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m)) {
        fprintf(stderr, "EMU: cublas invalid value m%d n%d k%d lda%d ldb%d ldc%d\n", m, n, k, lda,
                ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) {
                float a = ta == CUBLAS_OP_N ? ld(A, at, i + (size_t)l * lda)
                                            : ld(A, at, l + (size_t)i * lda);
                float b = tb == CUBLAS_OP_N ? ld(B, bt, l + (size_t)j * ldb)
                                            : ld(B, bt, j + (size_t)l * ldb);
                s += (double)a * b;
            }
            float *c = &C[i + (size_t)j * ldc];
            *c = (float)(alpha * s) + (beta != 0 ? beta * *c : 0.0f);
        }
    return 0;
}
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t at,
                            int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
                            void *C, cudaDataType_t ct, int ldc, cublasComputeType_t,
                            cublasGemmAlgo_t) {
    if (ct != CUDA_R_32F || at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at == CUDA_R_16BF && emu::cc() < 80) return CUBLAS_STATUS_ARCH_MISMATCH;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    if (g_capture) { // the scalars are read now (host pointer mode), the GEMM runs at launch
        emu::record([=] { gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, (float *)C, ldc); });
        return 0;
    }
    return gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, (float *)C, ldc);
}
cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const float *alpha, const float *A, int lda, const float *B,
                           int ldb, const float *beta, float *C, int ldc) {
    const float al = *alpha, be = *beta;
    if (g_capture) {
        emu::record([=] { gemm(ta, tb, m, n, k, al, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, be, C, ldc); });
        return 0;
    }
    return gemm(ta, tb, m, n, k, al, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, be, C, ldc);
}
