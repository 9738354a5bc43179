// Every op of the CUDA backend against the CPU backend (the reference) on
// fresh random inputs of several shapes, outputs poisoned with NaN first.
// Bounds are ||gpu - cpu|| / ||cpu||: fp32 arithmetic 1e-5; matmuls through
// cuBLAS on fp16 activations 3e-3, on bf16 activations 1.5e-2.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gpu_util.h"
#include "harness.h"
#include "util.h"

#define TOL_F32 1e-5
#define TOL_F16_ACT 3e-3
#define TOL_BF16_ACT 1.5e-2

static float *rand_floats(size_t n, float scale) {
    float *v = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) v[i] = urand() * scale;
    return v;
}

// A random [rows, cols] matrix in dtype (I8: with scales), host memory.
typedef struct {
    void *data;
    float *scales;
    size_t bytes;
} host_matrix;

static host_matrix rand_matrix(llm_dtype dt, int rows, int cols) {
    host_matrix m = {0};
    size_t n = (size_t)rows * cols;
    m.bytes = n * dtype_size(dt);
    m.data = malloc(m.bytes + 16);
    for (size_t i = 0; i < n; i++) {
        float v = urand();
        switch (dt) {
        case LLM_F16:
            ((uint16_t *)m.data)[i] = f32_to_fp16(v);
            break;
        case LLM_BF16:
            ((uint16_t *)m.data)[i] = f32_to_bf16(v);
            break;
        case LLM_I8:
            ((int8_t *)m.data)[i] = (int8_t)(irand(255) - 127);
            break;
        default:
            ((float *)m.data)[i] = v;
        }
    }
    if (dt == LLM_I8) {
        m.scales = malloc(sizeof(float) * rows);
        for (int r = 0; r < rows; r++) m.scales[r] = (1.5f + urand()) / 127.0f;
    }
    return m;
}

static void free_matrix(host_matrix *m) {
    free(m->data);
    free(m->scales);
}

// Ends a test: the backend must not have recorded an error.
static void check_backend(backend *g) {
    CHECK_MSG(!g->failed, "backend error: %s", g->error);
    g->failed = 0;
}

TEST(gpu_op_embedding_every_dtype) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const llm_dtype dts[] = {LLM_F16, LLM_BF16, LLM_F32, LLM_I8};
    const int dims[] = {64, 77}, ns[] = {1, 9};
    for (int di = 0; di < 4; di++)
        for (int k = 0; k < 2; k++) {
            const int vocab = 301, dim = dims[k], n = ns[k];
            host_matrix hm = rand_matrix(dts[di], vocab, dim);
            int32_t ids[9];
            for (int i = 0; i < n; i++) ids[i] = irand(vocab);
            bk_matrix ct = {hm.data, dts[di], vocab, dim, hm.scales};
            bk_matrix gt = ct;
            gt.data = gpu_copy_in(g, hm.data, hm.bytes);
            gt.scales = hm.scales ? gpu_copy_in(g, hm.scales, sizeof(float) * vocab) : NULL;
            int32_t *gids = gpu_copy_in(g, ids, sizeof ids);
            float *want = malloc(sizeof(float) * n * dim), *gout = gpu_poisoned(g, (size_t)n * dim);
            c->embedding(c, want, &ct, ids, n);
            g->embedding(g, gout, &gt, gids, n);
            float *got = gpu_copy_out(g, gout, (size_t)n * dim);
            CHECK_REL(got, want, (size_t)n * dim, 0.0, "embedding %s dim %d", dtype_name(dts[di]),
                      dim);
            free(got), free(want);
            g->free(g, gout), g->free(g, gids), g->free(g, (void *)gt.data);
            g->free(g, (void *)gt.scales);
            free_matrix(&hm);
        }
    check_backend(g);
}

