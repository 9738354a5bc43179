#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_pool.h"
#include "cpu/cpu_simd.h"
#include "backend.h"
#include "harness.h"
#include "sampler.h"
#include "util.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

// Every SIMD version this CPU has (AVX-512, AVX2) adds in exactly the generic
// order: bit-identical results from dot, dot_tile (every tile shape, with and
// without a tail past the blocks of 16) and axpy.
TEST(cpu_simd_versions_agree_bitwise) {
    const cpu_simd *gen = cpu_simd_generic();
    const char *names[] = {"avx2", "avx512"};
    unsigned seed = 1;
    enum { N = 203, T = 13 };
    static float x[T * N], wf[5 * N];
    uint16_t wh[N], wb[N];
    for (int i = 0; i < N; i++) {
        wh[i] = f32_to_fp16(frand(&seed));
        wb[i] = f32_to_bf16(frand(&seed));
    }
    for (int i = 0; i < T * N; i++) x[i] = frand(&seed);
    for (int i = 0; i < 5 * N; i++) wf[i] = frand(&seed);
    int versions = 0;
    for (int v = 0; v < 2; v++) {
        const cpu_simd *fast = cpu_simd_named(names[v]);
        if (!fast) continue;
        versions++;
        for (int n = 1; n <= N; n += 11) {
            CHECK(fast->dot(x, wh, LLM_F16, n) == gen->dot(x, wh, LLM_F16, n));
            CHECK(fast->dot(x, wb, LLM_BF16, n) == gen->dot(x, wb, LLM_BF16, n));
            CHECK(fast->dot(x, wf, LLM_F32, n) == gen->dot(x, wf, LLM_F32, n));
            for (int nr = 1; nr <= 5; nr += 3) // 1 and 4 rows: a partial and a full tile
                for (int nt = 1; nt <= T; nt += 3) {
                    float o1[T * 5], o2[T * 5];
                    fast->dot_tile(o1, 5, x, N, nt, wf, nr, n);
                    gen->dot_tile(o2, 5, x, N, nt, wf, nr, n);
                    for (int t = 0; t < nt; t++)
                        for (int r = 0; r < nr; r++) {
                            CHECK(o1[t * 5 + r] == o2[t * 5 + r]);
                            CHECK(o1[t * 5 + r] == fast->dot(x + t * N, wf + r * n, LLM_F32, n));
                        }
                }
            float y1[N] = {0}, y2[N] = {0};
            fast->axpy(y1, 0.37f, wh, LLM_F16, n);
            gen->axpy(y2, 0.37f, wh, LLM_F16, n);
            CHECK(memcmp(y1, y2, sizeof y1) == 0);
        }
    }
    CHECK(cpu_simd_named("no-such-version") == NULL);
    CHECK(cpu_simd_named("generic") == gen);
    if (!versions) fprintf(stderr, "  (no AVX2 or AVX-512 on this CPU: generic only)\n");
}

// matmul against a double-precision reference, and each token's row equal
// bit for bit whether it is computed alone (decode path) or in a batch.
TEST(cpu_matmul_reference_and_batch_invariance) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    CHECK(b != NULL);
    if (!b) return;
    const int rows = 37, cols = 83, n = 70;
    unsigned seed = 7;
    uint16_t *w = malloc(sizeof(uint16_t) * rows * cols);
    float *x = malloc(sizeof(float) * n * cols), *out = malloc(sizeof(float) * n * rows);
    float bias[37], one[37];
    for (int i = 0; i < rows * cols; i++) w[i] = f32_to_bf16(frand(&seed));
    for (int i = 0; i < n * cols; i++) x[i] = frand(&seed);
    for (int i = 0; i < rows; i++) bias[i] = frand(&seed);
    bk_matrix m = {w, LLM_BF16, rows, cols, NULL};
    b->matmul(b, out, x, &m, bias, n, NULL);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double s = bias[r];
            for (int k = 0; k < cols; k++)
                s += (double)x[t * cols + k] * bf16_to_f32(w[r * cols + k]);
            worst = fmax(worst, fabs(s - out[t * rows + r]));
        }
    CHECK_MSG(worst < 1e-4, "max abs error %g", worst);
    for (int t = 0; t < n; t += 9) {
        b->matmul(b, one, x + t * cols, &m, bias, 1, NULL);
        CHECK(memcmp(one, out + t * rows, sizeof one) == 0);
    }
    free(w), free(x), free(out);
    b->destroy(b);
}

