/*
 * quern.h -- the job author's API.
 *
 * A Quern job is one shared object that defines one `const quern_job` named
 * `quern_job_v1`, most easily with the QUERN_JOB() macro:
 *
 *     #include <quern.h>
 *     static int wc_map(quern_task *t, const void *key, size_t klen,
 *                       const void *val, size_t vlen) { ... }
 *     static int wc_reduce(quern_task *t, const void *key, size_t klen,
 *                          quern_values *vs) { ... }
 *     QUERN_JOB(.name = "wordcount", .map = wc_map, .reduce = wc_reduce,
 *               .combine = wc_reduce);
 *
 * Build it with `cc -shared -fPIC $(pkg-config --cflags quern) job.c -o
 * job.so`. The functions declared at the end are provided by the process
 * that loads the plugin; a plugin links against nothing.
 *
 * Plugins written against this header keep compiling: fields are only ever
 * added at the end of quern_job, and QUERN_ABI changes only when old plugins
 * would break.
 */
#ifndef QUERN_H
#define QUERN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUERN_ABI 1
typedef struct quern_task quern_task;     /* the running task attempt */
typedef struct quern_values quern_values; /* one key's values, in reduce */
enum quern_input { QUERN_LINES = 0, QUERN_WHOLE, QUERN_FIXED };
/* How reduce output is written: `key<TAB>value<LF>` (the default), or the
 * key's bytes and then the value's, nothing added (records that carry
 * their own framing, like fixed-size or newline-terminated ones). */
enum quern_output { QUERN_OUTPUT_LINES = 0, QUERN_OUTPUT_RAW };
typedef struct quern_job {
    unsigned abi;
    const char *name;
    enum quern_input input;
    size_t record_size;
    int (*map)(quern_task *t, const void *key, size_t klen, const void *val,
               size_t vlen);
    int (*reduce)(quern_task *t, const void *key, size_t klen,
                  quern_values *vs);
    int (*combine)(quern_task *t, const void *key, size_t klen,
                   quern_values *vs);
    unsigned (*partition)(quern_task *t, const void *key, size_t klen,
                          unsigned nreduce);
    int (*compare)(const void *a, size_t alen, const void *b, size_t blen);
    int (*setup)(quern_task *t);
    void (*teardown)(quern_task *t);
    enum quern_output output; /* added after ABI 1's first release: a
                                 plugin built before it reads as LINES */
} quern_job;
#define QUERN_JOB(...)                                                         \
    const quern_job quern_job_v1 = {.abi = QUERN_ABI, __VA_ARGS__}

/*
 * Emit one key/value pair. In map it goes to the shuffle, in combine to the
 * map's output (with the key combine was given), in reduce to the job's
 * output as `key<TAB>value<LF>` (or as the bare bytes with
 * QUERN_OUTPUT_RAW). The bytes are copied before it returns.
 * Returns 0, or <0 when the task must stop (return non-zero from the
 * callback then).
 */
int quern_emit(quern_task *t, const void *key, size_t klen, const void *val,
               size_t vlen);

/*
 * Fetch the next value of the key being reduced or combined. Returns 1 and
 * sets *val and *vlen (valid until the next call), or 0 at the end.
 */
int quern_next(quern_values *vs, const void **val, size_t *vlen);

/* Add delta to the named user counter, shown with the job's result. */
void quern_count(quern_task *t, const char *counter, long long delta);

/* The value given as `--arg name=value`, or NULL. */
const char *quern_arg(quern_task *t, const char *name);

/* The job's number of reduce partitions (-R). */
unsigned quern_reducers(quern_task *t);

/* Byte offset of the current map record within its input file. */
unsigned long long quern_offset(quern_task *t);

/*
 * Fail the attempt with a message (printf format). Returns -1, so a callback
 * can `return quern_fail(t, "bad record");`.
 */
int quern_fail(quern_task *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* QUERN_H */
