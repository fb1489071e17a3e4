/*
 * main.c -- quern-master: parse options, run the master, clean up.
 */
#include "log.h"
#include "proc.h"
#include "master.h"
#include "util.h"
#include "wire.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: quern-master [--listen EP] [--heartbeat-ms N] [--dead-ms N]\n"
        "                    [--task-timeout-ms N] [--locality-wait-ms N]\n"
        "                    [--shard-wait-ms N] [--http HOST:PORT|off]\n"
        "                    [--curve-secret FILE --curve-trusted DIR]\n"
        "                    [--state-dir DIR [--keep-jobs N] [--recovery-ms "
        "N]]\n"
        "                    [--replica-timeout-ms N] [--replica-copies N]\n"
        "                    [--log-level error|warn|info|debug]\n"
        "       quern-master --version\n"
        "\n"
        "Coordinates jobs for the workers and clients that connect to EP\n"
        "(default tcp://127.0.0.1:7070: loopback only). Defaults:\n"
        "heartbeat 1000 ms, dead after 10000 ms, task timeout 60000 ms;\n"
        "a map waits 1000 ms for a free worker holding its input before\n"
        "another worker streams it, and 60000 ms for any live holder\n"
        "before its job fails. The status page, its JSON API (/api/v1/)\n"
        "and Prometheus metrics (/metrics) are served read-only on --http\n"
        "(default 127.0.0.1:8080; port 0 picks a free one; off: none).\n"
        "With --state-dir every job, task done, dataset and worker is kept\n"
        "in DIR/state.db: started again on it, the master goes on with its\n"
        "jobs, and gives its workers --recovery-ms (default 3 heartbeats)\n"
        "to say what they run before starting anything anew; the newest\n"
        "--keep-jobs finished jobs (default 1000) are kept as history.\n"
        "Without it, a restart loses every job. One master per DIR.\n"
        "A dataset shard whose holder has been gone --replica-timeout-ms\n"
        "(default 600000: 10 minutes) is copied from a live holder until\n"
        "it has its copies again, with at most --replica-copies copies\n"
        "(default 2) in flight to or from any one worker.\n"
        "With --curve-secret every connection\n"
        "must use CURVE with a key in --curve-trusted. Stops cleanly on\n"
        "SIGTERM or SIGINT.\n");
}

