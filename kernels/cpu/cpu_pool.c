// cpu_pool.c - see cpu_pool.h.
//
// One job at a time. state packs the job's generation (high 32 bits) and its
// next unclaimed item (low 32): an item is claimed by a compare-and-swap that
// also checks the generation, so a helper that wakes late, after its job is
// over, can never run an item of the next one with the old job's function.
// Before the next job's fn, ctx and n are written, state is closed (its item
// set to UINT32_MAX): a helper still in the old generation that reads the new
// n (larger than the old) then finds nothing to claim, instead of claiming an
// item past the old job's end with the new job's function (seen in testing:
// an item run twice and the new job's done count off by one).
// A finished item adds one to done; the caller returns when done == n.
// Idle helpers spin ~100 us on state (the next op of a step comes within
// microseconds), then sleep on a condition variable until the next job.
#include "cpu_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

#define POOL_SPIN_NS 100000 // idle helpers spin this long before sleeping

struct cpu_pool {
    int threads;
    pthread_t *helpers;
    _Atomic uint64_t state; // generation << 32 | next item
    _Atomic uintptr_t fn, ctx;
    _Atomic int n, done, stop, sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct {
    cpu_pool *p;
    int worker;
} helper_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claim and run items of generation gen until none is left (or the job is
// over, which a late helper finds out here).
static void work(cpu_pool *p, uint32_t gen, int worker) {
    const cpu_pool_fn fn = (cpu_pool_fn)atomic_load_explicit(&p->fn, memory_order_acquire);
    void *ctx = (void *)atomic_load_explicit(&p->ctx, memory_order_acquire);
    const uint32_t n = (uint32_t)atomic_load_explicit(&p->n, memory_order_acquire);
    uint64_t s = atomic_load(&p->state);
    for (;;) {
        if ((uint32_t)(s >> 32) != gen || (uint32_t)s >= n) return;
        // a successful claim proves the job was still open, so fn, ctx and n
        // read above were this generation's
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1)) continue;
        fn(ctx, (int)(uint32_t)s, worker);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        s = atomic_load(&p->state);
    }
}

// A new generation, or stop: spin a while, then sleep.
static uint32_t wait_job(cpu_pool *p, uint32_t seen) {
    const uint64_t t0 = now_ns();
    for (int i = 0;; i++) {
        const uint32_t g = (uint32_t)(atomic_load(&p->state) >> 32);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
        if ((i & 255) == 255 && now_ns() - t0 > POOL_SPIN_NS) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    uint32_t g;
    while ((g = (uint32_t)(atomic_load(&p->state) >> 32)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *helper_main(void *arg) {
    helper_arg *a = arg;
    cpu_pool *p = a->p;
    const int worker = a->worker;
    free(a);
    uint32_t seen = (uint32_t)(atomic_load(&p->state) >> 32);
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        work(p, seen, worker);
    }
}

cpu_pool *cpu_pool_create(int threads, char *err) {
    cpu_pool *p = llm_calloc(1, sizeof *p, err);
    if (!p) return NULL;
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->helpers = llm_calloc((size_t)p->threads, sizeof(pthread_t), err);
    if (!p->helpers) {
        cpu_pool_destroy(p);
        return NULL;
    }
    for (int w = 1; w < p->threads; w++) {
        helper_arg *a = malloc(sizeof *a);
        if (a) *a = (helper_arg){p, w};
        if (!a || pthread_create(&p->helpers[w], NULL, helper_main, a) != 0) {
            free(a);
            llm_errf(err, "cpu backend: cannot start helper thread %d of %d", w, p->threads - 1);
            p->threads = w; // the ones started are joined
            cpu_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void cpu_pool_destroy(cpu_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int w = 1; p->helpers && w < p->threads; w++) pthread_join(p->helpers[w], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->helpers);
    free(p);
}

int cpu_pool_threads(const cpu_pool *p) {
    return p->threads;
}

int cpu_pool_chunk(const cpu_pool *p, int n) {
    const int want = 4 * p->threads; // items, for balance when a thread is slow
    return n <= want ? 1 : (n + want - 1) / want;
}

void cpu_pool_run(cpu_pool *p, int n, cpu_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (p->threads == 1 || n == 1) {
        for (int i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    const uint32_t old = (uint32_t)(atomic_load(&p->state) >> 32);
    atomic_store(&p->state, (uint64_t)old << 32 | UINT32_MAX); // closed: see the top
    atomic_store_explicit(&p->fn, (uintptr_t)fn, memory_order_release);
    atomic_store_explicit(&p->ctx, (uintptr_t)ctx, memory_order_release);
    atomic_store_explicit(&p->n, n, memory_order_release);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    const uint32_t gen = old + 1;
    atomic_store(&p->state, (uint64_t)gen << 32); // publishes the fields above
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    work(p, gen, 0);
    for (int i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; i++) {
        cpu_relax();
        if ((i & 1023) == 1023) sched_yield(); // a helper holds an item and waits for a core
    }
}
