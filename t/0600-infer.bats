#!/usr/bin/env bats
# infer against t/openai-server.py's chat completions: the request sent,
# answers in input order, concurrency and the rate cap measured at the server,
# retries, failures kept as records, the reply cache in a directory and in a
# real redis-server, templates, bad input, signals, the man page's examples.

load test_helper

setup_file() {
	start_openai_server --api-key sk-test-0123456789 --models gpt-test,gpt-4o-mini,other-model
	start_redis
}

teardown_file() {
	stop_openai_server
	stop_redis
}

local_setup() {
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-test-0123456789
	export PLUMB_INFER_MODEL=gpt-test
	unset PLUMB_INFER_CONCURRENCY PLUMB_INFER_RPS PLUMB_INFER_CACHE PLUMB_INFER_CACHE_TTL
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	redis-cli -p "$REDIS_PORT" flushall > /dev/null
}

stats() {	# stats FIELD: a counter of the test server
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

fault() { curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__faults" -d "$1" > /dev/null; }
rules() { curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__rules" -d "$1" > /dev/null; }
chat_post() {	# chat_post BODY: POST to the server, prints "status body"
	curl -s -o resp.json -w '%{http_code}' -H "Authorization: Bearer sk-test-0123456789" \
		-H 'Content-Type: application/json' -d "$1" \
		"http://127.0.0.1:$OPENAI_PORT/v1/chat/completions"
	echo " $(cat resp.json)"
}

questions() {	# questions N: N example records with ids and metadata
	python3 -c '
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": "q%d" % i, "input": "question number %d" % i, "meta": {"i": i}}, separators=(",", ":")))
' "$1"
}

@test "infer --help, --version and usage errors" {
	run -0 infer --help
	assert_output --partial "usage: infer --model NAME [--base-url URL]"
	assert_output --partial "--rps X"
	run -0 infer --version
	assert_output --regexp '^infer \(plumb\) '
	PLUMB_INFER_MODEL= run -2 --separate-stderr infer
	assert_equal "${stderr%%$'\n'*}" "infer: no model: give --model (or PLUMB_INFER_MODEL)"
	run -2 --separate-stderr infer --base-url ftp://x
	assert_equal "${stderr%%$'\n'*}" "infer: --base-url 'ftp://x' is not an http(s) URL"
	run -2 --separate-stderr infer --temperature 3
	assert_equal "${stderr%%$'\n'*}" "infer: --temperature: '3' is not a number from 0 to 2"
	run -2 --separate-stderr infer --top-p x
	run -2 --separate-stderr infer --concurrency 0
	run -2 --separate-stderr infer --rps 0
	run -2 --separate-stderr infer --max-tokens 0
	run -2 --separate-stderr infer --stop a --stop b --stop c --stop d --stop e
	assert_equal "${stderr%%$'\n'*}" "infer: --stop: at most 4 stop sequences"
	run -2 --separate-stderr infer --template /nonexistent
	[[ "$stderr" == "infer: cannot open template '/nonexistent': No such file or directory"* ]]
	run -2 --separate-stderr infer --no-such-option
	# nothing was sent for any of these
	assert_equal "$(stats chat_requests)" 0
}

@test "infer adds output, model, latency_ms, usage; the record's own bytes come first" {
	rules '{"rules":{"What is the capital of France?":"Paris"}}'
	printf '%s\n' '{"id":"q1","input":"What is the capital of France?","meta":{"k":[1,2]}}' \
		'{"id":"q2","input":"echo this back"}' > in.jsonl
	run -0 infer in.jsonl
	assert_equal "${#lines[@]}" 2
	[[ "${lines[0]}" == '{"id":"q1","input":"What is the capital of France?","meta":{"k":[1,2]},"output":"Paris","model":"gpt-test","latency_ms":'* ]]
	[[ "${lines[1]}" == '{"id":"q2","input":"echo this back","output":"echo this back",'* ]]
	echo "$output" > out.jsonl
	run -0 python3 - <<'PY'
import json
out = [json.loads(l) for l in open("out.jsonl")]
for r in out:
    u = r["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0, u
    assert isinstance(r["latency_ms"], int) and r["latency_ms"] >= 0, r
    assert r["finish_reason"] == "stop" and "cached" not in r and "error" not in r, r
assert out[0]["usage"]["completion_tokens"] == 1
PY
	assert_equal "$(stats chat_requests)" 2
}

@test "infer sends model, messages and only the options given" {
	printf '%s\n' '{"id":"a","input":"hi"}' > in.jsonl
	infer in.jsonl > /dev/null
	infer --system 'Be brief.' --temperature 0.7 --top-p 0.9 --max-tokens 50 --seed 42 \
		--stop END --stop '###' in.jsonl > /dev/null
	infer --max-completion-tokens 9 --temperature 0 in.jsonl > /dev/null
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" > stats.json
	run -0 python3 - <<'PY'
import json
b = json.load(open("stats.json"))["chat_bodies"]
assert b[0] == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}, b[0]
assert b[1] == {"model": "gpt-test",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                "temperature": 0.7, "top_p": 0.9, "max_tokens": 50, "seed": 42,
                "stop": ["END", "###"]}, b[1]
assert b[2] == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}],
                "max_completion_tokens": 9, "temperature": 0}, b[2]
PY
}

