#!/bin/sh
# dev/deps.sh - install the Debian packages meterd needs to build and test,
# only those that are missing. Quiet when nothing is missing; idempotent.
# Run by `make deps`, `make test` and `make run` (as `sh dev/deps.sh`).
# Not root and something missing: prints the apt-get command and exits 1.
set -eu

# postgresql-15: the server env.sh runs from /usr/lib/postgresql/15/bin
# (the `postgresql` metapackage means "the current version", which is 15 on
# Debian 12 but would silently change on another release).
# libsystemd-dev: sd_notify (common/service.c); python3-yaml: t_compose reads
# docker-compose.yml; systemd: systemd-analyze checks the units (t_service).
# clang and libclang-rt-14-dev (libFuzzer; only recommended by clang):
# make fuzz and t_fuzz_seeds.
PACKAGES="build-essential pkg-config librdkafka-dev libpq-dev libjansson-dev
libcurl4-openssl-dev libssl-dev libcmocka-dev libmicrohttpd-dev libsystemd-dev
postgresql-15 kcat python3-confluent-kafka python3-aiosmtpd python3-yaml systemd
valgrind clang libclang-rt-14-dev curl"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing" >&2
	echo "deps.sh: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# shellcheck disable=SC2086 # word splitting of the package list is wanted
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "deps.sh: apt-get failed (full output: $log)" >&2
	exit 1
fi
rm -f "$log"
echo "deps.sh: installed:$missing" >&2
