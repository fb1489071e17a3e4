/*
 * helpers.h -- shared by the Criterion unit tests.
 *
 * Every test suite uses QN_TEST_SUITE(name) fixtures so that, under
 * AddressSanitizer (make asan), a test that leaks fails: LeakSanitizer is
 * asked for a report in the fixture's teardown, and the test aborts if it
 * finds anything (Criterion would otherwise count a leaking test as
 * passing). Without ASan the check does nothing.
 */
#ifndef QN_TEST_HELPERS_H
#define QN_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define QN_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QN_HAVE_LSAN 1
#endif
#endif

#ifdef QN_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
static inline void qn_test_leak_check(void)
{
    if (__lsan_do_recoverable_leak_check() != 0) {
        fprintf(stderr, "memory leaked by this test (see above)\n");
        abort();
    }
}
#else
static inline void qn_test_leak_check(void)
{
}
#endif

/* A fresh private temp folder for a test; free the result. */
static inline char *qn_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/quern-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(p))
        cr_assert_fail("mkdtemp failed");
    return p;
}

/*
 * The bytes of a file the build made, $BUILD/rel ("build" when BUILD is
 * not set), read whole: the test fails if it cannot be read. Free the
 * result; its length goes to *len.
 */
static inline unsigned char *qn_test_build_file(const char *rel, size_t *len)
{
    const char *build = getenv("BUILD");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", build && *build ? build : "build",
             rel);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (make all builds it)", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap);
    size_t got;
    while (p && (got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            p = realloc(p, cap *= 2);
    }
    fclose(f);
    cr_assert_not_null(p, "out of memory reading %s", path);
    *len = n;
    return p;
}

/* Send stderr to the file path (created or emptied) until
 * qn_test_stderr_back(the returned descriptor). */
static inline int qn_test_stderr_to(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "cannot create %s", path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    return saved;
}

/* A deterministic pseudo-random generator (xorshift64) for test data:
 * the same state gives the same sequence on every machine. state must
 * not be 0. */
static inline uint64_t qn_test_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* dir/name into out, failing the test if it does not fit. */
static inline void qn_test_join(char *out, size_t cap, const char *dir,
                                const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    cr_assert(n > 0 && (size_t)n < cap, "path too long");
}

static inline void qn_test_stderr_back(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

#endif
