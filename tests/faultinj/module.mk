# tests/faultinj/: faultinj.so, an LD_PRELOAD shim that fails open, read,
# write, fsync, fdatasync or msync on chosen files while a control file says
# so (see the top of faultinj.c). Used by tests/e2e/test_faults.sh. Built
# without sanitizers (a preloaded object must not carry its own ASan) and
# without _FORTIFY_SOURCE (it defines open() and read()).
FAULTINJ_SO := $(BUILD)/tests/faultinj.so
TEST_TOOLS += $(FAULTINJ_SO)
$(FAULTINJ_SO): tests/faultinj/faultinj.c tests/preload.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -Wall -Wextra -Wformat=2 -Wshadow \
		-Wstrict-prototypes -Wmissing-prototypes -U_FORTIFY_SOURCE $(WERROR) \
		-shared -Wl,-z,relro,-z,now -o $@ $< -ldl -lpthread
# test_faults.sh fills a store with vtpm-bench-store (tests/bench) to make LMDB's map full.
TEST_TOOLS += $(BUILD)/bench/vtpm-bench-store
