#!/usr/bin/env bats
# upsert-qdrant against the Qdrant test server (t/qdrant-server.py): collections,
# points and payloads, acks and their order, stale chunks, deletes, retries and
# faults, API keys, bad input, signals; and the test server's own fidelity.

load test_helper

setup_file() {
	QDIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/qdrant.XXXXXX")
	python3 "$T_ROOT/t/qdrant-server.py" --port-file "$QDIR/port" >"$QDIR/log" 2>&1 3>&- &
	echo $! > "$QDIR/pid"
	for _ in $(seq 200); do [ -s "$QDIR/port" ] && break; sleep 0.05; done
	[ -s "$QDIR/port" ] || { cat "$QDIR/log" >&2; return 1; }
	export QDIR QSRV="http://127.0.0.1:$(cat "$QDIR/port")"
}

teardown_file() {
	kill "$(cat "$QDIR/pid")" 2>/dev/null || true
}

local_setup() {
	export QDRANT_URL=$QSRV
	curl -sf -X POST "$QSRV/__reset" > /dev/null
}

# vectors DIM DOC:N[:VERSION]... > file: per document N chunk records with
# seeded vectors of DIM numbers and "model", then its "done" marker. The
# version changes doc_sha256, texts and vectors.
vectors() {
	python3 - "$@" <<'PY'
import hashlib, json, random, sys
dim = int(sys.argv[1])
for spec in sys.argv[2:]:
    doc, n, *ver = spec.split(":")
    ver = ver[0] if ver else "v1"
    sha = hashlib.sha256(("%s/%s" % (doc, ver)).encode()).hexdigest()
    for i in range(int(n)):
        rng = random.Random("%s#%d/%s" % (doc, i, ver))
        print(json.dumps({"id": "%s#%d" % (doc, i), "doc_id": doc, "doc_sha256": sha, "chunk": i,
                          "start": 10 * i, "end": 10 * i + 9, "text": "chunk %d of %s (%s)" % (i, doc, ver),
                          "meta": {"lang": "en", "tags": ["a", "b"]},
                          "vector": [round(rng.uniform(-1, 1), 6) for _ in range(dim)],
                          "model": "test-rand"}, separators=(",", ":"), ensure_ascii=False))
    print(json.dumps({"op": "done", "doc_id": doc, "doc_sha256": sha, "chunks": int(n)},
                     separators=(",", ":"), ensure_ascii=False))
PY
}

sha_of() { printf '%s' "$1/${2:-v1}" | sha256sum | cut -d' ' -f1; }

# q METHOD PATH [JSON]: a request to the test server; the reply on stdout
q() {
	curl -s -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$QSRV$2"
}

# py EXPR < json: evaluate EXPR with the JSON input as d
py() {
	python3 -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r))' "$1"
}

points() { q GET "/__points/$1"; }
# requests the server saw, one "METHOD PATH STATUS" line each (control endpoints aside)
requests() { q GET /__log | py '"\n".join("%s %s %s" % (e["method"], e["path"], e["status"]) for e in d["log"])'; }
fault() { q POST /__faults "$1" > /dev/null; }
now() { date +%s.%N; }

@test "upsert-qdrant --help and --version" {
	run -0 --separate-stderr upsert-qdrant --help
	assert_output --partial "usage: upsert-qdrant -c collection [--url url] [--api-key key]"
	assert_output --partial "QDRANT_API_KEY"
	[ -z "$stderr" ]
	run -0 upsert-qdrant --version
	assert_output --regexp '^upsert-qdrant \(plumb\) '
}

@test "upsert-qdrant rejects bad options and configuration with exit 2" {
	run -2 --separate-stderr upsert-qdrant < /dev/null
	[[ "$stderr" == *"a collection is required (--collection or PLUMB_COLLECTION)"* ]]
	run -2 --separate-stderr upsert-qdrant -c docs --distance cosinus < /dev/null
	[[ "$stderr" == *"unknown distance 'cosinus' (want cosine, dot, euclid or manhattan)"* ]]
	run -2 --separate-stderr upsert-qdrant -c docs --batch 0 < /dev/null
	[[ "$stderr" == *"--batch: '0' is not a whole number from 1 to 100000"* ]]
	run -2 --separate-stderr upsert-qdrant -c docs --timeout soon < /dev/null
	[[ "$stderr" == *"--timeout: 'soon' is not a number of seconds"* ]]
	PLUMB_QDRANT_PARALLEL=many run -2 --separate-stderr upsert-qdrant -c docs < /dev/null
	[[ "$stderr" == *"PLUMB_QDRANT_PARALLEL: 'many'"* ]]
	run -2 --separate-stderr upsert-qdrant -c docs --url ftp://example.org < /dev/null
	[[ "$stderr" == *"'ftp://example.org' is not an http:// or https:// URL"* ]]
	run -2 --separate-stderr upsert-qdrant -c a/b < /dev/null
	[[ "$stderr" == *"'a/b' is not a collection name"* ]]
	run -2 --separate-stderr upsert-qdrant -c docs missing.jsonl
	assert_equal "$stderr" "upsert-qdrant: cannot open 'missing.jsonl': No such file or directory"
	# nothing was written
	run -0 q GET /collections/docs/exists
	[[ "$output" == *'"exists":false'* ]]
}

@test "upsert-qdrant creates the collection: size from the first vector, distance, doc_id index" {
	vectors 5 a.md:2 > in.jsonl
	run -0 --separate-stderr upsert-qdrant -c docs in.jsonl
	run -0 q GET /collections/docs
	assert_equal "$(echo "$output" | py 'd["result"]["config"]["params"]["vectors"]')" '{"size": 5, "distance": "Cosine"}'
	assert_equal "$(echo "$output" | py 'd["result"]["payload_schema"]["doc_id"]["data_type"]')" keyword
	assert_equal "$(echo "$output" | py 'd["result"]["points_count"]')" 2
	for d in dot:Dot euclid:Euclid MANHATTAN:Manhattan; do
		run -0 upsert-qdrant -c "c-${d%%:*}" --distance "${d%%:*}" in.jsonl
		run -0 q GET "/collections/c-${d%%:*}"
		assert_equal "$(echo "$output" | py 'd["result"]["config"]["params"]["vectors"]["distance"]')" "${d##*:}"
	done
	PLUMB_QDRANT_DISTANCE=dot PLUMB_COLLECTION=from-env run -0 upsert-qdrant in.jsonl
	run -0 q GET /collections/from-env
	assert_equal "$(echo "$output" | py 'd["result"]["config"]["params"]["vectors"]["distance"]')" Dot
}

@test "upsert-qdrant adds the doc_id index to an existing collection that lacks it" {
	q PUT /collections/docs '{"vectors":{"size":3,"distance":"Dot"}}' > /dev/null
	vectors 3 a.md:1 > in.jsonl
	run -0 upsert-qdrant -c docs in.jsonl
	run -0 q GET /collections/docs
	assert_equal "$(echo "$output" | py 'd["result"]["payload_schema"]["doc_id"]["data_type"]')" keyword
	assert_equal "$(echo "$output" | py 'd["result"]["config"]["params"]["vectors"]["distance"]')" Dot
}

