# PeerCache: one build for everything.
#
#   make             build/peercache, build/peercache-ctl and the unit-test binaries
#   make test        build, then run every unit suite, the integration tests
#                    and the fuzz targets (bounded); non-zero on any failure
#   make demo        start the engine on the embedded default, show it, stop it
#   make ASAN=1 ...  the same with AddressSanitizer + UBSan
#   make format      clang-format the tree (format-check: fail on any difference)
#   make lint        clang-tidy (.clang-tidy) and cppcheck over the sources
#
# Every dependency is found with pkg-config; when one is missing,
# scripts/install-deps.sh installs it (Debian, apt-get) before anything builds.

PKGS := libdpdk libibverbs libmlx5 libconfig cunit liburing libsodium

NO_DEPS_GOALS := clean format format-check help
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && command -v clang >/dev/null && command -v llvm-symbolizer >/dev/null && command -v python3 >/dev/null && echo ok),ok)
$(info make: some dependencies are missing; running scripts/install-deps.sh)
DEPS_RC := $(shell bash scripts/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/install-deps.sh failed (exit $(DEPS_RC)))
endif
endif
endif

BUILD := build
CC ?= gcc
FUZZ_CC := clang
PYTHON := python3

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-address-of-packed-member
OPT := -O2 -g
SAN :=
ifeq ($(ASAN),1)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
INCLUDES := -I. -Icommon -Iconfig -Ilcore -Iengine -Icontrol -Imempool -Iverbs -Iclient

CFLAGS := -std=gnu11 $(OPT) $(WARN) $(SAN) $(INCLUDES) $(DEP_CFLAGS) \
	-D_GNU_SOURCE -DALLOW_EXPERIMENTAL_API -MMD -MP
LDFLAGS := $(SAN)
LDLIBS := $(DEP_LIBS) -lpthread -lm

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CFLAGS += -DPC_VERSION='"$(VERSION)"' -DPC_GIT_REV='"$(GIT_REV)"'

# Library sources: every module except the engine's main().
LIB_SRCS := $(wildcard common/*.c config/*.c mempool/*.c verbs/*.c lcore/*.c control/*.c) \
	$(filter-out engine/main.c,$(wildcard engine/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
ENGINE_OBJS := $(BUILD)/obj/engine/main.o

UT_SRCS := $(wildcard tests/unit/*/*_ut.c)
UT_BINS := $(UT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRCS := $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20

.PHONY: all test unit integration fuzz demo clean format format-check lint help install-deps
.DEFAULT_GOAL := all

all: $(BUILD)/peercache $(BUILD)/peercache-ctl $(UT_BINS)

# Rebuild everything when the flags change (e.g. switching ASAN=1 on or off).
$(BUILD)/.cflags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:

# V=1 shows the full command lines.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libpcengine.a: $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/peercache: $(ENGINE_OBJS) $(BUILD)/libpcengine.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(ENGINE_OBJS) $(BUILD)/libpcengine.a $(LDLIBS)

# The operator's tool: libc only (no DPDK, no engine library).
$(BUILD)/peercache-ctl: tools/peercache-ctl.c common/pc_admin_proto.h common/pc_session_proto.h \
		$(BUILD)/.cflags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(CFLAGS) -MF $@.d $(LDFLAGS) -o $@ $<

# The admin test runs peercache-ctl against its in-process engine.
$(BUILD)/tests/engine/admin_ut: $(BUILD)/peercache-ctl

# One CUnit binary per source file; a test may #include the .c under test,
# in which case the archive's copy is simply not pulled in.
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpcengine.a $(BUILD)/.cflags tests/mock.h tests/ut.h \
		tests/helpers.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(CFLAGS) -Itests -MF $@.d $(LDFLAGS) -o $@ $< $(BUILD)/libpcengine.a $(LDLIBS) -lcunit

# libFuzzer targets: clang, ASan + UBSan, the decoder sources linked directly.
# Each target tests/fuzz/NAME_fuzz.c names what it links in FUZZ_SRCS_NAME and
# FUZZ_PKGS_NAME (pkg-config packages); the decoders must not need DPDK.
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined $(INCLUDES) -Itests \
	-D_GNU_SOURCE
FUZZ_SRCS_config := config/config.c
FUZZ_PKGS_config := libconfig
FUZZ_SRCS_size := config/config.c
FUZZ_PKGS_size := libconfig
FUZZ_SRCS_auth := control/auth.c
FUZZ_PKGS_auth := libsodium
FUZZ_SRCS_page := mempool/page.c
FUZZ_PKGS_page := libsodium libdpdk
FUZZ_SRCS_session := engine/session_proto.c
FUZZ_PKGS_session :=
FUZZ_SRCS_frame := control/frame.c verbs/qp_proto.c
FUZZ_PKGS_frame :=
FUZZ_SRCS_admin := engine/admin_proto.c
FUZZ_PKGS_admin :=
FUZZ_SRCS_qp := verbs/qp_proto.c
FUZZ_PKGS_qp :=
FUZZ_SRCS_data := verbs/data_proto.c
FUZZ_PKGS_data :=

.SECONDEXPANSION:
$(BUILD)/fuzz/%_fuzz: tests/fuzz/%_fuzz.c tests/helpers.h $$(FUZZ_SRCS_$$*) $$(wildcard $$(dir $$(FUZZ_SRCS_$$*))*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags $(FUZZ_PKGS_$*) 2>/dev/null) \
		-o $@ $< $(FUZZ_SRCS_$*) $(shell pkg-config --libs $(FUZZ_PKGS_$*) 2>/dev/null)

test: all $(FUZZ_BINS)
	@PEERCACHE_BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) PYTHON=$(PYTHON) \
		tests/run.sh all