TEST(cpu_rmsnorm_silu_rope_kv_write) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    if (!b) return;
    float x[2 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, -1, 0, 1, 0, 2, 0, 0, 0},
                w[8] = {1, 1, 1, 1, 2, 2, 2, 2}, out[16];
    b->rmsnorm(b, out, x, w, 2, 8, 1e-6f, NULL);
    double ms = (1 + 4 + 9 + 16 + 25 + 36 + 49 + 64) / 8.0;
    CHECK_NEAR(out[0], 1 / sqrt(ms + 1e-6), 1e-6);
    CHECK_NEAR(out[7], 2 * 8 / sqrt(ms + 1e-6), 1e-5);
    float g[2] = {1.5f, -2}, u[2] = {2, 3}, s[2];
    b->silu_mul(b, s, g, u, 1, 2, 2, NULL);
    CHECK_NEAR(s[0], 1.5 / (1 + exp(-1.5)) * 2, 1e-6);
    CHECK_NEAR(s[1], -2 / (1 + exp(2.0)) * 3, 1e-6);
    // rope: head_dim 4, pairs (0,2) and (1,3)
    float q[4] = {1, 0, 0, 1}, k[4] = {0, 1, 1, 0}, inv[2] = {1.0f, 0.5f};
    int32_t pos[1] = {3};
    b->rope(b, q, k, pos, inv, 1, 1, 1, 4);
    CHECK_NEAR(q[0], cos(3.0), 1e-6);
    CHECK_NEAR(q[2], sin(3.0), 1e-6);
    CHECK_NEAR(q[1], -sin(1.5), 1e-6);
    CHECK_NEAR(q[3], cos(1.5), 1e-6);
    // kv_write: slot 5 of block size 4 = block 1 offset 1; 2 kv heads of dim 2
    uint16_t kc[3 * 2 * 4 * 2], vc[3 * 2 * 4 * 2];
    memset(kc, 0, sizeof kc), memset(vc, 0, sizeof vc);
    float kk[4] = {1, 2, 3, 4}, vv[4] = {5, 6, 7, 8};
    int32_t slot[1] = {5};
    b->kv_write(b, kc, vc, kk, vv, slot, 1, 2, 2, 4, LLM_F16, 1.0f, 1.0f);
    // [block 1][head 1][offset 1][d] = ((1*2+1)*4+1)*2
    CHECK_NEAR(fp16_to_f32(kc[((1 * 2 + 1) * 4 + 1) * 2 + 1]), 4, 0);
    CHECK_NEAR(fp16_to_f32(vc[((1 * 2 + 0) * 4 + 1) * 2 + 0]), 5, 0);
    b->destroy(b);
}

// The 16-bit copies (bk_x16): rmsnorm, add_rmsnorm and silu_mul write their
// output rounded by common/dtype.c (bf16 and fp16), the same with a NULL f32
// output; matmul on a copy (x NULL) is the matmul of the widened copy.
TEST(cpu_x16_copies_and_matmul_on_a_copy) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    if (!b) return;
    CHECK(b->x16_plan == NULL); // the CPU never rounds its matmul input
    enum { N = 5, D = 24, R = 7 };
    unsigned seed = 7;
    float x[N * D], w[D], res[N * D], res2[N * D], out[N * D], gu[N * 2 * D], wide[N * D];
    float mw[R * D], o1[N * R], o2[N * R];
    uint16_t h[N * D], h2[N * D];
    for (int i = 0; i < N * D; i++) x[i] = 4 * frand(&seed), res[i] = frand(&seed);
    for (int i = 0; i < D; i++) w[i] = frand(&seed);
    for (int i = 0; i < N * 2 * D; i++) gu[i] = 3 * frand(&seed);
    for (int i = 0; i < R * D; i++) mw[i] = frand(&seed);
    const llm_dtype dts[2] = {LLM_BF16, LLM_F16};
    for (int di = 0; di < 2; di++) {
        const llm_dtype dt = dts[di];
        bk_x16 s = {h, dt, NULL}, s2 = {h2, dt, NULL};
        for (int op = 0; op < 3; op++) {
            memcpy(res2, res, sizeof res);
            if (op == 0) {
                b->rmsnorm(b, out, x, w, N, D, 1e-6f, &s);
                b->rmsnorm(b, NULL, x, w, N, D, 1e-6f, &s2);
            } else if (op == 1) {
                float r1[N * D];
                memcpy(r1, res, sizeof res);
                b->add_rmsnorm(b, out, r1, x, w, N, D, 1e-6f, &s);
                b->add_rmsnorm(b, NULL, res2, x, w, N, D, 1e-6f, &s2);
                CHECK(memcmp(r1, res2, sizeof r1) == 0);
            } else {
                b->silu_mul(b, out, gu, gu + D, N, D, 2 * D, &s);
                b->silu_mul(b, NULL, gu, gu + D, N, D, 2 * D, &s2);
            }
            int bad = 0;
            for (int i = 0; i < N * D; i++)
                bad += h[i] != (dt == LLM_BF16 ? f32_to_bf16(out[i]) : f32_to_fp16(out[i]));
            CHECK_MSG(bad == 0, "op %d %s: %d copies not rounded from the output", op,
                      dtype_name(dt), bad);
            CHECK(memcmp(h, h2, sizeof h) == 0);
        }
        // the matmul on the last copy equals the matmul on its widened values
        for (int i = 0; i < N * D; i++)
            wide[i] = dt == LLM_BF16 ? bf16_to_f32(h[i]) : fp16_to_f32(h[i]);
        bk_matrix m = {mw, LLM_F32, R, D, NULL};
        b->matmul(b, o1, NULL, &m, NULL, N, &s);
        b->matmul(b, o2, wide, &m, NULL, N, NULL);
        CHECK(memcmp(o1, o2, sizeof o1) == 0);
    }
    b->matmul(b, o1, NULL, &(bk_matrix){mw, LLM_F32, R, D, NULL}, NULL, N, NULL);
    CHECK(b->failed);
    CHECK_CONTAINS(b->error, "no input");
    b->destroy(b);
}

