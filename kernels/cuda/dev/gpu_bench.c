// gpu_bench.c - gpu_bench: the two ceilings of the GPU (device-to-device
// copy bandwidth, cuBLAS fp16 GEMM rate) and the backend's matmul at every
// matrix shape of Llama-3-8B and Llama-3.2-1B, bf16 and int8, n = 1 .. 8, as
// time and as a fraction of the copy bandwidth (decode is bandwidth-bound:
// that fraction is the figure to raise; bench/NOTES.md has the predictions).
//
// Then int8 GEMMs of 16 .. 256 rows (Llama-3-8B gate|up and down) on the
// dequantizing tensor-core kernel and on cuBLAS over dequantized tiles
// (LLM_CUDA_DQ_MAX_N, the switch between them), as time and TFLOP/s.
//
// Then the attention of a 2048-token causal prompt at Llama-3-8B's shapes (32
// heads of 128, 8 kv heads, fp16 K/V) on the tensor-core prefill kernel and
// on the fp32 one (LLM_CUDA_TC_ATTN=0), as time and as a fraction of the GEMM
// rate measured above.
//
//   build/bin/gpu_bench [--reps N]
//
// Exits 1 with the reason when there is no usable GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda/cuda_backend.h"
#include "cuda/dev/cuda_bench.h"
#include "util.h"

#define COPY_BYTES (1ull << 30)
#define GEMM_SIZE 8192
#define ROTATE_BYTES (512ull << 20) // weight copies used in turn: far more than any L2
#define MAX_COPIES 8
#define GEMV_NS 8 // x rows measured: 1 .. GEMV_NS (the GEMV path)

typedef struct {
    const char *name;
    int rows, cols;
} shape;

// Every matrix of a Llama-3-8B and a Llama-3.2-1B decode step.
static const shape SHAPES[] = {
    {"8B q/o", 4096, 4096},       {"8B k/v", 1024, 4096},       {"8B gate/up", 14336, 4096},
    {"8B down", 4096, 14336},     {"8B lm_head", 128256, 4096}, {"1B q/o", 2048, 2048},
    {"1B k/v", 512, 2048},        {"1B gate/up", 8192, 2048},   {"1B down", 2048, 8192},
    {"1B lm_head", 128256, 2048},
};

