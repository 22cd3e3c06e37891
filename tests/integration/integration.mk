# Tools the integration tests run (included by the top-level Makefile).
INTEG_TOOLS := $(BUILD)/tests/integration/hostile_client

all: $(INTEG_TOOLS)

$(BUILD)/tests/integration/%: tests/integration/%.c common/pc_session_proto.h $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(CFLAGS) -MF $@.d $(LDFLAGS) -o $@ $< $(LDLIBS)
