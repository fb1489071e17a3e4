/*
 * jobbuild.c -- see jobbuild.h.
 */
#include "jobbuild.h"

#include "client.h"
#include "jobplugin.h"
#include "jobspec.h"
#include "sha256.h"
#include "shipped.h"
#include "usage.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path as given -> absolute path (not resolving links); caller frees. */
static char *s_absolute(const char *p)
{
    if (p[0] == '/')
        return qn_strdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return qn_strdup(p);
    qn_buf b = {0};
    const char *q = p;
    while (q[0] == '.' && q[1] == '/')
        q += 2;
    qn_buf_printf(&b, "%s/%s", cwd, q);
    size_t n = b.len;
    while (n > 1 && b.data[n - 1] == '/')
        b.data[--n] = '\0';
    return b.data;
}

/* Keep s, to free with the job; returns s. */
static char *s_own(qn_jobbuild *j, char *s)
{
    QN_GROW(j->owned, j->cap_owned, j->nowned + 1);
    j->owned[j->nowned++] = s;
    return s;
}

void qn_jobbuild_release(qn_jobbuild *j)
{
    for (size_t i = 0; i < j->nowned; i++)
        free(j->owned[i]);
    free(j->owned);
    free(j->inputs);
    free(j->ip);
    free(j->args);
    free(j->ap);
    for (size_t i = 0; i < j->spec.n_files; i++)
        qn_buf_release(&j->file_bytes[i]);
    free(j->file_bytes);
    free(j->file_data);
    free(j->files);
    free(j->fp);
    qn_buf_release(&j->plugin);
    if (j->spec.name != protobuf_c_empty_string)
        free(j->spec.name);
    memset(j, 0, sizeof *j);
    quern__job_spec__init(&j->spec);
}

/* Read a whole (small) file into b. 0 or -errno. */
static int s_slurp(const char *path, qn_buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? -errno : 0;
            close(fd);
            return e;
        }
        if (b->len + (size_t)n > QN_MSG_MAX - 65536) {
            close(fd);
            return -EFBIG;
        }
        qn_buf_add(b, chunk, (size_t)n);
    }
}

/* The first path or argument in o that is not UTF-8, or NULL. */
static const char *s_not_utf8(const qn_cli_opts *o)
{
    if (!qn_utf8_valid(o->job))
        return o->job;
    if (!qn_utf8_valid(o->output))
        return o->output;
    for (size_t i = 0; i < o->ninputs; i++)
        if (!qn_utf8_valid(o->inputs[i]))
            return o->inputs[i];
    for (size_t i = 0; i < o->nargs; i++)
        if (!qn_utf8_valid(o->args[i]))
            return o->args[i];
    for (size_t i = 0; i < o->nfiles; i++)
        if (!qn_utf8_valid(o->files[i]))
            return o->files[i];
    return NULL;
}

/* Is in a dataset's name or a path that is there? 0, or a refusal. For
 * quern run (local), whose cluster holds no dataset, a bare name is the
 * file or folder of that name here. */
static int s_check_input(const char *in, int local, char *err, size_t cap)
{
    struct stat st;
    if (!strchr(in, '/') && local) {
        if (stat(in, &st) == 0)
            return 0;
        return qn_usage_error(err, cap,
                              "--input %s: no file or folder ./%s here (quern "
                              "run reads files; a dataset is read by a job "
                              "submitted to its cluster, quern submit)",
                              in, in);
    }
    if (!strchr(in, '/')) {
        if (!qn_id_ok(in))
            return qn_usage_error(err, cap,
                                  "--input %s: not a dataset name, nor a path "
                                  "(paths contain a '/': ./%s)",
                                  in, in);
        return 0; /* a dataset: the master knows it */
    }
    if (stat(in, &st) < 0)
        return qn_usage_error(err, cap, "--input %s: %s", in, strerror(errno));
    return 0;
}

/*
 * What the options must say of a job before its plugin is looked at: a
 * plugin, inputs and an output, in UTF-8, each a path or a dataset name.
 * 0, or a refusal.
 */
static int s_check_options(const qn_cli_opts *o, char *err, size_t cap)
{
    if (!o->job)
        return qn_usage_error(err, cap,
                              "--job is required: the plugin (.so) to run");
    if (o->ninputs == 0)
        return qn_usage_error(
            err, cap, "--input is required: one or more files or folders");
    if (!o->output)
        return qn_usage_error(
            err, cap, "--output is required: the folder for part files");
    /* Paths and arguments travel in messages, which carry UTF-8 only. */
    const char *bad = s_not_utf8(o);
    if (bad) {
        char shown[256];
        snprintf(shown, sizeof shown, "%s", bad);
        qn_utf8_sanitize(shown);
        return qn_usage_error(err, cap,
                              "'%s' is not valid UTF-8; Quern takes UTF-8 "
                              "paths and arguments",
                              shown);
    }
    if (!strchr(o->job, '/'))
        return qn_usage_error(err, cap,
                              "--job %s: give the plugin as a path, e.g. ./%s",
                              o->job, o->job);
    for (size_t i = 0; i < o->ninputs; i++) {
        int rc = s_check_input(o->inputs[i], o->local, err, cap);
        if (rc != 0)
            return rc;
    }
    if (!strchr(o->output, '/') && !o->local && !qn_id_ok(o->output))
        return qn_usage_error(err, cap,
                              "--output %s: not a dataset name, nor a path "
                              "(paths contain a '/': ./%s)",
                              o->output, o->output);
    return 0;
}

