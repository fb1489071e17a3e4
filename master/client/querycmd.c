/*
 * querycmd.c -- see querycmd.h.
 */
#include "querycmd.h"

#include "client.h"
#include "opts.h"
#include "statusjson.h"
#include "usage.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One request to the master and its reply, which must be a `want`: 0 with
 * *reply set (free it with qn_wire_free), or an exit status (said).
 */
static int s_query(qn_cli_opts *o, Quern__Envelope *req, int want,
                   Quern__Envelope **reply)
{
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc != 0)
        return rc;
    char err[512];
    rc = qn_client_call(c, req, reply, QN_CLIENT_CALL_MS, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "quern: %s\n", err);
    qn_client_destroy(&c);
    if (rc == 0 && (int)(*reply)->body_case != want) {
        qn_wire_free(*reply);
        *reply = NULL;
        rc = qn_usage_fail("unexpected answer from the master");
    }
    return rc;
}

/* quern status and quern jobs (list): one job, or a line per job. */
static int s_status(qn_cli_opts *o, int list)
{
    if (o->tasks && !o->npositional)
        return qn_usage_fail(
            "--tasks lists one job's tasks: quern status JOB --tasks");
    int rc = qn_cli_at_most(o, list ? 0 : 1);
    if (rc != 0)
        return rc;
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__StatusRequest sr = QUERN__STATUS_REQUEST__INIT;
    sr.job_id = (char *)(o->npositional ? o->positional[0] : "");
    sr.tasks = o->tasks;
    env.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
    env.status_request = &sr;
    rc = s_query(o, &env, QUERN__ENVELOPE__BODY_STATUS_REPLY, &reply);
    if (rc != 0)
        return rc;
    Quern__StatusReply *r = reply->status_reply;
    if (r->error[0]) {
        rc = qn_usage_fail("%s", r->error);
    } else if (o->json) {
        qn_print_status_json(stdout, r->jobs, r->n_jobs, o->npositional);
    } else if (o->npositional && r->n_jobs == 1) {
        qn_print_result(stdout, r->jobs[0]);
        if (o->tasks)
            qn_print_tasks(stdout, r->jobs[0]);
    } else {
        if (r->n_jobs == 0)
            printf("no jobs\n");
        for (size_t i = 0; i < r->n_jobs; i++)
            qn_print_job_line(stdout, r->jobs[i]);
    }
    qn_wire_free(reply);
    return rc;
}

int qn_querycmd_status(qn_cli_opts *o)
{
    return s_status(o, 0);
}

int qn_querycmd_jobs(qn_cli_opts *o)
{
    return s_status(o, 1);
}

/* "    sandbox auto: landlock-fs,... as nobody" under a worker's line. */
static void s_print_sandbox(const Quern__WorkerInfo *w)
{
    printf("    sandbox %s:", w->sandbox_mode);
    for (size_t i = 0; i < w->n_sandbox; i++)
        printf("%s%s", i ? "," : " ", w->sandbox[i]);
    if (!w->n_sandbox)
        printf(" none (tasks run with the worker's rights)");
    printf(", tasks as %s", w->task_user);
    for (size_t i = 0; i < w->n_sandbox_missing; i++)
        printf("%s%s", i ? "," : "; the kernel lacks ", w->sandbox_missing[i]);
    printf("\n");
}
int qn_querycmd_workers(qn_cli_opts *o)
{
    int rc = qn_cli_at_most(o, 0);
    if (rc != 0)
        return rc;
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__WorkersRequest wr = QUERN__WORKERS_REQUEST__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    rc = s_query(o, &env, QUERN__ENVELOPE__BODY_WORKERS_REPLY, &reply);
    if (rc != 0)
        return rc;
    const Quern__WorkersReply *r = reply->workers_reply;
    if (o->json) {
        qn_print_workers_json(stdout, r);
    } else {
        if (r->n_workers == 0)
            printf("no workers\n");
        for (size_t i = 0; i < r->n_workers; i++) {
            const Quern__WorkerInfo *w = r->workers[i];
            const char *st =
                w->alive || w->state ? qn_worker_state_name(w->state) : "dead";
            printf("%-32s %-8s slots %u busy %u heartbeat %.1f s ago  %s\n",
                   w->worker_id, st, w->slots, w->busy,
                   (double)w->heartbeat_age_ms / 1000, w->shuffle_endpoint);
            if (w->state == QUERN__WORKER_STATE__WORKER_DRAINING)
                printf("    draining: waits for %s\n",
                       w->drain_waits[0] ? w->drain_waits : "nothing");
            if (w->sandbox_mode[0])
                s_print_sandbox(w);
        }
    }
    qn_wire_free(reply);
    return 0;
}

