/*
 * wfixture.h -- a worker daemon (worker/) in a test: a real qn_worker in a
 * private temp folder, talking to a fake master (a ROUTER socket the test
 * reads), with a shell script in place of quern-task. For the unit tests
 * of the worker's modules, which are driven by calling them directly
 * (there is no loop running).
 */
#ifndef QN_TEST_WFIXTURE_H
#define QN_TEST_WFIXTURE_H

#include "helpers.h"

#include "../worker/attempts.h"
#include "../worker/worker.h"
#include "../worker/wstate.h"
#include "util.h"
#include "wire.h"

#include <sys/stat.h>
#include <time.h>
#include <zlib.h>
#include <zmq.h>

typedef struct {
    char *dir;                /* private: work dir, data dir, task script */
    char *task, *work, *data; /* the task script and folders in it */
    char endpoint[512];       /* the fake master's */
    void *ctx, *master;       /* its ROUTER */
    qn_frames in;
    qn_worker *w;
} wfix;

/* What a fixture's worker is given. */
typedef struct {
    const char *task;     /* the task script's body (sh); NULL: exit 0 */
    int data;             /* with a data dir */
    unsigned task_mem_mb; /* --task-mem-mb */
} wfix_opts;

/* DIR/name into a fresh string; free it. */
static inline char *wfix_path(const wfix *f, const char *name)
{
    qn_buf b = {0};
    qn_buf_printf(&b, "%s/%s", f->dir, name);
    return b.data;
}

/* Start a worker as o says, connected to a fake master. */
static inline void wfix_start(wfix *f, const wfix_opts *o)
{
    memset(f, 0, sizeof *f);
    f->dir = qn_test_tmpdir();
    f->task = wfix_path(f, "task.sh");
    f->work = wfix_path(f, "work");
    f->data = wfix_path(f, "data");
    FILE *s = fopen(f->task, "w");
    cr_assert_not_null(s);
    fprintf(s, "#!/bin/sh\n%s\n", o->task ? o->task : "exit 0");
    fclose(s);
    chmod(f->task, 0755);
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s/master", f->dir);
    f->ctx = zmq_ctx_new();
    f->master = qn_wire_socket(f->ctx, ZMQ_ROUTER);
    cr_assert_eq(zmq_bind(f->master, f->endpoint), 0);
    qn_worker_config cfg = {.master = f->endpoint,
                            .slots = 2,
                            .work_dir = f->work,
                            .data_dir = o->data ? f->data : NULL,
                            .task_bin = f->task,
                            .task_mem_mb = o->task_mem_mb};
    char err[512] = "";
    f->w = qn_worker_new(&cfg, err, sizeof err);
    cr_assert_not_null(f->w, "%s", err);
}

static inline void wfix_stop(wfix *f)
{
    qn_worker_destroy(&f->w);
    zmq_close(f->master);
    zmq_ctx_term(f->ctx);
    qn_frames_release(&f->in);
    qn_rmtree(f->dir);
    free(f->dir);
    free(f->task);
    free(f->work);
    free(f->data);
}

/*
 * The next message of kind body (others are skipped) the fake master
 * gets within ms, decoded (free it with qn_wire_free), or NULL.
 */
static inline Quern__Envelope *wfix_next(wfix *f, int body, int ms)
{
    int64_t until = qn_now_ms() + ms;
    for (;;) {
        int64_t left = until - qn_now_ms();
        zmq_pollitem_t it = {.socket = f->master, .events = ZMQ_POLLIN};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) != 1)
            return NULL;
        cr_assert_eq(qn_wire_recv(f->master, 1, &f->in), 1);
        Quern__Envelope *env = NULL;
        char err[256];
        cr_assert_eq(qn_wire_decode(f->in.env.data, f->in.env.len, &env, NULL,
                                    err, sizeof err),
                     0, "%s", err);
        if ((int)env->body_case == body)
            return env;
        qn_wire_free(env);
    }
}

