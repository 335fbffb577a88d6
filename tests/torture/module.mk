# tests/torture/: crash torture. `make torture` kills vtpmd and then random
# workers with SIGKILL (TORTURE_ITERATIONS times each, default 1000) while
# guests write NV, and checks after every kill that nothing acknowledged was
# lost (tests/torture/run-torture.sh). Slow: not part of `make check`, which
# runs a 30-iteration variant (tests/e2e/test_torture_short.sh).
# vtpm-torture: the driver (guests, kills, read-backs), also used by test_faults.sh.
TEST_TOOLS += $(BUILD)/tests/vtpm-torture
$(BUILD)/tests/vtpm-torture: $(BUILD)/obj/tests/torture/vtpm-torture.o $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)

TORTURE_ITERATIONS ?= 1000
torture: all $(BUILD)/tests/vtpm-torture
	BUILD=$(abspath $(BUILD)) ITERATIONS=$(TORTURE_ITERATIONS) tests/torture/run-torture.sh
