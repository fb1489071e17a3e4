/*
 * test_jobspec.c -- what the master refuses in a job before it accepts it
 * (lib/jobspec.c), and what a plugin's bytes say without being loaded
 * (lib/elfcheck.c).
 *
 * The plugin is a real one, $BUILD/jobs/wordcount.so (make all builds
 * it), read at test time; the bad ones are patched copies of it.
 */
#include "helpers.h"

#include "jobspec.h"
#include "codec.h"
#include "elfcheck.h"
#include "sha256.h"
#include "util.h"

#include <elf.h>
#include <link.h>
#include <stddef.h>

static Quern__JobSpec spec;
static Quern__InputPath in1, *ins[1];
static Quern__Arg arg1, *args[1];
static unsigned char *so; /* wordcount.so's bytes */
static size_t solen;
static char err[1024];

static void setup(void)
{
    quern__job_spec__init(&spec);
    quern__input_path__init(&in1);
    quern__arg__init(&arg1);
    in1.given = (char *)"./in";
    in1.path = (char *)"/data/in";
    ins[0] = &in1;
    arg1.name = (char *)"top";
    arg1.value = (char *)"10";
    args[0] = &arg1;
    spec.name = (char *)"wordcount";
    spec.plugin = (char *)"/jobs/wordcount.so";
    spec.inputs = ins;
    spec.n_inputs = 1;
    spec.output = (char *)"/data/out";
    spec.nreduce = 2;
    spec.args = args;
    spec.n_args = 1;
    spec.split_size = 64 << 20;
    spec.sort_mb = 64;
    spec.max_attempts = 4;
    spec.compress_level = 1;
    spec.codec = QN_CODEC_ZLIB;

    so = qn_test_build_file("jobs/wordcount.so", &solen);
    cr_assert_gt(solen, 1024, "wordcount.so is too short");
    err[0] = '\0';
}

static void teardown(void)
{
    free(so);
    so = NULL;
    qn_test_leak_check();
}

