// cuda_bench.cu - the measurements behind gpu_bench (gpu_bench.c): the GPU's two
// ceilings (device-to-device copy bandwidth, a large cuBLAS fp16 GEMM) and the backend's own
// matmul, each timed with CUDA events on the backend's stream after a warm-up, median of the
// repeats.
#include <stdlib.h>

#include "cuda_bench.h"
#include "cuda_common.cuh"

#define BENCH_WARMUP 3

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

// A CUDA call of a benchmark: on failure fill err and jump to done.
#define BENCH_CHECK(call)                                                                          \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc =                                                                                   \
                llm_errf(err, "%s: %s (%s)", #call, cudaGetErrorName(e_), cudaGetErrorString(e_)); \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

// Times fn(i, ctx) for i = 0 .. reps - 1 after BENCH_WARMUP warm-up calls:
// median milliseconds in *ms. Returns 0, or -1 with err.
typedef int (*bench_fn)(backend *b, int i, void *ctx, char *err);

static int time_median(backend *b, bench_fn fn, void *ctx, int reps, double *ms, char *err) {
    cudaStream_t st = cuda_of(b)->stream;
    cudaEvent_t e0 = NULL, e1 = NULL;
    int rc = 0;
    float *t = (float *)calloc((size_t)reps, sizeof(float));
    if (!t) return llm_errf(err, "out of memory");
    BENCH_CHECK(cudaEventCreate(&e0));
    BENCH_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < BENCH_WARMUP; i++)
        if ((rc = fn(b, i, ctx, err))) goto done;
    for (int i = 0; i < reps; i++) {
        BENCH_CHECK(cudaEventRecord(e0, st));
        if ((rc = fn(b, i, ctx, err))) goto done;
        BENCH_CHECK(cudaEventRecord(e1, st));
        BENCH_CHECK(cudaEventSynchronize(e1));
        BENCH_CHECK(cudaEventElapsedTime(&t[i], e0, e1));
    }
    qsort(t, (size_t)reps, sizeof(float), cmp_float);
    *ms = t[reps / 2];
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    free(t);
    return rc;
}

// Uniform values in [-1, 1) from a hash of the index (never zeros: a zero
// operand would let the hardware skip work and time too fast).
__global__ void fill_f16_kernel(__half *p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        p[i] = __float2half_rn((float)(h >> 8) / 8388608.0f - 1.0f);
    }
}

typedef struct {
    void *dst, *src;
    size_t bytes;
} copy_ctx;

static int copy_once(backend *b, int i, void *ctx, char *err) {
    copy_ctx *c = (copy_ctx *)ctx;
    cudaError_t e =
        cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, cuda_of(b)->stream);
    if (e != cudaSuccess)
        return llm_errf(err, "cudaMemcpyAsync D2D: %s (%s)", cudaGetErrorName(e),
                        cudaGetErrorString(e));
    return 0;
}

extern "C" int cuda_bench_copy(backend *b, size_t bytes, int reps, double *gbps, char *err) {
    copy_ctx c = {NULL, NULL, bytes};
    double ms = 0;
    int rc = 0;
    BENCH_CHECK(cudaMalloc(&c.dst, bytes));
    BENCH_CHECK(cudaMalloc(&c.src, bytes));
    fill_f16_kernel<<<1024, 256, 0, cuda_of(b)->stream>>>((__half *)c.src, bytes / 2, 1);
    BENCH_CHECK(cudaGetLastError());
    if ((rc = time_median(b, copy_once, &c, reps, &ms, err))) goto done;
    *gbps = 2.0 * (double)bytes / (ms * 1e-3) / 1e9; // read + write
done:
    cudaFree(c.dst);
    cudaFree(c.src);
    return rc;
}

typedef struct {
    int m, n, k;
    __half *a, *bm;
    float *c;
} gemm_ctx;