// A row's greedy pick by hand: NaN as -inf, +inf as FLT_MAX, ties lowest, -1 if none.
static int argmax_ref(const float *x, int dim) {
    int best = -1;
    float top = -INFINITY;
    for (int j = 0; j < dim; j++) {
        float v = isnan(x[j]) ? -INFINITY : x[j] == INFINITY ? FLT_MAX : x[j];
        if (v > top) {
            top = v;
            best = j;
        }
    }
    return best;
}

// A value for argmax inputs: a few levels (ties everywhere), sometimes NaN or +-inf.
static float argmax_value(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    unsigned r = (*s >> 8) % 100;
    if (r == 0) return NAN;
    if (r == 1) return -INFINITY;
    if (r == 2) return INFINITY;
    if (r == 3) return FLT_MAX;
    return (float)((*s >> 16) % 7) - 3.0f;
}

// The argmax op picks exactly what sampler_sample picks at temperature 0, and
// -1 where the sampler reports that no logit is finite.
TEST(cpu_argmax_is_the_samplers_greedy_pick) {
    char err[LLM_ERR_LEN];
    backend *b = cpu_backend_create(err);
    CHECK(b != NULL);
    if (!b) return;
    static const struct {
        float x[6];
        int dim, want;
    } cases[] = {{{1, 3, NAN, 3, -INFINITY, 2}, 6, 1},            // tie: the lowest index
                 {{-INFINITY, -INFINITY, -INFINITY}, 3, -1},      // nothing above -inf
                 {{NAN, NAN}, 2, -1},                             // NaN counts as -inf
                 {{NAN, -INFINITY, NAN}, 3, -1},                  // both
                 {{NAN, -INFINITY, -FLT_MAX}, 3, 2},              // any finite value beats them
                 {{FLT_MAX, INFINITY}, 2, 0},                     // +inf ties with FLT_MAX
                 {{-1, INFINITY, FLT_MAX, INFINITY}, 4, 1},       // the first of them
                 {{-0.0f, 0.0f}, 2, 0},                           // -0 == +0
                 {{0.0f, -0.0f, -1e-30f}, 3, 0},                  // either way round
                 {{NAN}, 1, -1},                                  // dim 1, nothing
                 {{-5}, 1, 0},                                    // dim 1, a value
                 {{-INFINITY, -INFINITY, -3, -3, -2, -2}, 6, 4}}; // a tie after -infs
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int32_t got = -7;
        b->argmax(b, &got, cases[k].x, 1, cases[k].dim);
        CHECK_MSG(got == cases[k].want, "case %zu: got %d, want %d", k, got, cases[k].want);
    }
    // random rows, n = 1..300, odd and even widths, checked against the sampler
    sampling_params p = sampling_params_default();
    p.temperature = 0;
    static const int dims[] = {1, 2, 3, 17, 32, 100, 1001};
    unsigned seed = 12345;
    for (int n = 1; n <= 300; n += n < 16 ? 1 : 23) {
        const int dim = dims[n % 7];
        float *x = malloc(sizeof(float) * n * dim), *row = malloc(sizeof(float) * dim);
        int32_t *got = malloc(sizeof(int32_t) * n);
        for (int i = 0; i < n * dim; i++) x[i] = argmax_value(&seed);
        for (int i = 0; i < n; i++) got[i] = -7;
        b->argmax(b, got, x, n, dim);
        sampler_seq *s = sampler_seq_create(&p, dim, NULL, 0, NULL, 0, err);
        CHECK_MSG(s != NULL, "%s", err);
        for (int i = 0; s && i < n; i++) {
            const float *xi = x + (size_t)i * dim;
            CHECK_MSG(got[i] == argmax_ref(xi, dim), "n %d dim %d row %d: %d, want %d", n, dim, i,
                      got[i], argmax_ref(xi, dim));
            memcpy(row, xi, sizeof(float) * dim);
            sample_result r;
            int rc = sampler_sample(s, row, dim, &r, err);
            if (got[i] < 0)
                CHECK_MSG(rc == -1, "n %d dim %d row %d: the sampler found a token", n, dim, i);
            else
                CHECK_MSG(rc == 0 && r.token == got[i], "n %d dim %d row %d: sampler %d, op %d", n,
                          dim, i, rc ? -1 : r.token, got[i]);
        }
        sampler_seq_destroy(s);
        free(x), free(row), free(got);
    }
    b->destroy(b);
}

