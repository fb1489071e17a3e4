/*
 * util.h -- small helpers shared by every process: clocks, sizes, paths,
 * a growable byte buffer, and careful reads and writes.
 */
#ifndef QN_UTIL_H
#define QN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Error codes returned (negated) by Quern functions besides -errno. */
#define QN_ECORRUPT 1001 /* bytes on disk or wire fail a check */
#define QN_EFULL 1002    /* a fixed-size buffer has no room */
#define QN_ETOOBIG 1003  /* a record or message exceeds a limit */

#define QN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * bytes of fresh anonymous memory, zeroed and resident only as it is
 * touched, in huge pages where the kernel has them (the sort buffer and
 * the combining table: one fault and TLB entry per 2 MiB). NULL on
 * failure; free with qn_big_free(p, bytes).
 */
void *qn_big_alloc(size_t bytes);
void qn_big_free(void *p, size_t bytes);

/* splitmix64: a small, fast, fully specified generator of 64-bit values,
 * for deterministic test data (not for secrets). */
static inline uint64_t qn_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A nonzero 64-bit value from the kernel's random source, for secrets
 * such as a worker's session with its master. */
uint64_t qn_random_u64(void);

/* a + b, held at the limits instead of overflowing (counters from
 * plugins and peers may be anything). */
static inline long long qn_sat_add(long long a, long long b)
{
    long long r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? __LONG_LONG_MAX__ : -__LONG_LONG_MAX__ - 1;
    return r;
}

/* Shards a dataset may have (64 TiB at the default 64 MiB shard). */
#define QN_SHARDS_MAX (1u << 20)

/* Milliseconds on the monotonic clock. */
int64_t qn_now_ms(void);

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/* Fuzzing builds only: qn_now_ms returns now_ms from here on (-1: the
 * real clock again). */
void qn_fuzz_set_now(int64_t now_ms);
#endif

/* Milliseconds since the Unix epoch (for display only). */
int64_t qn_wall_ms(void);

/*
 * Parse a size such as "64M", "512k", "1G" or "4096" (bytes, powers of
 * 1024). Returns 0 and sets *out, or -1 if s is not a size.
 */
int qn_parse_size(const char *s, uint64_t *out);

/* Parse a decimal unsigned within [min, max]; returns 0 or -1. */
int qn_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Format bytes as "1.5 MiB" into buf; returns buf. */
const char *qn_fmt_bytes(uint64_t n, char *buf, size_t cap);

/* mkdir -p; returns 0 or -errno. */
int qn_mkdirs(const char *path, mode_t mode);

/* rm -rf; returns 0 or -errno of the first failure. */
int qn_rmtree(const char *path);

/* write() all of buf, retrying short writes and EINTR; 0 or -errno. */
int qn_write_all(int fd, const void *buf, size_t len);

/* pwrite() all of buf at off, retrying short writes (a disk that fills
 * says so on the next one) and EINTR; 0 or -errno. */
int qn_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* pread() exactly len bytes at off; 0, -errno, or -QN_ECORRUPT at EOF. */
int qn_pread_all(int fd, void *buf, size_t len, uint64_t off);

/*
 * Write len bytes to path atomically: a temporary file beside it, fsync,
 * rename. Returns 0 or -errno.
 */
int qn_write_file_atomic(const char *path, const void *buf, size_t len);

/*
 * Is s a safe id (job id, worker id): 1 to 64 bytes of [A-Za-z0-9._-], not
 * starting with '.'? Ids become parts of file names.
 */
int qn_id_ok(const char *s);

/* Is s well-formed UTF-8 (no overlong forms, no surrogates)? */
int qn_utf8_valid(const char *s);

/* Replace every byte of s that is not part of valid UTF-8 with '?'. */
void qn_utf8_sanitize(char *s);

/* fsync a directory, so renames in it survive a crash; 0 or -errno. */
int qn_fsync_dir(const char *path);

/* The directory holding the running executable, into buf; 0 or -errno. */
int qn_exe_dir(char *buf, size_t cap);

/* Quern's message for a Quern error code or -errno (code < 0). */
const char *qn_strerror(int code);

/* A growable byte buffer. */
typedef struct qn_buf {
    char *data;
    size_t len;
    size_t cap;
} qn_buf;

/* Make room for extra more bytes; returns 0 or -ENOMEM. */
int qn_buf_reserve(qn_buf *b, size_t extra);

/* Append bytes; returns 0 or -ENOMEM. */
int qn_buf_add(qn_buf *b, const void *p, size_t n);

/* Append printf-formatted text; returns 0 or -ENOMEM. */
int qn_buf_printf(qn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Free the buffer's memory and zero it. */
void qn_buf_release(qn_buf *b);

/* Duplicate a string; aborts on out-of-memory like the allocators below. */
char *qn_strdup(const char *s);

/* malloc/calloc/realloc that abort with a message when memory runs out. */
void *qn_malloc(size_t n);
void *qn_calloc(size_t n, size_t size);
void *qn_realloc(void *p, size_t n);

/*
 * Room for at least need elements of size bytes in the array p, whose
 * capacity (in elements) is *cap: p itself when it has room, or p moved
 * to a block at least twice as large (new elements are not zeroed).
 * Aborts like qn_realloc when memory runs out. Use it through QN_GROW.
 */
void *qn_grow(void *p, size_t *cap, size_t need, size_t size);

/* Make the array p (capacity field cap, a size_t) hold at least need
 * elements: QN_GROW(j->counters, j->cap_counters, j->ncounters + 1). */
#define QN_GROW(p, cap, need) ((p) = qn_grow((p), &(cap), (need), sizeof *(p)))

/*
 * Remove the first string equal to s from the array v of *n strings,
 * freeing it and moving the last one into its place (order is not kept).
 * Returns 1 if one was removed, 0 if none was equal.
 */
int qn_strv_remove(char **v, size_t *n, const char *s);

/*
 * Make dir ready for a job's output: create it when missing, accept it
 * when it is an empty folder. Returns 0, or -1 with a message in err (a
 * file, a committed job's output, a folder with other things in it).
 */
int qn_output_dir_prepare(const char *dir, char *err, size_t errcap);

/*
 * Rename reduce output _temporary/JOB/part-N.aATTEMPT of dir to part-N
 * and the ending ext (".gz" for --output-codec gzip, "" for none): once
 * per partition, for the attempt whose success was accepted. Returns 0,
 * or -1 with why.
 */
int qn_output_part_commit(const char *dir, const char *job_id, unsigned part,
                          unsigned attempt, const char *ext, char *why,
                          size_t cap);

/* Every part is in place: write dir/_SUCCESS durably (the renames too) and
 * remove _temporary/. Returns 0, or -1 with why. */
int qn_output_dir_commit(const char *dir, char *why, size_t cap);

/* Remove a failed job's part files and _temporary/ from dir, and dir
 * itself if nothing else is left in it. */
void qn_output_dir_clean(const char *dir);

#endif
