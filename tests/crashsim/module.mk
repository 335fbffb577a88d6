# tests/crashsim/: the power-loss simulation. wlog.so (LD_PRELOAD into
# vtpmd) records every write, sync and truncate on the state directory's
# files; crashimg.c builds from a copy of the directory and that log what the
# disk could hold had the power failed at a chosen moment. vtpm-torture
# --mode power drives both (test_powerloss.sh in `make check`, and a longer
# run in `make torture`). wlog.so is built like faultinj.so: no sanitizers,
# no _FORTIFY_SOURCE.
WLOG_SO := $(BUILD)/tests/wlog.so
TEST_TOOLS += $(WLOG_SO)
$(WLOG_SO): tests/crashsim/wlog.c tests/crashsim/wlog.h tests/preload.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -Wall -Wextra -Wformat=2 -Wshadow \
		-Wstrict-prototypes -Wmissing-prototypes -U_FORTIFY_SOURCE $(WERROR) \
		-shared -Wl,-z,relro,-z,now -o $@ $< -ldl -lpthread
$(BUILD)/obj/tests/crashsim/%.o: CFLAGS += -Itests/crashsim
$(BUILD)/obj/tests/torture/vtpm-torture.o: CFLAGS += -Itests/crashsim
