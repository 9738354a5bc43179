// bench_stats.c - see bench_stats.h.
#include "bench_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

// Resident set size of this process, bytes (VmRSS; 0 when unreadable).
uint64_t bench_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
    fclose(f);
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

mem_baseline bench_baseline_now(device_kind want) {
    mem_baseline b = {bench_rss_bytes(), 0};
    device_info d;
    char err[LLM_ERR_LEN];
    if (want != DEVICE_CPU && device_select(want, &d, err) == 0 && d.kind == DEVICE_CUDA)
        b.gpu = d.total_bytes - d.free_bytes;
    return b;
}

uint64_t bench_measured_growth(const engine *e, const mem_baseline *b) {
    if (engine_device(e)->kind == DEVICE_CUDA) {
        uint64_t free_b, total_b;
        engine_memory_info(e, &free_b, &total_b);
        return total_b - free_b > b->gpu ? total_b - free_b - b->gpu : 0;
    }
    uint64_t rss = bench_rss_bytes();
    return rss > b->cpu ? rss - b->cpu : 0;
}

double bench_copy_bandwidth_gbs(void) {
    const size_t n = (size_t)128 << 20, chunks = 64;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b) {
        free(a);
        free(b);
        return NAN;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = INFINITY;
    for (int rep = 0; rep < 5; rep++) {
        double t = llm_now();
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < chunks; c++)
            memcpy(b + c * (n / chunks), a + c * (n / chunks), n / chunks);
        t = llm_now() - t;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    return 2.0 * (double)n / best / 1e9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_pct(double *v, int n, double p) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double r = p / 100 * (n - 1);
    int i = (int)r;
    return i + 1 < n ? v[i] + (v[i + 1] - v[i]) * (r - i) : v[n - 1];
}

double bench_mean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : NAN;
}

double bench_stddev(const double *v, int n) {
    double m = bench_mean(v, n), s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return n > 1 ? sqrt(s / (n - 1)) : 0;
}
