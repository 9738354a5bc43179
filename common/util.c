#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int llm_errf(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, LLM_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void *llm_malloc(size_t n, char *err) {
    void *p = malloc(n ? n : 1);
    if (!p) llm_errf(err, "out of memory allocating %zu bytes", n);
    return p;
}

void *llm_calloc(size_t count, size_t size, char *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) llm_errf(err, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

char *llm_read_file(const char *path, size_t *len, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        llm_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        llm_errf(err, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = llm_malloc(n + 1, err);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    if (n && fread(buf, 1, n, f) != n) {
        llm_errf(err, "%s: short read", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int llm_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *llm_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

double llm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define PROGRESS_REDRAW_S 0.1 // redraw at most ten times a second
#define PROGRESS_WIDTH 30

static void progress_draw(llm_progress *p) {
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1.0) frac = 1.0;
    int fill = (int)(frac * PROGRESS_WIDTH);
    char bar[PROGRESS_WIDTH + 1];
    for (int i = 0; i < PROGRESS_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[PROGRESS_WIDTH] = '\0';
    fprintf(stderr, "\r%s [%s] %5.1f%% %.1fs", p->label, bar, 100.0 * frac, llm_now() - p->t_start);
    fflush(stderr);
}

void llm_progress_start(llm_progress *p, const char *label, uint64_t total) {
    p->label = label;
    p->total = total;
    p->done = 0;
    p->t_start = llm_now();
    p->t_last_draw = 0;
    p->is_tty = isatty(STDERR_FILENO);
}

void llm_progress_add(llm_progress *p, uint64_t n) {
    p->done += n;
    if (!p->is_tty) return;
    double t = llm_now();
    if (t - p->t_last_draw < PROGRESS_REDRAW_S) return;
    p->t_last_draw = t;
    progress_draw(p);
}

void llm_progress_finish(llm_progress *p) {
    if (!p->is_tty) return;
    p->done = p->total;
    progress_draw(p);
    fputc('\n', stderr);
}

const char *llm_fmt_bytes(uint64_t bytes, char *buf, size_t buflen) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, buflen, "%.2f %s", v, units[u]);
    return buf;
}

void llm_run_dir(char *buf, size_t buflen, const char *dir, const char *prefix) {
    if (dir) {
        snprintf(buf, buflen, "%s", dir);
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(buf, buflen, "results/%s%s", prefix, stamp);
}

// Each dash-separated part of w (length wl) a prefix of the same part of name.
static int parts_prefix(const char *w, size_t wl, const char *name) {
    const char *we = w + wl;
    while (w < we) {
        size_t a = strcspn(w, "-"), b = strcspn(name, "-");
        if (a > (size_t)(we - w)) a = (size_t)(we - w);
        if (!a || a > b || strncmp(w, name, a)) return 0;
        w += a, name += b;
        if (w < we) { // both go on past a dash
            if (*name != '-') return 0;
            w++, name++;
        }
    }
    return !*name;
}

static size_t edit_distance(const char *a, size_t n, const char *b) {
    size_t m = strlen(b), row[128];
    if (n >= 127 || m >= 127) return (size_t)-1;
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

const char *llm_closest_name(const char *word, const void *table, size_t n, size_t stride) {
    while (*word == '-') word++;
    size_t wl = strcspn(word, "=");
    if (!wl) return NULL;
    const char *best = NULL;
    size_t best_d = wl / 3 + 2; // accepted: a distance below this
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)table + i * stride);
        if (!name) break;
        if (parts_prefix(word, wl, name)) return name;
        size_t d = edit_distance(word, wl, name);
        if (d < best_d) best_d = d, best = name;
    }
    return best;
}

uint64_t llm_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    int n = f ? fscanf(f, "%llu %llu", &size, &resident) : 0;
    if (f) fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

void llm_omp_default_wait(char **argv) {
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") &&
        setenv("GOMP_SPINCOUNT", "5000", 1) == 0)
        execv("/proc/self/exe", argv); // returns only on failure: go on as we are
}

void llm_bad_flag(const char *prog, const char *arg, int missing_value, const void *table,
                  size_t stride) {
    if (missing_value) {
        fprintf(stderr, "%s: %s needs a value (%s --help lists the flags)\n", prog, arg, prog);
        return;
    }
    size_t n = 0;
    while (*(const char *const *)((const char *)table + n * stride)) n++;
    const char *near = llm_closest_name(arg, table, n, stride);
    fprintf(stderr, "%s: unknown flag '%s'", prog, arg);
    if (near) fprintf(stderr, "; did you mean --%s?", near);
    fprintf(stderr, " (%s --help lists the flags)\n", prog);
}
