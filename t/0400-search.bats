#!/usr/bin/env bats
# search: exact top-k against brute force, record shape, payloads, ties,
# canaries, text queries, snapshots, bad input.

load test_helper

setup_file() {
	start_openai_server --api-key sk-search-0123456789 --dim 16
}

teardown_file() {
	stop_openai_server
}

# store DIR N DIM: N random unit vectors (ids p0..), two per document
store() {
	python3 - "$2" "$3" > points.jsonl <<'PY'
import json, random, sys
n, dim = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(7)
for i in range(n):
    v = [r.gauss(0, 1) for _ in range(dim)]
    s = sum(x * x for x in v) ** 0.5
    print(json.dumps({"id": f"p{i}", "doc_id": f"doc{i // 2}", "doc_sha256": "s", "chunk": i % 2,
                      "text": f"point {i}", "meta": {"i": i}, "vector": [float("%.8g" % (x / s)) for x in v],
                      "model": "test-model"}))
PY
	upsert-local -b 97 "$1" points.jsonl > /dev/null
}

# queries N DIM [seed]: query records with random vectors
queries() {
	python3 - "$1" "$2" "${3:-11}" <<'PY'
import json, random, sys
n, dim, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
for i in range(n):
    print(json.dumps({"id": f"q{i}", "vector": [round(r.gauss(0, 1), 6) for _ in range(dim)], "note": i}))
PY
}

@test "search --help prints usage on stdout and exits 0" {
	run -0 --separate-stderr search --help
	assert_output --partial "usage: search [--local DIR | --qdrant URL -c COLLECTION] [-k N]"
	assert_output --partial "PLUMB_LOCAL_STORE"
	[ -z "$stderr" ]
	run -0 search --version
	assert_output --regexp '^search \(plumb\) '
}

@test "search rejects bad usage and a missing store with exit 2" {
	run -2 --separate-stderr search </dev/null
	[[ "$stderr" == *"no store (give --local DIR or --qdrant URL, or set PLUMB_LOCAL_STORE)"* ]]
	run -2 --separate-stderr search --local st -k 0
	[[ "$stderr" == *"-k: '0' is not a whole number"* ]]
	run -2 --separate-stderr search --local st --payload --fields text
	[[ "$stderr" == *"--payload and --fields exclude each other"* ]]
	run -2 --separate-stderr search --local st --backend bert
	[[ "$stderr" == *"unknown backend 'bert'"* ]]
	run -2 --separate-stderr search --local st --qdrant http://127.0.0.1:9 -c x
	[[ "$stderr" == *"--local and --qdrant exclude each other"* ]]
	run -2 --separate-stderr search --qdrant http://127.0.0.1:9
	[[ "$stderr" == *"--qdrant needs --collection (or PLUMB_COLLECTION)"* ]]
	run -2 --separate-stderr search --local nowhere </dev/null
	[[ "$stderr" == *"cannot open store 'nowhere'"* ]]
	mkdir plain
	run -2 --separate-stderr search --local plain </dev/null
	[[ "$stderr" == *"'plain' is not a plumb vector store (no MANIFEST)"* ]]
}

@test "search finds exactly the k best points, as brute force does" {
	store st 700 16
	queries 300 16 > q.jsonl
	upsert-local --dump st > dump.jsonl
	search --local st -k 7 q.jsonl > out.jsonl
	run -0 python3 "$T_FIXTURES/search/brute.py" dump.jsonl q.jsonl out.jsonl 7
	search --local st -k 1 --threads 1 q.jsonl > out1.jsonl
	run -0 python3 "$T_FIXTURES/search/brute.py" dump.jsonl q.jsonl out1.jsonl 1
	head -3 q.jsonl | search --local st -k 5000 > all.jsonl
	run -0 python3 "$T_FIXTURES/search/brute.py" dump.jsonl <(head -3 q.jsonl) all.jsonl 5000
}

@test "search gives the same answers on any number of threads and in input order" {
	store st 3000 8
	queries 600 8 > q.jsonl
	search --local st --threads 1 q.jsonl > one.jsonl
	search --local st --threads 3 q.jsonl > three.jsonl
	cmp one.jsonl three.jsonl
	run -0 python3 -c '
import json
ids = [json.loads(l)["id"] for l in open("one.jsonl")]
assert ids == ["q%d" % i for i in range(600)], ids[:5]'
}

@test "search writes each query back verbatim with hits added, replacing old hits" {
	store st 50 4
	printf '%s\n' '{"id":"q\u00e9", "vector":[1,0,0,0] ,"x":{"a":[1,2]},"hits":"old","z":null}' > q.jsonl
	run -0 search --local st -k 2 q.jsonl
	assert_output --regexp '^\{"id":"q\\u00e9","vector":\[1,0,0,0\],"x":\{"a":\[1,2\]\},"z":null,"hits":\[\{"id":"p[0-9]+","doc_id":"doc[0-9]+","score":0\.[0-9]+\},\{"id":"p[0-9]+","doc_id":"doc[0-9]+","score":0\.[0-9]+\}\]\}$'
}

