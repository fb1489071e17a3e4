/*
 * droplog.h -- counting what a daemon drops or refuses from its peers,
 * and saying so in the log without letting a peer flood it.
 *
 * Every message dropped is counted, by reason. A line is logged for a peer
 * address at most once per period, and at most QN_DROPLOG_LINES lines per
 * period in all; what is not logged is counted and reported with the next
 * line that is. A hostile peer sending a million bad frames a minute costs
 * one line a minute.
 */
#ifndef QN_DROPLOG_H
#define QN_DROPLOG_H

#include <stdint.h>

#define QN_DROPLOG_PERIOD_MS 60000 /* one line per address per period */
#define QN_DROPLOG_SLOTS 64        /* addresses whose last line we remember */
#define QN_DROPLOG_LINES 20        /* lines per period, all addresses */
#define QN_DROPLOG_REASONS 5       /* reasons counted apart */

typedef struct {
    char addr[64];
    int64_t last_ms; /* when its last line was logged */
    uint64_t quiet;  /* dropped since then, not logged */
} qn_droplog_peer;

typedef struct qn_droplog {
    const char *who;  /* "master", "shuffle server" */
    const char *verb; /* "dropped", "refused" */
    uint64_t total;
    uint64_t by_reason[QN_DROPLOG_REASONS];
    int64_t period_ms; /* start of the current period */
    unsigned lines;    /* logged in it */
    uint64_t unlogged; /* not reported in any line yet, other addresses */
    qn_droplog_peer peers[QN_DROPLOG_SLOTS];
} qn_droplog;

/* Start empty; who and verb must outlive d. */
void qn_droplog_init(qn_droplog *d, const char *who, const char *verb);

/*
 * Count one message from addr (NULL or "" when unknown) dropped for reason
 * (below QN_DROPLOG_REASONS), and log "WHO: VERB WHAT from ADDR: WHY"
 * unless addr was logged less than a period ago or the period's lines are
 * used up.
 */
void qn_droplog_add(qn_droplog *d, unsigned reason, const char *addr,
                    const char *what, const char *why);

#endif
