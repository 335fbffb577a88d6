# tests/torture/: crash torture. `make torture` kills vtpmd and then random
# workers with SIGKILL (TORTURE_ITERATIONS times each, default 1000), then
# cuts the power 300 times (tests/crashsim), while guests write NV, and
# checks after every kill that nothing acknowledged was lost
# (tests/torture/run-torture.sh). Slow: not part of `make check`, which runs
# short variants (tests/e2e/test_torture_short.sh, test_powerloss.sh).
# vtpm-torture: the driver (guests, kills, read-backs), also used by test_faults.sh.
TEST_TOOLS += $(BUILD)/tests/vtpm-torture
$(BUILD)/tests/vtpm-torture: $(BUILD)/obj/tests/torture/vtpm-torture.o \
		$(BUILD)/obj/tests/crashsim/crashimg.o $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)

TORTURE_ITERATIONS ?= 1000
torture: all $(BUILD)/tests/vtpm-torture $(BUILD)/tests/wlog.so
	BUILD=$(abspath $(BUILD)) ITERATIONS=$(TORTURE_ITERATIONS) tests/torture/run-torture.sh
