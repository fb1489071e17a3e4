/*
 * jobspec.c -- see jobspec.h.
 *
 * Refusals name the field as the user wrote it (the command line option
 * where there is one) and what it should be. Strings from the spec are
 * shown cut to a couple of hundred bytes, control characters and broken
 * UTF-8 made '?', so a refusal stays one line of UTF-8 (the reply must
 * be UTF-8) whatever a client sent. (A path with a newline in it made a
 * two-line refusal: found by fuzz_jobspec.)
 */
#include "jobspec.h"

#include "codec.h"
#include "decomp.h"
#include "elfcheck.h"
#include "sha256.h"
#include "shipped.h"
#include "util.h"

#include <elf.h>
#include <stdio.h>
#include <string.h>

#define SHOWN 200 /* bytes of a string from the spec shown in a refusal */

/* A string from the spec as a refusal shows it (see above), in buf. */
static const char *s_show(const char *s, char buf[SHOWN + 4])
{
    size_t n = strnlen(s, SHOWN + 1);
    size_t keep = n > SHOWN ? SHOWN : n;
    memcpy(buf, s, keep);
    buf[keep] = '\0';
    qn_utf8_sanitize(buf); /* a character cut in two included */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (n > SHOWN)
        strcat(buf, "...");
    return buf;
}

/* A string field: protobuf-c gives "" for an absent one, callers NULL. */
static const char *s_str(const char *s)
{
    return s ? s : "";
}

