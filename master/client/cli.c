/*
 * cli.c -- the quern command: run, submit, status, jobs, workers, cancel.
 *
 * Exit status: 0 success, 1 the job failed or was cancelled, 2 usage error
 * (including a job the master refused), 3 master unreachable.
 */
#include "cli.h"
#include "client.h"
#include "curve.h"
#include "datasetcmd.h"
#include "jobcmd.h"
#include "log.h"
#include "querycmd.h"
#include "usage.h"

#include <stdio.h>
#include <string.h>

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
        return qn_datasetcmd_put(n, rest);
    if (strcmp(cmd, "ls") == 0)
        return qn_datasetcmd_ls(n, rest);
    if (strcmp(cmd, "cat") == 0)
        return qn_datasetcmd_cat(n, rest);
    if (strcmp(cmd, "get") == 0)
        return qn_datasetcmd_get(n, rest);
    if (strcmp(cmd, "rm") == 0)
        return qn_datasetcmd_rm(n, rest);
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(n, rest);
    if (strcmp(cmd, "logs") == 0)
        return qn_querycmd_logs(n, rest);
    fprintf(stderr, "quern: unknown command '%s'\n", cmd);
    qn_usage_print(stderr);
    return QN_EXIT_USAGE;
}