TEST(gpu_op_rmsnorm_and_add_rmsnorm) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    // float4 and scalar paths; rows past what a thread keeps in registers
    // (4 x 256 float4s, 1024 floats) read again (4100, 4099)
    const int shapes[][2] = {{1, 64},    {7, 1000}, {33, 4096}, {5, 17},
                             {300, 128}, {2, 4100}, {3, 4099}};
    for (int si = 0; si < 7; si++) {
        const int n = shapes[si][0], dim = shapes[si][1];
        const size_t total = (size_t)n * dim;
        float *x = rand_floats(total, 3.0f), *res = rand_floats(total, 2.0f);
        float *w = rand_floats((size_t)dim, 1.0f);
        float *gx = gpu_copy_in(g, x, total * 4), *gw = gpu_copy_in(g, w, (size_t)dim * 4);
        float *gres = gpu_copy_in(g, res, total * 4), *gout = gpu_poisoned(g, total);
        float *want = malloc(total * 4), *cres = malloc(total * 4);
        // rmsnorm into a fresh buffer, then in place (out aliasing x)
        c->rmsnorm(c, want, x, w, n, dim, 1e-5f, NULL);
        g->rmsnorm(g, gout, gx, gw, n, dim, 1e-5f, NULL);
        float *got = gpu_copy_out(g, gout, total);
        CHECK_REL(got, want, total, TOL_F32, "rmsnorm %dx%d", n, dim);
        free(got);
        g->rmsnorm(g, gx, gx, gw, n, dim, 1e-5f, NULL);
        got = gpu_copy_out(g, gx, total);
        CHECK_REL(got, want, total, TOL_F32, "rmsnorm in place %dx%d", n, dim);
        free(got);
        // add_rmsnorm with out aliasing x
        g->upload(g, gx, x, total * 4);
        memcpy(cres, res, total * 4);
        c->add_rmsnorm(c, want, cres, x, w, n, dim, 1e-6f, NULL);
        g->add_rmsnorm(g, gx, gres, gx, gw, n, dim, 1e-6f, NULL);
        got = gpu_copy_out(g, gx, total);
        CHECK_REL(got, want, total, TOL_F32, "add_rmsnorm out %dx%d", n, dim);
        free(got);
        got = gpu_copy_out(g, gres, total);
        CHECK_REL(got, cres, total, 0.0, "add_rmsnorm residual %dx%d", n, dim);
        free(got);
        g->free(g, gx), g->free(g, gw), g->free(g, gres), g->free(g, gout);
        free(x), free(res), free(w), free(want), free(cres);
    }
    check_backend(g);
}

// The tolerance of a matmul of n rows with dtype weights on device g.
static double matmul_tol(const backend *g, llm_dtype dt, int n) {
    if (n <= 8 || dt == LLM_F32) return TOL_F32; // GEMV or cublasSgemm: fp32 throughout
    if (dt == LLM_BF16 && g->info.cc_major >= 8) return TOL_BF16_ACT;
    return TOL_F16_ACT; // fp16 activations (F16, I8, BF16 converted on sm_75)
}

