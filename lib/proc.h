/*
 * proc.h -- child processes and signals for the daemons and the client.
 *
 * Signals are never handled asynchronously: a process blocks the ones it
 * cares about and reads them from a signalfd inside its poll loop. Children
 * are started with posix_spawn (safe in a process that runs ZeroMQ's
 * threads), with those signals unblocked again and in their own process
 * group, so one kill() stops a child and anything it started.
 */
#ifndef QN_PROC_H
#define QN_PROC_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/*
 * Block SIGCHLD, SIGTERM, SIGINT, SIGHUP and SIGPIPE (ignored) and return
 * a non-blocking signalfd for the first four, or -errno.
 */
int qn_signals_open(void);

/*
 * Read every pending signal from the signalfd. Sets *stop to the signal's
 * number when SIGTERM, SIGINT or SIGHUP arrived (the last one) and *child
 * to 1 when SIGCHLD did (either may be NULL).
 */
void qn_signals_read(int fd, int *stop, int *child);

/* Options for qn_spawn. */
#define QN_SPAWN_MAX_FDS 3 /* descriptors passed as fd 3, 4, ... */

typedef struct qn_spawn_opts {
    int fds[QN_SPAWN_MAX_FDS]; /* fds[i] becomes the child's fd 3 + i ... */
    int nfds;                  /* ... for i < nfds */
    const char *stdout_path;   /* if set: stdout goes to this file (append) */
    const char *stderr_path;   /* if set: stderr goes to this file (append) */
    int new_group;             /* run in a new process group */
    int null_stdin;            /* stdin reads /dev/null */
    char *const *envp;         /* its environment (NULL: ours) */
} qn_spawn_opts;

/* Start path with argv. Returns the pid or -errno. */
pid_t qn_spawn(const char *path, char *const argv[], const qn_spawn_opts *o);

/*
 * Reap one exited child without blocking. Returns its pid (and fills
 * status and ru when not NULL), 0 when none has exited, -1 when there are
 * no children.
 */
pid_t qn_reap(int *status, struct rusage *ru);

/*
 * If the environment names a parent (QUERN_PARENT_PID, set by `quern run`
 * for the daemons it starts), ask for SIGTERM when that parent dies, so a
 * killed client leaves no daemons behind.
 */
void qn_die_with_parent(void);

/* Describe a wait status: "exit code 3", "killed by signal 11 (SEGV)". */
const char *qn_status_str(int status, char *buf, size_t cap);

#endif