// K past fp16's largest value (65504) through a bf16 cache: finite and
// correct attention (an fp16 cache holds inf there, and the softmax NaN).
TEST(cpu_attention_bf16_cache_holds_k_past_fp16_range) {
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    CHECK_MSG(b != NULL, "%s", err);
    if (!b) return;
    enum { T = 6, HD = 4, BSZ = 4, NBLK = 2 };
    float k[T * HD], v[T * HD], q[HD] = {1e-5f, -2e-5f, 0.5e-5f, 1e-5f};
    for (int t = 0; t < T; t++)
        for (int d = 0; d < HD; d++) {
            k[t * HD + d] = (float)((t + 1) * 30000 * (d % 2 ? -1 : 1)); // up to 180000
            v[t * HD + d] = (float)(t - d);
        }
    int32_t slots[T], bt[NBLK] = {1, 0}, qs[2] = {0, 1}, ctx[1] = {T}, seq[1] = {0},
                      pos[1] = {T - 1};
    for (int t = 0; t < T; t++) slots[t] = bt[t / BSZ] * BSZ + t % BSZ;
    bk_attn_batch ab = {.n_tokens = 1,
                        .n_seqs = 1,
                        .max_query_len = 1,
                        .max_context_len = T,
                        .max_blocks = NBLK,
                        .query_start = qs,
                        .context_len = ctx,
                        .block_tables = bt,
                        .seq_of_token = seq,
                        .positions = pos,
                        .slot_mapping = slots};
    for (int dt = 0; dt < 2; dt++) {
        const llm_dtype kvdt = dt ? LLM_F16 : LLM_BF16;
        uint16_t kc[NBLK * BSZ * HD], vc[NBLK * BSZ * HD];
        b->kv_write(b, kc, vc, k, v, slots, T, 1, HD, BSZ, kvdt, 1.0f, 1.0f);
        for (int w = 0; w < 2; w++) { // full, then a window of 3
            const int window = w ? 3 : 0, t0 = w ? T - 3 : 0;
            float out[HD];
            b->attention(b, out, q, kc, vc, &ab, 1, 1, HD, BSZ, 0.5f, kvdt, 1.0f, 1.0f, window,
                         NULL);
            if (kvdt == LLM_F16) { // the reason for bf16: fp16 K overflows
                CHECK(isinf(fp16_to_f32(kc[(1 * BSZ + 2) * HD])));
                CHECK(!isfinite(out[0]));
                continue;
            }
            // reference in double over the bf16-rounded K and V
            double s[T], mx = -1e300, sum = 0;
            for (int t = t0; t < T; t++) {
                s[t] = 0;
                for (int d = 0; d < HD; d++)
                    s[t] += (double)q[d] * bf16_to_f32(f32_to_bf16(k[t * HD + d]));
                s[t] *= 0.5;
                mx = fmax(mx, s[t]);
            }
            for (int t = t0; t < T; t++) sum += exp(s[t] - mx);
            for (int d = 0; d < HD; d++) {
                double o = 0;
                for (int t = t0; t < T; t++) o += exp(s[t] - mx) / sum * v[t * HD + d];
                CHECK_MSG(isfinite(out[d]) && fabs(out[d] - o) < 1e-4,
                          "window %d dim %d: %g, want %g", window, d, out[d], o);
            }
            CHECK(bf16_to_f32(kc[(1 * BSZ + 2) * HD]) > 65504); // t = 2: 90000, in the cache
        }
    }
    b->destroy(b);
}

