# mod_wsbridge — build, test, run. See README.md.
SHELL := /bin/bash
MAKEFLAGS += -j$(shell nproc)
.DEFAULT_GOAL := all

BUILD   ?= build
PORT    ?= 8080
MPM     ?= event
CHILDREN ?= 2

APXS    := $(shell command -v apxs 2>/dev/null || echo /usr/bin/apxs)
CXX     ?= g++
CXXSTD  := -std=c++17
WARN    := -Wall -Wextra -Werror
INC     := -Isrc

# Flags that apxs reports for this Apache (include dirs, defines); the
# C-only warning flags are dropped, C++ gets its own. These are recursive
# (=) on purpose: they are expanded when a compile starts, and every compile
# waits for `deps` (order-only prerequisite), so on a fresh machine apxs and
# apr-1-config exist by then.
APXS_INC  = $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
APR_INC   = $(shell apr-1-config --includes 2>/dev/null)
APU_INC   = $(shell apu-1-config --includes 2>/dev/null)
APXS_DEFS = $(shell $(APXS) -q EXTRA_CPPFLAGS 2>/dev/null)
MOD_CXXFLAGS = $(CXXSTD) $(WARN) -O2 -g -fPIC -fvisibility=hidden -pthread \
               $(INC) $(addprefix -I,$(APXS_INC)) $(APR_INC) $(APU_INC) $(APXS_DEFS)
LIBS    := -lssl -lcrypto -lhiredis -lz -pthread

CORE_SRC := $(shell find src -name '*.cpp' -not -path 'src/apache/*' | sort)
APACHE_SRC := $(shell find src/apache -name '*.cpp' 2>/dev/null | sort)
MOD_SRC  := mod_wsbridge.cpp $(CORE_SRC) $(APACHE_SRC)
MOD_OBJ  := $(patsubst %.cpp,$(BUILD)/mod/%.o,$(MOD_SRC))
HEADERS  := $(shell find src -name '*.h')

