#!/usr/bin/python3
"""The service manager's side of sd_notify(3), for t_service: listens on an
AF_UNIX datagram socket (the path given, as systemd's NOTIFY_SOCKET) and
records every notification as one JSON line: {"t": unix time, "pid": sender
pid (SCM_CREDENTIALS, as systemd checks it; null if not sent), "fields":
{"READY": "1", "STATUS": "...", ...}, "raw": the datagram}.

    notify_peer.py --socket PATH --log FILE

It writes nothing else and stops on SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(a.socket)
    creds_size = socket.CMSG_SPACE(struct.calcsize("3i"))
    with open(a.log, "a", buffering=1) as log:
        while True:
            data, anc, _, _ = s.recvmsg(4096, creds_size)
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            log.write(json.dumps({"t": time.time(), "pid": pid, "fields": fields, "raw": text}) + "\n")


if __name__ == "__main__":
    main()
