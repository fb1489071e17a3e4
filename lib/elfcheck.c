/*
 * elfcheck.c -- see elfcheck.h.
 *
 * The header check reads bytes one by one, so it can tell a 32-bit or
 * foreign-endian file for what it is. Once the header says "this
 * machine's class and byte order", the tables are read as this machine's
 * ElfW() structures, each copied out with memcpy (the bytes come from a
 * message and need not be aligned) after its span is checked against the
 * buffer.
 */
#include "elfcheck.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/* The ELF machine this quern was built for. */
#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#define NATIVE_NAME "x86-64"
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#define NATIVE_NAME "aarch64"
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#define NATIVE_NAME "i386"
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_MACHINE EM_RISCV
#define NATIVE_NAME "riscv64"
#endif

int qn_elfcheck_header(const void *buf, size_t len, char *why, size_t cap)
{
    const unsigned char *h = buf;
    if (len < QN_ELFCHECK_HEADER_MIN || memcmp(h, ELFMAG, SELFMAG) != 0) {
        snprintf(why, cap,
                 "cannot load it as a shared object: not an ELF file");
        return -1;
    }
    int bits = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
    if (h[EI_CLASS] != bits) {
        snprintf(why, cap,
                 "not a shared object for this machine: it is %s, this "
                 "quern is %d-bit",
                 h[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit",
                 bits == ELFCLASS64 ? 64 : 32);
        return -1;
    }
    int little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
    if (h[EI_DATA] != (little ? ELFDATA2LSB : ELFDATA2MSB)) {
        snprintf(why, cap,
                 "not a shared object for this machine: its byte order is "
                 "%s-endian",
                 little ? "big" : "little");
        return -1;
    }
    unsigned type = little ? h[16] | h[17] << 8 : h[16] << 8 | h[17];
    unsigned machine = little ? h[18] | h[19] << 8 : h[18] << 8 | h[19];
    if (type != ET_DYN) {
        snprintf(why, cap,
                 "not a shared object (ELF type %u): build it with -shared "
                 "-fPIC",
                 type);
        return -1;
    }
#ifdef NATIVE_MACHINE
    if (machine != NATIVE_MACHINE) {
        snprintf(why, cap,
                 "not a shared object for this machine: built for ELF "
                 "machine %u, this quern runs on %s (%u)",
                 machine, NATIVE_NAME, (unsigned)NATIVE_MACHINE);
        return -1;
    }
#else
    (void)machine;
#endif
    return 0;
}

/* Do n bytes at off fit in a buffer of len bytes? (No overflow.) */
static int s_fits(size_t len, uint64_t off, uint64_t n)
{
    return off <= len && n <= len - off;
}

/* Section header i of the object, once the table is known to fit. */
static ElfW(Shdr)
    s_section(const unsigned char *b, const ElfW(Ehdr) * eh, size_t i)
{
    ElfW(Shdr) sh;
    memcpy(&sh, b + eh->e_shoff + i * sizeof sh, sizeof sh);
    return sh;
}

/*
 * Check the header, then find the dynamic symbol table and its string
 * table through the section headers, each offset and size checked against
 * len, and look name up in it (elfcheck.h).
 */
int qn_elfcheck_symbol(const void *buf, size_t len, const char *name,
                       qn_elfsym *out, char *why, size_t cap)
{
    const unsigned char *b = buf;
    if (qn_elfcheck_header(buf, len, why, cap) != 0)
        return -1;
    ElfW(Ehdr) eh;
    if (len < sizeof eh) {
        snprintf(why, cap, "truncated: %zu bytes, shorter than an ELF header",
                 len);
        return -1;
    }
    memcpy(&eh, b, sizeof eh);
    /* e_shnum 0 with an offset would mean more than 65279 sections,
     * counted elsewhere: no plugin has that many. */
    if (eh.e_shoff == 0 || eh.e_shnum == 0) {
        snprintf(why, cap,
                 "it has no section headers, so its symbols cannot be read "
                 "(do not strip them)");
        return -1;
    }
    if (eh.e_shentsize != sizeof(ElfW(Shdr)) ||
        !s_fits(len, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(ElfW(Shdr)))) {
        snprintf(why, cap,
                 "truncated or corrupt: its %u section headers do not fit in "
                 "its %zu bytes",
                 (unsigned)eh.e_shnum, len);
        return -1;
    }
    size_t nsec = eh.e_shnum;
    for (size_t i = 0; i < nsec; i++) {
        ElfW(Shdr) sym = s_section(b, &eh, i);
        if (sym.sh_type != SHT_DYNSYM)
            continue;
        if (sym.sh_entsize != sizeof(ElfW(Sym)) ||
            !s_fits(len, sym.sh_offset, sym.sh_size)) {
            snprintf(why, cap,
                     "truncated or corrupt: its dynamic symbol table does "
                     "not fit in its %zu bytes",
                     len);
            return -1;
        }
        if (sym.sh_link >= nsec || sym.sh_link == i) {
            snprintf(why, cap,
                     "corrupt: its dynamic symbol table names no string "
                     "table");
            return -1;
        }
        ElfW(Shdr) str = s_section(b, &eh, sym.sh_link);
        if (str.sh_type != SHT_STRTAB ||
            !s_fits(len, str.sh_offset, str.sh_size)) {
            snprintf(why, cap,
                     "truncated or corrupt: the string table of its dynamic "
                     "symbols does not fit in its %zu bytes",
                     len);
            return -1;
        }
        const char *strs = (const char *)b + str.sh_offset;
        size_t nstr = str.sh_size, nlen = strlen(name);
        size_t nsym = sym.sh_size / sizeof(ElfW(Sym));
        for (size_t k = 0; k < nsym; k++) {
            ElfW(Sym) s;
            memcpy(&s, b + sym.sh_offset + k * sizeof s, sizeof s);
            /* The name, with its NUL, inside the string table. */
            if (s.st_name >= nstr || nlen >= nstr - s.st_name ||
                memcmp(strs + s.st_name, name, nlen) != 0 ||
                strs[s.st_name + nlen] != '\0')
                continue;
            if (s.st_shndx == SHN_UNDEF)
                continue; /* a reference to someone else's */
            out->value = s.st_value;
            out->size = s.st_size;
            out->type = ELF64_ST_TYPE(s.st_info);
            return 1;
        }
        return 0; /* one .dynsym per object: the loader reads no other */
    }
    return 0;
}