/* Is s free of control characters (a name shown in logs and pages)? */
static int s_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int s_inputs(const Quern__JobSpec *spec, char *err, size_t cap)
{
    char a[SHOWN + 4], b[SHOWN + 4];
    if (spec->n_inputs == 0) {
        snprintf(err, cap, "the job has no inputs (--input)");
        return -1;
    }
    if (spec->n_inputs > QN_JOBSPEC_INPUTS_MAX) {
        snprintf(err, cap,
                 "the job has %zu inputs, more than the %d a job "
                 "may have",
                 spec->n_inputs, QN_JOBSPEC_INPUTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < spec->n_inputs; i++) {
        const char *given = s_str(spec->inputs[i]->given);
        const char *path = s_str(spec->inputs[i]->path);
        if (!given[0]) {
            snprintf(err, cap,
                     "input %zu is empty: give a path or a dataset "
                     "name",
                     i + 1);
            return -1;
        }
        if (strlen(given) > QN_JOBSPEC_PATH_MAX ||
            strlen(path) > QN_JOBSPEC_PATH_MAX) {
            snprintf(err, cap, "input %s: longer than %d bytes",
                     s_show(given, a), QN_JOBSPEC_PATH_MAX);
            return -1;
        }
        if (!strchr(given, '/')) {
            if (!qn_id_ok(given)) {
                snprintf(err, cap,
                         "input %s: not a dataset name, nor a path (paths "
                         "contain a '/')",
                         s_show(given, a));
                return -1;
            }
            continue; /* a dataset: its path is not used */
        }
        if (!path[0]) {
            snprintf(err, cap, "input %s: no absolute path for it",
                     s_show(given, a));
            return -1;
        }
        if (path[0] != '/') {
            snprintf(err, cap, "input %s: its path %s is not absolute",
                     s_show(given, a), s_show(path, b));
            return -1;
        }
    }
    return 0;
}

static int s_output(const Quern__JobSpec *spec, char *err, size_t cap)
{
    const char *out = s_str(spec->output);
    char a[SHOWN + 4];
    if (!out[0]) {
        snprintf(err, cap, "the job has no output (--output)");
        return -1;
    }
    if (strlen(out) > QN_JOBSPEC_PATH_MAX) {
        snprintf(err, cap, "output %s: longer than %d bytes", s_show(out, a),
                 QN_JOBSPEC_PATH_MAX);
        return -1;
    }
    if (!strchr(out, '/')) {
        if (!qn_id_ok(out)) {
            snprintf(err, cap, "'%s' is not a dataset name", s_show(out, a));
            return -1;
        }
    } else if (out[0] != '/') {
        snprintf(err, cap,
                 "output %s: not an absolute path (nor a dataset name)",
                 s_show(out, a));
        return -1;
    }
    return 0;
}

static int s_names(const Quern__JobSpec *spec, char *err, size_t cap)
{
    const char *name = s_str(spec->name);
    if (!s_printable(name)) {
        snprintf(err, cap, "the job name has control characters in it");
        return -1;
    }
    if (strlen(name) > QN_JOBSPEC_NAME_MAX) {
        char a[SHOWN + 4];
        snprintf(err, cap, "job name %s: longer than %d bytes", s_show(name, a),
                 QN_JOBSPEC_NAME_MAX);
        return -1;
    }
    if (strlen(s_str(spec->plugin)) > QN_JOBSPEC_PATH_MAX) {
        snprintf(err, cap, "the plugin's path is longer than %d bytes",
                 QN_JOBSPEC_PATH_MAX);
        return -1;
    }
    return 0;
}

static int s_args(const Quern__JobSpec *spec, char *err, size_t cap)
{
    if (spec->n_args > QN_JOBSPEC_ARGS_MAX) {
        snprintf(err, cap, "the job has %zu --arg, more than %d", spec->n_args,
                 QN_JOBSPEC_ARGS_MAX);
        return -1;
    }
    size_t total = 0;
    char a[SHOWN + 4];
    for (size_t i = 0; i < spec->n_args; i++) {
        const char *n = s_str(spec->args[i]->name);
        const char *v = s_str(spec->args[i]->value);
        size_t nl = strlen(n), vl = strlen(v);
        if (nl == 0) {
            snprintf(err, cap, "--arg %zu has no name: give NAME=VALUE", i + 1);
            return -1;
        }
        if (nl > QN_JOBSPEC_ARG_NAME_MAX) {
            snprintf(err, cap, "--arg %s: a name longer than %d bytes",
                     s_show(n, a), QN_JOBSPEC_ARG_NAME_MAX);
            return -1;
        }
        if (vl > QN_JOBSPEC_ARG_VALUE_MAX) {
            snprintf(err, cap, "--arg %s: a value longer than %d bytes",
                     s_show(n, a), QN_JOBSPEC_ARG_VALUE_MAX);
            return -1;
        }
        total += nl + vl;
        if (total > QN_JOBSPEC_ARGS_BYTES) {
            snprintf(err, cap,
                     "the job's --arg names and values come to more than %d "
                     "bytes (every task carries them)",
                     QN_JOBSPEC_ARGS_BYTES);
            return -1;
        }
    }
    return 0;
}

static int s_options(const Quern__JobSpec *spec, char *err, size_t cap)
{
    if (spec->split_size < QN_JOBSPEC_SPLIT_MIN)
        snprintf(err, cap, "--split-size must be at least %d bytes, not %llu",
                 QN_JOBSPEC_SPLIT_MIN, (unsigned long long)spec->split_size);
    else if (spec->sort_mb < 1 || spec->sort_mb > QN_JOBSPEC_SORT_MB_MAX)
        snprintf(err, cap, "--sort-mb must be from 1 to %d, not %u",
                 QN_JOBSPEC_SORT_MB_MAX, spec->sort_mb);
    else if (spec->max_attempts < 1 ||
             spec->max_attempts > QN_JOBSPEC_ATTEMPTS_MAX)
        snprintf(err, cap, "--max-attempts must be from 1 to %d, not %u",
                 QN_JOBSPEC_ATTEMPTS_MAX, spec->max_attempts);
    else if (spec->compress_level > QN_JOBSPEC_LEVEL_MAX)
        snprintf(err, cap, "--compress-level must be from 0 to %d, not %u",
                 QN_JOBSPEC_LEVEL_MAX, spec->compress_level);
    else if (spec->codec >= QN_CODEC_COUNT)
        snprintf(err, cap,
                 "codec %u is not one this quern knows (zlib, lz4, zstd, "
                 "none)",
                 spec->codec);
    else if (spec->output_codec >= QN_DECOMP_COUNT)
        snprintf(err, cap,
                 "output codec %u is not one this quern knows (gzip, zstd, "
                 "bzip2, xz, lz4, none)",
                 spec->output_codec);
    else if (spec->output_replicas > QN_JOBSPEC_REPLICAS_MAX)
        snprintf(err, cap, "--output-replicas must be from 1 to %d, not %u",
                 QN_JOBSPEC_REPLICAS_MAX, spec->output_replicas);
    else if ((unsigned)spec->input_kind > QUERN__INPUT_KIND__FIXED)
        snprintf(err, cap, "unknown input kind %d (the plugin's input)",
                 (int)spec->input_kind);
    else if (spec->input_kind == QUERN__INPUT_KIND__FIXED &&
             spec->record_size == 0)
        snprintf(err, cap, "QUERN_FIXED input needs a record_size");
    else if (spec->input_kind == QUERN__INPUT_KIND__FIXED &&
             spec->record_size > QN_JOBSPEC_RECORD_MAX)
        snprintf(err, cap,
                 "QUERN_FIXED record_size %llu is over the limit of %d bytes",
                 (unsigned long long)spec->record_size, QN_JOBSPEC_RECORD_MAX);
    else
        return 0;
    return -1;
}

static int s_plugin(const Quern__JobSpec *spec, const void *plugin, size_t len,
                    char *err, size_t cap)
{
    char why[300], a[SHOWN + 4];
    const char *path = s_show(s_str(spec->plugin), a);
    if (!plugin || len == 0) {
        snprintf(err, cap,
                 "the job carries no plugin (the client sends the shared "
                 "object's bytes)");
        return -1;
    }
    qn_elfsym sym;
    int rc = qn_elfcheck_symbol(plugin, len, QN_JOBSPEC_ENTRY, &sym, why,
                                sizeof why);
    if (rc < 0)
        snprintf(err, cap, "plugin %s: %s", path, why);
    else if (rc == 0)
        snprintf(err, cap,
                 "plugin %s: not a Quern plugin: it does not define "
                 "quern_job_v1 (define the job with QUERN_JOB(...))",
                 path);
    else if (sym.type == STT_FUNC || sym.type == STT_GNU_IFUNC ||
             sym.type == STT_TLS)
        snprintf(err, cap,
                 "plugin %s: its quern_job_v1 is not a quern_job "
                 "(define the job with QUERN_JOB(...))",
                 path);
    else if (sym.size < QN_JOBSPEC_ENTRY_MIN)
        snprintf(err, cap,
                 "plugin %s: its quern_job_v1 is %llu bytes, too small "
                 "to be a quern_job (define the job with QUERN_JOB(...))",
                 path, (unsigned long long)sym.size);
    else
        return 0;
    return -1;
}

/* The files the job ships: plain names, each once, hashes, and with the
 * plugin within what a job may ship. */
static int s_files(const Quern__JobSpec *spec, size_t plugin_len, char *err,
                   size_t cap)
{
    char a[SHOWN + 4];
    if (spec->n_files > QN_JOBSPEC_FILES_MAX) {
        snprintf(err, cap, "the job ships %zu files (--file), more than %d",
                 spec->n_files, QN_JOBSPEC_FILES_MAX);
        return -1;
    }
    if (spec->n_files == 0)
        return 0; /* a plugin alone: as large as a message allows */
    uint64_t total = plugin_len;
    for (size_t i = 0; i < spec->n_files; i++) {
        const Quern__ShippedFile *f = spec->files[i];
        if (!qn_shipped_name_ok(f->name)) {
            snprintf(err, cap,
                     "--file %s: not a plain file name (a task opens it by "
                     "this name in its folder: no '/', not '.' or '..', not "
                     "starting with '.')",
                     s_show(f->name, a));
            return -1;
        }
        if (!qn_shipped_hash_ok(f->hash)) {
            snprintf(err, cap, "--file %s: its hash is not a SHA-256 in hex",
                     s_show(f->name, a));
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(spec->files[k]->name, f->name) == 0) {
                snprintf(err, cap,
                         "--file %s: two files of that name (a task's folder "
                         "holds one); rename one",
                         s_show(f->name, a));
                return -1;
            }
        total += f->size < QN_JOBSPEC_SHIP_BYTES ? f->size
                                                 : QN_JOBSPEC_SHIP_BYTES + 1;
    }
    if (total > QN_JOBSPEC_SHIP_BYTES) {
        snprintf(err, cap,
                 "the job's plugin and --file files come to more than the "
                 "%u MiB a job may ship",
                 QN_JOBSPEC_SHIP_BYTES >> 20);
        return -1;
    }
    return 0;
}

int qn_jobspec_check_files(const Quern__JobSpec *spec,
                           const ProtobufCBinaryData *data, size_t n, char *err,
                           size_t cap)
{
    if (n != spec->n_files) {
        snprintf(err, cap,
                 "the job names %zu shipped files (--file) but carries the "
                 "bytes of %zu",
                 spec->n_files, n);
        return -1;
    }
    char a[SHOWN + 4];
    for (size_t i = 0; i < n; i++) {
        const Quern__ShippedFile *f = spec->files[i];
        uint8_t d[QN_SHA256_SIZE];
        char hex[QN_SHA256_HEX];
        qn_sha256(data[i].data, data[i].len, d);
        qn_sha256_hex(d, hex);
        if (data[i].len != f->size || strcmp(hex, f->hash) != 0) {
            snprintf(err, cap,
                     "--file %s: its bytes are not the ones named (%zu bytes "
                     "with SHA-256 %s)",
                     s_show(f->name, a), data[i].len, hex);
            return -1;
        }
    }
    return 0;
}

int qn_jobspec_check(const Quern__JobSpec *spec, const void *plugin,
                     size_t plugin_len, char *err, size_t cap)
{
    if (spec->nreduce == 0 || spec->nreduce > QN_JOBSPEC_REDUCERS_MAX) {
        snprintf(err, cap, "-R must be from 1 to %d, not %u",
                 QN_JOBSPEC_REDUCERS_MAX, spec->nreduce);
        return -1;
    }
    if (s_inputs(spec, err, cap) < 0 || s_output(spec, err, cap) < 0 ||
        s_names(spec, err, cap) < 0 || s_args(spec, err, cap) < 0 ||
        s_options(spec, err, cap) < 0 ||
        s_plugin(spec, plugin, plugin_len, err, cap) < 0 ||
        s_files(spec, plugin_len, err, cap) < 0)
        return -1;
    return 0;
}
