// util.h - small helpers shared by every part of the engine: error messages,
// checked allocation, a terminal progress bar, wall-clock time.
#ifndef LLM_UTIL_H
#define LLM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Every fallible function takes `char *err` of at least LLM_ERR_LEN bytes and
// writes a human-readable message there on failure (never on success).
#define LLM_ERR_LEN 512

// Formats a message into err (which may be NULL). Returns -1 so callers can
// write `return llm_errf(err, "...")`.
int llm_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// malloc/calloc that return NULL and fill err on failure; zero-size requests
// return a valid pointer.
void *llm_malloc(size_t n, char *err);
void *llm_calloc(size_t count, size_t size, char *err);

// Reads a whole file into a NUL-terminated heap buffer. *len gets the size
// without the terminator (len may be NULL). Returns NULL and fills err on failure.
char *llm_read_file(const char *path, size_t *len, char *err);

// 1 when path names an existing regular file.
int llm_file_exists(const char *path);

// Joins dir and name with one '/'. Returns a heap string, NULL on failure.
char *llm_path_join(const char *dir, const char *name);

// Monotonic wall-clock time in seconds.
double llm_now(void);

// A progress bar on stderr; it draws only when stderr is a terminal, so pipes
// and logs stay quiet.
typedef struct {
    const char *label;
    uint64_t total;
    uint64_t done;
    double t_start;
    double t_last_draw;
    int is_tty;
} llm_progress;

void llm_progress_start(llm_progress *p, const char *label, uint64_t total);
void llm_progress_add(llm_progress *p, uint64_t n);
void llm_progress_finish(llm_progress *p);

// Human-readable byte count ("1.23 GiB") into buf.
const char *llm_fmt_bytes(uint64_t bytes, char *buf, size_t buflen);

// A run's output directory: dir when given, else "results/<prefix>YYYYmmdd-HHMMSS"
// (UTC now), written into buf.
void llm_run_dir(char *buf, size_t buflen, const char *dir, const char *prefix);

// The name closest to word (a mistyped flag: leading dashes and any "=value"
// are ignored) among n entries of a table whose entries start with a
// `const char *name` (struct option, a flag table), `stride` bytes apart; a
// NULL name ends the table early. Matches each dash-separated part as a prefix
// first ("gpu-mem-util" -> "gpu-memory-utilization"), else by edit distance
// (at most a third of the word, plus one). Returns the name, or NULL when none is close.
const char *llm_closest_name(const char *word, const void *table, size_t n, size_t stride);

// Reports a bad command-line flag on stderr in one line: "PROG: unknown flag
// 'ARG'; did you mean --NAME? (PROG --help lists the flags)", naming the
// closest of the table's flags (as llm_closest_name; the table ends at a NULL
// name), or "PROG: ARG needs a value" when missing_value.
void llm_bad_flag(const char *prog, const char *arg, int missing_value, const void *table,
                  size_t stride);

// The process's resident memory (RSS) in bytes, from /proc/self/statm (0 when unknown).
uint64_t llm_rss_bytes(void);

// The OpenMP wait policy of the engine's programs (OpenMP runs the model
// load and the per-step sampling of many rows; the CPU backend's ops run on
// its own pool, kernels/cpu/cpu_pool.h). libgomp's workers spin 300k rounds
// between parallel regions by default, which starves anything else on the
// cores (the server's connection threads, another process); sleeping at once
// (OMP_WAIT_POLICY=PASSIVE) costs a futex wake per region. A short spin keeps
// both. libgomp reads its settings when it loads, so this sets
// GOMP_SPINCOUNT=5000 and runs the program afresh (execv of /proc/self/exe),
// unless the user set either variable. Call it first in main; returns only
// when nothing was changed or the exec failed.
void llm_omp_default_wait(char **argv);

#ifdef __cplusplus
}
#endif

#endif
