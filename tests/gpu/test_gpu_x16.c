// The 16-bit copies of matmul inputs (bk_x16, backend.h): rmsnorm,
// add_rmsnorm and silu_mul write x16 = their f32 output rounded to nearest
// even, bit for bit (checked with common/dtype.c's rounding on the GPU's own
// f32 output) and close to the CPU backend's copy; with a NULL f32 output
// they write the same copy alone. A matmul handed the copy (x NULL) gives the
// same bits as the same matmul converting x itself, launches no conversion
// kernel (counted under the emulation), and matches the CPU; x16_plan says
// no for decode-sized batches, batch-invariant mode and F32 weights; an fp16
// copy past 65504 fails the step naming the matmul.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gpu_util.h"
#include "harness.h"
#include "util.h"

#define TOL_F32 1e-5
#define TOL_X16_BF16 8e-3 // bf16: 8-bit mantissa, a relative half-ULP of 2^-9 per value
#define TOL_X16_F16 1e-3  // fp16: 11 bits

static float *rand_floats(size_t n, float scale) {
    float *v = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) v[i] = urand() * scale;
    return v;
}

static uint16_t round16(llm_dtype dt, float v) {
    return dt == LLM_BF16 ? f32_to_bf16(v) : f32_to_fp16(v);
}
static float widen16(llm_dtype dt, uint16_t h) {
    return dt == LLM_BF16 ? bf16_to_f32(h) : fp16_to_f32(h);
}

// A random [rows, cols] matrix in dtype, host memory (I8: with row scales).
typedef struct {
    void *data;
    float *scales;
    size_t bytes;
} host_w;

static host_w rand_host_w(llm_dtype dt, int rows, int cols) {
    const size_t n = (size_t)rows * cols;
    host_w m = {malloc(n * dtype_size(dt) + 1), NULL, n * dtype_size(dt)};
    for (size_t i = 0; i < n; i++) {
        const float v = urand();
        if (dt == LLM_I8)
            ((int8_t *)m.data)[i] = (int8_t)(irand(255) - 127);
        else if (dt == LLM_F32)
            ((float *)m.data)[i] = v;
        else
            ((uint16_t *)m.data)[i] = round16(dt, v);
    }
    if (dt == LLM_I8) {
        m.scales = malloc(sizeof(float) * rows);
        for (int r = 0; r < rows; r++) m.scales[r] = (1.5f + urand()) / 127.0f;
    }
    return m;
}

static void free_host_w(host_w *m) {
    free(m->data);
    free(m->scales);
}

// A device copy buffer of n 16-bit elements, poisoned (0xFFFF: NaN in both types).
static uint16_t *x16_buf(backend *g, size_t n) {
    uint16_t *d = g->alloc(g, n * 2);
    if (d) g->memset(g, d, 0xFF, n * 2);
    return d;
}

static uint16_t *x16_out(backend *g, const uint16_t *d, size_t n) {
    uint16_t *h = malloc(n * 2 + 1);
    g->download(g, h, d, n * 2);
    return h;
}

// The GPU's copy h16 against its own f32 output f (rounded on the host: the
// same bits) and against the CPU's copy c16 (close: the f32 values differ in
// the last bits, and a rounding boundary between them moves one ULP).
static void check_copy(llm_dtype dt, const uint16_t *h16, const float *f, const uint16_t *c16,
                       size_t n, const char *what) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += h16[i] != round16(dt, f[i]);
    CHECK_MSG(bad == 0, "%s %s: %zu of %zu copies are not the rounded f32 output", what,
              dtype_name(dt), bad, n);
    float *a = malloc(n * sizeof(float) + 1), *b = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) a[i] = widen16(dt, h16[i]), b[i] = widen16(dt, c16[i]);
    CHECK_REL(a, b, n, dt == LLM_BF16 ? TOL_X16_BF16 : TOL_X16_F16, "%s %s copy against the CPU",
              what, dtype_name(dt));
    free(a), free(b);
}

