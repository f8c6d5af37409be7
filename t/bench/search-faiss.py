#!/usr/bin/python3
"""Data for t/bench/search.sh, and its peer: FAISS's exact inner-product index.

  search-faiss.py gen DIR N Q DIM   points.jsonl and queries.jsonl (vector
                                    records with float32 values written
                                    exactly, %.9g) and the same arrays as .npy
  search-faiss.py run DIR K         time IndexFlatIP.search of the queries,
                                    best of 3; print seconds; save its ids
  search-faiss.py compare DIR K OUT check search's output OUT against FAISS's
                                    top K; print a note line, exit 1 on a
                                    difference other than among equal scores

Needs Debian's python3-numpy and python3-faiss (/usr/bin/python3)."""
import json
import os
import sys
import time

import numpy as np


def gen(d, n, q, dim):
    rng = np.random.default_rng(20261122)
    # clustered, like real embeddings: 1000 topics, points near their topic
    centers = rng.standard_normal((1000, dim), dtype=np.float32)

    def sample(m):
        x = centers[rng.integers(0, len(centers), m)] + 0.6 * rng.standard_normal((m, dim), dtype=np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    xb, xq = sample(n), sample(q)
    np.save(os.path.join(d, "xb.npy"), xb)
    np.save(os.path.join(d, "xq.npy"), xq)
    fmt = ",".join(["%.9g"] * dim)
    with open(os.path.join(d, "points.jsonl"), "w") as f:
        for i, row in enumerate(xb):
            f.write('{"id":"p%d","doc_id":"doc%d","doc_sha256":"bench","chunk":%d,'
                    '"text":"point %d","vector":[%s],"model":"bench"}\n'
                    % (i, i // 8, i % 8, i, fmt % tuple(row.tolist())))
    with open(os.path.join(d, "queries.jsonl"), "w") as f:
        for i, row in enumerate(xq):
            f.write('{"id":"q%d","vector":[%s]}\n' % (i, fmt % tuple(row.tolist())))


def run(d, k):
    import faiss
    xb, xq = np.load(os.path.join(d, "xb.npy")), np.load(os.path.join(d, "xq.npy"))
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    best = None
    for _ in range(3):
        t = time.perf_counter()
        D, I = index.search(xq, k)
        t = time.perf_counter() - t
        best = t if best is None else min(best, t)
    np.save(os.path.join(d, "faiss-D.npy"), D)
    np.save(os.path.join(d, "faiss-I.npy"), I)
    print("%.4f" % best)


def compare(d, k, out):
    D, I = np.load(os.path.join(d, "faiss-D.npy")), np.load(os.path.join(d, "faiss-I.npy"))
    same = tie_only = 0
    bad = []
    with open(out) as f:
        for qi, line in enumerate(f):
            hits = json.loads(line)["hits"]
            ids = [int(h["id"][1:]) for h in hits]
            scores = [h["score"] for h in hits]
            want = I[qi].tolist()
            if ids == want:
                same += 1
                continue
            # the same set of scores, ids differing only where scores are equal
            # (to float32 rounding of two sgemm orders)
            ok = len(ids) == len(want) and all(abs(s - w) <= 2e-6 for s, w in zip(scores, D[qi]))
            ok = ok and all(a == b or abs(s - w) <= 2e-6 for a, b, s, w in zip(ids, want, scores, D[qi]))
            if ok:
                tie_only += 1
            else:
                bad.append(qi)
    n = same + tie_only + len(bad)
    print("# search: top-%d identical to FAISS for %d of %d queries, %d differ only among equal scores, %d differ"
          % (k, same, n, tie_only, len(bad)))
    if bad:
        qi = bad[0]
        print("# search: first difference: query %d: plumb %s, FAISS %s" % (qi, out, I[qi].tolist()))
        sys.exit(1)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "run":
        run(sys.argv[2], int(sys.argv[3]))
    elif cmd == "compare":
        compare(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
