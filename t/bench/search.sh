#!/usr/bin/env bash
# search: exact top-10 for 1,000 queries over 100,000 stored vectors of
# dimension 384, plumb's search on a store built by upsert-local against
# FAISS's exact index (IndexFlatIP) on the same float32 data, in the same run;
# and upsert-local's load rate (no peer). Checks that both give the same hits.
set -u
. "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3	# Debian's, with python3-faiss and python3-numpy
helper=$(dirname "$0")/search-faiss.py
dir=$BENCH_DIR/search
n=100000 q=1000 dim=384 k=10
mkdir -p "$dir"
[ -s "$dir/points.jsonl" ] && [ -s "$dir/xb.npy" ] || "$PY" "$helper" gen "$dir" $n $q $dim
cat "$dir/points.jsonl" "$dir/queries.jsonl" > /dev/null	# warm the page cache

rm -rf "$dir/store"
load=$(best_of 1 upsert-local "$dir/store" "$dir/points.jsonl")
rm -rf "$dir/store"
upsert-local "$dir/store" "$dir/points.jsonl" > /dev/null
search --local "$dir/store" -k $k "$dir/queries.jsonl" > "$dir/plumb.jsonl"
ours=$(best_of 3 search --local "$dir/store" -k $k "$dir/queries.jsonl")

cpus=$(nproc)
if peer=$("$PY" "$helper" run "$dir" $k 2> "$dir/faiss.err"); then
	peer_qps=$(awk -v s="$peer" -v q=$q 'BEGIN { printf "%.0f", q / s }')
	cmp_out=$("$PY" "$helper" compare "$dir" $k "$dir/plumb.jsonl") || true
	echo "$cmp_out"
	differ=$(sed -n 's/.* \([0-9][0-9]*\) differ$/\1/p' <<<"$cmp_out" | head -n 1)
else
	echo "# search: FAISS could not run ($(tail -1 "$dir/faiss.err")); plumb's figures only"
	peer_qps=-
	differ=
fi
echo "# search: $n x $dim stored (upsert-local, $(stat -c %s "$dir/points.jsonl" | awk '{ printf "%.0f", $1 / 1e6 }') MB of JSONL), $q queries, k=$k, $cpus CPUs"
echo "# search: plumb timed as the whole command (open the store, parse $q query lines, search, write JSONL); FAISS as index.search() alone, data in memory"
[ -z "$differ" ] || printf 'search: queries whose top-10 differs from FAISS\tqueries\t%s\t-\tlower\t<=0\n' "$differ"
printf 'search exact top-10, 100k x 384 (vs FAISS IndexFlatIP)\tq/s\t%s\t%s\thigher\tx0.9\n' \
	"$(awk -v s="$ours" -v q=$q 'BEGIN { printf "%.0f", q / s }')" "$peer_qps"
printf 'upsert-local load, 100k x 384 (no peer)\tpoints/s\t%s\t-\thigher\n' \
	"$(awk -v s="$load" -v p=$n 'BEGIN { printf "%.0f", p / s }')"
