/*
 * evring.c -- see evring.h.
 */
#include "evring.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qn_evring_release(qn_evring *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[(r->head + i) % QN_EVRING_KEPT].msg);
    free(r->v);
    *r = (qn_evring){0};
}

const qn_evrec *qn_evring_add(qn_evring *r, int64_t wall, int level,
                              const char *kind, const char *job,
                              const char *task, unsigned attempt,
                              const char *worker, const char *msg)
{
    if (!r->v)
        r->v = qn_calloc(QN_EVRING_KEPT, sizeof *r->v);
    qn_evrec *e;
    if (r->n < QN_EVRING_KEPT) {
        e = &r->v[(r->head + r->n++) % QN_EVRING_KEPT];
    } else {
        e = &r->v[r->head];
        r->head = (r->head + 1) % QN_EVRING_KEPT;
        free(e->msg);
    }
    memset(e, 0, sizeof *e);
    e->seq = ++r->seq;
    e->wall = wall;
    e->level = level;
    e->kind = kind;
    snprintf(e->job, sizeof e->job, "%s", job ? job : "");
    snprintf(e->task, sizeof e->task, "%s", task ? task : "");
    e->attempt = attempt;
    snprintf(e->worker, sizeof e->worker, "%s", worker ? worker : "");
    e->msg = qn_strdup(msg);
    return e;
}

const qn_evrec *qn_evring_at(const qn_evring *r, size_t i)
{
    return &r->v[(r->head + i) % QN_EVRING_KEPT];
}

/* A string, or null when it is empty. */
static json_t *s_str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

json_t *qn_evring_json(const qn_evring *r, uint64_t since)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const qn_evrec *e = qn_evring_at(r, i);
        if (e->seq <= since)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
        json_object_set_new(o, "time_ms", json_integer(e->wall));
        json_object_set_new(
            o, "level",
            json_string(qn_log_level_name((enum qn_log_level)e->level)));
        json_object_set_new(o, "kind", json_string(e->kind));
        json_object_set_new(o, "job", s_str_or_null(e->job));
        json_object_set_new(o, "task", s_str_or_null(e->task));
        json_object_set_new(
            o, "attempt", e->attempt ? json_integer(e->attempt) : json_null());
        json_object_set_new(o, "worker", s_str_or_null(e->worker));
        json_object_set_new(o, "message", json_string(e->msg));
        json_array_append_new(a, o);
    }
    return a;
}