static int gemm_once(backend *b, int i, void *ctx, char *err) {
    gemm_ctx *g = (gemm_ctx *)ctx;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s =
        cublasGemmEx(cuda_of(b)->blas, CUBLAS_OP_T, CUBLAS_OP_N, g->m, g->n, g->k, &one, g->a,
                     CUDA_R_16F, g->k, g->bm, CUDA_R_16F, g->k, &zero, g->c, CUDA_R_32F, g->m,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return llm_errf(err, "cublasGemmEx: %s", cublas_status_name(s));
    return 0;
}

extern "C" int cuda_bench_gemm_f16(backend *b, int m, int n, int k, int reps, double *tflops,
                                   char *err) {
    gemm_ctx g = {m, n, k, NULL, NULL, NULL};
    double ms = 0;
    int rc = 0;
    BENCH_CHECK(cudaMalloc(&g.a, (size_t)m * k * sizeof(__half)));
    BENCH_CHECK(cudaMalloc(&g.bm, (size_t)k * n * sizeof(__half)));
    BENCH_CHECK(cudaMalloc(&g.c, (size_t)m * n * sizeof(float)));
    fill_f16_kernel<<<1024, 256, 0, cuda_of(b)->stream>>>(g.a, (size_t)m * k, 2);
    fill_f16_kernel<<<1024, 256, 0, cuda_of(b)->stream>>>(g.bm, (size_t)k * n, 3);
    BENCH_CHECK(cudaGetLastError());
    if ((rc = time_median(b, gemm_once, &g, reps, &ms, err))) goto done;
    *tflops = 2.0 * m * (double)n * k / (ms * 1e-3) / 1e12;
done:
    cudaFree(g.a);
    cudaFree(g.bm);
    cudaFree(g.c);
    return rc;
}

typedef struct {
    const bk_matrix *w;
    int n_w, n;
    const float *x;
    float *out;
} matmul_ctx;

static int matmul_once(backend *b, int i, void *ctx, char *err) {
    matmul_ctx *m = (matmul_ctx *)ctx;
    b->matmul(b, m->out, m->x, &m->w[i % m->n_w], NULL, m->n, NULL);
    if (b->failed) return llm_errf(err, "%s", b->error);
    return 0;
}

extern "C" int cuda_bench_matmul(backend *b, const bk_matrix *w, int n_w, const float *x,
                                 float *out, int n, int reps, double *ms, char *err) {
    matmul_ctx m = {w, n_w, n, x, out};
    return time_median(b, matmul_once, &m, reps, ms, err);
}

typedef struct {
    int n_heads, n_kv_heads, hd;
    const float *q;
    float *out;
    const uint16_t *k, *v;
    bk_attn_batch bt;
} attn_ctx;

static int attn_once(backend *b, int i, void *ctx, char *err) {
    attn_ctx *a = (attn_ctx *)ctx;
    b->attention(b, a->out, a->q, a->k, a->v, &a->bt, a->n_heads, a->n_kv_heads, a->hd, 16,
                 1.0f / sqrtf((float)a->hd), LLM_F16, 1.0f, 1.0f, 0, NULL);
    if (b->failed) return llm_errf(err, "%s", b->error);
    return 0;
}

extern "C" int cuda_bench_attention(backend *b, int tokens, int n_heads, int n_kv_heads,
                                    int head_dim, int reps, double *ms, char *err) {
    const int bs = 16, nblk = (tokens + bs - 1) / bs;
    const size_t qn = (size_t)tokens * n_heads * head_dim;
    const size_t cn = (size_t)nblk * n_kv_heads * bs * head_dim;
    attn_ctx a = {n_heads, n_kv_heads, head_dim, NULL, NULL, NULL, NULL, {}};
    // host: the batch arrays, one after another: query_start [2], context_len
    // [1], block table [nblk], seq_of_token, positions, slots [tokens]
    const size_t ints = 3 + (size_t)nblk + 3 * (size_t)tokens;
    int32_t *h = (int32_t *)malloc(ints * sizeof(int32_t)), *d = NULL;
    __half *kv = NULL;
    int rc = 0;
    if (!h) return llm_errf(err, "out of memory");
    h[0] = 0, h[1] = tokens, h[2] = tokens;
    for (int j = 0; j < nblk; j++) h[3 + j] = j;
    for (int t = 0; t < tokens; t++) {
        h[3 + nblk + t] = 0;
        h[3 + nblk + tokens + t] = t;
        h[3 + nblk + 2 * tokens + t] = t;
    }
    BENCH_CHECK(cudaMalloc(&d, ints * sizeof(int32_t)));
    BENCH_CHECK(cudaMalloc(&kv, 2 * cn * sizeof(__half)));
    BENCH_CHECK(cudaMalloc(&a.out, qn * sizeof(float)));
    BENCH_CHECK(cudaMalloc((void **)&a.q, qn * sizeof(float)));
    fill_f16_kernel<<<1024, 256, 0, cuda_of(b)->stream>>>(kv, 2 * cn, 4);
    // q: every element 0x3c3c3c3c (~0.0115); K/V random. The work does not
    // depend on the values (only which tiles rescale O does, a little)
    BENCH_CHECK(cudaMemsetAsync((void *)a.q, 0x3c, qn * sizeof(float), cuda_of(b)->stream));
    BENCH_CHECK(cudaGetLastError());
    b->upload(b, d, h, ints * sizeof(int32_t));
    a.k = (const uint16_t *)kv;
    a.v = (const uint16_t *)(kv + cn);
    a.bt.n_tokens = tokens;
    a.bt.n_seqs = 1;
    a.bt.max_query_len = tokens;
    a.bt.max_context_len = tokens;
    a.bt.max_blocks = nblk;
    a.bt.query_start = d;
    a.bt.context_len = d + 2;
    a.bt.block_tables = d + 3;
    a.bt.seq_of_token = d + 3 + nblk;
    a.bt.positions = d + 3 + nblk + tokens;
    a.bt.slot_mapping = d + 3 + nblk + 2 * tokens;
    rc = time_median(b, attn_once, &a, reps, ms, err);
done:
    cudaFree(d);
    cudaFree(kv);
    cudaFree(a.out);
    cudaFree((void *)a.q);
    free(h);
    return rc;
}
