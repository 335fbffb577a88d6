# tests/: `make check` runs every unit test binary (TESTS_UNIT, added by the
# folders), the layering check and every end-to-end script in tests/e2e.
# Slow suites have their own targets (fuzz, torture, check-guest, bench).
E2E_TESTS := $(sort $(wildcard tests/e2e/test_*.sh))
TEST_TOOLS :=
include tests/fuzz/module.mk

# Test tools: built by `make check`, used by the e2e scripts (defined before
# the check rule, whose prerequisites are expanded when it is read).
# vtpm-testclient: a channel-level guest that injects one fault (test_channel.sh).
TEST_TOOLS += $(BUILD)/tests/vtpm-testclient
$(BUILD)/tests/vtpm-testclient: $(BUILD)/obj/tests/tools/vtpm-testclient.o $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)
# vtpm-storetool: moves and damages sealed blobs in a stopped vtpmd's store (test_blob_swap.sh).
TEST_TOOLS += $(BUILD)/tests/vtpm-storetool
$(BUILD)/tests/vtpm-storetool: $(BUILD)/obj/tests/tools/vtpm-storetool.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_SODIUM)
include tests/torture/module.mk
include tests/faultinj/module.mk
include tests/crashsim/module.mk

check: all $(TESTS_UNIT) $(TEST_TOOLS) check-layering
	BUILD=$(abspath $(BUILD)) tests/run-tests.sh $(TESTS_UNIT) $(FUZZ_REPLAY_SCRIPT) $(E2E_TESTS)
include tests/bench/module.mk
include tests/guest/module.mk
include tests/fleet/module.mk

# Every hostile-host case (test_hostile.sh runs a subset in `make check`).
.PHONY: check-hostile
check-hostile: all $(TEST_TOOLS)
	HOSTILE_FULL=1 BUILD=$(abspath $(BUILD)) tests/run-tests.sh tests/e2e/test_hostile.sh