/* The job's inputs: each as given, and as a path every worker can open
 * (absolute), or a dataset's name. */
static void s_fill_inputs(qn_jobbuild *j, const qn_cli_opts *o)
{
    j->inputs = qn_calloc(o->ninputs, sizeof *j->inputs);
    j->ip = qn_calloc(o->ninputs, sizeof *j->ip);
    for (size_t i = 0; i < o->ninputs; i++) {
        quern__input_path__init(&j->inputs[i]);
        j->inputs[i].given = (char *)o->inputs[i];
        if (!strchr(o->inputs[i], '/') && o->local) {
            /* quern run's bare name: the path it stands for, as typed
             * (the master reads a name without '/' as a dataset's). */
            qn_buf g = {0};
            qn_buf_printf(&g, "./%s", o->inputs[i]);
            j->inputs[i].given = s_own(j, g.data);
        }
        j->inputs[i].path = strchr(o->inputs[i], '/') || o->local
                                ? s_own(j, s_absolute(o->inputs[i]))
                                : (char *)o->inputs[i];
        j->ip[i] = &j->inputs[i];
    }
    j->spec.inputs = j->ip;
    j->spec.n_inputs = o->ninputs;
}

/* The job's --arg pairs, cut at their first '='. */
static void s_fill_args(qn_jobbuild *j, const qn_cli_opts *o)
{
    j->args = qn_calloc(o->nargs + 1, sizeof *j->args);
    j->ap = qn_calloc(o->nargs + 1, sizeof *j->ap);
    for (size_t i = 0; i < o->nargs; i++) {
        char *copy = s_own(j, qn_strdup(o->args[i]));
        char *eq = strchr(copy, '=');
        assert(eq); /* the parser took NAME=VALUE only */
        *eq = '\0';
        quern__arg__init(&j->args[i]);
        j->args[i].name = copy;
        j->args[i].value = eq + 1;
        j->ap[i] = &j->args[i];
    }
    j->spec.args = j->ap;
    j->spec.n_args = o->nargs;
}

/* ---- --file ------------------------------------------------------------- */

/* Read the open file fd (path) whole into b: at most max bytes. 0, or
 * -errno (-EFBIG past max). */
static int s_read_max(int fd, qn_buf *b, uint64_t max)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : 0;
        if (b->len + (uint64_t)n > max)
            return -EFBIG;
        qn_buf_add(b, chunk, (size_t)n);
    }
}

/* Refuse --file path for being larger than what is left to ship. */
static int s_too_big(const char *path, uint64_t size, char *err, size_t cap)
{
    char sz[32];
    return qn_usage_error(
        err, cap,
        "--file %s: %s is too large: a job's plugin and files may come to "
        "%u MiB in all (they travel to the master in one message, which "
        "keeps them in memory while the job runs)",
        path, qn_fmt_bytes(size, sz, sizeof sz), QN_JOBSPEC_SHIP_BYTES >> 20);
}

/*
 * Read --file o->files[i] whole into j (its bytes, name and hash), taking
 * its size from *left, what the job may still ship. 0, or a refusal
 * naming the file.
 */
