// cpu_pool.h - the CPU backend's threads: a caller and n - 1 helpers that
// share each parallel op by claiming its items one at a time.
//
// Why not OpenMP's parallel-for: its barrier waits for every thread to arrive,
// so when another process shares the cores, each op waits for the thread the
// kernel has just descheduled (a time slice, milliseconds) and a decode step
// of a few hundred ops collapses ten-fold. Here the caller works too and
// returns when every item is done, never waiting for a helper that has not
// started: a descheduled helper costs at most the item it holds, and a job of
// one item runs on the caller alone.
#ifndef LLM_CPU_POOL_H
#define LLM_CPU_POOL_H

// fn(ctx, item, worker): worker is 0 (the caller) .. threads - 1, for
// per-thread scratch; items run in any order, each exactly once.
typedef void (*cpu_pool_fn)(void *ctx, int item, int worker);

typedef struct cpu_pool cpu_pool;

// threads >= 1: threads - 1 helpers are started. NULL on failure (err set).
cpu_pool *cpu_pool_create(int threads, char *err);
void cpu_pool_destroy(cpu_pool *p);
int cpu_pool_threads(const cpu_pool *p);
// Runs fn on items 0 .. n - 1 and returns when all are done. Not reentrant:
// one caller thread at a time.
void cpu_pool_run(cpu_pool *p, int n, cpu_pool_fn fn, void *ctx);
// Items of `chunk` rows each for n rows, at least 4 per thread when there are
// enough rows: the rows of item i are [i * chunk, min(n, (i + 1) * chunk)).
int cpu_pool_chunk(const cpu_pool *p, int n);

#endif
