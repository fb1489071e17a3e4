# Quern -- one non-recursive Makefile. `make help` lists the targets.
#
# Everything is built under $(BUILD): bin/ (quern, quern-master,
# quern-worker), libexec/ (quern-task, the per-attempt runner), jobs/*.so,
# tests/. V=1 shows full commands; SANITIZE=address,undefined builds with
# sanitizers (make asan does that into build/asan).

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
CFLAGS   ?= -O2 -g
SANITIZE ?=

GEN  := $(BUILD)/gen
OBJ  := $(BUILD)/obj
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Wwrite-strings -Wpointer-arith -fno-common
QCFLAGS := -std=c11 -D_GNU_SOURCE -g $(WARN) -MMD -MP -Ilib -I$(GEN) $(CFLAGS)
QLDFLAGS := $(LDFLAGS)
ifneq ($(SANITIZE),)
QCFLAGS  += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
QLDFLAGS += -fsanitize=$(SANITIZE)
endif
LIBS := -lzmq -lprotobuf-c -lz -llz4 -lzstd -lbz2 -llzma -ljansson -lsodium -lseccomp -lm
HTTP_LIBS := -lmicrohttpd
# The master's state store (--state-dir).
STATE_LIBS := -lsqlite3

# Quiet lines ("  CC lib/wire.c") unless V=1.
ifeq ($(V),1)
say :=
else
say = @printf '  %-7s %s\n' '$(1)' '$(2)';
endif

# ---- sources ---------------------------------------------------------------

LIB_SRC    := lib/log.c lib/util.c lib/hash.c lib/codec.c lib/ifile.c \
              lib/combtab.c lib/droplog.c lib/records.c lib/ratelimit.c \
              lib/sortbuf.c lib/merge.c lib/wire.c lib/proc.c \
              lib/curve.c lib/sha256.c lib/shardio.c lib/statusjson.c \
              lib/elfcheck.c lib/split.c lib/jobspec.c lib/deadline.c \
              lib/counters.c lib/sandbox.c lib/shipped.c \
              lib/decomp.c lib/compress.c
MASTER_SRC := master/master.c master/from_workers.c master/task_updates.c \
              master/from_clients.c master/actions.c master/timers.c \
              master/commit.c master/datasets.c master/logs.c master/status.c \
              master/api.c master/events.c master/send.c master/job.c \
              master/workers.c master/evring.c master/plugins.c \
              master/journal.c master/durable.c master/statedb.c master/sched.c \
              master/catalog.c master/http.c master/copyplan.c \
              master/replicas.c master/drain.c
CLIENT_SRC := master/client/client.c master/client/cluster.c \
              master/client/dataset.c master/client/put.c \
              master/client/inline.c \
              master/client/usage.c master/client/opts.c \
              master/client/jobplugin.c master/client/jobbuild.c \
              master/client/jobcmd.c master/client/querycmd.c \
              master/client/datasetcmd.c master/client/draincmd.c
WORKER_SRC := worker/worker.c worker/masterlink.c worker/assign.c \
              worker/attempts.c worker/taskspec.c worker/outcome.c \
              worker/datacmd.c worker/tasklogs.c worker/shuffle.c \
              worker/store.c worker/identity.c worker/recovery.c \
              worker/scrub.c worker/wsandbox.c
# The task runtime: quern-task runs it in a worker's child process, and
# `quern run --inline` in its own.
TASK_SRC   := lib/task.c lib/maptask.c lib/reducetask.c lib/fetch.c \
              lib/taskrun.c lib/broker.c lib/confine.c