UNIT_SRC := $(sort $(wildcard tests/unit/*.cpp))
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
UNIT_CXXFLAGS = $(CXXSTD) $(WARN) -O1 -g -pthread $(INC) -Itests/unit
CPPUTEST_LIBS := -lCppUTest -lCppUTestExt

.PHONY: loadgen all module deps unit unit-tsan test test-unit test-integration test-browser \
        fuzz run stop reload install bench bench-compare bench-backend bench-pusher clean deb test-deb test-fresh \
        chaos

all: module

# Every target that compiles or runs something depends on this, and every
# compile waits for it (order-only), so the first `make ...` on a bare
# machine installs before it reads apxs. Non-root with packages missing: a
# message naming them, and make stops.
deps:
	@scripts/install-deps.sh

module: $(BUILD)/mod_wsbridge.so

VERSION := $(shell cat VERSION)
MOD_CXXFLAGS += -DWSB_VERSION='"$(VERSION)"'

$(BUILD)/mod/%.o: %.cpp | deps
	@mkdir -p $(dir $@)
	$(CXX) $(MOD_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/mod_wsbridge.so: $(MOD_OBJ) | deps
	$(CXX) -shared -o $@ $(MOD_OBJ) $(LIBS) -static-libstdc++ -static-libgcc

# Unit tests: the core without Apache, under ASan+UBSan, and under TSan for
# the concurrent parts (queues, bus, hub).
UNIT_SRCS := $(CORE_SRC) $(UNIT_SRC)
ASAN_OBJ := $(patsubst %.cpp,$(BUILD)/asan/%.o,$(UNIT_SRCS))
TSAN_OBJ := $(patsubst %.cpp,$(BUILD)/tsan/%.o,$(UNIT_SRCS))

$(BUILD)/asan/%.o: %.cpp | deps
	@mkdir -p $(dir $@)
	$(CXX) $(UNIT_CXXFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tsan/%.o: %.cpp | deps
	@mkdir -p $(dir $@)
	$(CXX) $(UNIT_CXXFLAGS) $(TSAN_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/unit_tests: $(ASAN_OBJ)
	$(CXX) $(SAN_FLAGS) $(ASAN_OBJ) -o $@ $(CPPUTEST_LIBS) $(LIBS)

$(BUILD)/unit_tests_tsan: $(TSAN_OBJ)
	$(CXX) $(TSAN_FLAGS) $(TSAN_OBJ) -o $@ $(CPPUTEST_LIBS) $(LIBS)

unit: $(BUILD)/unit_tests
unit-tsan: $(BUILD)/unit_tests_tsan

test: deps
	@scripts/run-tests.sh

test-unit: $(BUILD)/unit_tests $(BUILD)/unit_tests_tsan
	@ONLY=unit scripts/run-tests.sh

test-integration: deps module
	@ONLY=integration scripts/run-tests.sh

test-browser: deps module
	@ONLY=browser scripts/run-tests.sh

# The chaos run (docs/reliability.md): 200 chat clients while Apache is
# restarted, its children killed and Redis restarted; CHAOS_TIME seconds of
# faults in all, split between the shm run and the Redis run. The result
# table goes into docs/reliability.md (CHAOS_DOC= to leave it alone).
CHAOS_TIME ?= 600
CHAOS_DOC ?= docs/reliability.md
chaos: deps module
	@out=$$(/usr/bin/python3 tests/chaos/test_check.py) || { echo "$$out"; exit 1; }; echo "checker self-test: $${out##*$$'\n'}"
	@/usr/bin/python3 tests/chaos/chaos.py --time $(CHAOS_TIME) $(if $(CHAOS_DOC),--doc $(CHAOS_DOC))

FUZZ_TIME ?= 60
FUZZ_PARALLEL ?= 0
fuzz: deps
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_PARALLEL=$(FUZZ_PARALLEL) scripts/fuzz.sh

# PHP=1: a private php-fpm pool serves htdocs/*.php (the /ws/php demo);
# EXTRA_CONF=FILE is Included after the generated config; HTTPS_PORT=N adds
# an https listener (self-signed certificate) with HTTP/2 and H2WebSockets on.
EXTRA_CONF ?=
HTTPS_PORT ?=
run: deps module
	@PORT=$(PORT) MPM=$(MPM) CHILDREN=$(CHILDREN) PHP=1 EXTRA_CONF="$(if $(EXTRA_CONF),$(abspath $(EXTRA_CONF)))" \
	  $(if $(HTTPS_PORT),SSL_PORT=$(HTTPS_PORT) H2=1) scripts/instance.sh start $(abspath $(BUILD)/run)

stop:
	@PHP=1 scripts/instance.sh stop $(abspath $(BUILD)/run)

reload:
	@scripts/instance.sh reload $(abspath $(BUILD)/run)

install: deps module
	$(APXS) -i -n wsbridge $(BUILD)/mod_wsbridge.so
	install -m 644 conf/wsbridge.load /etc/apache2/mods-available/wsbridge.load
	install -m 644 conf/wsbridge.conf /etc/apache2/mods-available/wsbridge.conf
	@echo "Installed. Enable with: a2enmod wsbridge && systemctl reload apache2"

bench: deps module
	@scripts/bench.sh

bench-compare: deps module
	@scripts/bench-compare.sh

# Echo through the same PHP backend: the in-process bridge vs Pushpin.
bench-backend: deps module loadgen
	@scripts/bench-backend.sh

# The Pusher endpoint vs soketi: fan-out, client events, presence.
bench-pusher: deps module
	@scripts/bench-pusher.sh

$(BUILD)/loadgen: $(wildcard bench/*.cpp bench/*.h) src/protocol/frame_encoder.cpp src/protocol/masking.cpp | deps
	@mkdir -p $(BUILD)
	$(CXX) $(CXXSTD) $(WARN) -O2 -Isrc -Ibench $(filter %.cpp,$^) -o $@ -lssl -lcrypto -lpthread

loadgen: $(BUILD)/loadgen

-include $(shell find $(BUILD)/mod $(BUILD)/asan $(BUILD)/tsan -name '*.d' -type f 2>/dev/null)

clean:
	rm -rf $(BUILD)

# Debian package and install proofs (docs/install.md).
# deb: build/deb/libapache2-mod-wsbridge_$(VERSION)_<arch>.deb, built out of
# tree (build/deb/src) with debhelper + dh_apache2, then checked by lintian.
# test-deb: install that package here, run it, purge it, nothing left over.
# test-fresh: `make run` on a fresh Debian 12 root (mmdebstrap + chroot).
deb:
	@scripts/install-deps.sh base deb
	@BUILD=$(BUILD) debian/build-deb.sh

test-deb:
	@scripts/install-deps.sh base deb
	@BUILD=$(BUILD) scripts/test-deb.sh

test-fresh:
	@scripts/install-deps.sh fresh
	@scripts/test-fresh.sh
