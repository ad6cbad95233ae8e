# ddpm: `make` builds ./ddpm, `make test` builds and runs the test suite,
# `make lib` the shared library libddpm.so (include/ddpm.h's API, without MPI), `make man` the
# man page, `make install PREFIX=/usr/local DESTDIR=` installs them (`make uninstall` removes),
# `make asan` runs the test suite built with AddressSanitizer + UBSan (build-asan/),
# `make valgrind` runs short training runs under valgrind memcheck (build-vg/),
# `make fuzz` builds the libFuzzer harnesses with clang (build-fuzz/), and
# `make fuzz-run` runs each for FUZZ_SECONDS (or FUZZ_RUNS inputs) from fuzz/corpus/,
# `make web` compiles the sampler to WebAssembly into web/ (docs/WEB.md; needs emscripten) and
# `make test-web` draws digits with it in headless Chromium.
CC      ?= cc
ARCH    ?= -march=native
OPT     ?= -O3
SAN     ?=
CFLAGS  ?= $(OPT) $(ARCH) -g
CFLAGS  += $(SAN) -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fopenmp -Iinclude -Isrc \
           $(shell pkg-config --cflags cairo)
LDLIBS  += $(SAN) -fopenmp -llapacke -lopenblas -lpng -ljpeg -lstb -lgif -lcjson -lcurl -lcrypto -lz \
           $(shell pkg-config --libs cairo) -lm
BUILD   ?= build