int qn_querycmd_cancel(qn_cli_opts *o)
{
    if (o->npositional != 1)
        return qn_usage_fail("usage: quern cancel JOB [--master EP] [--json]");
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__CancelJob cj = QUERN__CANCEL_JOB__INIT;
    cj.job_id = (char *)o->positional[0];
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &cj;
    int rc = s_query(o, &env, QUERN__ENVELOPE__BODY_CANCEL_REPLY, &reply);
    if (rc != 0)
        return rc;
    const char *e = reply->cancel_reply->error;
    if (o->json) {
        qn_print_json(stdout,
                      json_pack("{s:s, s:b, s:o}", "id", o->positional[0],
                                "cancelled", !e[0], "error",
                                e[0] ? json_string(e) : json_null()));
        rc = e[0] ? QN_EXIT_USAGE : 0;
    } else if (e[0]) {
        rc = qn_usage_fail("%s", e);
    } else {
        printf("%s cancelled: its running attempts were killed and its "
               "output removed\n",
               o->positional[0]);
    }
    qn_wire_free(reply);
    return rc;
}

/* Print a task attempt's stderr, as the master sent it, for task tn. */
static void s_print_logs(const qn_cli_opts *o, const Quern__LogsReply *r,
                         const char *tn)
{
    if (o->json) {
        /* Bytes that are not UTF-8 become "?" in JSON. */
        char *text = qn_malloc(r->data.len + 1);
        if (r->data.len)
            memcpy(text, r->data.data, r->data.len);
        text[r->data.len] = '\0';
        qn_utf8_sanitize(text);
        qn_print_json(stdout,
                      json_pack("{s:s, s:s, s:i, s:s, s:I, s:b, s:s}", "job",
                                o->positional[0], "task", tn, "attempt",
                                (int)r->attempt, "worker", r->worker_id,
                                "total_bytes", (json_int_t)r->total_bytes,
                                "truncated", r->total_bytes > r->data.len,
                                "stderr", text));
        free(text);
        return;
    }
    if (r->total_bytes > r->data.len)
        fprintf(stderr,
                "quern: the last %zu of %llu bytes of the stderr of %s "
                "attempt %u (on %s)\n",
                r->data.len, (unsigned long long)r->total_bytes, tn, r->attempt,
                r->worker_id);
    else
        fprintf(stderr, "quern: stderr of %s attempt %u (on %s), %zu bytes\n",
                tn, r->attempt, r->worker_id, r->data.len);
    if (r->data.len)
        fwrite(r->data.data, 1, r->data.len, stdout);
}

int qn_querycmd_logs(qn_cli_opts *o)
{
    int kind = 0;
    unsigned task = 0;
    if (o->npositional != 2)
        return qn_usage_fail("usage: quern logs JOB TASK [--attempt N] "
                             "[--json] (TASK like m3 or r0)");
    if (qn_task_parse(o->positional[1], &kind, &task) < 0)
        return qn_usage_fail(
            "'%s' is not a task: give m3 for map task 3, r0 for reduce task "
            "0 (quern status JOB --tasks lists them)",
            o->positional[1]);
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__LogsRequest lr = QUERN__LOGS_REQUEST__INIT;
    lr.job_id = (char *)o->positional[0];
    lr.kind = (Quern__TaskKind)kind;
    lr.task = task;
    lr.attempt = o->attempt;
    lr.worker_id = (char *)"";
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    env.logs_request = &lr;
    int rc = s_query(o, &env, QUERN__ENVELOPE__BODY_LOGS_REPLY, &reply);
    if (rc != 0)
        return rc;
    const Quern__LogsReply *r = reply->logs_reply;
    if (r->error[0]) {
        rc = qn_usage_fail("%s", r->error);
    } else {
        char tn[24];
        qn_task_name(tn, sizeof tn, kind, task);
        s_print_logs(o, r, tn);
    }
    qn_wire_free(reply);
    return rc;
}
