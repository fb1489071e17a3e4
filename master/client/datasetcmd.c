/*
 * datasetcmd.c -- see datasetcmd.h.
 */
#include "datasetcmd.h"

#include "client.h"
#include "dataset.h"
#include "opts.h"
#include "usage.h"

#include <stdio.h>

/* A client for the dataset commands; NULL with the exit status in *rc. */
static qn_client *s_data_client(qn_cli_opts *o, int *rc)
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

int qn_datasetcmd_put(int argc, char **argv)
{
    qn_cli_opts o = {0};
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

int qn_datasetcmd_ls(int argc, char **argv)
{
    qn_cli_opts o = {0};
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
    qn_cli_opts o = {0};
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

int qn_datasetcmd_rm(int argc, char **argv)
{
    qn_cli_opts o = {0};
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

int qn_datasetcmd_cat(int argc, char **argv)
{
    return s_cmd_read(argc, argv, 0);
}

int qn_datasetcmd_get(int argc, char **argv)
{
    return s_cmd_read(argc, argv, 1);
}