JOBS       := $(patsubst jobs/%.c,$(BUILD)/jobs/%.so,$(wildcard jobs/*.c))
TEST_JOBS  := $(patsubst tests/jobs/%.c,$(BUILD)/tests/jobs/%.so,$(wildcard tests/jobs/*.c))
UNIT_TESTS := $(patsubst tests/test_%.c,$(BUILD)/tests/test_%,$(wildcard tests/test_*.c))
TOOLS      := $(BUILD)/tests/gentext $(BUILD)/tests/teravalidate \
              $(BUILD)/tests/hostile $(BUILD)/tests/mkstate

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))
PB_C  := $(GEN)/quern.pb-c.c
PB_H  := $(GEN)/quern.pb-c.h
LIBA  := $(BUILD)/lib/libquern.a
BINS  := $(BUILD)/bin/quern $(BUILD)/bin/quern-master $(BUILD)/bin/quern-worker \
         $(BUILD)/libexec/quern-task

.PHONY: all deps test check unit e2e other-version prev-release demo asan fuzz fuzz-run fuzz-targets bench bench-faults bench-master bench-cluster install format format-check clean help
all: $(BINS) $(JOBS)

# ---- rules -----------------------------------------------------------------

$(PB_C) $(PB_H) &: lib/quern.proto
	@mkdir -p $(GEN)
	$(call say,PROTOC,$<)protoc-c --proto_path=lib --c_out=$(GEN) $<

# The status page, compiled in as bytes (qn_status_page, qn_status_page_len).
PAGE_C := $(GEN)/status_page.c
PAGE_O := $(OBJ)/gen/status_page.o
$(PAGE_C): master/status.html
	@mkdir -p $(@D)
	$(call say,GEN,$@){ echo '/* Generated from master/status.html. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char qn_status_page[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t qn_status_page_len = sizeof qn_status_page;'; } >$@.tmp && mv $@.tmp $@

$(PAGE_O): $(PAGE_C)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) -std=c11 $(CFLAGS) -c $< -o $@

# Generated code is not ours to warn about.
$(OBJ)/gen/quern.pb-c.o: $(PB_C)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) -std=c11 -g $(CFLAGS) -I$(GEN) $(filter -fsanitize% -fno-sanitize% -fno-omit%,$(QCFLAGS)) -c $< -o $@

$(OBJ)/%.o: %.c | $(PB_H)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(QCFLAGS) -c $< -o $@

$(LIBA): $(call obj,$(LIB_SRC)) $(OBJ)/gen/quern.pb-c.o
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/quern-master: $(OBJ)/master/main.o $(call obj,$(MASTER_SRC)) $(PAGE_O) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ $(LIBS) $(HTTP_LIBS) $(STATE_LIBS)

# quern also runs jobs itself (run --inline), with the task runner's code,
# so it too exports the plugin API: -rdynamic.
$(BUILD)/bin/quern: $(OBJ)/master/client/cli.o $(call obj,$(CLIENT_SRC)) \
                    $(call obj,$(TASK_SRC)) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -rdynamic $^ -o $@ $(LIBS) -ldl

$(BUILD)/bin/quern-worker: $(OBJ)/worker/main.o $(call obj,$(WORKER_SRC)) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ $(LIBS)

# The runner exports the plugin API (quern_emit, ...) to the plugins it
# loads, hence -rdynamic.
$(BUILD)/libexec/quern-task: $(OBJ)/worker/task_main.o $(call obj,$(TASK_SRC)) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -rdynamic $^ -o $@ $(LIBS) -ldl

$(BUILD)/jobs/%.so: jobs/%.c lib/quern.h
	@mkdir -p $(@D)
	$(call say,JOB,$@)$(CC) $(QCFLAGS) -fPIC -shared $< -o $@

$(BUILD)/tests/jobs/%.so: tests/jobs/%.c lib/quern.h
	@mkdir -p $(@D)
	$(call say,JOB,$@)$(CC) $(QCFLAGS) -fPIC -shared $< -o $@

$(BUILD)/tests/gentext: $(OBJ)/tests/tools/gentext.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/tests/hostile: $(OBJ)/tests/tools/hostile.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/tests/mkstate: $(OBJ)/tests/tools/mkstate.o $(OBJ)/master/statedb.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ $(LIBS) $(STATE_LIBS)

$(BUILD)/tests/teravalidate: $(OBJ)/tests/tools/teravalidate.o
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) $^ -o $@ -lz

# Unit tests link the daemons' modules, not their main()s; they export
# the plugin API (-rdynamic) so a test can run a job's plugin in-process.
$(BUILD)/tests/test_%: $(OBJ)/tests/test_%.o $(call obj,$(MASTER_SRC) $(WORKER_SRC) $(CLIENT_SRC) $(TASK_SRC)) $(PAGE_O) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -rdynamic $^ -o $@ $(LIBS) $(HTTP_LIBS) $(STATE_LIBS) -lcriterion -ldl

# The programs again, speaking protocol version 2, in a tree of their own:
# e2e/version has two releases meet.
OTHER := $(BUILD)/tests/v2
other-version:
	@$(MAKE) --no-print-directory BUILD=$(OTHER) CFLAGS='-O0 -g -DQN_PROTOCOL_VERSION=2' \
	    $(OTHER)/bin/quern $(OTHER)/bin/quern-master $(OTHER)/bin/quern-worker \
	    $(OTHER)/libexec/quern-task

# The previous release, built from git, for e2e/rolling: a master and
# workers of two releases work together (protocol minor versions). It is
# the last commit before protocol minor 1; built once, in $(PREV).
PREV_RELEASE := c2d5c5e
PREV := $(BUILD)/tests/prev
prev-release: $(PREV)/bin/quern-worker
$(PREV)/bin/quern-worker:
	@rm -rf $(PREV)/src && mkdir -p $(PREV)/src
	$(call say,GIT,$(PREV_RELEASE))git archive $(PREV_RELEASE) | tar -x -C $(PREV)/src
	@$(MAKE) --no-print-directory -C $(PREV)/src BUILD=$(abspath $(PREV)) \
	    $(abspath $(PREV))/bin/quern-master $(abspath $(PREV))/bin/quern-worker \
	    $(abspath $(PREV))/libexec/quern-task

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# Keep objects that pattern-rule chains would otherwise delete.
.SECONDARY:

# ---- the two commands and friends -------------------------------------------

deps:
	@./deploy/deps.sh

# Build and run every test: unit tests, then end-to-end tests with real
# daemons on loopback (which read JSON with jq and curl, build network
# namespaces with iproute2 and nftables, and load the status page in
# headless Chromium).
test:
	@./deploy/deps.sh jq iproute2 nftables curl chromium clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=5

check: all $(UNIT_TESTS) $(TEST_JOBS) $(TOOLS) other-version prev-release
	@BUILD=$(BUILD) ./tests/run.sh

unit: all $(UNIT_TESTS)
	@BUILD=$(BUILD) ./tests/run.sh unit

e2e: all $(TEST_JOBS) $(TOOLS) other-version prev-release
	@BUILD=$(BUILD) ./tests/run.sh e2e

# The tests under AddressSanitizer and UBSan, in their own build tree. The
# resident-memory bounds (e2e/memory) are measured without sanitizers,
# whose shadow memory they would count. Plugins that crash on purpose must
# die of their signal, as they do in production, not of ASan's report.
asan: deps
	@E2E_EXCLUDE=memory ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigfpe=0 $(MAKE) --no-print-directory check BUILD=build/asan SANITIZE=address,undefined CFLAGS='-O1 -g'

# Fuzzing: the libFuzzer targets in tests/fuzz/, built with clang and
# ASan/UBSan in their own tree (the fuzzing build accepts any CRC, so the
# fuzzer gets past them), each run for FUZZ_SECONDS from the seed corpora
# in tests/fuzz/corpus/. Inputs it finds grow build/fuzz/corpus/; one that
# crashes is kept in build/fuzz/findings/ and fails the run.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz:
	@./deploy/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run:
	@$(MAKE) --no-print-directory fuzz-targets BUILD=build/fuzz CC=clang SANITIZE=address,undefined CFLAGS='-O1 -g -fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION'
	@BUILD=build/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) ./tests/fuzz/run.sh

fuzz-targets: $(FUZZ_TARGETS)

$(BUILD)/fuzz/fuzz_%: $(OBJ)/tests/fuzz/fuzz_%.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LIBS)

# fuzz_shard also feeds the store's .meta check (worker/store.c).
$(BUILD)/fuzz/fuzz_shard: $(OBJ)/tests/fuzz/fuzz_shard.o $(OBJ)/worker/store.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LIBS)

# fuzz_jobspec also drives the master's job checks and the quern command's
# option parser (whose main() the fuzzing build renames).
$(BUILD)/fuzz/fuzz_jobspec: $(OBJ)/tests/fuzz/fuzz_jobspec.o $(OBJ)/master/client/cli.o \
                            $(call obj,$(CLIENT_SRC) $(TASK_SRC)) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LIBS) -ldl

# fuzz_config also reads Host headers as the status page does.
$(BUILD)/fuzz/fuzz_config: $(OBJ)/tests/fuzz/fuzz_config.o $(OBJ)/master/http.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LIBS) $(HTTP_LIBS) $(STATE_LIBS)

# fuzz_master feeds a whole master (its handlers behind the decoders).
$(BUILD)/fuzz/fuzz_master: $(OBJ)/tests/fuzz/fuzz_master.o $(call obj,$(MASTER_SRC)) $(PAGE_O) $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(QLDFLAGS) -fsanitize=fuzzer $^ -o $@ $(LIBS) $(HTTP_LIBS) $(STATE_LIBS)

# Word count on a generated sample with a local cluster of two workers.
demo: deps
	@$(MAKE) --no-print-directory all $(TOOLS)
	@BUILD=$(BUILD) ./deploy/demo.sh

bench:
	@./deploy/deps.sh jq time mawk
	@$(MAKE) --no-print-directory all $(TOOLS)
	@BUILD=$(BUILD) ./tests/bench/run.sh

# What losing one of three workers halfway through a job costs.
bench-faults:
	@./deploy/deps.sh bc
	@$(MAKE) --no-print-directory all $(TOOLS)
	@BUILD=$(BUILD) ./tests/bench/kill.sh

# What a master restart costs, and what keeping its state costs.
bench-master:
	@./deploy/deps.sh bc jq
	@$(MAKE) --no-print-directory all $(TOOLS)
	@BUILD=$(BUILD) ./tests/bench/master.sh

# Word count on a 1 GiB dataset across 4 worker hosts (network namespaces),
# and how fast a lost worker's copies are made again, and what that costs a job.
bench-cluster:
	@./deploy/deps.sh bc jq curl iproute2 nftables
	@$(MAKE) --no-print-directory all $(TOOLS)
	@BUILD=$(BUILD) ./tests/bench/cluster.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/bin/quern $(BUILD)/bin/quern-master \
	    $(BUILD)/bin/quern-worker $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(BUILD)/libexec/quern-task $(DESTDIR)$(PREFIX)/libexec/
	install -m 644 lib/quern.h $(DESTDIR)$(PREFIX)/include/
	printf 'prefix=%s\nincludedir=$${prefix}/include\n\nName: quern\nDescription: Quern map/reduce job plugin API\nVersion: 0.1.0\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' >$(DESTDIR)$(PREFIX)/lib/pkgconfig/quern.pc

FORMAT_SRC = $(wildcard lib/*.[ch] master/*.[ch] master/*/*.[ch] worker/*.[ch] jobs/*.c tests/*.c tests/*/*.c)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

help:
	@echo 'make          build binaries and example jobs under $(BUILD)/'
	@echo 'make demo     install packages, build, run word count on a local cluster'
	@echo 'make test     install packages, build, run every test'
	@echo 'make asan     the tests under AddressSanitizer and UBSan'
	@echo 'make bench    benchmarks against the usual tools'
	@echo 'make install  PREFIX=/usr/local DESTDIR= (binaries, quern.h, quern.pc)'