@test "infer passes messages records on, keeps their order, and replaces fields it adds" {
	printf '%s\n' \
		'{"id":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"second","name":"bob","extra":1}]}' \
		'{"id":"old","input":"again","output":"stale","error":"old failure","usage":{},"x":true}' > in.jsonl
	run -0 infer --system 'Be brief.' in.jsonl
	echo "$output" > out.jsonl
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" > stats.json
	run -0 python3 - <<'PY'
import json
out = [json.loads(l) for l in open("out.jsonl")]
# two requests in flight: the server saw them in either order
b = [x for x in json.load(open("stats.json"))["chat_bodies"] if len(x["messages"]) > 2]
assert len(b) == 1 and b[0]["messages"] == [
    {"role": "system", "content": "sys"}, {"role": "user", "content": "first"},
    {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second", "name": "bob"}], b
assert out[0]["output"] == "second", out[0]
# --system goes before an "input", never into a record's own messages
a = [x for x in json.load(open("stats.json"))["chat_bodies"] if x["messages"][-1]["content"] == "again"]
assert a[0]["messages"] == [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "again"}], a
assert out[1] == {"id": "old", "input": "again", "x": True, "output": "again", "model": "gpt-test",
                  "latency_ms": out[1]["latency_ms"], "usage": out[1]["usage"],
                  "finish_reason": "stop"}, out[1]
PY
	[ "$(grep -o '"output"' out.jsonl | wc -l)" -eq 2 ]
}

@test "infer: --max-tokens and --stop act on the answer; null content and refusals" {
	rules '{"rules":{"long":"one two three four five six","refuse":{"content":null,"refusal":"I cannot help with that."}}}'
	printf '%s\n' '{"id":"a","input":"long"}' > a.jsonl
	run -0 infer --max-tokens 3 a.jsonl
	[[ "$output" == *'"output":"one two three",'*'"finish_reason":"length"}' ]]
	run -0 infer --stop four a.jsonl
	[[ "$output" == *'"output":"one two three ",'*'"finish_reason":"stop"}' ]]
	printf '%s\n' '{"id":"r","input":"refuse"}' > r.jsonl
	run -0 infer r.jsonl
	[[ "$output" == '{"id":"r","input":"refuse","output":"","model":"gpt-test",'*'"refusal":"I cannot help with that."}' ]]
}

@test "infer: a reply printed over several lines still gives one record a line" {
	fault '{"pretty":true}'
	questions 3 > in.jsonl
	run -0 infer in.jsonl
	assert_equal "${#lines[@]}" 3
	[[ "${lines[0]}" == *'"usage":{"prompt_tokens":6,"completion_tokens":3,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'* ]]
}

@test "infer --template fills fields from the record, nested ones too" {
	printf 'Context: {{context}}\nQuestion: {{ question }} ({{meta.lang}}, {{n}})\n' > prompt.txt
	printf '%s\n' '{"id":"a","context":"Paris is in France.","question":"Where is Paris?","meta":{"lang":"en"},"n":3}' > in.jsonl
	run -0 infer --template prompt.txt --system 'One word.' in.jsonl
	[[ "$output" == *'"output":"Context: Paris is in France.\nQuestion: Where is Paris? (en, 3)",'* ]]
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" > stats.json
	run -0 python3 -c '
import json
b = json.load(open("stats.json"))["chat_bodies"][0]
assert b["messages"] == [{"role": "system", "content": "One word."},
                         {"role": "user", "content": "Context: Paris is in France.\nQuestion: Where is Paris? (en, 3)"}], b'
}

@test "infer --template: a missing field is bad input at its line; a broken template a usage error" {
	printf 'Q: {{question}} C: {{context}}\n' > prompt.txt
	printf '%s\n' '{"id":"a","question":"q1","context":"c1"}' '{"id":"b","question":"q2"}' \
		'{"id":"c","question":"q3","context":"c3"}' > in.jsonl
	run -65 --separate-stderr infer --template prompt.txt in.jsonl
	assert_equal "$stderr" 'infer: in.jsonl:2: template field "context" is not in the record'
	assert_equal "${#lines[@]}" 1
	[[ "${lines[0]}" == '{"id":"a",'*'"output":"Q: q1 C: c1"'* ]]
	run -65 --separate-stderr infer --template prompt.txt --keep-going in.jsonl
	assert_equal "${#lines[@]}" 2
	[[ "${lines[1]}" == '{"id":"c",'* ]]
	run -0 --separate-stderr infer --template prompt.txt --rejects rej.jsonl in.jsonl
	assert_equal "$(cat rej.jsonl)" '{"id":"b","question":"q2"}'
	printf 'line one\nQ: {{question\n' > broken.txt
	run -2 --separate-stderr infer --template broken.txt in.jsonl
	assert_equal "${stderr%%$'\n'*}" "infer: template 'broken.txt': line 2, column 4: unclosed '{{'"
}

@test "infer: bad input stops at file:line after writing what came before" {
	printf '%s\n' '{"id":"a","input":"one"}' '{"id":"b","input":"two"' > in.jsonl
	run -65 --separate-stderr infer in.jsonl
	assert_equal "$stderr" "infer: in.jsonl:2: invalid JSON: unexpected end of input (column 24)"
	assert_equal "${#lines[@]}" 1
	[[ "${lines[0]}" == '{"id":"a","input":"one","output":"one",'* ]]
	printf '%s\n' '{"id":"a","input":42}' > n.jsonl
	run -65 --separate-stderr infer n.jsonl
	assert_equal "$stderr" 'infer: n.jsonl:1: "input" is not a string'
	printf '%s\n' '{"id":"a","text":"no input"}' > t.jsonl
	run -65 --separate-stderr infer t.jsonl
	assert_equal "$stderr" 'infer: t.jsonl:1: the record has neither "input" nor "messages"'
	printf '%s\n' '{"id":"a","messages":[]}' '{"id":"b","messages":[{"role":"user"}]}' \
		'{"id":"c","messages":[{"content":"x"}]}' '{"id":"d","messages":"hi"}' > m.jsonl
	run -65 --separate-stderr infer --keep-going m.jsonl
	assert_equal "${#lines[@]}" 0
	assert_equal "$stderr" 'infer: m.jsonl:1: "messages" is not a non-empty array
infer: m.jsonl:2: "messages" [0] has no "content" string or array
infer: m.jsonl:3: "messages" [0] has no "role" string
infer: m.jsonl:4: "messages" is not a non-empty array
infer: 4 bad input lines skipped'
	# only the good record before the first bad line was sent
	assert_equal "$(stats chat_requests)" 1
}

@test "infer: output order is input order under random latencies" {
	fault '{"latency_random_ms":[0,120]}'
	questions 60 > in.jsonl
	run -0 infer --concurrency 8 in.jsonl
	echo "$output" > out.jsonl
	run -0 python3 - <<'PY'
import json
inp = [json.loads(l) for l in open("in.jsonl")]
out = [json.loads(l) for l in open("out.jsonl")]
assert len(out) == 60
for a, b in zip(inp, out):
    assert b["id"] == a["id"] and b["meta"] == a["meta"], (a, b)
    assert b["output"] == a["input"], (a, b)   # the echo: each answer is its own question's
lat = [r["latency_ms"] for r in out]
assert max(lat) > min(lat) + 30, lat           # the latencies really did vary
PY
	[ "$(stats in_flight_max)" -ge 6 ]
}

@test "infer --concurrency N keeps exactly N requests in flight" {
	fault '{"latency_ms":300}'
	questions 18 > in.jsonl
	start=$(date +%s.%N)
	run -0 infer --concurrency 6 in.jsonl
	end=$(date +%s.%N)
	assert_equal "${#lines[@]}" 18
	assert_equal "$(stats in_flight_max)" 6
	# three rounds of 300 ms, not eighteen
	awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 0.85 && b - a < 3.0) }'
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	fault '{"latency_ms":50}'
	PLUMB_INFER_CONCURRENCY=1 run -0 infer in.jsonl
	assert_equal "$(stats in_flight_max)" 1
}