@test "search adds payloads with --payload, or chosen fields with --fields" {
	store st 20 4
	echo '{"vector":[0,1,0,0]}' > q.jsonl
	run -0 search --local st -k 1 --payload q.jsonl
	assert_output --regexp '"hits":\[\{"id":"(p[0-9]+)","doc_id":"doc[0-9]+","score":[0-9.e-]+,"payload":\{"id":"p[0-9]+","doc_id":"doc[0-9]+","doc_sha256":"s","chunk":[01],"text":"point [0-9]+","meta":\{"i": [0-9]+\},"model":"test-model"\}\}\]\}$'
	run -0 search --local st -k 1 --fields meta,text,nothing q.jsonl
	assert_output --regexp ',"payload":\{"meta":\{"i": [0-9]+\},"text":"point [0-9]+"\}\}\]\}$'
	PLUMB_SEARCH_FIELDS=text run -0 search --local st -k 1 q.jsonl
	assert_output --regexp ',"payload":\{"text":"point [0-9]+"\}\}\]\}$'
}

@test "search ranks equal scores by id, the same on every run" {
	python3 -c '
import json
for i in [5, 3, 12, 1, 7, 20, 2]:
    print(json.dumps({"id": "t%d" % i, "doc_id": "d", "vector": [0.6, 0.8]}))
print(json.dumps({"id": "far", "doc_id": "d", "vector": [-1, 0]}))' > pts.jsonl
	upsert-local st pts.jsonl
	echo '{"vector":[1,0]}' > q.jsonl
	run -0 search --local st -k 4 q.jsonl
	assert_output '{"vector":[1,0],"hits":[{"id":"t1","doc_id":"d","score":0.6},{"id":"t12","doc_id":"d","score":0.6},{"id":"t2","doc_id":"d","score":0.6},{"id":"t20","doc_id":"d","score":0.6}]}'
}

@test "search never returns deleted or overwritten points" {
	store st 40 4
	printf '%s\n' '{"op":"delete","doc_id":"doc3"}' \
		'{"id":"p0","doc_id":"doc0","doc_sha256":"s","chunk":0,"vector":[0,0,0,1]}' > change.jsonl
	upsert-local st change.jsonl > /dev/null
	echo '{"vector":[0,0,0,1]}' > q.jsonl
	run -0 search --local st -k 40 q.jsonl
	refute_output --partial '"doc3"'
	assert_output --partial '"hits":[{"id":"p0","doc_id":"doc0","score":1}'
	assert_equal "$(grep -o '"id":"p0"' <<< "$output" | wc -l)" 1
	assert_equal "$(grep -o '"score"' <<< "$output" | wc -l)" 38
}

@test "search embeds text queries with the hash backend, as embed does" {
	python3 -c '
import json
texts = ["the cat sat on the mat", "a dog barked at the mailman", "vector stores hold embeddings",
         "exact search uses matrix products", "canaries catch retrieval regressions"]
for i, t in enumerate(texts):
    print(json.dumps({"id": "c%d" % i, "doc_id": "doc%d" % i, "doc_sha256": "s", "chunk": 0, "text": t}))
    print(json.dumps({"op": "done", "doc_id": "doc%d" % i, "doc_sha256": "s", "chunks": 1}))' > chunks.jsonl
	embed --backend hash --dim 64 chunks.jsonl | upsert-local st > /dev/null
	printf '%s\n' '{"id":"q1","text":"exact search uses matrix products"}' '{"id":"q2","text":"dog"}' > q.jsonl
	run -0 search --local st -k 2 q.jsonl
	assert_line -n 0 --regexp '"hits":\[\{"id":"c3","doc_id":"doc3","score":(1|0\.99999[0-9]*)\},'
	assert_line -n 1 --regexp '"hits":\[\{"id":"c1",'
	# the dimension defaults to the store's; another one is a usage error
	run -2 --separate-stderr search --local st --dim 32 q.jsonl
	[[ "$stderr" == *"queries are embedded with 32 dimensions, the store holds 64"* ]]
}

@test "search refuses to embed text queries with another model than the store's" {
	store st 10 4
	echo '{"id":"q","text":"hello"}' > q.jsonl
	run -2 --separate-stderr search --local st q.jsonl
	[[ "$stderr" == *'the store holds vectors of model "test-model", but queries would be embedded with "plumb-hash-v1"'* ]]
}