// One matrix of dtype dt [rows, cols] against the CPU for each n of ns (at
// most 70 rows of x): within matmul_tol; on the GEMV path (n <= 8) each row
// of the batch must also have the same bits as that row alone (n = 1).
// x_offset floats shift x off 16-byte alignment (the scalar GEMV staging).
static void check_matmul(backend *g, backend *c, llm_dtype dt, int rows, int cols, const int *ns,
                         int n_ns, int x_offset, int bias_seed) {
    enum { MAX_X_ROWS = 70 };
    host_matrix hm = rand_matrix(dt, rows, cols);
    float *bias = rand_floats((size_t)rows, 1.0f);
    float *x = rand_floats((size_t)MAX_X_ROWS * cols, 1.0f);
    bk_matrix cw = {hm.data, dt, rows, cols, hm.scales};
    bk_matrix gw = cw;
    gw.data = gpu_copy_in(g, hm.data, hm.bytes);
    gw.scales = hm.scales ? gpu_copy_in(g, hm.scales, sizeof(float) * rows) : NULL;
    float *gbias = gpu_copy_in(g, bias, sizeof(float) * rows);
    float *gxbase = gpu_poisoned(g, (size_t)MAX_X_ROWS * cols + x_offset);
    float *gx = gxbase + x_offset;
    g->upload(g, gx, x, sizeof(float) * MAX_X_ROWS * cols);
    float *want = malloc(sizeof(float) * MAX_X_ROWS * rows);
    float *one = malloc(sizeof(float) * rows);
    for (int ni = 0; ni < n_ns; ni++) {
        const int n = ns[ni];
        const int with_bias = (ni + bias_seed) % 2;
        const size_t total = (size_t)n * rows;
        float *gout = gpu_poisoned(g, total);
        c->matmul(c, want, x, &cw, with_bias ? bias : NULL, n, NULL);
        g->matmul(g, gout, gx, &gw, with_bias ? gbias : NULL, n, NULL);
        float *got = gpu_copy_out(g, gout, total);
        CHECK_REL(got, want, total, matmul_tol(g, dt, n), "matmul %s %dx%d n=%d bias=%d x+%d",
                  dtype_name(dt), rows, cols, n, with_bias, x_offset);
        // the GEMV path: a row's result is the same bits alone as in the batch
        if (n <= 8)
            for (int t = 0; t < n; t++) {
                g->memset(g, gout, 0xFF, sizeof(float) * rows);
                g->matmul(g, gout, gx + (size_t)t * cols, &gw, with_bias ? gbias : NULL, 1, NULL);
                g->download(g, one, gout, sizeof(float) * rows);
                CHECK_MSG(memcmp(one, got + (size_t)t * rows, sizeof(float) * rows) == 0,
                          "matmul %s %dx%d x+%d: row %d of n=%d differs from n=1", dtype_name(dt),
                          rows, cols, x_offset, t, n);
            }
        free(got);
        g->free(g, gout);
    }
    g->free(g, (void *)gw.data), g->free(g, (void *)gw.scales);
    g->free(g, gbias), g->free(g, gxbase);
    free(want), free(one), free(bias), free(x);
    free_matrix(&hm);
}

TEST(gpu_op_matmul_every_dtype_and_path) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const llm_dtype dts[] = {LLM_F16, LLM_BF16, LLM_F32, LLM_I8};
    // odd sizes (scalar path), multiples of 8 and 16 (16-byte loads), one
    // wide enough to stage x in several passes
    const int shapes[][2] = {{37, 83}, {64, 128}, {96, 264}, {257, 1024}, {130, 9000}};
    const int ns[] = {1, 2, 3, 5, 8, 9, 17, 70};
    const int n_shapes = gpu_fast() ? 3 : 5, n_ns = gpu_fast() ? 6 : 8;
    for (int di = 0; di < 4; di++)
        for (int si = 0; si < n_shapes; si++)
            check_matmul(g, c, dts[di], shapes[si][0], shapes[si][1], ns, n_ns, 0, si);
    check_backend(g);
}

// The GEMV's own cases, small enough for the emulation, on the GEMV path
// (and n = 9, cuBLAS): column splits with a partial last chunk and trailing
// splits left empty (70 x 4104: 17 chunks of 256 bf16 in 8 splits of 3),
// splits of more chunks than one pass of x holds (8 x 16400: 33 int8 chunks
// of 512 in 16 splits of 3, two staged per pass at n = 8; 65 bf16 chunks in
// 16 splits of 5, four per pass), and x off 16-byte alignment (the scalar
// kernel). Every n from 1 to 8 for bf16 and int8 (each rows-per-warp and
// loads-per-lane configuration); F16 and F32 at the n where it changes.
TEST(gpu_op_matmul_gemv_splits_passes_alignment) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const int shapes[][2] = {{70, 4104}, {8, 16400}};
    const int all_ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, some_ns[] = {1, 3, 5, 8};
    for (int si = 0; si < 2; si++) {
        const int rows = shapes[si][0], cols = shapes[si][1];
        check_matmul(g, c, LLM_BF16, rows, cols, all_ns, 9, 0, si);
        check_matmul(g, c, LLM_I8, rows, cols, all_ns, 9, 0, si);
        check_matmul(g, c, LLM_F16, rows, cols, some_ns, 4, 0, si);
        check_matmul(g, c, LLM_F32, rows, cols, some_ns, 4, 0, si);
    }
    check_matmul(g, c, LLM_BF16, 40, 1032, some_ns, 4, 1, 0);
    check_matmul(g, c, LLM_I8, 40, 1040, some_ns, 4, 3, 1);
    check_backend(g);
}

