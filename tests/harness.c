#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>

#define HARNESS_MAX_TESTS 4096

static struct {
    const char *name;
    harness_fn fn;
} tests[HARNESS_MAX_TESTS];
static int n_tests;
static int cur_failed, cur_skipped;
static const char *cur_name;

void harness_register(const char *name, harness_fn fn) {
    if (n_tests == HARNESS_MAX_TESTS) {
        fprintf(stderr, "harness: more than %d tests\n", HARNESS_MAX_TESTS);
        abort();
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

void harness_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s (%s:%d): ", cur_name, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cur_failed++;
}

void harness_skip(const char *reason) {
    fprintf(stderr, "  skip %s: %s\n", cur_name, reason);
    cur_skipped = 1;
}

static int selected(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        cur_name = tests[i].name;
        cur_failed = 0;
        cur_skipped = 0;
        tests[i].fn();
        if (cur_failed) {
            failed++;
            fprintf(stderr, "FAIL %s\n", cur_name);
        } else if (cur_skipped) {
            skipped++;
        } else {
            passed++;
            printf("ok   %s\n", cur_name);
        }
    }
    fflush(stdout);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