TestSuite(jobspec, .init = setup, .fini = teardown);
TestSuite(elfcheck, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

/* The spec (with wordcount's bytes) is refused, saying want. */
static void refused(const char *want)
{
    cr_assert_eq(qn_jobspec_check(&spec, so, solen, err, sizeof err), -1,
                 "accepted, but should be refused with '%s'", want);
    cr_assert_not_null(strstr(err, want), "refused with '%s', not '%s'", err,
                       want);
    cr_assert_null(strchr(err, '\n'), "the refusal is not one line: %s", err);
}

static void accepted(void)
{
    cr_assert_eq(qn_jobspec_check(&spec, so, solen, err, sizeof err), 0,
                 "refused: %s", err);
}

/* A string of n copies of c (free it). */
static char *repeat(char c, size_t n)
{
    char *s = qn_malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static ElfW(Ehdr) ehdr(void)
{
    ElfW(Ehdr) eh;
    memcpy(&eh, so, sizeof eh);
    return eh;
}

/* Section header i of the (good) plugin. */
static ElfW(Shdr) shdr(size_t i)
{
    ElfW(Ehdr) eh = ehdr();
    ElfW(Shdr) sh;
    memcpy(&sh, so + eh.e_shoff + i * sizeof sh, sizeof sh);
    return sh;
}

/* The index of the plugin's .dynsym section. */
static size_t dynsym_index(void)
{
    ElfW(Ehdr) eh = ehdr();
    for (size_t i = 0; i < eh.e_shnum; i++)
        if (shdr(i).sh_type == SHT_DYNSYM)
            return i;
    cr_assert_fail("wordcount.so has no .dynsym");
    return 0;
}

/* Where in the bytes quern_job_v1's .dynsym entry is. */
static size_t entry_offset(void)
{
    ElfW(Shdr) ds = shdr(dynsym_index());
    ElfW(Shdr) str = shdr(ds.sh_link);
    for (size_t k = 0; k < ds.sh_size / sizeof(ElfW(Sym)); k++) {
        ElfW(Sym) s;
        size_t at = ds.sh_offset + k * sizeof s;
        memcpy(&s, so + at, sizeof s);
        if (strcmp((char *)so + str.sh_offset + s.st_name, "quern_job_v1") == 0)
            return at;
    }
    cr_assert_fail("wordcount.so has no quern_job_v1");
    return 0;
}

/* Write v as an n-byte integer of this machine at off. */
static void poke(size_t off, uint64_t v, size_t n)
{
    uint16_t v16 = (uint16_t)v;
    uint32_t v32 = (uint32_t)v;
    cr_assert_leq(off + n, solen);
    memcpy(so + off, n == 2 ? (void *)&v16 : n == 4 ? (void *)&v32 : &v, n);
}

/* Set field f of the T at byte base of the plugin to v. */
#define POKE(base, T, f, v)                                                    \
    poke((base) + offsetof(T, f), (v), sizeof(((T *)0)->f))

/* An ELF machine that is not this one's. */
static unsigned other_machine(void)
{
    return ehdr().e_machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
}

/* The ELF header check on the bytes, refusing with want. */
static void header_refused(const char *want)
{
    char why[300] = "";
    cr_assert_eq(qn_elfcheck_header(so, solen, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, want), "'%s', not '%s'", why, want);
    refused(want);
}

/* The symbol lookup on the bytes, refusing with want. */
static void symbol_refused(const char *want)
{
    char why[300] = "";
    qn_elfsym sym;
    cr_assert_eq(
        qn_elfcheck_symbol(so, solen, "quern_job_v1", &sym, why, sizeof why),
        -1);
    cr_assert_not_null(strstr(why, want), "'%s', not '%s'", why, want);
    refused(want);
}

/* ---- the job ------------------------------------------------------------- */

Test(jobspec, accepts_a_good_job)
{
    accepted();
    spec.output = (char *)"results"; /* a dataset */
    in1.given = in1.path = (char *)"logs";
    spec.output_replicas = 3;
    accepted();
}

Test(jobspec, refuses_no_reducers)
{
    spec.nreduce = 0;
    refused("-R must be from 1 to 100000, not 0");
}

Test(jobspec, refuses_too_many_reducers)
{
    spec.nreduce = QN_JOBSPEC_REDUCERS_MAX + 1;
    refused("-R must be from 1 to 100000, not 100001");
}

Test(jobspec, refuses_no_inputs)
{
    spec.n_inputs = 0;
    refused("the job has no inputs");
}

Test(jobspec, refuses_too_many_inputs)
{
    size_t n = QN_JOBSPEC_INPUTS_MAX + 1;
    Quern__InputPath **many = qn_calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++)
        many[i] = &in1;
    spec.inputs = many;
    spec.n_inputs = n;
    refused("the job has 100001 inputs, more than the 100000");
    free(many);
}

Test(jobspec, refuses_an_empty_input)
{
    in1.given = (char *)"";
    refused("input 1 is empty");
}

Test(jobspec, refuses_an_input_path_without_its_absolute_form)
{
    in1.path = (char *)"";
    refused("input ./in: no absolute path for it");
}

Test(jobspec, refuses_a_relative_input_path)
{
    in1.path = (char *)"data/in";
    refused("input ./in: its path data/in is not absolute");
}

Test(jobspec, refuses_an_input_that_is_no_dataset_name)
{
    in1.given = in1.path = (char *)"a b";
    refused("input a b: not a dataset name, nor a path");
}

Test(jobspec, refuses_an_overlong_input_path)
{
    char *p = repeat('/', QN_JOBSPEC_PATH_MAX + 1);
    in1.given = in1.path = p;
    refused("longer than 4095 bytes");
    free(p);
}

Test(jobspec, refuses_no_output)
{
    spec.output = (char *)"";
    refused("the job has no output");
}

Test(jobspec, refuses_a_relative_output)
{
    spec.output = (char *)"./out";
    refused("output ./out: not an absolute path");
}

Test(jobspec, refuses_an_output_that_is_no_dataset_name)
{
    spec.output = (char *)".hidden";
    refused("'.hidden' is not a dataset name");
}

Test(jobspec, refuses_an_overlong_output)
{
    char *p = repeat('/', QN_JOBSPEC_PATH_MAX + 1);
    spec.output = p;
    refused("output ///");
    free(p);
}

Test(jobspec, refuses_an_overlong_name)
{
    char *p = repeat('n', QN_JOBSPEC_NAME_MAX + 1);
    spec.name = p;
    refused("longer than 64 bytes");
    free(p);
}

Test(jobspec, refuses_a_name_with_control_characters)
{
    spec.name = (char *)"word\ncount";
    refused("the job name has control characters");
}

Test(jobspec, refuses_an_overlong_plugin_path)
{
    char *p = repeat('/', QN_JOBSPEC_PATH_MAX + 1);
    spec.plugin = p;
    refused("the plugin's path is longer than 4095 bytes");
    free(p);
}

Test(jobspec, refuses_too_many_args)
{
    size_t n = QN_JOBSPEC_ARGS_MAX + 1;
    Quern__Arg **many = qn_calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++)
        many[i] = &arg1;
    spec.args = many;
    spec.n_args = n;
    refused("the job has 1025 --arg, more than 1024");
    free(many);
}

