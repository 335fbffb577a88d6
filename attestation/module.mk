# attestation/: evidence providers and verifiers (sim now; SNP/TDX later).
ATTEST_SRCS := attestation/attest.c
ATTEST_OBJS := $(ATTEST_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_ATTEST  := $(BUILD)/libattest.a

$(LIB_ATTEST): $(ATTEST_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