static int s_ms(const char *opt, const char *arg, int *out)
{
    uint64_t v;
    if (qn_parse_uint(arg, 10, 86400000, &v) < 0) {
        fprintf(stderr,
                "quern-master: %s must be a number of milliseconds "
                "from 10 to 86400000, not '%s'\n",
                opt, arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

enum {
    O_LISTEN = 1,
    O_HB,
    O_DEAD,
    O_TIMEOUT,
    O_LOG,
    O_READY,
    O_LOCALITY,
    O_SHARD_WAIT,
    O_CURVE_SECRET,
    O_CURVE_TRUSTED,
    O_HTTP,
    O_STATE_DIR,
    O_KEEP_JOBS,
    O_RECOVERY,
    O_REPLICA_TIMEOUT,
    O_REPLICA_COPIES,
    O_HELP,
    O_VERSION
};

static const struct option OPTS[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"heartbeat-ms", required_argument, NULL, O_HB},
    {"dead-ms", required_argument, NULL, O_DEAD},
    {"task-timeout-ms", required_argument, NULL, O_TIMEOUT},
    {"log-level", required_argument, NULL, O_LOG},
    {"ready-fd", required_argument, NULL, O_READY},
    {"http", required_argument, NULL, O_HTTP},
    {"state-dir", required_argument, NULL, O_STATE_DIR},
    {"keep-jobs", required_argument, NULL, O_KEEP_JOBS},
    {"recovery-ms", required_argument, NULL, O_RECOVERY},
    {"replica-timeout-ms", required_argument, NULL, O_REPLICA_TIMEOUT},
    {"replica-copies", required_argument, NULL, O_REPLICA_COPIES},
    {"locality-wait-ms", required_argument, NULL, O_LOCALITY},
    {"shard-wait-ms", required_argument, NULL, O_SHARD_WAIT},
    {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
    {"curve-trusted", required_argument, NULL, O_CURVE_TRUSTED},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

/* The config field an option of milliseconds sets, or NULL. */
static int *s_ms_field(qn_master_config *cfg, int c)
{
    switch (c) {
    case O_HB: return &cfg->heartbeat_ms;
    case O_DEAD: return &cfg->dead_ms;
    case O_TIMEOUT: return &cfg->task_timeout_ms;
    case O_LOCALITY: return &cfg->locality_wait_ms;
    case O_SHARD_WAIT: return &cfg->shard_wait_ms;
    case O_RECOVERY: return &cfg->recovery_ms;
    case O_REPLICA_TIMEOUT: return &cfg->replica_timeout_ms;
    default: return NULL;
    }
}

/*
 * Take option c (OPTS[idx]) with its argument arg. Returns -1 to go on,
 * or the status to exit with (0 after --help, 2 on a bad option).
 */
static int s_option(int c, int idx, const char *arg, qn_master_config *cfg,
                    int *level, char **argv)
{
    uint64_t v;
    int *ms = s_ms_field(cfg, c);
    if (ms) {
        char name[40];
        snprintf(name, sizeof name, "--%s", OPTS[idx].name);
        return s_ms(name, arg, ms) < 0 ? 2 : -1;
    }
    switch (c) {
    case O_LISTEN: cfg->listen = arg; return -1;
    case O_CURVE_SECRET: cfg->curve_secret = arg; return -1;
    case O_HTTP: cfg->http = arg; return -1;
    case O_CURVE_TRUSTED: cfg->curve_trusted = arg; return -1;
    case O_LOG:
        *level = qn_log_parse_level(arg);
        if (*level >= 0)
            return -1;
        fprintf(stderr, "quern-master: --log-level must be error, "
                        "warn, info or debug\n");
        return 2;
    case O_READY:
        if (qn_parse_uint(arg, 0, 65535, &v) < 0) {
            fprintf(stderr, "quern-master: bad --ready-fd '%s'\n", arg);
            return 2;
        }
        cfg->ready_fd = (int)v;
        return -1;
    case O_STATE_DIR: cfg->state_dir = arg; return -1;
    case O_KEEP_JOBS:
        if (qn_parse_uint(arg, 1, 10000000, &v) < 0) {
            fprintf(stderr,
                    "quern-master: --keep-jobs must be a number from 1 to "
                    "10000000, not '%s'\n",
                    arg);
            return 2;
        }
        cfg->keep_jobs = (unsigned)v;
        return -1;
    case O_REPLICA_COPIES:
        if (qn_parse_uint(arg, 1, 64, &v) < 0) {
            fprintf(stderr,
                    "quern-master: --replica-copies must be a number from 1 "
                    "to 64, not '%s'\n",
                    arg);
            return 2;
        }
        cfg->replica_copies = (unsigned)v;
        return -1;
    case O_HELP: s_usage(stdout); return 0;
    case O_VERSION: return qn_version_print("quern-master");
    default:
        fprintf(stderr, "quern-master: unknown or incomplete option '%s'\n",
                argv[optind - 1]);
        s_usage(stderr);
        return 2;
    }
}

/* Options that only make sense together. 0, or 2 with a message. */
static int s_check(const qn_master_config *cfg)
{
    if (!cfg->curve_secret != !cfg->curve_trusted) {
        fprintf(stderr, "quern-master: --curve-secret and --curve-trusted go "
                        "together\n");
        return 2;
    }
    if (cfg->dead_ms <= cfg->heartbeat_ms) {
        fprintf(stderr,
                "quern-master: --dead-ms (%d) must be longer than "
                "--heartbeat-ms (%d)\n",
                cfg->dead_ms, cfg->heartbeat_ms);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    qn_master_config cfg = {.heartbeat_ms = 1000,
                            .dead_ms = 10000,
                            .task_timeout_ms = 60000,
                            .locality_wait_ms = 1000,
                            .shard_wait_ms = 60000,
                            .listen = "tcp://127.0.0.1:7070",
                            .http = "127.0.0.1:8080",
                            .ready_fd = -1,
                            .keep_jobs = 1000,
                            .recovery_ms = -1,
                            .replica_timeout_ms = 600000,
                            .replica_copies = 2};
    int level = QN_LOG_INFO;
    int c, idx = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", OPTS, &idx)) != -1) {
        int rc = s_option(c, idx, optarg, &cfg, &level, argv);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "quern-master: unexpected argument '%s'\n",
                argv[optind]);
        s_usage(stderr);
        return 2;
    }
    if (s_check(&cfg))
        return 2;
    if (cfg.recovery_ms < 0)
        cfg.recovery_ms = 3 * cfg.heartbeat_ms;
    qn_log_init("quern-master", (enum qn_log_level)level);
    qn_die_with_parent();
    char err[512];
    qn_master *m = qn_master_new(&cfg, err, sizeof err);
    if (!m) {
        fprintf(stderr, "quern-master: %s\n", err);
        return 1;
    }
    int rc = qn_master_run(m);
    qn_master_destroy(&m);
    return rc;
}
