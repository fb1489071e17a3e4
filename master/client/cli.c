/*
 * cli.c -- the quern command: run, submit, status, jobs, workers, cancel.
 *
 * Exit status: 0 success, 1 the job failed or was cancelled, 2 usage error
 * (including a job the master refused), 3 master unreachable.
 */
#include "cli.h"
#include "client.h"
#include "cluster.h"
#include "codec.h"
#include "inline.h"
#include "jobbuild.h"
#include "jobcmd.h"
#include "curve.h"
#include "dataset.h"
#include "elfcheck.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "quern.h"
#include "statusjson.h"
#include "usage.h"
#include "util.h"
#include "wire.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef qn_cli_opts s_opts; /* opts.h */

/* ---- commands ------------------------------------------------------------ */

/* One request/reply with the master, for the query commands. */
static int s_query(s_opts *o, Quern__Envelope *req, Quern__Envelope **reply)
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
    s_opts o = {0};
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

static int s_cmd_workers(int argc, char **argv)
{
    s_opts o = {0};
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

static int s_cmd_cancel(int argc, char **argv)
{
    s_opts o = {0};
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

/* ---- datasets and keys -----------------------------------------------------
 */

/* A client for the dataset commands; NULL with the exit status in *rc. */
static qn_client *s_data_client(s_opts *o, int *rc)
{
    *rc = qn_cli_curve(o, NULL, 0);
    if (*rc != 0)
        return NULL;
    qn_client *c = qn_client_new(o->master, &o->curve);
    if (!c)
        *rc = qn_usage_fail("bad --master endpoint '%s' (like tcp://host:7070)",
                            o->master);
    return c;
}

static int s_cmd_logs(int argc, char **argv)
{
    s_opts o = {0};
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

static int s_cmd_put(int argc, char **argv)
{
    s_opts o = {0};
    int rc = qn_cli_parse(
        argc, argv, "|master|dataset|replicas|shard-size|record-size|whole|",
        &o, NULL, 0);
    if (rc == 0 && (!o.dataset || o.npositional == 0))
        rc = qn_usage_fail(
            "usage: quern put FILE... --dataset NAME [--replicas K] "
            "[--shard-size SIZE] [--record-size N | --whole]");
    if (rc == 0 && o.whole && o.record_size)
        rc = qn_usage_fail("--whole and --record-size do not go together");
    qn_client *c = rc == 0 ? s_data_client(&o, &rc) : NULL;
    if (c) {
        qn_put_opts po = {.dataset = o.dataset,
                          .replicas = o.replicas,
                          .shard_size = o.shard_size,
                          .record_size = o.record_size,
                          .whole = o.whole};
        rc = qn_dataset_put(c, &o.curve, &po, o.positional, o.npositional);
    }
    qn_client_destroy(&c);
    qn_cli_opts_release(&o);
    return rc;
}

static int s_cmd_ls(int argc, char **argv)
{
    s_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|json|", &o, NULL, 0);
    if (rc == 0 && o.npositional > 1)
        rc = qn_usage_fail("usage: quern ls [NAME] [--json]");
    qn_client *c = rc == 0 ? s_data_client(&o, &rc) : NULL;
    if (c)
        rc = qn_dataset_ls(c, o.npositional ? o.positional[0] : NULL, o.json);
    qn_client_destroy(&c);
    qn_cli_opts_release(&o);
    return rc;
}

static int s_cmd_read(int argc, char **argv, int to_dir)
{
    s_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|", &o, NULL, 0);
    if (rc == 0 && o.npositional != (size_t)(to_dir ? 2 : 1))
        rc = qn_usage_fail(to_dir ? "usage: quern get NAME DIR"
                                  : "usage: quern cat NAME");
    qn_client *c = rc == 0 ? s_data_client(&o, &rc) : NULL;
    if (c)
        rc = qn_dataset_read(c, &o.curve, o.positional[0],
                             to_dir ? o.positional[1] : NULL);
    qn_client_destroy(&c);
    qn_cli_opts_release(&o);
    return rc;
}

static int s_cmd_rm(int argc, char **argv)
{
    s_opts o = {0};
    int rc = qn_cli_parse(argc, argv, "|master|", &o, NULL, 0);
    if (rc == 0 && o.npositional != 1)
        rc = qn_usage_fail("usage: quern rm NAME");
    qn_client *c = rc == 0 ? s_data_client(&o, &rc) : NULL;
    if (c) {
        rc = qn_dataset_rm(c, o.positional[0]);
        if (rc == 0)
            printf("%s removed\n", o.positional[0]);
    }
    qn_client_destroy(&c);
    qn_cli_opts_release(&o);
    return rc;
}

static int s_cmd_keygen(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-')
        return qn_usage_fail(
            "usage: quern keygen PREFIX (writes PREFIX.key and "
            "PREFIX.pub)");
    char err[600];
    if (qn_curve_keygen(argv[0], err, sizeof err) < 0)
        return qn_usage_fail("%s", err);
    printf("wrote %s.key (secret: keep it on this host only) and %s.pub "
           "(public: put it in the trusted dir of the peers)\n",
           argv[0], argv[0]);
    return 0;
}

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define main qn_cli_main /* cli.h */
#endif

int main(int argc, char **argv)
{
    qn_log_init("quern", QN_LOG_WARN);
    if (argc < 2) {
        qn_usage_print(stderr);
        return QN_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int n = argc - 2;
    char **rest = argv + 2;
    if (strcmp(cmd, "run") == 0)
        return qn_jobcmd_run(n, rest);
    if (strcmp(cmd, "submit") == 0)
        return qn_jobcmd_submit(n, rest);
    if (strcmp(cmd, "status") == 0)
        return s_cmd_status(n, rest, 0);
    if (strcmp(cmd, "jobs") == 0)
        return s_cmd_status(n, rest, 1);
    if (strcmp(cmd, "workers") == 0)
        return s_cmd_workers(n, rest);
    if (strcmp(cmd, "cancel") == 0)
        return s_cmd_cancel(n, rest);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        qn_usage_print(stdout);
        return 0;
    }
    if (strcmp(cmd, "put") == 0)
        return s_cmd_put(n, rest);
    if (strcmp(cmd, "ls") == 0)
        return s_cmd_ls(n, rest);
    if (strcmp(cmd, "cat") == 0)
        return s_cmd_read(n, rest, 0);
    if (strcmp(cmd, "get") == 0)
        return s_cmd_read(n, rest, 1);
    if (strcmp(cmd, "rm") == 0)
        return s_cmd_rm(n, rest);
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(n, rest);
    if (strcmp(cmd, "logs") == 0)
        return s_cmd_logs(n, rest);
    fprintf(stderr, "quern: unknown command '%s'\n", cmd);
    qn_usage_print(stderr);
    return QN_EXIT_USAGE;
}
