#!/usr/bin/python3
"""Crossing -> webhook latency: the time from producing the event that makes
a tenant reach a threshold (80, 90 or 100 % of the free plan's 50 requests a
day: its 40th, 45th and 50th event) to the webhook arriving at a receiver.

A test peer run by tests/perf/notify_latency.sh against a running meterd and
meter-notifier. The receiver is an HTTP server inside this process, so both
ends of each measurement use the same monotonic clock. Events of all tenants
are interleaved at a steady rate, so crossings happen while the producer is
live. Prints p50/p90/p99/max and, as the last line, a JSON summary.
"""
import argparse
import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from confluent_kafka import Producer

SEEN = {}
LOCK = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        t = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            b = json.loads(body)
            key = (b["tenant"], int(b["threshold"]))
            with LOCK:
                SEEN.setdefault(key, t)
        except (ValueError, KeyError):
            pass
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--events-topic", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tenants", type=int, default=200)
    ap.add_argument("--rate", type=float, default=2000.0, help="events per second")
    ap.add_argument("--prefix", default="nlat")
    a = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Hook)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    p = Producer({"bootstrap.servers": a.brokers, "linger.ms": 1, "enable.idempotence": True})
    tenants = ["%s-%d" % (a.prefix, i) for i in range(a.tenants)]
    crossing = {}
    interval = 1.0 / a.rate
    next_at = time.monotonic()
    for n in range(1, 51):
        for t in tenants:
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            ev = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "notify-latency",
                  "type": "com.meterd.usage", "time": now, "subject": t,
                  "data": {"operation": "chat", "input_tokens": 10, "output_tokens": 5}}
            while time.monotonic() < next_at:
                time.sleep(min(0.001, max(0.0, next_at - time.monotonic())))
            next_at += interval
            if n in (40, 45, 50):
                crossing[(t, n * 2)] = time.monotonic()
            p.produce(a.events_topic, key=t, value=json.dumps(ev))
            p.poll(0)
    p.flush(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with LOCK:
            if all(k in SEEN for k in crossing):
                break
        time.sleep(0.1)
    srv.shutdown()

    with LOCK:
        lat = sorted((SEEN[k] - crossing[k]) * 1000.0 for k in crossing if k in SEEN)
        extra = len([k for k in SEEN if k not in crossing])
    missing = len(crossing) - len(lat)
    if not lat:
        print("no webhooks arrived", file=sys.stderr)
        print(json.dumps({"webhooks": 0, "missing": missing}))
        return 1

    def pct(q):
        return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]

    print("tenants %d, rate %.0f events/s, %d crossings: crossing -> webhook p50 %.1f ms, "
          "p90 %.1f ms, p99 %.1f ms, max %.1f ms, missing %d, unexpected %d"
          % (a.tenants, a.rate, len(crossing), pct(0.5), pct(0.9), pct(0.99), lat[-1], missing,
             extra))
    print(json.dumps({"webhooks": len(lat), "missing": missing, "unexpected": extra,
                      "rate": a.rate, "p50_ms": round(pct(0.5), 1), "p90_ms": round(pct(0.9), 1),
                      "p99_ms": round(pct(0.99), 1), "max_ms": round(lat[-1], 1)}))
    return 0 if missing == 0 and extra == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
