/*
 * client.h -- the command line client's side of the master protocol:
 * requests, following a job, and printing what the master says.
 */
#ifndef QN_CLIENT_H
#define QN_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include "cluster.h"
#include "wire.h"

/* Exit statuses of the quern command. */
#define QN_EXIT_OK 0
#define QN_EXIT_JOB_FAILED 1 /* the job failed or was cancelled */
#define QN_EXIT_USAGE 2
#define QN_EXIT_UNREACHABLE 3 /* the master did not answer */

/* Where commands look for the master when neither --master nor
 * QUERN_MASTER says. */
#define QN_CLIENT_DEFAULT_MASTER "tcp://127.0.0.1:7070"

/* How long a command waits for the master's reply to a request. */
#define QN_CLIENT_CALL_MS 5000

typedef struct qn_client qn_client;

struct qn_curve;

/*
 * A client connected (lazily, as ZeroMQ does) to the master at endpoint;
 * with curve (and a key in it), over CURVE to curve->master_key. NULL on
 * a bad endpoint.
 */
qn_client *qn_client_new(const char *endpoint, const struct qn_curve *curve);

/* The client's ZeroMQ context, for more sockets (to workers). */
void *qn_client_ctx(qn_client *c);

/* Close it; accepts NULL, clears the pointer. */
void qn_client_destroy(qn_client **self_p);

/*
 * Send req and wait up to timeout_ms for the reply. Returns 0 with *reply
 * set (free with qn_wire_free), or an exit status (QN_EXIT_UNREACHABLE when
 * nothing came back, QN_EXIT_USAGE when the master refused our protocol
 * version) with a message in err.
 */
int qn_client_call(qn_client *c, Quern__Envelope *req, Quern__Envelope **reply,
                   int timeout_ms, char *err, size_t errcap);

/* qn_client_call for a reply whose body must be `want` (a
 * Quern__Envelope__BodyCase): what went wrong is said on stderr. Returns
 * 0 with *reply set, or an exit status. */
int qn_client_ask(qn_client *c, Quern__Envelope *req, int want, int timeout_ms,
                  Quern__Envelope **reply);

/* How to follow a job. */
typedef struct qn_follow_opts {
    int sigfd;           /* signalfd: SIGINT/SIGTERM cancel the job */
    qn_cluster *cluster; /* local cluster to watch, or NULL */
    int json;            /* print the final status as JSON */
} qn_follow_opts;

/*
 * Follow a job already being watched (submitted with watch set) until it
 * ends, drawing progress on stderr, then print its result on stdout.
 * Returns the exit status.
 */
int qn_client_follow(qn_client *c, const char *job_id, const qn_follow_opts *o);

/* Print a job's result (state, counters, failures) for people. */
void qn_print_result(FILE *f, const Quern__JobStatus *st);

/* Print one line per job for `quern jobs` / `quern status`. */
void qn_print_job_line(FILE *f, const Quern__JobStatus *st);

/* Each task of a job fetched with its tasks: state, attempt, worker... */
void qn_print_tasks(FILE *f, const Quern__JobStatus *st);

struct json_t;

/* Print v as JSON, indented, and a newline; then release v (accepts NULL:
 * a newline alone). */
void qn_print_json(FILE *f, struct json_t *v);

/* Print a job status or worker list as JSON. */
void qn_print_status_json(FILE *f, Quern__JobStatus **jobs, size_t n,
                          int single);
void qn_print_workers_json(FILE *f, const Quern__WorkersReply *r);

#endif
