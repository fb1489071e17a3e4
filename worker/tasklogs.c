/*
 * tasklogs.c -- see tasklogs.h.
 */
#include "tasklogs.h"

#include "masterlink.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_JOBS_KEPT 64       /* jobs whose attempts' stderr is kept */
#define LOG_SEND_MAX (1 << 20) /* bytes of an attempt's stderr sent at most */

void qn_tasklogs_prune(qn_worker *w)
{
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/logs", w->work_dir);
    DIR *d = opendir(dir.data);
    if (!d) {
        qn_buf_release(&dir);
        return;
    }
    struct {
        char name[NAME_MAX + 1];
        struct timespec mtime;
    } *jobs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        /* A job with attempts here is not done writing its logs. */
        int live = 0;
        for (size_t i = 0; i < w->att.n && !live; i++)
            live = strcmp(w->att.v[i].ref.job_id, e->d_name) == 0;
        if (live)
            continue;
        QN_GROW(jobs, cap, n + 1);
        snprintf(jobs[n].name, sizeof jobs[n].name, "%s", e->d_name);
        jobs[n++].mtime = st.st_mtim;
    }
    closedir(d);
    /* Drop the oldest until LOG_JOBS_KEPT are left. */
    while (n > LOG_JOBS_KEPT) {
        size_t old = 0;
        for (size_t i = 1; i < n; i++)
            if (jobs[i].mtime.tv_sec < jobs[old].mtime.tv_sec ||
                (jobs[i].mtime.tv_sec == jobs[old].mtime.tv_sec &&
                 jobs[i].mtime.tv_nsec < jobs[old].mtime.tv_nsec))
                old = i;
        qn_buf p = {0};
        qn_buf_printf(&p, "%s/%s", dir.data, jobs[old].name);
        qn_rmtree(p.data);
        qn_buf_release(&p);
        jobs[old] = jobs[--n];
    }
    free(jobs);
    qn_buf_release(&dir);
}

void qn_tasklogs_on_request(qn_worker *w, const Quern__LogsRequest *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__LogsReply r = QUERN__LOGS_REPLY__INIT;
    r.request = rq->request;
    r.attempt = rq->attempt;
    r.worker_id = w->id;
    char err[600] = "";
    qn_buf path = {0};
    qn_buf_printf(&path, "%s/logs/%s/%c-%05u-a%u.stderr", w->work_dir,
                  rq->job_id, rq->kind == QUERN__TASK_KIND__REDUCE ? 'r' : 'm',
                  rq->task, rq->attempt);
    uint8_t *data = NULL;
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, sizeof err,
                 "worker %s keeps no stderr for that attempt (%s: %s); it "
                 "keeps the logs of its last %d jobs",
                 w->id, path.data, strerror(errno), LOG_JOBS_KEPT);
    } else {
        size_t want = rq->max_bytes ? rq->max_bytes : LOG_SEND_MAX;
        if (want > LOG_SEND_MAX)
            want = LOG_SEND_MAX;
        uint64_t size = (uint64_t)st.st_size;
        size_t len = size < want ? (size_t)size : want;
        data = qn_malloc(len + 1);
        ssize_t got = pread(fd, data, len, (off_t)(size - len));
        if (got < 0) {
            snprintf(err, sizeof err, "cannot read %s: %s", path.data,
                     strerror(errno));
        } else {
            r.data.data = data;
            r.data.len = (size_t)got;
            r.total_bytes = size;
        }
    }
    if (fd >= 0)
        close(fd);
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REPLY;
    env.logs_reply = &r;
    qn_masterlink_send(w, &env);
    free(data);
    qn_buf_release(&path);
}
