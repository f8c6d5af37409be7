#!/usr/bin/env python3
"""Compare LangChain's chunks (t/bench/langchain-chunk.mjs output) with
chunk --compat langchain's, chunk by chunk, and check chunk's offsets.

usage: compare-langchain.py DOCS.jsonl LANGCHAIN.jsonl PLUMB.jsonl
       compare-langchain.py --astral DOCS.jsonl LANGCHAIN.jsonl MODEL.jsonl PLUMB.jsonl

The first form wants them identical. The second checks what chunk(1) says of
text with characters outside the BMP, where LangChain can cut a character
into two unpaired surrogates and chunk never does. MODEL is LangChain's
output with split("") yielding whole characters (langchain-chunk.mjs
codepoints), which chunk must equal exactly. Against plain LangChain: a
document in which LangChain cuts no character gets the same chunks; one in
which it does gets the same chunks up to the first with a cut character; and
in a document with a single non-ASCII stretch amid ASCII words (id "one-..."),
the chunks after that stretch's are the same again. Prints counts of what it
saw: documents with cuts, and documents with such characters but no cut.
"""
import json
import sys


def load_docs(path):
    docs = {}
    for line in open(path, encoding="utf-8"):
        if line.strip():
            d = json.loads(line)
            docs[d["id"]] = d["text"].encode("utf-8")
    return docs


def load_chunks(path):
    out = [json.loads(l) for l in open(path, encoding="utf-8")]
    return [r for r in out if "text" in r]


def check_offsets(docs, pl):
    for b in pl:
        if docs[b["doc_id"]][b["start"]:b["end"]].decode("utf-8") != b["text"]:
            print("%s: offsets do not give the text" % b["id"])
            sys.exit(1)


def identical(docs, lc, pl, what="langchain"):
    for k, (a, b) in enumerate(zip(lc, pl)):
        if a["id"] != b["id"] or a["text"] != b["text"]:
            print("chunk %d differs: %s %s %r, plumb %s %r" % (k, what, a["id"], a["text"][:80], b["id"], b["text"][:80]))
            sys.exit(1)
    if len(lc) != len(pl):
        print("%s made %d chunks, plumb %d" % (what, len(lc), len(pl)))
        sys.exit(1)
    check_offsets(docs, pl)


def by_doc(chunks):
    out = {}
    for r in chunks:
        out.setdefault(r["doc_id"], []).append(r["text"])
    return out


def cut(s):
    """Whether s holds an unpaired surrogate: half of a character."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def ascii_only(s):
    return all(ord(c) < 0x80 for c in s)


def astral(docs, lc, model, pl):
    identical(docs, model, pl, "the whole-character model")
    lcd, pld = by_doc(lc), by_doc(pl)
    with_cuts = uncut_astral = 0
    for doc_id, text in docs.items():
        a, b = lcd.get(doc_id, []), pld.get(doc_id, [])
        if any(cut(c) for c in b):
            print("%s: plumb cut a character" % doc_id)
            sys.exit(1)
        first = next((i for i, c in enumerate(a) if cut(c)), None)
        if first is None:
            if a != b:
                print("%s: langchain cut no character, yet the chunks differ:\n %r\n %r" % (doc_id, a, b))
                sys.exit(1)
            if any(ord(c) > 0xFFFF for c in text.decode("utf-8")):
                uncut_astral += 1
            continue
        with_cuts += 1
        if a[:first] != b[:first]:
            print("%s: the chunks before the first cut character differ:\n %r\n %r" % (doc_id, a[:first], b[:first]))
            sys.exit(1)
        if doc_id.startswith("one-"):
            # the chunks after the last one holding the stretch's characters
            la = max(i for i, c in enumerate(a) if not ascii_only(c))
            lb = max((i for i, c in enumerate(b) if not ascii_only(c)), default=-1)
            if a[la + 1:] != b[lb + 1:]:
                print("%s: the chunks after the stretch differ:\n %r\n %r" % (doc_id, a[la + 1:], b[lb + 1:]))
                sys.exit(1)
    print("documents with a cut character: %d; with characters outside the BMP but no cut: %d"
          % (with_cuts, uncut_astral))


if sys.argv[1] == "--astral":
    docs = load_docs(sys.argv[2])
    astral(docs, load_chunks(sys.argv[3]), load_chunks(sys.argv[4]), load_chunks(sys.argv[5]))
else:
    docs = load_docs(sys.argv[1])
    identical(docs, load_chunks(sys.argv[2]), load_chunks(sys.argv[3]))
    print("identical: %d chunks" % len(load_chunks(sys.argv[3])))
