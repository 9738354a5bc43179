// bench_stats.h - what bench_engine measures besides the engine itself: the
// process's resident memory, the device memory an engine grew by, the host's
// copy bandwidth (the decode floor), and the statistics of repeated runs.
#ifndef LLM_BENCH_STATS_H
#define LLM_BENCH_STATS_H

#include <stdint.h>

#include "engine.h"

// Resident set size of this process, bytes (VmRSS; 0 when unreadable).
uint64_t bench_rss_bytes(void);

// Memory in use on the device the engine runs on: device memory in use
// (cudaMemGetInfo) on a GPU, this process's RSS on the CPU.
typedef struct {
    uint64_t cpu; // RSS before any engine
    uint64_t gpu; // device memory in use before any engine (0 without a GPU)
} mem_baseline;

// The baseline now, before an engine on a device of kind `want` exists.
mem_baseline bench_baseline_now(device_kind want);

// Growth of the engine's device memory since the baseline.
uint64_t bench_measured_growth(const engine *e, const mem_baseline *b);

// Copy bandwidth of host memory, GB/s of bytes read + written: the best of 5
// parallel copies of 128 MiB (NAN when out of memory). The floor decode
// bandwidth is compared with.
double bench_copy_bandwidth_gbs(void);

// Percentile p (0..100) of v[n], linear between ranks as numpy's default
// (sorts v in place); NAN when n == 0.
double bench_pct(double *v, int n, double p);
// Mean of v[n] (NAN when n == 0); sample standard deviation (0 when n < 2).
double bench_mean(const double *v, int n);
double bench_stddev(const double *v, int n);

#endif
