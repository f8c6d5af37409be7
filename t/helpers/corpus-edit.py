#!/usr/bin/env python3
"""Make or change a directory of markdown documents for the end-to-end tests.

usage: corpus-edit.py DIR init N SEED     N new documents
       corpus-edit.py DIR mutate SEED [N] edit, shorten or delete N documents
                                          (default 3), add as many as deleted
Documents are paragraphs of words from a fixed vocabulary, so the hash
embedding finds them by their words.
"""
import os
import random
import sys

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu pipeline vector index chunk embed store search query canary").split()


def text(r, paras):
    out = []
    for p in range(paras):
        out.append(" ".join(r.choice(WORDS) for _ in range(r.randint(20, 60))) + ".")
    return "# Doc\n\n" + "\n\n".join(out) + "\n"


def main():
    d, cmd = sys.argv[1], sys.argv[2]
    if cmd == "init":
        n, r = int(sys.argv[3]), random.Random(int(sys.argv[4]))
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            with open(os.path.join(d, "doc%03d.md" % i), "w") as f:
                f.write(text(r, r.randint(2, 8)))
    elif cmd == "mutate":
        r = random.Random(int(sys.argv[3]))
        count = int(sys.argv[4]) if len(sys.argv) > 4 else 3
        names = sorted(os.listdir(d))
        deleted = 0
        for name in r.sample(names, min(len(names), count)):
            p = os.path.join(d, name)
            act = r.choice(["edit", "shorten", "delete"])
            if act == "delete" and len(names) > 5:
                os.unlink(p)
                deleted += 1
            elif act == "shorten":
                with open(p, "w") as f:
                    f.write(text(r, 1))
            else:
                with open(p, "a") as f:
                    f.write("\n" + text(r, 2))
        # as many new documents as were deleted, and a few more, so that the
        # corpus keeps its size over many rounds
        for _ in range(deleted + r.randint(0, 2)):
            with open(os.path.join(d, "new%06d.md" % r.randint(0, 999999)), "w") as f:
                f.write(text(r, r.randint(1, 5)))


main()
