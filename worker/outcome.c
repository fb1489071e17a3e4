/*
 * outcome.c -- see outcome.h.
 */
#include "outcome.h"

#include "proc.h"
#include "util.h"

#include <fcntl.h>
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

void qn_outcome_failure(qn_outcome *o, const qn_worker *w, const qn_attempt *a,
                        int status, uint64_t rss, const char *install_err)
{
    memset(o, 0, sizeof *o);
    quern__task_update__init(&o->u);
    s_reason(o, w, a, status, install_err);
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