// rmsnorm and add_rmsnorm of one shape with a copy in dt: with the f32 output
// and without it.
static void check_norms(backend *g, backend *c, llm_dtype dt, int n, int dim) {
    const size_t total = (size_t)n * dim;
    float *x = rand_floats(total, 3.0f), *res = rand_floats(total, 2.0f);
    float *w = rand_floats((size_t)dim, 1.0f), *want = malloc(total * 4);
    float *cres = malloc(total * 4);
    uint16_t *c16 = malloc(total * 2);
    float *gx = gpu_copy_in(g, x, total * 4), *gw = gpu_copy_in(g, w, (size_t)dim * 4);
    float *gout = gpu_poisoned(g, total);
    uint16_t *g16 = x16_buf(g, total);
    bk_x16 gs = {g16, dt, NULL}, cs = {c16, dt, NULL};
    for (int add = 0; add < 2; add++) {
        const char *what = add ? "add_rmsnorm" : "rmsnorm";
        float *gres = gpu_copy_in(g, res, total * 4);
        memcpy(cres, res, total * 4);
        if (add) {
            c->add_rmsnorm(c, want, cres, x, w, n, dim, 1e-6f, &cs);
            g->add_rmsnorm(g, gout, gres, gx, gw, n, dim, 1e-6f, &gs);
        } else {
            c->rmsnorm(c, want, x, w, n, dim, 1e-6f, &cs);
            g->rmsnorm(g, gout, gx, gw, n, dim, 1e-6f, &gs);
        }
        float *got = gpu_copy_out(g, gout, total);
        uint16_t *h16 = x16_out(g, g16, total);
        CHECK_REL(got, want, total, TOL_F32, "%s %dx%d f32 output", what, n, dim);
        check_copy(dt, h16, got, c16, total, what);
        // no f32 output: the same copy (and residual) alone
        g->upload(g, gres, res, total * 4);
        g->memset(g, g16, 0xFF, total * 2);
        if (add)
            g->add_rmsnorm(g, NULL, gres, gx, gw, n, dim, 1e-6f, &gs);
        else
            g->rmsnorm(g, NULL, gx, gw, n, dim, 1e-6f, &gs);
        uint16_t *alone = x16_out(g, g16, total);
        CHECK_MSG(memcmp(alone, h16, total * 2) == 0, "%s %s %dx%d: the copy alone differs", what,
                  dtype_name(dt), n, dim);
        if (add) {
            float *r = gpu_copy_out(g, gres, total);
            CHECK_REL(r, cres, total, 0.0, "add_rmsnorm residual without f32 output");
            free(r);
        }
        free(got), free(h16), free(alone);
        g->free(g, gres);
    }
    g->free(g, gx), g->free(g, gw), g->free(g, gout), g->free(g, g16);
    free(x), free(res), free(w), free(want), free(cres), free(c16);
}

// silu_mul over a fused gate|up row layout with a copy in dt, with and
// without the f32 output.
static void check_silu(backend *g, backend *c, llm_dtype dt, int n, int hidden) {
    const size_t tot = (size_t)n * hidden;
    float *gu = rand_floats(2 * tot, 6.0f), *want = malloc(tot * 4);
    uint16_t *c16 = malloc(tot * 2);
    float *ggu = gpu_copy_in(g, gu, 2 * tot * 4), *gout = gpu_poisoned(g, tot);
    uint16_t *g16 = x16_buf(g, tot);
    bk_x16 gs = {g16, dt, NULL}, cs = {c16, dt, NULL};
    c->silu_mul(c, want, gu, gu + hidden, n, hidden, 2 * hidden, &cs);
    g->silu_mul(g, gout, ggu, ggu + hidden, n, hidden, 2 * hidden, &gs);
    float *got = gpu_copy_out(g, gout, tot);
    uint16_t *h16 = x16_out(g, g16, tot);
    CHECK_REL(got, want, tot, TOL_F32, "silu_mul %dx%d f32 output", n, hidden);
    check_copy(dt, h16, got, c16, tot, "silu_mul");
    g->memset(g, g16, 0xFF, tot * 2);
    g->silu_mul(g, NULL, ggu, ggu + hidden, n, hidden, 2 * hidden, &gs);
    uint16_t *alone = x16_out(g, g16, tot);
    CHECK_MSG(memcmp(alone, h16, tot * 2) == 0, "silu_mul %s %dx%d: the copy alone differs",
              dtype_name(dt), n, hidden);
    free(got), free(h16), free(alone), free(gu), free(want), free(c16);
    g->free(g, ggu), g->free(g, gout), g->free(g, g16);
}

