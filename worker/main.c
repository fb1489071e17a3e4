/*
 * main.c -- quern-worker: parse options, run the worker, clean up.
 */
#include "log.h"
#include "proc.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"
#include "wire.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: quern-worker --master EP [--slots N] [--work-dir DIR]\n"
        "                    [--data-dir DIR] [--shuffle EP]\n"
        "                    [--task-mem-mb N] [--master-grace-ms N]\n"
        "                    [--scrub-rate MIB_PER_S] [--stop-timeout-ms N]\n"
        "                    [--sandbox require|auto|off] [--task-user USER]\n"
        "                    [--curve-secret FILE --curve-trusted DIR\n"
        "                     [--curve-master FILE]]\n"
        "                    [--log-level error|warn|info|debug]\n"
        "       quern-worker --version\n"
        "\n"
        "Runs task attempts for the master at EP (e.g.\n"
        "tcp://127.0.0.1:7070), serves their map output to reducers\n"
        "and keeps dataset shards in --data-dir, served and received\n"
        "on the shuffle endpoint (default tcp://127.0.0.1:*, a free\n"
        "port on loopback). --task-mem-mb kills a task process whose\n"
        "resident memory passes N MiB (the attempt fails saying so);\n"
        "in a sandbox the kernel also caps its address space there.\n"
        "Each map and reduce runs in a sandbox (Landlock, seccomp,\n"
        "limits): --sandbox auto (the default) uses every layer the\n"
        "kernel offers, require refuses to start without all of them,\n"
        "off runs tasks with the worker's rights (debugging only).\n"
        "A worker running as root runs tasks as --task-user (default\n"
        "nobody). QUERN_SANDBOX in the environment sets the default\n"
        "level (for the workers `quern run` starts).\n"
        "While the master is away, attempts run on and map outputs\n"
        "are kept for a master that comes back (a restart with\n"
        "--state-dir); after --master-grace-ms (default 300000) they\n"
        "are dropped. Dataset shards are re-read in the background\n"
        "at --scrub-rate MiB/s (default 4; 0: never) and a copy\n"
        "whose CRC no longer matches is dropped and reported, so\n"
        "the master has a good one made.\n"
        "With --curve-secret every socket uses CURVE: peers must hold\n"
        "a key in --curve-trusted; the master's public key is\n"
        "--curve-master (default DIR/master.pub).\n"
        "SIGTERM drains the worker before it stops: it takes no new\n"
        "work, its shards are copied to other workers, and it stops\n"
        "when the master says it is drained, or after\n"
        "--stop-timeout-ms (default 60000; attempts still running at\n"
        "half of it run elsewhere; 0: stop at once). SIGINT stops it\n"
        "at once; the master runs what it ran elsewhere.\n");
}