// Weights at an address that is not 16-byte aligned take the scalar GEMV loads.
TEST(gpu_op_matmul_misaligned_weights) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const int rows = 40, cols = 256, n = 3;
    host_matrix hm = rand_matrix(LLM_F16, rows, cols);
    float *x = rand_floats((size_t)n * cols, 1.0f);
    uint16_t *gbase = g->alloc(g, hm.bytes + 16);
    g->upload(g, gbase + 1, hm.data, hm.bytes);
    bk_matrix cw = {hm.data, LLM_F16, rows, cols, NULL},
              gw = {gbase + 1, LLM_F16, rows, cols, NULL};
    float *gx = gpu_copy_in(g, x, sizeof(float) * n * cols), *gout = gpu_poisoned(g, n * rows);
    float want[3 * 40];
    c->matmul(c, want, x, &cw, NULL, n, NULL);
    g->matmul(g, gout, gx, &gw, NULL, n, NULL);
    float *got = gpu_copy_out(g, gout, (size_t)n * rows);
    CHECK_REL(got, want, (size_t)n * rows, TOL_F32, "misaligned f16 matmul");
    free(got), free(x);
    g->free(g, gbase), g->free(g, gx), g->free(g, gout);
    free_matrix(&hm);
    check_backend(g);
}

TEST(gpu_op_rope) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const int cfg[][3] = {{4, 2, 16}, {8, 8, 64}, {32, 8, 128}, {3, 1, 96}};
    for (int ci = 0; ci < 4; ci++) {
        const int nh = cfg[ci][0], nkv = cfg[ci][1], hd = cfg[ci][2], n = 7;
        const size_t qn = (size_t)n * nh * hd, kn = (size_t)n * nkv * hd;
        float *q = rand_floats(qn, 2.0f), *k = rand_floats(kn, 2.0f);
        float inv[128];
        int32_t pos[7];
        for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
        for (int i = 0; i < n; i++) pos[i] = irand(8192);
        float *gq = gpu_copy_in(g, q, qn * 4), *gk = gpu_copy_in(g, k, kn * 4);
        float *ginv = gpu_copy_in(g, inv, sizeof(float) * hd / 2);
        int32_t *gpos = gpu_copy_in(g, pos, sizeof pos);
        c->rope(c, q, k, pos, inv, n, nh, nkv, hd);
        g->rope(g, gq, gk, gpos, ginv, n, nh, nkv, hd);
        float *got = gpu_copy_out(g, gq, qn);
        CHECK_REL(got, q, qn, TOL_F32, "rope q %d/%d heads of %d", nh, nkv, hd);
        free(got);
        got = gpu_copy_out(g, gk, kn);
        CHECK_REL(got, k, kn, TOL_F32, "rope k %d/%d heads of %d", nh, nkv, hd);
        free(got), free(q), free(k);
        g->free(g, gq), g->free(g, gk), g->free(g, ginv), g->free(g, gpos);
    }
    check_backend(g);
}

