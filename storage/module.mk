# storage/: the persistent store: sealing (libsodium), the store interface
# with its LMDB backend, and key providers. Linked only by the process that
# holds keys and the store (the parent); never by a TPM worker.
STORAGE_SRCS := storage/seal.c storage/store.c storage/store_lmdb.c storage/keyprov.c
STORAGE_OBJS := $(STORAGE_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_STORAGE  := $(BUILD)/libstorage.a
LIBS_A       += $(LIB_STORAGE)

$(LIB_STORAGE): $(STORAGE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

TESTS_UNIT += $(BUILD)/tests/test_storage
$(BUILD)/tests/test_storage: $(BUILD)/obj/tests/unit/storage/test_storage.o $(LIB_STORAGE) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_LMDB) $(LIB_SODIUM)
