#!/usr/bin/env python3
"""Write a deterministic JSONL corpus of documents to stdout.

usage: gen-corpus.py MEGABYTES [DOC_BYTES] [SEED]

Documents are prose-like: paragraphs of sentences of words drawn from a
vocabulary, with headings, lists, code fences, long unbroken tokens and some
non-ASCII (accents, CJK, emoji) so that every level of a splitter is used.
"""
import json
import random
import sys

WORDS = ("the of and to in is that for it as with was on be by this are from at or an "
         "have not which but all were can more one their has its also into other some "
         "pipeline vector index chunk embedding retrieval model query document token "
         "latency throughput cluster kubernetes redis prometheus gateway checkpoint "
         "evaluation baseline regression accuracy dataset inference batch stream "
         "café naïve résumé über straße 東京 数据 検索 모델 😀 🚀 ✓").split()


def sentence(r):
    n = r.randint(4, 24)
    w = [r.choice(WORDS) for _ in range(n)]
    if r.random() < 0.03:
        w.append("x" * r.randint(40, 300))  # a long unbroken token
    s = " ".join(w)
    return s[0].upper() + s[1:] + r.choice([".", ".", ".", "!", "?", ";"])


def paragraph(r):
    kind = r.random()
    if kind < 0.08:
        return "#" * r.randint(1, 3) + " " + " ".join(r.choice(WORDS) for _ in range(r.randint(2, 6)))
    if kind < 0.14:
        return "\n".join("- " + sentence(r) for _ in range(r.randint(2, 5)))
    if kind < 0.18:
        return "```\n" + "\n".join("  " + sentence(r) for _ in range(r.randint(2, 6))) + "\n```"
    return " ".join(sentence(r) for _ in range(r.randint(1, 7)))


def document(r, size):
    parts, total = [], 0
    while total < size:
        p = paragraph(r)
        parts.append(p)
        total += len(p.encode()) + 2
    sep = "\n\n" if r.random() < 0.9 else "\n\n\n"
    return sep.join(parts)


def main():
    mb = float(sys.argv[1])
    doc_bytes = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    r = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    limit, written, i = int(mb * 1e6), 0, 0
    out = sys.stdout
    while written < limit:
        size = max(64, int(r.gauss(doc_bytes, doc_bytes / 4)))
        line = json.dumps({"id": "doc-%06d.md" % i, "text": document(r, size),
                           "meta": {"source": "bench", "n": i}}, ensure_ascii=False)
        out.write(line + "\n")
        written += len(line.encode()) + 1
        i += 1


if __name__ == "__main__":
    main()
