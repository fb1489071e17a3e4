/*
 * main.c -- quern-worker: parse options, run the worker, clean up.
 */
#include "log.h"
#include "proc.h"
#include "util.h"
#include "worker.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *f)
{
    fprintf(f, "usage: quern-worker --master EP [--slots N] [--work-dir DIR]\n"
               "                    [--data-dir DIR] [--shuffle EP]\n"
               "                    [--task-mem-mb N]\n"
               "                    [--curve-secret FILE --curve-trusted DIR\n"
               "                     [--curve-master FILE]]\n"
               "                    [--log-level error|warn|info|debug]\n"
               "\n"
               "Runs task attempts for the master at EP (e.g.\n"
               "tcp://127.0.0.1:7070), serves their map output to reducers\n"
               "and keeps dataset shards in --data-dir, served and received\n"
               "on the shuffle endpoint (default tcp://127.0.0.1:*, a free\n"
               "port on loopback). --task-mem-mb kills a task process whose\n"
               "resident memory passes N MiB (the attempt fails saying so).\n"
               "With --curve-secret every socket uses CURVE: peers must hold\n"
               "a key in --curve-trusted; the master's public key is\n"
               "--curve-master (default DIR/master.pub). Stops cleanly on\n"
               "SIGTERM or SIGINT.\n");
}

int main(int argc, char **argv)
{
    qn_worker_config cfg = {.slots = 1};
    int level = QN_LOG_INFO;
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
        O_HELP
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
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case O_MASTER: cfg.master = optarg; break;
        case O_SLOTS:
            if (qn_parse_uint(optarg, 1, 1024, &v) < 0) {
                fprintf(stderr,
                        "quern-worker: --slots must be 1 to 1024, "
                        "not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.slots = (unsigned)v;
            break;
        case O_WORK: cfg.work_dir = optarg; break;
        case O_DATA: cfg.data_dir = optarg; break;
        case O_SHUFFLE: cfg.shuffle = optarg; break;
        case O_LOG:
            level = qn_log_parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "quern-worker: --log-level must be error, "
                                "warn, info or debug\n");
                return 2;
            }
            break;
        case O_CURVE_SECRET: cfg.curve_secret = optarg; break;
        case O_CURVE_TRUSTED: cfg.curve_trusted = optarg; break;
        case O_CURVE_MASTER: cfg.curve_master = optarg; break;
        case O_MEM:
            if (qn_parse_uint(optarg, 16, 1 << 20, &v) < 0) {
                fprintf(stderr,
                        "quern-worker: --task-mem-mb must be 16 to 1048576, "
                        "not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.task_mem_mb = (unsigned)v;
            break;
        case O_HELP: s_usage(stdout); return 0;
        default:
            fprintf(stderr, "quern-worker: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            s_usage(stderr);
            return 2;
        }
    }
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
    int rc = qn_worker_run(w);
    qn_worker_destroy(&w);
    return rc;
}
