# tools: rules added by this folder

# vtpm-relay: the host's byte relay (vhost-vsock and hybrid vsock).
PROGRAMS += $(BUILD)/vtpm-relay
$(BUILD)/vtpm-relay: $(BUILD)/obj/tools/vtpm-relay.o $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^
