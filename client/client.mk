# libpeercache: the client library SGLang (or any local process) links to talk
# to the node's engine. Included by the top Makefile.
#
#   make                           also builds build/libpeercache.so (soname
#                                  libpeercache.so.1) and build/peercache-demo-client
#   make install PREFIX=/usr/local the library, client/peercache.h and a
#                                  peercache.pc for pkg-config (DESTDIR-aware)
#
# The library needs no EAL: the rte_ring calls it makes are inline, so it links
# no DPDK library (only DPDK's headers at build time). Only pc_client_* is
# exported (hidden visibility plus client/libpeercache.map).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CLIENT_SONAME := libpeercache.so.1
CLIENT_SRCS := client/peercache.c
CLIENT_PIC_OBJS := $(CLIENT_SRCS:%.c=$(BUILD)/obj-pic/%.o)
CLIENT_LIB := $(BUILD)/libpeercache.so
CLIENT_DEMO := $(BUILD)/peercache-demo-client

all: $(CLIENT_LIB) $(CLIENT_DEMO)

$(BUILD)/obj-pic/client/%.o: client/%.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC PIC  $<")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(BUILD)/$(CLIENT_SONAME): $(CLIENT_PIC_OBJS) client/libpeercache.map
	@$(if $(Q),echo "  LD SO   $@")
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,$(CLIENT_SONAME) \
		-Wl,--version-script=client/libpeercache.map -Wl,--as-needed -Wl,-z,defs \
		-o $@ $(CLIENT_PIC_OBJS) -lpthread

$(CLIENT_LIB): $(BUILD)/$(CLIENT_SONAME)
	$(Q)ln -sf $(CLIENT_SONAME) $@

$(CLIENT_DEMO): client/examples/demo_client.c client/peercache.h $(CLIENT_LIB) $(BUILD)/.cflags
	@$(if $(Q),echo "  CC LD   $@")
	$(Q)$(CC) $(CFLAGS) -MF $@.d $(LDFLAGS) -o $@ $< -L$(BUILD) -lpeercache \
		-Wl,-rpath,'$$ORIGIN'

# The unit test runs the demo against its fake engine.
$(BUILD)/tests/client/peercache_ut: $(CLIENT_DEMO)

.PHONY: install install-client
install: install-client

# peercache.pc is written here, so it always carries this run's PREFIX/LIBDIR.
install-client: $(BUILD)/$(CLIENT_SONAME)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 $(BUILD)/$(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libpeercache.so
	install -m 0644 client/peercache.h $(DESTDIR)$(INCLUDEDIR)/peercache.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
		'Name: peercache' \
		'Description: PeerCache client library (KV-cache pages through the local engine)' \
		'Version: $(VERSION)' \
		'Libs: -L$${libdir} -lpeercache' \
		'Libs.private: -lpthread' \
		'Cflags: -I$${includedir}' > $(DESTDIR)$(PKGCONFIGDIR)/peercache.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/peercache.pc

-include $(CLIENT_PIC_OBJS:.o=.d) $(CLIENT_DEMO).d