# MPI (data-parallel training, docs/DISTRIBUTED.md): on where mpicc is installed, MPI=0 to
# build without it. The flags come from the wrapper (Open MPI's --showme, MPICH's -show
# forms differ: set MPI_CFLAGS and MPI_LIBS by hand for another implementation).
MPI     ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
ifeq ($(MPI_CFLAGS)$(shell command -v mpicc 2>/dev/null),)
$(error MPI=1 needs mpicc (Debian: libopenmpi-dev), or MPI_CFLAGS and MPI_LIBS)
endif
MPI_CFLAGS ?= $(shell mpicc --showme:compile)
MPI_LIBS   ?= $(shell mpicc --showme:link)
CFLAGS  += -DDDPM_MPI $(MPI_CFLAGS)
LDLIBS  += $(MPI_LIBS)
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/ops/*.c src/backend/*/*.c src/optim/*.c \
             src/model/*.c src/api/*.c src/app/*.c src/diffusion/*.c src/data/*.c src/io/*.c src/eval/*.c src/train/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all lib man install uninstall test test-browser web test-web asan valgrind fuzz \
        fuzz-harnesses fuzz-run clean
all: ddpm

ddpm: $(BUILD)/ddpm
	rm -f $@ && cp $< $@

$(BUILD)/ddpm: $(CLI_OBJ) $(BUILD)/libddpm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libddpm.a: $(LIB_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

# dist.o is the one object that differs with MPI: rebuilt when the setting changes
$(BUILD)/src/core/dist.o: $(BUILD)/mpi-setting
$(BUILD)/mpi-setting: FORCE
	@mkdir -p $(BUILD) && echo "$(MPI) $(MPI_CFLAGS) $(MPI_LIBS)" | cmp -s - $@ || echo "$(MPI) $(MPI_CFLAGS) $(MPI_LIBS)" >$@
FORCE:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/testutil.h tests/st_edit.h $(BUILD)/libddpm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libddpm.a -lcmocka $(LDLIBS)

# The data-parallel tests (tests/mpi.sh, run under mpirun) and their two programs, in MPI builds.
MPI_TOOLS := $(if $(filter 1,$(MPI)),$(BUILD)/tests/mpi_bn $(BUILD)/tests/st_compare)
MPI_TESTS := $(if $(filter 1,$(MPI)),tests/mpi.sh)

$(BUILD)/tests/%: tests/mpi/%.c $(BUILD)/libddpm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libddpm.a $(LDLIBS)

# The library for embedders (include/ddpm.h): its own position-independent objects, built
# without MPI and with every symbol hidden but the header's DDPM_API functions, as
# libddpm.so.$(VERSION) (SONAME libddpm.so.$(SOMAJOR)) and, for static linking, as
# $(BUILD)/pic/libddpm.a (build/libddpm.a, with MPI, is the program's). The linker drops the
# code that the API does not reach (training, figures) and the libraries only that code needs.
# The version is the header's.
VERSION := $(shell sed -n 's/^\#define DDPM_VERSION_STRING "\(.*\)"/\1/p' include/ddpm.h)
SOMAJOR := $(shell sed -n 's/^\#define DDPM_VERSION_MAJOR \([0-9]*\)/\1/p' include/ddpm.h)
SONAME  := libddpm.so.$(SOMAJOR)
PIC_CFLAGS = $(filter-out -DDDPM_MPI $(MPI_CFLAGS),$(CFLAGS)) -fPIC -fvisibility=hidden \
             -ffunction-sections -fdata-sections
LIB_LIBS   = $(filter-out $(MPI_LIBS),$(LDLIBS))
PIC_OBJ   := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
SHLIB     := $(BUILD)/libddpm.so.$(VERSION)

lib: $(SHLIB) $(BUILD)/$(SONAME) $(BUILD)/libddpm.so $(BUILD)/pic/libddpm.a $(BUILD)/ddpm.pc

$(SHLIB): $(PIC_OBJ)
	$(CC) $(PIC_CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs -Wl,--gc-sections \
	    -Wl,--as-needed -o $@ $^ $(LIB_LIBS)

$(BUILD)/$(SONAME): $(SHLIB)
	ln -sf $(notdir $<) $@

$(BUILD)/libddpm.so: $(BUILD)/$(SONAME)
	ln -sf $(notdir $<) $@

$(BUILD)/pic/libddpm.a: $(PIC_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(PIC_CFLAGS) -MMD -MP -c -o $@ $<

# ddpm.pc: static linking needs the libraries of LIB_LIBS (-fopenmp stands for libgomp);
# remade when PREFIX or those libraries change
PC_SETTING = $(PREFIX) $(filter-out $(SAN),$(LIB_LIBS))
$(BUILD)/ddpm.pc: ddpm.pc.in include/ddpm.h $(BUILD)/pc-setting
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(filter-out $(SAN),$(LIB_LIBS)))|g' $< >$@

$(BUILD)/pc-setting: FORCE
	@mkdir -p $(BUILD) && echo "$(PC_SETTING)" | cmp -s - $@ || echo "$(PC_SETTING)" >$@

# The man page, from `ddpm --help` and every command's --help (tools/man_commands.sh).
man: $(BUILD)/ddpm.1

$(BUILD)/ddpm.1: $(BUILD)/ddpm tools/man_commands.sh
	tools/man_commands.sh $(BUILD)/ddpm >$(BUILD)/ddpm-commands.h2m
	help2man --no-info --name="train diffusion models on MNIST from scratch, and sample from them" \
	    --include=$(BUILD)/ddpm-commands.h2m --output=$@ $(BUILD)/ddpm

# Installs into $(DESTDIR)$(PREFIX); ldconfig only for a real install (no DESTDIR, as root).
PREFIX  ?= /usr/local
INSTALLED := bin/ddpm lib/libddpm.so.$(VERSION) lib/$(SONAME) lib/libddpm.so lib/libddpm.a \
             include/ddpm.h lib/pkgconfig/ddpm.pc share/man/man1/ddpm.1
install: $(BUILD)/ddpm lib man
	install -D -m 755 $(BUILD)/ddpm $(DESTDIR)$(PREFIX)/bin/ddpm
	install -D -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/libddpm.so.$(VERSION)
	ln -sf libddpm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libddpm.so
	install -D -m 644 $(BUILD)/pic/libddpm.a $(DESTDIR)$(PREFIX)/lib/libddpm.a
	install -D -m 644 include/ddpm.h $(DESTDIR)$(PREFIX)/include/ddpm.h
	install -D -m 644 $(BUILD)/ddpm.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ddpm.pc
	install -D -m 644 $(BUILD)/ddpm.1 $(DESTDIR)$(PREFIX)/share/man/man1/ddpm.1
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then ldconfig; fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then ldconfig; fi

# Runs every test program (and the CLI end-to-end tests) and the layering checks, and prints
# "N passed, N failed". tests/install.sh (install, pkg-config, the example) runs in plain
# builds: a sanitized libddpm.so cannot be loaded by a program built without the sanitizer.
INSTALL_TESTS := $(if $(SAN),,tests/install.sh)
test: $(BUILD)/ddpm $(TESTS) $(MPI_TOOLS) $(if $(SAN),,lib man)
	DDPM_BIN=$(BUILD)/ddpm BUILD=$(BUILD) tests/run.sh $(TESTS) $(MPI_TESTS) $(INSTALL_TESTS) tests/check_layers.sh

# The report page of a tiny reproduction in headless Chromium (needs the chromium package;
# .ci/run installs it): images load, no console errors, no sideways scrolling; screenshots.
test-browser: $(BUILD)/ddpm
	DDPM_BIN=$(BUILD)/ddpm tests/report_browser.sh $(BUILD)/browser

# The sampler in a web page (docs/WEB.md): the inference path (model, operators, the cpu
# backend with a portable GEMM for OpenBLAS, samplers) compiled by Debian's emscripten into
# web/ddpm_web.{js,wasm} (WebAssembly SIMD) and web/ddpm_web_nosimd.{js,wasm} (for browsers
# without it). No OpenMP (its pragmas are ignored, so the parameter that only they read is
# unused: -Wno-unused-parameter), no files, JSON, PNG or compression: the page's JavaScript
# reads the weights. NODE_PATH: emcc's JavaScript tools need Debian's node-acorn, which a
# node from elsewhere (NodeSource) does not look for.
# WEB_BACKEND=ref WEB_OUT=DIR builds the same on the reference backend, for the comparison
# of docs/WEB.md.
EMCC     ?= emcc
WEB_BACKEND ?= cpu
WEB_OUT  ?= web
WEB_SRC  := src/core/common.c src/core/rng.c src/ops/backend.c src/ops/dispatch.c src/ops/shape.c \
            $(wildcard src/backend/$(WEB_BACKEND)/*.c) src/model/unet_layout.c src/model/unet_pass.c \
            src/model/fold.c $(wildcard src/diffusion/*.c) src/data/geometry.c src/data/dataset.c \
            $(wildcard src/web/*.c)
WEB_CFLAGS := -O3 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unknown-pragmas \
              -Wno-unused-parameter -Isrc -Isrc/web/shim '-DBACKEND_LIST(X)=X($(WEB_BACKEND))'
WEB_LDFLAGS := -sMODULARIZE=1 -sEXPORT_NAME=DdpmWeb -sALLOW_MEMORY_GROWTH=1 \
               -sENVIRONMENT=worker,node -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8 \
               -sEXPORTED_FUNCTIONS=_malloc,_free
WEB_ENV  := NODE_PATH=$${NODE_PATH:+$$NODE_PATH:}/usr/share/nodejs
WEB_OBJ  := $(BUILD)/web/$(WEB_BACKEND)
web: $(WEB_OUT)/ddpm_web.js $(WEB_OUT)/ddpm_web_nosimd.js

$(WEB_OUT)/ddpm_web.js: $(WEB_SRC:%.c=$(WEB_OBJ)/simd/%.o)
	@mkdir -p $(dir $@)
	$(WEB_ENV) $(EMCC) -O3 -msimd128 -o $@ $^ $(WEB_LDFLAGS)
$(WEB_OUT)/ddpm_web_nosimd.js: $(WEB_SRC:%.c=$(WEB_OBJ)/nosimd/%.o)
	@mkdir -p $(dir $@)
	$(WEB_ENV) $(EMCC) -O3 -o $@ $^ $(WEB_LDFLAGS)

$(WEB_OBJ)/simd/%.o: %.c
	@mkdir -p $(dir $@)
	$(WEB_ENV) $(EMCC) $(WEB_CFLAGS) -msimd128 -MMD -MP -c -o $@ $<
$(WEB_OBJ)/nosimd/%.o: %.c
	@mkdir -p $(dir $@)
	$(WEB_ENV) $(EMCC) $(WEB_CFLAGS) -MMD -MP -c -o $@ $<

# The page in headless Chromium, served from 127.0.0.1: it draws 2026, which ddpm eval must
# judge; no console errors, no sideways scrolling; screenshots (tests/web.sh). Before it, the
# web GEMM against a double-precision loop, in node (one file: node cannot fetch the .wasm).
test-web: web $(BUILD)/ddpm $(BUILD)/web/web_sgemm.js
	DDPM_BIN=$(BUILD)/ddpm WEB_SGEMM=$(BUILD)/web/web_sgemm.js tests/web.sh $(BUILD)/web-test

$(BUILD)/web/web_sgemm.js: tests/web_sgemm.c src/web/sgemm.c src/core/common.c src/web/shim/cblas.h
	@mkdir -p $(dir $@)
	$(WEB_ENV) $(EMCC) $(WEB_CFLAGS) -msimd128 -sSINGLE_FILE=1 -o $@ $(filter %.c,$^)

# Sanitizer findings fail the run: UBSan aborts, LeakSanitizer reports at exit.
asan:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	$(MAKE) BUILD=build-asan OPT=-O1 MPI=0 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" test

# Valgrind cannot decode AVX-512, so this build targets plain x86-64.
valgrind:
	$(MAKE) BUILD=build-vg OPT=-O1 ARCH= MPI=0 build-vg/ddpm
	tests/valgrind.sh build-vg/ddpm

FUZZ_NAMES   := idx safetensors config cifar imagecache imagefile
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 0
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz OPT=-O1 ARCH= MPI=0 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link -Wno-pass-failed" \
	  fuzz-harnesses

fuzz-harnesses: $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(BUILD)/libddpm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libddpm.a $(LDLIBS)

fuzz-run: fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) fuzz/run.sh build-fuzz $(FUZZ_NAMES)

clean:
	rm -rf build build-asan build-vg build-fuzz ddpm web/ddpm_web.js web/ddpm_web.wasm \
	  web/ddpm_web_nosimd.js web/ddpm_web_nosimd.wasm

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(PIC_OBJ:.o=.d) \
         $(wildcard $(WEB_OBJ)/*/src/*/*.d $(WEB_OBJ)/*/src/*/*/*.d)
