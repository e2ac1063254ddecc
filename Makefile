# ngx_http_asyncx_module: build, demo and tests against Debian 12's nginx.
#
#   make deps    install the Debian packages everything below needs
#   make         build build/nginx/objs/ngx_http_asyncx_module.so
#   make run     serve the demo on 127.0.0.1:$(PORT) in the foreground
#   make test    style check, the runner's self-tests, unit tests, every
#                t/*.t suite (+ the browser test), then the same suites
#                against nginx built with ASan/UBSan
#   make test-fast     the same without the sanitizer pass
#   make deb     the Debian package libnginx-mod-http-asyncx (and lintian)
#   make test-loaded   `make test` while stress-ng keeps every core busy

SHELL        := /bin/bash
comma        := ,
BUILD        ?= build
PORT         ?= 8000
NGINX        ?= /usr/sbin/nginx
NGINX_SRC    ?= /usr/share/nginx/src
TEST_PORT    ?= 1984
PROVE_FLAGS  ?=
# the client's idle timeout of a block without --- timeout: generous, so
# that a CPU-heavy answer (PBKDF2 at the default 600,000 iterations,
# under ASan, on a loaded machine) is waited for, not raced
TEST_TIMEOUT ?= 30

ROOT         := $(CURDIR)
NGX_BUILD    := $(BUILD)/nginx
MODULE_SO    := $(NGX_BUILD)/objs/ngx_http_asyncx_module.so
DASHBOARD_PAGE := src/ngx_http_asyncx_dashboard_page.h
MODULE_SRCS  := ngx_http_asyncx_module.c $(wildcard src/*.c src/*.h src/*/*.c src/*/*.h) \
                $(DASHBOARD_PAGE)
DEMO_PREFIX  := $(BUILD)/demo

# the one place the version is written (t/600-version.t checks the rest)
VERSION      := $(shell sed -n 's/^\#define NGX_HTTP_ASYNCX_VERSION *"\(.*\)"/\1/p' \
                    src/ngx_http_asyncx_version.h)

# The test helper module (t/hold/): built with every nginx the tests run,
# loaded by the suites only, never installed.
HOLD_DIR     := t/hold
HOLD_SRCS    := $(wildcard $(HOLD_DIR)/*.c) $(HOLD_DIR)/config
HOLD_SO      := $(NGX_BUILD)/objs/ngx_http_asyncx_test_hold_module.so

# -Wall -Wextra -Werror for the module's own objects only (and the test
# helper's): nginx's objs/Makefile compiles addon sources to objs/addon/,
# so a pattern-specific CFLAGS reaches them and nothing of nginx itself.
# `config` adds no flags: a packager's build keeps its own.
MODULE_WARNINGS := -Wall -Wextra -Wno-unused-parameter \
                   -Wno-missing-field-initializers -Werror
NGX_MAKE      = $(MAKE) -s -C $(1) -f objs/Makefile \
                --eval='objs/addon/%.o: CFLAGS += $(MODULE_WARNINGS)'

# Debian packages.  The module needs only the build list; the tests and
# the benchmarks need the rest, installed by the targets that use them
# (`make deps` installs both).
BUILD_PACKAGES := nginx nginx-dev libcjson-dev libssl-dev libpcre2-dev \
                  libhiredis-dev \
                  gcc make
TEST_PACKAGES  := libcmocka-dev perl libtest-base-perl libtext-diff-perl \
                  libwww-perl libhttp-message-perl liburi-perl \
                  libtest-longstring-perl libjson-pp-perl curl jq wrk \
                  chromium stress-ng python3 python3-hypothesis prometheus \
                  redis-server python3-h2 openssl gdb

.PHONY: all deps deps-build deps-test build run test test-fast test-loaded \
        unit test-nginx test-props test-props-asan test-browser style \
        selftest clean distclean print-version print-deb

all: build

deps: deps-build deps-test

# Checked on every run (one dpkg-query, a few milliseconds), so a package
# removed since the last run is installed again; apt-get runs only when
# something is missing.  Two makes at once (two checkouts) wait up to
# 5 minutes for each other's apt lock instead of failing.
# $(call need_packages,<packages>)
define need_packages
	@have=" $$(dpkg-query -W -f='$${db:Status-Abbrev}|$${Package}\n' \
	            $(1) 2>/dev/null | awk -F'|' '$$1 ~ /^ii/ { print $$2 }' \
	            | tr '\n' ' ') "; \
	missing=""; for p in $(1); do \
	    case "$$have" in *" $$p "*) ;; *) missing="$$missing $$p" ;; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    if [ "$$(id -u)" != 0 ]; then echo "deps: run as root" >&2; exit 1; fi; \
	    $(call no_services_begin); \
	    apt-get update -qq -o DPkg::Lock::Timeout=300 \
	        && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends \
	        -o DPkg::Lock::Timeout=300 $$missing; \
	    rc=$$?; $(call no_services_end); exit $$rc; \
	fi
endef

# Packages that ship a service (prometheus for promtool, nginx) must not
# start it: a policy-rc.d that denies every action while apt runs, unless
# the machine has its own.
no_services_begin = policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '\043!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d \
	    && chmod 755 /usr/sbin/policy-rc.d && policy=1; fi
no_services_end = if [ -n "$$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi

deps-build:
	$(call need_packages,$(BUILD_PACKAGES))

deps-test:
	$(call need_packages,$(TEST_PACKAGES))

build: $(MODULE_SO)

# $(call configure_nginx,<source dir>,<cc opts>,<ld opts>): the whole
# nginx with Debian's configure flags, the module and the test helper;
# the one configure recipe of every nginx build below.  The stamp, not
# objs/Makefile, marks success: an interrupted configure reruns.
define configure_nginx
	cd $(1) && source $(NGINX_SRC)/conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(2)" --with-ld-opt="$(3)" \
	    --add-dynamic-module=$(ROOT) --add-dynamic-module=$(ROOT)/$(HOLD_DIR) \
	    > configure.log 2>&1 || { tail -30 configure.log; exit 1; }
	touch $@
endef

# configure runs once per `config` change; afterwards the module build
# is incremental and recompiles only the module sources that changed.
# nginx-dev ships the headers and build scripts: a modules-only build.
$(NGX_BUILD)/.configured: config $(HOLD_DIR)/config | deps-build
	rm -rf $(NGX_BUILD) && mkdir -p $(NGX_BUILD)
	cp -a $(NGINX_SRC)/. $(NGX_BUILD)/
	$(call configure_nginx,$(NGX_BUILD),-g -O2 -fstack-protector-strong -fPIC \
	    -D_FORTIFY_SOURCE=2 $(EXTRA_CC_OPT),-Wl$(comma)-z$(comma)relro \
	    -Wl$(comma)-z$(comma)now -fPIC $(EXTRA_LD_OPT))

$(MODULE_SO): $(NGX_BUILD)/.configured $(MODULE_SRCS) config | deps-build
	$(call NGX_MAKE,$(NGX_BUILD)) objs/ngx_http_asyncx_module.so

# asyncx_status_page's HTML as a C string; the header is committed (the
# Debian build does not run this Makefile) and t/491 checks it is current
$(DASHBOARD_PAGE): src/ngx_http_asyncx_dashboard.html
	{ echo '/* generated by make from $<: edit that */'; \
	  echo; \
	  echo 'static const u_char  ngx_http_asyncx_dashboard_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' \
	      -e 's/$$/\\n"/' $<; \
	  echo '    ;'; } > $@

$(HOLD_SO): $(NGX_BUILD)/.configured $(HOLD_SRCS)
	$(call NGX_MAKE,$(NGX_BUILD)) objs/ngx_http_asyncx_test_hold_module.so

run: build
	@ROOT=$(ROOT) PORT=$(PORT) NGINX_BIN=$(NGINX) MODULE_SO=$(ROOT)/$(MODULE_SO) \
	    PREFIX=$(ROOT)/$(DEMO_PREFIX) ./docs/examples/run-demo.sh

# Pure-logic unit tests (cmocka) compiled against the nginx headers.
UNIT_CFLAGS := -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter \
               -I$(NGX_BUILD)/src/core -I$(NGX_BUILD)/src/event \
               -I$(NGX_BUILD)/src/event/modules -I$(NGX_BUILD)/src/os/unix \
               -I$(NGX_BUILD)/src/http -I$(NGX_BUILD)/src/http/modules \
               -I$(NGX_BUILD)/src/http/v2 -I$(NGX_BUILD)/objs -Isrc -Isrc/demo
UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/test_*.c))

