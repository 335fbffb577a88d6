# storage/: the persistent store: sealing (libsodium), the store interface
# with its LMDB backend, and key providers (file:, and kbs: with its JOSE
# helpers: OpenSSL libcrypto, json-c; libcurl is dlopen()ed at run time, so
# nothing here links it). Linked only by the process that holds keys and
# the store (the parent); never by a TPM worker.
STORAGE_SRCS := storage/seal.c storage/store.c storage/store_lmdb.c storage/store_log.c storage/store_etcd.c \
	storage/etcd_json.c storage/keyprov.c \
	storage/keyprov_kbs.c storage/curl_dl.c storage/jose.c storage/rewrap.c \
	storage/kbs_evidence.c
# The backup/export container (keyless, also linked by vtpmctl for offline
# verify) and the keys that MAC it (the daemon only).
STORAGE_SRCS += storage/backup_format.c storage/backup_keys.c
STORAGE_OBJS := $(STORAGE_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_STORAGE  := $(BUILD)/libstorage.a
LIBS_A       += $(LIB_STORAGE)

$(LIB_STORAGE): $(STORAGE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

TESTS_UNIT += $(BUILD)/tests/test_storage
$(BUILD)/tests/test_storage: $(BUILD)/obj/tests/unit/storage/test_storage.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_JSON) $(LIB_CRYPTO) $(LIB_SODIUM)

TESTS_UNIT += $(BUILD)/tests/test_kbs
$(BUILD)/tests/test_kbs: $(BUILD)/obj/tests/unit/storage/test_kbs.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_JSON) $(LIB_CRYPTO) $(LIB_SODIUM)

TESTS_UNIT += $(BUILD)/tests/test_backup
$(BUILD)/tests/test_backup: $(BUILD)/obj/tests/unit/storage/test_backup.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_SODIUM)
