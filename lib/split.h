/*
 * split.h -- cutting a job's input into map splits.
 *
 * Input paths are files or folders of files (a folder's entries sorted by
 * name, hidden and '_' files skipped). A file larger than the split size is
 * cut into byte ranges of about that size; smaller files are grouped into
 * one split up to it. A compressed file (known by its first bytes,
 * decomp.h) is never cut: it is one piece, read whole and decompressed. Cuts
 * need not fall on record boundaries: a map reads the records that *start*
 * inside its range (see worker/maptask.c), so every record is read exactly
 * once.
 */
#ifndef QN_SPLIT_H
#define QN_SPLIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct qn_piece {
    char *path;      /* absolute path */
    char *name;      /* the shard name maps see: the path as given */
    uint64_t offset; /* range start */
    uint64_t length; /* range length */
    uint64_t file_size;
    char *dataset;  /* a dataset shard (path is then ""): its dataset, */
    uint32_t shard; /* index */
    uint32_t crc;   /* and CRC-32 */
    int codec;      /* decomp.h: the file is compressed (the piece is
                       then the whole file) */
} qn_piece;

typedef struct qn_split {
    qn_piece *pieces;
    size_t n, cap;
    uint64_t bytes; /* sum of the pieces' lengths */
} qn_split;

typedef struct qn_splits {
    qn_split *splits;
    size_t n, cap;
    uint64_t bytes; /* total input bytes */
    size_t files;   /* input files found */
} qn_splits;

/* How records sit in files, which decides where files may be cut. */
typedef struct qn_split_opts {
    uint64_t split_size; /* target bytes per split */
    int whole;           /* QUERN_WHOLE: never cut a file */
    uint64_t align;      /* QUERN_FIXED: cut at multiples of this (0: any) */
    size_t max_splits;   /* more is an error, found before they are made
                            (0: no limit) */
} qn_split_opts;

/*
 * Split n inputs; given[i] is what the user wrote, paths[i] its absolute
 * form. Returns 0 and fills out (release it with qn_splits_release), or -1
 * with a message in err naming the input that could not be read.
 */
int qn_split_inputs(const char *const *given, const char *const *paths,
                    size_t n, const qn_split_opts *o, qn_splits *out, char *err,
                    size_t errcap);

/* A new, empty split at the end of s; the pointer is good until the next
 * one is added. */
qn_split *qn_splits_add(qn_splits *s);

/* Free what qn_split_inputs allocated. */
void qn_splits_release(qn_splits *s);

#endif
