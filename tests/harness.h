// harness.h - a tiny C test harness. Each test file defines tests with TEST();
// they register themselves before main() and tests/harness.c runs them all,
// printing "N passed, N failed[, N skipped]".
//
//   TEST(safetensors_rejects_truncated) {
//       CHECK(st_open("x", err) == NULL);
//   }
//
// Tests run from the repository root; `unit_tests NAME...` runs only the tests
// whose name contains one of the given substrings.
#ifndef LLM_HARNESS_H
#define LLM_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*harness_fn)(void);

void harness_register(const char *name, harness_fn fn);
void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Marks the running test as skipped (with a reason) instead of passed.
void harness_skip(const char *reason);

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void harness_reg_##name(void) {                            \
        harness_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) harness_fail(__FILE__, __LINE__, "%s", #cond);                                \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) harness_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long ha_ = (long long)(a), hb_ = (long long)(b);                                      \
        if (ha_ != hb_)                                                                            \
            harness_fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, ha_, hb_);         \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *ha_ = (a), *hb_ = (b);                                                         \
        if (!ha_ || !hb_ || strcmp(ha_, hb_) != 0)                                                 \
            harness_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b,                \
                         ha_ ? ha_ : "(null)", hb_ ? hb_ : "(null)");                              \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double ha_ = (double)(a), hb_ = (double)(b);                                               \
        if (!(fabs(ha_ - hb_) <= (tol)))                                                           \
            harness_fail(__FILE__, __LINE__, "%s ~= %s (%g vs %g, tol %g)", #a, #b, ha_, hb_,      \
                         (double)(tol));                                                           \
    } while (0)

// Substring check, for error messages.
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *ha_ = (hay), *hb_ = (needle);                                                  \
        if (!ha_ || !strstr(ha_, hb_))                                                             \
            harness_fail(__FILE__, __LINE__, "\"%s\" contains \"%s\"", ha_ ? ha_ : "(null)", hb_); \
    } while (0)

#endif
