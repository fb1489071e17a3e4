/*
 * dataset.c -- see dataset.h: ls, cat, get and rm (put is in put.c).
 */
#include "dataset.h"

#include "curve.h"
#include "shardio.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CALL_MS 10000 /* a master request */
#define PULL_STALL_MS 10000

/* ---- ls, cat, get, rm ------------------------------------------------------
 */

static int s_datasets(qn_client *c, const char *name, Quern__Envelope **reply)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DatasetsRequest rq = QUERN__DATASETS_REQUEST__INIT;
    rq.dataset = (char *)(name ? name : "");
    env.body_case = QUERN__ENVELOPE__BODY_DATASETS_REQUEST;
    env.datasets_request = &rq;
    int rc = qn_client_ask(c, &env, QUERN__ENVELOPE__BODY_DATASETS_REPLY,
                           CALL_MS, reply);
    if (rc == 0 && (*reply)->datasets_reply->error[0]) {
        fprintf(stderr, "quern: %s\n", (*reply)->datasets_reply->error);
        qn_wire_free(*reply);
        *reply = NULL;
        return QN_EXIT_USAGE;
    }
    return rc;
}

static const char *s_state(const Quern__DatasetInfo *d)
{
    if (d->sealed)
        return "complete";
    return d->writer[0] ? "writing" : "incomplete";
}

/* A dataset (with its shards when name is set) as JSON. */
static json_t *s_dataset_json(const Quern__DatasetInfo *d, const char *name)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "name", d->name,
                  "state", s_state(d), "shards", (json_int_t)d->nshards,
                  "bytes", (json_int_t)d->bytes, "replicas",
                  (json_int_t)d->replicas, "under_replicated",
                  (json_int_t)d->under_replicated, "writer", d->writer);
    if (!name)
        return o;
    json_t *shards = json_array();
    for (size_t k = 0; k < d->n_shards; k++) {
        const Quern__ShardLocation *s = d->shards[k];
        json_t *h = json_array();
        for (size_t x = 0; x < s->n_holders; x++)
            json_array_append_new(h, json_string(s->holders[x]->worker_id));
        json_array_append_new(shards,
                              json_pack("{s:I, s:I, s:I, s:o}", "index",
                                        (json_int_t)s->index, "bytes",
                                        (json_int_t)s->size, "crc",
                                        (json_int_t)s->crc, "holders", h));
    }
    json_object_set_new(o, "shard_list", shards);
    return o;
}

/* Every dataset, a line each, for people. */
static void s_ls_all(const Quern__DatasetsReply *r)
{
    printf("%-24s %7s %11s %7s %7s  %s\n", "DATASET", "SHARDS", "SIZE",
           "COPIES", "SHORT", "STATE");
    for (size_t i = 0; i < r->n_datasets; i++) {
        const Quern__DatasetInfo *d = r->datasets[i];
        char sz[32];
        printf("%-24s %7u %11s %7u %7u  %s%s%s\n", d->name, d->nshards,
               qn_fmt_bytes(d->bytes, sz, sizeof sz), d->replicas,
               d->under_replicated, s_state(d), d->writer[0] ? " by " : "",
               d->writer);
    }
}

/* One dataset and a line per shard, for people. */
static void s_ls_one(const Quern__DatasetInfo *d)
{
    char sz[32];
    printf("%s: %u shards, %s, %s; fewest live copies %u, %u shards short of "
           "copies\n",
           d->name, d->nshards, qn_fmt_bytes(d->bytes, sz, sizeof sz),
           s_state(d), d->replicas, d->under_replicated);
    for (size_t k = 0; k < d->n_shards; k++) {
        const Quern__ShardLocation *s = d->shards[k];
        printf("  part-%05u %11s  crc %08x  on", s->index,
               qn_fmt_bytes(s->size, sz, sizeof sz), s->crc);
        for (size_t x = 0; x < s->n_holders; x++)
            printf(" %s", s->holders[x]->worker_id);
        printf("%s\n", s->n_holders ? "" : " no live worker");
    }
}

