# meterd - plain Makefile. `make` builds, `make test` installs what is missing,
# builds, starts a throwaway PostgreSQL and mock Kafka cluster, runs every
# test and stops them. `make run` runs the worker on that embedded default.
# V=1 shows full commands; SANITIZE=address,undefined builds with sanitizers
# (into build-san/ unless B= names another build directory). B=DIR builds
# into DIR; the test scripts find the binaries there (METER_BUILD_DIR).

CC ?= cc
VERSION := 0.1.0
PKGS := rdkafka libpq jansson
CFLAGS ?= -O2 -g
CFLAGS += -DMETER_VERSION=\"$(VERSION)\"
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
	-Wshadow -Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing \
	-I. -Icommon -Ischema -Iaggregator -Iconsumer -Ilibmeter -Iapi -Itests/chaos \
	-I/usr/include/postgresql
LDLIBS := -lrdkafka -lpq -ljansson -lsystemd -lpthread -lm

# FAILPOINTS=0: a release build, the test-only crash points compiled out
# (common/failpoint.h); the tests need them (the default).
FAILPOINTS ?= 1
ifeq ($(FAILPOINTS),0)
CFLAGS += -DMETER_NO_FAILPOINTS
endif

ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

ifneq ($(SANITIZE),)
B ?= build-san
else
B ?= build
endif
# The unit tests of `make test` also run under these sanitizers (unit tier
# only: CI stays short), built into $(SAN_B). UNIT_SANITIZE= turns that off.
UNIT_SANITIZE ?= address,undefined
SAN_B ?= build-san
# The HTTP server and what rides on it: only the daemons link libmicrohttpd.
HTTP_SRC := common/httpd.c common/obs.c
COMMON_SRC := $(filter-out $(HTTP_SRC),$(wildcard common/*.c)) schema/event.c schema/event_fast.c
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
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%) $(B)/tools/chaos_gen
CHAOS_SRC := $(wildcard tests/chaos/*.c)
CHAOS_OBJ := $(CHAOS_SRC:%.c=$(B)/%.o)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

PROGS := $(B)/meterd $(B)/meterctl $(B)/meter-notifier $(B)/meter-api $(B)/mock_kafka \
	$(B)/libmeter.a

.PHONY: all clean test unit unit-bins integration run deps docs fuzz valgrind chaos bench bench-floor
all: $(PROGS) $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)
unit-bins: $(UNIT_BIN)

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

# The chaos suite's generator (tests/chaos/): several files, and the
# worker's parser for its selfcheck.
$(B)/tools/chaos_gen: $(CHAOS_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

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

# The test command of the README and of .ci/run. Besides the build in $(B),
# the unit tests are built with $(UNIT_SANITIZE) sanitizers in $(SAN_B) and
# run too (not when the whole build is already sanitized).
SAN_UNIT_DIR :=
ifeq ($(SANITIZE),)
ifneq ($(UNIT_SANITIZE),)
SAN_UNIT_DIR := $(SAN_B)
endif
endif
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(if $(SAN_UNIT_DIR),$(Q)$(MAKE) --no-print-directory B=$(SAN_B) SANITIZE=$(UNIT_SANITIZE) unit-bins)
	$(Q)METER_BUILD_DIR=$(B) METER_SAN_UNIT_DIR=$(SAN_UNIT_DIR) bash tests/run.sh

unit: all
	$(if $(SAN_UNIT_DIR),$(Q)$(MAKE) --no-print-directory B=$(SAN_B) SANITIZE=$(UNIT_SANITIZE) unit-bins)
	$(Q)METER_BUILD_DIR=$(B) METER_SAN_UNIT_DIR=$(SAN_UNIT_DIR) bash tests/run.sh --unit-only

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)METER_BUILD_DIR=$(B) bash dev/run.sh

docs: $(B)/meterd
	$(Q)$(B)/meterd --config-reference > docs/CONFIG.md

# The benchmark: meterd against the naive design on one machine (README).
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bash tests/bench/run.sh

# What PostgreSQL's own primitives cost per event here (README: What bounds it).
bench-floor: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)B=$(B) bash tests/bench/floor.sh

fuzz:
	$(Q)METER_BUILD_DIR=$(B) bash tests/fuzz/run.sh

# The chaos suite (tests/chaos/chaos.sh): SEED= to replay one, EVENTS=,
# DURATION= (seconds, at most 3.5 h), TENANTS=, PARTITIONS=. Long by
# default; many partitions, as the mock broker keeps ~5 MB of each.
EVENTS ?= 100000
DURATION ?= 900
TENANTS ?= 16
PARTITIONS ?= 32
chaos: all
	$(Q)METER_BUILD_DIR=$(B) bash tests/chaos/chaos.sh --events $(EVENTS) --duration $(DURATION) \
		--tenants $(TENANTS) --partitions $(PARTITIONS) $(if $(SEED),--seed $(SEED))

# The unit tests under valgrind memcheck (no leaks, no invalid accesses).
valgrind: all
	$(Q)METER_BUILD_DIR=$(B) bash tests/valgrind.sh

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
