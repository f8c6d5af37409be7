#!/usr/bin/env python3
"""Compare a store's points with what a clean run would store.

usage: same-store.py EXPECTED.jsonl STORE-DUMP.jsonl
EXPECTED is either chunk's output for the current documents, or records
with vectors: embed's output for them, or the dump of a store that a clean
run filled. DUMP is every point of the store (upsert-local --dump, or a
Qdrant scroll turned into records: payload and vector).

Checks: the same chunk ids, no id twice, each point's doc_sha256 and text
those of the current document. When EXPECTED has vectors, also each point's
vector, exactly (stores hold float32, so both sides are compared as
float32; the hash embedder is deterministic), and its other members: the
same members with the same values as the expected record's. Prints a summary; exits 1 on a difference.
"""
import json
import struct
import sys


def f32(v):
    """The float32 bits of a vector: equal means bit for bit."""
    return struct.pack("<%df" % len(v), *v)


def load(path, pick):
    recs, dups = {}, []
    for line in open(path):
        r = json.loads(line)
        if not pick(r):
            continue
        if r["id"] in recs:
            dups.append(r["id"])
        recs[r["id"]] = r
    return recs, dups


want, _ = load(sys.argv[1], lambda r: "text" in r)
got, dups = load(sys.argv[2], lambda r: True)
with_vectors = any("vector" in r for r in want.values())
if with_vectors and not all("vector" in r for r in want.values()):
    sys.exit("same-store.py: %s: some records have vectors, some not" % sys.argv[1])

problems = []
if dups:
    problems.append("duplicate points: %s" % dups[:5])
missing = sorted(set(want) - set(got))
stale = sorted(set(got) - set(want))
common = sorted(set(want) & set(got))
wrong = [k for k in common
         if (want[k]["doc_sha256"], want[k]["text"]) != (got[k].get("doc_sha256"), got[k].get("text"))]
if missing:
    problems.append("%d missing, e.g. %s" % (len(missing), missing[:3]))
if stale:
    problems.append("%d stale, e.g. %s" % (len(stale), stale[:3]))
if wrong:
    problems.append("%d out of date, e.g. %s" % (len(wrong), wrong[:3]))
if with_vectors:
    vec = [k for k in common if "vector" not in got[k] or f32(want[k]["vector"]) != f32(got[k]["vector"])]
    if vec:
        problems.append("%d with another vector, e.g. %s" % (len(vec), vec[:3]))
    other = []
    for k in common:
        w = {m: v for m, v in want[k].items() if m != "vector"}
        g = {m: v for m, v in got[k].items() if m != "vector"}
        if w != g:
            other.append("%s (%s)" % (k, ", ".join(sorted(m for m in set(w) | set(g)
                                                          if w.get(m) != g.get(m)))))
    if other:
        problems.append("%d with other members, e.g. %s" % (len(other), other[:3]))
if problems:
    print("store differs: " + "; ".join(problems))
    sys.exit(1)
print("store holds exactly the %d current chunks%s" %
      (len(want), ", vectors and members too" if with_vectors else ""))
