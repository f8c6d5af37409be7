#!/usr/bin/env python3
"""Compare a store's points with the chunks a clean run would store.

usage: same-store.py EXPECTED-CHUNKS.jsonl STORE-DUMP.jsonl
EXPECTED is chunk's output for the current documents; DUMP is every point of
the store (upsert-local --dump, or a Qdrant scroll turned into records).
Checks: the same chunk ids, no id twice, each point's doc_sha256 and text
those of the current document. Prints a summary; exits 1 on a difference.
"""
import json
import sys

want = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "text" in r:
        want[r["id"]] = (r["doc_sha256"], r["text"])
got = {}
dups = []
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r["id"] in got:
        dups.append(r["id"])
    got[r["id"]] = (r["doc_sha256"], r["text"])
problems = []
if dups:
    problems.append("duplicate points: %s" % dups[:5])
missing = sorted(set(want) - set(got))
stale = sorted(set(got) - set(want))
wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
if missing:
    problems.append("%d missing, e.g. %s" % (len(missing), missing[:3]))
if stale:
    problems.append("%d stale, e.g. %s" % (len(stale), stale[:3]))
if wrong:
    problems.append("%d out of date, e.g. %s" % (len(wrong), wrong[:3]))
if problems:
    print("store differs: " + "; ".join(problems))
    sys.exit(1)
print("store holds exactly the %d current chunks" % len(want))
