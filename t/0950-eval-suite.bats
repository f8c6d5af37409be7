#!/usr/bin/env bats
# pipelines/eval-suite.yaml end to end, as pipelines/examples/eval.yaml uses
# it: a pinned dataset, inference fanned out against the test model server
# (with injected 429s and 5xx), scoring against the last passing scorecard, a
# push to a real prometheus-pushgateway, the baseline kept only when the run
# passed, and a message to the test webhook.

load test_helper

HOOK=/services/T0000EVAL/B0000EVAL/evalsecret

setup_file() {
	start_openai_server --api-key sk-eval-0123456789 --models gpt-4o-mini
	start_pushgateway
	start_webhook_server "$HOOK"
}

teardown_file() {
	stop_openai_server
	stop_pushgateway
	stop_webhook_server
}

OPENAI=
local_setup() {
	OPENAI="http://127.0.0.1:$OPENAI_PORT"
	curl -sf -X POST "$OPENAI/__reset" > /dev/null
	curl -sf -X POST "http://127.0.0.1:$WEBHOOK_PORT/__reset" > /dev/null
	curl -sf -X PUT "$PUSHGATEWAY_URL/api/v1/admin/wipe" > /dev/null
	export OPENAI_API_KEY=sk-eval-0123456789 NOTIFY_URL="http://127.0.0.1:$WEBHOOK_PORT$HOOK"
	mkdir -p pipelines/examples
	cp "$T_ROOT/pipelines/examples/eval.yaml" "$T_ROOT/pipelines/examples/eval-qa.jsonl" pipelines/examples/
	export PLUMB_PIPELINES=$T_ROOT/pipelines
}

# the answers the model gives: right ones, or wrong ones for questions $1...
answers() {
	python3 - "$@" <<-'PY' | curl -sf -X POST "$OPENAI/__rules" -d @- > /dev/null
	import json, sys
	wrong = set(sys.argv[1:])
	rules = {}
	for line in open("pipelines/examples/eval-qa.jsonl"):
	    r = json.loads(line)
	    rules[r["input"]] = "I do not know" if r["id"] in wrong else r["references"][0]
	print(json.dumps({"rules": rules}))
	PY
}

eval_run() {	# dagrun on the example, against the test servers
	dagrun run pipelines/examples/eval.yaml -p base_url="$OPENAI/v1" \
		-p pushgateway="$PUSHGATEWAY_URL" "$@"
}

metric() {	# the pushed value of gauge $1 for suite qa
	curl -sf "$PUSHGATEWAY_URL/metrics" |
		awk -v m="$1" '$1 ~ "^"m"[{]" && /suite="qa"/ { print $2 }'
}

posts() { curl -sf "http://127.0.0.1:$WEBHOOK_PORT/__posts" | jq -r '.[].message.text'; }

@test "a passing run: every answer scored, the scorecard pushed and kept as the baseline, a message posted" {
	answers
	# the model server refuses some requests on the way: infer retries them
	curl -sf -X POST "$OPENAI/__faults" -d '{"status":429,"retry_after":0,"count":2}' > /dev/null
	run -0 --separate-stderr eval_run --run-id r1
	run -0 jq -r '.scorecard | [.n, .metrics.exact_match.value, .passed] | @tsv' .plumb/eval/baseline.json
	assert_output "10	1	true"
	assert_equal "$(metric plumb_eval_exact_match)" 1
	assert_equal "$(metric plumb_eval_passed)" 1
	[ -n "$(metric plumb_eval_last_success_timestamp_seconds)" ]
	run -0 posts
	assert_output "qa on gpt-4o-mini: passed true, 10 items, run r1"
	# every record was answered, with the retried ones among them
	run -0 curl -sf "$OPENAI/__stats"
	[ "$(jq .chat_answers <<< "$output")" -eq 10 ]
	[ "$(jq .chat_requests <<< "$output")" -eq 12 ]
	# fanned out: ten records in batches of four
	run -0 jq -s '[.[] | select(.task == "infer" and .event == "task_finished" and .child == null)][0] | [.children, .succeeded]' \
		-c .plumb/runs/r1/journal.jsonl
	assert_output "[3,3]"
}

@test "a regression fails the run: pushed and announced, but the baseline stays" {
	answers
	run -0 eval_run --run-id r1 --quiet
	cp .plumb/eval/baseline.json first.json
	answers q1 q2 q3 q4
	run -1 --separate-stderr eval_run --run-id r2
	[[ "$stderr" == *"dagrun: score: Failed (exit 1)"* ]]
	[[ "$stderr" == *"dagrun: promote: Skipped"* ]]
	cmp first.json .plumb/eval/baseline.json
	run -0 jq -r '.scorecard | [.metrics.exact_match.value, .passed, (.regressions | map(.metric) | join(","))] | @tsv' \
		.plumb/runs/r2/tasks/score.out
	assert_output "0.6	false	exact_match,f1"
	assert_equal "$(metric plumb_eval_exact_match)" 0.6
	assert_equal "$(metric plumb_eval_passed)" 0
	run -0 posts
	assert_line "qa on gpt-4o-mini: passed false, 10 items, run r2"
}

@test "a gate fails the first run, when there is no baseline yet" {
	answers q1 q2 q3
	run -1 eval_run --run-id r1 --quiet
	[ ! -e .plumb/eval/baseline.json ]
	run -0 jq -r '.scorecard.gates[0] | [.gate, .passed] | @tsv' .plumb/runs/r1/tasks/score.out
	assert_output "exact_match>=0.8	false"
}

@test "a dataset that is not the pinned one fails the run before any request" {
	answers
	echo '{"id":"q11","input":"extra","references":["x"]}' >> pipelines/examples/eval-qa.jsonl
	run -1 --separate-stderr eval_run --run-id r1
	[[ "$stderr" == *"dagrun: load: Failed (exit 65)"* ]]
	run -0 cat .plumb/runs/r1/tasks/load.log
	assert_output --regexp "^eval-suite: pipelines/examples/eval-qa.jsonl: sha256 [0-9a-f]{64}, pinned [0-9a-f]{64}$"
	assert_equal "$(curl -sf "$OPENAI/__stats" | jq .chat_requests)" 0
	assert_equal "$(metric plumb_eval_passed)" ""
}

@test "parallelism caps the requests in flight at the model server" {
	answers
	curl -sf -X POST "$OPENAI/__faults" -d '{"latency_ms":50}' > /dev/null
	run -0 eval_run --run-id r1 --quiet -p parallelism=2 -p concurrency=1
	assert_equal "$(curl -sf "$OPENAI/__stats" | jq .in_flight_max)" 2
}

@test "the shipped eval pipeline and its example lint" {
	run -0 dagrun lint pipelines/examples/eval.yaml
	run -2 --separate-stderr dagrun lint "$T_ROOT/pipelines/eval-suite.yaml"
	[[ "$stderr" == *"param 'dataset' is required"* ]]
}
