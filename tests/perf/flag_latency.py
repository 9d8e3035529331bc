#!/usr/bin/python3
"""Crossing -> flag latency: the time from producing the event that makes a
tenant reach its limit to the blocked flag being readable on the limits topic.

A test peer (Debian's python3 with python3-confluent-kafka), run by
tests/perf/flag_latency.sh against a running meterd. Tenants are on the free
plan (50 requests a day): each gets 50 events, interleaved with the other
tenants' at a steady rate, and the 50th is the crossing. Prints p50/p99 and,
as the last line, a JSON summary.
"""
import argparse
import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--events-topic", required=True)
    ap.add_argument("--limits-topic", required=True)
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second")
    ap.add_argument("--prefix", default="lat")
    a = ap.parse_args()

    seen = {}
    stop = threading.Event()

    c = Consumer({"bootstrap.servers": a.brokers, "group.id": "flag-latency-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    md = c.list_topics(a.limits_topic, timeout=10)
    parts = [TopicPartition(a.limits_topic, p, -1) for p in md.topics[a.limits_topic].partitions]  # end
    c.assign(parts)

    def reader():
        while not stop.is_set():
            m = c.poll(0.05)
            if m is None or m.error():
                continue
            try:
                v = json.loads(m.value())
            except ValueError:
                continue
            if v.get("state") == "blocked" and m.key():
                seen.setdefault(m.key().decode(), time.monotonic())

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(2)  # the reader is positioned at the end

    p = Producer({"bootstrap.servers": a.brokers, "linger.ms": 1, "enable.idempotence": True})
    crossing = {}
    tenants = ["%s-%d" % (a.prefix, i) for i in range(a.tenants)]
    interval = 1.0 / a.rate
    next_at = time.monotonic()
    # 48 events per tenant first; then, tenant after tenant, its 49th and 50th
    # (the crossing) with ten one-off events of filler tenants in between, so
    # that crossings are spread over the run instead of landing together.
    order = [(n, t) for n in range(48) for t in tenants]
    for i, t in enumerate(tenants):
        order += [(48, t), (49, t)] + [(0, "%s-fill-%d-%d" % (a.prefix, i, k)) for k in range(10)]
    for n, t in order:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        ev = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "flag-latency",
              "type": "com.meterd.usage", "time": now, "subject": t,
              "data": {"operation": "chat", "input_tokens": 10, "output_tokens": 5}}
        while time.monotonic() < next_at:
            time.sleep(min(0.001, max(0.0, next_at - time.monotonic())))
        next_at += interval
        p.produce(a.events_topic, key=t, value=json.dumps(ev))
        if n == 49:
            crossing["tenant/" + t] = time.monotonic()
        p.poll(0)
    p.flush(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len([k for k in crossing if k in seen]) < len(crossing):
        time.sleep(0.1)
    stop.set()
    th.join(2)
    c.close()

    lat = sorted((seen[k] - crossing[k]) * 1000.0 for k in crossing if k in seen)
    missing = len(crossing) - len(lat)
    if not lat:
        print("no flags seen", file=sys.stderr)
        print(json.dumps({"flags": 0, "missing": missing}))
        return 1

    def pct(q):
        return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]

    print("tenants %d, rate %.0f events/s: crossing -> flag p50 %.1f ms, p99 %.1f ms, max %.1f ms,"
          " missing %d" % (a.tenants, a.rate, pct(0.5), pct(0.99), lat[-1], missing))
    print(json.dumps({"flags": len(lat), "missing": missing, "rate": a.rate,
                      "flag_p50_ms": round(pct(0.5), 1), "flag_p99_ms": round(pct(0.99), 1),
                      "flag_max_ms": round(lat[-1], 1)}))
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
