/*
 * recovery.c -- see recovery.h.
 */
#include "recovery.h"

#include "ifile.h"
#include "layout.h"
#include "log.h"
#include "masterlink.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DONE_MAX (4 * 1024 * 1024) /* a kept update is far smaller */

int qn_recovery_note(qn_worker *w, const qn_attempt_ref *r,
                     const Quern__TaskUpdate *u)
{
    qn_buf p = {0};
    qn_map_done_path(&p, w->work_dir, r->job_id, r->task, r->attempt);
    /* Named as we ran it, whatever the task said. */
    Quern__AttemptRef ref;
    qn_attempt_ref_wire(&ref, r);
    Quern__TaskUpdate mine = *u;
    mine.attempt = &ref;
    size_t n = quern__task_update__get_packed_size(&mine);
    uint8_t *buf = qn_malloc(n ? n : 1);
    quern__task_update__pack(&mine, buf);
    /* No fsync: a killed worker's writes are in the page cache; a machine
     * that crashes loses the output's own pages too, and a scan that
     * finds either short deletes both. */
    int fd = open(p.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : qn_write_all(fd, buf, n);
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        qn_warn("worker %s: cannot keep %s: %s (the output is not offered "
                "again if this worker restarts)",
                w->id, p.data, qn_strerror(rc));
        unlink(p.data);
    }
    free(buf);
    qn_buf_release(&p);
    return rc < 0 ? -1 : 0;
}

void qn_recovery_drop(qn_worker *w, const Quern__DropOutputs *d)
{
    qn_buf p = {0};
    size_t n = 0;
    for (size_t i = 0; i < d->n_outputs; i++) {
        const Quern__AttemptRef *r = d->outputs[i];
        if (!qn_id_ok(r->job_id) || r->kind != QUERN__TASK_KIND__MAP ||
            strlen(r->job_id) >= QN_WORKER_ID_MAX)
            continue;
        qn_attempt_ref ref = {
            .kind = r->kind, .task = r->task, .attempt = r->attempt};
        snprintf(ref.job_id, sizeof ref.job_id, "%s", r->job_id);
        qn_masterlink_forget_one(w, &ref);
        qn_attempt_dir(&p, w->work_dir, r->job_id, 1, r->task, r->attempt);
        n += access(p.data, F_OK) == 0;
        qn_rmtree(p.data); /* the output, in its attempt's folder */
        qn_map_done_path(&p, w->work_dir, r->job_id, r->task, r->attempt);
        unlink(p.data);
    }
    qn_buf_release(&p);
    qn_info("worker %s: deleted %zu map outputs no job needs any more", w->id,
            n);
}

/* The kept update at path, checked against job, map and attempt (from
 * its file name) and against the output's index; NULL if it does not
 * agree (why in err). */
static Quern__TaskUpdate *s_read_done(const char *path, const char *job,
                                      unsigned map, unsigned attempt,
                                      const qn_ifile *f, char *err,
                                      size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    Quern__TaskUpdate *u = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= DONE_MAX) {
        uint8_t *buf = qn_malloc((size_t)st.st_size);
        if (qn_pread_all(fd, buf, (size_t)st.st_size, 0) == 0)
            u = quern__task_update__unpack(NULL, (size_t)st.st_size, buf);
        free(buf);
    }
    close(fd);
    const char *bad = NULL;
    if (!u)
        bad = "not a task update";
    else if (!u->attempt || strcmp(u->attempt->job_id, job) != 0 ||
             u->attempt->kind != QUERN__TASK_KIND__MAP ||
             u->attempt->task != map || u->attempt->attempt != attempt ||
             u->state != QUERN__TASK_STATE__SUCCEEDED)
        bad = "names another attempt";
    else if (u->n_partitions != qn_ifile_nparts(f))
        bad = "partition count differs from the output's";
    for (size_t p = 0; !bad && p < u->n_partitions; p++) {
        qn_range r = qn_ifile_range(f, (unsigned)p);
        const Quern__PartitionInfo *pi = u->partitions[p];
        if (pi->bytes != r.length || pi->raw_bytes != r.raw ||
            pi->records != r.records)
            bad = "partition sizes differ from the output's index";
    }
    if (bad) {
        snprintf(err, errcap, "%s: %s", path, bad);
        if (u)
            quern__task_update__free_unpacked(u, NULL);
        return NULL;
    }
    return u;
}

/* Is name exactly the name a map attempt's folder (suffix "") or its
 * update (".done") has? Its map and attempt into *map and *attempt. */
static int s_named(const char *name, const char *suffix, unsigned *map,
                   unsigned *attempt)
{
    char want[64];
    if (sscanf(name, "map-%5u-a%u.", map, attempt) != 2 || *attempt == 0)
        return 0;
    snprintf(want, sizeof want, "map-%05u-a%u%s", *map, *attempt, suffix);
    return strcmp(name, want) == 0;
}

