#!/usr/bin/python3
"""An SMTP server for the notifier's tests (Debian's python3-aiosmtpd): every
message accepted is recorded as one JSON line.

    smtp_sink.py --log FILE --port-file FILE [--port N] [--auth USER:PASSWORD]
                 [--fail-first N]

Listens on 127.0.0.1 (port 0: a free port, written to --port-file once
ready). With --auth, AUTH PLAIN/LOGIN is required (over plain text: this is
a test peer) and checked against USER:PASSWORD. --fail-first N answers 451
to the first N deliveries of each Message-ID.

A line: t, mail_from, rcpt_tos, auth_login, message_id, subject, from, to,
date, content_type, text (the text/plain part), html (the text/html part),
raw (the whole message).
"""
import argparse
import email
import email.policy
import json
import os
import signal
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOCK = threading.Lock()


class Sink:
    def __init__(self, log_path, fail_first):
        self.log_path = log_path
        self.fail_first = fail_first
        self.counts = {}

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        mid = str(msg.get("Message-ID", ""))
        self.counts[mid] = self.counts.get(mid, 0) + 1
        if self.counts[mid] <= self.fail_first:
            return "451 4.3.0 try again later"
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        rec = {
            "t": time.time(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": login.decode() if login else None,
            "message_id": mid,
            "subject": str(msg.get("Subject", "")),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "date": str(msg.get("Date", "")),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
            "raw": raw.decode("utf-8", "replace"),
        }
        with LOCK:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
        return "250 2.0.0 OK"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--auth")
    ap.add_argument("--fail-first", type=int, default=0)
    a = ap.parse_args()
    kwargs = {}
    if a.auth:
        user, _, password = a.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, auth_data=auth_data if ok else None)

        kwargs = {"authenticator": authenticator, "auth_required": True,
                  "auth_require_tls": False}
    port = a.port or free_port()
    ctl = Controller(Sink(a.log, a.fail_first), hostname="127.0.0.1", port=port, **kwargs)
    ctl.start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, a.port_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
