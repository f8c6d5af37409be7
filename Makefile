# plumb: see README.md. Targets: all (default), test, demo, bench, deps,
# install, fuzz, clean. Variables: PREFIX, DESTDIR, SAN=1, WERROR=1, CFLAGS.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
CC ?= cc
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

PKGS = libcurl jansson yaml-0.1 hiredis openblas libcrypto libutf8proc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

ifeq ($(SAN),1)
O := build/san
BIN := build/san/bin
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
O := build/rel
BIN := bin
SANFLAGS :=
endif

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla -Wno-unused-parameter -Wno-sign-compare
# Recursive (=), not override :=, so that pkg-config runs only when compiling,
# after "make test" or "make demo" has installed what it needs; user CFLAGS
# and LDFLAGS are still added last, never replaced.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(if $(filter 1,$(WERROR)),-Werror) \
	$(SANFLAGS) -Ilib -DPLUMB_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) -Wl,--as-needed $(LDFLAGS)
LDLIBS = $(PKG_LIBS) -lm

LIB_SRC := $(wildcard lib/*.c)
LIB_OBJ := $(LIB_SRC:lib/%.c=$(O)/lib/%.o)
LIB_A := $(O)/libplumb.a
TOOLS := $(basename $(notdir $(wildcard tools/*.c)))
PROGS := $(TOOLS:%=$(BIN)/%)
UNIT_SRC := $(wildcard t/unit/*.c)
UNITS := $(UNIT_SRC:t/unit/%.c=$(O)/t/%)
MAN1 := $(wildcard docs/*.1)
MAN7 := $(wildcard docs/*.7)

all: $(PROGS)

$(O)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(O)/lib
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BIN)/%: tools/%.c $(LIB_A) $(wildcard lib/*.h) | $(BIN)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(O)/t/%: t/unit/%.c t/unit/unit.h $(LIB_A) | $(O)/t
	$(CC) $(ALL_CFLAGS) -It/unit $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(O)/lib $(O)/t $(BIN):
	mkdir -p $@

# The whole suite: C unit tests, then one bats file per program. Ends with
# "N passed, M failed". TESTS=t/0200-chunk.bats runs a subset. Like demo, it
# first installs missing Debian packages (quick when all are there), so both
# work on a fresh machine.
test:
	@$(MAKE) -s deps
	@$(MAKE) --no-print-directory check

check: $(PROGS) $(UNITS)
	@PLUMB_BIN=$(abspath $(BIN)) PLUMB_UNITS="$(abspath $(UNITS))" t/run $(TESTS)

demo:
	@$(MAKE) -s deps
	@$(MAKE) --no-print-directory $(PROGS)
	@PATH=$(abspath $(BIN)):$$PATH sh contrib/demo.sh

bench:
	@$(MAKE) -s deps
	@$(MAKE) --no-print-directory $(PROGS) $(O)/bench/jsonscan $(O)/bench/bleu
	@PLUMB_BIN=$(abspath $(BIN)) BENCH_BUILD=$(abspath $(O)/bench) t/bench/run

$(O)/bench/%: t/bench/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

deps:
	@sh contrib/deps.sh

# libFuzzer target for the JSONL reader and scanner (needs clang).
fuzz:
	mkdir -p build/fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
		-o build/fuzz/jsonl t/fuzz/jsonl.c lib/json.c lib/lines.c lib/buf.c lib/utf8.c
	mkdir -p build/fuzz/corpus
	build/fuzz/jsonl -max_total_time=$${FUZZ_SECONDS:-60} build/fuzz/corpus t/fuzz/corpus

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7)

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(MAN1:docs/%=$(DESTDIR)$(MANDIR)/man1/%) \
		$(MAN7:docs/%=$(DESTDIR)$(MANDIR)/man7/%)

clean:
	rm -rf build bin

.PHONY: all test check demo bench deps fuzz install uninstall clean
.SECONDARY:
