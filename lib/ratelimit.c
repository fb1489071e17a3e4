/*
 * ratelimit.c -- a token bucket per peer address (see ratelimit.h).
 */
#include "ratelimit.h"

#include <stdio.h>
#include <string.h>

void qn_ratelimit_init(qn_ratelimit *r, double per_second, double burst)
{
    memset(r, 0, sizeof *r);
    r->per_second = per_second;
    r->burst = burst;
}

/* The slot of addr, or the least recently seen one, emptied for it. */
static qn_ratelimit_peer *s_slot(qn_ratelimit *r, const char *addr,
                                 int64_t now_ms)
{
    qn_ratelimit_peer *oldest = &r->peers[0];
    for (size_t i = 0; i < QN_RATELIMIT_SLOTS; i++) {
        qn_ratelimit_peer *p = &r->peers[i];
        if (p->last_ms && strcmp(p->addr, addr) == 0)
            return p;
        if (!p->last_ms || (oldest->last_ms && p->last_ms < oldest->last_ms))
            oldest = p;
    }
    snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
    oldest->tokens = r->burst;
    oldest->last_ms = now_ms ? now_ms : 1;
    return oldest;
}

int qn_ratelimit_take(qn_ratelimit *r, const char *addr, int64_t now_ms)
{
    qn_ratelimit_peer *p = s_slot(r, addr ? addr : "", now_ms);
    if (now_ms > p->last_ms) {
        p->tokens += (double)(now_ms - p->last_ms) * r->per_second / 1000.0;
        if (p->tokens > r->burst)
            p->tokens = r->burst;
        p->last_ms = now_ms;
    }
    if (p->tokens < 1.0)
        return 0;
    p->tokens -= 1.0;
    return 1;
}
