#!/usr/bin/python3
"""check.py - the chaos suite's judge: compares what meterd and
meter-notifier produced, read only through their stable contracts, with
what chaos_gen's oracle computed from the generated stream alone.

    check.py --oracle DIR --actual DIR [--only rollups,rejects,flags,notifications]
             [--stat NAME=VALUE]... [--quiet]

Oracle files (chaos_gen plan): rollups.tsv, rejects.tsv, flags.tsv,
notifications.tsv, figures.tsv. Actual files (dumped by chaos.sh):
  rollups.tsv   the rollups table (same columns as the oracle's)
  rejected.tsv  rejected_events: kafka_partition, kafka_offset, reason
  sent.tsv      chaos_gen produce's delivery reports: seq, partition, offset
  dlq.tsv       the dead-letter topic: source partition, offset, reason
  flags.tsv     the limits topic: key TAB value, in log order
  hooks.jsonl   the webhook receiver's log; mail.jsonl the SMTP sink's

Prints what it checked and every mismatch (the first few of each kind),
then, last, one JSON line: the figures (seed, events, duplicates, rejected,
and the --stat values) and "mismatches". Exit status 1 when there are
mismatches, 0 otherwise.
"""
import argparse
import collections
import json
import os
import re
import sys

SHOW = 8  # mismatches shown per kind


def tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
    return out


class Judge:
    def __init__(self, quiet):
        self.quiet = quiet
        self.mismatches = 0
        self.figures = {}

    def say(self, msg):
        if not self.quiet:
            print(msg)

    def ok(self, what):
        self.say("ok   " + what)

    def bad(self, what, details):
        self.mismatches += len(details) if details else 1
        self.say("FAIL %s (%d)" % (what, len(details)))
        for d in details[:SHOW]:
            self.say("       " + d)
        if len(details) > SHOW:
            self.say("       ... and %d more" % (len(details) - SHOW))

    def expect_equal_sets(self, what, expected, actual, fmt=str):
        missing = sorted(expected - actual)
        extra = sorted(actual - expected)
        details = ["missing:    " + fmt(x) for x in missing] + ["unexpected: " + fmt(x) for x in extra]
        if details:
            self.bad(what, details)
        else:
            self.ok("%s (%d)" % (what, len(expected)))


def check_rollups(j, oracle, actual):
    exp = {tuple(r) for r in tsv(os.path.join(oracle, "rollups.tsv"))}
    act_rows = tsv(os.path.join(actual, "rollups.tsv"))
    act = {tuple(r) for r in act_rows}
    # Show a differing row side by side rather than as missing + unexpected.
    exp_by_key = {r[:5]: r for r in exp}
    act_by_key = {r[:5]: r for r in act}
    details = []
    cols = ["events", "requests", "input", "cached", "output", "reasoning", "cost_pusd"]
    for k in sorted(set(exp_by_key) | set(act_by_key)):
        e, a = exp_by_key.get(k), act_by_key.get(k)
        if e == a:
            continue
        if e is None:
            details.append("unexpected row %s" % "/".join(a))
        elif a is None:
            details.append("missing row %s" % "/".join(e))
        else:
            diff = ["%s %s != %s" % (c, x, y) for c, x, y in zip(cols, e[5:], a[5:]) if x != y]
            details.append("%s: expected vs actual: %s" % ("/".join(k), ", ".join(diff)))
    if len(act_rows) != len(act):
        details.append("the rollups table has %d duplicate rows" % (len(act_rows) - len(act)))
    if details:
        j.bad("rollups equal the oracle exactly (tenant/user/key x day/month)", details)
    else:
        j.ok("rollups equal the oracle exactly: %d rows (tenant/user/key x day/month, events, "
             "requests, tokens, cost_pusd)" % len(exp))
    j.figures["rollup_rows"] = len(exp)


def check_rejects(j, oracle, actual):
    reasons = {int(seq): r for seq, r in tsv(os.path.join(oracle, "rejects.tsv"))}
    sent = {int(s): (int(p), int(o)) for s, p, o in tsv(os.path.join(actual, "sent.tsv"))}
    exp = set()
    unsent = []
    for seq, reason in reasons.items():
        if seq not in sent:
            unsent.append("bad message %d (%s) has no delivery report" % (seq, reason))
            continue
        exp.add(sent[seq] + (reason,))
    if unsent:
        j.bad("every bad message was delivered to Kafka", unsent)
    act_rows = [(int(p), int(o), r) for p, o, r in tsv(os.path.join(actual, "rejected.tsv"))]
    act = set(act_rows)
    j.expect_equal_sets("rejected_events: every bad message stored once with its reason "
                        "(partition, offset, reason)", exp, act,
                        lambda x: "partition %d offset %d: %s" % x)
    if len(act_rows) != len(act):
        j.bad("rejected_events without repeats", ["%d rows twice" % (len(act_rows) - len(act))])
    by_reason = collections.Counter(r for _, _, r in exp)
    j.say("     by reason: " + ", ".join("%s %d" % kv for kv in sorted(by_reason.items())))
    j.figures["rejected"] = len(act)
    j.figures["reject_reasons"] = len(by_reason)
    dlq = {(int(p), int(o), r) for p, o, r in tsv(os.path.join(actual, "dlq.tsv"))}
    if os.path.exists(os.path.join(actual, "dlq.tsv")):
        missing = sorted(exp - dlq)
        if missing:
            j.bad("every rejected event is on the dead-letter topic with its reason",
                  ["partition %d offset %d: %s" % x for x in missing])
        else:
            j.ok("every rejected event is on the dead-letter topic with its reason (%d)" % len(exp))


