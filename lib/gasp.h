/*
 * gasp.h -- the "last gasp": a few words of memory a task process shares
 * with its worker (a memory file on the task's fd QN_GASP_FD), where a map
 * leaves the record it is in before calling map(), and any task the phase
 * it is in outside map(). If the plugin crashes, the worker still reads
 * which record or phase it was, for the failure report and
 * --skip-bad-records.
 *
 * The worker daemon needs only this of the task runtime.
 */
#ifndef QN_GASP_H
#define QN_GASP_H

#include <stdint.h>

#define QN_GASP_FD 5

typedef struct qn_gasp {
    volatile uint64_t offset;    /* the record's byte offset in its file */
    volatile uint32_t piece;     /* index of its input piece in the spec */
    volatile uint32_t in_record; /* 1 while map() runs on it */
    volatile uint32_t phase;     /* QN_PHASE_*: loading, or in setup() */
    uint32_t pad;
} qn_gasp;

/* What a task was doing outside map() when it died, for the report. */
enum { QN_PHASE_NONE = 0, QN_PHASE_LOADING, QN_PHASE_SETUP };

#endif
