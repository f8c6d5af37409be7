#!/bin/sh
# make demo: index the project's own documentation with the embedded defaults
# (hash embeddings, the local store), search it with canary queries, then show
# that a second run finds nothing to do. Fails if a canary misses.
set -eu
work=build/demo
rm -rf "$work"
mkdir -p "$work"
state=$work/state.jsonl
index=$work/index
find_docs() { discover-diff --quiet --state "$state" --include '*.1' --include '*.7' --include '*.md' docs; }

echo "== discover-diff docs | chunk | embed | upsert-local $index | discover-diff --commit"
find_docs | tee "$work/documents.jsonl" |
	chunk --strategy markdown -s 800 -o 100 | tee "$work/chunks.jsonl" |
	embed | upsert-local "$index" |
	discover-diff --state "$state" --commit
docs=$(grep -c '"op":"upsert"' "$work/documents.jsonl" || true)
chunks=$(grep -vc '"op":' "$work/chunks.jsonl" || true)
echo "indexed $docs documents as $chunks chunks"
upsert-local --stats "$index"

echo
echo "== search --local $index -k 3 (canary queries)"
cat > "$work/canaries.jsonl" <<'Q'
{"id":"split","text":"split documents into chunks with overlap","expected":["chunk.1"]}
{"id":"changed","text":"which documents changed since the last successful run","expected":["discover-diff.1"]}
{"id":"vectors","text":"add embedding vectors to records with an OpenAI compatible server","expected":["embed.1"]}
{"id":"exit","text":"exit status table for every program","expected":["plumb.7"]}
Q
search --local "$index" -k 3 "$work/canaries.jsonl" > "$work/hits.jsonl"
sed 's/^{"id":"\([^"]*\)".*"hits":\[\(.*\)\].*/\1: \2/' "$work/hits.jsonl" |
	sed 's/{"id":"\([^"]*\)","doc_id":"[^"]*","score":\([0-9.]*\)[^}]*}/\1 (\2)/g' | cut -c1-150
echo "all canaries found their documents"

echo
echo "== a second run: nothing changed, nothing to do"
n=$(find_docs | wc -l)
echo "changed documents: $n"
[ "$n" -eq 0 ] || { echo "demo: committed documents were found again" >&2; exit 1; }
