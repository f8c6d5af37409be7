#!/usr/bin/env bash
# chunk throughput on ~40 MB of ~2 KB documents, recursive, size 800, overlap
# 100, one process, against @langchain/textsplitters run on the same file in
# the same run (t/bench/langchain-chunk.mjs: read JSONL, split, write JSONL).
set -u
. "$(dirname "$0")/lib.bash"
corpus=$BENCH_DIR/corpus-40mb.jsonl
[ -s "$corpus" ] || python3 "$(dirname "$0")/gen-corpus.py" 40 2048 1 > "$corpus"
bytes=$(stat -c %s "$corpus")
cat "$corpus" > /dev/null	# warm the page cache for both

ours=$(best_of 5 chunk -s 800 -o 100 "$corpus")
compat=$(best_of 5 chunk --compat langchain -s 800 -o 100 "$corpus")
if peers=$("$(dirname "$0")/../npm/install" 2>/dev/null); then
	peer=$(best_of 3 node "$peers/langchain-chunk.mjs" "$corpus" 800 100)
	peer_mbps=$(mbps "$bytes" "$peer")
else
	echo "# chunk: the peer @langchain/textsplitters could not be installed from npm; plumb's figures only"
	peer_mbps=-
fi
echo "# chunk: corpus $((bytes / 1000000)) MB, $(wc -l < "$corpus") documents"
printf 'chunk recursive 800/100 (vs LangChain JS)\tMB/s\t%s\t%s\thigher\tx3\n' "$(mbps "$bytes" "$ours")" "$peer_mbps"
printf 'chunk --compat langchain 800/100 (vs LangChain JS)\tMB/s\t%s\t%s\thigher\tx3\n' "$(mbps "$bytes" "$compat")" "$peer_mbps"