// The backend's matmul of one shape at n = 1 .. GEMV_NS: microseconds, GB/s
// (weights + x + out bytes over the time) and the fraction of copy bandwidth,
// the weights rotated through enough copies to defeat the L2.
static int bench_shape(backend *b, llm_dtype dt, const shape *sh, int reps, double copy_gbps) {
    char err[LLM_ERR_LEN];
    const int rows = sh->rows, cols = sh->cols;
    const size_t w_bytes = (size_t)rows * cols * dtype_size(dt);
    int copies = (int)((ROTATE_BYTES + w_bytes - 1) / w_bytes);
    copies = copies < 2 ? 2 : copies > MAX_COPIES ? MAX_COPIES : copies;
    unsigned char *host = malloc(w_bytes);
    float *hscales = malloc(sizeof(float) * rows), *hx = malloc(sizeof(float) * GEMV_NS * cols);
    if (!host || !hscales || !hx) return fprintf(stderr, "out of host memory\n"), -1;
    unsigned s = 12345;
    for (size_t i = 0; i < w_bytes / 2; i++) { // random bits; bf16/f16 exponents kept small
        s = s * 1664525u + 1013904223u;
        uint16_t v = (uint16_t)(s >> 16);
        if (dt == LLM_BF16) v = (v & 0x807f) | 0x3c00;
        if (dt == LLM_F16) v = (v & 0x83ff) | 0x3000;
        memcpy(host + 2 * i, &v, 2);
    }
    for (int r = 0; r < rows; r++) hscales[r] = 0.01f;
    for (int i = 0; i < GEMV_NS * cols; i++) hx[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
    bk_matrix w[MAX_COPIES];
    float *dx = b->alloc(b, sizeof(float) * GEMV_NS * cols),
          *dout = b->alloc(b, sizeof(float) * GEMV_NS * rows);
    float *dscales = b->alloc(b, sizeof(float) * rows);
    int ok = dx && dout && dscales;
    for (int k = 0; k < copies; k++) {
        void *d = ok ? b->alloc(b, w_bytes) : NULL;
        ok = ok && d;
        if (d) b->upload(b, d, host, w_bytes);
        w[k] = (bk_matrix){d, dt, rows, cols, dt == LLM_I8 ? dscales : NULL};
    }
    int rc = ok ? 0 : -1;
    double us[GEMV_NS], frac[GEMV_NS];
    if (!ok) {
        fprintf(stderr, "device out of memory\n");
    } else {
        b->upload(b, dx, hx, sizeof(float) * GEMV_NS * cols);
        b->upload(b, dscales, hscales, sizeof(float) * rows);
    }
    for (int n = 1; n <= GEMV_NS && !rc; n++) {
        double ms = 0;
        rc = cuda_bench_matmul(b, w, copies, dx, dout, n, reps, &ms, err);
        if (rc) {
            fprintf(stderr, "matmul %s n=%d: %s\n", sh->name, n, err);
            break;
        }
        const double bytes = (double)w_bytes + 4.0 * n * cols + 4.0 * n * rows;
        us[n - 1] = ms * 1e3;
        frac[n - 1] = bytes / (ms * 1e-3) / 1e9 / copy_gbps;
    }
    if (!rc) {
        printf("%-11s %-4s %6d x %-6d %7.1f MB  us:", sh->name, dtype_name(dt), rows, cols,
               w_bytes / 1e6);
        for (int n = 0; n < GEMV_NS; n++) printf(" %7.1f", us[n]);
        printf("\n%-43s %%copy:", "");
        for (int n = 0; n < GEMV_NS; n++) printf(" %6.1f%%", 100.0 * frac[n]);
        printf("   (%.0f GB/s at n=1)\n", frac[0] * copy_gbps);
    }
    for (int k = 0; k < copies; k++) b->free(b, (void *)w[k].data);
    b->free(b, dx), b->free(b, dout), b->free(b, dscales);
    free(host), free(hscales), free(hx);
    return rc;
}

// int8 matmuls of 16 .. 256 rows, each on cuda_gemm_dq.cu's kernel and on the
// cuBLAS tiles (LLM_CUDA_DQ_MAX_N set to a huge value, then 0), weights
// rotated through copies that defeat the L2.
static int bench_int8_gemm(backend *b, int reps) {
    static const shape sh[] = {{"8B gate/up", 14336, 4096}, {"8B down", 4096, 14336}};
    static const int ns[] = {16, 32, 64, 128, 256};
    enum { MAX_N = 256 };
    char err[LLM_ERR_LEN];
    int rc = 0;
    printf("\nint8 GEMM, rows of x: us and TFLOP/s on the dequantizing tensor-core kernel "
           "(dq) / cuBLAS on dequantized tiles (tiles)\n");
    for (int k = 0; k < 2 && !rc; k++) {
        const int rows = sh[k].rows, cols = sh[k].cols;
        const size_t w_bytes = (size_t)rows * cols;
        const int copies = 4; // 4 x 58.7 MB: past any L2
        signed char *host = malloc(w_bytes);
        float *hs = malloc(sizeof(float) * rows), *hx = malloc(sizeof(float) * MAX_N * cols);
        if (!host || !hs || !hx) return fprintf(stderr, "out of host memory\n"), -1;
        for (size_t i = 0; i < w_bytes; i++) host[i] = (signed char)(i * 7919 % 255 - 127);
        for (int r = 0; r < rows; r++) hs[r] = 0.01f;
        for (int i = 0; i < MAX_N * cols; i++) hx[i] = (float)((i * 104729) % 2001 - 1000) / 1e3f;
        float *dx = b->alloc(b, sizeof(float) * MAX_N * cols);
        float *dout = b->alloc(b, sizeof(float) * MAX_N * rows), *ds = b->alloc(b, 4 * rows);
        bk_matrix w[4];
        int ok = dx && dout && ds;
        for (int c = 0; c < copies; c++) {
            void *d = ok ? b->alloc(b, w_bytes) : NULL;
            ok = ok && d;
            if (d) b->upload(b, d, host, w_bytes);
            w[c] = (bk_matrix){d, LLM_I8, rows, cols, ds};
        }
        if (ok) {
            b->upload(b, dx, hx, sizeof(float) * MAX_N * cols);
            b->upload(b, ds, hs, sizeof(float) * rows);
        } else {
            fprintf(stderr, "device out of memory\n");
            rc = -1;
        }
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0] && !rc; ni++) {
            double ms[2] = {0, 0};
            for (int tiles = 0; tiles < 2 && !rc; tiles++) {
                setenv("LLM_CUDA_DQ_MAX_N", tiles ? "0" : "1000000", 1);
                rc = cuda_bench_matmul(b, w, copies, dx, dout, ns[ni], reps, &ms[tiles], err);
                if (rc) fprintf(stderr, "int8 gemm %s n=%d: %s\n", sh[k].name, ns[ni], err);
            }
            const double fl = 2.0 * ns[ni] * (double)rows * cols;
            if (!rc)
                printf("  %-10s n=%-4d dq %8.1f us %6.1f TFLOP/s   tiles %8.1f us %6.1f TFLOP/s\n",
                       sh[k].name, ns[ni], ms[0] * 1e3, fl / (ms[0] * 1e-3) / 1e12, ms[1] * 1e3,
                       fl / (ms[1] * 1e-3) / 1e12);
        }
        unsetenv("LLM_CUDA_DQ_MAX_N");
        for (int c = 0; c < copies; c++) b->free(b, (void *)w[c].data);
        b->free(b, dx), b->free(b, dout), b->free(b, ds);
        free(host), free(hs), free(hx);
    }
    return rc;
}

