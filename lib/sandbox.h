/*
 * sandbox.h -- the walls around a task attempt's process, with the
 * kernel's own mechanisms.
 *
 * quern-task does everything that needs the worker's rights first (it
 * reads its inputs' files, pulls remote shards and map outputs in a child
 * that alone loads the worker's CURVE key, opens its output and the
 * plugin), then enters the sandbox, and only then loads the job's plugin.
 * Inside, the process:
 *
 *   - has a cleared environment (qn_sandbox_env lists it) and no
 *     descriptor but stdin, stdout, stderr, its channel to the worker and
 *     the files it opened for the task;
 *   - dumps no core, may use at most mem_bytes of address space
 *     (RLIMIT_AS), start at most nproc processes of its user (RLIMIT_NPROC)
 *     and use cpu_s seconds of CPU (RLIMIT_CPU; the worker moves the limit
 *     on each time the task reports progress);
 *   - runs as the task user when the worker runs as root;
 *   - with no_new_privs, under Landlock: reads the system's libraries and
 *     data (/usr, /lib*, a few /etc files, /dev/null and friends,
 *     /proc/self), its working directory (the files shipped with the job)
 *     and its plugin; writes only under its working directory's tmp/;
 *     opens no TCP connection, binds no TCP port; signals no process and
 *     reaches no abstract socket outside its own sandbox;
 *   - under a seccomp filter, where the system calls a task never needs
 *     (ptrace, mount, bpf, ...), socket() and connect() fail with EPERM
 *     or EACCES, never a kill (socketpair() stays).
 *
 * Each kernel mechanism is a layer the kernel may lack; qn_sandbox_probe
 * says which it offers, and the worker's --sandbox level decides what a
 * missing one means.
 */
#ifndef QN_SANDBOX_H
#define QN_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The layers (bits). */
enum {
    QN_SB_LANDLOCK_FS = 1u << 0,    /* files (Landlock ABI 1) */
    QN_SB_LANDLOCK_NET = 1u << 1,   /* TCP bind and connect (ABI 4) */
    QN_SB_LANDLOCK_SCOPE = 1u << 2, /* signals, abstract sockets (ABI 6) */
    QN_SB_SECCOMP = 1u << 3,        /* system calls (seccomp filter) */
    QN_SB_TASK_USER = 1u << 4,      /* another user than the worker's */
    QN_SB_LIMITS = 1u << 5,         /* environment, descriptors, rlimits,
                                       no_new_privs: always there */
    QN_SB_ALL = (1u << 6) - 1
};

/* The --sandbox levels. */
typedef enum {
    QN_SANDBOX_AUTO = 0, /* every layer the kernel offers */
    QN_SANDBOX_REQUIRE,  /* every layer, or the worker does not start */
    QN_SANDBOX_OFF,      /* none: for debugging */
} qn_sandbox_mode;

/* "require", "auto", "off" into *mode; 0, or -1 for anything else. */
int qn_sandbox_mode_parse(const char *s, qn_sandbox_mode *mode);
const char *qn_sandbox_mode_name(qn_sandbox_mode mode);

/* The name of one layer bit ("landlock-fs", ...). */
const char *qn_sandbox_layer_name(unsigned bit);

/* The layers names of bits, comma-separated, into buf ("none" when 0). */
const char *qn_sandbox_layers_str(unsigned bits, char *buf, size_t cap);

/*
 * The layers this kernel and process offer: Landlock's by its ABI
 * (*abi, 0 without), seccomp, and the task user when running as root
 * (as_root). QN_SB_LIMITS always.
 */
unsigned qn_sandbox_probe(int as_root, int *abi);

/* What a task's sandbox holds. */
typedef struct qn_sandbox {
    unsigned layers; /* to apply: QN_SB_* (0: nothing at all) */
    uid_t uid;       /* QN_SB_TASK_USER: run as */
    gid_t gid;
    const char *workdir; /* absolute: the attempt's folder (the current
                            directory, read-only); its tmp/ is writable */
    int plugin_fd;       /* readable and mappable (-1: none) */
    const int *keep_fds; /* descriptors to keep, beyond 0-2 ... */
    size_t nkeep;
    uint64_t mem_bytes; /* RLIMIT_AS (0: none) */
    unsigned cpu_s;     /* RLIMIT_CPU (0: none) */
    unsigned nproc;     /* RLIMIT_NPROC (0: none) */
    pid_t parent;       /* the worker: the task dies with it */
    const char *job_id; /* for the environment */
    const char *task;   /* "map 3 attempt 1", for the environment */
} qn_sandbox;

/*
 * Enter sb's sandbox, for good: the process is single-threaded. 0, or -1
 * with err naming the layer that failed.
 */
int qn_sandbox_enter(const qn_sandbox *sb, char *err, size_t errcap);

/* The environment a task gets, documented: NULL-terminated "NAME" list. */
extern const char *const qn_sandbox_env[];

#endif
