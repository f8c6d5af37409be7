#!/usr/bin/env bash
# upsert-qdrant throughput: 20,000 vector records (dimension 384, ~1 KB of
# text each, documents of 10 chunks) written to the Qdrant test server
# (t/qdrant-server.py) in batches of 128 with 4 requests in flight, against
# Qdrant's own JavaScript client (@qdrant/js-client-rest, t/bench/qdrant-upsert.mjs)
# writing the same points to the same server with the same batch size and
# parallelism. Each run starts from an empty server; the best of three runs
# counts. Rows: points per second; the client's own CPU time (user + system)
# for the same, which the server does not blur; and points per second with a
# "done" marker per document, so that upsert-qdrant also deletes stale points
# and writes acks (plumb only: the JS client has no such protocol).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$BENCH_DIR/qdrant
mkdir -p "$dir"
points=20000 dim=384 batch=128 parallel=4

gen() {	# gen MARKERS > file: seeded records, 10 chunks per document
	python3 - "$points" "$dim" "$1" <<'PY'
import hashlib, json, random, sys
n, dim, markers = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
rng = random.Random(42)
words = ["index", "vector", "qdrant", "chunk", "pipeline", "record", "payload", "search"]
out = sys.stdout
for d in range(n // 10):
    doc = "docs/section-%04d/page-%d.md" % (d // 50, d)
    sha = hashlib.sha256(doc.encode()).hexdigest()
    for i in range(10):
        text = " ".join(rng.choice(words) for _ in range(140))[:1000]
        v = [round(rng.gauss(0, 0.05), 6) for _ in range(dim)]
        out.write(json.dumps({"id": "%s#%d" % (doc, i), "doc_id": doc, "doc_sha256": sha, "chunk": i,
                              "start": i * 1000, "end": i * 1000 + len(text), "text": text,
                              "meta": {"lang": "en", "section": d // 50}, "vector": v,
                              "model": "bench-rand"}, separators=(",", ":")) + "\n")
    if markers:
        out.write(json.dumps({"op": "done", "doc_id": doc, "doc_sha256": sha, "chunks": 10},
                             separators=(",", ":")) + "\n")
PY
}
plain=$dir/vectors-$points-$dim.jsonl
marked=$dir/vectors-$points-$dim-markers.jsonl
[ -s "$plain" ] || gen 0 > "$plain"
[ -s "$marked" ] || gen 1 > "$marked"
cat "$plain" "$marked" > /dev/null	# warm the page cache

rm -f "$dir/port"
python3 "$root/t/qdrant-server.py" --port-file "$dir/port" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
export QDRANT_URL=http://127.0.0.1:$(cat "$dir/port")
reset() { curl -sf -X POST "$QDRANT_URL/__reset" > /dev/null; }
count() { curl -sf -X POST -H 'Content-Type: application/json' -d '{"exact":true}' \
	"$QDRANT_URL/collections/bench/points/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["count"])'; }

# timed N CMD...: "WALL CPU" in seconds, the best of N runs each on an empty
# server (the reset is not timed); CPU is the client's own, user + system
timed() {
	local n=$1 best="" cpu="" w c
	shift
	for _ in $(seq "$n"); do
		reset
		/usr/bin/time -f '%e %U %S' -o "$dir/time" "$@" > /dev/null 2> "$dir/err" || { cat "$dir/err" >&2; return 1; }
		read -r w c < <(awk '{ print $1, $2 + $3 }' "$dir/time")
		if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$w; fi
		if [ -z "$cpu" ] || awk -v a="$c" -v b="$cpu" 'BEGIN { exit !(a < b) }'; then cpu=$c; fi
	done
	echo "$best $cpu"
}
pps() { awk -v n=$points -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }

read -r w_ours c_ours < <(timed 3 upsert-qdrant -c bench -b $batch -p $parallel "$plain")
n=$(count)
[ "$n" = "$points" ] || { echo "# qdrant: upsert-qdrant stored $n points, not $points" >&2; exit 1; }
read -r w_marked c_marked < <(timed 3 upsert-qdrant -c bench -b $batch -p $parallel "$marked")

w_peer=- c_peer=-
if peers=$("$root/t/npm/install" 2>/dev/null); then
	if read -r w c < <(timed 3 node "$peers/qdrant-upsert.mjs" "$plain" "$QDRANT_URL" bench $batch $parallel) &&
		[ "$(count)" = "$points" ]; then
		w_peer=$w c_peer=$c
	else
		echo "# qdrant: the JS peer failed or did not store $points points; no peer figures"
	fi
else
	echo "# qdrant: the peer @qdrant/js-client-rest could not be installed from npm; plumb's figures only"
fi
echo "# qdrant: $points points of dimension $dim, batch $batch, $parallel requests in flight, wait=true, each run on an empty collection"
echo "# qdrant: on $(nproc) cores, one of them the server's, shared with the client under test"
echo "# qdrant: the server is t/qdrant-server.py (python3 ThreadingHTTPServer: a thread per connection, one core under the GIL); it parses and validates every body, so it bounds both clients and the ratio understates the clients' own difference"
printf 'upsert-qdrant %s points dim %s (vs @qdrant/js-client-rest)\tpoints/s\t%s\t%s\thigher\n' \
	"$points" "$dim" "$(pps "$w_ours")" "$([ "$w_peer" = - ] && echo - || pps "$w_peer")"
printf 'upsert-qdrant client CPU for the same (vs the JS client)\ts\t%s\t%s\tlower\n' "$c_ours" "$c_peer"
printf 'upsert-qdrant same, with done markers and acks\tpoints/s\t%s\t-\thigher\n' "$(pps "$w_marked")"
