/*
 * util.c -- see util.h.
 */

#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/* A fuzzing build's clock is the fuzz target's to set (qn_fuzz_set_now),
 * so that an input replays the same and can make time pass. */
static int64_t s_fuzz_now = -1;

void qn_fuzz_set_now(int64_t now_ms)
{
    s_fuzz_now = now_ms;
}
#endif

int64_t qn_now_ms(void)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (s_fuzz_now >= 0)
        return s_fuzz_now;
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t qn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int qn_parse_size(const char *s, uint64_t *out)
{
    /* strtoull would skip spaces and accept a sign: insist on a digit. */
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case 't':
    case 'T':
        shift = 40;
        end++;
        break;
    default: return -1;
    }
    /* Accept "64M", "64MB" and "64MiB". */
    if (shift && (strcmp(end, "B") == 0 || strcmp(end, "iB") == 0))
        end += strlen(end);
    if (*end)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int qn_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *qn_fmt_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < QN_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

int qn_mkdirs(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (strlen(path) >= sizeof tmp)
        return -ENAMETOOLONG;
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int s_rmtree_at(int dirfd, const char *name)
{
    int rc = 0;
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int r = s_rmtree_at(fd, e->d_name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
        rc = -errno;
    return rc;
}

int qn_rmtree(const char *path)
{
    return s_rmtree_at(AT_FDCWD, path);
}

int qn_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int qn_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int qn_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -QN_ECORRUPT;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int qn_write_file_atomic(const char *path, const void *buf, size_t len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
        (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = qn_write_all(fd, buf, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int qn_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Length of the valid UTF-8 character at p (p[0] != 0), or 0. */
static size_t s_utf8_char(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 1;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    /* A NUL fails this test, so the loop never reads past the string. */
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return n + 1;
}

int qn_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = s_utf8_char(p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

void qn_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = s_utf8_char(p);
        if (!n) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

int qn_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int qn_exe_dir(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n >= cap - 1)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

const char *qn_strerror(int code)
{
    if (code >= 0)
        return "success";
    switch (-code) {
    case QN_ECORRUPT: return "corrupt data";
    case QN_EFULL: return "buffer full";
    case QN_ETOOBIG: return "too large";
    default: return strerror(-code);
    }
}

void *qn_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "quern: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *qn_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "quern: out of memory allocating %zu x %zu bytes\n", n,
                size);
        abort();
    }
    return p;
}

void *qn_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "quern: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

void *qn_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap < 8 ? 8 : *cap;
    while (n < need)
        n *= 2;
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        fprintf(stderr, "quern: out of memory growing to %zu x %zu bytes\n", n,
                size);
        abort();
    }
    p = qn_realloc(p, bytes);
    *cap = n;
    return p;
}

int qn_strv_remove(char **v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(v[i], s) == 0) {
            free(v[i]);
            v[i] = v[--*n];
            return 1;
        }
    }
    return 0;
}

char *qn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(qn_malloc(n), s, n);
}

int qn_buf_reserve(qn_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t need = b->len + extra;
    if (need < b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    char *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int qn_buf_add(qn_buf *b, const void *p, size_t n)
{
    if (qn_buf_reserve(b, n + 1) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0'; /* so text buffers are always strings */
    return 0;
}

int qn_buf_printf(qn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || qn_buf_reserve(b, (size_t)n + 1) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void qn_buf_release(qn_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int qn_output_dir_prepare(const char *dir, char *err, size_t errcap)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errcap, "output %s exists and is not a folder", dir);
            return -1;
        }
        DIR *d = opendir(dir);
        if (!d) {
            snprintf(err, errcap, "output %s: %s", dir, strerror(errno));
            return -1;
        }
        struct dirent *e;
        int empty = 1, committed = 0;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            empty = 0;
            if (strcmp(e->d_name, "_SUCCESS") == 0)
                committed = 1;
        }
        closedir(d);
        if (!empty) {
            snprintf(err, errcap,
                     committed ? "output %s already holds a committed job's "
                                 "output; remove it or choose another folder"
                               : "output %s exists and is not empty; remove "
                                 "it or choose another folder",
                     dir);
            return -1;
        }
        return 0;
    }
    int rc = qn_mkdirs(dir, 0755);
    if (rc < 0) {
        snprintf(err, errcap, "cannot create output %s: %s", dir,
                 strerror(-rc));
        return -1;
    }
    return 0;
}

void qn_output_dir_clean(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "part-", 5) == 0) {
                qn_buf p = {0};
                qn_buf_printf(&p, "%s/%s", dir, e->d_name);
                unlink(p.data);
                qn_buf_release(&p);
            }
        }
        closedir(d);
    }
    qn_buf t = {0};
    qn_buf_printf(&t, "%s/_temporary", dir);
    qn_rmtree(t.data);
    qn_buf_release(&t);
    rmdir(dir); /* only if nothing else is in it */
}

int qn_output_part_commit(const char *dir, const char *job_id, unsigned part,
                          unsigned attempt, const char *ext, char *why,
                          size_t cap)
{
    qn_buf from = {0}, to = {0};
    qn_buf_printf(&from, "%s/_temporary/%s/part-%05u.a%u", dir, job_id, part,
                  attempt);
    qn_buf_printf(&to, "%s/part-%05u%s", dir, part, ext);
    int rc = rename(from.data, to.data);
    if (rc < 0)
        snprintf(why, cap, "cannot rename %s to %s: %s", from.data, to.data,
                 strerror(errno));
    qn_buf_release(&from);
    qn_buf_release(&to);
    return rc < 0 ? -1 : 0;
}

int qn_output_dir_commit(const char *dir, char *why, size_t cap)
{
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/_SUCCESS", dir);
    int rc = qn_write_file_atomic(p.data, "", 0);
    if (rc == 0)
        rc = qn_fsync_dir(dir); /* the part renames too */
    if (rc < 0) {
        snprintf(why, cap, "cannot write %s: %s", p.data, strerror(-rc));
    } else {
        qn_buf t = {0};
        qn_buf_printf(&t, "%s/_temporary", dir);
        qn_rmtree(t.data);
        qn_buf_release(&t);
    }
    qn_buf_release(&p);
    return rc < 0 ? -1 : 0;
}

void *qn_big_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void qn_big_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

uint64_t qn_random_u64(void)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* A secret the fuzzer can guess, so that it reaches what a worker's
     * messages do (make fuzz); never so in a real build. */
    return 1;
#endif
    uint64_t v = 0;
    while (v == 0) {
        ssize_t n = getrandom(&v, sizeof v, 0);
        if (n != (ssize_t)sizeof v) {
            /* Too early in boot, or no getrandom: mix the clock and pid,
             * which a peer cannot read from here. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                         ((uint64_t)getpid() << 16) ^ (uintptr_t)&v;
            v = qn_splitmix64(&s);
        }
    }
    return v;
}