TEST(gpu_op_x16_copies_of_norms_and_silu_mul) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const llm_dtype dts[] = {LLM_BF16, LLM_F16};
    // float4 paths (dim % 4 == 0), scalar paths (odd), a row re-read (> 4096)
    const int shapes[][2] = {{13, 64}, {11, 37}, {3, 4100}};
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++) {
            check_norms(g, c, dts[di], shapes[si][0], shapes[si][1]);
            check_silu(g, c, dts[di], shapes[si][0], shapes[si][1]);
        }
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// The copy a matmul of w over n rows reads, written by rmsnorm (weights 1)
// from x [n, cols] into gx16, with the f32 normed rows into gxn.
static int plan_and_write(backend *g, bk_x16 *s, void *gx16, float *gxn, const float *gx,
                          const float *gones, const bk_matrix *w, int n) {
    g->op_layer = 2;
    g->op_name = "test_proj";
    if (!g->x16_plan(g, s, gx16, w, n)) return 0;
    g->rmsnorm(g, gxn, gx, gones, n, w->cols, 1e-6f, s);
    return 1;
}

// One matrix: the matmul on the copy against the matmul converting x itself
// (the same bits) and against the CPU; no conversion kernel launched.
static void check_matmul_x16(backend *g, backend *c, llm_dtype dt, int rows, int cols, int n) {
    const size_t nx = (size_t)n * cols, no = (size_t)n * rows;
    float *x = rand_floats(nx, 2.0f), *ones = malloc(sizeof(float) * cols);
    for (int i = 0; i < cols; i++) ones[i] = 1.0f;
    float *bias = rand_floats((size_t)rows, 1.0f);
    host_w hm = rand_host_w(dt, rows, cols);
    bk_matrix cw = {hm.data, dt, rows, cols, hm.scales}, gw = cw;
    gw.data = gpu_copy_in(g, hm.data, hm.bytes);
    gw.scales = hm.scales ? gpu_copy_in(g, hm.scales, sizeof(float) * rows) : NULL;
    float *gx = gpu_copy_in(g, x, nx * 4), *gones = gpu_copy_in(g, ones, (size_t)cols * 4);
    float *gbias = gpu_copy_in(g, bias, (size_t)rows * 4), *gxn = gpu_poisoned(g, nx);
    float *ga = gpu_poisoned(g, no), *gb = gpu_poisoned(g, no);
    void *g16 = x16_buf(g, nx);
    bk_x16 s;
    const int planned = plan_and_write(g, &s, g16, gxn, gx, gones, &gw, n);
    const llm_dtype want_dt = dt == LLM_F32                             ? (llm_dtype)0
                              : dt == LLM_BF16 && g->info.cc_major >= 8 ? LLM_BF16
                                                                        : LLM_F16;
    CHECK_MSG(planned == (want_dt != 0) && (!planned || s.dtype == want_dt),
              "x16_plan %s n=%d: %d (%s), want %s", dtype_name(dt), n, planned,
              planned ? dtype_name(s.dtype) : "-", want_dt ? dtype_name(want_dt) : "no copy");
    if (planned) {
        const long conv0 = gpu_kernel_launches("convert_kernel");
        g->matmul(g, ga, NULL, &gw, gbias, n, &s);
        const long conv1 = gpu_kernel_launches("convert_kernel");
        CHECK_MSG(conv1 == conv0, "matmul %s on the copy launched %ld conversions", dtype_name(dt),
                  conv1 - conv0);
        g->matmul(g, gb, gxn, &gw, gbias, n, NULL);
        CHECK_MSG(conv0 < 0 || gpu_kernel_launches("convert_kernel") > conv1,
                  "matmul %s on f32 x launched no conversion", dtype_name(dt));
        float *a = gpu_copy_out(g, ga, no), *b = gpu_copy_out(g, gb, no);
        CHECK_MSG(memcmp(a, b, no * 4) == 0, "matmul %s %dx%d n=%d: the copy's result differs",
                  dtype_name(dt), rows, cols, n);
        float *xn = gpu_copy_out(g, gxn, nx), *want = malloc(no * 4);
        c->matmul(c, want, xn, &cw, bias, n, NULL);
        CHECK_REL(a, want, no, want_dt == LLM_BF16 ? 1.5e-2 : 3e-3, "matmul %s on the copy",
                  dtype_name(dt));
        free(a), free(b), free(xn), free(want);
    }
    g->free(g, (void *)gw.data), g->free(g, (void *)gw.scales), g->free(g, gx);
    g->free(g, gones), g->free(g, gbias), g->free(g, gxn), g->free(g, ga), g->free(g, gb);
    g->free(g, g16);
    free(x), free(ones), free(bias), free_host_w(&hm);
}

