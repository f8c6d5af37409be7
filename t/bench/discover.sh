#!/usr/bin/env bash
# discover-diff on a 100,000-file tree where nothing changed: the stat fast
# path against git status on the same tree (git's index is the model), and
# against --rehash (reading and hashing every file), plus state memory.
set -u
. "$(dirname "$0")/lib.bash"
tree=$BENCH_DIR/tree100k
state=$BENCH_DIR/tree100k.state
if [ ! -f "$tree/.done" ]; then
	rm -rf "$tree" "$state"
	python3 - "$tree" <<'PY'
import os, sys, random
root = sys.argv[1]
r = random.Random(5)
for d in range(100):
    os.makedirs("%s/d%03d" % (root, d), exist_ok=True)
    for f in range(1000):
        with open("%s/d%03d/f%04d.md" % (root, d, f), "w") as fh:
            fh.write(("line %d of %d/%d\n" % (r.random(), d, f)) * r.randint(5, 60))
PY
	(cd "$tree" && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm t)
	touch "$tree/.done"
fi
# the state as after a committed run; an old mtime keeps git's and ours
# free of racy-timestamp re-reads
find "$tree" -name '*.md' -newermt '-3 seconds' -exec touch -d '-1 hour' {} + 2>/dev/null
if [ ! -s "$state" ]; then
	discover-diff --quiet --state "$state" "$tree" |
		sed -n 's/^{"id":\("[^"]*"\),"op":"upsert",.*"sha256":\("[^"]*"\).*/{"op":"indexed","doc_id":\1,"doc_sha256":\2}/p' |
		discover-diff --quiet --state "$state" --commit
fi
(cd "$tree" && git update-index -q --really-refresh >/dev/null 2>&1)
n=$(discover-diff --quiet --state "$state" "$tree" | wc -l)
[ "$n" -eq 0 ] || echo "# discover: $n documents reported changed in an unchanged tree"

fast=$(best_of 5 discover-diff --quiet --state "$state" "$tree")
rehash=$(best_of 3 discover-diff --quiet --rehash --state "$state" "$tree")
gits=$(best_of 5 git -C "$tree" status --porcelain)
rss=$( { /usr/bin/time -f '%M' discover-diff --quiet --state "$state" "$tree" > /dev/null; } 2>&1 | tail -1)
echo "# discover: 100,000 files unchanged; fast path ${fast}s, --rehash ${rehash}s, git status ${gits}s; peak RSS ${rss} KB"
printf 'discover-diff 100k unchanged files (vs git status)\ts\t%s\t%s\tlower\n' "$fast" "$gits"
printf 'discover-diff 100k unchanged files (vs its --rehash)\ts\t%s\t%s\tlower\n' "$fast" "$rehash"
printf 'discover-diff peak memory, 100k-document state\tKB\t%s\t-\tlower\n' "$rss"
