/*
 * workers.c -- see workers.h.
 */
#include "workers.h"

#include "sandbox.h"
#include "util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qn_workers_init(qn_workers *r, qn_sched *sched)
{
    *r = (qn_workers){.sched = sched};
}

void qn_workers_release(qn_workers *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->v[i].endpoint);
    free(r->v);
    *r = (qn_workers){0};
}

int qn_workers_join(qn_workers *r, int64_t now, const qn_mworker *w)
{
    QN_GROW(r->v, r->cap, (size_t)r->n + 1);
    qn_mworker *e = &r->v[r->n];
    *e = *w;
    e->endpoint = qn_strdup(w->endpoint ? w->endpoint : "");
    e->gone = 0;
    int handle =
        qn_sched_worker_join(r->sched, now, w->draining ? 0 : w->slots);
    /* Everything indexes workers by handle: they must agree. */
    assert(handle == r->n);
    r->n++;
    return handle;
}

int qn_workers_find(const qn_workers *r, const char *id)
{
    for (int i = r->n - 1; i >= 0; i--)
        if (strcmp(r->v[i].id, id) == 0)
            return i;
    return -1;
}

int qn_workers_alive(const qn_workers *r, int w)
{
    return qn_sched_worker_alive(r->sched, w);
}

int qn_workers_alive_id(const qn_workers *r, const char *id)
{
    int w = qn_workers_find(r, id);
    return w >= 0 && qn_workers_alive(r, w) ? w : -1;
}

unsigned qn_workers_live(const qn_workers *r)
{
    unsigned n = 0;
    for (int w = 0; w < r->n; w++)
        n += qn_workers_alive(r, w) != 0;
    return n;
}

int qn_workers_takes_data(const qn_workers *r, int w)
{
    return w >= 0 && w < r->n && r->v[w].has_data && !r->v[w].draining &&
           qn_workers_alive(r, w);
}

unsigned qn_workers_takers(const qn_workers *r)
{
    unsigned n = 0;
    for (int w = 0; w < r->n; w++)
        n += qn_workers_takes_data(r, w);
    return n;
}

unsigned qn_workers_usable_slots(const qn_workers *r, int w)
{
    if (w < 0 || w >= r->n || r->v[w].draining || r->v[w].unheard)
        return 0;
    return r->v[w].slots;
}

void qn_workers_counts(const qn_workers *r, unsigned *alive, unsigned *dead,
                       unsigned *slots, unsigned *busy)
{
    *alive = *dead = *slots = *busy = 0;
    for (int w = 0; w < r->n; w++) {
        if (!qn_workers_alive(r, w)) {
            (*dead)++;
            continue;
        }
        (*alive)++;
        *slots += qn_workers_usable_slots(r, w);
        *busy += qn_sched_worker_busy(r->sched, w);
    }
}

/* The layer bits of names (sandbox.h); unknown names are left out. */
static unsigned s_layer_bits(char **names, size_t n)
{
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned b = 1; b && b <= QN_SB_ALL; b <<= 1)
            if (strcmp(names[i], qn_sandbox_layer_name(b)) == 0)
                bits |= b;
    return bits;
}

void qn_workers_abilities(qn_mworker *wk, const Quern__WorkerHello *h)
{
    wk->has_data = h->has_data;
    wk->sb_layers = s_layer_bits(h->sandbox, h->n_sandbox);
    wk->sb_missing = s_layer_bits(h->sandbox_missing, h->n_sandbox_missing);
    snprintf(wk->sb_mode, sizeof wk->sb_mode, "%s", h->sandbox_mode);
    snprintf(wk->task_user, sizeof wk->task_user, "%s", h->task_user);
}
