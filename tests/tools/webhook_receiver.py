#!/usr/bin/python3
"""A webhook receiver for the notifier's tests: verifies Standard Webhooks v1
signatures with its own code (hmac, hashlib, base64; nothing shared with the
notifier), records every request as one JSON line, and misbehaves on demand.

    webhook_receiver.py --log FILE --port-file FILE [--port N] [--secret-file FILE]
                        [--mode-file FILE]

It listens on 127.0.0.1 (port 0: any free port, written to --port-file once
listening). The secret is read from --secret-file at each request (the file
may be written after the receiver starts: a test learns the tenant's secret
from meterctl after it knows the receiver's URL).

What to answer is in the query string of the webhook URL, so one receiver
serves many scenarios at once (counts are per webhook-id):
    fail=N          answer fail_status (default 500) to the first N requests
    fail_status=C   e.g. 429
    retry_after=V   a Retry-After header on those failures
    status=C        answer C to every request after the failures (e.g. 410)
    delay=S         sleep S seconds before answering (slow=N: only the first N)
Anything else gets 200 {"ok": true}.

--mode-file FILE (read at each request; absent or empty means "ok") makes
every request misbehave for a while, whatever its URL says, before the
rules above: "fail STATUS" answers STATUS (e.g. 503, 429), "slow SECONDS"
sleeps that long first (the chaos suite's nemesis writes it).

Each request adds a line to --log when it arrives ("event": "received") and
one when it is answered ("event": "answered"), with: t (unix time), path,
query, id, timestamp, signature, verified (signature good), ts_ok (within 5
minutes), n (its number among the requests with this webhook-id), status (the
answer), body (the raw body text) and, if it parses, json.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
COUNTS = {}


def verify(secret_text, msg_id, timestamp, body, signature_header):
    """Standard Webhooks v1: HMAC-SHA256 over id.timestamp.body with the
    base64-decoded secret (after its whsec_ prefix); any of the
    space-separated v1,<sig> entries may match."""
    if not secret_text or msg_id is None or timestamp is None or not signature_header:
        return False
    secret = secret_text[6:] if secret_text.startswith("whsec_") else secret_text
    try:
        key = base64.b64decode(secret, validate=True)
    except ValueError:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for part in signature_header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the JSON log says it all
        pass

    def record(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with LOCK:
            with open(self.server.log_path, "a") as f:
                f.write(line + "\n")
                f.flush()

    def do_GET(self):
        if self.path == "/_health":
            self.answer(200, b"ok\n", {})
        else:
            self.answer(404, b"not here\n", {})

    def answer(self, status, body, headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        t0 = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        msg_id = self.headers.get("webhook-id")
        ts = self.headers.get("webhook-timestamp")
        sig = self.headers.get("webhook-signature")
        secret = ""
        if self.server.secret_file:
            try:
                with open(self.server.secret_file) as f:
                    secret = f.read().strip()
            except OSError:
                secret = ""
        with LOCK:
            COUNTS[msg_id] = COUNTS.get(msg_id, 0) + 1
            n = COUNTS[msg_id]
        try:
            ts_ok = abs(int(ts) - t0) <= 300
        except (TypeError, ValueError):
            ts_ok = False
        rec = {
            "t": t0, "path": url.path, "query": url.query, "id": msg_id, "timestamp": ts,
            "signature": sig, "verified": verify(secret, msg_id, ts, body, sig), "ts_ok": ts_ok,
            "n": n, "content_type": self.headers.get("Content-Type"),
            "body": body.decode("utf-8", "replace"),
        }
        try:
            rec["json"] = json.loads(body)
        except ValueError:
            rec["json"] = None
        self.record(dict(rec, event="received"))

        mode = ""
        if self.server.mode_file:
            try:
                with open(self.server.mode_file) as f:
                    mode = f.read().strip()
            except OSError:
                mode = ""
        words = mode.split()
        if words and words[0] == "slow" and len(words) == 2:
            time.sleep(float(words[1]))
        if words and words[0] == "fail" and len(words) == 2:
            status = int(words[1])
            reply = json.dumps({"ok": False, "n": n, "mode": mode}).encode()
            try:
                self.answer(status, reply, {"Content-Type": "application/json"})
            except OSError:
                pass
            rec.update(event="answered", status=status, t=time.time(), mode=mode)
            self.record(rec)
            return

        delay = float(q.get("delay", 0))
        if delay and n <= int(q.get("slow", 1 << 30)):
            time.sleep(delay)
        headers = {"Content-Type": "application/json"}
        if n <= int(q.get("fail", 0)):
            status = int(q.get("fail_status", 500))
            if "retry_after" in q:
                headers["Retry-After"] = q["retry_after"]
        else:
            status = int(q.get("status", 200))
        reply = json.dumps({"ok": 200 <= status < 300, "n": n}).encode()
        try:
            self.answer(status, reply, headers)
        except OSError:
            pass  # the notifier went away (killed mid-delivery)
        rec.update(event="answered", status=status, t=time.time())
        self.record(rec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret-file")
    ap.add_argument("--mode-file")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.log_path = a.log
    srv.secret_file = a.secret_file
    srv.mode_file = a.mode_file
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