@test "infer --rps caps requests started per second, measured at the server" {
	questions 25 > in.jsonl
	run -0 infer --rps 20 --concurrency 8 in.jsonl
	assert_equal "${#lines[@]}" 25
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" > stats.json
	# 25 starts at 20/s take 1.2 s at least; in any 0.5 s at most 10 (+1 at
	# the window's edge). Without the cap all 25 start within a few ms.
	run -0 python3 - <<'PY'
import json
t = sorted(json.load(open("stats.json"))["chat_times"])
assert len(t) == 25, t
span = t[-1] - t[0]
assert span >= 1.1, span
most = max(sum(1 for u in t if s <= u < s + 0.5) for s in t)
assert most <= 11, most
PY
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	questions 5 > five.jsonl
	start=$(date +%s.%N)
	PLUMB_INFER_RPS=4 run -0 infer five.jsonl
	end=$(date +%s.%N)
	# starts at 0, 0.25, 0.5, 0.75 and 1 s
	awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 0.99) }'
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" > stats.json
	run -0 python3 -c '
import json
t = sorted(json.load(open("stats.json"))["chat_times"])
assert len(t) == 5 and t[-1] - t[0] >= 0.95, t
assert max(sum(1 for u in t if s <= u < s + 0.5) for s in t) <= 3, t'
}