@test "upsert-qdrant stops with exit 2 before writing when the vector size disagrees with the collection" {
	q PUT /collections/docs '{"vectors":{"size":384,"distance":"Cosine"}}' > /dev/null
	vectors 3 old.md:0 a.md:2 > in.jsonl
	run -2 --separate-stderr upsert-qdrant -c docs in.jsonl
	assert_equal "$stderr" 'upsert-qdrant: collection "docs" holds vectors of size 384, but in.jsonl:2 has a vector of size 3 (another model?)'
	assert_equal "$output" ""
	run -0 requests
	refute_output --partial "/points"
	refute_output --partial "PUT /collections/docs/index"
	run -2 --separate-stderr upsert-qdrant -c docs --distance dot in.jsonl
	q PUT /collections/small '{"vectors":{"size":3,"distance":"Cosine"}}' > /dev/null
	run -2 --separate-stderr upsert-qdrant -c small --distance dot in.jsonl
	assert_equal "$stderr" 'upsert-qdrant: collection "small" uses Cosine distance, not Dot (--distance)'
}

@test "upsert-qdrant stores points with UUIDv5 ids and the record minus its vector as payload" {
	vectors 4 guide/intro.md:3 'notes/é ü.md:1' > in.jsonl
	run -0 upsert-qdrant -c docs --distance dot in.jsonl
	points docs > got.json
	python3 - in.jsonl got.json <<'PY'
import json, sys, uuid
from array import array
ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:plumb:record-id")
assert str(ns) == "c3af16aa-7183-587b-ac6c-a7527abcbe70"
recs = [json.loads(l) for l in open(sys.argv[1]) if '"vector"' in l]
got = {p["id"]: p for p in json.load(open(sys.argv[2]))["points"]}
assert len(got) == len(recs) == 4, (len(got), len(recs))
for r in recs:
    p = got[str(uuid.uuid5(ns, r["id"]))]
    want = dict(r)
    vec = want.pop("vector")
    assert p["payload"] == want, (p["payload"], want)
    assert p["vector"] == array("f", vec).tolist(), (p["vector"], vec)
PY
}

@test "upsert-qdrant copies payload members byte for byte, escapes and all" {
	printf '%s\n' '{"id":"x#0","doc_id":"x","doc_sha256":"s","text":"tab\there \u00e9 \ud83d\ude00 \"q\"","n":1.50,"deep":{"a":[null,true,{"b":-0.0}]},"vector":[1,0]}' \
		'{"op":"done","doc_id":"x","doc_sha256":"s","chunks":1}' > in.jsonl
	run -0 upsert-qdrant -c docs in.jsonl
	points docs > got.json
	run -0 python3 -c '
import json
p = json.load(open("got.json"))["points"][0]["payload"]
assert p == {"id": "x#0", "doc_id": "x", "doc_sha256": "s", "text": "tab\there \u00e9 \U0001F600 \"q\"", "n": 1.5, "deep": {"a": [None, True, {"b": -0.0}]}}, p'
}

