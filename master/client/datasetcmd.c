/*
 * datasetcmd.c -- see datasetcmd.h.
 */
#include "datasetcmd.h"

#include "client.h"
#include "dataset.h"
#include "opts.h"
#include "usage.h"

#include <stdio.h>

int qn_datasetcmd_put(qn_cli_opts *o)
{
    if (!o->dataset || o->npositional == 0)
        return qn_usage_fail(
            "usage: quern put FILE... --dataset NAME [--replicas K] "
            "[--shard-size SIZE] [--record-size N | --whole]");
    if (o->whole && o->record_size)
        return qn_usage_fail("--whole and --record-size do not go together");
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc == 0) {
        qn_put_opts po = {.dataset = o->dataset,
                          .replicas = o->replicas,
                          .shard_size = o->shard_size,
                          .record_size = o->record_size,
                          .whole = o->whole};
        rc = qn_dataset_put(c, &o->curve, &po, o->positional, o->npositional);
    }
    qn_client_destroy(&c);
    return rc;
}

int qn_datasetcmd_ls(qn_cli_opts *o)
{
    if (o->npositional > 1)
        return qn_usage_fail("usage: quern ls [NAME] [--json]");
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc == 0)
        rc =
            qn_dataset_ls(c, o->npositional ? o->positional[0] : NULL, o->json);
    qn_client_destroy(&c);
    return rc;
}

/* quern cat NAME, and quern get NAME DIR (to_dir). */
static int s_read(qn_cli_opts *o, int to_dir)
{
    if (o->npositional != (size_t)(to_dir ? 2 : 1))
        return qn_usage_fail(to_dir ? "usage: quern get NAME DIR"
                                    : "usage: quern cat NAME");
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc == 0)
        rc = qn_dataset_read(c, &o->curve, o->positional[0],
                             to_dir ? o->positional[1] : NULL);
    qn_client_destroy(&c);
    return rc;
}

int qn_datasetcmd_cat(qn_cli_opts *o)
{
    return s_read(o, 0);
}

int qn_datasetcmd_get(qn_cli_opts *o)
{
    return s_read(o, 1);
}

int qn_datasetcmd_rm(qn_cli_opts *o)
{
    if (o->npositional != 1)
        return qn_usage_fail("usage: quern rm NAME");
    qn_client *c = NULL;
    int rc = qn_cli_open(o, &c);
    if (rc == 0)
        rc = qn_dataset_rm(c, o->positional[0]);
    if (rc == 0)
        printf("%s removed\n", o->positional[0]);
    qn_client_destroy(&c);
    return rc;
}
