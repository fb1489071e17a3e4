/*
 * events.c -- see events.h.
 */
#include "events.h"

#include "send.h"
#include "job.h"
#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "ifile.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

void qn_event(qn_master *m, int level, const char *what, int jx, int kind,
              unsigned task, unsigned attempt, int w, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qn_utf8_sanitize(msg); /* a cut may split a character */
    qn_log((enum qn_log_level)level, "master: %s", msg);
    if (!m->events)
        m->events = qn_calloc(EVENTS_KEPT, sizeof *m->events);
    qn_evrec *e;
    if (m->nevents < EVENTS_KEPT) {
        e = &m->events[(m->event_head + m->nevents++) % EVENTS_KEPT];
    } else {
        e = &m->events[m->event_head];
        m->event_head = (m->event_head + 1) % EVENTS_KEPT;
        free(e->msg);
    }
    memset(e, 0, sizeof *e);
    e->seq = ++m->event_seq;
    e->wall = qn_wall_ms();
    e->level = level;
    e->kind = what;
    if (jx >= 0)
        snprintf(e->job, sizeof e->job, "%s", m->jobs[jx].id);
    if (kind >= 0)
        qn_task_name(e->task, sizeof e->task,
                     kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                       : QUERN__TASK_KIND__MAP,
                     task);
    e->attempt = attempt;
    if (w >= 0)
        snprintf(e->worker, sizeof e->worker, "%s", m->workers[w].id);
    e->msg = qn_strdup(msg);
}
