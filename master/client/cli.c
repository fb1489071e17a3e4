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
#include "querycmd.h"
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
        return qn_querycmd_status(n, rest);
    if (strcmp(cmd, "jobs") == 0)
        return qn_querycmd_jobs(n, rest);
    if (strcmp(cmd, "workers") == 0)
        return qn_querycmd_workers(n, rest);
    if (strcmp(cmd, "cancel") == 0)
        return qn_querycmd_cancel(n, rest);
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
        return qn_querycmd_logs(n, rest);
    fprintf(stderr, "quern: unknown command '%s'\n", cmd);
    qn_usage_print(stderr);
    return QN_EXIT_USAGE;
}
