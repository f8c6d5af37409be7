#!/usr/bin/env bats
# embed: the hash backend; the http backend against t/openai-server.py
# (batching, order, retries, rejected inputs, --truncate); the vector cache in a
# directory and in a real redis-server.

load test_helper

setup_file() {
	start_openai_server --api-key sk-test-0123456789 --models text-embedding-3-small,other-model
	start_redis
}

teardown_file() {
	stop_openai_server
	stop_redis
}

local_setup() {
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-test-0123456789
	export PLUMB_EMBED_MODEL=text-embedding-3-small
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	redis-cli -p "$REDIS_PORT" flushall > /dev/null
}

stats() {	# stats FIELD: a counter of the test server
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

fault() { curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__faults" -d "$1" > /dev/null; }

records() {	# records N: N chunk-like records and a done marker after every 5th
	python3 -c '
import json, sys
n = int(sys.argv[1])
for i in range(n):
    print(json.dumps({"id": "d%d#%d" % (i // 5, i % 5), "doc_id": "d%d" % (i // 5), "text": "record number %d about topic %d" % (i, i % 7), "meta": {"i": i}}, separators=(",", ":")))
    if i % 5 == 4:
        print(json.dumps({"op": "done", "doc_id": "d%d" % (i // 5), "doc_sha256": "x", "chunks": 5}, separators=(",", ":")))
' "$1"
}

long_second() {	# three records, the second of 50 tokens
	python3 -c '
import json
c = (",", ":")
print(json.dumps({"id": "a", "text": "short one"}, separators=c))
print(json.dumps({"id": "b", "text": " ".join(["word"] * 50)}, separators=c))
print(json.dumps({"id": "c", "text": "short two"}, separators=c))'
}

@test "embed --help and usage errors" {
	run -0 embed --help
	assert_output --partial "usage: embed [--backend hash|http]"
	run -2 --separate-stderr embed --backend magic
	assert_equal "${stderr%%$'\n'*}" "embed: unknown backend 'magic' (want hash or http)"
	PLUMB_EMBED_MODEL= run -2 --separate-stderr embed --backend http
	assert_equal "${stderr%%$'\n'*}" "embed: --backend http needs --model (or PLUMB_EMBED_MODEL)"
	run -2 --separate-stderr embed --backend http --base-url ftp://x
	assert_equal "${stderr%%$'\n'*}" "embed: --base-url 'ftp://x' is not an http(s) URL"
	run -2 --separate-stderr embed --backend bert
	[[ "$stderr" == *"the bert backend (a local model file) is not in this release"* ]]
	run -2 --separate-stderr embed --batch 5000
	# a bad value from the environment is named as such
	PLUMB_EMBED_DIM=abc run -2 --separate-stderr embed
	assert_equal "${stderr%%$'\n'*}" "embed: PLUMB_EMBED_DIM: 'abc' is not a whole number from 1 to 65536"
	PLUMB_EMBED_BATCH_TOKENS=0 run -2 --separate-stderr embed
	assert_equal "${stderr%%$'\n'*}" "embed: PLUMB_EMBED_BATCH_TOKENS must be from 1 to 300000"
	PLUMB_EMBED_PARALLEL=0 run -2 --separate-stderr embed
	assert_equal "${stderr%%$'\n'*}" "embed: PLUMB_EMBED_PARALLEL must be from 1 to 256"
}

@test "embed hash: adds a unit vector and the model, passes other records through in order" {
	records 10 > in.jsonl
	run -0 embed --dim 16 in.jsonl
	assert_equal "${#lines[@]}" 12
	echo "$output" > out.jsonl
	python3 - <<'PY'
import json, math
inp = [json.loads(l) for l in open("in.jsonl")]
out = [json.loads(l) for l in open("out.jsonl")]
assert len(inp) == len(out)
for a, b in zip(inp, out):
    if "text" not in a:
        assert a == b, (a, b)
        continue
    v = b.pop("vector"); m = b.pop("model")
    assert a == b and m == "plumb-hash-v1" and len(v) == 16, b
    assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
PY
	# the record's own bytes come first, unchanged
	[[ "${lines[0]}" == '{"id":"d0#0","doc_id":"d0","text":"record number 0 about topic 0","meta":{"i":0},"vector":['* ]]
}

@test "embed hash: deterministic, and similar texts are nearer than different ones" {
	printf '%s\n' '{"id":"a","text":"install plumb on debian with make deps"}' \
		'{"id":"b","text":"installing plumb on a debian machine: make deps"}' \
		'{"id":"c","text":"pushgateway metrics for evaluation suites"}' > in.jsonl
	embed in.jsonl > 1.jsonl
	embed in.jsonl > 2.jsonl
	cmp 1.jsonl 2.jsonl
	run -0 python3 -c '
import json
v = [json.loads(l)["vector"] for l in open("1.jsonl")]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
assert len(v[0]) == 384
assert dot(v[0], v[1]) > 0.3 > dot(v[0], v[2]), (dot(v[0], v[1]), dot(v[0], v[2]))
'
	# the same vectors on any machine: pinned values (plumb-hash-v1)
	run -0 embed --dim 8 <(head -n 1 in.jsonl)
	assert_output '{"id":"a","text":"install plumb on debian with make deps","vector":[0.085557058,-0.085557051,0,0.057038035,0.035004567,-0.9411276,0.1711141,-0.25667119],"model":"plumb-hash-v1"}'
	assert_equal "$(head -n 1 1.jsonl | sha256sum | cut -c1-64)" 3695a8176f0a5c4c93e4b27595248cde3ad74e1f42710cf547965e5cbfd40414
}

@test "embed replaces a vector and model the record already had" {
	echo '{"id":"a","text":"hello","vector":[1,2],"model":"old","x":1}' | embed --dim 4 > out.jsonl
	run -0 python3 -c 'import json; r = json.loads(open("out.jsonl").read()); assert r["model"] == "plumb-hash-v1" and len(r["vector"]) == 4 and r["x"] == 1, r'
	[ "$(grep -o '"model"' out.jsonl | wc -l)" -eq 1 ]
}

@test "embed rejects unusable text with the input line" {
	printf '%s\n' '{"id":"a","text":"fine"}' '{"id":"b","text":42}' > in.jsonl
	run -65 --separate-stderr embed in.jsonl
	assert_equal "$stderr" 'embed: in.jsonl:2: "text" is not a string'
	assert_equal "${#lines[@]}" 1
	printf '%s\n' '{"id":"a","text":"  \n"}' > in2.jsonl
	run -65 --separate-stderr embed in2.jsonl
	assert_equal "$stderr" 'embed: in2.jsonl:1: "text" is empty'
	printf '%s\n' '{"id":"a","text":"x"' > in3.jsonl
	run -65 --separate-stderr embed in3.jsonl
	assert_equal "$stderr" "embed: in3.jsonl:1: invalid JSON: unexpected end of input (column 21)"
}

@test "embed http: vectors from the server, in input order, batched by count" {
	records 95 > in.jsonl
	fault '{"latency_random_ms":[20,120]}'
	run -0 embed --backend http --batch 10 --parallel 3 in.jsonl
	# requests were in flight together, and answered out of order all the same
	assert_equal "$(stats in_flight_max)" 3
	echo "$output" > out.jsonl
	assert_equal "$(stats embeddings_requests)" 10
	assert_equal "$(stats inputs)" 95
	run -0 python3 - <<'PY'
import json
inp = [json.loads(l) for l in open("in.jsonl")]
out = [json.loads(l) for l in open("out.jsonl")]
assert [r.get("id", r.get("op")) for r in inp] == [r.get("id", r.get("op")) for r in out]
vs = [r for r in out if "vector" in r]
assert all(len(r["vector"]) == 1536 and r["model"] == "text-embedding-3-small" for r in vs)
# equal texts get equal vectors from this server; check order by re-embedding one alone
PY
	sed -n 7p in.jsonl | embed --backend http > one.jsonl
	assert_equal "$(python3 -c 'import json; print(json.load(open("one.jsonl"))["vector"][:5])')" \
		"$(sed -n 7p out.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["vector"][:5])')"
}

@test "embed http: --dim asks for dimensions, --batch-tokens splits requests" {
	records 20 > in.jsonl
	run -0 embed --backend http --dim 32 --batch 100 --batch-tokens 40 in.jsonl
	assert_equal "$(echo "${lines[0]}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vector"]))')" 32
	[ "$(stats embeddings_requests)" -ge 4 ]
}

@test "embed http: retries 429 honouring Retry-After, 503 and dropped connections" {
	records 12 > in.jsonl
	fault '{"status":429,"retry_after":1,"count":1}'
	fault '{"status":503,"count":1}'
	fault '{"drop":true,"count":1}'
	start=$(date +%s.%N)
	run -0 embed --backend http --dim 8 --batch 100 in.jsonl
	end=$(date +%s.%N)
	assert_equal "${#lines[@]}" 14
	assert_equal "$(stats embeddings_requests)" 1
	assert_equal "$(stats requests)" 4
	awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 1.0) }'
}

@test "embed http: retries exhausted end with 75 for 429 and 69 for server errors" {
	records 3 > in.jsonl
	fault '{"status":429,"retry_after":0,"count":3}'
	run -75 --separate-stderr embed --backend http --retries 3 in.jsonl
	[[ "$stderr" == "embed: 'http://127.0.0.1:$OPENAI_PORT/v1/embeddings': 429: Rate limit reached for requests" ]]
	fault '{"status":500,"count":2}'
	run -69 --separate-stderr embed --backend http --retries 2 in.jsonl
	[[ "$stderr" == *": 500: The server had an error while processing your request." ]]
	port=$(free_port)
	run -69 --separate-stderr embed --backend http --retries 2 --base-url "http://127.0.0.1:$port/v1" in.jsonl
	[[ "$stderr" == *"(after 2 tries)" ]]
}

@test "embed http: a wrong key or model is a configuration error, and the key is never printed" {
	records 2 > in.jsonl
	OPENAI_API_KEY=sk-wrong-secret-value run -2 --separate-stderr embed --backend http -v in.jsonl
	[[ "$stderr" == *"401: Incorrect API key provided"* ]]
	[[ "$stderr" != *"sk-wrong-secret-value"* ]]
	run -2 --separate-stderr embed --backend http --model no-such-model in.jsonl
	[[ "$stderr" == *"404: The model \`no-such-model\` does not exist"* ]]
	echo sk-test-0123456789 > key
	OPENAI_API_KEY= run -0 embed --backend http --dim 4 --api-key-file key in.jsonl
}

@test "embed http: an input the server rejects is bad input at its line; --keep-going goes on" {
	long_second > in.jsonl
	fault '{"reject_over_tokens":20}'
	run -65 --separate-stderr embed --backend http --dim 4 --batch 10 in.jsonl
	[[ "$stderr" == "embed: in.jsonl:2: the embedding server rejected \"text\": 400: This model's maximum context length is 20 tokens, however you requested 50 tokens"* ]]
	assert_equal "${#lines[@]}" 1
	run -65 --separate-stderr embed --backend http --dim 4 --batch 10 --keep-going in.jsonl
	assert_equal "${#lines[@]}" 2
	[[ "${lines[1]}" == '{"id":"c",'* ]]
}

@test "embed http: --truncate shortens a rejected input until it is accepted" {
	python3 -c '
import json
print(json.dumps({"id": "b", "text": " ".join(["word"] * 100)}, separators=(",", ":")))' > in.jsonl
	fault '{"reject_over_tokens":20}'
	run -0 embed --backend http --dim 4 --truncate in.jsonl
	[[ "${lines[0]}" == *'"truncated":true}' ]]
	[[ "${lines[0]}" == '{"id":"b","text":"word word'* ]]
}

batches() {	# the input counts of the embeddings requests, one a line
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | python3 -c 'import json,sys; print("\n".join(map(str, json.load(sys.stdin)["batches"])))'
}

@test "embed http: text-embeddings-inference's batch limit is learned, nothing lost or repeated" {
	python3 -c '
import json
for i in range(300): print(json.dumps({"id": "r%d" % i, "text": "record number %d" % i}))' > in.jsonl
	embed --backend http --dim 8 in.jsonl > openai.jsonl
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	fault '{"flavor":"tei","max_batch":32}'
	run -0 --separate-stderr embed --backend http --dim 8 --batch 128 in.jsonl
	[[ "$stderr" == *"the server refused a batch of "*" inputs and took "*": sending at most "*" a request from now on (--batch)"* ]]
	cmp <(printf '%s\n' "${lines[@]}") openai.jsonl
	batches > b.txt
	# every input accepted exactly once (TEI takes only batches of 32 or fewer),
	# and the one-word probe sent at the first refusal
	assert_equal "$(awk '$1 <= 32 { n += $1 } END { print n }' b.txt)" 301
	# the refused requests are the first full batches and their halves, no more
	[ "$(awk '$1 > 32' b.txt | wc -l)" -le 8 ]
	[ "$(tail -n 1 b.txt)" -le 32 ]
}

@test "embed http: llama.cpp's 500 for an input too long is not retried; vLLM's error shape is read" {
	long_second > in.jsonl
	fault '{"flavor":"llamacpp","reject_over_tokens":20}'
	run -65 --separate-stderr embed --backend http --dim 4 --batch 10 in.jsonl
	assert_equal "$stderr" 'embed: in.jsonl:2: the embedding server rejected "text": 500: input (50 tokens) is too large to process. increase the physical batch size (current batch size: 20) (--truncate shortens such inputs)'
	assert_equal "${#lines[@]}" 1
	# one request for the batch, a one-word probe (no request was taken yet),
	# then the halves down to the input: no retries
	assert_equal "$(batches | sort -n | tr '\n' ' ')" "1 1 1 1 2 3 "
	run -0 embed --backend http --dim 4 --batch 10 --truncate in.jsonl
	assert_equal "${#lines[@]}" 3
	[[ "${lines[1]}" == '{"id":"b","text":"word word'*'"truncated":true}' ]]
	# a 500 that is not about the input is still retried, then exit 69
	fault '{"status":500,"count":9}'
	run -69 --separate-stderr embed --backend http --dim 4 --retries 2 in.jsonl
	# a server that ignores "dimensions" is a configuration error, not other vectors
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	fault '{"ignore_dimensions":true}'
	run -2 --separate-stderr embed --backend http --dim 4 in.jsonl
	assert_equal "$stderr" "embed: asked for 4 dimensions (--dim), the server answered with 1536: it does not shorten vectors for this model; leave --dim out"
	assert_output ""
	# a request the server refuses whatever its inputs is not blamed on them
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	records 40 > in40.jsonl
	run -2 --separate-stderr embed --backend http --dim 5000 --batch 40 --rejects rej.jsonl in40.jsonl
	assert_equal "$stderr" "embed: 'http://127.0.0.1:$OPENAI_PORT/v1/embeddings': 400: Invalid value for 'dimensions' = 5000. Must be an integer between 1 and 3072. (a request of one word is refused as well: it is the request, not an input; check --model, --dim and --base-url)"
	assert_output ""
	[ ! -s rej.jsonl ]
	assert_equal "$(batches | tr '\n' ' ')" "40 1 "
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	fault '{"flavor":"vllm","reject_over_tokens":20}'
	run -65 --separate-stderr embed --backend http --dim 4 in.jsonl
	assert_equal "$stderr" "embed: in.jsonl:2: the embedding server rejected \"text\": 400: This model's maximum context length is 20 tokens. However, you requested 50 tokens in the input for embedding generation. Please reduce the length of the input. (--truncate shortens such inputs)"
}

@test "embed --cache: the vector of a truncated text is not kept as the text's" {
	long_second > in.jsonl
	fault '{"reject_over_tokens":20}'
	run -0 embed --backend http --dim 4 --truncate --cache vc in.jsonl
	[[ "${lines[1]}" == *'"truncated":true}' ]]
	# without --truncate the long text is refused again, cache or not
	run -65 --separate-stderr embed --backend http --dim 4 --cache vc in.jsonl
	[[ "$stderr" == "embed: in.jsonl:2: the embedding server rejected \"text\": 400: "* ]]
	# the others came from the cache
	assert_equal "${#lines[@]}" 1
}

@test "embed --cache DIR: a second run asks the server nothing" {
	records 30 > in.jsonl
	embed --backend http --dim 8 --cache vcache in.jsonl > 1.jsonl
	assert_equal "$(stats inputs)" 30
	embed --backend http --dim 8 --cache vcache in.jsonl > 2.jsonl
	assert_equal "$(stats inputs)" 30
	cmp 1.jsonl 2.jsonl
	# the key holds the model and dimension: another model is asked again
	embed --backend http --dim 8 --model other-model --cache vcache in.jsonl > 3.jsonl
	assert_equal "$(stats inputs)" 60
	embed --backend http --dim 16 --cache vcache in.jsonl > /dev/null
	assert_equal "$(stats inputs)" 90
}

@test "embed --cache redis://: shared vectors, only new texts sent" {
	records 20 > in.jsonl
	embed --backend http --dim 8 --cache "$REDIS_URL/3" in.jsonl > 1.jsonl
	assert_equal "$(redis-cli -p "$REDIS_PORT" -n 3 dbsize)" 20
	records 25 > more.jsonl
	embed --backend http --dim 8 --cache "$REDIS_URL/3" more.jsonl > 2.jsonl
	assert_equal "$(stats inputs)" 25
	cmp 1.jsonl <(head -n "$(lines 1.jsonl)" 2.jsonl)
	PLUMB_EMBED_CACHE_TTL=60 embed --dim 8 --cache "$REDIS_URL/4" in.jsonl > /dev/null
	ttl=$(redis-cli -p "$REDIS_PORT" -n 4 ttl "$(redis-cli -p "$REDIS_PORT" -n 4 --scan | head -1)")
	[ "$ttl" -gt 0 ] && [ "$ttl" -le 60 ]
	run -69 --separate-stderr embed --cache "redis://127.0.0.1:$(free_port)" in.jsonl
	[[ "$stderr" == "embed: cache: "* ]]
}

@test "the examples in embed(1) run" {
	mkdir -p docs && printf '# Title\n\nSome text about plumb.\n' > docs/a.md
	run_man_examples "$T_ROOT/docs/embed.1" 3 --output
}
