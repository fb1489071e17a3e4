/*
 * elfcheck.h -- what a job plugin's bytes say about it, read without
 * loading them.
 *
 * The client checks a plugin file's ELF header before it dlopen()s it, so
 * that a wrong file gets a clear refusal rather than the loader's message
 * (or its constructors run). The master checks the bytes a client sent,
 * which it never loads, before it accepts a job: the header, and that the
 * dynamic symbol table defines the job's entry point. Every read is
 * bounds-checked against the buffer's length, whatever the bytes say.
 */
#ifndef QN_ELFCHECK_H
#define QN_ELFCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a file's start qn_elfcheck_header needs (EI_NIDENT + 4). */
#define QN_ELFCHECK_HEADER_MIN 20

/* A symbol found by qn_elfcheck_symbol. */
typedef struct qn_elfsym {
    uint64_t value; /* its address in the object */
    uint64_t size;  /* its size in bytes, as the object says */
    unsigned type;  /* STT_OBJECT, STT_FUNC, ... */
} qn_elfsym;

/*
 * Is buf[0..len), the start of a file, the header of an ELF shared object
 * this machine can load (magic, class, byte order, ET_DYN, machine)?
 * Returns 0, or -1 with why saying what it is instead, in the words the
 * client prints after "--job PATH: " ("not a shared object for this
 * machine: ...").
 */
int qn_elfcheck_header(const void *buf, size_t len, char *why, size_t cap);

/*
 * Look name up in the dynamic symbol table (.dynsym) of the whole shared
 * object in buf[0..len), from its section headers, without loading it.
 * Returns 1 and fills *out when the object defines name (an undefined
 * reference does not count), 0 when it does not, or -1 with why when the
 * bytes are not a shared object for this machine or its tables do not fit
 * in len bytes.
 */
int qn_elfcheck_symbol(const void *buf, size_t len, const char *name,
                       qn_elfsym *out, char *why, size_t cap);

#endif
