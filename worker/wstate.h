/*
 * wstate.h -- the worker daemon's state, shared by its modules: the
 * session with the master (masterlink.c), the attempts running here
 * (attempts.c), the assignments waiting for their plugin (assign.c), and
 * what holds them together (worker.c). Each module changes only its own
 * part; the others read it.
 */
#ifndef QN_WSTATE_H
#define QN_WSTATE_H

#include "curve.h"
#include "gasp.h"
#include "shuffle.h"
#include "store.h"
#include "util.h"
#include "wconfig.h"
#include "wire.h"

#include <stdint.h>
#include <sys/types.h>

#define QN_WORKER_ID_MAX 72 /* a worker's or a job's id, with its NUL */

/* An attempt as the master names it. */
typedef struct qn_attempt_ref {
    char job_id[QN_WORKER_ID_MAX];
    int kind; /* QUERN__TASK_KIND__* */
    unsigned task, attempt;
} qn_attempt_ref;

/* r as the wire names it (out points into r: r must outlive it). */
static inline void qn_attempt_ref_wire(Quern__AttemptRef *out,
                                       const qn_attempt_ref *r)
{
    quern__attempt_ref__init(out);
    out->job_id = (char *)r->job_id;
    out->kind = r->kind;
    out->task = r->task;
    out->attempt = r->attempt;
}

/* One attempt running here, in its own quern-task process. */
typedef struct qn_attempt {
    qn_attempt_ref ref;
    pid_t pid;
    qn_stream st; /* control channel (st.fd) */
    char *stderr_path;
    Quern__Envelope *final; /* the task's last word, until it exits */
    char *bad_msg;          /* why its channel was closed early */
    int cancelled;
    qn_gasp *gasp; /* the record a map is in, shared with it */
    char **shards; /* map: its input pieces' names, for reports */
    size_t nshards;
    uint64_t records, bytes; /* how far it got, from its reports */
    qn_buf out;              /* frames for the task not yet written */
    size_t out_off;
    char *copy_tmp;          /* COPY: the file it writes */
    qn_shard copy_shard;     /* COPY: what it copies */
    uint64_t mem_killed;     /* resident bytes when killed over the cap */
    uint32_t cpu_timeout_ms; /* CPU time it may use past each progress */
    int64_t cpu_rearm_at;    /* when its CPU limits may next move on */
    long cpu_at_progress;    /* CPU seconds it had used at its last report */
    long cpu_killed;         /* CPU seconds past it when the worker killed
                              * it for them (0: it did not) */
    uint64_t mem_cap;        /* its address space at most (0: no cap) */
} qn_attempt;

/* The attempts running here. */
typedef struct qn_attempts {
    qn_attempt *v;
    size_t n, cap;
    int64_t next_mem_check; /* when capped tasks' memory is next read */
    int64_t next_cpu_check; /* when tasks' CPU time is next read (when the
                             * kernel's limit cannot be moved on) */
} qn_attempts;

/* An assignment waiting for its plugin or shipped files to arrive from the
 * master. */
typedef struct qn_waiting {
    Quern__TaskSpec *spec; /* owned */
    int64_t asked;         /* when what it lacks was last asked for */
} qn_waiting;

/* The assignments waiting for their plugin or files. */
typedef struct qn_waitlist {
    qn_waiting *v;
    size_t n, cap;
} qn_waitlist;

/* A success told to the master, kept until its job ends: a restarted
 * master hears it again. */
typedef struct qn_told {
    qn_attempt_ref ref;
    uint8_t *update; /* the packed TaskUpdate */
    size_t len;
} qn_told;

/* The session with the master. */
typedef struct qn_wlink {
    void *sock; /* DEALER */
    qn_frames in;
    int welcomed;
    uint64_t session; /* from the master's welcome: our messages carry it */
    int64_t heard;    /* when the master last said anything */
    unsigned heartbeat_ms;
    int64_t next_hello, hello_backoff, next_heartbeat;
    uint64_t heartbeat_seq;
    int64_t refused_logged; /* when a version refusal was last logged */
    unsigned refused_quiet; /* refusals since then, not logged */
    uint64_t epoch;         /* the master run that welcomed us (0: none) */
    unsigned minor;         /* 1 + the protocol minor version the master
                               uses with us (0: not welcomed yet) */
    int64_t lost_since;     /* the master went silent then (0: it has not) */
    qn_told *told;          /* successes of jobs not ended */
    size_t ntold, cap_told;
} qn_wlink;

struct qn_worker {
    /* who and where */
    qn_worker_config cfg;
    char id[QN_WORKER_ID_MAX];
    uint64_t incarnation; /* of this process on its work dir (identity.h) */
    int lock_fd;          /* holds the work dir (-1: a private one) */
    char host[128];
    char *work_dir;
    int own_work_dir; /* made by us: remove at exit */
    char *task_bin;   /* quern-task */

    /* the process's sockets and signals */
    void *ctx;
    qn_curve curve; /* keys; curve.secret_key[0] == 0: CURVE off */
    qn_zap *zap;
    int sigfd;
    int stop;
    int64_t leave_by; /* SIGTERM came: drained or not, stop at this time
                       * (0: not stopping) */

    qn_wlink link;          /* the master */
    qn_attempts att;        /* attempts running */
    qn_waitlist wait;       /* assignments waiting for their plugin */
    qn_shuffle *shuffle;    /* serves map outputs and shards */
    qn_store *store;        /* NULL without --data-dir */
    struct qn_scrub *scrub; /* re-reads the store's shards (with store) */

    /* the walls around its tasks (wsandbox.h) */
    struct {
        unsigned layers;  /* entered by every task (QN_SB_*; 0: off) */
        unsigned missing; /* what the kernel lacks (auto) */
        unsigned uid, gid;
        char user[64];  /* the user tasks run as */
        int cpu_kernel; /* the worker can move a task's RLIMIT_CPU on (else
                           it reads the tasks' CPU time itself) */
    } sb;
};

#endif
