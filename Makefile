# tributary: the front door. `make help` lists the targets.
#
# SANITIZE=address|undefined|thread builds everything into build/<sanitizer>/
# with that sanitizer; the default build lives in build/release/.

SHELL    := /bin/bash
SANITIZE ?=
VARIANT  := $(if $(SANITIZE),$(SANITIZE),release)
BUILD    := build/$(VARIANT)
CC       := gcc

# Debian packages that the build, the tests, the demo and the benchmarks need.
DEB_PACKAGES := gcc make pkg-config librdkafka-dev libavro-dev libevent-dev \
                libopenblas-dev liblapacke-dev libyaml-dev libjansson-dev libcmocka-dev \
                kcat python3 python3-numpy python3-sklearn python3-avro python3-confluent-kafka python3-optuna clang-format \
                prometheus wrk podman runc podman-compose debootstrap cppcheck clang-tidy \
                openjdk-17-jre-headless maven

PKGS      := rdkafka avro-c libevent libevent_pthreads yaml-0.1 jansson openblas lapacke
# Recursive (=) so that pkg-config runs after `make deps` has installed things.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  := -std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wconversion -Wvla -Wformat=2 -D_GNU_SOURCE -I. -MMD -MP
LDFLAGS :=
LDLIBS  := -lpthread -lm

ifeq ($(SANITIZE),address)
  CFLAGS  += -fsanitize=address -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address
else ifeq ($(SANITIZE),undefined)
  CFLAGS  += -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=undefined
else ifeq ($(SANITIZE),thread)
  CFLAGS  += -fsanitize=thread
  LDFLAGS += -fsanitize=thread
else ifneq ($(SANITIZE),)
  $(error SANITIZE must be address, undefined or thread, not '$(SANITIZE)')
endif