/* The value of a numeric option, or -1 after saying what it must be. */
static int s_uint_opt(const char *name, const char *arg, uint64_t min,
                      uint64_t max, unsigned *out)
{
    uint64_t v;
    if (qn_parse_uint(arg, min, max, &v) < 0) {
        fprintf(stderr, "quern-worker: --%s must be %llu to %llu, not '%s'\n",
                name, (unsigned long long)min, (unsigned long long)max, arg);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* A time in ms, min to a day: 0, or -1 after saying what it must be. */
static int s_ms_opt(const char *name, const char *arg, unsigned min, int *out)
{
    unsigned ms;
    if (s_uint_opt(name, arg, min, 86400000, &ms) < 0)
        return -1;
    *out = (int)ms;
    return 0;
}

/* A sandbox level (what names it: the option or the variable). */
static int s_sandbox_opt(const char *what, const char *arg, int *out)
{
    qn_sandbox_mode m;
    if (qn_sandbox_mode_parse(arg, &m) < 0) {
        fprintf(stderr,
                "quern-worker: %s must be require, auto or off, not '%s'\n",
                what, arg);
        return -1;
    }
    *out = (int)m;
    return 0;
}

/*
 * Read the command line into cfg and *level. Returns -1 to go on, or the
 * exit code (0 after --help, 2 on a bad command line, said on stderr).
 */
static int s_parse(int argc, char **argv, qn_worker_config *cfg, int *level)
{
    enum {
        O_MASTER = 1,
        O_SLOTS,
        O_WORK,
        O_DATA,
        O_SHUFFLE,
        O_LOG,
        O_CURVE_SECRET,
        O_CURVE_TRUSTED,
        O_CURVE_MASTER,
        O_MEM,
        O_GRACE,
        O_SCRUB,
        O_STOP,
        O_SANDBOX,
        O_TASK_USER,
        O_HELP,
        O_VERSION
    };
    static const struct option opts[] = {
        {"master", required_argument, NULL, O_MASTER},
        {"slots", required_argument, NULL, O_SLOTS},
        {"work-dir", required_argument, NULL, O_WORK},
        {"data-dir", required_argument, NULL, O_DATA},
        {"shuffle", required_argument, NULL, O_SHUFFLE},
        {"log-level", required_argument, NULL, O_LOG},
        {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
        {"curve-trusted", required_argument, NULL, O_CURVE_TRUSTED},
        {"curve-master", required_argument, NULL, O_CURVE_MASTER},
        {"task-mem-mb", required_argument, NULL, O_MEM},
        {"master-grace-ms", required_argument, NULL, O_GRACE},
        {"scrub-rate", required_argument, NULL, O_SCRUB},
        {"stop-timeout-ms", required_argument, NULL, O_STOP},
        {"sandbox", required_argument, NULL, O_SANDBOX},
        {"task-user", required_argument, NULL, O_TASK_USER},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_MASTER: cfg->master = optarg; break;
        case O_SLOTS:
            if (s_uint_opt("slots", optarg, 1, 1024, &cfg->slots) < 0)
                return 2;
            break;
        case O_WORK: cfg->work_dir = optarg; break;
        case O_DATA: cfg->data_dir = optarg; break;
        case O_SHUFFLE: cfg->shuffle = optarg; break;
        case O_LOG:
            *level = qn_log_parse_level(optarg);
            if (*level < 0) {
                fprintf(stderr, "quern-worker: --log-level must be error, "
                                "warn, info or debug\n");
                return 2;
            }
            break;
        case O_CURVE_SECRET: cfg->curve_secret = optarg; break;
        case O_CURVE_TRUSTED: cfg->curve_trusted = optarg; break;
        case O_CURVE_MASTER: cfg->curve_master = optarg; break;
        case O_MEM:
            if (s_uint_opt("task-mem-mb", optarg, 16, 1 << 20,
                           &cfg->task_mem_mb) < 0)
                return 2;
            break;
        case O_GRACE:
            if (s_ms_opt("master-grace-ms", optarg, 10, &cfg->master_grace_ms))
                return 2;
            break;
        case O_SCRUB: {
            unsigned mb;
            if (s_uint_opt("scrub-rate", optarg, 0, 100000, &mb) < 0)
                return 2;
            cfg->scrub_rate = (uint64_t)mb << 20;
            break;
        }
        case O_STOP:
            if (s_ms_opt("stop-timeout-ms", optarg, 0, &cfg->stop_timeout_ms))
                return 2;
            break;
        case O_SANDBOX:
            if (s_sandbox_opt("--sandbox", optarg, &cfg->sandbox) < 0)
                return 2;
            break;
        case O_TASK_USER: cfg->task_user = optarg; break;
        case O_HELP: s_usage(stdout); return 0;
        case O_VERSION: return qn_version_print("quern-worker");
        default:
            fprintf(stderr, "quern-worker: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            s_usage(stderr);
            return 2;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    qn_worker_config cfg = {.slots = 1,
                            .master_grace_ms = 300000,
                            .scrub_rate = 4 << 20,
                            .stop_timeout_ms = 60000};
    int level = QN_LOG_INFO;
    /* The default level may come from the environment (QUERN_SANDBOX), as
     * for the workers `quern run` starts; --sandbox wins. */
    const char *env_sb = getenv("QUERN_SANDBOX");
    if (env_sb && s_sandbox_opt("QUERN_SANDBOX", env_sb, &cfg.sandbox) < 0)
        return 2;
    int rc = s_parse(argc, argv, &cfg, &level);
    if (rc >= 0)
        return rc;
    if (!cfg.curve_secret != !cfg.curve_trusted) {
        fprintf(stderr, "quern-worker: --curve-secret and --curve-trusted go "
                        "together\n");
        return 2;
    }
    if (optind < argc || !cfg.master) {
        fprintf(stderr,
                optind < argc ? "quern-worker: unexpected argument '%s'\n"
                              : "quern-worker: --master is required%s\n",
                optind < argc ? argv[optind] : "");
        s_usage(stderr);
        return 2;
    }
    qn_log_init("quern-worker", (enum qn_log_level)level);
    qn_die_with_parent();
    char err[512];
    qn_worker *w = qn_worker_new(&cfg, err, sizeof err);
    if (!w) {
        fprintf(stderr, "quern-worker: %s\n", err);
        return 1;
    }
    rc = qn_worker_run(w);
    qn_worker_destroy(&w);
    return rc;
}