/* The next TaskUpdate (for the attempt of job task attempt), which must
 * come within 10 s. */
static inline Quern__Envelope *wfix_update(wfix *f, const char *job,
                                           unsigned task, unsigned attempt)
{
    Quern__Envelope *env =
        wfix_next(f, QUERN__ENVELOPE__BODY_TASK_UPDATE, 10000);
    cr_assert_not_null(env, "no task update reached the master");
    const Quern__TaskUpdate *u = env->task_update;
    cr_assert_str_eq(u->worker_id, f->w->id);
    cr_assert_str_eq(u->attempt->job_id, job);
    cr_assert_eq(u->attempt->task, task);
    cr_assert_eq(u->attempt->attempt, attempt);
    return env;
}

/* Shard index of dataset, holding the string data, put in the worker's
 * store (it must have one) as an upload would. */
static inline void wfix_put_shard(wfix *f, const char *dataset, uint32_t index,
                                  const char *data)
{
    char err[512] = "";
    size_t len = strlen(data);
    uint32_t crc =
        (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data, (uInt)len);
    cr_assert_eq(qn_store_upload(f->w->store, "t", dataset, index, 0, data, len,
                                 1, len, crc, 1000, err, sizeof err),
                 0, "%s", err);
}

/* An attempt's name as the master writes it. */
static inline Quern__AttemptRef wfix_ref(const char *job, int kind,
                                         unsigned task, unsigned attempt)
{
    Quern__AttemptRef r = QUERN__ATTEMPT_REF__INIT;
    r.job_id = (char *)job;
    r.kind = kind;
    r.task = task;
    r.attempt = attempt;
    return r;
}

/* Reap attempts until none is left (within 10 s). */
static inline void wfix_reap_all(wfix *f)
{
    int64_t until = qn_now_ms() + 10000;
    while (f->w->att.n > 0) {
        cr_assert_lt(qn_now_ms(), until, "an attempt did not end");
        qn_attempts_reap(f->w);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/*
 * An assignment as the master sends it, decoded as the worker gets it
 * (free it with qn_wire_free): a map of job, with one input file, whose
 * plugin has hash ("" for none), shipping files[0..nfiles).
 */
static inline Quern__Envelope *
wfix_assignment_files(const char *job, int kind, unsigned task,
                      unsigned attempt, const char *hash,
                      Quern__ShippedFile **files, size_t nfiles)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    Quern__TaskSpec spec = QUERN__TASK_SPEC__INIT;
    Quern__InputPiece pc = QUERN__INPUT_PIECE__INIT, *pcp = &pc;
    spec.job_id = (char *)job;
    spec.kind = kind;
    spec.task = task;
    spec.attempt = attempt;
    spec.plugin = (char *)"/master/job.so";
    spec.plugin_hash = (char *)hash;
    spec.nreduce = 1;
    spec.files = files;
    spec.n_files = nfiles;
    pc.path = (char *)"/data/in.txt";
    pc.name = (char *)"in.txt";
    spec.inputs = &pcp;
    spec.n_inputs = kind == QUERN__TASK_KIND__REDUCE ? 0 : 1;
    at.spec = &spec;
    env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
    env.assign_task = &at;
    qn_buf b = {0};
    cr_assert_eq(qn_wire_pack(&env, &b), 0);
    Quern__Envelope *out = NULL;
    char err[256];
    cr_assert_eq(qn_wire_decode(b.data, b.len, &out, NULL, err, sizeof err), 0,
                 "%s", err);
    qn_buf_release(&b);
    return out;
}

/* The same, shipping no files. */
static inline Quern__Envelope *wfix_assignment(const char *job, int kind,
                                               unsigned task, unsigned attempt,
                                               const char *hash)
{
    return wfix_assignment_files(job, kind, task, attempt, hash, NULL, 0);
}

#endif