@test "infer retries 429 honouring Retry-After, 503 and dropped connections" {
	questions 4 > in.jsonl
	fault '{"status":429,"retry_after":1,"count":1}'
	fault '{"status":503,"count":1}'
	fault '{"drop":true,"count":1}'
	start=$(date +%s.%N)
	run -0 --separate-stderr infer --concurrency 1 in.jsonl
	end=$(date +%s.%N)
	assert_equal "${#lines[@]}" 4
	assert_equal "$stderr" ""
	assert_equal "$(stats chat_requests)" 7
	assert_equal "$(stats chat_answers)" 4
	[ "$(grep -c '"error"' <<< "$output")" -eq 0 ]
	awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 1.0) }'
	# the wait for Retry-After counts in that record's latency
	[ "$(head -1 <<< "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"])')" -ge 1000 ]
}

@test "infer: a request that fails for good keeps its record with error; --fail-on-error" {
	rules '{"rules":{"question number 1":{"status":500},"question number 3":{"status":429,"retry_after":0}}}'
	questions 5 > in.jsonl
	run -0 --separate-stderr infer --retries 2 in.jsonl
	assert_equal "${#lines[@]}" 5
	assert_equal "$stderr" 'infer: 2 of 5 requests failed; their records have "error"'
	[[ "${lines[1]}" == '{"id":"q1","input":"question number 1","meta":{"i":1},"error":"500: injected fault for this message (after 2 tries)","model":"gpt-test","latency_ms":'*'}' ]]
	[[ "${lines[3]}" == *'"error":"429: injected fault for this message (after 2 tries)"'* ]]
	[[ "${lines[1]}" != *'"output"'* ]]
	[[ "${lines[2]}" == *'"output":"question number 2"'* ]]
	# the first failure decides the status: 500 is unavailable, 429 temporary
	run -69 --separate-stderr infer --retries 2 --fail-on-error in.jsonl
	assert_equal "${#lines[@]}" 5
	sed -n 4p in.jsonl > only429.jsonl
	run -75 --separate-stderr infer --retries 2 --fail-on-error only429.jsonl
	assert_equal "${#lines[@]}" 1
	run -0 --separate-stderr infer --retries 2 --quiet in.jsonl
	assert_equal "$stderr" ""
}

