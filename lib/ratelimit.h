/*
 * ratelimit.h -- how many requests a daemon takes from one peer address.
 *
 * A token bucket per address: each holds up to `burst` tokens and gains
 * `per_second` a second; a request takes one, and one that finds none is
 * over the limit. The table remembers QN_RATELIMIT_SLOTS addresses, the
 * least recently seen giving way to a new one (which starts full), so its
 * memory is fixed whatever the number of peers.
 */
#ifndef QN_RATELIMIT_H
#define QN_RATELIMIT_H

#include <stdint.h>

#define QN_RATELIMIT_SLOTS 256 /* addresses remembered */

typedef struct {
    char addr[64];
    double tokens;
    int64_t last_ms; /* when its tokens were last counted */
} qn_ratelimit_peer;

typedef struct qn_ratelimit {
    double per_second, burst;
    qn_ratelimit_peer peers[QN_RATELIMIT_SLOTS];
} qn_ratelimit;

/* Start with every address's bucket full. */
void qn_ratelimit_init(qn_ratelimit *r, double per_second, double burst);

/*
 * Take a token for one request from addr (NULL or "" counts as one
 * address) at now_ms: 1 if it is within the limit, 0 if over.
 */
int qn_ratelimit_take(qn_ratelimit *r, const char *addr, int64_t now_ms);

#endif
