/*
 * mkstate.c -- write a master's state dir as a long-lived master would
 * leave it, to measure how fast a master loads it (make bench-master).
 *
 *   mkstate DIR PLUGIN.so INPUT FINISHED MAPS DONE
 *
 * DIR/state.db gets FINISHED finished jobs (as history) and one running
 * word count of MAPS maps (one reduce) over the file INPUT, cut into MAPS
 * equal pieces, with its plugin; DONE of its maps done on a worker that
 * no longer runs, every other map started once. The records are the
 * master's own (master/statedb.h, lib/quern.proto). Prints the running
 * job's id.
 */
#include "../../master/statedb.h"
#include "sha256.h"
#include "util.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static qn_statedb *db;
static char err[1024];

static void s_die(const char *what)
{
    fprintf(stderr, "mkstate: %s: %s\n", what, err);
    exit(1);
}

/* Put msg as record (kind, key) of job. */
static void s_put(qn_rec_kind kind, const char *key, const char *job, int ended,
                  const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = qn_malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    if (qn_statedb_put(db, kind, key, job, ended, buf, len, err, sizeof err) <
        0)
        s_die("put");
    free(buf);
}

/* A word count's spec reading input into output. */
static void s_spec(Quern__JobSpec *s, Quern__InputPath *in,
                   Quern__InputPath **inp, const char *input,
                   const char *output, const char *hash)
{
    quern__job_spec__init(s);
    quern__input_path__init(in);
    in->given = in->path = (char *)input;
    *inp = in;
    s->name = (char *)"wordcount";
    s->plugin = (char *)"wordcount.so";
    s->inputs = inp;
    s->n_inputs = 1;
    s->output = (char *)output;
    s->nreduce = 1;
    s->split_size = 64;
    s->sort_mb = 16;
    s->max_attempts = 4;
    s->compress_level = 1;
    s->plugin_hash = (char *)hash;
}

static void s_history(unsigned n, const char *dir)
{
    for (unsigned i = 0; i < n; i++) {
        char id[32], out[600];
        snprintf(id, sizeof id, "job-hist-%u", i + 1);
        snprintf(out, sizeof out, "%s/out-%u", dir, i + 1);
        Quern__JobSpec spec;
        Quern__InputPath in, *inp;
        s_spec(&spec, &in, &inp, "/dev/null", out, "");
        Quern__Counter c[3] = {QUERN__COUNTER__INIT, QUERN__COUNTER__INIT,
                               QUERN__COUNTER__INIT};
        Quern__Counter *cp[3] = {&c[0], &c[1], &c[2]};
        c[0].name = (char *)"map_input_records";
        c[0].value = 1000 + i;
        c[1].name = (char *)"map_attempts";
        c[1].value = 16;
        c[2].name = (char *)"reduce_output_records";
        c[2].value = 500;
        Quern__JobStatus st = QUERN__JOB_STATUS__INIT;
        st.job_id = id;
        st.name = spec.name;
        st.state = QUERN__JOB_STATE__JOB_SUCCEEDED;
        st.maps = st.maps_done = 16;
        st.reduces = st.reduces_done = 1;
        st.map_progress = st.reduce_progress = 1;
        st.elapsed_ms = 1500;
        st.counters = cp;
        st.n_counters = 3;
        st.output = out;
        Quern__JobRecord r = QUERN__JOB_RECORD__INIT;
        r.job_id = id;
        r.spec = &spec;
        r.submitted_at_ms = (uint64_t)qn_wall_ms() - 3600000 + i;
        r.nmaps = 16;
        r.nreduce = 1;
        r.ended = &st;
        s_put(QN_REC_JOB, id, NULL, 1, &r.base);
    }
}

static void s_running(const char *dir, const char *input, uint64_t size,
                      const uint8_t *so, size_t solen, unsigned maps,
                      unsigned done)
{
    uint8_t digest[QN_SHA256_SIZE];
    char hash[QN_SHA256_HEX];
    qn_sha256(so, solen, digest);
    qn_sha256_hex(digest, hash);
    const char *id = "job-big-1";
    Quern__PluginRecord pr = QUERN__PLUGIN_RECORD__INIT;
    pr.hash = hash;
    pr.data.data = (uint8_t *)so;
    pr.data.len = solen;
    s_put(QN_REC_PLUGIN, hash, id, 0, &pr.base);

    Quern__WorkerRecord wr = QUERN__WORKER_RECORD__INIT;
    wr.worker_id = (char *)"w-gone";
    wr.host = (char *)"gone";
    wr.slots = 2;
    wr.shuffle_endpoint = (char *)"tcp://127.0.0.1:9";
    wr.session = 1;
    s_put(QN_REC_WORKER, "w-gone", NULL, 0, &wr.base);

    char out[600];
    snprintf(out, sizeof out, "%s/out-big", dir);
    Quern__JobSpec spec;
    Quern__InputPath in, *inp;
    s_spec(&spec, &in, &inp, input, out, hash);
    Quern__SplitRecord *sr = qn_calloc(maps, sizeof *sr);
    Quern__SplitRecord **sp = qn_calloc(maps, sizeof *sp);
    Quern__InputPiece *pc = qn_calloc(maps, sizeof *pc);
    Quern__InputPiece **pp = qn_calloc(maps, sizeof *pp);
    uint64_t step = size / maps;
    for (unsigned i = 0; i < maps; i++) {
        quern__input_piece__init(&pc[i]);
        pc[i].path = pc[i].name = (char *)input;
        pc[i].offset = i * step;
        pc[i].length = i + 1 < maps ? step : size - i * step;
        pc[i].file_size = size;
        pp[i] = &pc[i];
        quern__split_record__init(&sr[i]);
        sr[i].pieces = &pp[i];
        sr[i].n_pieces = 1;
        sp[i] = &sr[i];
    }
    Quern__JobRecord r = QUERN__JOB_RECORD__INIT;
    r.job_id = (char *)id;
    r.spec = &spec;
    r.submitted_at_ms = (uint64_t)qn_wall_ms() - 60000;
    r.nmaps = maps;
    r.nreduce = 1;
    r.splits = sp;
    r.n_splits = maps;
    r.input_files = 1;
    r.input_bytes = size;
    r.plugin_hash = hash;
    s_put(QN_REC_JOB, id, NULL, 0, &r.base);
    free(sr);
    free(sp);
    free(pc);
    free(pp);

    for (unsigned i = 0; i < maps; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s/m/%u", id, i);
        Quern__TaskRecord tr = QUERN__TASK_RECORD__INIT;
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
        Quern__PartitionInfo p = QUERN__PARTITION_INFO__INIT;
        Quern__PartitionInfo *ppi = &p;
        tr.task = i;
        tr.attempts = 1;
        if (i < done) {
            a.job_id = (char *)id;
            a.task = i;
            a.attempt = 1;
            u.worker_id = (char *)"w-gone";
            u.attempt = &a;
            u.state = QUERN__TASK_STATE__SUCCEEDED;
            p.bytes = p.raw_bytes = 40;
            p.records = 4;
            u.partitions = &ppi;
            u.n_partitions = 1;
            tr.done = &u;
        }
        s_put(QN_REC_TASK, key, id, 0, &tr.base);
    }
    printf("%s\n", id);
}

/* The whole of file path (*len bytes; free it), or NULL. */
static uint8_t *s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    qn_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        qn_buf_add(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return (uint8_t *)b.data;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: mkstate DIR PLUGIN.so INPUT FINISHED MAPS "
                        "DONE\n");
        return 2;
    }
    unsigned finished = (unsigned)atoi(argv[4]);
    unsigned maps = (unsigned)atoi(argv[5]), done = (unsigned)atoi(argv[6]);
    size_t solen;
    uint8_t *so = s_read(argv[2], &solen);
    struct stat st;
    if (!so || stat(argv[3], &st) < 0 || maps == 0 ||
        (uint64_t)st.st_size < maps) {
        fprintf(stderr,
                "mkstate: cannot read %s, or %s is smaller than %u "
                "bytes\n",
                argv[2], argv[3], maps);
        return 1;
    }
    db = qn_statedb_open(argv[1], err, sizeof err);
    if (!db)
        s_die("open");
    s_history(finished, argv[1]);
    s_running(argv[1], argv[3], (uint64_t)st.st_size, so, solen, maps, done);
    if (qn_statedb_commit(db, err, sizeof err) < 0)
        s_die("commit");
    qn_statedb_destroy(&db);
    free(so);
    return 0;
}
