#!/usr/bin/env bash
# docker-compose.yml, the Dockerfile and .dockerignore, checked without a
# Docker engine (tests/tools/check_deploy.py): the compose file parses; every
# image is pinned to a tag (the local one to the Makefile's VERSION); build
# contexts and volumes exist; every service that keeps running has a health
# check; depends_on conditions can be met; our services' variables are
# options of the config table (of the program they run), their health checks
# ask /readyz on METER_HTTP_ADDR's published port, their stop grace exceeds
# METER_SHUTDOWN_GRACE and their broker, database and SMTP addresses are the
# compose services'; Kafka is single-node KRaft and the init job creates
# meterd's topics (limits and rollups compacted). The Dockerfile has a build
# and a runtime stage on debian:12-slim whose packages exist in Debian 12,
# no -dev package at run time, and every library the binaries link comes from
# a runtime package. A check that cannot apply on this branch says "skip".
# Needs no database or broker.
source "$(dirname "$0")/lib.sh"

[[ -x $METERD ]] || die "$METERD is missing; run 'make all' first"
out=$("$PY" "$ROOT/tests/tools/check_deploy.py" "$ROOT") || die "check_deploy.py failed: $out"
while IFS=$'\t' read -r status what detail; do
	case $status in
	ok) check "$what" true ;;
	skip) say "skip $what: $detail" ;;
	*) check "$what ($detail)" false ;;
	esac
done <<<"$out"
check "at least 100 checks ran" test "$CHECKS" -ge 100
test_done
