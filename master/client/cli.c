/*
 * cli.c -- the quern command: main() and the table of its commands.
 *
 * Exit status: 0 success, 1 the job failed or was cancelled, 2 usage error
 * (including a job the master refused), 3 master unreachable.
 */
#include "cli.h"
#include "client.h"
#include "curve.h"
#include "datasetcmd.h"
#include "draincmd.h"
#include "jobcmd.h"
#include "log.h"
#include "querycmd.h"
#include "usage.h"
#include "util.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

/* quern keygen PREFIX: it takes no options, so reads its arguments itself. */
static int s_keygen(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-')
        return qn_usage_fail(
            "usage: quern keygen PREFIX (writes PREFIX.key and PREFIX.pub)");
    char err[600];
    if (qn_curve_keygen(argv[0], err, sizeof err) < 0)
        return qn_usage_fail("%s", err);
    printf("wrote %s.key (secret: keep it on this host only) and %s.pub "
           "(public: put it in the trusted dir of the peers)\n",
           argv[0], argv[0]);
    return 0;
}

/* quern help, --help, -h: whatever follows, the help text on stdout. */
static int s_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    qn_usage_print(stdout);
    return 0;
}

static int s_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return qn_version_print("quern");
}

/* A command: its name and what runs it. */
typedef struct {
    const char *name;
    const char *allowed;               /* the options it takes (opts.h) */
    int (*run)(qn_cli_opts *o);        /* given its options parsed, */
    int (*raw)(int argc, char **argv); /* or its arguments as they are */
} s_command;

static const s_command s_commands[] = {
    {"run", QN_CLI_OPTS_RUN, qn_jobcmd_run, NULL},
    {"submit", QN_CLI_OPTS_SUBMIT, qn_jobcmd_submit, NULL},
    {"status", QN_CLI_OPTS_STATUS, qn_querycmd_status, NULL},
    {"jobs", QN_CLI_OPTS_JOBS, qn_querycmd_jobs, NULL},
    {"workers", QN_CLI_OPTS_WORKERS, qn_querycmd_workers, NULL},
    {"cancel", QN_CLI_OPTS_CANCEL, qn_querycmd_cancel, NULL},
    {"logs", QN_CLI_OPTS_LOGS, qn_querycmd_logs, NULL},
    {"put", QN_CLI_OPTS_PUT, qn_datasetcmd_put, NULL},
    {"ls", QN_CLI_OPTS_LS, qn_datasetcmd_ls, NULL},
    {"cat", QN_CLI_OPTS_CAT, qn_datasetcmd_cat, NULL},
    {"get", QN_CLI_OPTS_GET, qn_datasetcmd_get, NULL},
    {"rm", QN_CLI_OPTS_RM, qn_datasetcmd_rm, NULL},
    {"drain", QN_CLI_OPTS_DRAIN, qn_draincmd_drain, NULL},
    {"undrain", QN_CLI_OPTS_UNDRAIN, qn_draincmd_undrain, NULL},
    {"keygen", NULL, NULL, s_keygen},
    {"help", NULL, NULL, s_help},
    {"--help", NULL, NULL, s_help},
    {"-h", NULL, NULL, s_help},
    {"--version", NULL, NULL, s_version},
    {"version", NULL, NULL, s_version},
};

/* Run cmd with the arguments after its name. Returns the exit status. */
static int s_run(const s_command *cmd, int argc, char **argv)
{
    if (cmd->raw)
        return cmd->raw(argc, argv);
    qn_cli_opts o = {0};
    int rc = qn_cli_parse(argc, argv, cmd->allowed, &o, NULL, 0);
    if (rc == 0)
        rc = cmd->run(&o);
    qn_cli_opts_release(&o);
    return rc;
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
    for (size_t i = 0; i < QN_ARRAY_LEN(s_commands); i++)
        if (strcmp(argv[1], s_commands[i].name) == 0)
            return s_run(&s_commands[i], argc - 2, argv + 2);
    fprintf(stderr, "quern: unknown command '%s'\n", argv[1]);
    qn_usage_print(stderr);
    return QN_EXIT_USAGE;
}