# One static library per layer (see README "Architecture"); `make layers` checks that includes
# follow the same direction. The binary links them from the top down.
BASE_SRCS := $(wildcard service/base/*.c)
MODEL_SRCS := $(wildcard models/*.c)
CONN_SRCS := $(wildcard connectors/*/*.c)
SVC_SRCS  := $(filter-out service/cli/main.c,$(wildcard $(addsuffix /*.c,$(filter-out \
               service/base,$(wildcard service/*)))))
LIB_SRCS  := $(BASE_SRCS) $(MODEL_SRCS) $(CONN_SRCS) $(SVC_SRCS)
LIB_BASE  := $(BUILD)/libbase.a
LIB_MODELS := $(BUILD)/libmodels.a
LIB_CONN  := $(BUILD)/libconnectors.a
LIB_SVC   := $(BUILD)/libservice.a
LIBS      := $(LIB_SVC) $(LIB_CONN) $(LIB_MODELS) $(LIB_BASE)
BIN       := $(BUILD)/tributary

# Tests are grouped by the layer they test: the tests of models/ (and of the base) link against
# models and base only, so a dependency that runs upwards fails to link.
LOW_TESTS  := $(wildcard tests/unit/base/test_*.c tests/unit/models/test_*.c)
CONN_TESTS := $(wildcard tests/unit/connectors/test_*.c)
SVC_TESTS  := $(wildcard tests/unit/service/test_*.c)
INTG_SRCS  := $(wildcard tests/integration/test_*.c)
TEST_SRCS  := $(LOW_TESTS) $(CONN_TESTS) $(SVC_TESTS) $(INTG_SRCS)
TEST_BINS  := $(TEST_SRCS:%.c=$(BUILD)/%)
SUPPORT    := $(BUILD)/tests/support/support.o
E2E_TESTS := $(wildcard tests/e2e/test_*.sh)
# Fuzz targets: tests/fuzz/fuzz_NAME.c with its corpus in tests/fuzz/corpus/NAME/; each links
# tests/fuzz/harness.c in both its builds (libFuzzer's, and the replay that `check` runs).
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAYS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%-replay)
FUZZ_CORPUS_ROOT := -DFUZZ_CORPUS_ROOT='"$(abspath tests/fuzz/corpus)"'
FUZZ_SECONDS ?= 60
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)

# What make check runs, longest first (tests/run.sh runs them in parallel). Under
# SANITIZE=thread only the programs that start no Kafka client (see `make help`).
# KAFKA_RUNS are the programs that run a second time against a real Kafka cluster (tests/run.sh's
# kafka: entries), which check starts beside them (tests/kafka/with-cluster.sh).
KAFKA_RUNS   :=
STARTS_KAFKA := $(E2E_TESTS) $(INTG_SRCS:%.c=$(BUILD)/%) $(BUILD)/tests/unit/service/test_model_watch
CHECK_RUNS   := $(addprefix kafka:,$(KAFKA_RUNS)) $(E2E_TESTS) $(INTG_SRCS:%.c=$(BUILD)/%) \
                $(filter-out $(INTG_SRCS:%.c=$(BUILD)/%),$(TEST_BINS)) $(FUZZ_REPLAYS)
ifeq ($(SANITIZE),thread)
  CHECK_RUNS := $(filter-out $(STARTS_KAFKA) kafka:%,$(CHECK_RUNS))
endif

# Static analysis reads the production code; each file's verdict is kept until it or a header
# it includes changes (its object is rebuilt).
ANALYZE_SRCS  := $(LIB_SRCS) service/cli/main.c
TIDY_STAMPS   := $(ANALYZE_SRCS:%.c=build/analyze/%.tidy)

.PHONY: all deps test check layers analyze compile_commands.json demo bench fuzz format help clean image test-container

all: $(BIN) compile_commands.json

help:
	@echo "make deps        install the Debian packages (apt-get; no-op when present)"
	@echo "make all         build $(BIN)"
	@echo "make test        deps, build, then unit, integration and end-to-end tests"
	@echo "make demo        run the demo on the embedded broker (no Kafka needed)"
	@echo "make image       build the container image tributary:latest with podman"
	@echo "make test-container  the image end to end in containers (part of make test)"
	@echo "make bench       benchmarks with their peers, printing rates and ratios"
	@echo "make fuzz        libFuzzer on each tests/fuzz target for FUZZ_SECONDS (clang)"
	@echo "make layers      check that every #include follows the layers' direction"
	@echo "make analyze     cppcheck and clang-tidy (.clang-tidy) on the production code"
	@echo "make format      apply .clang-format to every C file"
	@echo "SANITIZE=address|undefined builds and checks everything with that sanitizer."
	@echo "SANITIZE=thread  builds everything, but make check runs only the test programs that"
	@echo "                 start no Kafka client: librdkafka 2.0.2 starts its threads with C11"
	@echo "                 thrd_create, which this gcc's ThreadSanitizer does not intercept, so"
	@echo "                 every program with a Kafka client crashes under it."

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(MAKE) --no-print-directory $(KAFKA_LIBS)

# Apache Kafka for the tests (tests/kafka/cluster.sh): the jars of tests/kafka/pom.xml, copied
# from Maven Central (cached in ~/.m2) into build/kafka/VERSION/libs; nothing when present.
KAFKA_VERSION := $(shell sed -n '/<artifactId>kafka_2.13</{n;s:.*<version>\(.*\)</version>.*:\1:p}' tests/kafka/pom.xml)
KAFKA_LIBS    := build/kafka/$(KAFKA_VERSION)/libs
$(KAFKA_LIBS): tests/kafka/pom.xml
	@echo "deps: Apache Kafka $(KAFKA_VERSION) from Maven Central"
	@rm -rf $@.tmp && mkdir -p $(@D)
	@mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(abspath $@.tmp) \
	  >$(@D)/deps.log 2>&1 || { tail -20 $(@D)/deps.log; exit 1; }
	@rm -rf $@ && mv $@.tmp $@

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIB_BASE): $(BASE_SRCS:%.c=$(BUILD)/%.o)
$(LIB_MODELS): $(MODEL_SRCS:%.c=$(BUILD)/%.o)
$(LIB_CONN): $(CONN_SRCS:%.c=$(BUILD)/%.o)
$(LIB_SVC): $(SVC_SRCS:%.c=$(BUILD)/%.o)
$(LIBS):
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(BUILD)/service/cli/main.o $(LIBS)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(PKG_LIBS) $(LDLIBS) -o $@

# Each test links the helpers it shares and the libraries of its layer and those below it;
# objects go before the libraries that they use.
$(LOW_TESTS:%.c=$(BUILD)/%): $(SUPPORT) $(LIB_MODELS) $(LIB_BASE)
$(CONN_TESTS:%.c=$(BUILD)/%): $(SUPPORT) $(LIB_CONN) $(LIB_MODELS) $(LIB_BASE)
$(SVC_TESTS:%.c=$(BUILD)/%): $(SUPPORT) $(BUILD)/tests/support/registry_support.o $(LIBS)
$(INTG_SRCS:%.c=$(BUILD)/%): $(SUPPORT) $(BUILD)/tests/support/registry_support.o \
  $(BUILD)/tests/support/kafka_support.o $(LIBS)
$(BENCH_BINS): $(LIBS)
$(BUILD)/tests/%: $(BUILD)/tests/%.o
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(PKG_LIBS) -lcmocka $(LDLIBS) -o $@

# A fuzz target built with a main that replays its corpus: part of `check`.
$(BUILD)/tests/fuzz/harness.o: CFLAGS += $(FUZZ_CORPUS_ROOT)
$(BUILD)/tests/fuzz/%-replay: tests/fuzz/%.c $(BUILD)/tests/fuzz/harness.o $(LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -DFUZZ_REPLAY_MAIN $< $(BUILD)/tests/fuzz/harness.o $(LIBS) \
	  $(LDFLAGS) $(PKG_LIBS) $(LDLIBS) -o $@

# `test` installs first, then re-enters make so pkg-config sees the packages.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory check
	$(if $(SANITIZE),,@$(MAKE) --no-print-directory test-container)

check: layers analyze $(BIN) $(TEST_BINS) $(FUZZ_REPLAYS)
	@TRIBUTARY_BIN=$(abspath $(BIN)) $(if $(filter kafka:%,$(CHECK_RUNS)),tests/kafka/with-cluster.sh) \
	  tests/run.sh $(BUILD)/test-logs $(CHECK_RUNS)
	$(if $(filter thread,$(SANITIZE)),@echo "SANITIZE=thread: skipped the programs that start a Kafka client (make help)")

# The compilation database of the release build, for clang-tidy and editors: every C file of the
# repository with the flags make gives it. Rewritten only when it changes.
compile_commands.json:
	@{ echo '['; sep=' '; \
	  for f in $(sort $(wildcard service/*/*.c connectors/*/*.c models/*.c tests/*/*.c tests/*/*/*.c)); do \
	    printf '%s{"directory": "%s", "file": "%s",\n  "command": "%s %s -c %s"}\n' \
	      "$$sep" "$(CURDIR)" "$$f" "$(CC)" "$(filter-out -MMD -MP,$(CFLAGS)) $(PKG_CFLAGS)" "$$f"; \
	    sep=','; \
	  done; echo ']'; } >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

