/*
 * outcome.c -- see outcome.h.
 */
#include "outcome.h"

#include "proc.h"
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define STDERR_TAIL 2048 /* bytes of a failed attempt's stderr sent */

/* The last bytes of a file, for a failure report. */
static char *s_tail(const char *path, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qn_strdup("");
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)n ? size - (off_t)n : 0;
    char *buf = qn_calloc(n + 1, 1);
    ssize_t got = pread(fd, buf, n, from);
    close(fd);
    if (got < 0)
        got = 0;
    buf[got] = '\0';
    /* Keep it valid UTF-8 for the wire (a NUL would cut it short). */
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == '\0')
            buf[i] = '?';
    qn_utf8_sanitize(buf);
    return buf;
}

/* The state and why, from the most telling cause down to how the process
 * ended. */
static void s_reason(qn_outcome *o, const qn_worker *w, const qn_attempt *a,
                     int status, const char *install_err)
{
    const Quern__TaskUpdate *fin = a->final ? a->final->task_update : NULL;
    char how[128];
    qn_status_str(status, how, sizeof how);
    o->u.state = QUERN__TASK_STATE__FAILED;
    if (a->cancelled) {
        o->u.state = QUERN__TASK_STATE__KILLED;
        qn_buf_printf(&o->reason, "killed on the master's request");
    } else if (a->mem_killed) {
        qn_buf_printf(&o->reason,
                      "killed by worker %s: its resident memory reached "
                      "%llu MiB, over the cap of %u MiB (--task-mem-mb)",
                      w->id, (unsigned long long)(a->mem_killed >> 20),
                      w->cfg.task_mem_mb);
    } else if (a->cpu_killed) {
        qn_buf_printf(&o->reason,
                      "killed by worker %s: it used %ld s of CPU time past "
                      "its last progress report, over the %u s a task gets "
                      "(the master's --task-timeout-ms)",
                      w->id, a->cpu_killed, (a->cpu_timeout_ms + 999) / 1000);
    } else if (install_err[0]) {
        qn_buf_printf(&o->reason, "%s", install_err);
    } else if (fin && fin->state == QUERN__TASK_STATE__FAILED &&
               fin->reason[0]) {
        qn_buf_printf(&o->reason, "%s (task process %s)", fin->reason, how);
    } else if (a->bad_msg) {
        qn_buf_printf(&o->reason, "%s (task process %s)", a->bad_msg, how);
    } else {
        qn_buf_printf(&o->reason, "task process %s", how);
    }
    if (fin)
        o->u.record_offset = fin->record_offset;
}

/* The last gasp: what it was doing outside map() when it died without a
 * word, or which record map() was in. */
static void s_last_gasp(qn_outcome *o, const qn_attempt *a)
{
    const qn_gasp *g = a->gasp;
    if (a->cancelled || !g)
        return;
    if (!a->final && g->phase == QN_PHASE_SETUP)
        qn_buf_printf(&o->reason, " in the job's setup()");
    else if (!a->final && g->phase == QN_PHASE_LOADING)
        qn_buf_printf(&o->reason, " while loading the plugin (in its "
                                  "constructors)");
    if (g->in_record && g->piece < a->nshards) {
        o->u.in_record = 1;
        o->u.input_piece = g->piece;
        o->u.record_offset = g->offset;
        if (!strstr(o->reason.data, "offset"))
            qn_buf_printf(&o->reason,
                          " in map() on the record at offset %llu of %s",
                          (unsigned long long)g->offset, a->shards[g->piece]);
    }
}

/* A task the kernel stopped at a limit of its sandbox says which: its
 * CPU time, or (a crash or abort of a task with its memory capped) the
 * memory cap an allocation past which fails. */
static void s_limits(qn_outcome *o, const qn_attempt *a, int status,
                     uint64_t rss)
{
    if (a->cancelled || a->mem_killed || a->cpu_killed || !WIFSIGNALED(status))
        return;
    int sig = WTERMSIG(status);
    if (sig == SIGXCPU && a->cpu_timeout_ms)
        qn_buf_printf(&o->reason,
                      " (its CPU time ran out: a task gets %u s of CPU "
                      "time past its last progress report, the master's "
                      "--task-timeout-ms)",
                      (a->cpu_timeout_ms + 999) / 1000);
    else if (a->mem_cap && (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT))
        qn_buf_printf(&o->reason,
                      " (out of memory? its memory is capped at %llu MiB "
                      "(--task-mem-mb), where allocations fail; it had "
                      "%llu MiB resident at most)",
                      (unsigned long long)(a->mem_cap >> 20),
                      (unsigned long long)(rss >> 20));
}

void qn_outcome_failure(qn_outcome *o, const qn_worker *w, const qn_attempt *a,
                        int status, uint64_t rss, const char *install_err)
{
    memset(o, 0, sizeof *o);
    quern__task_update__init(&o->u);
    s_reason(o, w, a, status, install_err);
    s_limits(o, a, status, rss);
    s_last_gasp(o, a);
    o->u.reason = o->reason.data;
    o->u.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o->u.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    o->u.rss_peak = rss;
    o->tail = s_tail(a->stderr_path, STDERR_TAIL);
    o->u.stderr_tail = o->tail;
}

void qn_outcome_release(qn_outcome *o)
{
    qn_buf_release(&o->reason);
    free(o->tail);
    memset(o, 0, sizeof *o);
}
