/*
 * events.c -- see events.h.
 */
#include "events.h"

#include "log.h"
#include "statusjson.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>

void qn_event(qn_master *m, int64_t now, int level, const char *what, int jx,
              int kind, unsigned task, unsigned attempt, int w, const char *fmt,
              ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qn_utf8_sanitize(msg); /* a cut may split a character */
    qn_log((enum qn_log_level)level, "master: %s", msg);
    char task_name[24] = "";
    if (kind >= 0)
        qn_task_name(task_name, sizeof task_name,
                     kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                       : QUERN__TASK_KIND__MAP,
                     task);
    qn_evring_add(&m->events, qn_master_wall(m, now), level, what,
                  jx >= 0 ? m->jobs.v[jx].id : NULL, task_name, attempt,
                  w >= 0 ? m->workers.v[w].id : NULL, msg);
}