@test "search canaries: all found exits 0, a miss is reported and exits 1 after all output" {
	store st 100 4
	# a query equal to p10's vector finds doc5 (p10, p11) first
	python3 -c '
import json
pts = [json.loads(l) for l in open("points.jsonl")]
print(json.dumps({"id": "good", "vector": pts[10]["vector"], "expected": ["doc5"]}))
print(json.dumps({"id": "bad", "vector": pts[10]["vector"], "expected": ["doc5", "doc49", "nowhere"]}))
print(json.dumps({"vector": pts[10]["vector"], "expected": ["doc48"]}))
print(json.dumps({"id": "plain", "vector": pts[10]["vector"]}))' > q.jsonl
	run -0 --separate-stderr search --local st -k 3 <(head -1 q.jsonl)
	[ -z "$stderr" ]
	run -1 --separate-stderr search --local st -k 3 q.jsonl
	assert_equal "${#lines[@]}" 4
	assert_equal "$stderr" "$(printf '%s\n' \
		'search: q.jsonl:2: canary "bad" missed "doc49" (top 3)' \
		'search: q.jsonl:2: canary "bad" missed "nowhere" (top 3)' \
		'search: q.jsonl:3: canary missed "doc48" (top 3)' \
		'search: 2 of 3 canaries missed')"
	run -0 search --local st -k 100 <(sed -n 2p q.jsonl | sed 's/, "nowhere"//')
}

@test "search rejects queries it cannot use, with file and line" {
	store st 10 4
	printf '%s\n' '{"id":"ok","vector":[1,0,0,0]}' '{"id":"none"}' > q.jsonl
	run -65 --separate-stderr search --local st q.jsonl
	[[ "$stderr" == *'search: q.jsonl:2: query has neither "vector" nor "text"'* ]]
	assert_equal "${#lines[@]}" 1	# the query before it was answered
	echo '{"vector":[1,0]}' | { run -65 --separate-stderr search --local st; [[ "$stderr" == *'stdin:1: "vector" has 2 dimensions, the store holds 4'* ]]; }
	echo '{"vector":[1,0,0,"x"]}' | { run -65 --separate-stderr search --local st; [[ "$stderr" == *'"vector": element 3 is not a number'* ]]; }
	echo '{"vector":[1,0,0,0],"expected":"doc1"}' | { run -65 --separate-stderr search --local st; [[ "$stderr" == *'"expected" is not an array of doc ids'* ]]; }
	echo '{"vector":[1,0,0,0],"expected":["a",1]}' | { run -65 --separate-stderr search --local st; [[ "$stderr" == *'"expected" is not an array of doc ids'* ]]; }
	echo '{"vector":[1,0,0,0]' | { run -65 --separate-stderr search --local st; [[ "$stderr" == *'stdin:1: invalid JSON'* ]]; }
	printf '%s\n' '{"id":"a"}' '{"id":"b","vector":[0,1,0,0]}' > q2.jsonl
	run -0 --separate-stderr search --local st --rejects bad.jsonl q2.jsonl
	assert_equal "${#lines[@]}" 1
	assert_equal "$(cat bad.jsonl)" '{"id":"a"}'
}

@test "search on an empty store gives every query empty hits" {
	upsert-local st < /dev/null
	printf '%s\n' '{"id":"a","vector":[1,2,3]}' '{"id":"b","text":"x"}' > q.jsonl
	run -0 search --local st q.jsonl
	assert_line -n 0 '{"id":"a","vector":[1,2,3],"hits":[]}'
	assert_line -n 1 '{"id":"b","text":"x","hits":[]}'
}

@test "search keeps the snapshot it opened while the store changes under it" {
	store st 60 4
	mkfifo qf
	search --local st -k 3 < qf > out.jsonl 2> err &
	pid=$!
	exec 7> qf
	echo '{"id":"first","vector":[0,0,0,1]}' >&7
	for _ in $(seq 100); do [ "$(lines out.jsonl)" = 1 ] && break; sleep 0.05; done
	assert_equal "$(lines out.jsonl)" 1
	# exact matches for the query arrive, and everything is rewritten
	printf '%s\n' '{"id":"new1","doc_id":"new","vector":[0,0,0,1]}' \
		'{"id":"new2","doc_id":"new","vector":[0,0,0,1]}' | upsert-local st > /dev/null
	upsert-local --compact st
	echo '{"id":"second","vector":[0,0,0,1]}' >&7
	exec 7>&-
	wait "$pid"
	first=$(sed -n 1p out.jsonl | sed 's/.*"hits"//')
	second=$(sed -n 2p out.jsonl | sed 's/.*"hits"//')
	assert_equal "$second" "$first"
	run -0 search --local st -k 2 <(echo '{"vector":[0,0,0,1]}')
	assert_output --partial '"hits":[{"id":"new1","doc_id":"new","score":1},{"id":"new2","doc_id":"new","score":1}]'
}