Test(jobspec, refuses_an_arg_without_a_name)
{
    arg1.name = (char *)"";
    refused("--arg 1 has no name");
}

Test(jobspec, refuses_an_overlong_arg_name)
{
    char *p = repeat('a', QN_JOBSPEC_ARG_NAME_MAX + 1);
    arg1.name = p;
    refused("a name longer than 256 bytes");
    free(p);
}

Test(jobspec, refuses_an_overlong_arg_value)
{
    char *p = repeat('v', QN_JOBSPEC_ARG_VALUE_MAX + 1);
    arg1.value = p;
    refused("--arg top: a value longer than 65536 bytes");
    free(p);
}

Test(jobspec, refuses_args_too_large_together)
{
    /* Each within its limit, together over what a task message carries. */
    char *p = repeat('v', QN_JOBSPEC_ARG_VALUE_MAX);
    arg1.value = p;
    size_t n = QN_JOBSPEC_ARGS_BYTES / QN_JOBSPEC_ARG_VALUE_MAX + 1;
    Quern__Arg **many = qn_calloc(n, sizeof *many);
    for (size_t i = 0; i < n; i++)
        many[i] = &arg1;
    spec.args = many;
    spec.n_args = n;
    refused("come to more than 1048576 bytes");
    free(many);
    free(p);
}

Test(jobspec, refuses_a_split_size_under_1k)
{
    spec.split_size = 1023;
    refused("--split-size must be at least 1024 bytes, not 1023");
}

Test(jobspec, refuses_sort_mb_out_of_range)
{
    spec.sort_mb = 0;
    refused("--sort-mb must be from 1 to 4095, not 0");
    spec.sort_mb = 4096;
    refused("--sort-mb must be from 1 to 4095, not 4096");
}

Test(jobspec, refuses_max_attempts_out_of_range)
{
    spec.max_attempts = 0;
    refused("--max-attempts must be from 1 to 100, not 0");
    spec.max_attempts = 101;
    refused("--max-attempts must be from 1 to 100, not 101");
}

Test(jobspec, refuses_a_compress_level_over_9)
{
    spec.compress_level = 10;
    refused("--compress-level must be from 0 to 9, not 10");
}

Test(jobspec, refuses_an_unknown_codec)
{
    spec.codec = QN_CODEC_COUNT;
    refused("codec 4 is not one this quern knows");
    spec.codec = 99;
    refused("codec 99 is not one this quern knows");
}

Test(jobspec, refuses_too_many_output_replicas)
{
    spec.output_replicas = QN_JOBSPEC_REPLICAS_MAX + 1;
    refused("--output-replicas must be from 1 to 16, not 17");
}

Test(jobspec, refuses_an_unknown_input_kind)
{
    spec.input_kind = (Quern__InputKind)3;
    refused("unknown input kind 3");
}

Test(jobspec, refuses_fixed_input_without_a_record_size)
{
    spec.input_kind = QUERN__INPUT_KIND__FIXED;
    spec.record_size = 0;
    refused("QUERN_FIXED input needs a record_size");
}

Test(jobspec, refuses_fixed_records_over_the_record_limit)
{
    spec.input_kind = QUERN__INPUT_KIND__FIXED;
    spec.record_size = QN_RECORD_MAX;
    accepted();
    spec.record_size = (uint64_t)QN_RECORD_MAX + 1;
    refused("is over the limit of");
    /* Other kinds do not read records by size: theirs is not looked at. */
    spec.input_kind = QUERN__INPUT_KIND__LINES;
    accepted();
}

Test(jobspec, refuses_a_job_without_its_plugin)
{
    cr_assert_eq(qn_jobspec_check(&spec, so, 0, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "the job carries no plugin"), "%s", err);
    cr_assert_eq(qn_jobspec_check(&spec, NULL, 0, err, sizeof err), -1);
}

/* ---- shipped files (--file) ------------------------------------------------
 */

static const char dict[] = "alpha\nbeta\n";
static Quern__ShippedFile sf[2], *sfp[2];
static char sfhex[QN_SHA256_HEX];

/* The spec ships n files (at most 2), each dict's bytes, named names[i]. */
static void ships(size_t n, const char *const *names)
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(dict, strlen(dict), d);
    qn_sha256_hex(d, sfhex);
    for (size_t i = 0; i < n; i++) {
        quern__shipped_file__init(&sf[i]);
        sf[i].name = (char *)names[i];
        sf[i].hash = sfhex;
        sf[i].size = strlen(dict);
        sfp[i] = &sf[i];
    }
    spec.files = sfp;
    spec.n_files = n;
}