// fp8 (e4m3) cache with per-tensor scales: kv_write stores
// f32_to_fp8_e4m3(x / scale) and attention over 3 query rows (causal) equals a
// double reference over the values read back (code x scale); against the
// unquantized K/V it stays within e4m3's precision (3 mantissa bits).
TEST(cpu_attention_fp8_cache_matches_reference) {
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    CHECK_MSG(b != NULL, "%s", err);
    if (!b) return;
    enum { T = 7, Q = 3, HD = 8, NKV = 2, NH = 4, BSZ = 4, NBLK = 3 };
    const float ks = 0.02f, vs = 4.0f; // K up to 4 -> codes up to 200; V / 4
    float k[T * NKV * HD], v[T * NKV * HD], q[Q * NH * HD];
    unsigned seed = 7;
    for (int i = 0; i < T * NKV * HD; i++) k[i] = 4.0f * frand(&seed), v[i] = 3.0f * frand(&seed);
    for (int i = 0; i < Q * NH * HD; i++) q[i] = frand(&seed);
    int32_t slots[T], bt[NBLK] = {2, 0, 1}, qs[2] = {0, Q}, ctx[1] = {T}, seq[Q] = {0, 0, 0},
                      pos[Q] = {T - 3, T - 2, T - 1};
    for (int t = 0; t < T; t++) slots[t] = bt[t / BSZ] * BSZ + t % BSZ;
    uint8_t kc[NBLK * NKV * BSZ * HD], vc[NBLK * NKV * BSZ * HD];
    b->kv_write(b, kc, vc, k, v, slots, T, NKV, HD, BSZ, LLM_F8E4M3, ks, vs);
    int bad_bits = 0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NKV; h++)
            for (int d = 0; d < HD; d++) {
                const size_t at = (((size_t)bt[t / BSZ] * NKV + h) * BSZ + t % BSZ) * HD + d;
                const int i = (t * NKV + h) * HD + d;
                bad_bits += kc[at] != f32_to_fp8_e4m3(k[i] / ks);
                bad_bits += vc[at] != f32_to_fp8_e4m3(v[i] / vs);
            }
    CHECK_EQ(bad_bits, 0);
    bk_attn_batch ab = {.n_tokens = Q,
                        .n_seqs = 1,
                        .max_query_len = Q,
                        .max_context_len = T,
                        .max_blocks = NBLK,
                        .query_start = qs,
                        .context_len = ctx,
                        .block_tables = bt,
                        .seq_of_token = seq,
                        .positions = pos,
                        .slot_mapping = slots};
    float out[Q * NH * HD];
    const float scale = 0.35f;
    b->attention(b, out, q, kc, vc, &ab, NH, NKV, HD, BSZ, scale, LLM_F8E4M3, ks, vs, 0, NULL);
    double worst_read = 0, worst_float = 0;
    for (int r = 0; r < Q; r++)
        for (int h = 0; h < NH; h++) {
            const int kvh = h / (NH / NKV), n_ctx = T - Q + r + 1;
            for (int pass = 0; pass < 2; pass++) { // 0: values read back, 1: unquantized
                double s[T], mx = -1e300, sum = 0;
                for (int t = 0; t < n_ctx; t++) {
                    s[t] = 0;
                    for (int d = 0; d < HD; d++) {
                        const float kx = k[(t * NKV + kvh) * HD + d];
                        const double kr =
                            pass ? kx : fp8_e4m3_to_f32(f32_to_fp8_e4m3(kx / ks)) * ks;
                        s[t] += (double)q[(r * NH + h) * HD + d] * kr;
                    }
                    s[t] *= scale;
                    mx = fmax(mx, s[t]);
                }
                for (int t = 0; t < n_ctx; t++) sum += exp(s[t] - mx);
                for (int d = 0; d < HD; d++) {
                    double o = 0;
                    for (int t = 0; t < n_ctx; t++) {
                        const float vx = v[(t * NKV + kvh) * HD + d];
                        const double vr =
                            pass ? vx : fp8_e4m3_to_f32(f32_to_fp8_e4m3(vx / vs)) * vs;
                        o += exp(s[t] - mx) / sum * vr;
                    }
                    const double e = fabs(out[(r * NH + h) * HD + d] - o);
                    if (pass)
                        worst_float = fmax(worst_float, e);
                    else
                        worst_read = fmax(worst_read, e);
                }
            }
        }
    CHECK_MSG(worst_read < 1e-5, "fp8 attention vs its values read back: %g", worst_read);
    // e4m3 keeps ~2^-4 relative per value: V of magnitude <= 3 moves the output by < 0.25
    CHECK_MSG(worst_float > 0 && worst_float < 0.25, "fp8 vs float K/V: %g", worst_float);
    b->destroy(b);
}