@test "search --qdrant gives the hits --local gives for the same points" {
	[ -f "$T_ROOT/t/qdrant-server.py" ] || skip "no Qdrant test server"
	command -v upsert-qdrant >/dev/null || skip "upsert-qdrant is not built"
	python3 "$T_ROOT/t/qdrant-server.py" --port-file port > qlog 2>&1 3>&- &
	qpid=$!
	for _ in $(seq 200); do [ -s port ] && break; sleep 0.05; done
	export QDRANT_URL="http://127.0.0.1:$(cat port)"
	store st 120 8
	upsert-qdrant -c pts --distance dot points.jsonl > /dev/null
	queries 40 8 > q.jsonl
	search --local st -k 6 --fields text q.jsonl > local.jsonl
	run -0 search --qdrant "$QDRANT_URL" -c pts -k 6 --fields text q.jsonl
	echo "$output" > remote.jsonl
	PLUMB_COLLECTION=pts run -0 search -k 6 --fields text q.jsonl
	assert_equal "$output" "$(cat remote.jsonl)"
	kill "$qpid"
	run -0 python3 - <<'PY'
import json
for a, b in zip(open("local.jsonl"), open("remote.jsonl")):
    a, b = json.loads(a), json.loads(b)
    assert [(h["id"], h["doc_id"], h["payload"]) for h in a["hits"]] == \
           [(h["id"], h["doc_id"], h["payload"]) for h in b["hits"]], (a, b)
    assert all(abs(x["score"] - y["score"]) < 1e-5 for x, y in zip(a["hits"], b["hits"]))
PY
}

@test "search --qdrant: a missing collection is a usage error" {
	[ -f "$T_ROOT/t/qdrant-server.py" ] || skip "no Qdrant test server"
	python3 "$T_ROOT/t/qdrant-server.py" --port-file port > qlog 2>&1 3>&- &
	qpid=$!
	for _ in $(seq 200); do [ -s port ] && break; sleep 0.05; done
	run -2 --separate-stderr search --qdrant "http://127.0.0.1:$(cat port)" -c nothing </dev/null
	kill "$qpid"
	[[ "$stderr" == *'no collection "nothing" at http://127.0.0.1:'* ]]
}

@test "search reads its settings from the environment" {
	store st 30 4
	queries 2 4 > q.jsonl
	PLUMB_LOCAL_STORE=st PLUMB_SEARCH_K=4 run -0 search q.jsonl
	assert_equal "$(grep -o '"score"' <<< "$output" | wc -l)" 8
	PLUMB_LOCAL_STORE=st PLUMB_SEARCH_K=4 run -0 search -k 1 q.jsonl
	assert_equal "$(grep -o '"score"' <<< "$output" | wc -l)" 2
	PLUMB_LOCAL_STORE=st PLUMB_SEARCH_PAYLOAD=1 run -0 search -k 1 q.jsonl
	assert_output --partial '"payload":{"id":'
}

@test "the examples in search(1) run" {
	mkdir -p docs && cp "$T_FIXTURES/chunk/guide.md" docs/guide.md
	run_man_examples "$T_ROOT/docs/search.1" 3
}

@test "search --backend http: the key from --api-key-file, --timeout, --insecure" {
	store idx 10 16
	echo '{"id":"q","text":"point 3"}' > q.jsonl
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1"
	unset OPENAI_API_KEY
	run -2 --separate-stderr search --local idx --backend http --model test-model q.jsonl
	[[ "$stderr" == *"401: You didn't provide an API key."* ]]
	echo sk-search-0123456789 > key
	run -0 --separate-stderr search --local idx --backend http --model test-model --api-key-file key \
		--timeout 5 --insecure -k 2 q.jsonl
	[[ "$output" == '{"id":"q","text":"point 3","hits":[{"id":"p'* ]]
	PLUMB_API_KEY_FILE=key run -0 search --local idx --backend http --model test-model -k 2 q.jsonl
	run -2 --separate-stderr search --local idx --backend http --model test-model --api-key-file nokey q.jsonl
	[[ "$stderr" == "search: cannot open key file 'nokey': No such file or directory"* ]]
	run -2 --separate-stderr search --local idx --timeout 0 q.jsonl
	[[ "$stderr" == "search: --timeout: '0' is not a whole number from 1 to 86400"* ]]
	PLUMB_TIMEOUT=x run -2 --separate-stderr search --local idx q.jsonl
	[[ "$stderr" == "search: PLUMB_TIMEOUT: 'x' is not a whole number from 1 to 86400"* ]]
}