TEST(gpu_op_kv_write) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const int cfg[][3] = {{2, 16, 16}, {2, 64, 5}, {8, 128, 32}};
    for (int ci = 0; ci < 6; ci++) {
        const int nkv = cfg[ci % 3][0], hd = cfg[ci % 3][1], bs = cfg[ci % 3][2], nb = 10, n = 13;
        const llm_dtype kvdt = ci < 3 ? LLM_F16 : LLM_BF16;
        const size_t cache_n = (size_t)nb * nkv * bs * hd, kv = (size_t)n * nkv * hd;
        uint16_t *kc = malloc(cache_n * 2), *vc = malloc(cache_n * 2);
        for (size_t i = 0; i < cache_n; i++)
            kc[i] = f32_to_fp16(urand()), vc[i] = f32_to_fp16(urand());
        float *k = rand_floats(kv, 4.0f), *v = rand_floats(kv, 4.0f);
        if (kvdt == LLM_BF16) // past fp16's range: bf16 keeps them finite
            for (size_t i = 0; i < kv; i += 7) k[i] *= 1e5f;
        int32_t slots[13];
        for (int i = 0; i < n; i++) { // distinct slots, a few skipped
            int again;
            do {
                slots[i] = irand(nb * bs);
                again = 0;
                for (int j = 0; j < i; j++) again |= slots[j] == slots[i];
            } while (again);
            if (i % 5 == 3) slots[i] = -1;
        }
        uint16_t *gkc = gpu_copy_in(g, kc, cache_n * 2), *gvc = gpu_copy_in(g, vc, cache_n * 2);
        float *gk = gpu_copy_in(g, k, kv * 4), *gv = gpu_copy_in(g, v, kv * 4);
        int32_t *gs = gpu_copy_in(g, slots, sizeof slots);
        c->kv_write(c, kc, vc, k, v, slots, n, nkv, hd, bs, kvdt, 1.0f, 1.0f);
        g->kv_write(g, gkc, gvc, gk, gv, gs, n, nkv, hd, bs, kvdt, 1.0f, 1.0f);
        uint16_t *got = malloc(cache_n * 2);
        g->download(g, got, gkc, cache_n * 2);
        CHECK_MSG(memcmp(got, kc, cache_n * 2) == 0, "kv_write K, %d heads of %d, block %d, %s",
                  nkv, hd, bs, dtype_name(kvdt));
        g->download(g, got, gvc, cache_n * 2);
        CHECK_MSG(memcmp(got, vc, cache_n * 2) == 0, "kv_write V, %d heads of %d, block %d", nkv,
                  hd, bs);
        free(got), free(kc), free(vc), free(k), free(v);
        g->free(g, gkc), g->free(g, gvc), g->free(g, gk), g->free(g, gv), g->free(g, gs);
    }
    check_backend(g);
}

// K/V cache elements as floats, to compare caches whose values may differ by
// the rounding of a last bit (rope's sin/cos on the device vs the host's).
static float *cache_f32(const void *c, size_t n, llm_dtype dt, float scale) {
    float *f = malloc(n * sizeof(float) + 1);
    const uint16_t *h = c;
    for (size_t i = 0; i < n; i++)
        f[i] = dt == LLM_F8E4M3 ? fp8_e4m3_to_f32(((const uint8_t *)c)[i]) * scale
               : dt == LLM_BF16 ? bf16_to_f32(h[i])
                                : fp16_to_f32(h[i]);
    return f;
}