def check_flags(j, oracle, actual):
    crossings = collections.defaultdict(list)
    for subject, metric, period, limit, until in tsv(os.path.join(oracle, "flags.tsv")):
        crossings[subject].append((metric, period, limit, until))
    last = {}
    for row in tsv(os.path.join(actual, "flags.tsv")):
        if len(row) < 2:
            continue
        try:
            last[row[0]] = json.loads(row[1]) if row[1] else None
        except ValueError:
            last[row[0]] = {"state": "(not JSON)"}
    details = []
    for subject, cs in sorted(crossings.items()):
        f = last.get(subject)
        if not f or f.get("state") != "blocked":
            details.append("%s: expected blocked (%s), last flag: %s" % (
                subject, ", ".join("%s/%s" % c[:2] for c in cs),
                json.dumps(f)[:200] if f else "none"))
            continue
        # The flag shows the crossing that lasts longest.
        top = max(c[3] for c in cs)
        allowed = {(c[0], c[1]): c for c in cs if c[3] == top}
        c = allowed.get((f.get("metric"), f.get("period")))
        if not c:
            details.append("%s: blocked for %s/%s, expected one of %s" % (
                subject, f.get("metric"), f.get("period"), sorted(allowed)))
            continue
        problems = []
        if str(f.get("limit")) != c[2]:
            problems.append("limit %s != %s" % (f.get("limit"), c[2]))
        if f.get("until") != c[3]:
            problems.append("until %s != %s" % (f.get("until"), c[3]))
        try:
            if int(f.get("used")) < int(c[2]):
                problems.append("used %s < limit" % f.get("used"))
        except (TypeError, ValueError):
            problems.append("used %r is not a number" % f.get("used"))
        if f.get("subject") != subject:
            problems.append("subject field %r" % f.get("subject"))
        if problems:
            details.append("%s: %s" % (subject, "; ".join(problems)))
    for key, f in sorted(last.items()):
        if f and f.get("state") == "blocked" and key not in crossings:
            details.append("%s: blocked (%s/%s), but no limit of it is reached" % (
                key, f.get("metric"), f.get("period")))
    if details:
        j.bad("flags on the limits topic (last value per key): every expected one, none "
              "unexpected", details)
    else:
        j.ok("flags on the limits topic (last value per key): %d subjects blocked as expected "
             "(metric, period, limit, until, used), none unexpected among %d keys"
             % (len(crossings), len(last)))
    j.figures["flags"] = len(crossings)


SUBJECT_RE = re.compile(r"^\[meterd\] (?P<who>.+) reached (?:(?P<th>\d+)% of )?its "
                        r"(?P<pw>daily|monthly) (?P<mw>\S+) limit$")
PERIOD_RE = re.compile(r"Period:\s+(?:daily|monthly), from (\d{4}-\d{2}-\d{2})")


def email_key(rec, tenants):
    m = SUBJECT_RE.match(rec.get("subject", ""))
    p = PERIOD_RE.search(rec.get("text") or "")
    if not m or not p:
        return None
    who = m.group("who")
    if who.startswith("user ") and " of " in who:
        sid, tenant = who[5:].split(" of ", 1)
        subject = "user/%s/%s" % (tenant, sid)
    elif who.startswith("API key ") and " of " in who:
        sid, tenant = who[8:].split(" of ", 1)
        subject = "key/%s/%s" % (tenant, sid)
    else:
        subject = "tenant/" + who
    mw = m.group("mw")
    metric = mw if mw in ("requests", "tokens", "cost") else "op:" + mw
    period = "day" if m.group("pw") == "daily" else "month"
    return (subject, metric, period, p.group(1), m.group("th") or "100")


