/*
 * cli.h -- the quern command.
 *
 * cli.c is the quern command's main(); its options are parsed by opts.h,
 * which the fuzzer (tests/fuzz/fuzz_jobspec.c) reaches through here.
 */
#ifndef QN_CLI_H
#define QN_CLI_H

#include "opts.h"

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/* The fuzzer brings its own main(); quern's is this, in such builds. */
int qn_cli_main(int argc, char **argv);
#endif

#endif