Test(jobspec, accepts_shipped_files_with_their_bytes)
{
    ships(2, (const char *[]){"dict.txt", "words"});
    accepted();
    ProtobufCBinaryData data[2] = {{strlen(dict), (uint8_t *)dict},
                                   {strlen(dict), (uint8_t *)dict}};
    cr_assert_eq(qn_jobspec_check_files(&spec, data, 2, err, sizeof err), 0,
                 "%s", err);
}

Test(jobspec, refuses_shipped_files_that_are_no_plain_names)
{
    const char *bad[] = {"", ".", "..", ".profile", "a/b", "../../etc/x"};
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        ships(1, &bad[i]);
        refused("not a plain file name");
    }
}

Test(jobspec, refuses_two_shipped_files_of_one_name)
{
    ships(2, (const char *[]){"dict.txt", "dict.txt"});
    refused("--file dict.txt: two files of that name");
}

Test(jobspec, refuses_a_shipped_file_without_a_sha256)
{
    ships(1, (const char *[]){"dict.txt"});
    sf[0].hash = (char *)"../../plugins/x";
    refused("--file dict.txt: its hash is not a SHA-256 in hex");
}

Test(jobspec, refuses_shipped_files_past_the_limit)
{
    ships(2, (const char *[]){"a", "b"});
    sf[0].size = QN_JOBSPEC_SHIP_BYTES - solen;
    sf[1].size = 0;
    accepted();
    sf[1].size = 1;
    refused("the job's plugin and --file files come to more than the 15 MiB");
    /* Sizes that would wrap a sum are still too large. */
    sf[0].size = UINT64_MAX;
    refused("come to more than");
}

Test(jobspec, refuses_shipped_bytes_that_are_not_the_ones_named)
{
    ships(2, (const char *[]){"dict.txt", "words"});
    ProtobufCBinaryData data[2] = {{strlen(dict), (uint8_t *)dict},
                                   {3, (uint8_t *)"abc"}};
    cr_assert_eq(qn_jobspec_check_files(&spec, data, 1, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "names 2 shipped files"), "%s", err);
    cr_assert_eq(qn_jobspec_check_files(&spec, data, 2, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "--file words: its bytes are not"), "%s",
                       err);
}

Test(jobspec, shows_what_a_client_sent_as_one_line_of_utf8)
{
    in1.path = (char *)"rel\nativ\x7f";
    refused("input ./in: its path rel?ativ? is not absolute");
    /* Cut to 200 bytes, in the middle of a character: no half of it. */
    in1.path = (char *)"/data/in";
    char *p = qn_malloc(301);
    for (size_t i = 0; i < 300; i += 2)
        memcpy(p + i, "\xc3\xa9", 2); /* é */
    p[300] = '\0';
    spec.plugin = p + 1;
    solen = 10;
    refused("...: cannot load it as a shared object");
    cr_assert(qn_utf8_valid(err), "not UTF-8: %s", err);
    free(p);
}

/* ---- the plugin's bytes -------------------------------------------------- */

Test(elfcheck, reads_a_real_plugin)
{
    char why[300] = "";
    cr_assert_eq(qn_elfcheck_header(so, solen, why, sizeof why), 0, "%s", why);
    qn_elfsym sym;
    cr_assert_eq(
        qn_elfcheck_symbol(so, solen, "quern_job_v1", &sym, why, sizeof why), 1,
        "%s", why);
    cr_assert_eq(sym.size, sizeof(quern_job));
    cr_assert_eq(sym.type, STT_OBJECT);
    /* What it uses from quern is there, undefined: that is not defining. */
    cr_assert_eq(
        qn_elfcheck_symbol(so, solen, "quern_emit", &sym, why, sizeof why), 0);
    cr_assert_eq(
        qn_elfcheck_symbol(so, solen, "quern_job", &sym, why, sizeof why), 0,
        "a prefix of a name is not the name");
}

Test(elfcheck, refuses_what_is_not_elf)
{
    memcpy(so, "#!/bin/sh\n", 10);
    header_refused("cannot load it as a shared object: not an ELF file");
}

Test(elfcheck, refuses_a_file_shorter_than_a_header)
{
    char why[300] = "";
    cr_assert_eq(
        qn_elfcheck_header(so, QN_ELFCHECK_HEADER_MIN - 1, why, sizeof why),
        -1);
    cr_assert_not_null(strstr(why, "not an ELF file"), "%s", why);
    solen = QN_ELFCHECK_HEADER_MIN;
    symbol_refused("shorter than an ELF header");
}

