/*
 * jobcmd.c -- see jobcmd.h.
 */
#include "jobcmd.h"

#include "client.h"
#include "cluster.h"
#include "decomp.h"
#include "inline.h"
#include "jobbuild.h"
#include "opts.h"
#include "proc.h"
#include "usage.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Submit; on success copies the job id into id. Returns an exit status. */
/*
 * For a refusal naming a dataset that is not there: a bare --input with a
 * file or folder of that name here was most likely meant as it. The hint
 * (or "") into hint.
 */
static void s_bare_hint(const qn_jobbuild *j, const char *error, char *hint,
                        size_t cap)
{
    hint[0] = '\0';
    for (size_t i = 0; i < j->spec.n_inputs; i++) {
        const char *in = j->spec.inputs[i]->given;
        char want[300];
        struct stat st;
        snprintf(want, sizeof want, "no dataset %s ", in);
        if (strchr(in, '/') || !strstr(error, want) || stat(in, &st) < 0)
            continue;
        snprintf(hint, cap,
                 "; ./%s is a %s here: to read it, name it as a path, "
                 "--input ./%s (a bare name is a dataset's in quern submit)",
                 in, S_ISDIR(st.st_mode) ? "folder" : "file", in);
        return;
    }
}

static int s_submit(qn_client *c, qn_jobbuild *j, int watch, char *id,
                    size_t cap)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__SubmitJob sj = QUERN__SUBMIT_JOB__INIT;
    sj.spec = &j->spec;
    sj.watch = watch;
    sj.plugin_data.data = (uint8_t *)j->plugin.data;
    sj.plugin_data.len = j->plugin.len;
    sj.file_data = j->file_data;
    sj.n_file_data = j->spec.n_files;
    env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_JOB;
    env.submit_job = &sj;
    char err[512];
    int rc =
        qn_client_call(c, &env, &reply, QN_CLIENT_CALL_MS, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "quern: %s\n", err);
        return rc;
    }
    if (reply->body_case != QUERN__ENVELOPE__BODY_SUBMIT_REPLY) {
        qn_wire_free(reply);
        fprintf(stderr, "quern: the master answered the submission with "
                        "something else\n");
        return QN_EXIT_UNREACHABLE;
    }
    if (reply->submit_reply->error[0]) {
        char hint[700];
        s_bare_hint(j, reply->submit_reply->error, hint, sizeof hint);
        rc = qn_usage_fail("the master refused the job: %s%s",
                           reply->submit_reply->error, hint);
    } else {
        snprintf(id, cap, "%s", reply->submit_reply->job_id);
    }
    qn_wire_free(reply);
    return rc;
}

/* quern run --inline: the job in this process (inline.h). */
static int s_run_inline(const qn_cli_opts *o, qn_jobbuild *j)
{
    Quern__JobStatus st;
    char err[1024];
    /* Said with --json too (on stderr): the job's code has our rights. */
    fprintf(stderr,
            "quern: running %s inline, in this process: not in a sandbox, "
            "the job's code runs with your rights\n",
            j->spec.name);
    int rc = qn_inline_run(&j->spec, j->file_data, &st, err, sizeof err);
    if (rc == 2) {
        qn_inline_release(&st);
        return qn_usage_fail("%s", err);
    }
    if (o->json) {
        Quern__JobStatus *one = &st;
        qn_print_status_json(stdout, &one, 1, 1);
    } else {
        qn_print_result(stdout, &st);
    }
    qn_inline_release(&st);
    return rc == 0 ? 0 : QN_EXIT_JOB_FAILED;
}

/* quern run on a local cluster started for the job, stopped after it. */
static int s_run_cluster(const qn_cli_opts *o, qn_jobbuild *j)
{
    int sigfd = qn_signals_open();
    char err[512];
    qn_cluster *cl = qn_cluster_start(o->workers, o->slots, o->task_mem_mb,
                                      "info", o->http, sigfd, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "quern: cannot start the local cluster: %s\n", err);
        return QN_EXIT_JOB_FAILED;
    }
    /* The endpoint is the one the master said it listens on. */
    qn_client *c = qn_client_new(qn_cluster_endpoint(cl), NULL);
    assert(c);
    char id[64];
    int rc = s_submit(c, j, 1, id, sizeof id);
    if (rc == 0) {
        fprintf(stderr,
                "quern: running %s (%s) on a local cluster of %u "
                "workers\n",
                id, j->spec.name, o->workers);
        if (qn_cluster_http_url(cl)[0])
            fprintf(stderr, "quern: status page (while it runs): %s\n",
                    qn_cluster_http_url(cl));
        qn_follow_opts fo = {.sigfd = sigfd, .cluster = cl, .json = o->json};
        rc = qn_client_follow(c, id, &fo);
    }
    qn_client_destroy(&c);
    int keep = rc != 0;
    if (keep)
        fprintf(stderr, "quern: the local cluster's logs are in %s\n",
                qn_cluster_dir(cl));
    qn_cluster_stop(&cl, keep);
    return rc;
}

int qn_jobcmd_run(qn_cli_opts *o)
{
    qn_jobbuild j;
    o->local = 1;
    int rc = qn_cli_at_most(o, 0);
    if (rc == 0)
        rc = qn_jobbuild_init(&j, o, NULL, 0);
    if (rc != 0)
        return rc;
    rc = o->inline_run ? s_run_inline(o, &j) : s_run_cluster(o, &j);
    qn_jobbuild_release(&j);
    return rc;
}

int qn_jobcmd_submit(qn_cli_opts *o)
{
    qn_jobbuild j;
    int rc = qn_cli_at_most(o, 0);
    if (rc == 0)
        rc = qn_cli_curve(o, NULL, 0);
    if (rc == 0)
        rc = qn_jobbuild_init(&j, o, NULL, 0);
    if (rc != 0)
        return rc;
    if (j.spec.output_dataset && o->output_codec)
        fprintf(stderr,
                "quern: --output-codec %s is for a folder's part files: "
                "dataset %s stores its shards as they are, and quern cat "
                "and quern get give them back plain\n",
                qn_decomp_name((qn_decomp_kind)o->output_codec), o->output);
    struct stat st;
    if (!strchr(o->output, '/') && stat(o->output, &st) == 0)
        fprintf(stderr,
                "quern: --output %s names a dataset, not the %s ./%s here "
                "(to write there, give --output ./%s)\n",
                o->output, S_ISDIR(st.st_mode) ? "folder" : "file", o->output,
                o->output);
    int sigfd = o->wait ? qn_signals_open() : -1;
    qn_client *c = NULL;
    char id[64];
    rc = qn_cli_connect(o, &c);
    if (rc == 0)
        rc = s_submit(c, &j, o->wait, id, sizeof id);
    if (rc == 0) {
        printf("%s\n", id);
        fflush(stdout);
        if (o->wait) {
            qn_follow_opts fo = {.sigfd = sigfd, .json = o->json};
            rc = qn_client_follow(c, id, &fo);
        }
    }
    qn_client_destroy(&c);
    qn_jobbuild_release(&j);
    return rc;
}