// The fused q|k|v step against the CPU's, which is built from the separate
// ops (rmsnorm per head, rope, kv_write): q out, and both caches.
static void check_qkv_rope_write(backend *g, backend *c, int nh, int nkv, int hd, int bs, int norm,
                                 llm_dtype kvdt) {
    const int n = 6, nb = 4;
    const size_t row = (size_t)(nh + 2 * nkv) * hd, qn = (size_t)n * nh * hd;
    const size_t cache_n = (size_t)nb * nkv * bs * hd;
    float *qkv = rand_floats(n * row, 3.0f), *qw = rand_floats(hd, 1.0f),
          *kw = rand_floats(hd, 1.0f);
    float inv[256], *want = malloc(qn * 4);
    int32_t pos[6], slots[6] = {3, 0, -1, 9, 14, 5};
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    for (int i = 0; i < n; i++) pos[i] = irand(4096);
    const size_t es = kvdt == LLM_F8E4M3 ? 1 : 2;
    const float ks = kvdt == LLM_F8E4M3 ? 0.5f : 1.0f, vs = kvdt == LLM_F8E4M3 ? 2.0f : 1.0f;
    uint8_t *kc = calloc(cache_n, es), *vc = calloc(cache_n, es);
    uint8_t *gkc = gpu_copy_in(g, kc, cache_n * es), *gvc = gpu_copy_in(g, vc, cache_n * es);
    float *gqkv = gpu_copy_in(g, qkv, n * row * 4), *gq = gpu_poisoned(g, qn);
    float *gqw = gpu_copy_in(g, qw, hd * 4), *gkw = gpu_copy_in(g, kw, hd * 4);
    float *ginv = gpu_copy_in(g, inv, sizeof(float) * hd / 2);
    int32_t *gpos = gpu_copy_in(g, pos, sizeof pos), *gs = gpu_copy_in(g, slots, sizeof slots);
    c->qkv_rope_write(c, want, qkv, norm ? qw : NULL, norm ? kw : NULL, 1e-6f, pos, inv, kc, vc,
                      slots, n, nh, nkv, hd, bs, kvdt, ks, vs);
    g->qkv_rope_write(g, gq, gqkv, norm ? gqw : NULL, norm ? gkw : NULL, 1e-6f, gpos, ginv, gkc,
                      gvc, gs, n, nh, nkv, hd, bs, kvdt, ks, vs);
    float *got = gpu_copy_out(g, gq, qn);
    CHECK_REL(got, want, qn, TOL_F32, "qkv_rope_write q, %d/%d heads of %d, norm %d", nh, nkv, hd,
              norm);
    free(got);
    // a last bit of the cache dtype (fp8: 3 mantissa bits)
    const double tol = kvdt == LLM_F8E4M3 ? 7e-2 : kvdt == LLM_BF16 ? 4e-3 : 1e-3;
    for (int which = 0; which < 2; which++) {
        uint8_t *gc = malloc(cache_n * es);
        g->download(g, gc, which ? gvc : gkc, cache_n * es);
        const float sc = which ? vs : ks;
        float *a = cache_f32(gc, cache_n, kvdt, sc),
              *b = cache_f32(which ? vc : kc, cache_n, kvdt, sc);
        CHECK_REL(a, b, cache_n, tol, "qkv_rope_write %s cache, %d/%d heads of %d, %s, norm %d",
                  which ? "V" : "K", nh, nkv, hd, dtype_name(kvdt), norm);
        free(a), free(b), free(gc);
    }
    free(qkv), free(qw), free(kw), free(want), free(kc), free(vc);
    g->free(g, gkc), g->free(g, gvc), g->free(g, gqkv), g->free(g, gq), g->free(g, gqw);
    g->free(g, gkw), g->free(g, ginv), g->free(g, gpos), g->free(g, gs);
}

TEST(gpu_op_qkv_rope_write) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    check_qkv_rope_write(g, c, 4, 2, 16, 4, 0, LLM_F16);
    check_qkv_rope_write(g, c, 8, 2, 128, 16, 1, LLM_BF16); // Qwen3's per-head norms
    check_qkv_rope_write(g, c, 3, 1, 96, 5, 1, LLM_F16);
    check_qkv_rope_write(g, c, 8, 2, 64, 16, 1, LLM_F8E4M3); // fp8 with scales 0.5 and 2
    if (!gpu_fast()) check_qkv_rope_write(g, c, 4, 1, 256, 16, 0, LLM_BF16);
    check_backend(g);
}

