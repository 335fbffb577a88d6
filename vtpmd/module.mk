# vtpmd/: the daemon (parent role + worker role in one binary) and vtpmctl.
# Trust boundary, enforced by `make check-layering`: worker objects reference
# no storage, key or attestation symbols; parent objects no libtpms symbol.
VTPMD_PARENT_SRCS := vtpmd/vtpmd.c vtpmd/session.c vtpmd/instance.c vtpmd/admin.c vtpmd/config.c vtpmd/endorse.c
VTPMD_PARENT_SRCS += vtpmd/keys.c vtpmd/keys_evidence.c
# A fleet on etcd (issue 10): --store, instance ownership.
VTPMD_PARENT_SRCS += vtpmd/fleet.c
# Operators (issue 7): backup/verify/restore, export/import, audit log, metrics.
VTPMD_PARENT_SRCS += vtpmd/backup.c vtpmd/migrate.c vtpmd/audit.c vtpmd/metrics.c
VTPMD_WORKER_SRCS := vtpmd/worker.c vtpmd/zygote.c
VTPMD_COMMON_SRCS := vtpmd/ipc.c vtpmd/sandbox.c
VTPMD_PARENT_OBJS := $(VTPMD_PARENT_SRCS:%.c=$(BUILD)/obj/%.o)
VTPMD_WORKER_OBJS := $(VTPMD_WORKER_SRCS:%.c=$(BUILD)/obj/%.o)
VTPMD_COMMON_OBJS := $(VTPMD_COMMON_SRCS:%.c=$(BUILD)/obj/%.o)

PROGRAMS += $(BUILD)/vtpmd $(BUILD)/vtpmctl

$(BUILD)/vtpmd: $(VTPMD_PARENT_OBJS) $(VTPMD_WORKER_OBJS) $(VTPMD_COMMON_OBJS) \
		$(LIB_STORAGE) $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_TPMS) $(LIB_LMDB) $(LIB_JSON) $(LIB_SECCOMP) \
		$(LIB_CRYPTO) $(LIB_SODIUM)

# vtpmctl_ops.o: backup, verify, restore, export, import, audit, metrics; it
# takes only the keyless backup-format parser from libstorage (offline verify).
$(BUILD)/vtpmctl: $(BUILD)/obj/vtpmd/vtpmctl.o $(BUILD)/obj/vtpmd/vtpmctl_verify.o \
		$(BUILD)/obj/vtpmd/vtpmctl_ops.o $(LIB_STORAGE) \
		$(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)

.PHONY: check-layering
check-layering: $(VTPMD_PARENT_OBJS) $(VTPMD_WORKER_OBJS)
	@bad=$$(nm -u $(VTPMD_WORKER_OBJS) | grep -E ' (store_|seal_|unseal_|keyprov_|mdb_|attest_|crypto_aead_xchacha)' || true); \
	 if [ -n "$$bad" ]; then echo "layering: worker references keys/storage: $$bad"; exit 1; fi
	@bad=$$(nm -u $(VTPMD_PARENT_OBJS) | grep -E ' (TPMLIB_|TPM_IO_)' || true); \
	 if [ -n "$$bad" ]; then echo "layering: parent references libtpms: $$bad"; exit 1; fi
	@echo "layering: 2 passed, 0 failed"

TESTS_UNIT += $(BUILD)/tests/test_sandbox
$(BUILD)/tests/test_sandbox: $(BUILD)/obj/tests/unit/vtpmd/test_sandbox.o $(BUILD)/obj/vtpmd/sandbox.o $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_SECCOMP)
