# tests/fleet/: `make check-fleet` (docs/FLEET.md): a three-member etcd
# cluster and three vtpmd on loopback, started and stopped by
# tests/fleet/test_fleet.sh (owner killed, paused, etcd members stopped),
# which also runs test_store_etcd (the backend's semantics) against it, and
# test_fleet_batches.sh (group commits within etcd's --max-txn-ops).
# Needs etcd (tools/setup.sh installs etcd-server); a few minutes.
FLEET_TOOLS := $(BUILD)/tests/test_store_etcd
$(BUILD)/tests/test_store_etcd: $(BUILD)/obj/tests/unit/storage/test_store_etcd.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_JSON) $(LIB_CRYPTO) $(LIB_SODIUM)

check-fleet: all $(FLEET_TOOLS) $(BUILD)/bench/vtpm-bench
	BUILD=$(abspath $(BUILD)) TEST_TIMEOUT=900 tests/run-tests.sh tests/fleet/test_fleet.sh \
		tests/fleet/test_fleet_batches.sh
