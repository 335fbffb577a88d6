# attestation/: evidence providers (configfs-tsm, /dev/sev-guest, sim), the
# SEV-SNP and TDX verifiers, and the policy. Links OpenSSL (libcrypto) for
# X.509, RSASSA-PSS and ECDSA, json-c for TDX collateral, libsodium.
# The test chain and the AMD certificates, compiled in as C string literals
# (attestation/embed-pem.sh) so `--attestation sim` needs no files. The
# generated file is one of ATTEST_SRCS, so whoever compiles the sources
# (the clang fuzz builds) gets it too.
ATTEST_PEMS := $(sort $(wildcard attestation/testchain/*.pem attestation/amdroots/*.pem)) \
	attestation/testchain/vcek.key attestation/testchain/vcek-turin.key
ATTEST_GEN_C := $(BUILD)/gen/attest_embedded.c
ATTEST_SRCS := attestation/attest.c attestation/x509.c attestation/certcache.c attestation/snp.c \
	attestation/tdx.c attestation/tdx_collateral.c attestation/policy.c \
	attestation/provider.c attestation/sim.c attestation/ekbind.c $(ATTEST_GEN_C)
ATTEST_OBJS := $(ATTEST_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_ATTEST  := $(BUILD)/libattest.a
# Whoever links $(LIB_ATTEST) also links these.
LIB_ATTEST_DEPS = $(LIB_CRYPTO) $(LIB_JSON) $(LIB_SODIUM)

$(ATTEST_GEN_C): attestation/embed-pem.sh $(ATTEST_PEMS)
	@mkdir -p $(dir $@)
	sh attestation/embed-pem.sh attestation $(ATTEST_PEMS) > $@.tmp && mv $@.tmp $@

$(LIB_ATTEST): $(ATTEST_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Unit tests: real vectors copied into tests/vectors/ (with their SOURCE.txt).
TESTS_UNIT += $(BUILD)/tests/test_attest
$(BUILD)/tests/test_attest: $(BUILD)/obj/tests/unit/attestation/test_attest.o $(LIB_ATTEST) \
		$(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)

# Unit test of the EK binding (ekbind.c): vectors in tests/vectors/ekbind.
TESTS_UNIT += $(BUILD)/tests/test_ekbind
$(BUILD)/tests/test_ekbind: $(BUILD)/obj/tests/unit/attestation/test_ekbind.o $(LIB_ATTEST) \
		$(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS)
