# meterd - plain Makefile. `make` builds, `make test` installs what is missing,
# builds, starts a throwaway PostgreSQL and mock Kafka cluster, runs every
# test and stops them. `make run` runs the worker on that embedded default.
# V=1 shows full commands; SANITIZE=address,undefined builds with sanitizers.

CC ?= cc
VERSION := 0.1.0
PKGS := rdkafka libpq jansson
CFLAGS ?= -O2 -g
CFLAGS += -DMETER_VERSION=\"$(VERSION)\"
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
	-Wshadow -Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing \
	-I. -Icommon -Ischema -Iaggregator -Iconsumer -Ilibmeter -Iapi -I/usr/include/postgresql
LDLIBS := -lrdkafka -lpq -ljansson -lsystemd -lpthread -lm

ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

B := build
# The HTTP server and what rides on it: only the daemons link libmicrohttpd.
HTTP_SRC := common/httpd.c common/obs.c
COMMON_SRC := $(filter-out $(HTTP_SRC),$(wildcard common/*.c)) schema/event.c
API_SRC := $(filter-out api/main.c,$(wildcard api/*.c))
AGG_SRC := $(wildcard aggregator/*.c)
CONSUMER_SRC := $(filter-out consumer/main.c,$(wildcard consumer/*.c))
CTL_SRC := $(wildcard ctl/*.c)
NOTIFIER_SRC := $(filter-out notifier/main.c,$(wildcard notifier/*.c))
LIBMETER_SRC := $(wildcard libmeter/*.c)
SQL_FILES := $(sort $(wildcard sql/[0-9]*.sql)) $(sort $(wildcard sql/R_*.sql))

COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/%.o) $(B)/sql_embedded.o
AGG_OBJ := $(AGG_SRC:%.c=$(B)/%.o)
CONSUMER_OBJ := $(CONSUMER_SRC:%.c=$(B)/%.o)
CTL_OBJ := $(CTL_SRC:%.c=$(B)/%.o)
NOTIFIER_OBJ := $(NOTIFIER_SRC:%.c=$(B)/%.o)
LIBMETER_OBJ := $(LIBMETER_SRC:%.c=$(B)/%.o)
HTTP_OBJ := $(HTTP_SRC:%.c=$(B)/%.o)
API_OBJ := $(API_SRC:%.c=$(B)/%.o)
HTTP_LIBS := -lmicrohttpd

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

PROGS := $(B)/meterd $(B)/meterctl $(B)/meter-notifier $(B)/meter-api $(B)/mock_kafka \
	$(B)/libmeter.a

.PHONY: all clean test unit integration run deps docs check-docs fuzz bench
all: $(PROGS) $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/sql_embedded.c: $(SQL_FILES) sql/embed.sh
	@mkdir -p $(B)
	$(Q)sh sql/embed.sh $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(B)/sql_embedded.o: $(B)/sql_embedded.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(B)/meterd: $(B)/consumer/main.o $(CONSUMER_OBJ) $(AGG_OBJ) $(HTTP_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HTTP_LIBS)

# meterctl token uses the API's token helpers (api/token.c).
$(B)/meterctl: $(CTL_OBJ) $(CONSUMER_OBJ) $(AGG_OBJ) $(COMMON_OBJ) $(LIBMETER_OBJ) $(B)/api/token.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcrypto

$(B)/meter-notifier: $(B)/notifier/main.o $(NOTIFIER_OBJ) $(HTTP_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HTTP_LIBS) -lcurl -lcrypto

$(B)/meter-api: $(B)/api/main.o $(API_OBJ) $(HTTP_OBJ) $(COMMON_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HTTP_LIBS) -lcrypto

# libmeter: the library services link (see libmeter/README.md).
$(B)/libmeter.a: $(LIBMETER_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(B)/mock_kafka: $(B)/dev/mock_kafka.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(AGG_OBJ) $(CONSUMER_OBJ) $(COMMON_OBJ) $(LIBMETER_OBJ) \
		$(NOTIFIER_OBJ) $(API_OBJ) $(HTTP_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HTTP_LIBS) -lcmocka -lcurl -lcrypto

$(B)/tools/%: $(B)/tests/tools/%.o $(COMMON_OBJ) $(LIBMETER_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/tests/bench/%.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	$(Q)sh dev/deps.sh

# The test command of the README and of .ci/run.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash tests/run.sh

unit: all
	$(Q)bash tests/run.sh --unit-only

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash dev/run.sh

docs: $(B)/meterd
	$(Q)$(B)/meterd --config-reference > docs/CONFIG.md

# The benchmark: meterd against the naive design on one machine (README).
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash tests/bench/run.sh

fuzz:
	$(Q)bash tests/fuzz/run.sh

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
