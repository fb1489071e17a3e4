/*
 * jobplugin.c -- see jobplugin.h.
 */
#include "jobplugin.h"

#include "client.h"
#include "elfcheck.h"
#include "jobspec.h"
#include "usage.h"
#include "util.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/*
 * Is path an ELF shared object this machine can load? Read from its
 * header before it is loaded, so a wrong file gets a clear refusal rather
 * than the loader's message (or its constructors run). 0 or an exit
 * status (said in err).
 */
static int s_check_elf(const char *path, char *err, size_t cap)
{
    unsigned char h[QN_ELFCHECK_HEADER_MIN] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return qn_usage_error(err, cap, "--job %s: %s", path, strerror(errno));
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    char why[300];
    if (qn_elfcheck_header(h, n, why, sizeof why) != 0)
        return qn_usage_error(err, cap, "--job %s: %s", path, why);
    return 0;
}

/*
 * Copy the plugin's quern_job_v1 (loaded as dl) into *job, only as far as
 * the plugin defines it (the symbol's size says), as the task runner does:
 * a plugin built against an older quern.h has a shorter one, a wrong one
 * may be an int. What it lacks reads as zero. 0 or an exit status
 * (said in err).
 */
static int s_read_entry(const char *path, void *dl, quern_job *job, char *err,
                        size_t cap)
{
    memset(job, 0, sizeof *job);
    void *addr = dlsym(dl, QN_JOBSPEC_ENTRY);
    const ElfW(Sym) *sym = NULL;
    Dl_info info;
    if (!addr)
        return qn_usage_error(
            err, cap,
            "--job %s: not a Quern plugin: it does not define "
            "quern_job_v1 (define the job with QUERN_JOB(...))",
            path);
    if (dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || !sym)
        return qn_usage_error(
            err, cap, "--job %s: cannot tell the size of its quern_job_v1",
            path);
    if (ELF64_ST_TYPE(sym->st_info) == STT_FUNC ||
        ELF64_ST_TYPE(sym->st_info) == STT_GNU_IFUNC)
        return qn_usage_error(err, cap,
                              "--job %s: its quern_job_v1 is a function, not a "
                              "quern_job (define the job with QUERN_JOB(...))",
                              path);
    if (sym->st_size < QN_JOBSPEC_ENTRY_MIN)
        return qn_usage_error(
            err, cap,
            "--job %s: its quern_job_v1 is %llu bytes, too small "
            "to be a quern_job (define the job with "
            "QUERN_JOB(...))",
            path, (unsigned long long)sym->st_size);
    memcpy(job, addr, sym->st_size < sizeof *job ? sym->st_size : sizeof *job);
    return 0;
}

int qn_jobplugin_check_entry(const char *path, const quern_job *job, char *err,
                             size_t cap)
{
    if (job->abi != QUERN_ABI)
        return qn_usage_error(
            err, cap,
            "--job %s: built for plugin ABI %u, but this quern "
            "runs ABI %u; rebuild it against this quern.h",
            path, job->abi, QUERN_ABI);
    if (!job->map || !job->reduce)
        return qn_usage_error(err, cap, "--job %s: the job has no %s function",
                              path, job->map ? "reduce" : "map");
    if ((unsigned)job->input > QUERN_FIXED)
        return qn_usage_error(err, cap, "--job %s: unknown input kind %d", path,
                              (int)job->input);
    if (job->input == QUERN_FIXED && job->record_size == 0)
        return qn_usage_error(
            err, cap, "--job %s: QUERN_FIXED input needs a record_size", path);
    if (job->input == QUERN_FIXED && job->record_size > QN_JOBSPEC_RECORD_MAX)
        return qn_usage_error(
            err, cap,
            "--job %s: QUERN_FIXED record_size %zu is over the "
            "limit of %d bytes",
            path, job->record_size, QN_JOBSPEC_RECORD_MAX);
    return 0;
}

char *qn_jobplugin_name(const char *name, const char *path)
{
    if (!name || !*name) {
        name = strrchr(path, '/');
        name = name ? name + 1 : path;
    }
    qn_buf n = {0};
    /* Keep the name printable for logs and the wire. */
    for (const char *p = name; *p && n.len < QN_JOBSPEC_NAME_MAX; p++) {
        char ch = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        qn_buf_add(&n, &ch, 1);
    }
    return n.data;
}

int qn_jobplugin_check(const char *path, Quern__JobSpec *spec, char *err,
                       size_t cap)
{
    if (s_check_elf(path, err, cap) != 0)
        return QN_EXIT_USAGE;
    void *dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (!dl)
        return qn_usage_error(err, cap,
                              "--job %s: cannot load it as a shared object: %s",
                              path, dlerror());
    quern_job copy;
    const quern_job *job = &copy;
    int rc = s_read_entry(path, dl, &copy, err, cap);
    if (rc == 0)
        rc = qn_jobplugin_check_entry(path, job, err, cap);
    if (rc == 0) {
        spec->name = qn_jobplugin_name(job->name, path);
        spec->input_kind = (Quern__InputKind)job->input;
        spec->record_size = job->record_size;
    }
    dlclose(dl);
    return rc;
}