unit: all
	@PEERCACHE_BUILD=$(BUILD) tests/run.sh unit

integration: all
	@PEERCACHE_BUILD=$(BUILD) PYTHON=$(PYTHON) tests/run.sh integration

fuzz: $(FUZZ_BINS)
	@PEERCACHE_BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh fuzz

demo: all
	@PEERCACHE_BUILD=$(BUILD) scripts/demo.sh

install-deps:
	scripts/install-deps.sh

SRC_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
LINT_SRCS := $(LIB_SRCS) engine/main.c client/peercache.c tools/peercache-ctl.c \
	bench/peercache-bench.c bench/rdma.c bench/redis.c bench/report.c bench/series.c

format:
	clang-format -i $(SRC_FILES)

format-check:
	clang-format --dry-run --Werror $(SRC_FILES)

# clang-tidy with .clang-tidy's bug-finding checks, then cppcheck; both fail on any finding.
lint: $(BUILD)/.cflags
	clang-tidy --quiet $(LINT_SRCS) -- $(CFLAGS)
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
		--enable=warning,performance,portability --suppress=missingIncludeSystem \
		-D__x86_64__ -DPC_VERSION='"lint"' -DPC_GIT_REV='"lint"' \
		-Icommon -Iconfig -Ilcore -Iengine -Icontrol -Imempool -Iverbs -Iclient $(LINT_SRCS)

clean:
	rm -rf $(BUILD)

help:
	@sed -n '1,12p' Makefile

# Module fragments: the client library and the integration-test tools.
include $(wildcard client/client.mk tests/integration/integration.mk)

-include $(LIB_OBJS:.o=.d) $(ENGINE_OBJS:.o=.d) $(UT_BINS:=.d) $(BUILD)/peercache-ctl.d

# The perf lab (issue 7): not part of all or test. Starts its own engines and
# redis-server on loopback; bench/results/latest.{json,md} and plots/ are its output.
# scripts/install-deps.sh --bench adds redis-server and gnuplot-nox (hiredis, which
# make lint needs for the bench too, is in the base list); make bench runs it first.
BENCH := $(BUILD)/peercache-bench
BENCH_SRCS := bench/peercache-bench.c bench/rdma.c bench/redis.c bench/report.c bench/series.c
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
# Expanded when the link runs, after bench-deps has installed hiredis.
BENCH_LIBS = $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)
# As root, the engines get hugepages for the run (nr_hugepages is put back after), as
# on a production node; `make bench BENCH_HUGE=` measures plain 4 KiB pages instead.
BENCH_HUGE ?= --reserve-hugepages
BENCH_ARGS := --json bench/results/latest.json --markdown bench/results/latest.md \
	--plot bench/results/plots $(BENCH_HUGE)
.PHONY: bench bench-deps bench-hiredis
bench-deps:
	@bash scripts/install-deps.sh --bench
$(BUILD)/obj/bench/%.o: bench/%.c bench/bench.h $(BUILD)/.cflags | bench-deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BENCH): $(BENCH_OBJS) $(CLIENT_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(BENCH_OBJS) -L$(BUILD) -lpeercache \
		$(shell pkg-config --libs libdpdk libibverbs) $(BENCH_LIBS) -Wl,-rpath,'$$ORIGIN'
bench: $(BUILD)/peercache $(BUILD)/peercache-ctl $(BENCH) | bench-deps
	$(BENCH) all $(BENCH_ARGS)
# make lint reads the bench, which includes hiredis's header: a machine whose packages
# predate libhiredis-dev in the base list gets it here.
lint: | bench-hiredis
bench-hiredis:
	@pkg-config --exists hiredis || bash scripts/install-deps.sh
-include $(BENCH_OBJS:.o=.d)
