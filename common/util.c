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