Test(elfcheck, refuses_another_class)
{
    so[EI_CLASS] = ELFCLASS32;
    header_refused("not a shared object for this machine: it is 32-bit, "
                   "this quern is 64-bit");
}

Test(elfcheck, refuses_another_byte_order)
{
    so[EI_DATA] = ELFDATA2MSB;
    header_refused("its byte order is big-endian");
}

Test(elfcheck, refuses_an_executable)
{
    POKE(0, ElfW(Ehdr), e_type, ET_EXEC);
    header_refused("not a shared object (ELF type 2): build it with -shared");
}

Test(elfcheck, refuses_another_machine)
{
    POKE(0, ElfW(Ehdr), e_machine, other_machine());
    header_refused("not a shared object for this machine: built for ELF "
                   "machine");
}

Test(elfcheck, refuses_a_truncated_plugin)
{
    /* The section headers are at the end: cut, they do not fit. */
    solen = ehdr().e_shoff + 10;
    symbol_refused("section headers do not fit");
}

Test(elfcheck, refuses_a_plugin_without_section_headers)
{
    POKE(0, ElfW(Ehdr), e_shoff, 0);
    symbol_refused("it has no section headers");
}

Test(elfcheck, refuses_section_headers_of_another_size)
{
    POKE(0, ElfW(Ehdr), e_shentsize, sizeof(ElfW(Shdr)) + 8);
    symbol_refused("section headers do not fit");
}

Test(elfcheck, refuses_section_headers_past_the_end)
{
    POKE(0, ElfW(Ehdr), e_shoff, (uint64_t)-64);
    symbol_refused("section headers do not fit");
}

Test(elfcheck, refuses_a_symbol_table_past_the_end)
{
    size_t at = ehdr().e_shoff + dynsym_index() * sizeof(ElfW(Shdr));
    POKE(at, ElfW(Shdr), sh_size, solen);
    symbol_refused("dynamic symbol table does not fit");
}

Test(elfcheck, refuses_symbols_of_another_size)
{
    size_t at = ehdr().e_shoff + dynsym_index() * sizeof(ElfW(Shdr));
    POKE(at, ElfW(Shdr), sh_entsize, 16);
    symbol_refused("dynamic symbol table does not fit");
}

Test(elfcheck, refuses_a_symbol_table_without_strings)
{
    size_t at = ehdr().e_shoff + dynsym_index() * sizeof(ElfW(Shdr));
    POKE(at, ElfW(Shdr), sh_link, 60000);
    symbol_refused("names no string table");
}

Test(elfcheck, refuses_a_string_table_past_the_end)
{
    size_t str = shdr(dynsym_index()).sh_link;
    size_t at = ehdr().e_shoff + str * sizeof(ElfW(Shdr));
    POKE(at, ElfW(Shdr), sh_offset, solen - 4);
    symbol_refused("string table of its dynamic symbols does not fit");
}

Test(elfcheck, skips_names_outside_the_string_table)
{
    /* A name offset past the strings is no name: not found, no read. */
    POKE(entry_offset(), ElfW(Sym), st_name, 0xfffffff0u);
    char why[300];
    qn_elfsym sym;
    cr_assert_eq(
        qn_elfcheck_symbol(so, solen, "quern_job_v1", &sym, why, sizeof why),
        0);
}

Test(jobspec, refuses_a_plugin_without_quern_job_v1)
{
    /* Rename the symbol wherever its name is written. */
    for (size_t i = 0; i + 12 <= solen; i++)
        if (memcmp(so + i, "quern_job_v1", 12) == 0)
            so[i + 9] = 'X';
    refused("does not define quern_job_v1");
}

Test(jobspec, refuses_a_quern_job_v1_that_is_too_small)
{
    /* As if the plugin said int quern_job_v1 (tests/jobs/smalljob.c). */
    POKE(entry_offset(), ElfW(Sym), st_size, 4);
    refused("its quern_job_v1 is 4 bytes, too small to be a quern_job");
    /* The first ABI 1 release's quern_job, without output, is fine. */
    POKE(entry_offset(), ElfW(Sym), st_size, offsetof(quern_job, output));
    accepted();
}

Test(jobspec, refuses_a_quern_job_v1_that_is_a_function)
{
    size_t at = entry_offset() + offsetof(ElfW(Sym), st_info);
    so[at] = (unsigned char)ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
    refused("its quern_job_v1 is not a quern_job");
}

Test(jobspec, refuses_a_plugin_for_another_machine)
{
    POKE(0, ElfW(Ehdr), e_machine, other_machine());
    refused("plugin /jobs/wordcount.so: not a shared object for this "
            "machine: built for ELF machine");
}