# The pure-logic sources: they use nginx's types and macros but call no
# function from nginx's .c files, so they link without an nginx binary.
PURE_SRCS   := src/ngx_http_asyncx_util.c src/demo/ngx_http_asyncx_dataset.c src/ngx_http_asyncx_offload_util.c \
               src/ngx_http_asyncx_pipeline_util.c src/demo/ngx_http_asyncx_sse_kernel.c \
               src/ngx_http_asyncx_limit_bucket.c src/ngx_http_asyncx_metrics_util.c \
               src/demo/ngx_http_asyncx_exercise_format.c \
               src/ngx_http_asyncx_limit_queue.c \
               src/ngx_http_asyncx_sse_event.c src/ngx_http_asyncx_ndjson.c \
               src/ngx_http_asyncx_ndjson_json.c

# the module's JSON policy is pure too; it hands what it passed to cJSON
PURE_SRCS   += src/ngx_http_asyncx_json.c

$(BUILD)/unit/%: t/unit/%.c $(PURE_SRCS) $(wildcard src/*.h src/demo/*.h) \
                 $(NGX_BUILD)/.configured | deps-test
	@mkdir -p $(BUILD)/unit
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(PURE_SRCS) -lcmocka -lcjson -lm

unit: $(UNIT_TESTS) | deps-test
	@set -e; for t in $(UNIT_TESTS); do echo "unit: $$t"; $$t; done

# nginx style over the module's C sources (t/lib/style-check.pl says
# which rules and how far its checks go)
STYLE_SRCS  := ngx_http_asyncx_module.c $(wildcard src/*.c src/*.h src/*/*.c \
               src/*/*.h) $(wildcard $(HOLD_DIR)/*.c)

style:
	@perl t/lib/style-check.pl $(STYLE_SRCS)

# the runner's negative self-test: every case must fail loudly
selftest: | deps-test
	TEST_NGINX_PORT=$(TEST_PORT) t/lib/selftest-fail.sh

# Inside these targets a suite that cannot run (no module, no chromium)
# fails instead of skipping: ASYNCX_REQUIRE_ALL=1.
# TESTS narrows the run to some suites (default: all of t/).
# $(call prove_suites,<nginx binary>,<modules>,<more environment>[,<suites>])
define prove_suites
	cd $(ROOT) && ASYNCX_REQUIRE_ALL=1 TEST_NGINX_BINARY=$(1) \
	    TEST_NGINX_LOAD_MODULES="$(2)" TEST_NGINX_TIMEOUT=$(TEST_TIMEOUT) \
	    TEST_NGINX_PORT=$(TEST_PORT) TEST_NGINX_SERVROOT=$(ROOT)/t/servroot \
	    $(3) prove -I t/lib $(PROVE_FLAGS) -r $(or $(4),$(TESTS),t/)
endef

test-nginx: build $(HOLD_SO) | deps-test
	$(call prove_suites,$(NGINX),$(ROOT)/$(MODULE_SO) $(ROOT)/$(HOLD_SO))

# The generated-input layer (t/props): Debian's python3 with
# hypothesis against an nginx of its own on TEST_PORT + 8, a fixed seed.
# `make test-props SEED=7 N=500` searches longer; PROPS_ONLY=name runs
# the properties whose name contains it.
SEED         ?= 20261124
N            ?= 32
PROPS_ONLY   ?=

test-props: build | deps-test
	cd $(ROOT) && TEST_PORT=$(TEST_PORT) PROPS_SEED=$(SEED) PROPS_N=$(N) \
	    TEST_NGINX_BINARY=$(NGINX) \
	    TEST_NGINX_LOAD_MODULES=$(ROOT)/$(MODULE_SO) \
	    /usr/bin/python3 t/props/run.py $(if $(PROPS_ONLY),-k $(PROPS_ONLY))

# CI runs `make test` (.ci/run), so the sanitizer pass is part of it: the
# ASan build of nginx takes a few minutes, once, the suites under it
# about 3.
test: deps style selftest build unit test-nginx test-props test-package \
      test-asan test-props-asan

test-fast: deps style selftest build unit test-nginx test-props

# The whole `make test` with every core kept busy by stress-ng: the
# suites must not depend on the machine's speed.  The hog is stopped by
# its PID when the run ends, fails or is interrupted.
test-loaded: deps-test
	@stress-ng --cpu 0 --cpu-method all --quiet & hog=$$!; \
	trap 'kill $$hog 2>/dev/null; wait $$hog 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "test-loaded: stress-ng (PID $$hog) on $$(nproc) CPUs"; \
	$(MAKE) test; rc=$$?; \
	echo "test-loaded: make test exited $$rc under load"; \
	exit $$rc

clean:
	rm -rf $(NGX_BUILD)/objs/addon $(MODULE_SO) $(HOLD_SO) $(BUILD)/unit \
	    $(ASAN_SRC)/objs/addon $(ASAN_SO) $(ASAN_HOLD_SO) \
	    $(VG_SRC)/objs/addon $(VG_SO) $(VG_HOLD_SO)

print-version:
	@echo $(VERSION)

print-deb:
	@echo $(DEB_FILE)

distclean:
	rm -rf $(BUILD) t/servroot*

# --- sanitizers (issue 7, first part) --------------------------------
# nginx itself and the module built with AddressSanitizer and UBSan from
# Debian's nginx source package (nginx-dev ships headers only), then the
# whole Test::Nginx suite against that binary.  Any sanitizer report
# fails the run.

ASAN_DIR     := $(BUILD)/asan
ASAN_SRC     := $(ASAN_DIR)/nginx-1.22.1
ASAN_NGINX   := $(ASAN_SRC)/objs/nginx
ASAN_SO      := $(ASAN_SRC)/objs/ngx_http_asyncx_module.so
ASAN_HOLD_SO := $(ASAN_SRC)/objs/ngx_http_asyncx_test_hold_module.so
ASAN_APT     := -o Dir::Etc::SourceList=$(ROOT)/$(ASAN_DIR)/apt/empty.list \
                -o Dir::Etc::SourceParts=$(ROOT)/$(ASAN_DIR)/apt/parts \
                -o Dir::State::Lists=$(ROOT)/$(ASAN_DIR)/apt/lists

.PHONY: test-asan test-props-asan

$(ASAN_DIR)/.source: | deps-build
	mkdir -p $(ASAN_DIR)/apt/parts $(ASAN_DIR)/apt/lists/partial
	: > $(ASAN_DIR)/apt/empty.list
	@# a private deb-src list: the system's apt configuration is untouched
	sed 's/^Types: deb$$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
	    > $(ASAN_DIR)/apt/parts/src.sources
	apt-get $(ASAN_APT) -o DPkg::Lock::Timeout=300 update -qq
	@# the security suite's .dsc may be missing; the orig tarball is enough
	cd $(ASAN_DIR) && { apt-get $(ASAN_APT) source --download-only nginx \
	    > apt-source.log 2>&1 || true; }
	test -f $(ASAN_DIR)/nginx_1.22.1.orig.tar.gz
	cd $(ASAN_DIR) && rm -rf nginx-1.22.1 && tar xzf nginx_1.22.1.orig.tar.gz
	touch $@

$(ASAN_DIR)/.configured: $(ASAN_DIR)/.source config $(HOLD_DIR)/config
	$(call configure_nginx,$(ASAN_SRC),-g -O1 -fno-omit-frame-pointer \
	    -fsanitize=address$(comma)undefined -DNGX_DEBUG_PALLOC=1,-fsanitize=address$(comma)undefined)

$(ASAN_NGINX): $(ASAN_DIR)/.configured $(MODULE_SRCS) $(HOLD_SRCS)
	$(call NGX_MAKE,$(ASAN_SRC)) -j2 binary modules

test-asan: $(ASAN_NGINX) | deps-test
	rm -rf $(ASAN_DIR)/reports $(ASAN_DIR)/error.log && mkdir -p $(ASAN_DIR)/reports
	@# the workers' reports go to their stderr, which nginx points at
	@# error.log: the runner appends every block's error.log to one file
	$(call prove_suites,$(ROOT)/$(ASAN_NGINX),$(ROOT)/$(ASAN_SO) $(ROOT)/$(ASAN_HOLD_SO),\
	    TEST_NGINX_ERROR_LOG=$(ROOT)/$(ASAN_DIR)/error.log \
	    ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=0:log_path=$(ROOT)/$(ASAN_DIR)/reports/asan \
	    UBSAN_OPTIONS=print_stacktrace=1:suppressions=$(ROOT)/t/ubsan.supp:log_path=$(ROOT)/$(ASAN_DIR)/reports/ubsan) \
	    2>&1 | tee $(ASAN_DIR)/prove.log; \
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

# The same layer against nginx and the module built with ASan/UBSan, with
# fewer examples: a sanitizer report reaches error.log, which the layer
# checks after every example.
PROPS_ASAN_N ?= 6

test-props-asan: $(ASAN_NGINX) | deps-test
	cd $(ROOT) && TEST_PORT=$(TEST_PORT) PROPS_SEED=$(SEED) \
	    PROPS_N=$(PROPS_ASAN_N) TEST_NGINX_BINARY=$(ROOT)/$(ASAN_NGINX) \
	    TEST_NGINX_LOAD_MODULES=$(ROOT)/$(ASAN_SO) \
	    ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1:suppressions=$(ROOT)/t/ubsan.supp \
	    /usr/bin/python3 t/props/run.py $(if $(PROPS_ONLY),-k $(PROPS_ONLY))

# --- fuzzing (issue 7, second part) ------------------------------------
# libFuzzer targets (clang, Debian's libclang-rt-14-dev) over every pure
# parser that sees client bytes; each runs FUZZ_SECONDS.  A crash leaves
# its input in build/fuzz/ and fails the run.

FUZZ_SECONDS ?= 20
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined $(filter -I%,$(UNIT_CFLAGS))

.PHONY: fuzz deps-fuzz

deps-fuzz: | deps-build
	@for p in clang libclang-rt-14-dev; do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	               -o DPkg::Lock::Timeout=300 $$p; \
	done

$(BUILD)/fuzz/%: fuzz/%.c fuzz/fuzz_common.h $(PURE_SRCS) $(NGX_BUILD)/.configured | deps-fuzz
	@mkdir -p $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(PURE_SRCS) -lcjson

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
VALGRIND_TIMEOUT ?= 60

# nginx with its pools made valgrind-friendly: NGX_DEBUG_PALLOC turns
# every pool allocation into its own malloc(), so memcheck sees a read
# past one pool object instead of into its neighbour.  Built from the
# same Debian source as the ASan binary, without sanitizers.
VG_DIR       := $(BUILD)/vgnginx
VG_SRC       := $(VG_DIR)/nginx-1.22.1
VG_NGINX     := $(VG_SRC)/objs/nginx
VG_SO        := $(VG_SRC)/objs/ngx_http_asyncx_module.so
VG_HOLD_SO   := $(VG_SRC)/objs/ngx_http_asyncx_test_hold_module.so

.PHONY: test-valgrind

$(VG_DIR)/.configured: $(ASAN_DIR)/.source config $(HOLD_DIR)/config
	rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)
	tar xzf $(ASAN_DIR)/nginx_1.22.1.orig.tar.gz -C $(VG_DIR)
	$(call configure_nginx,$(VG_SRC),-g -O1 -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1,)

$(VG_NGINX): $(VG_DIR)/.configured $(MODULE_SRCS) $(HOLD_SRCS)
	$(call NGX_MAKE,$(VG_SRC)) -j2 binary modules

test-valgrind: $(VG_NGINX) | deps-test
	$(call need_packages,valgrind)
	rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	$(call prove_suites,$(ROOT)/$(VG_NGINX),$(ROOT)/$(VG_SO) $(ROOT)/$(VG_HOLD_SO),\
	    TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_VALGRIND_LOG_DIR=$(ROOT)/$(BUILD)/valgrind \
	    TEST_NGINX_TIMEOUT=$(VALGRIND_TIMEOUT),$(VALGRIND_TESTS)); rc=$$?; \
	perl t/lib/valgrind-check.pl $(BUILD)/valgrind/valgrind.* || exit 1; \
	exit $$rc

# --- Debian package (issue 15) -----------------------------------------
# libnginx-mod-http-asyncx_<version>_<arch>.deb built as Debian builds its
# own nginx modules (debian/: dh with nginx-dev's dh-sequence-nginx, i.e.
# the nginx_mod build system and dh_nginx), from a copy of the tracked
# files in build/deb so the work tree stays clean; then lintian.

DEB_PACKAGES_BUILD := debhelper dpkg-dev fakeroot lintian nginx-dev \
                      libcjson-dev libpcre2-dev libssl-dev
DEB_DIR      := $(BUILD)/deb
DEB_NAME     := libnginx-mod-http-asyncx
DEB_SRC      := $(DEB_DIR)/$(DEB_NAME)-$(VERSION)
# the upstream version and Debian's revision (debian/changelog's "-1")
DEB_VERSION  := $(shell head -1 debian/changelog | cut -d' ' -f2 | tr -d '()')
DEB_ARCH     := $(shell dpkg --print-architecture)
DEB_FILE     := $(DEB_DIR)/$(DEB_NAME)_$(DEB_VERSION)_$(DEB_ARCH).deb
# what the package is built from: the module, debian/ and the docs it ships
DEB_INPUTS   := $(shell git ls-files config ngx_http_asyncx_module.c src \
                    debian README.md CHANGES LICENSE 2>/dev/null)

.PHONY: deb deps-deb

deps-deb:
	$(call need_packages,$(DEB_PACKAGES_BUILD))

deb: $(DEB_FILE)

$(DEB_FILE): $(DEB_INPUTS) | deps-deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_SRC)
	tar -cf - $(DEB_INPUTS) | tar -xf - -C $(DEB_SRC)
	@# -b: binary packages only, so no orig tarball is needed
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS=parallel=2 \
	    dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	@# lintian's own exit status: non-zero on any error tag
	set -o pipefail; lintian --info --display-info --fail-on error $(DEB_DIR)/*.changes \
	    | tee $(DEB_DIR)/lintian.log
	@echo "deb: $(DEB_FILE)"

# The package on this machine (root): dpkg -i, the stock nginx -t with
# the README's site, a private nginx loading the installed .so, purge,
# and the system exactly as before (t/610-package.t).  The package and
# dpkg's state are the machine's, not the checkout's: two checkouts
# testing at once take turns (flock), or one purges what the other
# just installed.
.PHONY: test-package

test-package: deb | deps-test
	cd $(ROOT) && ASYNCX_REQUIRE_ALL=1 ASYNCX_TEST_DEB=$(ROOT)/$(DEB_FILE) \
	    TEST_NGINX_PORT=$(TEST_PORT) flock /run/lock/asyncx-test-package \
	    prove -I t/lib $(PROVE_FLAGS) t/610-package.t
