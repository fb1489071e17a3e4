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

/* One request/reply with the master, for the query commands. */
static int s_query(qn_cli_opts *o, Quern__Envelope *req,
                   Quern__Envelope **reply)
{
    int rc0 = qn_cli_curve(o, NULL, 0);
    if (rc0 != 0)
        return rc0;
    qn_client *c = qn_client_new(o->master, &o->curve);
    if (!c)
        return qn_usage_fail(
            "bad --master endpoint '%s' (like tcp://host:7070)", o->master);
    char err[512];
    int rc = qn_client_call(c, req, reply, QN_CLIENT_CALL_MS, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "quern: %s\n", err);
    qn_client_destroy(&c);
    return rc;
}

static int s_cmd_status(int argc, char **argv, int list)
{
    qn_cli_opts o = {0};
    int rc =
        qn_cli_parse(argc, argv, list ? "|master|json|" : "|master|json|tasks|",
                     &o, NULL, 0);
    if (rc == 0 && o.tasks && !o.npositional)
        rc = qn_usage_fail(
            "--tasks lists one job's tasks: quern status JOB --tasks");
    if (rc == 0 && (o.npositional > 1 || (list && o.npositional)))
        rc = qn_usage_fail("unexpected argument '%s'",
                           o.positional[list ? 0 : 1]);
    if (rc != 0) {
        qn_cli_opts_release(&o);
        return rc;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__StatusRequest sr = QUERN__STATUS_REQUEST__INIT;
    sr.job_id = (char *)(o.npositional ? o.positional[0] : "");
    sr.tasks = o.tasks;
    env.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
    env.status_request = &sr;
    rc = s_query(&o, &env, &reply);
    if (rc == 0) {
        Quern__StatusReply *r = reply->status_reply;
        if (reply->body_case != QUERN__ENVELOPE__BODY_STATUS_REPLY) {
            rc = qn_usage_fail("unexpected answer from the master");
        } else if (r->error[0]) {
            rc = qn_usage_fail("%s", r->error);
        } else if (o.json) {
            qn_print_status_json(stdout, r->jobs, r->n_jobs, o.npositional);
        } else if (o.npositional && r->n_jobs == 1) {
            qn_print_result(stdout, r->jobs[0]);
            if (o.tasks)
                qn_print_tasks(stdout, r->jobs[0]);
        } else {
            if (r->n_jobs == 0)
                printf("no jobs\n");
            for (size_t i = 0; i < r->n_jobs; i++)
                qn_print_job_line(stdout, r->jobs[i]);
        }
        qn_wire_free(reply);
    }
    qn_cli_opts_release(&o);
    return rc;
}

int qn_querycmd_workers(int argc, char **argv)
{
    qn_cli_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|json|", &o, NULL, 0);
    if (rc == 0 && o.npositional)
        rc = qn_usage_fail("unexpected argument '%s'", o.positional[0]);
    if (rc != 0) {
        qn_cli_opts_release(&o);
        return rc;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__WorkersRequest wr = QUERN__WORKERS_REQUEST__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    rc = s_query(&o, &env, &reply);
    if (rc == 0) {
        if (reply->body_case != QUERN__ENVELOPE__BODY_WORKERS_REPLY) {
            rc = qn_usage_fail("unexpected answer from the master");
        } else if (o.json) {
            qn_print_workers_json(stdout, reply->workers_reply);
        } else {
            Quern__WorkersReply *r = reply->workers_reply;
            if (r->n_workers == 0)
                printf("no workers\n");
            for (size_t i = 0; i < r->n_workers; i++) {
                Quern__WorkerInfo *w = r->workers[i];
                printf("%-32s %-5s slots %u busy %u heartbeat %.1f s ago  "
                       "%s\n",
                       w->worker_id, w->alive ? "alive" : "dead", w->slots,
                       w->busy, (double)w->heartbeat_age_ms / 1000,
                       w->shuffle_endpoint);
            }
        }
        qn_wire_free(reply);
    }
    qn_cli_opts_release(&o);
    return rc;
}

int qn_querycmd_cancel(int argc, char **argv)
{
    qn_cli_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|json|", &o, NULL, 0);
    if (rc == 0 && o.npositional != 1)
        rc = qn_usage_fail("usage: quern cancel JOB [--master EP] [--json]");
    if (rc != 0) {
        qn_cli_opts_release(&o);
        return rc;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__CancelJob cj = QUERN__CANCEL_JOB__INIT;
    cj.job_id = (char *)o.positional[0];
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &cj;
    rc = s_query(&o, &env, &reply);
    if (rc == 0) {
        if (reply->body_case != QUERN__ENVELOPE__BODY_CANCEL_REPLY)
            rc = qn_usage_fail("unexpected answer from the master");
        else if (reply->cancel_reply->error[0] && !o.json)
            rc = qn_usage_fail("%s", reply->cancel_reply->error);
        else if (o.json) {
            const char *e = reply->cancel_reply->error;
            json_t *v =
                json_pack("{s:s, s:b, s:o}", "id", o.positional[0], "cancelled",
                          !e[0], "error", e[0] ? json_string(e) : json_null());
            json_dumpf(v, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(v);
            rc = e[0] ? QN_EXIT_USAGE : 0;
        } else
            printf("%s cancelled: its running attempts were killed and its "
                   "output removed\n",
                   o.positional[0]);
        qn_wire_free(reply);
    }
    qn_cli_opts_release(&o);
    return rc;
}

int qn_querycmd_logs(int argc, char **argv)
{
    qn_cli_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|json|attempt|", &o, NULL, 0);
    int kind = 0;
    unsigned task = 0;
    if (rc == 0 && o.npositional != 2)
        rc = qn_usage_fail("usage: quern logs JOB TASK [--attempt N] [--json] "
                           "(TASK like m3 or r0)");
    if (rc == 0 && qn_task_parse(o.positional[1], &kind, &task) < 0)
        rc =
            qn_usage_fail("'%s' is not a task: give m3 for map task 3, r0 for "
                          "reduce task 0 (quern status JOB --tasks lists them)",
                          o.positional[1]);
    if (rc != 0) {
        qn_cli_opts_release(&o);
        return rc;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__LogsRequest lr = QUERN__LOGS_REQUEST__INIT;
    lr.job_id = (char *)o.positional[0];
    lr.kind = (Quern__TaskKind)kind;
    lr.task = task;
    lr.attempt = o.attempt;
    lr.worker_id = (char *)"";
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    env.logs_request = &lr;
    rc = s_query(&o, &env, &reply);
    if (rc == 0) {
        const Quern__LogsReply *r = reply->logs_reply;
        char tn[24];
        qn_task_name(tn, sizeof tn, kind, task);
        if (reply->body_case != QUERN__ENVELOPE__BODY_LOGS_REPLY) {
            rc = qn_usage_fail("unexpected answer from the master");
        } else if (r->error[0]) {
            rc = qn_usage_fail("%s", r->error);
        } else if (o.json) {
            /* Bytes that are not UTF-8 become "?" in JSON. */
            char *text = qn_malloc(r->data.len + 1);
            if (r->data.len)
                memcpy(text, r->data.data, r->data.len);
            text[r->data.len] = '\0';
            qn_utf8_sanitize(text);
            json_t *v = json_pack(
                "{s:s, s:s, s:i, s:s, s:I, s:b, s:s}", "job", o.positional[0],
                "task", tn, "attempt", (int)r->attempt, "worker", r->worker_id,
                "total_bytes", (json_int_t)r->total_bytes, "truncated",
                r->total_bytes > r->data.len, "stderr", text);
            free(text);
            json_dumpf(v, stdout, JSON_INDENT(2));
            fputc('\n', stdout);
            json_decref(v);
        } else {
            if (r->total_bytes > r->data.len)
                fprintf(stderr,
                        "quern: the last %zu of %llu bytes of the stderr of "
                        "%s attempt %u (on %s)\n",
                        r->data.len, (unsigned long long)r->total_bytes, tn,
                        r->attempt, r->worker_id);
            else
                fprintf(stderr,
                        "quern: stderr of %s attempt %u (on %s), %zu "
                        "bytes\n",
                        tn, r->attempt, r->worker_id, r->data.len);
            if (r->data.len)
                fwrite(r->data.data, 1, r->data.len, stdout);
        }
        qn_wire_free(reply);
    }
    qn_cli_opts_release(&o);
    return rc;
}

int qn_querycmd_status(int argc, char **argv)
{
    return s_cmd_status(argc, argv, 0);
}

int qn_querycmd_jobs(int argc, char **argv)
{
    return s_cmd_status(argc, argv, 1);
}