// fp8 kv_write writes the CPU backend's bits (f32_to_fp8_e4m3 of x / scale):
// values across the whole e4m3 range and past it (saturated), subnormals,
// exact ties of the rounding, zeros of both signs; scales 1 and not 1. On
// sm_89+ (the emulation's default sm_90) the cuda_fp8.h conversion; EMU_CC=75
// runs the software one.
TEST(gpu_op_kv_write_fp8) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    const int nkv = 2, hd = 64, bs = 16, nb = 4, n = 24;
    const size_t cache_n = (size_t)nb * nkv * bs * hd, kv = (size_t)n * nkv * hd;
    float *k = malloc(kv * 4), *v = malloc(kv * 4);
    for (size_t i = 0; i < kv; i++) {
        // magnitudes 2^-12 .. 2^10: subnormals, normals, past 448
        k[i] = (urand() < 0 ? -1.0f : 1.0f) *
               ldexpf(1.0f + (float)irand(1024) / 1024.0f, irand(23) - 12);
        // every e4m3 value and the midpoints between neighbours (exact ties)
        const int q = irand(126);
        v[i] = (i % 2) ? fp8_e4m3_to_f32((uint8_t)q)
                       : 0.5f * (fp8_e4m3_to_f32((uint8_t)q) + fp8_e4m3_to_f32((uint8_t)(q + 1)));
        if (i % 11 == 0) v[i] = -v[i];
    }
    k[0] = 0.0f, k[1] = -0.0f, k[2] = 1e30f, k[3] = -INFINITY;
    int32_t slots[24];
    for (int i = 0; i < n; i++) slots[i] = i % 7 == 5 ? -1 : (i * 5) % (nb * bs);
    for (int sc = 0; sc < 2; sc++) {
        const float ks = sc ? 0.0625f : 1.0f, vs = sc ? 1.5f : 1.0f;
        uint8_t *kc = calloc(cache_n, 1), *vc = calloc(cache_n, 1), *got = malloc(cache_n);
        uint8_t *gkc = gpu_copy_in(g, kc, cache_n), *gvc = gpu_copy_in(g, vc, cache_n);
        float *gk = gpu_copy_in(g, k, kv * 4), *gv = gpu_copy_in(g, v, kv * 4);
        int32_t *gs = gpu_copy_in(g, slots, sizeof slots);
        c->kv_write(c, kc, vc, k, v, slots, n, nkv, hd, bs, LLM_F8E4M3, ks, vs);
        g->kv_write(g, gkc, gvc, gk, gv, gs, n, nkv, hd, bs, LLM_F8E4M3, ks, vs);
        g->download(g, got, gkc, cache_n);
        CHECK_MSG(memcmp(got, kc, cache_n) == 0, "fp8 kv_write K, scale %g (sm_%d%d)", ks,
                  g->info.cc_major, g->info.cc_minor);
        g->download(g, got, gvc, cache_n);
        CHECK_MSG(memcmp(got, vc, cache_n) == 0, "fp8 kv_write V, scale %g", vs);
        CHECK(kc[2] == 0x7e && kc[3] == 0xfe); // 1e30 and -inf saturate (row 0, slot 0)
        free(kc), free(vc), free(got);
        g->free(g, gkc), g->free(g, gvc), g->free(g, gk), g->free(g, gv), g->free(g, gs);
    }
    free(k), free(v);
    check_backend(g);
}

TEST(gpu_op_silu_mul_and_gather_rows) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    // odd sizes take the scalar kernels, multiples of 4 the float4 ones
    for (int k = 0; k < 2; k++) {
        const int n = 3, hidden = k ? 1024 : 1001, m = 4, dim = k ? 80 : 77;
        const size_t tot = (size_t)n * hidden;
        float *gate = rand_floats(tot, 6.0f), *up = rand_floats(tot, 2.0f), *want = malloc(tot * 4);
        float *ggate = gpu_copy_in(g, gate, tot * 4), *gup = gpu_copy_in(g, up, tot * 4);
        c->silu_mul(c, want, gate, up, n, hidden, hidden, NULL);
        g->silu_mul(g, ggate, ggate, gup, n, hidden, hidden, NULL); // out aliasing gate
        float *got = gpu_copy_out(g, ggate, tot);
        CHECK_REL(got, want, tot, TOL_F32, "silu_mul hidden %d", hidden);
        free(got), free(gate), free(up);
        g->free(g, ggate), g->free(g, gup);
        // a fused gate|up projection's rows: gate and up 2 x hidden apart
        float *gu = rand_floats(2 * tot, 6.0f), *ggu = gpu_copy_in(g, gu, 2 * tot * 4);
        float *gout2 = gpu_poisoned(g, tot);
        c->silu_mul(c, want, gu, gu + hidden, n, hidden, 2 * hidden, NULL);
        g->silu_mul(g, gout2, ggu, ggu + hidden, n, hidden, 2 * hidden, NULL);
        got = gpu_copy_out(g, gout2, tot);
        CHECK_REL(got, want, tot, TOL_F32, "silu_mul of gate|up rows, hidden %d", hidden);
        free(got), free(gu), free(want);
        g->free(g, ggu), g->free(g, gout2);

        float *x = rand_floats((size_t)9 * dim, 1.0f), *cw = malloc(sizeof(float) * m * dim);
        int32_t rows[4] = {8, 0, 3, 3};
        float *gx = gpu_copy_in(g, x, sizeof(float) * 9 * dim),
              *gout = gpu_poisoned(g, (size_t)m * dim);
        int32_t *grows = gpu_copy_in(g, rows, sizeof rows);
        c->gather_rows(c, cw, x, rows, m, dim);
        g->gather_rows(g, gout, gx, grows, m, dim);
        got = gpu_copy_out(g, gout, (size_t)m * dim);
        CHECK_REL(got, cw, (size_t)m * dim, 0.0, "gather_rows dim %d", dim);
        free(got), free(x), free(cw);
        g->free(g, gx), g->free(g, gout), g->free(g, grows);
    }
    check_backend(g);
}

