/*
 * droplog.c -- see droplog.h.
 */
#include "droplog.h"

#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void qn_droplog_init(qn_droplog *d, const char *who, const char *verb)
{
    memset(d, 0, sizeof *d);
    d->who = who;
    d->verb = verb;
}

/* The slot remembering addr, or NULL. */
static qn_droplog_peer *s_find(qn_droplog *d, const char *addr)
{
    for (int i = 0; i < QN_DROPLOG_SLOTS; i++)
        if (d->peers[i].addr[0] && strcmp(d->peers[i].addr, addr) == 0)
            return &d->peers[i];
    return NULL;
}

/* A slot for addr: a free one, else the one logged longest ago, whose
 * unlogged count moves to the other addresses'. */
static qn_droplog_peer *s_take(qn_droplog *d, const char *addr)
{
    qn_droplog_peer *p = &d->peers[0];
    for (int i = 0; i < QN_DROPLOG_SLOTS; i++) {
        if (!d->peers[i].addr[0]) {
            p = &d->peers[i];
            break;
        }
        if (d->peers[i].last_ms < p->last_ms)
            p = &d->peers[i];
    }
    d->unlogged += p->quiet;
    memset(p, 0, sizeof *p);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    return p;
}

void qn_droplog_add(qn_droplog *d, unsigned reason, const char *addr,
                    const char *what, const char *why)
{
    int64_t now = qn_now_ms();
    if (!addr || !addr[0])
        addr = "an unknown address";
    d->total++;
    d->by_reason[reason < QN_DROPLOG_REASONS ? reason : 0]++;
    qn_droplog_peer *p = s_find(d, addr);
    if (p && now - p->last_ms < QN_DROPLOG_PERIOD_MS) {
        p->quiet++;
        return;
    }
    if (now - d->period_ms >= QN_DROPLOG_PERIOD_MS) {
        d->period_ms = now;
        d->lines = 0;
    }
    if (d->lines >= QN_DROPLOG_LINES) {
        if (p)
            p->quiet++;
        else
            d->unlogged++;
        return;
    }
    if (!p)
        p = s_take(d, addr);
    d->lines++;
    char more[160] = "";
    if (p->quiet || d->unlogged)
        snprintf(more, sizeof more,
                 " (not logged since the last line: %llu from this address, "
                 "%llu from others)",
                 (unsigned long long)p->quiet, (unsigned long long)d->unlogged);
    qn_warn("%s: %s %s from %s: %s; %llu %s in all%s", d->who, d->verb, what,
            addr, why, (unsigned long long)d->total, d->verb, more);
    p->last_ms = now;
    p->quiet = 0;
    d->unlogged = 0;
}
