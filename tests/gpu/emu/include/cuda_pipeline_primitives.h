// cuda_pipeline_primitives.h - stands in for CUDA's asynchronous-copy
// primitives under the CPU emulation (see emu.h).
//
// __pipeline_memcpy_async(dst, src, 4/8/16) on an emulated sm_80 or later
// (EMU_CC >= 80, where the device has cp.async) records the copy; a
// __pipeline_commit() closes the calling thread's group of recorded copies, and
// __pipeline_wait_prior(n) performs every copy of the thread's groups but the
// n most recent, in order. A copy is thus done at the latest moment the
// hardware may complete it: reading its destination before the wait that
// covers it sees the old contents (another thread's copies need that thread's
// wait and then a barrier, as on the device). Copies never committed are
// never performed (no wait covers them, as with cp.async.wait_group). Below
// sm_80 the copy is synchronous, as the CUDA header makes it there. zfill
// bytes at the end of dst are zeroed instead of copied. Source and
// destination must be aligned to the size; a violation aborts.
#pragma once
#include "emu.h"

inline void __pipeline_memcpy_async(void *dst, const void *src, size_t size, size_t zfill = 0) {
    emu::async_copy(dst, src, size, zfill);
}
inline void __pipeline_commit() {
    emu::async_commit();
}
inline void __pipeline_wait_prior(size_t prior) {
    emu::async_wait(prior);
}