def check_notifications(j, oracle, actual):
    exp = {"webhook": {}, "email": {}}
    for ch, subject, metric, period, start, th, limit, resets in tsv(
            os.path.join(oracle, "notifications.tsv")):
        exp[ch][(subject, metric, period, start, th)] = (limit, resets)
    details = []
    # Webhooks: delivered = answered 2xx; every answer checked.
    hooks = [r for r in jsonl(os.path.join(actual, "hooks.jsonl")) if r.get("event") == "answered"]
    ids = collections.defaultdict(set)
    delivered = collections.Counter()
    bad_sig = 0
    for r in hooks:
        body = r.get("json") or {}
        key = (body.get("subject"), body.get("metric"), body.get("period"),
               body.get("period_start"), str(body.get("threshold")))
        ids[key].add(r.get("id"))
        if not r.get("verified"):
            bad_sig += 1
        if r.get("id") != body.get("id"):
            details.append("webhook-id %s differs from the body's id %s" % (r.get("id"), body.get("id")))
        if 200 <= int(r.get("status", 0)) < 300:
            delivered[key] += 1
            want = exp["webhook"].get(key)
            if want and (str(body.get("limit")) != want[0] or body.get("resets_at") != want[1]):
                details.append("webhook %s: limit %s resets_at %s, expected %s %s" % (
                    "/".join(key), body.get("limit"), body.get("resets_at"), want[0], want[1]))
            if want:
                try:
                    lim, used = int(body.get("limit")), int(body.get("used"))
                    if used * 100 < int(key[4]) * lim:
                        details.append("webhook %s: used %d is below the threshold" % ("/".join(key), used))
                except (TypeError, ValueError):
                    details.append("webhook %s: limit/used not numbers" % "/".join(key))
    if bad_sig:
        details.append("%d webhook requests whose signature the receiver could not verify" % bad_sig)
    for key, s in ids.items():
        if len(s) > 1:
            details.append("webhook %s came with %d different webhook-ids: %s" % (
                "/".join(key), len(s), sorted(s)))
    got = set(delivered)
    want = set(exp["webhook"])
    details += ["webhook missing:    " + "/".join(k) for k in sorted(want - got)]
    details += ["webhook unexpected: " + "/".join(map(str, k)) for k in sorted(got - want, key=str)]
    # Emails: every accepted message is a delivery.
    mails = jsonl(os.path.join(actual, "mail.jsonl"))
    mids = collections.defaultdict(set)
    mdelivered = collections.Counter()
    for r in mails:
        key = email_key(r, None)
        if not key:
            details.append("email not understood: subject %r" % r.get("subject"))
            continue
        mids[key].add(r.get("message_id"))
        mdelivered[key] += 1
    for key, s in mids.items():
        if len(s) > 1:
            details.append("email %s came with %d Message-IDs" % ("/".join(key), len(s)))
    mgot, mwant = set(mdelivered), set(exp["email"])
    details += ["email missing:    " + "/".join(k) for k in sorted(mwant - mgot)]
    details += ["email unexpected: " + "/".join(k) for k in sorted(mgot - mwant)]
    if details:
        j.bad("notifications: every expected webhook and email delivered, none unexpected, "
              "repeats with the same id", details)
    else:
        j.ok("notifications: %d webhooks and %d emails delivered as expected (%d and %d "
             "repeats, each with the same webhook-id / Message-ID), none unexpected"
             % (len(want), len(mwant), sum(delivered.values()) - len(got),
                sum(mdelivered.values()) - len(mgot)))
    j.figures["webhooks"] = len(got)
    j.figures["emails"] = len(mgot)
    j.figures["webhook_repeats"] = sum(delivered.values()) - len(got)
    j.figures["email_repeats"] = sum(mdelivered.values()) - len(mgot)
    j.figures["webhook_failures_answered"] = sum(
        1 for r in hooks if not 200 <= int(r.get("status", 0)) < 300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--actual", required=True)
    ap.add_argument("--only", default="rollups,rejects,flags,notifications")
    ap.add_argument("--stat", action="append", default=[])
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    j = Judge(a.quiet)
    fig = dict(tsv(os.path.join(a.oracle, "figures.tsv")))
    only = set(a.only.split(","))
    if "rollups" in only:
        check_rollups(j, a.oracle, a.actual)
    if "rejects" in only:
        check_rejects(j, a.oracle, a.actual)
    if "flags" in only:
        check_flags(j, a.oracle, a.actual)
    if "notifications" in only:
        check_notifications(j, a.oracle, a.actual)
    summary = {
        "seed": int(fig.get("seed", 0)),
        "events": int(fig.get("events", 0)),
        "valid": int(fig.get("valid", 0)),
        "duplicates": int(fig.get("duplicates", 0)),
        "cross_partition_duplicates": int(fig.get("cross_partition_duplicates", 0)),
        "rejected": j.figures.pop("rejected", int(fig.get("bad", 0))),
    }
    for s in a.stat:
        k, _, v = s.partition("=")
        try:
            summary[k] = int(v)
        except ValueError:
            summary[k] = v
    summary.update(j.figures)
    # Findings of the driver: processes that exited by themselves, checks
    # of the environment that failed, notifications given up as dead.
    for k, what in (("unexpected_exits", "meterd or meter-notifier exited by itself"),
                    ("env_checks_failed", "a check of the driver failed"),
                    ("dead_notifications", "notifications marked dead (retries exhausted)")):
        v = summary.get(k)
        if isinstance(v, int) and v > 0:
            j.bad(what, ["%s = %d (see the log above)" % (k, v)])
    summary["mismatches"] = j.mismatches
    if not a.quiet:
        print(json.dumps(summary, sort_keys=False))
    return 1 if j.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
