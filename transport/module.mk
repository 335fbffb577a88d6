# transport/: the lowest layer every program links: errors, the bounds-checked
# cursor, logging, endpoints, the Noise handshake and the framed channel.
TRANSPORT_SRCS := transport/vtpm_error.c transport/cursor.c transport/log.c \
	transport/noise.c
TRANSPORT_SRCS += transport/endpoint.c transport/channel.c
TRANSPORT_OBJS := $(TRANSPORT_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_TRANSPORT  := $(BUILD)/libtransport.a

$(LIB_TRANSPORT): $(TRANSPORT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

TESTS_UNIT += $(BUILD)/tests/test_noise
$(BUILD)/tests/test_noise: $(BUILD)/obj/tests/unit/transport/test_noise.o $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(LIB_SODIUM) $(LIB_JSON)

TESTS_UNIT += $(BUILD)/tests/test_endpoint
$(BUILD)/tests/test_endpoint: $(BUILD)/obj/tests/unit/transport/test_endpoint.o $(LIB_TRANSPORT)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^