// The prefill attention with and without the tensor-core kernel.
static int bench_attention(backend *b, int reps, double gemm_tflops) {
    char err[LLM_ERR_LEN];
    const int T = 2048, H = 32, KVH = 8, HD = 128;
    const double flops = 4.0 * HD * H * (double)T * (T + 1) / 2; // causal QK^T and PV
    printf("\nprefill attention, %d-token causal prompt, %d/%d heads of %d, fp16 K/V "
           "(%.1f GFLOP per layer):\n",
           T, H, KVH, HD, flops / 1e9);
    int rc = 0;
    for (int fp32 = 0; fp32 < 2 && !rc; fp32++) {
        if (fp32) setenv("LLM_CUDA_TC_ATTN", "0", 1);
        double ms = 0;
        rc = cuda_bench_attention(b, T, H, KVH, HD, reps, &ms, err);
        if (rc)
            fprintf(stderr, "attention: %s\n", err);
        else
            printf("  %-34s %8.1f us  %6.1f TFLOP/s  %5.1f%% of the GEMM rate\n",
                   fp32 ? "fp32 kernel (LLM_CUDA_TC_ATTN=0)" : "tensor cores", ms * 1e3,
                   flops / (ms * 1e-3) / 1e12, 100.0 * flops / (ms * 1e-3) / 1e12 / gemm_tflops);
    }
    unsetenv("LLM_CUDA_TC_ATTN");
    return rc;
}

int main(int argc, char **argv) {
    int reps = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: gpu_bench [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    char err[LLM_ERR_LEN];
    device_info dev;
    backend *b = NULL;
    if (device_select(DEVICE_CUDA, &dev, err) == 0) b = backend_create(&dev, err);
    if (!b) {
        fprintf(stderr, "gpu_bench: no CUDA device: %s\n", err);
        return 1;
    }
    printf("device: %s (sm_%d%d, %d SMs)\n", dev.name, dev.cc_major, dev.cc_minor, dev.cores);
    double copy_gbps = 0, tflops = 0;
    if (cuda_bench_copy(b, COPY_BYTES, reps, &copy_gbps, err)) {
        fprintf(stderr, "copy: %s\n", err);
        b->destroy(b);
        return 1;
    }
    printf("copy D2D 1 GiB: %.1f GB/s (read + write)\n", copy_gbps);
    if (cuda_bench_gemm_f16(b, GEMM_SIZE, GEMM_SIZE, GEMM_SIZE, reps, &tflops, err))
        fprintf(stderr, "gemm: %s\n", err);
    else
        printf("cuBLAS fp16 GEMM %d^3 (fp32 accumulate, f32 out): %.1f TFLOP/s\n", GEMM_SIZE,
               tflops);
    printf("\nmatmul, n = 1 .. %d rows of x (the GEMV path): microseconds per call, then the "
           "bytes moved (weights + x + out) over the time as a fraction of copy bandwidth\n",
           GEMV_NS);
    static const llm_dtype dts[] = {LLM_BF16, LLM_I8};
    int rc = 0;
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof SHAPES / sizeof SHAPES[0]; k++)
            rc |= bench_shape(b, dts[d], &SHAPES[k], reps, copy_gbps);
    rc |= bench_int8_gemm(b, reps);
    rc |= bench_attention(b, reps, tflops > 0 ? tflops : 800.0);
    b->destroy(b);
    return rc ? 1 : 0;
}
