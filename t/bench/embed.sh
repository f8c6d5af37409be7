#!/usr/bin/env bash
# embed: the hash backend's throughput; and the http backend against the
# OpenAI test server with a fixed latency per request, as a fraction of the
# limit (requests in flight x batch / latency) and side by side with LangChain
# JS's OpenAIEmbeddings (@langchain/openai) on the same records and server.
set -u
. "$(dirname "$0")/lib.bash"
here=$(cd "$(dirname "$0")" && pwd)
corpus=$BENCH_DIR/corpus-40mb.jsonl
[ -s "$corpus" ] || python3 "$here/gen-corpus.py" 40 2048 1 > "$corpus"
chunks=$BENCH_DIR/chunks-40mb.jsonl
[ -s "$chunks" ] || chunk -s 800 -o 100 "$corpus" > "$chunks"
bytes=$(stat -c %s "$chunks")
hash=$(best_of 3 embed "$chunks")
printf 'embed --backend hash, dim 384 (no peer)\tMB/s\t%s\t-\thigher\n' "$(mbps "$bytes" "$hash")"

# http: 12,800 records, batch 64, 4 in flight, 100 ms per request
N=12800 B=64 P=4 LAT=100 DIM=64
grep -v '"op":' "$chunks" | head -n $N > "$BENCH_DIR/embed-http.jsonl"
N=$(wc -l < "$BENCH_DIR/embed-http.jsonl")
port_file=$BENCH_DIR/openai.port
rm -f "$port_file"
python3 "$here/../openai-server.py" --port-file "$port_file" --latency-ms $LAT > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
base=http://127.0.0.1:$(cat "$port_file")/v1
limit=$(awk -v p=$P -v b=$B -v l=$LAT 'BEGIN { printf "%.0f", p * b / (l / 1000) }')
t=$(best_of 2 embed --backend http --base-url "$base" --model text-embedding-3-small --dim $DIM \
	--batch $B --parallel $P "$BENCH_DIR/embed-http.jsonl")
ours=$(awk -v n=$N -v t="$t" 'BEGIN { printf "%.0f", n / t }')
if peers=$("$here/../npm/install" 2>/dev/null); then
	tp=$(best_of 2 node "$peers/embed-langchain.mjs" "$BENCH_DIR/embed-http.jsonl" "$base" \
		text-embedding-3-small $DIM $B $P)
	peer=$(awk -v n=$N -v t="$tp" 'BEGIN { printf "%.0f", n / t }')
else
	echo "# embed: the peer @langchain/openai could not be installed from npm; plumb's figures only"
	peer=-
fi
echo "# embed http: limit $limit records/s ($P in flight x $B / ${LAT} ms); plumb $ours records/s = $(awk -v a="$ours" -v l="$limit" 'BEGIN { printf "%.0f%%", 100 * a / l }') of the limit"
printf 'embed --backend http vs @langchain/openai (limit %s)\trec/s\t%s\t%s\thigher\tx1\n' "$limit" "$ours" "$peer"
printf 'embed --backend http, share of the limit\trec/s\t%s\t%s\thigher\tx0.9\n' "$ours" "$limit"