int qn_dataset_ls(qn_client *c, const char *name, int json)
{
    Quern__Envelope *reply;
    int rc = s_datasets(c, name, &reply);
    if (rc != 0)
        return rc;
    const Quern__DatasetsReply *r = reply->datasets_reply;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < r->n_datasets; i++)
            json_array_append_new(arr, s_dataset_json(r->datasets[i], name));
        qn_print_json(stdout, json_incref(name ? json_array_get(arr, 0) : arr));
        json_decref(arr);
    } else if (!name) {
        s_ls_all(r);
    } else {
        s_ls_one(r->datasets[0]);
    }
    qn_wire_free(reply);
    return 0;
}

/*
 * Pull shard s of dataset name from one of its holders to stdout (dir
 * NULL) or to DIR/part-NNNNN, written beside it and renamed into place.
 * Returns 0 or an exit status (said).
 */
static int s_read_shard(qn_client *c, const qn_curve *curve, const char *name,
                        const Quern__ShardLocation *s, const char *dir)
{
    qn_source *src = qn_calloc(s->n_holders + 1, sizeof *src);
    for (size_t x = 0; x < s->n_holders; x++) {
        src[x].endpoint = s->holders[x]->endpoint;
        src[x].worker_id = s->holders[x]->worker_id;
        src[x].curve_public = s->holders[x]->curve_public;
    }
    qn_shard_want want = {
        .dataset = name, .index = s->index, .size = s->size, .crc = s->crc};
    qn_buf tmp = {0}, final = {0};
    int fd = 1, rc = 0;
    if (dir) {
        qn_buf_printf(&final, "%s/part-%05u", dir, s->index);
        qn_buf_printf(&tmp, "%s.tmp", final.data);
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "quern: cannot create %s: %s\n", tmp.data,
                    strerror(errno));
            rc = QN_EXIT_USAGE;
        }
    }
    char err[2048];
    if (rc == 0 &&
        qn_shard_pull(qn_client_ctx(c), curve, src, s->n_holders, &want, fd,
                      PULL_STALL_MS, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "quern: %s\n", err);
        rc = QN_EXIT_JOB_FAILED;
    }
    if (dir && fd >= 0) {
        if (rc == 0 && (fsync(fd) < 0 || rename(tmp.data, final.data) < 0))
            rc = QN_EXIT_USAGE;
        close(fd);
        if (rc != 0)
            unlink(tmp.data);
    }
    qn_buf_release(&tmp);
    qn_buf_release(&final);
    free(src);
    return rc;
}

int qn_dataset_read(qn_client *c, const qn_curve *curve, const char *name,
                    const char *dir)
{
    Quern__Envelope *reply;
    int rc = s_datasets(c, name, &reply);
    if (rc != 0)
        return rc;
    const Quern__DatasetInfo *d = reply->datasets_reply->datasets[0];
    if (!d->sealed) {
        fprintf(stderr, "quern: dataset %s is not complete (%s)\n", name,
                s_state(d));
        qn_wire_free(reply);
        return QN_EXIT_USAGE;
    }
    if (dir) {
        int e = qn_mkdirs(dir, 0755);
        if (e < 0) {
            fprintf(stderr, "quern: cannot create %s: %s\n", dir, strerror(-e));
            qn_wire_free(reply);
            return QN_EXIT_USAGE;
        }
    }
    for (size_t k = 0; rc == 0 && k < d->n_shards; k++)
        rc = s_read_shard(c, curve, name, d->shards[k], dir);
    qn_wire_free(reply);
    return rc;
}

int qn_dataset_rm(qn_client *c, const char *name)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply;
    Quern__DropDataset rq = QUERN__DROP_DATASET__INIT;
    rq.dataset = (char *)name;
    env.body_case = QUERN__ENVELOPE__BODY_DROP_DATASET;
    env.drop_dataset = &rq;
    int rc = qn_client_ask(c, &env, QUERN__ENVELOPE__BODY_DROP_REPLY, CALL_MS,
                           &reply);
    if (rc != 0)
        return rc;
    if (reply->drop_reply->error[0]) {
        fprintf(stderr, "quern: %s\n", reply->drop_reply->error);
        rc = QN_EXIT_USAGE;
    }
    qn_wire_free(reply);
    return rc;
}