static int s_read_file(qn_jobbuild *j, const qn_cli_opts *o, size_t i,
                       uint64_t *left, char *err, size_t cap)
{
    const char *path = o->files[i];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!name[0])
        return qn_usage_error(err, cap,
                              "--file %s: names a folder; ship its files one "
                              "by one (--file %sNAME)",
                              path, path);
    if (!qn_shipped_name_ok(name))
        return qn_usage_error(err, cap,
                              "--file %s: '%s' is not a plain file name for "
                              "a task to open by (not '.' or '..', not "
                              "starting with '.', not 'tmp')",
                              path, name);
    for (size_t k = 0; k < i; k++)
        if (strcmp(j->files[k].name, name) == 0)
            return qn_usage_error(err, cap,
                                  "--file %s and --file %s: both would be %s "
                                  "in a task's folder; rename one",
                                  o->files[k], path, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return qn_usage_error(err, cap, "--file %s: cannot read it: %s", path,
                              strerror(e));
    }
    int e = S_ISDIR(st.st_mode)    ? -EISDIR
            : !S_ISREG(st.st_mode) ? -EINVAL
            : (uint64_t)st.st_size > *left
                ? -EFBIG
                : s_read_max(fd, &j->file_bytes[i], *left);
    close(fd);
    if (e == -EISDIR)
        return qn_usage_error(err, cap,
                              "--file %s: a folder; ship its files one by "
                              "one (--file %s/NAME)",
                              path, path);
    if (e == -EINVAL)
        return qn_usage_error(err, cap, "--file %s: not a regular file", path);
    if (e == -EFBIG)
        return s_too_big(path, (uint64_t)st.st_size, err, cap);
    if (e < 0)
        return qn_usage_error(err, cap, "--file %s: cannot read it: %s", path,
                              strerror(-e));
    const qn_buf *b = &j->file_bytes[i];
    uint8_t d[QN_SHA256_SIZE];
    char *hex = s_own(j, qn_malloc(QN_SHA256_HEX));
    qn_sha256(b->data, b->len, d);
    qn_sha256_hex(d, hex);
    j->files[i].name = (char *)name;
    j->files[i].hash = hex;
    j->files[i].size = b->len;
    j->file_data[i] =
        (ProtobufCBinaryData){.len = b->len, .data = (uint8_t *)b->data};
    *left -= b->len;
    return 0;
}

/* The job's --file files, read and hashed into j and its spec. 0, or a
 * refusal naming the file. */
static int s_read_files(qn_jobbuild *j, const qn_cli_opts *o, char *err,
                        size_t cap)
{
    size_t n = o->nfiles;
    j->files = qn_calloc(n + 1, sizeof *j->files);
    j->fp = qn_calloc(n + 1, sizeof *j->fp);
    j->file_bytes = qn_calloc(n + 1, sizeof *j->file_bytes);
    j->file_data = qn_calloc(n + 1, sizeof *j->file_data);
    j->spec.files = j->fp;
    j->spec.n_files = n;
    for (size_t i = 0; i < n; i++) {
        quern__shipped_file__init(&j->files[i]);
        j->fp[i] = &j->files[i];
    }
    uint64_t left = j->plugin.len < QN_JOBSPEC_SHIP_BYTES
                        ? QN_JOBSPEC_SHIP_BYTES - j->plugin.len
                        : 0;
    for (size_t i = 0; i < n; i++) {
        int rc = s_read_file(j, o, i, &left, err, cap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Fill the rest of j's spec from o: paths, inputs, arguments, options. */
static void s_fill(qn_jobbuild *j, const qn_cli_opts *o)
{
    Quern__JobSpec *s = &j->spec;
    s->plugin = s_own(j, s_absolute(o->job));
    if (strchr(o->output, '/') || o->local) {
        s->output = s_own(j, s_absolute(o->output));
    } else {
        s->output = s_own(j, qn_strdup(o->output));
        s->output_dataset = 1;
        s->output_replicas = o->output_replicas;
    }
    s_fill_inputs(j, o);
    s_fill_args(j, o);
    s->nreduce = o->nreduce;
    s->split_size = o->split_size;
    s->sort_mb = o->sort_mb;
    s->max_attempts = o->max_attempts;
    s->speculation = o->speculation;
    s->skip_bad_records = o->skip_bad_records;
    s->keep_cr = o->keep_cr;
    s->output_codec = (uint32_t)o->output_codec;
    s->compress_level = o->compress_level;
    s->codec = (uint32_t)o->codec;
}

int qn_jobbuild_init(qn_jobbuild *j, const qn_cli_opts *o, char *err,
                     size_t cap)
{
    memset(j, 0, sizeof *j);
    quern__job_spec__init(&j->spec);
    int rc = s_check_options(o, err, cap);
    if (rc != 0)
        return rc;
    if (qn_jobplugin_check(o->job, &j->spec, err, cap) != 0)
        return QN_EXIT_USAGE;
    int e = s_slurp(o->job, &j->plugin);
    if (e < 0) {
        qn_jobbuild_release(j);
        return qn_usage_error(err, cap, "--job %s: cannot read it: %s", o->job,
                              e == -EFBIG
                                  ? "larger than a message may be (15 MiB)"
                                  : strerror(-e));
    }
    s_fill(j, o);
    rc = s_read_files(j, o, err, cap);
    if (rc != 0) {
        qn_jobbuild_release(j);
        return rc;
    }
    /* What the master would refuse, refused here (jobspec.h). */
    char why[1024];
    if (qn_jobspec_check(&j->spec, j->plugin.data, j->plugin.len, why,
                         sizeof why) < 0) {
        qn_jobbuild_release(j);
        return qn_usage_error(err, cap, "%s", why);
    }
    return 0;
}