@test "infer: a request the server rejects is an error record; 65 with --fail-on-error" {
	printf '%s\n' '{"id":"a","input":"fine"}' \
		'{"id":"b","messages":[{"role":"wizard","content":"abracadabra"}]}' > in.jsonl
	run -0 --separate-stderr infer in.jsonl
	[[ "${lines[1]}" == *"\"error\":\"400: Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.\""* ]]
	assert_equal "$(stats chat_requests)" 2	# a 400 is not retried
	run -65 --separate-stderr infer --fail-on-error in.jsonl
	assert_equal "${#lines[@]}" 2
	assert_equal "$stderr" 'infer: 1 of 2 requests failed; their records have "error"'
}

@test "infer: an unreachable server gives error records, or 69 with --fail-on-error" {
	port=$(free_port)
	questions 2 > in.jsonl
	run -0 --separate-stderr infer --retries 2 --base-url "http://127.0.0.1:$port/v1" in.jsonl
	assert_equal "${#lines[@]}" 2
	[[ "${lines[0]}" == *'"error":"'*'(after 2 tries)","model":"gpt-test"'* ]]
	run -69 infer --retries 1 --fail-on-error --base-url "http://127.0.0.1:$port/v1" in.jsonl
}

@test "infer: a wrong key or model stops with 2, and the key is never printed" {
	questions 3 > in.jsonl
	OPENAI_API_KEY=sk-wrong-secret-value run -2 --separate-stderr infer -v in.jsonl
	[[ "$stderr" == "infer: 'http://127.0.0.1:$OPENAI_PORT/v1/chat/completions': 401: Incorrect API key provided"* ]]
	[[ "$stderr" != *"sk-wrong-secret-value"* ]]
	assert_equal "${#lines[@]}" 0
	run -2 --separate-stderr infer --model no-such-model in.jsonl
	[[ "$stderr" == *"404: The model \`no-such-model\` does not exist"* ]]
	echo sk-test-0123456789 > key
	OPENAI_API_KEY= run -0 infer --api-key-file key in.jsonl
	assert_equal "${#lines[@]}" 3
	OPENAI_API_KEY= run -2 --separate-stderr infer in.jsonl
	[[ "$stderr" == *"401: You didn't provide an API key."* ]]
}

