# sockshim: build/libsockshim.so (the LD_PRELOAD shim) and build/sockshim
# (the command). `make demo` and `make test` are the two set-up commands.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib/sockshim
MANDIR = $(PREFIX)/share/man/man1

CC ?= cc
BUILD ?= build
SAN ?=
OPT ?= -O2
PYTHON ?= python3

WARN = -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
       -Wpointer-arith -Wformat=2
# TSan does not model fences (GCC says so with -Wtsan); our fenced code
# accesses shared memory only atomically, so there is nothing to report.
CFLAGS_BASE = -std=gnu11 $(OPT) -g $(WARN) -D_GNU_SOURCE -Iinclude -pthread \
	      $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer) \
	      $(if $(filter thread,$(SAN)),-Wno-tsan)
LDFLAGS_BASE = -pthread $(if $(SAN),-fsanitize=$(SAN))

SHIM_SRC = $(sort $(wildcard shim/*.c))
# The segment code the shim and the command share.
SEGMENT_SRC = shim/segment.c shim/seg_guard.c
# The command releases what it reclaims through the shim's own ledger code
# (tools/reclaim.c): SHIM_LEDGER_SRC, below.
TOOL_SRC = $(sort $(wildcard tools/*.c) $(SEGMENT_SRC) shim/thread_state.c shim/config.c \
	   $(SHIM_LEDGER_SRC))
SHIM_OBJ = $(SHIM_SRC:%.c=$(BUILD)/obj/%.pic.o)
TOOL_OBJ = $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)

LIB = $(BUILD)/libsockshim.so
TOOL = $(BUILD)/sockshim

UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PROG_SRC = $(sort $(wildcard tests/progs/*.c))
PROG_BIN = $(PROG_SRC:tests/progs/%.c=$(BUILD)/tests/%)
EXAMPLE_SRC = $(sort $(wildcard examples/*.c))
EXAMPLE_BIN = $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

# Sources whose objects each unit test links besides its own and cmocka:
# the module it tests, and what that module calls.
UNIT_OBJ_test_ring = shim/ring.c $(SEGMENT_SRC) tools/ring_reader.c
UNIT_OBJ_test_segment = $(SEGMENT_SRC)
UNIT_OBJ_test_seg_guard = $(SEGMENT_SRC)
UNIT_OBJ_test_thread_state = shim/thread_state.c
UNIT_OBJ_test_claim = shim/claim.c shim/thread_state.c
UNIT_OBJ_test_fdtab = shim/fdtab.c
UNIT_OBJ_test_select_poll = shim/select_poll.c
UNIT_OBJ_test_usermem = shim/usermem.c
UNIT_OBJ_test_config = shim/config.c $(SEGMENT_SRC)
UNIT_OBJ_test_follow = shim/follow.c shim/exec_image.c shim/config.c $(SEGMENT_SRC)
UNIT_OBJ_test_format = tools/format.c tools/outbuf.c
UNIT_OBJ_test_outbuf = tools/outbuf.c tools/format.c tools/bigmem.c
UNIT_OBJ_test_interposable = tools/interposable.c
# The shim's ledger with what it calls (ledger_forget_one's close records
# go through emit.c into the ring; a claim waits for another's in claim.c,
# which looks at that claimer in /proc); the test gives emit.c its vfork
# check.
SHIM_LEDGER_SRC = shim/ledger.c shim/procs.c shim/emit.c shim/ring.c shim/fdtab.c shim/callsite.c \
	shim/claim.c shim/thread_state.c shim/log.c
# Its ledgers are written by the shim's own code (SHIM_LEDGER_SRC).
UNIT_OBJ_test_ledger_read = tools/ledger_read.c tools/flatidx.c tools/format.c tools/outbuf.c \
	tools/bigmem.c $(SEGMENT_SRC) $(SHIM_LEDGER_SRC)
UNIT_OBJ_test_sockdiag = tools/sockdiag.c tools/flatidx.c tools/bigmem.c
UNIT_OBJ_test_procfd = tools/procfd.c tools/reconcile.c tools/ledger_read.c tools/flatidx.c \
	tools/format.c tools/outbuf.c tools/bigmem.c
UNIT_OBJ_test_stats_model = tools/stats_model.c tools/sockdiag.c tools/flatidx.c tools/bigmem.c
UNIT_OBJ_test_prom = tools/prom.c tools/stats_model.c tools/sockdiag.c tools/flatidx.c \
	tools/format.c tools/bigmem.c tools/outbuf.c
# The table and JSON printers, with what they call (the lock's view reads
# /proc for a holder; the listeners made by the test have none).
UNIT_OBJ_test_stats_print = tools/stats_table.c tools/stats_json.c tools/lock_view.c \
	tools/stats_model.c tools/sockdiag.c tools/flatidx.c tools/format.c tools/outbuf.c \
	tools/bigmem.c shim/thread_state.c
UNIT_OBJ_test_shm_users = tools/shm_users.c
UNIT_OBJ_test_noshim = tools/noshim.c tools/procfd.c tools/flatidx.c tools/bigmem.c $(SEGMENT_SRC)
# The shim's ledger and listener table on a private mapping.
UNIT_OBJ_test_ledger = $(SHIM_LEDGER_SRC) tools/ring_reader.c $(SEGMENT_SRC)
UNIT_OBJ_test_listeners = shim/listeners.c shim/claim.c shim/thread_state.c shim/emit.c shim/ring.c \
	$(SEGMENT_SRC)
# The poll token on a listener of a private mapping: the test gives it
# the clock, the caller's tid and the doorbells.
UNIT_OBJ_test_accept_token = shim/accept_token.c shim/stall.c shim/listeners.c shim/claim.c \
	shim/thread_state.c $(SEGMENT_SRC)
UNIT_OBJ_test_shut_hits = tools/shut_hits.c
UNIT_OBJ_test_tw_model = tools/tw_model.c tools/flatidx.c
UNIT_OBJ_test_flatidx = tools/flatidx.c
UNIT_OBJ_test_kindex = tools/kindex.c tools/flatidx.c
UNIT_OBJ_test_conns_verdict = tools/conns_verdict.c tools/sockdiag.c tools/flatidx.c \
	tools/bigmem.c
UNIT_OBJ_test_closewait_verdict = tools/closewait_verdict.c tools/reconcile.c tools/procfd.c \
	tools/ledger_read.c tools/flatidx.c tools/format.c tools/outbuf.c tools/bigmem.c
# Sources a test program links besides its own (tests/progs/NAME.c), and
# libraries: cmocka only where a program uses it.
PROG_OBJ_stats_fixture = $(SEGMENT_SRC)
PROG_LIBS_wrapcheck = -lcmocka
PROG_LIBS_sigbuscheck = -lcmocka

# Every object's header dependencies are generated as it is compiled
# (-MMD; -MP: a header removed since breaks no build). The harnesses and
# benchmarks compiled in one step from several sources depend on all.
HEADERS = $(wildcard include/sockshim/*.h shim/*.h tools/*.h tests/progs/*.h)
DEPFLAGS = -MMD -MP

.PHONY: all deps test-deps bench-deps test unit integration asan tsan demo bench soak install \
	uninstall clean lint valgrind
.DELETE_ON_ERROR:

all: deps $(LIB) $(TOOL)

# uthash, cmocka and libdw (elfutils) come from Debian. As root we install
# them; otherwise we stop and say the exact command.
deps:
	@missing=""; \
	[ -f /usr/include/uthash.h ] || missing="$$missing uthash-dev"; \
	[ -f /usr/include/cmocka.h ] || missing="$$missing libcmocka-dev"; \
	[ -f /usr/include/elfutils/libdwfl.h ] || missing="$$missing libdw-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sockshim: installing$$missing"; \
	    (apt-get install -y $$missing || (apt-get update && apt-get install -y $$missing)) >/dev/null || exit 1; \
	  else \
	    echo "sockshim: missing$$missing; run: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

# What the integration tests run besides the build: real servers and
# clients from Debian, the tools the tests read the kernel with. As root,
# `make test` installs the missing ones first (as deps does); otherwise it
# says the exact command, and the tests that need them skip, saying why.
TEST_PACKAGES = python3 iproute2 procps util-linux curl socat nginx-light apache2 gunicorn \
	uwsgi uwsgi-plugin-python3 prometheus linux-perf nodejs systemd memcached puma php-fpm \
	strace

test-deps:
	@missing=""; \
	for p in $(TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sockshim: installing$$missing (for the tests)"; \
	    (apt-get install -y --no-install-recommends $$missing || \
	     (apt-get update && apt-get install -y --no-install-recommends $$missing)) >/dev/null || exit 1; \
	  else \
	    echo "sockshim: the tests want$$missing; run: sudo apt-get install -y$$missing" >&2; \
	  fi; \
	fi

$(BUILD)/obj/%.pic.o: %.c $(BUILD)/obj/%.pic.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(DEPFLAGS) -fPIC -fvisibility=hidden $(CFLAGS) $(CFLAGS_FILE) -c $< -o $@

# The signal wrappers run inside a sanitizer runtime's own start-up (it
# sets its handlers from its preinit), before it can take instrumented
# code: never instrumented (see the file's comment).
$(BUILD)/obj/shim/calls_signal.pic.o: CFLAGS_FILE = $(if $(SAN),-fno-sanitize=all)
$(BUILD)/obj/shim/sigwatch.pic.o: CFLAGS_FILE = $(if $(SAN),-fno-sanitize=all)

$(BUILD)/obj/%.o: %.c $(BUILD)/obj/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(DEPFLAGS) -DSOCKSHIM_LIBDIR='"$(LIBDIR)"' $(CFLAGS) $(CFLAGS_FILE) \
		-c $< -o $@

# The reclaim calls the shim's ledger (shim/ledger.h).
$(BUILD)/obj/tools/reclaim.o: CFLAGS_FILE = -Ishim

# Unit tests see the modules' private headers.
$(BUILD)/obj/tests/%.o: CFLAGS_FILE = -Ishim -Itools

# An object without its dependency file (made before it, or by hand) is
# made again: its headers are unknown. Named one by one, so that make
# does not take them for intermediates and ignore them when missing.
DEP_FILES = $(patsubst %.c,$(BUILD)/obj/%.d,$(sort $(SHIM_SRC) $(TOOL_SRC) $(UNIT_SRC) \
	$(PROG_SRC) $(EXAMPLE_SRC) $(wildcard tests/bench/*.c))) \
	$(SHIM_SRC:%.c=$(BUILD)/obj/%.pic.d)
$(DEP_FILES): ;
# Objects made on the way to a test program are kept: not made again on
# the next run (make would delete them as intermediates).
.SECONDARY: $(DEP_FILES:.d=.o)
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

$(LIB): $(SHIM_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_BASE) -Wl,-z,defs -Wl,-z,now -ldl $(LDFLAGS)

$(TOOL): $(TOOL_OBJ)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) -ldw -lelf $(LDFLAGS)

# The objects of sources $(1). (A function: a % in a pattern rule's
# prerequisites would be taken for the stem.)
objects_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $$(call objects_of,$$(UNIT_OBJ_test_$$*))
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) -lcmocka -ldl $(LDFLAGS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/progs/%.o $$(call objects_of,$$(PROG_OBJ_$$*))
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) $(PROG_LIBS_$*) $(LDFLAGS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) $(LDFLAGS)

$(BUILD)/bench/bench_calls: $(BUILD)/obj/tests/bench/bench_calls.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) $(LDFLAGS)

$(BUILD)/bench/bench_ring: tests/bench/bench_ring.c shim/ring.c $(SEGMENT_SRC) tools/ring_reader.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Ishim -Itools $(CFLAGS) -o $@ $(filter %.c,$^) $(LDFLAGS_BASE) $(LDFLAGS)

$(BUILD)/bench/bench_closewait: $(BUILD)/obj/tests/bench/bench_closewait.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) $(LDFLAGS)

$(BUILD)/bench/bench_tw_conns: $(BUILD)/obj/tests/bench/bench_tw_conns.o
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_BASE) $(LDFLAGS)

BENCH_BIN = $(BUILD)/bench/bench_calls $(BUILD)/bench/bench_ring $(BUILD)/bench/bench_closewait \
	$(BUILD)/bench/bench_tw_conns

# make unit T=NAME: one unit test (tests/unit/test_NAME.c, or test_NAME).
# make integration K="PATTERN ...": the integration tests whose names
# contain (or match) any PATTERN.
UNIT_RUN = $(if $(T),$(filter %/test_$(patsubst test_%,%,$(T)),$(UNIT_BIN)),$(UNIT_BIN))

unit: all $(UNIT_RUN)
	@[ -n "$(UNIT_RUN)" ] || { echo "sockshim: no unit test named $(T)" >&2; exit 2; }
	@fail=0; for t in $(UNIT_RUN); do $$t || fail=1; done; exit $$fail

integration: all test-deps $(PROG_BIN) $(EXAMPLE_BIN)
	$(PYTHON) tests/integration/run.py --build $(BUILD) $(foreach k,$(K),-k $(k))

test: unit integration

# Sanitizer builds, in $(BUILD)/asan and $(BUILD)/tsan: the unit tests and
# the C test programs, preloading the sanitized shim into programs that
# carry the same runtime.
asan tsan: SAN_BUILD = $(BUILD)/$@
asan: SAN_NAME = address
tsan: SAN_NAME = thread
asan tsan:
	$(MAKE) BUILD=$(SAN_BUILD) SAN=$(SAN_NAME) OPT=-O1 unit
	$(MAKE) BUILD=$(SAN_BUILD) SAN=$(SAN_NAME) OPT=-O1 all \
		$(PROG_SRC:tests/progs/%.c=$(SAN_BUILD)/tests/%) \
		$(EXAMPLE_SRC:examples/%.c=$(SAN_BUILD)/examples/%)
	$(PYTHON) tests/integration/run.py --build $(SAN_BUILD) --sanitizer $(SAN_NAME) $(foreach k,$(K),-k $(k))

# make valgrind: every unit test binary under memcheck, then the
# integration suite with its C programs under memcheck (K= selects among
# the integration tests). The unit tests get the options the integration
# harness gives its programs (tests/integration/lib.py, Context.wrap;
# keep the two alike): an error fails the run, forked children are not
# checked, leaks are summed up but fail nothing.
VALGRIND_UNIT = valgrind --quiet --error-exitcode=99 --trace-children=no \
	--child-silent-after-fork=yes --suppressions=tests/integration/valgrind.supp

valgrind: all test-deps $(UNIT_BIN) $(PROG_BIN) $(EXAMPLE_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	  $(VALGRIND_UNIT) $$t || { echo "sockshim: $$t failed under valgrind" >&2; fail=1; }; \
	done; exit $$fail
	$(PYTHON) tests/integration/run.py --build $(BUILD) --valgrind $(foreach k,$(K),-k $(k))

# ---- make fuzz: libFuzzer harnesses (tests/fuzz) for every reader of bytes
# another process wrote, and for the shim's configuration parser. Built with
# clang into $(BUILD)/fuzz, seeded from a real session (tests/fuzz/seeds.py,
# so the seeds always match layout.h), each run FUZZ_SECONDS, FUZZ_JOBS at a
# time (tests/fuzz/run.sh). The corpus grows in $(BUILD)/fuzz/corpus; a
# crash is kept in $(BUILD)/fuzz/crashes and fails the target. ----
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_DIR = $(BUILD)/fuzz
FUZZ_TARGETS = segment ring ledger listeners proc sockdiag config
FUZZ_BIN = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
# -fno-sanitize-recover: a UBSan finding is a crash libFuzzer keeps. The
# project's warnings stay errors, but clang's -Wsign-compare, which GCC does
# not apply in C, flags the kernel's own NLMSG_OK macro.
FUZZ_CFLAGS = -std=gnu11 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(WARN) -Wno-sign-compare -D_GNU_SOURCE -Iinclude -Ishim -Itools \
	-Itests/fuzz -pthread
# Every harness links the segment code; then the modules it reads through,
# as their unit tests link them where one does ($(sort) drops duplicates).
FUZZ_SEG = $(SEGMENT_SRC)
comma = ,
FUZZ_SRC_segment = tools/ring_reader.c tools/ledger_read.c tools/flatidx.c tools/stats_model.c \
	tools/sockdiag.c tools/format.c tools/outbuf.c tools/bigmem.c
FUZZ_SRC_ring = tools/ring_reader.c tools/format.c tools/outbuf.c tools/bigmem.c
FUZZ_SRC_ledger = $(filter-out $(SHIM_LEDGER_SRC),$(UNIT_OBJ_test_ledger_read))
FUZZ_SRC_listeners = $(UNIT_OBJ_test_prom)
FUZZ_SRC_proc = tools/procfd.c tools/flatidx.c tools/shm_users.c tools/bigmem.c
FUZZ_SRC_sockdiag = $(UNIT_OBJ_test_sockdiag)
FUZZ_SRC_config = $(UNIT_OBJ_test_config)

.PHONY: fuzz fuzz-build fuzz-deps

fuzz: all $(EXAMPLE_BIN) fuzz-build
	$(PYTHON) tests/fuzz/seeds.py --build $(BUILD) --seedcut $(FUZZ_DIR)/seedcut \
		--out $(FUZZ_DIR)/seeds
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BIN) $(FUZZ_DIR)/seedcut

# clang with libFuzzer's runtime (Debian: clang, libclang-rt-14-dev). As
# root we install them; otherwise we stop and say the exact command.
fuzz-deps:
	@mkdir -p $(FUZZ_DIR); \
	probe() { printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' | \
		$(FUZZ_CC) -x c -fsanitize=fuzzer -o $(FUZZ_DIR)/.probe - >/dev/null 2>&1; }; \
	if ! probe; then \
	  pkgs="clang libclang-rt-14-dev"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sockshim: installing $$pkgs (for make fuzz)"; \
	    (apt-get install -y $$pkgs || (apt-get update && apt-get install -y $$pkgs)) >/dev/null || exit 1; \
	    probe || { echo "sockshim: $(FUZZ_CC) still cannot build a libFuzzer harness" >&2; exit 1; }; \
	  else \
	    echo "sockshim: make fuzz needs clang with libFuzzer; run: sudo apt-get install -y $$pkgs" >&2; exit 1; \
	  fi; \
	fi; \
	rm -f $(FUZZ_DIR)/.probe

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/fuzz_util.o $$(FUZZ_SRC_$$*) \
		tests/fuzz/fuzz_util.h $(HEADERS) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_DIR)/fuzz_util.o $(sort $(FUZZ_SEG) $(FUZZ_SRC_$*)) \
		-ldl -lm

# The harnesses' checkers are sanitized but not instrumented for coverage:
# the fuzzer is to explore the readers, not the checkers.
$(FUZZ_DIR)/fuzz_util.o: tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h $(HEADERS) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(subst fuzzer$(comma),,$(FUZZ_CFLAGS)) -c -o $@ $<

$(FUZZ_DIR)/seedcut: tests/fuzz/seedcut.c $(FUZZ_SEG) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(FUZZ_SEG) $(LDFLAGS_BASE) $(LDFLAGS)
# ---- end of make fuzz ----

# Five minutes of nginx-light under wrk with the shim: errors, exact
# accept counts and the workers' anonymous memory (tests/bench/soak_nginx.py).
SOAK_SECONDS ?= 300

soak: all
	$(PYTHON) tests/bench/soak_nginx.py $(BUILD) $(SOAK_SECONDS)

demo: all $(EXAMPLE_BIN)
	@sh examples/demo.sh $(BUILD)

# What make bench runs besides the build: the servers, the load, the
# tracers it compares the shim with, callgrind and perf. As root, missing
# ones are installed first; otherwise the exact command is said, and the
# figures that need them print n/a with the reason.
BENCH_PACKAGES = python3 procps util-linux wrk nginx-light gunicorn uwsgi uwsgi-plugin-python3 \
	strace bpftrace valgrind linux-perf

bench-deps:
	@missing=""; \
	for p in $(BENCH_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "sockshim: installing$$missing (for make bench)"; \
	    (apt-get install -y --no-install-recommends $$missing || \
	     (apt-get update && apt-get install -y --no-install-recommends $$missing)) >/dev/null || exit 1; \
	  else \
	    echo "sockshim: make bench wants$$missing; run: sudo apt-get install -y$$missing" >&2; \
	  fi; \
	fi

bench: all bench-deps $(BENCH_BIN) $(EXAMPLE_BIN)
	@sh tests/bench/bench.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR)
	install -m 0755 $(TOOL) $(DESTDIR)$(BINDIR)/sockshim
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libsockshim.so
	install -m 0644 man/sockshim.1 $(DESTDIR)$(MANDIR)/sockshim.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sockshim $(DESTDIR)$(LIBDIR)/libsockshim.so \
	      $(DESTDIR)$(MANDIR)/sockshim.1

# Static analysis; .clang-tidy says which checks and why.
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr -Iinclude -Ishim -Itools -D_GNU_SOURCE shim tools tests/unit tests/progs
	clang-tidy --quiet $(sort $(SHIM_SRC) $(TOOL_SRC)) -- \
		-std=gnu11 -D_GNU_SOURCE -Iinclude -Ishim -Itools -pthread

clean:
	rm -rf $(BUILD)