TEST(gpu_op_matmul_on_x16_copy) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const llm_dtype dts[] = {LLM_F16, LLM_BF16, LLM_I8, LLM_F32};
    for (int di = 0; di < 4; di++) {
        check_matmul_x16(g, c, dts[di], 40, 64, 9);
        check_matmul_x16(g, c, dts[di], 37, 88, 33);
    }
    // no copy: decode-sized batches (the GEMV reads f32), batch-invariant mode
    host_w hm = rand_host_w(LLM_F16, 16, 32);
    bk_matrix w = {gpu_copy_in(g, hm.data, hm.bytes), LLM_F16, 16, 32, NULL};
    void *buf = x16_buf(g, 64 * 32);
    bk_x16 s;
    CHECK(g->x16_plan(g, &s, buf, &w, 8) == 0);
    g->batch_invariant = 1;
    CHECK(g->x16_plan(g, &s, buf, &w, 64) == 0);
    g->batch_invariant = 0;
    // a copy of the wrong type and no f32 input: an error, not a guess
    bk_x16 wrong = {buf, LLM_BF16, NULL};
    float *out = gpu_poisoned(g, 64 * 16);
    g->matmul(g, out, NULL, &w, NULL, 64, &wrong);
    CHECK(g->failed);
    CHECK_CONTAINS(g->error, "no f32 input");
    g->failed = 0;
    g->free(g, (void *)w.data), g->free(g, buf), g->free(g, out);
    free_host_w(&hm);
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

// An fp16 copy of a value past 65504 (silu(300) x 300 = 90000) fails the next
// sync naming the matmul it was planned for; values in range do not.
TEST(gpu_op_x16_fp16_overflow_names_the_matmul) {
    backend *g = gpu_backend();
    if (!g) return;
    const int n = 12, hidden = 16, cols = hidden;
    host_w hm = rand_host_w(LLM_F16, 8, cols);
    bk_matrix w = {gpu_copy_in(g, hm.data, hm.bytes), LLM_F16, 8, cols, NULL};
    float gu[12 * 32];
    for (int big = 0; big < 2; big++) {
        for (int i = 0; i < n * 2 * hidden; i++) gu[i] = big && i == 40 ? 300.0f : 3.0f;
        for (int i = 0; i < n; i++) gu[i * 2 * hidden + hidden + 8] = big ? 300.0f : 3.0f;
        float *ggu = gpu_copy_in(g, gu, sizeof gu);
        void *buf = x16_buf(g, (size_t)n * cols);
        bk_x16 s;
        g->op_layer = 3;
        g->op_name = "down_proj";
        CHECK(g->x16_plan(g, &s, buf, &w, n) == 1 && s.dtype == LLM_F16 && s.ovf);
        g->silu_mul(g, NULL, ggu, ggu + hidden, n, hidden, 2 * hidden, &s);
        g->sync(g);
        if (big) {
            CHECK_MSG(g->failed, "an fp16 copy of 90000 did not fail the step");
            CHECK_CONTAINS(g->error, "fp16 overflow");
            CHECK_CONTAINS(g->error, "layer 3 down_proj");
        } else {
            CHECK_MSG(!g->failed, "in-range copy failed: %s", g->error);
        }
        g->failed = 0;
        g->free(g, ggu), g->free(g, buf);
    }
    g->free(g, (void *)w.data);
    free_host_w(&hm);
}

