# ngx_http_asyncx_module: build, demo and tests against Debian 12's nginx.
#
#   make deps    install the Debian packages everything below needs
#   make         build build/nginx/objs/ngx_http_asyncx_module.so
#   make run     serve the demo on 127.0.0.1:$(PORT) in the foreground
#   make test    unit tests + every t/*.t suite (+ the browser test), then
#                the same suite against nginx built with ASan/UBSan
#   make test-fast   the same without the sanitizer pass (about 1 minute)

SHELL        := /bin/bash
BUILD        ?= build
PORT         ?= 8000
NGINX        ?= /usr/sbin/nginx
NGINX_SRC    ?= /usr/share/nginx/src
TEST_PORT    ?= 1984
PROVE_FLAGS  ?=

ROOT         := $(CURDIR)
NGX_BUILD    := $(BUILD)/nginx
MODULE_SO    := $(NGX_BUILD)/objs/ngx_http_asyncx_module.so
MODULE_SRCS  := ngx_http_asyncx_module.c $(wildcard src/*.c src/*.h)
DEMO_PREFIX  := $(BUILD)/demo

# Everything the build, the demo, the tests and the benchmarks use.
DEB_PACKAGES := nginx nginx-dev libcjson-dev libssl-dev libpcre2-dev \
                gcc make pkg-config libcmocka-dev perl libtest-base-perl \
                libtext-diff-perl libwww-perl libhttp-message-perl \
                liburi-perl libtest-longstring-perl libjson-pp-perl \
                curl jq wrk chromium

.PHONY: all deps build run test test-fast unit test-nginx test-browser clean distclean

all: build

deps: $(BUILD)/.deps

# Idempotent: only calls apt-get when a package is missing.
$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    if [ "$$(id -u)" != 0 ]; then echo "deps: run as root" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

build: $(MODULE_SO)

# configure runs once per `config` change; afterwards `make modules` is
# incremental and recompiles only the module sources that changed.
$(NGX_BUILD)/.configured: config | $(BUILD)/.deps
	rm -rf $(NGX_BUILD) && mkdir -p $(NGX_BUILD)
	cp -a $(NGINX_SRC)/. $(NGX_BUILD)/
	cd $(NGX_BUILD) && source ./conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="-g -O2 -fstack-protector-strong -fPIC -D_FORTIFY_SOURCE=2 $(EXTRA_CC_OPT)" \
	    --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC $(EXTRA_LD_OPT)" \
	    --add-dynamic-module=$(ROOT) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }
	@# the stamp, not objs/Makefile: an interrupted configure reruns
	touch $@

$(MODULE_SO): $(NGX_BUILD)/.configured $(MODULE_SRCS) config
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules

run: build
	@ROOT=$(ROOT) PORT=$(PORT) NGINX_BIN=$(NGINX) MODULE_SO=$(ROOT)/$(MODULE_SO) \
	    PREFIX=$(ROOT)/$(DEMO_PREFIX) ./docs/examples/run-demo.sh

# Pure-logic unit tests (cmocka) compiled against the nginx headers.
UNIT_CFLAGS := -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter \
               -I$(NGX_BUILD)/src/core -I$(NGX_BUILD)/src/event \
               -I$(NGX_BUILD)/src/event/modules -I$(NGX_BUILD)/src/os/unix \
               -I$(NGX_BUILD)/src/http -I$(NGX_BUILD)/src/http/modules \
               -I$(NGX_BUILD)/src/http/v2 -I$(NGX_BUILD)/objs -Isrc
UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/test_*.c))

# The pure-logic sources: they use nginx's types and macros but call no
# function from nginx's .c files, so they link without an nginx binary.
PURE_SRCS   := src/ngx_http_asyncx_util.c src/ngx_http_asyncx_dataset.c src/ngx_http_asyncx_offload_util.c \
               src/ngx_http_asyncx_pipeline_util.c src/ngx_http_asyncx_sse_kernel.c \
               src/ngx_http_asyncx_limit_bucket.c src/ngx_http_asyncx_sse_event.c \
               src/ngx_http_asyncx_ndjson.c

$(BUILD)/unit/%: t/unit/%.c $(PURE_SRCS) $(wildcard src/*.h) $(NGX_BUILD)/.configured
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) -lcmocka -lm

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "unit: $$t"; $$t; done

test-nginx: build
	cd $(ROOT) && TEST_NGINX_BINARY=$(NGINX) \
	    TEST_NGINX_LOAD_MODULES=$(ROOT)/$(MODULE_SO) \
	    TEST_NGINX_PORT=$(TEST_PORT) TEST_NGINX_SERVROOT=$(ROOT)/t/servroot \
	    prove -I t/lib $(PROVE_FLAGS) -r t/

# CI runs `make test` (.ci/run), so the sanitizer pass is part of it: the
# ASan build of nginx takes about a minute, once, the suite under it
# about 1.5 minutes.
test: deps build unit test-nginx test-asan

test-fast: deps build unit test-nginx

clean:
	rm -rf $(NGX_BUILD)/objs/addon $(MODULE_SO) $(BUILD)/unit \
	    $(ASAN_SRC)/objs/addon $(ASAN_SO) $(VG_SRC)/objs/addon $(VG_SO)

distclean:
	rm -rf $(BUILD) t/servroot*

# --- sanitizers (issue 7, first part) --------------------------------
# nginx itself and the module built with AddressSanitizer and UBSan from
# Debian's nginx source package (nginx-dev ships headers only), then the
# whole Test::Nginx suite against that binary.  Any sanitizer report
# fails the run.

comma        := ,
ASAN_DIR     := $(BUILD)/asan
ASAN_SRC     := $(ASAN_DIR)/nginx-1.22.1
ASAN_NGINX   := $(ASAN_SRC)/objs/nginx
ASAN_SO      := $(ASAN_SRC)/objs/ngx_http_asyncx_module.so
ASAN_APT     := -o Dir::Etc::SourceList=$(ROOT)/$(ASAN_DIR)/apt/empty.list \
                -o Dir::Etc::SourceParts=$(ROOT)/$(ASAN_DIR)/apt/parts \
                -o Dir::State::Lists=$(ROOT)/$(ASAN_DIR)/apt/lists

.PHONY: test-asan

$(ASAN_DIR)/.source: | $(BUILD)/.deps
	mkdir -p $(ASAN_DIR)/apt/parts $(ASAN_DIR)/apt/lists/partial
	: > $(ASAN_DIR)/apt/empty.list
	@# a private deb-src list: the system's apt configuration is untouched
	sed 's/^Types: deb$$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
	    > $(ASAN_DIR)/apt/parts/src.sources
	apt-get $(ASAN_APT) update -qq
	@# the security suite's .dsc may be missing; the orig tarball is enough
	cd $(ASAN_DIR) && { apt-get $(ASAN_APT) source --download-only nginx \
	    > apt-source.log 2>&1 || true; }
	test -f $(ASAN_DIR)/nginx_1.22.1.orig.tar.gz
	cd $(ASAN_DIR) && rm -rf nginx-1.22.1 && tar xzf nginx_1.22.1.orig.tar.gz
	touch $@

# $(call configure_nginx,<source dir>,<cc opts>,<ld opts>): the whole
# nginx with Debian's configure flags and the module
define configure_nginx
	cd $(1) && source $(NGINX_SRC)/conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(2)" --with-ld-opt="$(3)" \
	    --add-dynamic-module=$(ROOT) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }
	touch $@
endef

$(ASAN_DIR)/.configured: $(ASAN_DIR)/.source config
	$(call configure_nginx,$(ASAN_SRC),-g -O1 -fno-omit-frame-pointer \
	    -fsanitize=address$(comma)undefined -DNGX_DEBUG_PALLOC=1,-fsanitize=address$(comma)undefined)

$(ASAN_NGINX): $(ASAN_DIR)/.configured $(MODULE_SRCS)
	$(MAKE) -s -C $(ASAN_SRC) -f objs/Makefile -j2 binary modules

test-asan: $(ASAN_NGINX)
	rm -rf $(ASAN_DIR)/reports $(ASAN_DIR)/error.log && mkdir -p $(ASAN_DIR)/reports
	@# the workers' reports go to their stderr, which nginx points at
	@# error.log: the runner appends every block's error.log to one file
	cd $(ROOT) && TEST_NGINX_BINARY=$(ROOT)/$(ASAN_NGINX) \
	    TEST_NGINX_ERROR_LOG=$(ROOT)/$(ASAN_DIR)/error.log \
	    TEST_NGINX_LOAD_MODULES=$(ROOT)/$(ASAN_SO) \
	    TEST_NGINX_PORT=$(TEST_PORT) TEST_NGINX_SERVROOT=$(ROOT)/t/servroot \
	    TEST_NGINX_TIMEOUT=10 \
	    ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=0:log_path=$(ROOT)/$(ASAN_DIR)/reports/asan \
	    UBSAN_OPTIONS=print_stacktrace=1:suppressions=$(ROOT)/t/ubsan.supp:log_path=$(ROOT)/$(ASAN_DIR)/reports/ubsan \
	    prove -I t/lib $(PROVE_FLAGS) -r t/ 2>&1 | tee $(ASAN_DIR)/prove.log; \
	rc=$${PIPESTATUS[0]}; \
	if ls $(ASAN_DIR)/reports/* >/dev/null 2>&1 \
	   || grep -q 'runtime error:\|AddressSanitizer\|LeakSanitizer' \
	          $(ASAN_DIR)/prove.log $(ASAN_DIR)/error.log; then \
	    echo "test-asan: sanitizer reports:"; \
	    head -50 $(ASAN_DIR)/reports/* 2>/dev/null; \
	    grep -h -A10 'runtime error:\|AddressSanitizer\|LeakSanitizer' \
	        $(ASAN_DIR)/prove.log $(ASAN_DIR)/error.log | head -60; \
	    exit 1; \
	fi; \
	echo "test-asan: no sanitizer report in $(ASAN_DIR)/error.log" \
	     "($$(wc -l < $(ASAN_DIR)/error.log) lines) or the suite's output"; \
	exit $$rc

# --- fuzzing (issue 7, second part) ------------------------------------
# libFuzzer targets (clang, Debian's libclang-rt-14-dev) over every pure
# parser that sees client bytes; each runs FUZZ_SECONDS.  A crash leaves
# its input in build/fuzz/ and fails the run.

FUZZ_SECONDS ?= 20
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined $(filter -I%,$(UNIT_CFLAGS))

.PHONY: fuzz deps-fuzz

deps-fuzz: | $(BUILD)/.deps
	@for p in clang libclang-rt-14-dev; do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; \
	done

$(BUILD)/fuzz/%: fuzz/%.c fuzz/fuzz_common.h $(PURE_SRCS) $(NGX_BUILD)/.configured | deps-fuzz
	@mkdir -p $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(PURE_SRCS)

# the CPU handlers' task functions with stand-ins for their loop-side
# helpers (see the file): request bodies through the real code
$(BUILD)/fuzz/fuzz_handlers: fuzz/fuzz_handlers.c fuzz/fuzz_common.h $(PURE_SRCS) \
        src/ngx_http_asyncx_offload_cpu.c $(NGX_BUILD)/.configured | deps-fuzz
	@mkdir -p $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< src/ngx_http_asyncx_offload_cpu.c \
	    $(PURE_SRCS) -lcjson -lcrypto -lpcre2-8

fuzz: $(FUZZ_TARGETS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $$t.corpus; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    if ! (cd $(BUILD)/fuzz && ./$$(basename $$t) \
	          -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	          $$(basename $$t).corpus > $$(basename $$t).log 2>&1); then \
	        tail -40 $$t.log; echo "fuzz: $$t crashed"; exit 1; \
	    fi; \
	    grep -E 'stat::number_of_executed_runs|stat::new_units_added' $$t.log; \
	done

# --- valgrind (issue 7) -------------------------------------------------
# The suite under memcheck (upstream's TEST_NGINX_USE_VALGRIND convention,
# implemented by t/lib): fails on invalid accesses and on definite leaks
# through module code.  Slow: VALGRIND_TESTS narrows it (default: all).

VALGRIND_TESTS ?= t/

# nginx with its pools made valgrind-friendly: NGX_DEBUG_PALLOC turns
# every pool allocation into its own malloc(), so memcheck sees a read
# past one pool object instead of into its neighbour.  Built from the
# same Debian source as the ASan binary, without sanitizers.
VG_DIR       := $(BUILD)/vgnginx
VG_SRC       := $(VG_DIR)/nginx-1.22.1
VG_NGINX     := $(VG_SRC)/objs/nginx
VG_SO        := $(VG_SRC)/objs/ngx_http_asyncx_module.so

.PHONY: test-valgrind

$(VG_DIR)/.configured: $(ASAN_DIR)/.source config
	rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)
	tar xzf $(ASAN_DIR)/nginx_1.22.1.orig.tar.gz -C $(VG_DIR)
	$(call configure_nginx,$(VG_SRC),-g -O1 -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1,)

$(VG_NGINX): $(VG_DIR)/.configured $(MODULE_SRCS)
	$(MAKE) -s -C $(VG_SRC) -f objs/Makefile -j2 binary modules

test-valgrind: $(VG_NGINX)
	@dpkg-query -W -f='$${Status}' valgrind 2>/dev/null | grep -q 'ok installed' \
	    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
	rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	cd $(ROOT) && TEST_NGINX_USE_VALGRIND=1 \
	    TEST_NGINX_VALGRIND_LOG_DIR=$(ROOT)/$(BUILD)/valgrind \
	    TEST_NGINX_TIMEOUT=15 TEST_NGINX_BINARY=$(ROOT)/$(VG_NGINX) \
	    TEST_NGINX_LOAD_MODULES=$(ROOT)/$(VG_SO) \
	    TEST_NGINX_PORT=$(TEST_PORT) TEST_NGINX_SERVROOT=$(ROOT)/t/servroot \
	    prove -I t/lib $(PROVE_FLAGS) -r $(VALGRIND_TESTS); rc=$$?; \
	perl t/lib/valgrind-check.pl $(BUILD)/valgrind/valgrind.* || exit 1; \
	exit $$rc