@test "infer --cache DIR: a re-run of an unchanged suite makes no requests" {
	questions 20 > in.jsonl
	infer --cache ccache in.jsonl > 1.jsonl
	assert_equal "$(stats chat_requests)" 20
	infer --cache ccache in.jsonl > 2.jsonl
	assert_equal "$(stats chat_requests)" 20
	# the same records, the same answers and latencies, marked as cached
	run -0 python3 - <<'PY'
import json
a = [json.loads(l) for l in open("1.jsonl")]
b = [json.loads(l) for l in open("2.jsonl")]
assert len(a) == len(b) == 20
for x, y in zip(a, b):
    assert y.pop("cached") is True and "cached" not in x
    assert abs(x.pop("latency_ms") - y.pop("latency_ms")) <= 1
    assert x == y, (x, y)
PY
	# the key holds the model, the options and the messages
	infer --cache ccache --model other-model in.jsonl > /dev/null
	assert_equal "$(stats chat_requests)" 40
	infer --cache ccache --temperature 0.5 in.jsonl > /dev/null
	assert_equal "$(stats chat_requests)" 60
	infer --cache ccache --system 'Be brief.' in.jsonl > /dev/null
	assert_equal "$(stats chat_requests)" 80
	# an input record and its messages twin share an entry
	echo '{"id":"m","messages":[{"role":"user","content":"question number 3"}]}' | infer --cache ccache > m.jsonl
	assert_equal "$(stats chat_requests)" 80
	grep -q '"cached":true' m.jsonl
	touch afile
	run -2 --separate-stderr infer --cache afile/sub in.jsonl
	assert_equal "$stderr" "infer: cache: cannot create directory 'afile/sub': Not a directory"
	assert_equal "${#lines[@]}" 0
}

@test "infer --cache: errors are never cached" {
	rules '{"rules":{"question number 2":{"status":500}}}'
	questions 4 > in.jsonl
	run -0 infer --retries 1 --cache ccache in.jsonl
	assert_equal "$(stats chat_requests)" 4
	rules '{"rules":{}}'
	run -0 --separate-stderr infer --retries 1 --cache ccache in.jsonl
	assert_equal "$(stats chat_requests)" 5
	assert_equal "$stderr" ""
	[[ "${lines[2]}" == *'"output":"question number 2"'* ]]
	[[ "${lines[2]}" != *'"cached"'* ]]
	[[ "${lines[1]}" == *'"cached":true}' ]]
}

@test "infer --cache redis://: shared replies, only new questions sent" {
	questions 10 > in.jsonl
	infer --cache "$REDIS_URL/2" in.jsonl > 1.jsonl
	assert_equal "$(redis-cli -p "$REDIS_PORT" -n 2 dbsize)" 10
	[[ "$(redis-cli -p "$REDIS_PORT" -n 2 --scan | head -1)" == plumb:chat:* ]]
	questions 14 > more.jsonl
	PLUMB_INFER_CACHE="$REDIS_URL/2" infer more.jsonl > 2.jsonl
	assert_equal "$(stats chat_requests)" 14
	assert_equal "$(grep -c '"cached":true' 2.jsonl)" 10
	PLUMB_INFER_CACHE_TTL=60 infer --cache "$REDIS_URL/4" in.jsonl > /dev/null
	ttl=$(redis-cli -p "$REDIS_PORT" -n 4 ttl "$(redis-cli -p "$REDIS_PORT" -n 4 --scan | head -1)")
	[ "$ttl" -gt 0 ] && [ "$ttl" -le 60 ]
	run -69 --separate-stderr infer --cache "redis://127.0.0.1:$(free_port)" in.jsonl
	[[ "$stderr" == "infer: cache: "* ]]
}

@test "infer writes answers while its input is slow to come" {
	( echo '{"id":"a","input":"first"}'; sleep 2; echo '{"id":"b","input":"second"}' ) |
		infer > out.jsonl &
	pid=$!
	sleep 1
	# the first answer is out before the second record came
	assert_equal "$(lines out.jsonl)" 1
	wait "$pid"
	assert_equal "$(lines out.jsonl)" 2
}