// Blocked attention (cpu_attention.c): every row of a batch (a whole prompt
// of 150 rows, more than a unit's rows and a key block; a 20-row chunk over 70
// cached positions) gives the same bits as that row alone in a decode step
// (one query row, its own position the last), for GQA with 3 query heads per
// KV head, head_dim 64 and 40 (a tail past the blocks of 16), fp16, bf16 and
// fp8 caches, with and without a sliding window; and the batch stays within
// 1e-5 of a double-precision reference.
typedef struct {
    int hd, win;
    llm_dtype dt;
} attn_case;

static double attn_reference(const float *q, const float *k, const float *v, int n_ctx, int t0,
                             int hd, int d, float scale) {
    double s[160], mx = -1e300, sum = 0, o = 0;
    for (int t = t0; t < n_ctx; t++) {
        s[t] = 0;
        for (int i = 0; i < hd; i++) s[t] += (double)q[i] * k[t * hd + i];
        s[t] *= scale;
        mx = fmax(mx, s[t]);
    }
    for (int t = t0; t < n_ctx; t++) sum += exp(s[t] - mx);
    for (int t = t0; t < n_ctx; t++) o += exp(s[t] - mx) / sum * v[t * hd + d];
    return o;
}

static void attn_blocked_case(backend *b, attn_case c) {
    enum { NH = 6, NKV = 2, BSZ = 16, T0 = 150, T1 = 90, Q1 = 20, NB = 10 };
    const int hd = c.hd, qd = NH * hd, ntok = T0 + Q1;
    const float scale = 0.3f;
    const size_t es = c.dt == LLM_F8E4M3 ? 1 : 2, cache = (size_t)2 * NB * NKV * BSZ * hd;
    uint8_t *kc = calloc(cache, es), *vc = calloc(cache, es);
    float *k = malloc(sizeof(float) * (T0 + T1) * NKV * hd),
          *v = malloc(sizeof(float) * (T0 + T1) * NKV * hd);
    float *q = malloc(sizeof(float) * ntok * qd), *out = malloc(sizeof(float) * ntok * qd);
    unsigned seed = 11 + hd;
    for (int i = 0; i < (T0 + T1) * NKV * hd; i++) k[i] = 2 * frand(&seed), v[i] = frand(&seed);
    for (int i = 0; i < ntok * qd; i++) q[i] = frand(&seed);
    // sequence 0: blocks 0..9 in reverse order; sequence 1: blocks 10..15
    int32_t bt[2 * NB], slots[T0 + T1];
    for (int i = 0; i < NB; i++) bt[i] = NB - 1 - i, bt[NB + i] = NB + i;
    for (int t = 0; t < T0 + T1; t++) {
        const int s = t >= T0, p = s ? t - T0 : t;
        slots[t] = bt[s * NB + p / BSZ] * BSZ + p % BSZ;
    }
    b->kv_write(b, kc, vc, k, v, slots, T0 + T1, NKV, hd, BSZ, c.dt, 1.0f, 1.0f);
    int32_t qs[3] = {0, T0, T0 + Q1}, ctx[2] = {T0, T1}, seq[T0 + Q1], pos[T0 + Q1];
    for (int i = 0; i < ntok; i++) seq[i] = i >= T0, pos[i] = i < T0 ? i : T1 - Q1 + (i - T0);
    bk_attn_batch ab = {ntok, 2, T0, T0, NB, qs, ctx, bt, seq, pos, slots, NULL, 0};
    b->attention(b, out, q, kc, vc, &ab, NH, NKV, hd, BSZ, scale, c.dt, 1.0f, 1.0f, c.win, NULL);
    int differ = 0;
    double worst = 0;
    float *one = malloc(sizeof(float) * qd);
    for (int i = 0; i < ntok; i++) {
        const int s = seq[i];
        int32_t qs1[2] = {0, 1}, ctx1[1] = {pos[i] + 1}, seq1[1] = {0}, pos1[1] = {pos[i]};
        bk_attn_batch a1 = {1,           1,    1,    pos[i] + 1, NB,   qs1, ctx1,
                            bt + s * NB, seq1, pos1, slots,      NULL, 0};
        b->attention(b, one, q + (size_t)i * qd, kc, vc, &a1, NH, NKV, hd, BSZ, scale, c.dt, 1.0f,
                     1.0f, c.win, NULL);
        differ += memcmp(one, out + (size_t)i * qd, sizeof(float) * qd) != 0;
        if (c.dt == LLM_F8E4M3) continue; // the reference below reads unrounded K/V
        const int n_ctx = pos[i] + 1, t0 = c.win && n_ctx > c.win ? n_ctx - c.win : 0;
        for (int h = 0; h < NH; h += 5) {
            const int kvh = h / (NH / NKV);
            float kr[160 * 64], vr[160 * 64];
            for (int t = 0; t < n_ctx; t++)
                for (int d = 0; d < hd; d++) {
                    const size_t at = ((size_t)(s * T0 + t) * NKV + kvh) * hd + d;
                    kr[t * hd + d] = c.dt == LLM_BF16 ? bf16_to_f32(f32_to_bf16(k[at]))
                                                      : fp16_to_f32(f32_to_fp16(k[at]));
                    vr[t * hd + d] = c.dt == LLM_BF16 ? bf16_to_f32(f32_to_bf16(v[at]))
                                                      : fp16_to_f32(f32_to_fp16(v[at]));
                }
            for (int d = 0; d < hd; d += 7)
                worst = fmax(worst, fabs(out[(size_t)i * qd + h * hd + d] -
                                         attn_reference(q + (size_t)i * qd + h * hd, kr, vr, n_ctx,
                                                        t0, hd, d, scale)));
        }
    }
    CHECK_MSG(differ == 0, "hd %d window %d dtype %d: %d rows differ from the row alone", hd, c.win,
              (int)c.dt, differ);
    CHECK_MSG(worst < 1e-5, "hd %d window %d: %g from the reference", hd, c.win, worst);
    free(kc), free(vc), free(k), free(v), free(q), free(out), free(one);
}

TEST(cpu_attention_blocked_rows_equal_rows_alone) {
    char err[LLM_ERR_LEN] = "";
    backend *b = cpu_backend_create(err);
    CHECK_MSG(b != NULL, "%s", err);
    if (!b) return;
    const attn_case cases[] = {{64, 0, LLM_F16},  {64, 33, LLM_BF16},  {40, 0, LLM_BF16},
                               {40, 70, LLM_F16}, {64, 0, LLM_F8E4M3}, {64, 100, LLM_F8E4M3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) attn_blocked_case(b, cases[i]);
    b->destroy(b);
}

// cpu_simd's exp: the same bits in every version (the vector loops and the
// scalar tail), within 3 ulp of exp in double over [-87, 88], NaN through,
// and the clamp's ends; silu_mul and to_f16 the same bits in every version
// too.
TEST(cpu_simd_exp_and_silu_agree_and_are_accurate) {
    enum { N = 4099 };
    static float x[N], y0[N], y1[N], g[N], u[N];
    unsigned seed = 3;
    for (int i = 0; i < N; i++) {
        x[i] = -87.0f + 175.0f * (float)i / (N - 1);
        g[i] = 30.0f * frand(&seed);
        u[i] = frand(&seed);
    }
    const cpu_simd *gen = cpu_simd_generic();
    gen->exp(y0, x, N);
    double worst_ulp = 0;
    for (int i = 0; i < N; i++) {
        const double want = exp((double)x[i]);
        const double ulp = nextafterf((float)want, INFINITY) - (float)want;
        worst_ulp = fmax(worst_ulp, fabs(y0[i] - want) / ulp);
    }
    CHECK_MSG(worst_ulp <= 3.0, "exp: %.2f ulp", worst_ulp);
    float odd[4] = {NAN, -200.0f, 200.0f, 0.0f}, r[4];
    gen->exp(r, odd, 4);
    CHECK(isnan(r[0]));
    CHECK(r[1] > 0 && r[1] < 2e-38f); // exp(-87): the clamp
    CHECK(isfinite(r[2]) && r[2] > 1e38f);
    CHECK(r[3] == 1.0f);
    const char *names[] = {"avx2", "avx512"};
    for (int v = 0; v < 2; v++) {
        const cpu_simd *fast = cpu_simd_named(names[v]);
        if (!fast) continue;
        for (int n = N - 20; n <= N; n += 7) { // the tails of every width
            fast->exp(y1, x, n);
            CHECK_MSG(memcmp(y0, y1, sizeof(float) * n) == 0, "%s exp, n %d", names[v], n);
            gen->silu_mul(y0 + N - n, g, u, n);
            fast->silu_mul(y1, g, u, n);
            CHECK_MSG(memcmp(y0 + N - n, y1, sizeof(float) * n) == 0, "%s silu, n %d", names[v], n);
            gen->exp(y0, x, N);
        }
        uint16_t h0[64], h1[64]; // to_f16: overflow, normals, subnormals, ties
        float hx[64];
        for (int i = 0; i < 64; i++) hx[i] = g[i] * (i < 16 ? 3000.0f : i < 32 ? 1.0f : 1e-6f);
        hx[63] = 1.0f + 1.0f / 2048; // a tie: rounds to even (1.0)
        gen->to_f16(h0, hx, 64);
        fast->to_f16(h1, hx, 64);
        CHECK(memcmp(h0, h1, sizeof h0) == 0);
        for (int i = 0; i < 64; i++) CHECK(h0[i] == f32_to_fp16(hx[i]));
        float rf[4];
        fast->exp(rf, odd, 4);
        CHECK(isnan(rf[0]) && memcmp(rf + 1, r + 1, 3 * sizeof(float)) == 0);
    }
}

// The CPU backend's pool: over thousands of back-to-back jobs of 1 to 300
// items (the short ones are where a late helper could meet the next job),
// every item runs exactly once per job, on a worker index in range, and a
// pool of one thread runs everything on the caller.
typedef struct {
    _Atomic int *hits;
    int threads, bad_worker;
} pool_probe;

static void pool_probe_item(void *ctx, int item, int worker) {
    pool_probe *p = ctx;
    atomic_fetch_add(&p->hits[item], 1);
    if (worker < 0 || worker >= p->threads) p->bad_worker = 1;
}

TEST(cpu_pool_runs_each_item_once) {
    char err[LLM_ERR_LEN] = "";
    for (int threads = 1; threads <= 4; threads += 3) {
        cpu_pool *pool = cpu_pool_create(threads, err);
        CHECK_MSG(pool != NULL, "%s", err);
        if (!pool) return;
        CHECK_EQ(cpu_pool_threads(pool), threads);
        static _Atomic int hits[300];
        pool_probe p = {hits, threads, 0};
        int wrong = 0;
        for (int job = 0; job < 3000; job++) {
            const int n = 1 + (job * 37) % 300;
            for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
            cpu_pool_run(pool, n, pool_probe_item, &p);
            for (int i = 0; i < n; i++) wrong += atomic_load(&hits[i]) != 1;
            if (job % 500 == 0) usleep(300); // let the helpers fall asleep now and then
        }
        CHECK_EQ(wrong, 0);
        CHECK_EQ(p.bad_worker, 0);
        CHECK_EQ(cpu_pool_chunk(pool, 1), 1);
        CHECK(cpu_pool_chunk(pool, 10000) * 4 * threads >= 10000);
        cpu_pool_destroy(pool);
    }
}

// The bf16 products (--cpu-matmul bf16): the AVX-512 BF16 tile gives the
// generic emulation's bits (vdpbf16ps's order: odd element then even per
// lane, each addition rounded) on every tile shape, within bf16 rounding of
// a double reference; to_bf16 is f32_to_bf16 in every version (NaN, ties,
// subnormals included).
TEST(cpu_simd_bf16_products_match_the_emulation) {
    enum { N = 576, T = 13, R = 6 };
    static float xf[T * N], wf[R * N];
    static uint16_t xb[T * N], wb[R * N];
    unsigned seed = 21;
    for (int i = 0; i < T * N; i++) xf[i] = 4 * frand(&seed);
    for (int i = 0; i < R * N; i++) wb[i] = f32_to_bf16(frand(&seed)), wf[i] = bf16_to_f32(wb[i]);
    xf[7] = NAN, xf[8] = 1.0f + 1.0f / 256, xf[9] = 1e-39f, xf[10] = -3e38f; // to_bf16 corners
    const cpu_simd *gen = cpu_simd_generic(), *v512 = cpu_simd_named("avx512");
    gen->to_bf16(xb, xf, T * N);
    for (int i = 0; i < T * N; i++) CHECK(xb[i] == f32_to_bf16(xf[i]));
    if (v512) {
        static uint16_t xb2[T * N];
        v512->to_bf16(xb2, xf, T * N);
        CHECK(memcmp(xb, xb2, sizeof xb) == 0);
    }
    xb[7] = xb[9] = xb[10] = f32_to_bf16(0.5f); // finite inputs for the products
    float want[T * R];
    gen->dot_tile_bf16(want, R, xb, N, T, wb, N, R, N);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            double d = 0;
            for (int i = 0; i < N; i++) d += (double)bf16_to_f32(xb[t * N + i]) * wf[r * N + i];
            worst = fmax(worst, fabs(d - want[t * R + r]));
        }
    CHECK_MSG(worst < 1e-3, "bf16 products vs double: %g", worst);
    if (!cpu_simd_has_bf16_dot()) {
        fprintf(stderr, "  (no AVX512_BF16 on this CPU: emulation only)\n");
        return;
    }
    for (int nt = 1; nt <= T; nt += 2)
        for (int nr = 1; nr <= R; nr++) {
            float got[T * R];
            v512->dot_tile_bf16(got, R, xb, N, nt, wb, N, nr, N);
            int differ = 0;
            for (int t = 0; t < nt; t++)
                for (int r = 0; r < nr; r++) differ += got[t * R + r] != want[t * R + r];
            CHECK_MSG(differ == 0, "%d x %d tile: %d differ from the emulation", nt, nr, differ);
        }
}
