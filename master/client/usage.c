/*
 * usage.c -- see usage.h.
 */
#include "usage.h"

#include "client.h"

#include <stdarg.h>

void qn_usage_print(FILE *f)
{
    fputs(
        "usage: quern COMMAND [OPTIONS]\n"
        "\n"
        "  run      --job J.so --input PATH... --output DIR [-R N]\n"
        "           [--file PATH]... [--workers N] [--slots N] [--json]\n"
        "           [--http HOST:PORT] [--inline] [JOB OPTIONS]\n"
        "           run a job on a local cluster started for it: --workers\n"
        "           (default: one per core) of --slots task processes\n"
        "           (default 1); its status page on --http (default a free\n"
        "           port on 127.0.0.1); --inline: every task in this one\n"
        "           process instead, no workers, no sockets\n"
        "  submit   --master EP --job J.so --input PATH... --output DIR\n"
        "           [-R N] [--file PATH]... [--wait] [--json] [JOB OPTIONS]\n"
        "           submit a job to a running master; prints its id\n"
        "  status   [JOB [--tasks]] [--json]\n"
        "           what the master knows of jobs (with --tasks, each task)\n"
        "  jobs     [--json]         list jobs\n"
        "  workers  [--json]         list workers\n"
        "  cancel   JOB [--json]     stop a job: kill its attempts, remove\n"
        "           its output\n"
        "  logs     JOB TASK [--attempt N] [--json]\n"
        "           the stderr of a task's attempt (TASK like m3 or r0; the\n"
        "           latest attempt by default), from the worker that ran it\n"
        "  put      FILE... --dataset NAME [--replicas K] [--shard-size SIZE]\n"
        "           [--record-size N | --whole]\n"
        "           cut files into shards at record boundaries (lines by\n"
        "           default) and store K copies of each on the workers\n"
        "  ls       [NAME] [--json]  datasets, or one dataset's shards\n"
        "  cat      NAME             a dataset's shards in order, to stdout\n"
        "  get      NAME DIR         a dataset's shards as DIR/part-NNNNN\n"
        "  rm       NAME             remove a dataset from every worker\n"
        "  drain    WORKER [--wait] [--deadline-ms N] [--json]\n"
        "           take a worker out of service: it takes no new work, its\n"
        "           shards are copied elsewhere, what it runs finishes (past\n"
        "           N ms, default 600000, runs elsewhere); --wait returns\n"
        "           when it is drained and may be stopped\n"
        "  undrain  WORKER [--json]  put a draining worker back in service\n"
        "  keygen   PREFIX           write a CURVE key pair: PREFIX.key\n"
        "           (secret) and PREFIX.pub (public)\n"
        "  version                   this release and its protocol version\n"
        "                            (also --version)\n"
        "\n"
        "Job options: --arg NAME=VALUE (repeatable), --split-size SIZE\n"
        "(default 64M), --sort-mb N (default 64), --max-attempts N\n"
        "(default 4), --compress-level 0-9 (default 1), --codec "
        "zlib|lz4|zstd|none,\n"
        "--no-speculation (no backup attempts for slow tasks),\n"
        "--skip-bad-records (skip an input record that crashed two attempts),\n"
        "--keep-cr (lines keep a carriage return before their newline),\n"
        "--output-codec gzip|zstd|bzip2|xz|lz4|none (part files compressed:\n"
        "part-00000.gz ...; default none),\n"
        "--file PATH (repeatable: a file shipped with the job, placed\n"
        "read-only in each map and reduce task's working folder under its\n"
        "own name; the plugin and files together at most 15 MiB).\n"
        "\n"
        "Commands that talk to a master take --master EP (default: the\n"
        "QUERN_MASTER environment variable, else " QN_CLIENT_DEFAULT_MASTER
        ").\n"
        "With --curve-secret FILE (and --curve-master FILE, the master's\n"
        "public key) they connect over CURVE (or QUERN_CURVE_SECRET and\n"
        "QUERN_CURVE_MASTER).\n"
        "Inputs and outputs containing a '/' are paths (./data.txt) on a\n"
        "filesystem every worker sees; a bare NAME is a dataset. A dataset\n"
        "output is written on the workers that ran the reduces and copied\n"
        "to --output-replicas workers (default 2) before the job succeeds.\n"
        "\n"
        "Exit status: 0 success, 1 job failed or cancelled, 2 usage error,\n"
        "3 master unreachable.\n",
        f);
}

/* The message of qn_usage_error, from its arguments. */
static int s_verror(char *err, size_t cap, const char *fmt, va_list ap)
{
    if (err) {
        vsnprintf(err, cap, fmt, ap);
    } else {
        fprintf(stderr, "quern: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    return QN_EXIT_USAGE;
}

int qn_usage_error(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_verror(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

int qn_usage_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_verror(NULL, 0, fmt, ap);
    va_end(ap);
    return rc;
}
