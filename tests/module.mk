# tests/: `make check` runs every unit test binary (TESTS_UNIT, added by the
# folders), the layering check and every end-to-end script in tests/e2e.
# Slow suites have their own targets (fuzz, torture, check-guest, bench).
E2E_TESTS := $(sort $(wildcard tests/e2e/test_*.sh))
TEST_TOOLS :=
include tests/fuzz/module.mk

check: all $(TESTS_UNIT) $(TEST_TOOLS) check-layering
	BUILD=$(abspath $(BUILD)) tests/run-tests.sh $(TESTS_UNIT) $(FUZZ_REPLAY_SCRIPT) $(E2E_TESTS)
include tests/bench/module.mk
