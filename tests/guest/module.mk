# tests/guest/: `make check-guest`, the real-guest test (tests/guest/run.sh):
# Debian's stock 6.1 kernel under QEMU (TCG) with a busybox initramfs holding
# vtpm-guest, tpm2-tools and a static raw TPM client; vtpmd on the host over
# QEMU user networking, through vtpm-relay (path A, the vtpm_proxy device),
# and QEMU's tpm-crb backed by vtpm-guest --swtpm (path B). Needs
# `tools/setup.sh --guest`; the kernel package is downloaded once and kept
# under $(BUILD)/guest/. A few minutes; `.ci/run` runs it after `make check`.

# rawtpm: linked statically (no libraries to copy into the initramfs) and
# without the sanitizers (asan builds of it could not be static).
GUEST_RAWTPM := $(BUILD)/guest/rawtpm
$(GUEST_RAWTPM): tests/guest/rawtpm.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wformat=2 -Wshadow \
		-Wstrict-prototypes -Wmissing-prototypes $(WERROR) -static -o $@ $<

check-guest: all $(GUEST_RAWTPM)
	BUILD=$(abspath $(BUILD)) bash tests/guest/run.sh