/* Map attempt map/attempt's folder at path: its finished output kept and
 * offered (1), or everything deleted: a damaged output (counted so) or
 * an attempt that never finished (0). */
static int s_attempt(qn_worker *w, const char *job, const char *path,
                     unsigned map, unsigned attempt, qn_recovered *got)
{
    char err[600];
    qn_buf done = {0}, out = {0};
    qn_map_done_path(&done, w->work_dir, job, map, attempt);
    qn_map_output_path(&out, w->work_dir, job, map, attempt);
    int kept = 0;
    if (access(out.data, F_OK) == 0) {
        qn_ifile *f = qn_ifile_open(out.data, err, sizeof err);
        Quern__TaskUpdate *u =
            f ? s_read_done(done.data, job, map, attempt, f, err, sizeof err)
              : NULL;
        qn_ifile_destroy(&f);
        if (u) {
            qn_attempt_ref ref = {
                .kind = QUERN__TASK_KIND__MAP, .task = map, .attempt = attempt};
            snprintf(ref.job_id, sizeof ref.job_id, "%s", job);
            qn_masterlink_told(w, &ref, u);
            quern__task_update__free_unpacked(u, NULL);
            got->outputs++;
            kept = 1;
        } else {
            qn_warn("worker %s: deleting map output %s: %s", w->id, out.data,
                    err);
            got->damaged++;
        }
    } else {
        got->deleted++; /* an attempt that never ended */
    }
    if (!kept) {
        qn_rmtree(path);
        unlink(done.data);
    }
    qn_buf_release(&out);
    qn_buf_release(&done);
    return kept;
}

/* One entry of a job's folder: a map attempt's folder (its output kept
 * and offered, or deleted), its update (left for its folder), or anything
 * else, deleted. */
static void s_entry(qn_worker *w, const char *job, const char *dir,
                    const char *name, qn_recovered *got, int *kept)
{
    unsigned map, attempt;
    qn_buf path = {0};
    qn_buf_printf(&path, "%s/%s", dir, name);
    if (s_named(name, "", &map, &attempt)) {
        *kept += s_attempt(w, job, path.data, map, attempt, got);
    } else if (!s_named(name, ".done", &map, &attempt)) {
        qn_rmtree(path.data);
        got->deleted++;
    }
    qn_buf_release(&path);
}

/* The names in folder dir (not . and ..), read before any is deleted;
 * *n of them, NULL-free array the caller frees with s_names_free. */
static char **s_names(const char *dir, size_t *n)
{
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        QN_GROW(names, cap, *n + 1);
        names[(*n)++] = qn_strdup(e->d_name);
    }
    if (d)
        closedir(d);
    return names;
}

static void s_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Kept updates whose output is gone: deleted, and counted. */
static void s_orphan_updates(const char *dir, qn_recovered *got)
{
    size_t n;
    char **names = s_names(dir, &n);
    qn_buf p = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned map, attempt;
        if (!s_named(names[i], ".done", &map, &attempt))
            continue;
        p.len = 0;
        qn_buf_printf(&p, "%s/map-%05u-a%u/%s", dir, map, attempt,
                      QN_MAP_OUTPUT);
        if (access(p.data, F_OK) == 0)
            continue;
        p.len = 0;
        qn_buf_printf(&p, "%s/%s", dir, names[i]);
        qn_rmtree(p.data);
        got->deleted++;
    }
    qn_buf_release(&p);
    s_names_free(names, n);
}

/* One job's folder: its finished outputs kept, the rest deleted (and the
 * folder, when nothing is kept). */
static void s_job(qn_worker *w, const char *jobs, const char *job,
                  qn_recovered *got)
{
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/%s", jobs, job);
    struct stat st;
    if (!qn_id_ok(job) || lstat(dir.data, &st) < 0 || !S_ISDIR(st.st_mode)) {
        qn_rmtree(dir.data);
        got->deleted++;
        qn_buf_release(&dir);
        return;
    }
    int kept = 0;
    size_t n;
    char **names = s_names(dir.data, &n);
    for (size_t i = 0; i < n; i++)
        s_entry(w, job, dir.data, names[i], got, &kept);
    s_names_free(names, n);
    s_orphan_updates(dir.data, got);
    if (kept)
        got->jobs++;
    else
        qn_rmtree(dir.data);
    qn_buf_release(&dir);
}

qn_recovered qn_recovery_scan(qn_worker *w)
{
    qn_recovered got = {0};
    qn_buf jobs = {0};
    qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
    size_t n;
    char **names = s_names(jobs.data, &n);
    for (size_t i = 0; i < n; i++)
        s_job(w, jobs.data, names[i], &got);
    s_names_free(names, n);
    qn_buf_release(&jobs);
    return got;
}
