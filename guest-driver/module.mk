# guest-driver: rules added by this folder

# --- TCTI plugin: libtss2-tcti-vtpm.so.0 ------------------------------------
# Loaded by tctildr into arbitrary programs (tpm2-tools, ESYS/FAPI users), so
# it links only libc: no libtransport.a, no $(LDFLAGS_COMMON) (that has -pie).
# Only Tss2_Tcti_Info and Tss2_Tcti_Vtpm_Init are exported (hidden visibility
# plus the version script).
TCTI_SO  := $(BUILD)/libtss2-tcti-vtpm.so.0
TCTI_MAP := guest-driver/tcti_vtpm.map
PROGRAMS += $(TCTI_SO) $(BUILD)/libtss2-tcti-vtpm.so

$(BUILD)/obj/guest-driver/tcti_vtpm.o: ALL_CFLAGS += -fvisibility=hidden

$(TCTI_SO): $(BUILD)/obj/guest-driver/tcti_vtpm.o $(TCTI_MAP)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libtss2-tcti-vtpm.so.0 -Wl,-z,relro,-z,now \
		-Wl,--version-script=$(TCTI_MAP) $(SANFLAGS) \
		-o $@ $(filter %.o,$^)

$(BUILD)/libtss2-tcti-vtpm.so: $(TCTI_SO)
	ln -sf libtss2-tcti-vtpm.so.0 $@

# Unit test: drives the built .so through dlopen like tctildr does, against
# an in-process fake vtpm-guest; finds the .so next to ../ of its own binary.
TESTS_UNIT += $(BUILD)/tests/test_tcti

$(BUILD)/tests/test_tcti: $(BUILD)/obj/tests/unit/guest-driver/test_tcti.o | $(TCTI_SO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ -lpthread -ldl

# --- vtpm-guest: the guest agent --------------------------------------------
# vtpm_guest.c: the channel to vtpmd and the event loop (guest.h); the front
# ends: local_srv.c (local socket), proxy.c (the kernel's vtpm_proxy device),
# swtpm_srv.c (swtpm-compatible endpoint); the pure parsers they use
# (local_proto.c, tpm_frame.c, swtpm_ctrl.c) are fuzzed in tests/fuzz.
GUEST_OBJS := $(addprefix $(BUILD)/obj/guest-driver/, vtpm_guest.o freshness.o local_srv.o \
	proxy.o swtpm_srv.o notify.o local_proto.o tpm_frame.o swtpm_ctrl.o rm.o bind_ek.o)
PROGRAMS += $(BUILD)/vtpm-guest
$(BUILD)/vtpm-guest: $(GUEST_OBJS) $(LIB_ATTEST) $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_ATTEST_DEPS) $(LIB_SODIUM)

# Unit test: known answers for the parsers of peers' bytes (swtpm control
# requests, vtpm_proxy commands, swtpm data frames).
TESTS_UNIT += $(BUILD)/tests/test_guest_parsers
$(BUILD)/tests/test_guest_parsers: $(BUILD)/obj/tests/unit/guest-driver/test_guest_parsers.o \
		$(BUILD)/obj/guest-driver/swtpm_ctrl.o $(BUILD)/obj/guest-driver/tpm_frame.o \
		$(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_SODIUM)

# Unit test: the resource manager against a fake TPM with 3 object slots.
TESTS_UNIT += $(BUILD)/tests/test_rm
$(BUILD)/tests/test_rm: $(BUILD)/obj/tests/unit/guest-driver/test_rm.o \
		$(BUILD)/obj/guest-driver/rm.o $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_SODIUM)

# make install: the systemd unit, with /usr/local replaced by $(PREFIX).
install: install-guest
.PHONY: install-guest
install-guest: all
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local|$(PREFIX)|g' guest-driver/vtpm-guest.service > \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/vtpm-guest.service

# An uninstrumented copy of the plugin for `make asan check`: tpm2-tools are
# not built with ASan, and preloading the ASan runtime into them deadlocks
# in libp11-kit's destructor at exit. The plugin itself runs under ASan in
# its unit test (test_tcti dlopens the instrumented one).
TCTI_PLAIN := $(BUILD)/plain/libtss2-tcti-vtpm.so.0
ifneq ($(SANFLAGS),)
PROGRAMS += $(TCTI_PLAIN)
endif
$(TCTI_PLAIN): guest-driver/tcti_vtpm.c $(TCTI_MAP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -fvisibility=hidden -Itransport -Iguest-driver \
		$(PKG_CFLAGS) -shared -Wl,-soname,libtss2-tcti-vtpm.so.0 -Wl,-z,relro,-z,now \
		-Wl,--version-script=$(TCTI_MAP) -o $@ guest-driver/tcti_vtpm.c
	ln -sf libtss2-tcti-vtpm.so.0 $(dir $@)libtss2-tcti-vtpm.so
