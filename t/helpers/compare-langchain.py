#!/usr/bin/env python3
"""Compare LangChain's chunks (t/bench/langchain-chunk.mjs output) with
chunk --compat langchain's, chunk by chunk, and check chunk's offsets.

usage: compare-langchain.py DOCS.jsonl LANGCHAIN.jsonl PLUMB.jsonl
"""
import json
import sys

docs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        d = json.loads(line)
        docs[d["id"]] = d["text"].encode("utf-8")
lc = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
pl = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
pl = [r for r in pl if "text" in r]
for k, (a, b) in enumerate(zip(lc, pl)):
    if a["id"] != b["id"] or a["text"] != b["text"]:
        print("chunk %d differs: langchain %s %r, plumb %s %r" % (k, a["id"], a["text"][:80], b["id"], b["text"][:80]))
        sys.exit(1)
    if docs[b["doc_id"]][b["start"]:b["end"]].decode("utf-8") != b["text"]:
        print("%s: offsets do not give the text" % b["id"])
        sys.exit(1)
if len(lc) != len(pl):
    print("langchain made %d chunks, plumb %d" % (len(lc), len(pl)))
    sys.exit(1)
print("identical: %d chunks" % len(pl))