# cppcheck over the production code, then clang-tidy file by file with .clang-tidy; both report
# file:line and fail on any finding. cppcheck reads no system headers, so it is told the libevent
# version that http_wiring.c's #if checks (the compiler checks the installed one).
analyze: compile_commands.json $(TIDY_STAMPS)
	@cppcheck --quiet --std=c11 -D_GNU_SOURCE -DLIBEVENT_VERSION_NUMBER=0x02010c00 -I. \
	  --inline-suppr --error-exitcode=1 \
	  --enable=warning,style,performance,portability \
	  --template='{file}:{line}: cppcheck {severity} ({id}): {message}' $(ANALYZE_SRCS)
	@echo "analyze: cppcheck and clang-tidy found nothing in $(words $(ANALYZE_SRCS)) files"

build/analyze/%.tidy: %.c $(BUILD)/%.o .clang-tidy | compile_commands.json
	@mkdir -p $(@D)
	@clang-tidy --quiet -p . $< >$@.log 2>&1 || { grep -v '^[0-9]* warnings\? generated' $@.log; exit 1; }
	@touch $@

# The container image, with podman: docker/setup-podman.sh installs and configures podman and,
# where no registry can be reached, makes debian:bookworm-slim with debootstrap. The docker
# format keeps the Dockerfile's HEALTHCHECK (OCI images have none).
image:
	@bash docker/setup-podman.sh
	podman build --format docker -f docker/Dockerfile -t tributary:latest .

# The image end to end (it runs `make image` itself), then its timings and any SKIP. Not part
# of `check`, so that sanitizer runs build no images; `test` runs it after `check`.
test-container:
	@tests/run.sh $(BUILD)/test-logs tests/container/test_container.sh; status=$$?; \
	  grep -h '^# \(SKIP\|timing\)' $(BUILD)/test-logs/test_container.sh.log; exit $$status

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(BIN)
	@mkdir -p build/demo
	$(BIN) demo --config config/demo.yaml

bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(BIN) $(BENCH_BINS)
	@TRIBUTARY_BIN=$(abspath $(BIN)) BENCH_DIR=$(abspath $(BUILD)/tests/bench) tests/bench/run.sh

# libFuzzer needs clang. The library is compiled once into build/fuzz/, instrumented for
# coverage and with ASan and UBSan (any report is fatal, so that libFuzzer keeps the input), and
# each target links it. Each target runs for FUZZ_SECONDS from its checked-in corpus, keeping
# what it finds in build/fuzz/corpus-NAME/ and a crashing input in build/fuzz/; of its log
# (build/fuzz/NAME.log) the final counts are shown, or the last 40 lines when it fails.
FUZZ_DIR    := build/fuzz
FUZZ_CFLAGS := -std=c17 -g -O1 -D_GNU_SOURCE -I. -fsanitize=address,undefined \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIB    := $(FUZZ_DIR)/libtributary.a
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $< (fuzz)")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_LIB): $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/obj/tests/fuzz/harness.o \
  $(FUZZ_LIB)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(PKG_LIBS) $(LDLIBS) -o $@

fuzz:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) clang"
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@$(foreach n,$(FUZZ_NAMES),mkdir -p $(FUZZ_DIR)/corpus-$(n) && \
	  echo "== fuzz_$(n) for $(FUZZ_SECONDS) s" && \
	  if $(FUZZ_DIR)/fuzz_$(n) -max_total_time=$(FUZZ_SECONDS) \
	       -artifact_prefix=$(FUZZ_DIR)/$(n)- $(FUZZ_DIR)/corpus-$(n) tests/fuzz/corpus/$(n) \
	       >$(FUZZ_DIR)/$(n).log 2>&1; \
	  then grep DONE $(FUZZ_DIR)/$(n).log; else tail -40 $(FUZZ_DIR)/$(n).log; exit 1; fi && ) true

# Fails with file:line for every #include that runs against the layers' direction.
layers:
	@tests/layers.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

.SECONDARY:
-include $(shell find $(BUILD) $(FUZZ_DIR) -name '*.d' 2>/dev/null)
