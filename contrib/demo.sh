#!/bin/sh
# make demo: find the project's own documentation, split it into chunks, and
# show what came out. Runs twice to show that an unchanged tree gives nothing
# new once its documents are committed. Fails if no chunks are made.
set -eu
work=build/demo
rm -rf "$work"
mkdir -p "$work"
state=$work/state.jsonl

echo "== discover-diff --state $state docs | chunk --strategy markdown -s 800 -o 100"
discover-diff --state "$state" --include '*.1' --include '*.7' --include '*.md' docs |
	tee "$work/documents.jsonl" |
	chunk --strategy markdown -s 800 -o 100 > "$work/chunks.jsonl"

docs=$(grep -c '"op":"upsert"' "$work/documents.jsonl" || true)
chunks=$(grep -vc '"op":' "$work/chunks.jsonl" || true)
echo "documents: $docs, chunks: $chunks (all in $work/chunks.jsonl)"
[ "$chunks" -gt 0 ] || { echo "demo: no chunks were made" >&2; exit 1; }
echo "first chunk:"
head -1 "$work/chunks.jsonl" | cut -c1-400
echo

# Pretend every document was indexed: turn the done markers into acks, commit.
sed -n 's/^{"op":"done",/{"op":"indexed",/p' "$work/chunks.jsonl" |
	discover-diff --state "$state" --commit
echo "== after --commit, a second run finds nothing new:"
n=$(discover-diff --state "$state" --include '*.1' --include '*.7' --include '*.md' docs | wc -l)
echo "changed documents: $n"
[ "$n" -eq 0 ] || { echo "demo: committed documents were found again" >&2; exit 1; }