// Rows full of ties (a few levels), with NaN, +-inf and FLT_MAX sprinkled in,
// and some rows with nothing above -inf: the same index as the CPU op, exactly.
TEST(gpu_op_argmax_ties_and_specials) {
    backend *g = gpu_backend(), *c = cpu_ref();
    if (!g || !c) return;
    static const float special[] = {NAN, -INFINITY, INFINITY, FLT_MAX, -0.0f};
    const int dims[] = {1, 5, 31, 32, 33, 1000, 4097, 49152, 128256};
    const int ns[] = {1, 3, 64, 300};
    const int n_dims = gpu_fast() ? 7 : 9;
    for (int di = 0; di < n_dims; di++)
        for (int ni = 0; ni < 4; ni++) {
            const int dim = dims[di], n = ns[ni];
            if ((size_t)n * dim > (gpu_fast() ? 300000u : 40000000u)) continue;
            const size_t total = (size_t)n * dim;
            float *x = malloc(total * sizeof(float));
            const int levels = 1 + irand(6); // few distinct values: ties everywhere
            for (size_t i = 0; i < total; i++)
                x[i] = irand(50) == 0 ? special[irand(5)] : (float)irand(levels);
            for (int r = 0; r < n; r += 7) // every 7th row: nothing above -inf
                for (int j = 0; j < dim; j++) x[(size_t)r * dim + j] = irand(2) ? NAN : -INFINITY;
            if (n > 1) // one row whose maximum is only at its end
                for (int j = 0; j < dim; j++) x[(size_t)dim + j] = j == dim - 1 ? 9.0f : -1.0f;
            int32_t *want = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
            c->argmax(c, want, x, n, dim);
            float *gx = gpu_copy_in(g, x, total * sizeof(float));
            int32_t *gout = g->alloc(g, (size_t)n * 4);
            g->memset(g, gout, 0x5A, (size_t)n * 4); // poison: no valid index
            g->argmax(g, gout, gx, n, dim);
            g->download(g, got, gout, (size_t)n * 4);
            for (int r = 0; r < n; r++)
                CHECK_MSG(got[r] == want[r], "argmax %dx%d row %d: %d, want %d", n, dim, r, got[r],
                          want[r]);
            free(x), free(want), free(got);
            g->free(g, gx), g->free(g, gout);
        }
    check_backend(g);
}

// Unsupported inputs set the backend's error (naming the op) instead of faulting.
TEST(gpu_op_errors_are_reported) {
    backend *g = gpu_backend();
    if (!g) return;
    float *buf = gpu_poisoned(g, 64);
    bk_matrix w = {buf, LLM_I8, 4, 16, NULL};
    g->matmul(g, buf + 32, buf, &w, NULL, 1, NULL);
    CHECK(g->failed);
    CHECK_CONTAINS(g->error, "matmul: an I8 matrix needs its scales");
    g->failed = 0;
    int32_t one[2] = {0, 1};
    int32_t *d = gpu_copy_in(g, one, sizeof one);
    bk_attn_batch bt = {.n_tokens = 1,
                        .n_seqs = 1,
                        .max_query_len = 1,
                        .max_context_len = 1,
                        .max_blocks = 1,
                        .query_start = d,
                        .context_len = d + 1,
                        .block_tables = d,
                        .seq_of_token = d,
                        .positions = d,
                        .slot_mapping = d};
    g->attention(g, buf, buf, buf, buf, &bt, 1, 1, 258, 16, 1.0f, LLM_F16, 1.0f, 1.0f, 0, NULL);
    CHECK(g->failed);
    CHECK_CONTAINS(g->error, "attention: head_dim 258");
    g->failed = 0;
    g->free(g, buf), g->free(g, d);
}
