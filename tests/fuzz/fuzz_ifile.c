/*
 * fuzz_ifile.c -- libFuzzer target: any bytes as an intermediate file.
 *
 * The bytes go into a memory file, which is opened as a map output
 * (qn_ifile_open: footer, index), and every partition's records are read
 * (qn_blockreader: block headers, decompression with every codec, record
 * framing), as a reducer and the shuffle server do. The whole file is
 * also read as one block stream, and scanned as the reducer's fetch check
 * does (qn_block_scan). Errors are fine; crashes, hangs, leaks and reads
 * out of bounds are not. (The fuzzing build accepts any CRC, so that the
 * fuzzer gets past them.)
 */
#include "ifile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_read_range(int fd, uint64_t off, uint64_t len)
{
    qn_blockreader r;
    if (qn_blockreader_init(&r, fd, "fuzz", off, len) != 0)
        return;
    const void *k, *v;
    size_t kl, vl;
    int rc;
    unsigned long n = 0;
    while ((rc = qn_blockreader_next(&r, &k, &kl, &v, &vl)) == 1 &&
           n++ < 1000000)
        ;
    if (rc < 0 && !qn_blockreader_error(&r)[0])
        abort(); /* an error always names the file and offset */
    qn_blockreader_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-ifile", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    qn_ifile *f = qn_ifile_open(path, err, sizeof err);
    if (f) {
        for (unsigned p = 0; p < qn_ifile_nparts(f); p++) {
            qn_range rg = qn_ifile_range(f, p);
            s_read_range(qn_ifile_fd(f), rg.offset, rg.length);
        }
        qn_ifile_destroy(&f);
    } else if (!err[0]) {
        abort();
    }
    s_read_range(fd, 0, size);
    uint64_t raw = 0;
    (void)qn_block_scan(data, size, &raw, err, sizeof err);
    close(fd);
    return 0;
}
