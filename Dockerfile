# syntax=docker/dockerfile:1
# meterd, meter-notifier, meter-api and meterctl in one image (Debian 12).
#
#   docker build -t meterd:0.1.0 .
#   docker run --rm meterd:0.1.0 meterd --help
#
# The build stage compiles with the Debian -dev packages (as dev/deps.sh
# installs them); the runtime stage has only their runtime libraries, and
# runs as an unprivileged user. Configuration: METER_* environment
# variables (docs/CONFIG.md), or a file in METER_CONFIG_FILE.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config librdkafka-dev libpq-dev libjansson-dev \
      libcurl4-openssl-dev libssl-dev libmicrohttpd-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# FAILPOINTS=0: a release build, without the test-only crash points.
RUN make -j"$(nproc)" FAILPOINTS=0 build/meterd build/meter-notifier build/meter-api build/meterctl \
 && strip build/meterd build/meter-notifier build/meter-api build/meterctl

FROM debian:12-slim AS runtime
# curl: the health checks (docker-compose.yml) ask /readyz with it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      librdkafka1 libpq5 libjansson4 libcurl4 libssl3 libmicrohttpd12 libsystemd0 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin meterd
COPY --from=build /src/build/meterd /src/build/meter-notifier /src/build/meter-api \
     /src/build/meterctl /usr/local/bin/
USER meterd:meterd
ENV METER_LOG_FORMAT=json
# meterd's /metrics, /livez, /readyz when METER_HTTP_ADDR is set (the
# compose file uses 9464 for meterd, 9465 for meter-notifier, 8080 for
# meter-api).
EXPOSE 8080 9464 9465
STOPSIGNAL SIGTERM
CMD ["meterd"]