// The dequantizing tensor-core GEMM (cuda_gemm_dq.cu: I8 weights, and BF16 on
// sm_75): x already exact in the GEMM's 16-bit type, so the CPU matmul of the same f32 values is
// the reference up to summation order (1e-5, where the fp16 activation
// tolerance would hide a wrong tile); rows and x rows that are not multiples
// of the 64 x 64 tiles, bias or not; nothing written past the output; up to
// 128 rows of x the kernel runs and no weight tile is dequantized into the
// workspace (counted under the emulation), past that the cuBLAS tiles do.
TEST(gpu_op_matmul_dequant_gemm_tiles) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const llm_dtype dts[] = {LLM_I8, LLM_BF16};
    const int shapes[][2] = {{64, 64}, {37, 96}, {130, 256}}, ns[] = {9, 64, 70, 128, 129};
    const int dq_bf16 = g->info.cc_major < 8; // bf16 multiplied as fp16 only there
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++)
            for (int ni = 0; ni < 5; ni++) {
                const llm_dtype dt = dts[di];
                const int rows = shapes[si][0], cols = shapes[si][1], n = ns[ni];
                const size_t no = (size_t)n * rows;
                float *x = rand_floats((size_t)n * cols, 2.0f), *bias = rand_floats(rows, 1.0f);
                // exact in the GEMM's activation type (bf16 with bf16 tensor cores)
                const llm_dtype at = dt == LLM_BF16 && !dq_bf16 ? LLM_BF16 : LLM_F16;
                for (int i = 0; i < n * cols; i++) x[i] = widen16(at, round16(at, x[i]));
                host_w hm = rand_host_w(dt, rows, cols);
                bk_matrix cw = {hm.data, dt, rows, cols, hm.scales}, gw = cw;
                gw.data = gpu_copy_in(g, hm.data, hm.bytes);
                gw.scales = hm.scales ? gpu_copy_in(g, hm.scales, sizeof(float) * rows) : NULL;
                float *gx = gpu_copy_in(g, x, sizeof(float) * n * cols);
                float *gb = gpu_copy_in(g, bias, sizeof(float) * rows);
                float *gout = gpu_poisoned(g, no + 64), *want = malloc(no * 4);
                const int with_bias = (si + ni) % 2;
                const long k0 = gpu_kernel_launches("gemm_dq_kernel");
                const long t0 = gpu_kernel_launches("dequant_f16_kernel");
                c->matmul(c, want, x, &cw, with_bias ? bias : NULL, n, NULL);
                g->matmul(g, gout, gx, &gw, with_bias ? gb : NULL, n, NULL);
                float *got = gpu_copy_out(g, gout, no + 64);
                CHECK_REL(got, want, no, 1e-5, "%s %dx%d n=%d bias=%d", dtype_name(dt), rows, cols,
                          n, with_bias);
                int tail = 1;
                for (int i = 0; got && i < 64; i++) tail &= isnan(got[no + i]) != 0;
                CHECK_MSG(tail, "%s %dx%d n=%d: written past the output", dtype_name(dt), rows,
                          cols, n);
                const long k = gpu_kernel_launches("gemm_dq_kernel") - k0;
                const long t = gpu_kernel_launches("dequant_f16_kernel") - t0;
                const int want_dq = (dt == LLM_I8 || dq_bf16) && n <= 128;
                const int want_tiles = (dt == LLM_I8 || dq_bf16) && n > 128;
                CHECK_MSG(k0 < 0 || (k == want_dq && (t > 0) == want_tiles),
                          "%s %dx%d n=%d: %ld gemm_dq_kernel, %ld dequant_f16_kernel launches",
                          dtype_name(dt), rows, cols, n, k, t);
                free(got), free(want), free(x), free(bias), free_host_w(&hm);
                g->free(g, (void *)gw.data), g->free(g, (void *)gw.scales), g->free(g, gx);
                g->free(g, gb), g->free(g, gout);
            }
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}
