/*
 * teravalidate.c -- check a TeraSort output: 100-byte newline-terminated
 * records, in order within and across the part files, and (with --input)
 * the same records as the input, counted and checksummed without sorting.
 *
 *   teravalidate [--input PATH]... OUTDIR|FILE...
 *
 * A folder stands for its part-* files in name order. Prints one line;
 * exits 0 when valid, 1 naming the first problem, 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define RECORD 100

typedef struct {
    unsigned long long records;
    uint64_t sum; /* of each record's CRC-32: the same in any order */
} s_tally;

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files PATH stands for (a folder: its files starting with prefix). */
static char **s_expand(const char *path, const char *prefix, size_t *n)
{
    struct stat st;
    char **out = NULL;
    *n = 0;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "teravalidate: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        out = malloc(sizeof *out);
        out[0] = strdup(path);
        *n = 1;
        return out;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    size_t cap = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_' ||
            strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            out = realloc(out, cap * sizeof *out);
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        out[*n] = malloc(len);
        snprintf(out[*n], len, "%s/%s", path, e->d_name);
        (*n)++;
    }
    if (d)
        closedir(d);
    qsort(out, *n, sizeof *out, s_cmp_str);
    return out;
}

/*
 * Read one file's records into the tally; with prev (the previous record,
 * *have set once there is one), check the order. 0, or 1 after printing
 * what is wrong.
 */
static int s_read(const char *path, s_tally *t, unsigned char *prev, int *have)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL: %s: %s\n", path, strerror(errno));
        return 1;
    }
    unsigned char rec[RECORD];
    unsigned long long k = 0;
    size_t got;
    while ((got = fread(rec, 1, RECORD, f)) == RECORD) {
        if (rec[RECORD - 1] != '\n') {
            printf("FAIL: %s: record %llu (byte %llu) does not end in a "
                   "newline\n",
                   path, k, k * RECORD);
            fclose(f);
            return 1;
        }
        if (prev) {
            if (*have && memcmp(prev, rec, RECORD) > 0) {
                printf("FAIL: %s: record %llu (byte %llu) sorts before the "
                       "one ahead of it\n",
                       path, k, k * RECORD);
                fclose(f);
                return 1;
            }
            memcpy(prev, rec, RECORD);
            *have = 1;
        }
        t->records++;
        t->sum += crc32(0L, rec, RECORD);
        k++;
    }
    fclose(f);
    if (got != 0) {
        printf("FAIL: %s: %zu bytes after the last whole record\n", path, got);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    const char **outputs = calloc((size_t)argc, sizeof *outputs);
    size_t nin = 0, nout = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            inputs[nin++] = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: teravalidate [--input PATH]... OUTDIR|FILE...\n");
            return 2;
        } else
            outputs[nout++] = argv[i];
    }
    if (!nout) {
        fprintf(stderr,
                "usage: teravalidate [--input PATH]... OUTDIR|FILE...\n");
        return 2;
    }
    s_tally out = {0}, in = {0};
    unsigned char prev[RECORD];
    int have = 0, bad = 0;
    for (size_t i = 0; i < nout && !bad; i++) {
        size_t n;
        char **files = s_expand(outputs[i], "part-", &n);
        for (size_t k = 0; k < n; k++) {
            if (!bad)
                bad = s_read(files[k], &out, prev, &have);
            free(files[k]);
        }
        free(files);
    }
    for (size_t i = 0; i < nin && !bad; i++) {
        size_t n;
        char **files = s_expand(inputs[i], "", &n);
        for (size_t k = 0; k < n; k++) {
            if (!bad)
                bad = s_read(files[k], &in, NULL, NULL);
            free(files[k]);
        }
        free(files);
    }
    if (!bad && nin && (in.records != out.records || in.sum != out.sum)) {
        printf("FAIL: the output holds %llu records (checksum %016llx), the "
               "input %llu (checksum %016llx)\n",
               out.records, (unsigned long long)out.sum, in.records,
               (unsigned long long)in.sum);
        bad = 1;
    }
    if (!bad)
        printf("ok: %llu records in order (checksum %016llx)%s\n", out.records,
               (unsigned long long)out.sum,
               nin ? ", the same records as the input" : "");
    free(inputs);
    free(outputs);
    return bad;
}
