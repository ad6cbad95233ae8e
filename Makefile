# ddpm: `make` builds ./ddpm, `make test` builds and runs the test suite,
# `make asan` builds everything with AddressSanitizer + UBSan into build-asan/.
CC      ?= cc
ARCH    ?= -march=native
OPT     ?= -O3
CFLAGS  ?= $(OPT) $(ARCH) -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -fopenmp -Isrc \
           $(shell pkg-config --cflags cairo)
LDLIBS  += -fopenmp -lopenblas -lpng -lgif -lcjson -lcurl -lcrypto -lz \
           $(shell pkg-config --libs cairo) -lm
BUILD   ?= build

LIB_SRC  := $(sort $(wildcard src/core/*.c src/ops/*.c src/optim/*.c src/model/*.c \
             src/diffusion/*.c src/data/*.c src/io/*.c src/eval/*.c src/train/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test asan clean
all: ddpm

ddpm: $(BUILD)/ddpm
	rm -f $@ && cp $< $@

$(BUILD)/ddpm: $(CLI_OBJ) $(BUILD)/libddpm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libddpm.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libddpm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libddpm.a -lcmocka $(LDLIBS)

# Runs every test program (and the CLI end-to-end tests) and prints "N passed, N failed".
test: $(BUILD)/ddpm $(TESTS)
	DDPM_BIN=$(BUILD)/ddpm BUILD=$(BUILD) tests/run.sh $(TESTS)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDLIBS="-fsanitize=address,undefined -fopenmp -lopenblas -lpng -lgif -lcjson -lcurl -lcrypto -lz $$(pkg-config --libs cairo) -lm" test

clean:
	rm -rf build build-asan ddpm

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
