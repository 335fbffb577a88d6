# tests/bench/: `make bench` builds the benchmark programs and runs
# tests/bench/run-bench.sh: vtpmd against swtpm (Debian's, one process per
# instance, unix sockets) and in-process libtpms, side by side in one run;
# prints every figure with its ratio and target and writes
# bench-results/RESULTS-<date>.md. Timing lives here, never in `make check`.
#   vtpm-bench          channel client (Noise + evidence + ATTACH) and raw swtpm client
#   vtpm-bench-inproc   libtpms in process: the floor
#   vtpm-bench-store    fills a stopped vtpmd's store with N instances (store scale)
#   swtpm-fsync.so      LD_PRELOAD shim: swtpm 0.7.1 made durable as upstream swtpm is
BENCH_DIR   := $(BUILD)/bench
BENCH_UTIL  := $(BUILD)/obj/tests/bench/bench_util.o
BENCH_PROGS := $(BENCH_DIR)/vtpm-bench $(BENCH_DIR)/vtpm-bench-inproc \
	$(BENCH_DIR)/vtpm-bench-store $(BENCH_DIR)/swtpm-fsync.so

$(BENCH_DIR)/vtpm-bench: $(BUILD)/obj/tests/bench/vtpm-bench.o $(BENCH_UTIL) \
		$(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS) $(LIB_CRYPTO) $(LIB_JSON) $(LIB_SODIUM) -lpthread

$(BENCH_DIR)/vtpm-bench-inproc: $(BUILD)/obj/tests/bench/vtpm-bench-inproc.o $(BENCH_UTIL) \
		$(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_TPMS)

$(BENCH_DIR)/vtpm-bench-store: $(BUILD)/obj/tests/bench/vtpm-bench-store.o $(BENCH_UTIL) \
		$(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_JSON) $(LIB_CRYPTO) $(LIB_SODIUM)

# Loaded into swtpm: a plain shared object, no -pie.
$(BENCH_DIR)/swtpm-fsync.so: tests/bench/swtpm_fsync_shim.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-z,relro,-z,now -o $@ $< -ldl

.PHONY: bench-build
bench-build: all $(BENCH_PROGS)

bench: bench-build
	BUILD=$(abspath $(BUILD)) tests/bench/run-bench.sh

# `make bench-fleet`: durable NV writes on etcd beside LMDB (docs/FLEET.md).
.PHONY: bench-fleet
bench-fleet: all $(BENCH_PROGS)
	BUILD=$(abspath $(BUILD)) tests/bench/run-bench-fleet.sh

# `make load`: 200 concurrent guests, mixed commands, 120 s (issue 8 item 7;
# `make bench BENCH_LOAD=1` runs it inside the bench run too);
# LOAD_GUESTS / LOAD_SECONDS change it. The e2e smoke test (test_load_smoke.sh,
# 20 guests) needs vtpm-bench, so `make check` builds it.
.PHONY: load
load: bench-build
	BUILD=$(abspath $(BUILD)) tests/bench/run-load.sh
check: $(BENCH_DIR)/vtpm-bench