@test "infer on SIGTERM finishes the requests in flight, writes them in order, dies of the signal" {
	fault '{"latency_ms":400}'
	questions 40 > in.jsonl
	infer --concurrency 3 in.jsonl > out.jsonl 2> err.txt &
	pid=$!
	sleep 0.6
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	n=$(lines out.jsonl)
	# the first three answered before the signal, the next three were in flight
	[ "$n" -ge 6 ] && [ "$n" -lt 40 ]
	assert_equal "$(stats chat_requests)" "$n"
	run -0 python3 -c '
import json
out = [json.loads(l) for l in open("out.jsonl")]
assert [r["id"] for r in out] == ["q%d" % i for i in range(len(out))]
assert all(r["output"] == "question number %d" % i for i, r in enumerate(out))'
	# a record waiting for a free slot when the signal came is not sent
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	fault '{"latency_ms":800}'
	infer --concurrency 1 in.jsonl > out2.jsonl 2> err.txt &
	pid=$!
	sleep 0.4
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 130
	assert_equal "$(lines out2.jsonl)" 1
	assert_equal "$(stats chat_requests)" 1
}

@test "the test server rejects chat requests as OpenAI does" {
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"foo":1}'
	assert_output '400 {"error": {"message": "Unrecognized request argument supplied: foo", "type": "invalid_request_error", "param": null, "code": null}}'
	run -0 chat_post '{"messages":[{"role":"user","content":"hi"}]}'
	assert_output --partial '400 {"error": {"message": "you must provide a model parameter"'
	run -0 chat_post '{"model":"gpt-test"}'
	assert_output --partial "\"message\": \"Missing required parameter: 'messages'.\", \"type\": \"invalid_request_error\", \"param\": \"messages\", \"code\": \"missing_required_parameter\""
	run -0 chat_post '{"model":"gpt-test","messages":[]}'
	assert_output --partial '"code": "empty_array"'
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user"}]}'
	assert_output --partial "Missing required parameter: 'messages[0].content'."
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}'
	assert_output --partial "Invalid type for 'temperature': expected a decimal, but got a string instead."
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"temperature":2.5}'
	assert_output --partial "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead."
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"max_tokens":1.5}'
	assert_output --partial "Invalid type for 'max_tokens': expected an integer, but got a decimal instead."
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}'
	assert_output --partial "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead."
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":"hi"}],"seed":"x"}'
	assert_output --partial '"param": "seed", "code": "invalid_type"'
	run -0 chat_post 'not json'
	assert_output --partial '400 {"error": {"message": "We could not parse the JSON body of your request.'
	run -0 chat_post '{"model":"gpt-test","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stop":"x","n":2,"temperature":1}'
	assert_output --regexp '^200 \{"id": "chatcmpl-[0-9a-f]+", "object": "chat.completion", "created": [0-9]+, "model": "gpt-test", "choices": \[\{"index": 0, "message": \{"role": "assistant", "content": "hi", "refusal": null\}, "logprobs": null, "finish_reason": "stop"\}, \{"index": 1,'
}

@test "the examples in infer(1) run" {
	printf '%s\n' '{"id":"q1","context":"Paris is the capital of France.","question":"What is the capital of France?"}' \
		'{"id":"q2","context":"Two and two make four.","question":"What is 2+2?"}' > suite.jsonl
	printf 'Context: {{context}}\nQuestion: {{question}}\n' > prompt.txt
	# the suite's records have no "input": the man page's second example
	# sends them as questions through the template, so give them one
	python3 -c '
import json
rows = [json.loads(l) for l in open("suite.jsonl")]
with open("suite.jsonl", "w") as f:
    for r in rows:
        r["input"] = r["question"]
        f.write(json.dumps(r) + "\n")'
	mkdir -p .plumb
	run_man_examples "$T_ROOT/docs/infer.1" 3 --output
	assert_equal "$(stats chat_requests)" 5
}
