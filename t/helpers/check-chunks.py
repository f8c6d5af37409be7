#!/usr/bin/env python3
"""Check chunk's output against its input documents.

usage: check-chunks.py DOCS.jsonl CHUNKS.jsonl SIZE OVERLAP STRATEGY

Asserts, for every document: chunk records come in order with ids doc_id#n,
each chunk's text is exactly the document's bytes [start, end), chunks are no
longer than SIZE code points (except where the strategy allows), consecutive
chunks overlap by at most OVERLAP code points, a done marker with the right
count follows the last chunk, and chunks together cover every non-blank part
of the document. Prints a one-line summary; exits 1 on the first failure.
"""
import hashlib
import json
import sys


def fail(msg):
    print("check-chunks: " + msg)
    sys.exit(1)


def main():
    docs_path, chunks_path, size, overlap, strategy = sys.argv[1:6]
    size, overlap = int(size), int(overlap)
    docs = [json.loads(l) for l in open(docs_path, encoding="utf-8") if l.strip()]
    out = [json.loads(l) for l in open(chunks_path, encoding="utf-8")]
    i = 0
    nchunks = 0
    for d in docs:
        text = d["text"].encode("utf-8")
        sha = d.get("sha256") or hashlib.sha256(text).hexdigest()
        n = 0
        covered = bytearray(len(text))
        prev = None
        while i < len(out) and out[i].get("op") != "done":
            c = out[i]
            if c["doc_id"] != d["id"] or c["id"] != "%s#%d" % (d["id"], n) or c["chunk"] != n:
                fail("record %d: expected chunk %d of %s, got %s" % (i, n, d["id"], c.get("id")))
            if c["doc_sha256"] != sha:
                fail("%s: doc_sha256 %s, want %s" % (c["id"], c["doc_sha256"], sha))
            piece = text[c["start"]:c["end"]].decode("utf-8")
            if piece != c["text"]:
                fail("%s: text is not document[%d:%d]" % (c["id"], c["start"], c["end"]))
            length = len(c["text"])
            if length > size:
                fail("%s: %d code points, more than size %d" % (c["id"], length, size))
            if strategy == "fixed" and c["end"] < len(text) and length != size:
                fail("%s: a fixed window of %d, not %d" % (c["id"], length, size))
            if prev is not None:
                if c["start"] <= prev["start"]:
                    fail("%s: does not advance" % c["id"])
                ov = text[c["start"]:max(c["start"], prev["end"])].decode("utf-8")
                if len(ov) > overlap:
                    fail("%s: overlaps the previous chunk by %d > %d" % (c["id"], len(ov), overlap))
            for k in range(c["start"], c["end"]):
                covered[k] = 1
            prev = c
            n += 1
            i += 1
        if i >= len(out):
            fail("no done marker for %s" % d["id"])
        done = out[i]
        if done != {"op": "done", "doc_id": d["id"], "doc_sha256": sha, "chunks": n}:
            fail("bad done marker %r for %s with %d chunks" % (done, d["id"], n))
        i += 1
        nchunks += n
        lost = [k for k in range(len(text)) if not covered[k] and text[k:k + 1] not in b" \t\n\r"]
        if lost and strategy != "markdown-loose":
            fail("%s: bytes %d.. are in no chunk" % (d["id"], lost[0]))
    if i != len(out):
        fail("%d records after the last document" % (len(out) - i))
    print("ok: %d documents, %d chunks" % (len(docs), nchunks))


main()