@test "upsert-qdrant normalizes nothing itself; a Cosine collection holds unit vectors" {
	vectors 8 a.md:2 > in.jsonl
	run -0 upsert-qdrant -c docs in.jsonl
	run -0 bash -c 'curl -s "$QSRV/__points/docs" | python3 -c "
import json, math, sys
for p in json.load(sys.stdin)[\"points\"]:
    assert abs(math.sqrt(sum(x * x for x in p[\"vector\"])) - 1) < 1e-5, p"'
}

@test "upsert-qdrant acks each document in input order, with the marker's fields" {
	vectors 3 a.md:2 b.md:0 c.md:3 > in.jsonl
	echo '{"op":"delete","doc_id":"gone.md","reason":"removed","meta":{"why":"moved","n":[1,2]}}' >> in.jsonl
	sed -i 's/"op":"done","doc_id":"c.md"/&,"run":7/' in.jsonl
	sed -i 's/\("op":"done","doc_id":"b.md".*\)}$/\1,"meta":{"lang":"fr"},"why":"edited"}/' in.jsonl
	run -0 --separate-stderr upsert-qdrant -c docs in.jsonl
	assert_equal "${#lines[@]}" 4
	assert_equal "${lines[0]}" "{\"op\":\"indexed\",\"doc_id\":\"a.md\",\"doc_sha256\":\"$(sha_of a.md)\",\"chunks\":2}"
	assert_equal "${lines[1]}" "{\"op\":\"indexed\",\"doc_id\":\"b.md\",\"doc_sha256\":\"$(sha_of b.md)\",\"chunks\":0,\"meta\":{\"lang\":\"fr\"},\"why\":\"edited\"}"
	assert_equal "${lines[2]}" "{\"op\":\"indexed\",\"doc_id\":\"c.md\",\"doc_sha256\":\"$(sha_of c.md)\",\"chunks\":3,\"run\":7}"
	assert_equal "${lines[3]}" '{"op":"deleted","doc_id":"gone.md","reason":"removed","meta":{"why":"moved","n":[1,2]}}'
	[ -z "$stderr" ]
}

@test "upsert-qdrant keeps acks in order while a slow delete runs, without waiting for it" {
	vectors 3 a.md:1 b.md:1 c.md:1 > in.jsonl
	# the first document's stale-point delete takes 1.5 s
	fault '{"path":"/points/delete","delay":1.5,"times":1}'
	run -0 upsert-qdrant -c docs -b 1 -p 4 in.jsonl
	assert_equal "$(printf '%s\n' "${lines[@]}" | grep -o '"doc_id":"[a-c].md"' | tr -d '\n')" '"doc_id":"a.md""doc_id":"b.md""doc_id":"c.md"'
	# b's and c's deletes were sent while a's was still in flight
	run -0 bash -c 'curl -s "$QSRV/__log" | python3 -c "
import json, sys
log = [e for e in json.load(sys.stdin)[\"log\"] if e[\"path\"].endswith(\"/points/delete\")]
assert len(log) == 3, log
slow = [e for e in log if e[\"filter\"][\"must\"][0][\"match\"][\"value\"] == \"a.md\"][0]
others = [e for e in log if e is not slow]
assert all(e[\"t\"] < slow[\"t\"] + 1.0 for e in others), (slow, others)"'
}

@test "upsert-qdrant deletes a document's stale chunks when it shrinks or changes" {
	vectors 3 a.md:4:v1 b.md:2:v1 > v1.jsonl
	run -0 upsert-qdrant -c docs v1.jsonl
	assert_equal "$(points docs | py 'len(d["points"])')" 6
	vectors 3 a.md:2:v2 > v2.jsonl
	run -0 upsert-qdrant -c docs v2.jsonl
	assert_equal "${lines[0]}" "{\"op\":\"indexed\",\"doc_id\":\"a.md\",\"doc_sha256\":\"$(sha_of a.md v2)\",\"chunks\":2}"
	run -0 bash -c 'curl -s "$QSRV/__points/docs" | python3 -c "
import json, sys
ps = json.load(sys.stdin)[\"points\"]
a = sorted((p[\"payload\"][\"id\"], p[\"payload\"][\"text\"]) for p in ps if p[\"payload\"][\"doc_id\"] == \"a.md\")
assert a == [(\"a.md#0\", \"chunk 0 of a.md (v2)\"), (\"a.md#1\", \"chunk 1 of a.md (v2)\")], a
assert sum(1 for p in ps if p[\"payload\"][\"doc_id\"] == \"b.md\") == 2"'
	# a document that becomes empty loses every point
	printf '{"op":"done","doc_id":"b.md","doc_sha256":"%s","chunks":0}\n' "$(sha_of b.md v3)" | upsert-qdrant -c docs
	assert_equal "$(points docs | py 'sorted(p["payload"]["id"] for p in d["points"])')" '["a.md#0", "a.md#1"]'
}

@test "upsert-qdrant deletes the chunks a re-chunked document no longer has (same doc_sha256), as upsert-local does" {
	mkdir docs
	python3 -c '
import random
rng = random.Random(7)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
for p in range(12):
    print(" ".join(rng.choice(words) for _ in range(55)) + ".")
    print()' > docs/a.md
	printf 'A short note.\n' > docs/b.md
	discover-diff --quiet docs > docs.jsonl
	index() {	# index SIZE: the same documents chunked at SIZE, into both stores
		chunk -s "$1" -o 0 docs.jsonl | embed --dim 8 > "vec$1.jsonl"
		upsert-qdrant -c docs "vec$1.jsonl" > "qacks$1.jsonl"
		upsert-local idx "vec$1.jsonl" > "lacks$1.jsonl"
	}
	index 400
	index 1500
	n1=$(grep -c '"id":"a.md#' vec400.jsonl)
	n2=$(grep -c '"id":"a.md#' vec1500.jsonl)
	[ "$n1" -ge 8 ] && [ "$n2" -ge 2 ] && [ "$n2" -lt "$n1" ]
	# the document did not change: both runs carry the same doc_sha256
	assert_equal "$(grep -o '"doc_sha256":"[0-9a-f]*"' vec400.jsonl vec1500.jsonl | cut -d: -f2- | sort -u | wc -l)" 2
	run -0 grep -c '"op":"indexed","doc_id":"a.md"' qacks1500.jsonl lacks1500.jsonl
	assert_output $'qacks1500.jsonl:1\nlacks1500.jsonl:1'
	# both stores hold exactly the second run's chunks, with the same payloads
	points docs | py '"\n".join(json.dumps(p["payload"], sort_keys=True) for p in d["points"])' | sort > qdump.jsonl
	upsert-local --dump idx | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    r.pop("vector")
    print(json.dumps(r, sort_keys=True))' | sort > ldump.jsonl
	grep -v '"op"' vec1500.jsonl | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    r.pop("vector")
    print(json.dumps(r, sort_keys=True))' | sort > want.jsonl
	assert_equal "$(lines want.jsonl)" "$((n2 + 1))"
	run -0 diff want.jsonl qdump.jsonl
	run -0 diff want.jsonl ldump.jsonl
	# the stale delete: this doc_id, and another doc_sha256 or a chunk number past the count
	sha=$(grep -o '"op":"done","doc_id":"a.md","doc_sha256":"[0-9a-f]*"' vec1500.jsonl | cut -d'"' -f12)
	run -0 bash -c 'curl -s "$QSRV/__log" | python3 -c "
import json, sys
for e in json.load(sys.stdin)[\"log\"]:
    f = e.get(\"filter\")
    if f and f[\"must\"][0][\"match\"][\"value\"] == \"a.md\":
        print(json.dumps(f, separators=(\",\", \":\")))" | tail -1'
	assert_output "{\"must\":[{\"key\":\"doc_id\",\"match\":{\"value\":\"a.md\"}}],\"should\":[{\"must_not\":[{\"key\":\"doc_sha256\",\"match\":{\"value\":\"$sha\"}}]},{\"key\":\"chunk\",\"range\":{\"gte\":$n2}}]}"
}

@test "upsert-qdrant writes nothing, not even a delete, until the first vector's size is checked, though the input pauses" {
	q PUT /collections/docs '{"vectors":{"size":4,"distance":"Cosine"}}' > /dev/null
	vectors 4 keep.md:1 | upsert-qdrant -c docs > /dev/null
	vectors 3 a.md:1 > small.jsonl
	export del='{"op":"delete","doc_id":"keep.md"}'
	n0=$(q GET /__stats | py 'd["requests"]')
	run -2 --separate-stderr bash -c '(echo "$del"; sleep 1; cat small.jsonl) | upsert-qdrant -c docs'
	assert_equal "$stderr" 'upsert-qdrant: collection "docs" holds vectors of size 4, but stdin:2 has a vector of size 3 (another model?)'
	assert_equal "$output" ""
	# it only read the collection
	assert_equal "$(q GET "/__log?since=$n0" | py '[e["method"] + " " + e["path"] for e in d["log"]]')" '["GET /collections/docs"]'
	assert_equal "$(points docs | py '[p["payload"]["id"] for p in d["points"]]')" '["keep.md#0"]'
	# the same with a vector of the right size: the delete goes, after it
	vectors 4 b.md:1 > good.jsonl
	run -0 bash -c '(echo "$del"; echo "{\"op\":\"done\",\"doc_id\":\"e.md\",\"doc_sha256\":\"s\",\"chunks\":0}"; sleep 1; cat good.jsonl) | upsert-qdrant -c docs'
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[0]}" '{"op":"deleted","doc_id":"keep.md"}'
	[[ "${lines[1]}" == '{"op":"indexed","doc_id":"e.md",'* ]]
	[[ "${lines[2]}" == '{"op":"indexed","doc_id":"b.md",'* ]]
	assert_equal "$(points docs | py '[p["payload"]["id"] for p in d["points"]]')" '["b.md#0"]'
	# a stream of deletes alone: written at its end
	run -0 bash -c '(echo "{\"op\":\"delete\",\"doc_id\":\"b.md\"}"; sleep 0.5) | upsert-qdrant -c docs'
	assert_output '{"op":"deleted","doc_id":"b.md"}'
	assert_equal "$(points docs | py 'len(d["points"])')" 0
}

@test "upsert-qdrant --hold-deletes bounds how long deletes wait for a first vector" {
	vectors 3 a.md:1 | upsert-qdrant -c docs > /dev/null
	mkfifo in.fifo
	upsert-qdrant -c docs --hold-deletes 0.5 in.fifo > out.jsonl 2> err &
	pid=$!
	exec 4<> in.fifo
	t0=$(now)
	echo '{"op":"delete","doc_id":"a.md"}' >&4
	for _ in $(seq 100); do [ -s out.jsonl ] && break; sleep 0.05; done
	t1=$(now)
	# acknowledged while the input is still open, after the hold
	assert_equal "$(cat out.jsonl)" '{"op":"deleted","doc_id":"a.md"}'
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 0.45 && b - a < 4) }'
	assert_equal "$(points docs | py 'len(d["points"])')" 0
	exec 4>&-
	wait $pid
	assert_equal "$(cat err)" ""
	# by default a delete waits longer than a pause of a second
	PLUMB_QDRANT_HOLD_DELETES=0.3 run -0 bash -c '(echo "{\"op\":\"delete\",\"doc_id\":\"x.md\"}"; sleep 1; echo "{\"op\":\"delete\",\"doc_id\":\"y.md\"}") | upsert-qdrant -c docs -v 2>&1 >/dev/null'
	[[ "$output" == *'no vector within 0.3 s'* ]]
	run -0 bash -c '(echo "{\"op\":\"delete\",\"doc_id\":\"x.md\"}"; sleep 1; echo "{\"op\":\"delete\",\"doc_id\":\"y.md\"}") | upsert-qdrant -c docs -v 2>&1 >/dev/null'
	[[ "$output" != *'no vector within'* ]]
	run -2 --separate-stderr upsert-qdrant -c docs --hold-deletes soon < /dev/null
	[[ "$stderr" == *"--hold-deletes: 'soon' is not a number of seconds from 0 to 86400"* ]]
}

@test "upsert-qdrant deletes the points of a delete record, and acks deletes in a missing collection" {
	vectors 3 a.md:2 b.md:1 > in.jsonl
	run -0 upsert-qdrant -c docs in.jsonl
	echo '{"op":"delete","doc_id":"a.md"}' > del.jsonl
	run -0 upsert-qdrant -c docs del.jsonl
	assert_output '{"op":"deleted","doc_id":"a.md"}'
	assert_equal "$(points docs | py '[p["payload"]["id"] for p in d["points"]]')" '["b.md#0"]'
	run -0 q GET /__log
	[[ "$output" == *'"filter":{"must":[{"key":"doc_id","match":{"value":"a.md"}}]}'* ]]
	curl -s -X POST "$QSRV/__reset" > /dev/null
	run -0 upsert-qdrant -c none del.jsonl
	assert_output '{"op":"deleted","doc_id":"a.md"}'
	run -0 requests
	assert_output "GET /collections/none 404"
}

@test "upsert-qdrant handles a document that comes twice in one stream" {
	{ vectors 3 a.md:3:v1; echo '{"op":"delete","doc_id":"a.md"}'; vectors 3 a.md:2:v2 b.md:1; } > in.jsonl
	run -0 upsert-qdrant -c docs -b 1 -p 8 in.jsonl
	assert_equal "${#lines[@]}" 4
	[[ "${lines[0]}" == *'"indexed","doc_id":"a.md"'*'"chunks":3}' ]]
	assert_equal "${lines[1]}" '{"op":"deleted","doc_id":"a.md"}'
	[[ "${lines[2]}" == *'"indexed","doc_id":"a.md"'*'"chunks":2}' ]]
	assert_equal "$(points docs | py 'sorted(p["payload"]["text"] for p in d["points"])')" \
		'["chunk 0 of a.md (v2)", "chunk 0 of b.md (v1)", "chunk 1 of a.md (v2)"]'
}

@test "upsert-qdrant is idempotent: a re-run stores the same points, no duplicates" {
	vectors 3 a.md:3 b.md:2 > in.jsonl
	run -0 upsert-qdrant -c docs in.jsonl
	first=$output
	points docs > one.json
	run -0 upsert-qdrant -c docs in.jsonl
	assert_equal "$output" "$first"
	points docs > two.json
	run -0 python3 -c '
import json
a, b = (json.load(open(f))["points"] for f in ("one.json", "two.json"))
assert len(a) == len(b) == 5
assert [(p["id"], p["payload"], p["vector"]) for p in a] == [(p["id"], p["payload"], p["vector"]) for p in b]'
}

@test "an indexing pipeline sends only changed documents on its next run" {
	mkdir docs && echo 'Alpha text.' > docs/a.md && echo 'Beta text.' > docs/b.md
	# an embedding stand-in: six numbers from the text's SHA-256
	cat > addvec.py <<'PY'
import hashlib, json, sys
for line in sys.stdin:
    r = json.loads(line)
    if "text" in r:
        h = hashlib.sha256(r["text"].encode()).digest()
        r["vector"] = [b / 255 - 0.5 for b in h[:6]]
        r["model"] = "sha-6"
    print(json.dumps(r))
PY
	run -0 bash -c "set -o pipefail; discover-diff --state st.jsonl docs | chunk | python3 addvec.py | upsert-qdrant -c docs | discover-diff --state st.jsonl --commit"
	assert_equal "$(q GET /__stats | py 'd["points_upserted"]')" 2
	echo 'Beta text, changed.' > docs/b.md
	curl -s -X POST "$QSRV/__reset" > /dev/null
	q PUT /collections/docs '{"vectors":{"size":6,"distance":"Cosine"}}' > /dev/null
	run -0 bash -c "set -o pipefail; discover-diff --state st.jsonl docs | chunk | python3 addvec.py | upsert-qdrant -c docs | tee acks.jsonl | discover-diff --state st.jsonl --commit"
	# only b.md was sent again
	assert_equal "$(q GET /__stats | py 'd["points_upserted"]')" 1
	assert_equal "$(points docs | py '[p["payload"]["text"] for p in d["points"]]')" '["Beta text, changed."]'
	run -0 grep -c '"op":"indexed"' acks.jsonl
	assert_output 1
	run -0 discover-diff --quiet --state st.jsonl docs
	assert_output ""
}

@test "upsert-qdrant retries a 429 after its Retry-After" {
	vectors 3 a.md:2 > in.jsonl
	fault '{"path":"/collections/docs/points","method":"PUT","status":429,"retry_after":1,"times":1}'
	t0=$(now)
	run -0 --separate-stderr upsert-qdrant -c docs --retry-delay 0.01 in.jsonl
	t1=$(now)
	[[ "${lines[0]}" == *'"op":"indexed"'* ]]
	# Retry-After: 1 was honoured rather than the 10 ms backoff
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 0.95 && b - a < 5) }'
	run -0 requests
	assert_line "PUT /collections/docs/points 429"
	assert_line "PUT /collections/docs/points 200"
	assert_equal "$(points docs | py 'len(d["points"])')" 2
}

@test "upsert-qdrant retries 503s and dropped connections" {
	vectors 3 a.md:2 b.md:1 > in.jsonl
	fault '[{"path":"/points","method":"PUT","status":503,"times":2},
		{"path":"/points/delete","drop":true,"times":1},
		{"path":"/points","method":"PUT","drop":true,"apply":true,"skip":2,"times":1}]'
	run -0 --separate-stderr upsert-qdrant -c docs -b 1 --retry-delay 0.02 in.jsonl
	assert_equal "${#lines[@]}" 2
	run -0 q GET /__log
	assert_equal "$(echo "$output" | py 'sorted(str(e["fault"]) for e in d["log"] if e["fault"])')" '["503", "503", "drop", "drop"]'
	# the write whose answer was lost was sent again, and is stored once
	assert_equal "$(points docs | py 'sorted(p["payload"]["id"] for p in d["points"])')" '["a.md#0", "a.md#1", "b.md#0"]'
}

@test "upsert-qdrant gives up after its retries with 75 or 69 and one clear line" {
	vectors 3 a.md:1 > in.jsonl
	fault '{"path":"/points","method":"PUT","status":503,"times":0,"body":"Service internal error: overloaded\nplease retry"}'
	run -75 --separate-stderr upsert-qdrant -c docs --retries 3 --retry-delay 0.01 in.jsonl
	assert_equal "$stderr" "upsert-qdrant: qdrant: 503 Service Unavailable: Service internal error: overloaded please retry (gave up after 3 tries)"
	assert_equal "$output" ""
	curl -s -X DELETE "$QSRV/__faults" > /dev/null
	fault '{"path":"/points","method":"PUT","status":429,"times":0}'
	run -75 --separate-stderr upsert-qdrant -c docs --retries 2 --retry-delay 0.01 in.jsonl
	[[ "$stderr" == "upsert-qdrant: qdrant: 429 Too Many Requests: "*"(gave up after 2 tries)" ]]
	curl -s -X DELETE "$QSRV/__faults" > /dev/null
	fault '{"path":"/points","method":"PUT","status":500,"times":0}'
	PLUMB_RETRIES=2 PLUMB_RETRY_DELAY=0.01 run -69 --separate-stderr upsert-qdrant -c docs in.jsonl
	[[ "$stderr" == "upsert-qdrant: qdrant: 500 Internal Server Error: "*"(gave up after 2 tries)" ]]
	curl -s -X DELETE "$QSRV/__faults" > /dev/null
	fault '{"path":"/points","drop":true,"times":0}'
	run -69 --separate-stderr upsert-qdrant -c docs --retries 2 --retry-delay 0.01 in.jsonl
	assert_equal "$stderr" "upsert-qdrant: qdrant: no response from $QSRV: Empty reply from server (gave up after 2 tries)"
	# nobody listening
	port=$(free_port)
	run -69 --separate-stderr upsert-qdrant -c docs --url "http://127.0.0.1:$port" --retries 2 --retry-delay 0.01 in.jsonl
	[[ "$stderr" == "upsert-qdrant: qdrant: no response from http://127.0.0.1:$port: "*"(gave up after 2 tries)" ]]
	# a slow server: the whole-request timeout counts as a failed try
	curl -s -X DELETE "$QSRV/__faults" > /dev/null
	fault '{"path":"/collections/docs","method":"GET","delay":2,"times":0}'
	run -69 --separate-stderr upsert-qdrant -c docs --timeout 0.3 --retries 2 --retry-delay 0.01 in.jsonl
	[[ "$stderr" == *"Operation timed out after"*"(gave up after 2 tries)" ]]
}

@test "upsert-qdrant shows a Qdrant 400 error in one line and exits 65" {
	q PUT /collections/docs '{"vectors":{"size":3,"distance":"Cosine"}}' > /dev/null
	mkfifo in.fifo
	upsert-qdrant -c docs in.fifo > out.jsonl 2> err &
	pid=$!
	# once upsert-qdrant has read the collection (size 3), it changes under it
	exec 4> in.fifo
	for _ in $(seq 100); do grep -q 'GET /collections/docs 200' <(requests) && break; sleep 0.05; done
	q DELETE /collections/docs > /dev/null
	q PUT /collections/docs '{"vectors":{"size":4,"distance":"Cosine"}}' > /dev/null
	vectors 3 a.md:1 >&4
	exec 4>&-
	rc=0
	wait $pid || rc=$?
	assert_equal "$rc" 65
	assert_equal "$(cat err)" "upsert-qdrant: qdrant: 400 Bad Request: Wrong input: Vector dimension error: expected dim: 4, got 3"
	assert_equal "$(cat out.jsonl)" ""
}

@test "upsert-qdrant sends the API key and never prints it" {
	q POST /__config '{"api_key":"s3cret-key"}' > /dev/null
	vectors 3 a.md:1 > in.jsonl
	run -2 --separate-stderr upsert-qdrant -c docs in.jsonl
	assert_equal "$stderr" "upsert-qdrant: qdrant: 401 Unauthorized: Must provide an API key or an Authorization bearer token"
	run -2 --separate-stderr upsert-qdrant -c docs --api-key wrong-key -v in.jsonl
	assert_equal "$stderr" "upsert-qdrant: qdrant: 401 Unauthorized: Invalid API key or JWT"
	QDRANT_API_KEY=s3cret-key run -0 --separate-stderr upsert-qdrant -c docs -v in.jsonl
	[[ "${lines[0]}" == *'"op":"indexed"'* ]]
	[[ "$stderr" == *"PUT $QSRV/collections/docs/points: 1 points"* ]]
	[[ "$stderr" != *s3cret* ]]
	run -0 --separate-stderr upsert-qdrant -c docs --api-key s3cret-key --verbose in.jsonl
	[[ "$stderr" != *s3cret* ]]
	[[ "$output" != *s3cret* ]]
	# with a user and password in the URL, those are not shown either
	fault '{"path":"/points","status":503,"times":0}'
	QDRANT_API_KEY=s3cret-key run -75 --separate-stderr upsert-qdrant -c docs --url "http://me:pa55word@127.0.0.1:${QSRV##*:}" --retries 1 -v in.jsonl
	[[ "$stderr" != *pa55word* && "$stderr" != *s3cret* ]]
}

@test "upsert-qdrant stops at malformed JSON with file and line, after acking what came before" {
	vectors 3 a.md:2 > in.jsonl
	echo '{"id":"b.md#0",' >> in.jsonl
	vectors 3 c.md:1 >> in.jsonl
	run -65 --separate-stderr upsert-qdrant -c docs in.jsonl
	assert_equal "$stderr" "upsert-qdrant: in.jsonl:4: invalid JSON: unexpected end of input (column 16)"
	assert_equal "${#lines[@]}" 1
	[[ "${lines[0]}" == *'"indexed","doc_id":"a.md"'* ]]
	assert_equal "$(points docs | py 'len(d["points"])')" 2
}

@test "upsert-qdrant rejects records it cannot store" {
	vectors 3 a.md:1 > good.jsonl
	echo '{"id":"x#0","doc_id":"x","doc_sha256":"s","text":"no vector"}' > a; run -65 --separate-stderr upsert-qdrant -c docs a
	assert_equal "$stderr" 'upsert-qdrant: a:1: record has no "vector" (is embed missing from the pipeline?)'
	echo '{"id":"x#0","doc_id":"x","doc_sha256":"s","vector":[1,"2",3]}' > b; run -65 --separate-stderr upsert-qdrant -c docs b
	assert_equal "$stderr" 'upsert-qdrant: b:1: "vector" is not an array of numbers'
	echo '{"id":"x#0","doc_id":"x","doc_sha256":"s","vector":[]}' > c; run -65 --separate-stderr upsert-qdrant -c docs c
	assert_equal "$stderr" 'upsert-qdrant: c:1: "vector" is empty'
	echo '{"doc_id":"x","doc_sha256":"s","vector":[1,2,3]}' > d; run -65 --separate-stderr upsert-qdrant -c docs d
	assert_equal "$stderr" 'upsert-qdrant: d:1: record has no "id" string'
	echo '{"id":"x#0","doc_id":"x","vector":[1,2,3]}' > e; run -65 --separate-stderr upsert-qdrant -c docs e
	assert_equal "$stderr" 'upsert-qdrant: e:1: record has no "doc_sha256" string'
	echo '{"op":"indexed","doc_id":"x"}' > f; run -65 --separate-stderr upsert-qdrant -c docs f
	assert_equal "$stderr" 'upsert-qdrant: f:1: unknown op "indexed" (want "done" or "delete")'
	echo '{"op":"done","doc_id":"x","doc_sha256":"s"}' > g; run -65 --separate-stderr upsert-qdrant -c docs g
	assert_equal "$stderr" 'upsert-qdrant: g:1: "done" marker has no "chunks" count'
	{ cat good.jsonl; echo '{"id":"x#0","doc_id":"x","doc_sha256":"s","vector":[1,2]}'; } > h
	run -65 --separate-stderr upsert-qdrant -c docs h
	assert_equal "$stderr" 'upsert-qdrant: h:3: vector of size 2; the collection "docs" holds size 3'
	[[ "${lines[0]}" == *'"indexed","doc_id":"a.md"'* ]]
}

@test "upsert-qdrant --keep-going does not ack a document with a rejected chunk" {
	vectors 3 a.md:3 b.md:1 > in.jsonl
	sed -i '2s/"vector":\[[^]]*\],//' in.jsonl
	run -65 --separate-stderr upsert-qdrant -c docs --keep-going in.jsonl
	assert_equal "${#lines[@]}" 1
	[[ "${lines[0]}" == *'"doc_id":"b.md"'* ]]
	[[ "$stderr" == *'in.jsonl:2: record has no "vector"'* ]]
	[[ "$stderr" == *'in.jsonl:4: document "a.md" has 2 of its 3 chunks'* ]]
	[[ "$stderr" == *"2 bad input lines skipped"* ]]
	run -0 --separate-stderr upsert-qdrant -c docs --rejects rej.jsonl in.jsonl
	assert_equal "$(lines rej.jsonl)" 2
	# as in upsert-local: a marker that counts more chunks than came is bad
	# input, though every chunk was good (one was left out upstream)
	vectors 3 d.md:3 | sed 2d > short.jsonl
	run -65 --separate-stderr upsert-qdrant -c docs short.jsonl
	assert_equal "$output" ""
	assert_equal "$stderr" 'upsert-qdrant: short.jsonl:3: document "d.md" has 2 of its 3 chunks'
	run -65 --separate-stderr upsert-local idx short.jsonl
	assert_equal "$output" ""
	[[ "$stderr" == 'upsert-local: short.jsonl:3: document "d.md" has 2 of its 3 chunks'* ]]
	# chunks whose doc_sha256 is not their marker's are not acked either
	vectors 3 c.md:1:v1 | head -1 > mixed.jsonl
	vectors 3 c.md:1:v2 | tail -1 >> mixed.jsonl
	run -65 --separate-stderr upsert-qdrant -c docs mixed.jsonl
	assert_equal "$output" ""
	assert_equal "$stderr" "upsert-qdrant: mixed.jsonl:2: document \"c.md\": the doc_sha256 of its chunks is not its marker's"
}

@test "upsert-qdrant acks documents while its input is still open" {
	mkfifo in.fifo
	upsert-qdrant -c docs in.fifo > out.jsonl &
	pid=$!
	exec 4> in.fifo
	vectors 3 a.md:2 >&4
	for _ in $(seq 100); do [ -s out.jsonl ] && break; sleep 0.05; done
	[[ "$(cat out.jsonl)" == *'"indexed","doc_id":"a.md"'* ]]
	vectors 3 b.md:1 >&4
	exec 4>&-
	wait $pid
	assert_equal "$(lines out.jsonl)" 2
}

@test "upsert-qdrant on SIGTERM finishes its requests, acks completed documents only, and dies of it" {
	fault '{"path":"/points","method":"PUT","delay":1,"times":1}'
	mkfifo in.fifo
	upsert-qdrant -c docs in.fifo > out.jsonl 2> err &
	pid=$!
	{ vectors 3 a.md:2; vectors 3 b.md:2 | head -1; } > in.jsonl
	exec 4> in.fifo
	cat in.jsonl >&4
	# the points are in flight (1 s); b.md has no marker yet
	for _ in $(seq 100); do grep -q 'PUT /collections/docs/points' <(requests) && break; sleep 0.05; done
	sleep 0.2
	kill -TERM $pid
	rc=0
	wait $pid || rc=$?
	exec 4>&-
	assert_equal "$rc" 143
	assert_equal "$(lines out.jsonl)" 1
	[[ "$(cat out.jsonl)" == *'"indexed","doc_id":"a.md"'* ]]
	# the request in flight finished: all three points are stored
	assert_equal "$(points docs | py 'len(d["points"])')" 3
	assert_equal "$(cat err)" ""
}

@test "upsert-qdrant fails with exit 70 when stdout cannot be written" {
	vectors 3 a.md:1 > in.jsonl
	run -70 --separate-stderr sh -c 'upsert-qdrant -c docs in.jsonl > /dev/full'
	assert_equal "$stderr" "upsert-qdrant: write error on standard output: No space left on device"
}

@test "upsert-qdrant verifies TLS certificates unless --insecure" {
	command -v openssl > /dev/null || skip "openssl is not installed"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2> /dev/null
	python3 "$T_ROOT/t/qdrant-server.py" --tls-cert cert.pem --tls-key key.pem --port-file tls.port > tls.log 2>&1 3>&- &
	tls=$!
	for _ in $(seq 200); do [ -s tls.port ] && break; sleep 0.05; done
	url=https://127.0.0.1:$(cat tls.port)
	vectors 3 a.md:1 > in.jsonl
	run -2 --separate-stderr upsert-qdrant -c docs --url "$url" in.jsonl
	[[ "$stderr" == "upsert-qdrant: qdrant: no response from $url: SSL certificate problem: self"*"certificate"* ]]
	run -0 upsert-qdrant -c docs --url "$url" --insecure in.jsonl
	[[ "$output" == *'"op":"indexed"'* ]]
	PLUMB_INSECURE=1 run -0 upsert-qdrant -c docs --url "$url" in.jsonl
	run -0 upsert-qdrant -c docs --url "$url" --cacert cert.pem in.jsonl
	PLUMB_CACERT=cert.pem run -0 upsert-qdrant -c docs --url "$url" in.jsonl
	kill $tls
}

@test "upsert-qdrant takes URL, key and collection from the environment, flags winning" {
	vectors 3 a.md:1 > in.jsonl
	QDRANT_URL=http://127.0.0.1:1 PLUMB_COLLECTION=env run -0 upsert-qdrant --url "$QSRV/" -c flag in.jsonl
	run -0 q GET /collections
	assert_output --partial '{"name":"flag"}'
	refute_output --partial '"env"'
	# a collection name that needs escaping in the path
	run -0 upsert-qdrant -c 'my docs?é' in.jsonl
	run -0 q GET '/collections/my%20docs%3F%C3%A9/exists'
	assert_output --partial '"exists":true'
}

@test "the client library against the test server (t/unit/qdrant live)" {
	unit=""
	for u in ${PLUMB_UNITS:-}; do [[ "$u" == */qdrant ]] && unit=$u; done
	[ -n "$unit" ] || skip "run through make test"
	run -0 "$unit" "$QSRV"
	refute_output --partial "not ok"
	assert_output --partial "ok 57 - live: writing to a missing collection"
}

@test "the test server rejects what Qdrant rejects, in Qdrant's shapes" {
	run -0 q PUT /collections/t '{"vectors":{"size":3,"distance":"Dot"}}'
	[[ "$output" == '{"result":true,"status":"ok","time":'* ]]
	check() {	# check STATUS ERROR METHOD PATH [JSON]
		run -0 curl -s -o body -w '%{http_code}' -X "$3" -H 'Content-Type: application/json' ${5:+-d "$5"} "$QSRV$4"
		assert_equal "$output" "$1"
		run -0 py 'd["status"]["error"]' < body
		assert_equal "$output" "$2"
		run -0 py 'sorted(d)' < body
		assert_equal "$output" '["status", "time"]'
	}
	check 409 'Wrong input: Collection `t` already exists!' PUT /collections/t '{"vectors":{"size":3,"distance":"Dot"}}'
	check 400 'Format error in JSON body: data did not match any variant of untagged enum VectorsConfig' PUT /collections/u '{"vectors":{"size":3,"distance":"cosine"}}'
	check 422 'Validation error in JSON body: [vectors.size: value 0 invalid, must be from 1 to 65536]' PUT /collections/u '{"vectors":{"size":0,"distance":"Dot"}}'
	check 404 'Not found: Collection `nope` doesn'"'"'t exist!' GET /collections/nope
	check 404 'Not found: Collection `nope` doesn'"'"'t exist!' PUT '/collections/nope/points?wait=true' '{"points":[{"id":1,"vector":[1,2,3]}]}'
	check 400 'Format error in JSON body: value doc-1 is not a valid point ID, valid values are either an unsigned integer or a UUID' PUT /collections/t/points '{"points":[{"id":"doc-1","vector":[1,2,3]}]}'
	check 400 'Format error in JSON body: value -1 is not a valid point ID, valid values are either an unsigned integer or a UUID' PUT /collections/t/points '{"points":[{"id":-1,"vector":[1,2,3]}]}'
	check 400 'Wrong input: Vector dimension error: expected dim: 3, got 2' PUT /collections/t/points '{"points":[{"id":1,"vector":[1,2]}]}'
	check 400 'Wrong input: Vector dimension error: expected dim: 3, got 4' PUT /collections/t/points '{"batch":{"ids":[1],"vectors":[[1,2,3,4]]}}'
	check 400 'Format error in JSON body: missing field `vector`' PUT /collections/t/points '{"points":[{"id":1}]}'
	check 400 'Wrong input: Not existing vector name error: text' PUT /collections/t/points '{"points":[{"id":1,"vector":{"text":[1,2,3]}}]}'
	# PointsSelector is an untagged enum: what is wrong inside it is not said
	check 400 'Format error in JSON body: data did not match any variant of untagged enum PointsSelector' POST /collections/t/points/delete '{"filter":{"bogus":[]}}'
	check 400 'Format error in JSON body: unknown field `bogus`, expected one of `should`, `min_should`, `must`, `must_not`' POST /collections/t/points/count '{"filter":{"bogus":[]}}'
	check 400 'Format error in JSON body: data did not match any variant of untagged enum MatchInterface' POST /collections/t/points/count '{"filter":{"must":[{"key":"a","match":{"val":1}}]}}'
	check 400 'Format error in JSON body: data did not match any variant of untagged enum RangeInterfaceUntagged' POST /collections/t/points/count '{"filter":{"must":[{"key":"a","range":{"gte":true}}]}}'
	check 400 "Format error in JSON body: Filter condition 'key' must be a string" POST /collections/t/points/count '{"filter":{"must":[{"key":1,"match":{"value":1}}]}}'
	# an error inside a nested filter reads as Qdrant's generic one for a condition
	condition='Format error in JSON body: Expected some form of condition, which can be a field condition (like {"key": ..., "match": ... }), or some other mentioned in the documentation: https://qdrant.tech/documentation/concepts/filtering/#filtering-conditions'
	check 400 "$condition" POST /collections/t/points/count '{"filter":{"should":[{"must_not":[{"key":"a","range":{"gte":[1]}}]}]}}'
	check 400 "$condition" POST /collections/t/points/count '{"filter":{"should":{"must_not":{"key":"a","match":{"val":1}}}}}'
	check 400 "$condition" POST /collections/t/points/count '{"filter":{"must":[{"must":[],"bogus":1}]}}'
	check 400 "$condition" POST /collections/t/points/count '{"filter":{"must":["doc_id"]}}'
	# what does not validate is a 422, once the whole body deserialized (how
	# Qdrant names the member is not copied: the test server gives a path)
	invalid() {	# invalid MESSAGE JSON: a count with this body
		run -0 curl -s -o body -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$2" "$QSRV/collections/t/points/count"
		assert_output 422
		run -0 py 'd["status"]["error"]' < body
		[[ "$output" == 'Validation error in JSON body: ['*"$1"*']' ]]
	}
	invalid 'At least one field condition must be specified' '{"filter":{"should":[{"must_not":[{"key":"a"}]}]}}'
	invalid 'min_count must be greater than 0' '{"filter":{"min_should":{"conditions":[],"min_count":0}}}'
	check 400 "$condition" POST /collections/t/points/count '{"filter":{"must":[{"key":"a"},{"must":[{"key":"b","match":{"val":1}}]}]}}'
	check 400 'Format error in JSON body: invalid type: string "yes", expected a boolean' POST /collections/t/points/count '{"exact":"yes"}'
	check 400 'Format error in JSON body: invalid type: integer `1`, expected a boolean' POST /collections/t/points/count '{"exact":1}'
	check 422 'Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]' POST /collections/t/points/query '{"query":[1,2,3],"limit":0}'
	# an update with nothing in it (Qdrant: no shard gets an operation)
	check 400 'Bad request: Empty update request' PUT /collections/t/points '{"points":[]}'
	check 400 'Bad request: Empty update request' PUT /collections/t/points '{"batch":{"ids":[],"vectors":[]}}'
	check 400 'Bad request: Empty update request' POST /collections/t/points/delete '{"points":[]}'
	# without a JSON content type a body is refused before it is read
	run -0 curl -s -o body -w '%{http_code}' -X PUT "$QSRV/collections/t/points" -d '{"points":[{"id":1,"vector":[1,2,3]}]}'
	assert_output 400
	assert_equal "$(py 'd["status"]["error"]' < body)" "Content type error"
	run -0 curl -s -o /dev/null -w '%{http_code}' "$QSRV/no/such/path"
	assert_output 404
	# nothing above was stored
	assert_equal "$(q POST /collections/t/points/count '{}' | py 'd["result"]["count"]')" 0
	# API keys: 401 without or with a wrong one, plain text as Qdrant's
	q POST /__config '{"api_key":"k1","read_only_api_key":"r1"}' > /dev/null
	run -0 curl -s -w ' %{http_code}' "$QSRV/collections"
	assert_output "Must provide an API key or an Authorization bearer token 401"
	run -0 curl -s -w ' %{http_code}' -H 'api-key: k2' "$QSRV/collections"
	assert_output "Invalid API key or JWT 401"
	run -0 curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k1' "$QSRV/collections"
	assert_output 200
	run -0 curl -s -w ' %{http_code}' -H 'api-key: r1' -X DELETE "$QSRV/collections/t"
	[[ "$output" == *'"error":"Forbidden: '*' 403' ]]
	run -0 curl -s -o /dev/null -w '%{http_code}' "$QSRV/"
	assert_output 200
}

@test "the test server's points, filters, scroll, count, query and search" {
	q PUT /collections/t '{"vectors":{"size":2,"distance":"Cosine"}}' > /dev/null
	q PUT '/collections/t/points?wait=true' '{"batch":{"ids":[3,"550E8400-E29B-41D4-A716-446655440000",1],"vectors":[[1,0],[0,2],[1,1]],"payloads":[{"doc_id":"a","n":1,"tags":["x","y"]},{"doc_id":"b","n":2},null]}}' > /dev/null
	run -0 q POST /collections/t/points/scroll '{"limit":2,"with_vector":true}'
	assert_equal "$(echo "$output" | py '[p["id"] for p in d["result"]["points"]]')" '[1, 3]'
	assert_equal "$(echo "$output" | py 'd["result"]["next_page_offset"]')" '550e8400-e29b-41d4-a716-446655440000'
	assert_equal "$(echo "$output" | py '[round(x, 4) for x in d["result"]["points"][0]["vector"]]')" '[0.7071, 0.7071]'
	count() { q POST /collections/t/points/count "{\"filter\":$1}" | py 'd["result"]["count"]'; }
	assert_equal "$(count '{"must":[{"key":"doc_id","match":{"value":"a"}}]}')" 1
	assert_equal "$(count '{"must":{"key":"tags","match":{"any":["y","z"]}}}')" 1
	assert_equal "$(count '{"must_not":[{"key":"doc_id","match":{"value":"a"}}]}')" 2
	assert_equal "$(count '{"should":[{"key":"n","range":{"gte":2}},{"has_id":[1]}]}')" 2
	assert_equal "$(count '{"must":[{"is_empty":{"key":"doc_id"}}]}')" 1
	assert_equal "$(count '{"must":[{"key":"doc_id","match":{"value":"a"}}],"must_not":[{"key":"n","match":{"value":1}}]}')" 0
	# nested filters, in every clause and in both forms (one condition, or a list)
	assert_equal "$(count '{"should":[{"must_not":[{"key":"doc_id","match":{"value":"a"}}]},{"key":"n","range":{"gte":1}}]}')" 3
	assert_equal "$(count '{"must":{"should":[{"key":"n","range":{"gt":1}},{"has_id":[3]}]}}')" 2
	assert_equal "$(count '{"must_not":{"must":[{"key":"n","range":{"lte":1}}],"must_not":{"has_id":[1]}}}')" 2
	assert_equal "$(count '{"must":[{"must":[{"must":[{"key":"tags","match":{"value":"y"}}]}]}]}')" 1
	assert_equal "$(count '{"must":[{}]}')" 3
	# range: lt, gt, lte, gte, null and unknown bounds ignored, numbers only
	assert_equal "$(count '{"must":{"key":"n","range":{"gt":1}}}')" 1
	assert_equal "$(count '{"must":{"key":"n","range":{"gte":1,"lt":2}}}')" 1
	assert_equal "$(count '{"must":{"key":"n","range":{"lte":2.5,"gt":null,"bogus":1}}}')" 2
	assert_equal "$(count '{"must":{"key":"n","range":{}}}')" 2
	assert_equal "$(count '{"must":{"key":"doc_id","range":{"gte":0}}}')" 0
	assert_equal "$(count '{"must_not":{"key":"n","range":{"gte":2}}}')" 2
	# an empty "should" matches nothing, an empty "must" or "must_not" everything
	assert_equal "$(count '{"should":[]}')" 0
	assert_equal "$(count '{"must":[],"must_not":[]}')" 3
	# several tests in one field condition: any of them
	assert_equal "$(count '{"must":{"key":"n","match":{"value":1},"range":{"gte":2}}}')" 2
	run -0 q POST /collections/t/points/query '{"query":[1,0],"limit":2,"with_payload":true}'
	assert_equal "$(echo "$output" | py '[(p["id"], round(p["score"], 4), "payload" in p) for p in d["result"]["points"]]')" '[[3, 1.0, true], [1, 0.7071, true]]'
	run -0 q POST /collections/t/points/query/batch '{"searches":[{"query":{"nearest":[0,1]},"limit":1},{"query":[1,0],"limit":1,"filter":{"must":[{"key":"doc_id","match":{"value":"b"}}]}}]}'
	assert_equal "$(echo "$output" | py '[[p["id"] for p in r["points"]] for r in d["result"]]')" '[["550e8400-e29b-41d4-a716-446655440000"], ["550e8400-e29b-41d4-a716-446655440000"]]'
	run -0 q POST /collections/t/points/search/batch '{"searches":[{"vector":[1,0],"limit":1,"with_payload":["n"]}]}'
	assert_equal "$(echo "$output" | py 'd["result"]')" '[[{"id": 3, "version": 1, "score": 1.0, "payload": {"n": 1}}]]'
	run -0 q POST /collections/t/points/search '{"vector":[1,1],"limit":3,"score_threshold":0.9}'
	assert_equal "$(echo "$output" | py '[p["id"] for p in d["result"]]')" '[1]'
	run -0 q POST /collections/t/points '{"ids":[3]}'
	assert_equal "$(echo "$output" | py 'd["result"]')" '[{"id": 3, "payload": {"doc_id": "a", "n": 1, "tags": ["x", "y"]}}]'
	q POST '/collections/t/points/delete?wait=true' '{"points":["550e8400-e29b-41d4-a716-446655440000"]}' > /dev/null
	assert_equal "$(q GET /collections/t | py 'd["result"]["points_count"]')" 2
	run -0 q GET /collections/t/exists
	assert_output --partial '"result":{"exists":true}'
	run -0 q DELETE /collections/t
	assert_output --partial '"result":true'
	run -0 q DELETE /collections/t
	assert_output --partial '"result":false'
}

@test "the examples in upsert-qdrant(1) run" {
	mkdir -p docs && printf '# Guide\n\nPlumb is a toolkit.\n\nIt indexes documents.\n' > docs/guide.md
	printf 'Old notes.\n' > docs/old.md
	vectors 384 intro.md:3 > vectors.jsonl
	run_man_examples "$T_ROOT/docs/upsert-qdrant.1" 4
}
