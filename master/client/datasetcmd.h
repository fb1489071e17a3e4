/*
 * datasetcmd.h -- the dataset commands: quern put, ls, cat, get and rm,
 * from their command lines to dataset.h.
 *
 * Each takes argv[0..argc), the arguments after the command's name, and
 * returns the quern command's exit status.
 */
#ifndef QN_DATASETCMD_H
#define QN_DATASETCMD_H

/* quern put FILE... --dataset NAME [--replicas K] [--shard-size SIZE]
 * [--record-size N | --whole] */
int qn_datasetcmd_put(int argc, char **argv);

/* quern ls [NAME] [--json] */
int qn_datasetcmd_ls(int argc, char **argv);

/* quern cat NAME: the shards in order, to stdout. */
int qn_datasetcmd_cat(int argc, char **argv);

/* quern get NAME DIR: the shards as DIR/part-NNNNN. */
int qn_datasetcmd_get(int argc, char **argv);

/* quern rm NAME */
int qn_datasetcmd_rm(int argc, char **argv);

#endif
