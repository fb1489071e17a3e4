/*
 * records.h -- a map's input records: the records of one piece (a byte
 * range) of one file, as lines, fixed-size records or the whole file.
 *
 * A piece holds the records that *start* inside its range. A line starts
 * at offset 0 or just after a newline: a piece starting at s > 0 skips to
 * the first line starting at or after s, and reads on past its end to
 * finish the last line it started, so every line is read by exactly one
 * piece wherever the cuts fall. A fixed-size record starts at a multiple
 * of the record size. A whole file is one record, read by the piece that
 * holds byte 0.
 *
 * A compressed file (decomp.h) is one piece, offset 0 and its whole
 * size, and its records are those of its decompressed bytes, their
 * offsets counted in those bytes.
 *
 * A line's record is its bytes before the newline, less a carriage return
 * just before it (a file with Windows line ends reads as with Unix ones)
 * unless keep_cr; a carriage return anywhere else is part of the record.
 *
 * The reader treats every byte as hostile: a line or record over the
 * limit, a partial fixed-size record, a file that is not the size it was
 * split at (it shrank or grew), and bytes whose CRC is not the expected one
 * are errors naming the file and the byte offset, never unbounded memory
 * or a silently wrong answer. It knows nothing of tasks: records go to a
 * callback.
 */
#ifndef QN_RECORDS_H
#define QN_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#define QN_RECORDS_MAX (64 * 1024 * 1024) /* longest line or fixed record */
#define QN_RECORDS_CHUNK (1024 * 1024)    /* bytes per read() by default */
#define QN_RECORDS_WHOLE_DECOMP_MAX                                            \
    (1ull << 30) /* a compressed file read                                     \
                    whole, decompressed */

/* How a file is cut into records. */
typedef enum {
    QN_RECORDS_LINES = 0, /* lines, without their newline */
    QN_RECORDS_FIXED,     /* record_size bytes each */
    QN_RECORDS_WHOLE,     /* the whole file, one record */
} qn_records_kind;

/* One piece of one file to read. */
typedef struct qn_records_in {
    int fd;               /* open for reading (borrowed; read with pread) */
    const char *name;     /* the file's name in messages */
    qn_records_kind kind; /* lines, fixed or whole */
    uint64_t offset;      /* the piece: records starting in */
    uint64_t length;      /* [offset, offset + length) */
    uint64_t file_size;   /* the file's size when it was split */
    uint64_t record_size; /* QN_RECORDS_FIXED: bytes per record */
    uint64_t max_record;  /* longest line or fixed record (0: */
                          /* QN_RECORDS_MAX); a whole file: any size */
    size_t chunk;         /* bytes per read (0: QN_RECORDS_CHUNK) */
    int check_crc;        /* the piece is the whole file (offset 0, length */
    uint32_t crc;         /* file_size) and its bytes must have this CRC-32 */
    int codec;            /* qn_decomp_kind: the file is compressed (the */
                          /* piece is then the whole file) */
    int keep_cr;          /* lines keep a \r before their \n */
} qn_records_in;

/*
 * Called with each record: its byte offset in the file and its bytes
 * (valid only during the call). Returns 0 to go on, or < 0 to stop (the
 * callback's own failure, which it has already reported).
 */
typedef int (*qn_record_fn)(void *ctx, uint64_t offset, const void *rec,
                            size_t len);

/*
 * Read the records of piece in, in file order, calling fn(ctx, ...) with
 * each. With check_crc, the CRC-32 (zlib's, as the store computes it) of
 * the file's bytes is checked once every record has been handed out: a
 * caller that acts on the records must be ready to throw away what it did
 * when this fails. Returns 0; fn's negative value when fn stopped the
 * read (err is then empty); or a negative error code (-errno,
 * -QN_ECORRUPT, -QN_ETOOBIG, -EINVAL) with a message in err naming the
 * file and the byte offset.
 */
int qn_records_read(const qn_records_in *in, qn_record_fn fn, void *ctx,
                    char *err, size_t errcap);

#endif
