/*
 * confine.c -- see confine.h.
 */
#include "confine.h"

#include "broker.h"
#include "layout.h"
#include "reducetask.h"
#include "sandbox.h"
#include "shipped.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The attempt's folder (its path into dir) and tmp/, the job's shipped
 * files placed in it (shipped.h), and the process in it, where the job's
 * code opens them by name. 0 or -1 (t->fail). */
static int s_enter_folder(quern_task *t, qn_buf *dir)
{
    const Quern__TaskSpec *sp = t->spec;
    if (sp->work_dir[0] != '/')
        return qn_task_failf(t, "its work dir '%s' is not an absolute path",
                             sp->work_dir);
    qn_attempt_dir(dir, sp->work_dir, sp->job_id,
                   sp->kind == QUERN__TASK_KIND__MAP, sp->task, sp->attempt);
    qn_buf tmp = {0};
    qn_buf_printf(&tmp, "%s/%s", dir->data, QN_ATTEMPT_TMP);
    char why[900] = "";
    int e = qn_mkdirs(tmp.data, 0755);
    /* Modes said outright, whatever the umask: the folder readable by the
     * task's user, tmp/ that user's alone. */
    if (e == 0 &&
        (chmod(dir->data, 0755) < 0 ||
         chmod(tmp.data, (sp->sandbox & QN_SB_TASK_USER) ? 0700 : 0755) < 0))
        e = -errno;
    if (e == 0 && (sp->sandbox & QN_SB_TASK_USER) &&
        chown(tmp.data, (uid_t)sp->task_uid, (gid_t)sp->task_gid) < 0)
        e = -errno;
    int fd = e < 0 ? -1 : open(dir->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e == 0 && fd < 0)
        e = -errno;
    if (e < 0)
        snprintf(why, sizeof why, "cannot make it: %s", strerror(-e));
    else if (qn_shipped_place(sp, sp->work_dir, fd, why, sizeof why) == 0 &&
             fchdir(fd) < 0)
        snprintf(why, sizeof why, "cannot enter it: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    if (why[0])
        qn_task_failf(t, "working folder %s: %s", dir->data, why);
    qn_buf_release(&tmp);
    return why[0] ? -1 : 0;
}

/* The plugin, open for loading inside the sandbox. 0 or -1. */
static int s_open_plugin(quern_task *t)
{
    t->plugin_fd = open(t->spec->plugin, O_RDONLY | O_CLOEXEC);
    if (t->plugin_fd < 0)
        return qn_task_failf(t, "cannot load plugin: %s: %s", t->spec->plugin,
                             strerror(errno));
    /* Loaded through /proc/self/fd, which opens it again with the task
     * user's rights: readable by all, whatever the umask was. */
    if ((t->spec->sandbox & QN_SB_TASK_USER) && fchmod(t->plugin_fd, 0644) < 0)
        return qn_task_failf(t, "cannot load plugin: %s: %s", t->spec->plugin,
                             strerror(errno));
    return 0;
}

static int s_enter(quern_task *t, const char *dir)
{
    const Quern__TaskSpec *sp = t->spec;
    char what[96];
    snprintf(what, sizeof what, "%s %u attempt %u",
             sp->kind == QUERN__TASK_KIND__MAP ? "map" : "reduce", sp->task,
             sp->attempt);
    int keep[] = {t->ctl, t->broker_fd, t->out_fd};
    qn_sandbox sb = {
        .layers = sp->sandbox,
        .uid = (uid_t)sp->task_uid,
        .gid = (gid_t)sp->task_gid,
        .workdir = dir,
        .plugin_fd = t->plugin_fd,
        .keep_fds = keep,
        .nkeep = sizeof keep / sizeof *keep,
        .mem_bytes = sp->task_mem_bytes,
        .cpu_s = sp->task_timeout_ms ? (sp->task_timeout_ms + 999) / 1000 : 0,
        .nproc = QN_TASK_NPROC,
        .parent = getppid(),
        .job_id = sp->job_id,
        .task = what,
    };
    char err[512];
    if (qn_sandbox_enter(&sb, err, sizeof err) < 0)
        return qn_task_failf(t, "%s", err);
    return 0;
}

int qn_task_confine(quern_task *t, pid_t *broker)
{
    *broker = 0;
    if (t->spec->kind == QUERN__TASK_KIND__COPY)
        return 0;
    qn_buf dir = {0};
    int rc = s_enter_folder(t, &dir);
    if (rc == 0 && t->spec->sandbox) {
        /* Past the folder's own path, which the task user may not be
         * able to walk to, the task works relative to it. */
        if (t->spec->sandbox & QN_SB_TASK_USER)
            t->scratch = QN_ATTEMPT_TMP;
        *broker = qn_broker_start(t);
        rc = *broker < 0 || s_open_plugin(t) < 0 ||
                     (t->spec->kind == QUERN__TASK_KIND__REDUCE &&
                      qn_reduce_open_output(t) < 0) ||
                     s_enter(t, dir.data) < 0
                 ? -1
                 : 0;
        if (*broker < 0)
            *broker = 0;
        if (rc < 0 && t->out_fd >= 0 && t->drop_output) {
            close(t->out_fd); /* not entered, or only partly: no output */
            t->out_fd = -1;
            t->drop_output(t);
        }
    }
    qn_buf_release(&dir);
    return rc;
}
