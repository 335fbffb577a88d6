# vtpmd: persistent virtual TPMs for confidential VMs.
# Plain GNU make. `make` builds everything into build/; `make check` runs every
# test; `make asan check` does the same with AddressSanitizer+UBSan in build/asan.
# Each folder adds its own rules in <folder>/module.mk.

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
VERSION  := 0.1.0
CC       ?= cc

ifneq ($(filter asan,$(MAKECMDGOALS)),)
BUILD    := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
FORTIFY  :=
else
SANFLAGS :=
OPT      := -O2
FORTIFY  := -D_FORTIFY_SOURCE=3
endif

WERROR   ?= $(if $(CI),-Werror,)
PKGS     := libtpms libsodium lmdb libseccomp json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) tss2-tcti-device 2>/dev/null)

CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE $(OPT) -g -fPIC \
	-Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -fstack-protector-strong $(FORTIFY) $(SANFLAGS) $(WERROR) \
	-Itransport -Istorage -Iattestation -Ivtpmd -Iguest-driver $(PKG_CFLAGS) \
	-DVTPM_VERSION=\"$(VERSION)\"
CFLAGS   ?=
ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS)
LDFLAGS_COMMON := -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS)


LIB_SODIUM  := $(shell pkg-config --libs libsodium)
LIB_TPMS    := $(shell pkg-config --libs libtpms)
LIB_LMDB    := -llmdb
LIB_SECCOMP := $(shell pkg-config --libs libseccomp)
LIB_JSON    := $(shell pkg-config --libs json-c)
LIB_CRYPTO  := $(shell pkg-config --libs libcrypto)

PROGRAMS :=
LIBS_A   :=
TESTS_UNIT :=

.PHONY: all check asan fuzz bench install clean torture check-guest check-fleet load
all:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

include transport/module.mk
include storage/module.mk
include attestation/module.mk
include vtpmd/module.mk
include guest-driver/module.mk
include tools/module.mk
include tests/module.mk

all: $(PROGRAMS)

asan:
	@:

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# make install [PREFIX=/usr/local] [DESTDIR=...]
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)/etc/vtpmd
	install -m 0755 $(BUILD)/vtpmd $(DESTDIR)$(PREFIX)/sbin/vtpmd
	install -m 0755 $(BUILD)/vtpmctl $(BUILD)/vtpm-guest $(BUILD)/vtpm-relay $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BUILD)/libtss2-tcti-vtpm.so.0 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libtss2-tcti-vtpm.so.0 $(DESTDIR)$(PREFIX)/lib/libtss2-tcti-vtpm.so
	for m in $(wildcard */*.8); do install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man8/; done
	for m in $(wildcard */*.5); do install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man5/; done
	sed 's|/usr/local|$(PREFIX)|g' vtpmd/dist/vtpmd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/vtpmd.service
	[ -e $(DESTDIR)/etc/vtpmd/vtpmd.conf ] || install -m 0600 vtpmd/dist/vtpmd.conf.example $(DESTDIR)/etc/vtpmd/vtpmd.conf
