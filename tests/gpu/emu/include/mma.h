// mma.h - stands in for CUDA's WMMA header (nvcuda::wmma) under the CPU
// emulation (see emu.h): 16x16x16 fragments of __half / __nv_bfloat16
// (matrix_a, matrix_b) and float (accumulator), the shapes the kernels use.
//
// Layout (the emulator's choice; a kernel must not depend on it, as the
// hardware's differs by architecture): every fragment holds 8 elements per
// lane (num_elements = 8); lane l holds row l / 2, columns (l % 2) * 8 .. + 7
// of the logical matrix (matrix_a: M x K, matrix_b: K x N, accumulator:
// M x N), whatever the memory layout it was loaded from. Elementwise code
// over x[0 .. num_elements) therefore works as on the device; code that
// assumes which row an element is in does not (and gets wrong results).
//
// Semantics: load, store and mma are warp-collective and start with a warp
// meeting point (every live lane of the warp arrives first, as the CUDA
// documentation says they wait for); a store is not visible to the other
// lanes until they pass a __syncwarp (or another meeting point) after it, so a
// missing __syncwarp shows up as stale data (NaN-filled shared memory).
// mma_sync: each lane publishes its elements (as float), the warp meets,
// each lane computes its 8 outputs (products exact in float, summed in k
// order 0..15 onto c with fmaf), the warp meets again, then each lane writes
// its d (so d may alias a, b or c). The pointer of load/store must be 32-byte
// aligned and ldm a multiple of 16 bytes, as on the device; a violation aborts.
#pragma once
#include "emu.h"

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "emulated WMMA: only 16x16x16");
    enum { num_elements = 8 };
    T x[8];
};

namespace detail {
inline float to_f(float v) {
    return v;
}
inline float to_f(__half v) {
    return __half2float(v);
}
inline float to_f(__nv_bfloat16 v) {
    return __bfloat162float(v);
}
inline void from_f(float &d, float v) {
    d = v;
}
inline void from_f(__half &d, float v) {
    d = __float2half_rn(v);
}
inline void from_f(__nv_bfloat16 &d, float v) {
    d = __float2bfloat16_rn(v);
}
inline int lane() {
    return (int)(threadIdx.x & 31);
}
inline void check(const void *p, unsigned ldm, size_t elem, const char *what) {
    if (((uintptr_t)p & 31) || (ldm * elem) % 16) {
        fprintf(stderr,
                "EMU: %s: pointer %p not 32-byte aligned or ldm %u x %zu bytes not a "
                "multiple of 16\n",
                what, p, ldm, elem);
        abort();
    }
}
// Memory index of logical element (r, c) of a matrix stored row- or column-major.
inline size_t at(int r, int c, unsigned ldm, bool row) {
    return row ? (size_t)r * ldm + c : (size_t)c * ldm + r;
}
template <class T, class F> void load(F &f, const T *p, unsigned ldm, bool row) {
    check(p, ldm, sizeof(T), "load_matrix_sync");
    emu::warp_meet();
    const int r = lane() / 2, c0 = (lane() % 2) * 8;
    for (int i = 0; i < 8; i++) f.x[i] = p[at(r, c0 + i, ldm, row)];
}
} // namespace detail

template <class T, class L>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    detail::load(f, p, ldm, std::is_same<L, row_major>::value);
}
template <class T, class L>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    detail::load(f, p, ldm, std::is_same<L, row_major>::value);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t l) {
    detail::load(f, p, ldm, l == mem_row_major);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t l) {
    detail::check(p, ldm, sizeof(float), "store_matrix_sync");
    emu::warp_meet();
    const int r = detail::lane() / 2, c0 = (detail::lane() % 2) * 8;
    for (int i = 0; i < 8; i++) p[detail::at(r, c0 + i, ldm, l == mem_row_major)] = f.x[i];
}
template <class U, class T, class L, class V>
inline void fill_fragment(fragment<U, 16, 16, 16, T, L> &f, V v) {
    for (int i = 0; i < 8; i++) detail::from_f(f.x[i], detail::to_f(v));
}
template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    float mine[2][8], out[8];
    for (int i = 0; i < 8; i++)
        mine[0][i] = detail::to_f(a.x[i]), mine[1][i] = detail::to_f(b.x[i]);
    const int l = detail::lane(), base = (int)threadIdx.x - l;
    emu::mma_pub[threadIdx.x] = &mine[0][0];
    emu::warp_meet();
    const int r = l / 2, c0 = (l % 2) * 8;
    for (int i = 0; i < 8; i++) {
        float s = c.x[i];
        for (int k = 0; k < 16; k++) {
            // A(r, k) is lane 2r + k/8's element k%8; B(k, n) lane 2k + n/8's element n%8
            const float av = emu::mma_pub[base + 2 * r + k / 8][k % 8];
            const float bv = emu::mma_pub[base + 2 * k + (c0 + i) / 8][8 + (c0 + i) % 8];
            s = fmaf(av, bv, s);
        }
        out[i] = s;
    }
    emu::warp_meet();
    for (int i = 0; i < 8; i++) d.x[i] = out[i];
}
} // namespace wmma
} // namespace nvcuda
