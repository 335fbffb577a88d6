# tests/fuzz/: one libFuzzer harness per parser of untrusted input
# (tests/fuzz/fuzz_*.c, seeds in tests/fuzz/corpus/<name>/, crash
# regressions in tests/fuzz/regress/<name>/).
#  - `make check` builds every harness with the normal compiler and a replay
#    main (tests/fuzz/replay_main.c) and runs it over its seeds and
#    regressions, so no harness rots and every found crash stays fixed;
#  - `make fuzz` builds them with clang -fsanitize=fuzzer,address,undefined
#    and fuzzes each for FUZZ_SECONDS (default 30), printing executions.
FUZZ_HARNESSES := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES     := $(FUZZ_HARNESSES:tests/fuzz/fuzz_%.c=%)
FUZZ_SECONDS   ?= 30
FUZZ_CC        ?= clang
FUZZ_EXTRA_OBJS := $(BUILD)/obj/vtpmd/ipc.o $(BUILD)/obj/vtpmd/config.o $(BUILD)/obj/guest-driver/local_proto.o \
	$(BUILD)/obj/guest-driver/rm.o $(BUILD)/obj/guest-driver/freshness.o \
	$(BUILD)/obj/guest-driver/tpm_frame.o $(BUILD)/obj/guest-driver/swtpm_ctrl.o
FUZZ_EXTRA_SRCS := vtpmd/ipc.c vtpmd/config.c guest-driver/local_proto.c guest-driver/rm.c \
	guest-driver/freshness.c \
	guest-driver/tpm_frame.c guest-driver/swtpm_ctrl.c
FUZZ_LIBS      ?= $(LIB_LMDB) $(LIB_JSON) $(LIB_CRYPTO) $(LIB_SODIUM)

REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/fuzz_%)
$(BUILD)/fuzz-replay/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay_main.o \
		$(FUZZ_EXTRA_OBJS) $(LIB_STORAGE) $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(FUZZ_LIBS)

TEST_TOOLS += $(REPLAY_BINS)
FUZZ_REPLAY_SCRIPT := tests/fuzz/replay.sh

FUZZ_BINS := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(TRANSPORT_SRCS) $(ATTEST_SRCS) $(STORAGE_SRCS) $(FUZZ_EXTRA_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
		-Itransport -Istorage -Iattestation -Ivtpmd -Iguest-driver $(PKG_CFLAGS) \
		-DVTPM_VERSION=\"$(VERSION)\" -o $@ $< $(TRANSPORT_SRCS) $(ATTEST_SRCS) \
		$(STORAGE_SRCS) $(FUZZ_EXTRA_SRCS) $(FUZZ_LIBS)

fuzz: $(FUZZ_BINS)
	tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)
