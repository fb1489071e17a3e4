/*
 * datasetcmd.h -- the dataset commands: quern put, ls, cat, get and rm,
 * from their command lines to dataset.h.
 *
 * Each takes its command line parsed (qn_cli_parse with its allowed set,
 * opts.h) and returns the quern command's exit status.
 */
#ifndef QN_DATASETCMD_H
#define QN_DATASETCMD_H

#include "opts.h"

/* quern put FILE... --dataset NAME [--replicas K] [--shard-size SIZE]
 * [--record-size N | --whole] */
int qn_datasetcmd_put(qn_cli_opts *o);

/* quern ls [NAME] [--json] */
int qn_datasetcmd_ls(qn_cli_opts *o);

/* quern cat NAME: the shards in order, to stdout. */
int qn_datasetcmd_cat(qn_cli_opts *o);

/* quern get NAME DIR: the shards as DIR/part-NNNNN. */
int qn_datasetcmd_get(qn_cli_opts *o);

/* quern rm NAME */
int qn_datasetcmd_rm(qn_cli_opts *o);

#endif
