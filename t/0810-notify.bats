#!/usr/bin/env bats
# notify against t/webhook-server.py (Slack's incoming webhooks): templates
# filled from the last record or each, --raw bodies, retries and refusals,
# the webhook from the environment, its secret path never printed.

load test_helper

HOOK=/services/T0000TEST/B0000TEST/secretsecretsecret

setup_file() {
	start_webhook_server "$HOOK"
}

teardown_file() {
	stop_webhook_server
}

local_setup() {
	export NOTIFY_URL="http://127.0.0.1:$WEBHOOK_PORT$HOOK"
	curl -sf -X POST "http://127.0.0.1:$WEBHOOK_PORT/__reset" > /dev/null
}

fault() { curl -sf -X POST "http://127.0.0.1:$WEBHOOK_PORT/__faults" -d "$1" > /dev/null; }

stats() {	# stats FIELD: a counter of the test server
	curl -sf "http://127.0.0.1:$WEBHOOK_PORT/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# texts: the "text" of every message the webhook accepted, one per line.
texts() {
	curl -sf "http://127.0.0.1:$WEBHOOK_PORT/__posts" | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["message"].get("text"))'
}

# post N: the raw body of the Nth accepted message (from 0).
post() {
	curl -sf "http://127.0.0.1:$WEBHOOK_PORT/__posts" | python3 -c '
import json, sys
print(json.load(sys.stdin)[int(sys.argv[1])]["body"])' "$1"
}

scorecard() {
	cat <<-'EOF'
	{"id":"q1","scores":{"exact_match":1}}
	{"scorecard":{"suite":"squad","model":"gpt-x","n":200,"metrics":{"exact_match":{"value":0.8125,"ci95":[0.75,0.86]}},"regressions":[],"passed":true}}
	EOF
}

@test "notify --help and usage errors" {
	run -0 notify --help
	assert_output --partial "usage: notify [--url URL | --url-env NAME] (--text TEMPLATE | --text-file FILE |"
	run -0 notify --version
	run -2 --separate-stderr notify
	assert_equal "${stderr%%$'\n'*}" "notify: no message: give --text, --text-file, --raw or --raw-file"
	run -2 --separate-stderr notify --text a --raw '{}'
	assert_equal "${stderr%%$'\n'*}" "notify: give one of --text, --text-file, --raw and --raw-file"
	NOTIFY_URL= run -2 --separate-stderr notify --text hi
	assert_equal "${stderr%%$'\n'*}" "notify: no webhook: give --url, --url-env NAME or set NOTIFY_URL"
	run -2 --separate-stderr notify --url ftp://host/secret/path --text hi
	assert_equal "${stderr%%$'\n'*}" "notify: the webhook 'ftp://host/...' is not an http(s) URL"
	run -2 --separate-stderr notify --url-env NO_SUCH_VARIABLE --text hi
	assert_equal "${stderr%%$'\n'*}" "notify: --url-env: the environment variable 'NO_SUCH_VARIABLE' is not set"
	run -2 --separate-stderr notify --url "$NOTIFY_URL" --url-env NOTIFY_URL --text hi
	run -2 --separate-stderr notify --text 'accuracy {{scorecard.metrics.acc'
	assert_equal "${stderr%%$'\n'*}" "notify: --text: column 10: unclosed '{{'"
	run -2 --separate-stderr notify --text 'a {{x..y}}'
	assert_equal "${stderr%%$'\n'*}" "notify: --text: column 3: empty member in path 'x..y'"
	run -2 --separate-stderr notify --text 'a {{x|%d}}'
	assert_equal "${stderr%%$'\n'*}" "notify: --text: column 3: '%d' is not a number format such as %.3f"
	run -2 --separate-stderr notify --text 'a {{x|%.3f%s}}'
	run -2 --separate-stderr notify --raw '{"text": {{x}}'
	[[ "${stderr%%$'\n'*}" == "notify: --raw: the template does not give JSON: "* ]]
	run -2 --separate-stderr notify --raw-file missing.json
	assert_equal "${stderr%%$'\n'*}" "notify: cannot open template 'missing.json': No such file or directory"
	run -2 --separate-stderr notify --text hi --retries 0
	# nothing was posted, nothing read
	assert_equal "$(stats requests)" 0
}

@test "notify: one Slack message from the last record, placeholders filled by path" {
	scorecard > scores.jsonl
	run -0 --separate-stderr notify --text 'exact match {{scorecard.metrics.exact_match.value}} on {{scorecard.suite}} (n={{scorecard.n}}, CI {{scorecard.metrics.exact_match.ci95}}, passed {{scorecard.passed}})' scores.jsonl
	assert_equal "$output" ""
	assert_equal "$stderr" ""
	assert_equal "$(stats accepted)" 1
	assert_equal "$(texts)" "exact match 0.8125 on squad (n=200, CI [0.75,0.86], passed true)"
	assert_equal "$(post 0)" '{"text":"exact match 0.8125 on squad (n=200, CI [0.75,0.86], passed true)"}'
	curl -sf "http://127.0.0.1:$WEBHOOK_PORT/__posts" | grep -q '"content_type": "application/json"'
}

@test "notify: number formats, quotes and newlines in values, array elements, the whole record" {
	printf '%s\n' '{"v":0.81234,"big":1234.5,"s":"say \"hi\"\nbye","l":["a","b"],"o":{"k":null}}' > in.jsonl
	notify --text '{{v|%.2f}} {{big|%08.1f}} {{v|%.1e}} {{l.1}} {{o}} {{o.k}}' in.jsonl
	notify --text '{{s}}' in.jsonl
	notify --text 'all: {{.}}' in.jsonl
	assert_equal "$(post 0)" '{"text":"0.81 001234.5 8.1e-01 b {\"k\":null} null"}'
	assert_equal "$(post 1)" '{"text":"say \"hi\"\nbye"}'
	assert_equal "$(post 2)" '{"text":"all: {\"v\":0.81234,\"big\":1234.5,\"s\":\"say \\\"hi\\\"\\nbye\",\"l\":[\"a\",\"b\"],\"o\":{\"k\":null}}"}'
}

@test "notify --each: one message per record, in order" {
	printf '%s\n' '{"id":"a","n":1}' '{"id":"b","n":2}' '{"id":"c","n":3}' > in.jsonl
	run -0 notify --each --text '{{id}}={{n}}' in.jsonl
	assert_equal "$(texts | tr '\n' ' ')" "a=1 b=2 c=3 "
	# a text without placeholders: once, after reading all input
	notify --text 'suite done' in.jsonl
	notify --text 'suite done' < /dev/null
	assert_equal "$(stats accepted)" 5
	# --each over no input posts nothing
	run -0 notify --each --text 'x' < /dev/null
	assert_equal "$(stats accepted)" 5
}

@test "notify: a path the record lacks is file:line and 65; --keep-going goes on" {
	scorecard > scores.jsonl
	run -65 --separate-stderr notify --text 'accuracy {{scorecard.metrics.accuracy.value}}' scores.jsonl
	assert_equal "$stderr" 'notify: scores.jsonl:2: {{scorecard.metrics.accuracy.value}}: no member "accuracy" in "scorecard.metrics"'
	run -65 --separate-stderr notify --text '{{scorecard.suite|%.2f}}' scores.jsonl
	assert_equal "$stderr" 'notify: scores.jsonl:2: {{scorecard.suite|%.2f}}: not a number'
	assert_equal "$(stats requests)" 0
	printf '%s\n' '{"id":"a"}' '{"x":1}' 'not json' '{"id":"d"}' > in.jsonl
	run -65 --separate-stderr notify --each --keep-going --text 'id {{id}}' in.jsonl
	assert_equal "$stderr" 'notify: in.jsonl:2: {{id}}: no member "id"
notify: in.jsonl:3: invalid JSON: expected a JSON object (column 1)
notify: 2 bad input lines skipped'
	assert_equal "$(texts | tr '\n' ' ')" "id a id d "
	run -0 notify --each --rejects rej.jsonl --text 'id {{id}}' in.jsonl
	assert_equal "$(cat rej.jsonl)" '{"x":1}
not json'
	# a template with placeholders needs a record
	run -65 --separate-stderr notify --text '{{id}}' < /dev/null
	assert_equal "$stderr" "notify: no input record to fill the template from"
	# bad JSON stops at its line
	printf '%s\n' '{"id":"a"}' '{"id":' > bad.jsonl
	run -65 --separate-stderr notify --text '{{id}}' bad.jsonl
	assert_equal "$stderr" "notify: bad.jsonl:2: invalid JSON: unexpected end of input (column 7)"
}

@test "notify --raw: a JSON body, values escaped inside strings and JSON outside" {
	scorecard > scores.jsonl
	notify --raw '{"text":"{{scorecard.suite}}: \"{{scorecard.metrics.exact_match.value|%.3f}}\"","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*{{scorecard.model}}*"}}],"metrics":{{scorecard.metrics}},"suite":{{scorecard.suite}},"n":{{scorecard.n}}}' scores.jsonl
	assert_equal "$(post 0)" '{"text":"squad: \"0.812\"","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*gpt-x*"}}],"metrics":{"exact_match":{"value":0.8125,"ci95":[0.75,0.86]}},"suite":"squad","n":200}'
	# a value with quotes stays inside its string
	echo '{"m":"a \"quoted\" \\ value"}' > q.jsonl
	notify --raw '{"text":"m={{m}}"}' q.jsonl
	assert_equal "$(texts | tail -1)" 'm=a "quoted" \ value'
	# the template from a file, its last newline dropped
	printf '{\n  "text": "from a file: {{scorecard.n}}"\n}\n' > body.json
	notify --raw-file body.json scores.jsonl
	assert_equal "$(texts | tail -1)" "from a file: 200"
	printf 'n is {{scorecard.n}}\n' > text.txt
	notify --text-file text.txt scores.jsonl
	assert_equal "$(post 3)" '{"text":"n is 200"}'
}

@test "notify --raw: a body that is not JSON for this record is bad input, and so is one Slack refuses" {
	echo '{"v":{"a":1}}' > in.jsonl
	# {{v}} as a key gives an object where a string must be
	run -65 --separate-stderr notify --raw '{ {{v}}: 1, "text": "x"}' in.jsonl
	[[ "$stderr" == "notify: in.jsonl:1: --raw gave invalid JSON: "* ]]
	# Slack refuses a message with nothing to show: 400 invalid_payload
	run -65 --separate-stderr notify --raw '{"attachment":{{v}}}' in.jsonl
	assert_equal "$stderr" "notify: in.jsonl:1: the webhook refused the message: 400: invalid_payload"
	assert_equal "$(stats refused)" 1
	assert_equal "$(stats accepted)" 0
}

@test "notify retries 429 honouring Retry-After, 500 and dropped connections" {
	echo '{"id":"a"}' > in.jsonl
	# the drop first, on a fresh connection: curl reconnects by itself when a
	# kept-alive one drops, which would hide it from notify's retries
	fault '{"drop":true,"count":1}'
	fault '{"status":429,"retry_after":1,"count":1}'
	fault '{"status":500,"count":1}'
	start=$(date +%s.%N)
	run -0 --separate-stderr notify -v --text 'hello {{id}}' in.jsonl
	end=$(date +%s.%N)
	assert_equal "$(stats requests)" 4
	assert_equal "$(texts)" "hello a"
	awk -v a="$start" -v b="$end" 'BEGIN { exit !(b - a >= 1.0) }'
	assert_equal "$stderr" "notify: posted to 'http://127.0.0.1:$WEBHOOK_PORT/...': 200 (4 tries)
notify: 1 message posted"
}

@test "notify: retries exhausted are 75 for 429 and 69 for server errors; refusals are configuration" {
	echo '{"id":"a"}' > in.jsonl
	fault '{"status":429,"retry_after":0,"count":3}'
	run -75 --separate-stderr notify --retries 3 --text x in.jsonl
	assert_equal "$stderr" "notify: 'http://127.0.0.1:$WEBHOOK_PORT/...': 429: rate_limited"
	fault '{"status":500,"count":2}'
	run -69 --separate-stderr notify --retries 2 --text x in.jsonl
	assert_equal "$stderr" "notify: 'http://127.0.0.1:$WEBHOOK_PORT/...': 500: rollup_error"
	port=$(free_port)
	run -69 --separate-stderr notify --retries 2 --url "http://127.0.0.1:$port$HOOK" --text x in.jsonl
	[[ "$stderr" == "notify: 'http://127.0.0.1:$port/...': "*"(after 2 tries)" ]]
	fault '{"status":410,"count":1}'
	run -2 --separate-stderr notify --text x in.jsonl
	assert_equal "$stderr" "notify: 'http://127.0.0.1:$WEBHOOK_PORT/...': 410: channel_is_archived"
	assert_equal "$(stats accepted)" 0
}

@test "notify: the webhook's secret path never shows, not even with -v" {
	echo '{"id":"a"}' > in.jsonl
	run -2 --separate-stderr notify -v --url "http://user:pw@127.0.0.1:$WEBHOOK_PORT/services/T0000TEST/B0000TEST/wrongsecret" --text x in.jsonl
	assert_equal "$stderr" "notify: 'http://127.0.0.1:$WEBHOOK_PORT/...': 404: no_service"
	[[ "$stderr" != *wrongsecret* && "$stderr" != *pw* ]]
	run -0 --separate-stderr notify -v --text x in.jsonl
	[[ "$stderr" != *secretsecret* ]]
	[[ "$stderr" == *"posted to 'http://127.0.0.1:$WEBHOOK_PORT/...'"* ]]
}

@test "notify: the webhook from NOTIFY_URL, --url-env or --url" {
	echo '{"id":"a"}' > in.jsonl
	run -0 notify --text 'from NOTIFY_URL' in.jsonl
	SLACK_HOOK=$NOTIFY_URL NOTIFY_URL="http://127.0.0.1:$WEBHOOK_PORT/services/other/hook/x" \
		run -0 notify --url-env SLACK_HOOK --text 'from --url-env' in.jsonl
	NOTIFY_URL= run -0 notify --url "http://127.0.0.1:$WEBHOOK_PORT$HOOK" --text 'from --url' in.jsonl
	assert_equal "$(texts | tr '\n' '|')" "from NOTIFY_URL|from --url-env|from --url|"
}

@test "notify --dry-run writes the bodies and posts nothing" {
	printf '%s\n' '{"id":"a"}' '{"id":"b"}' > in.jsonl
	NOTIFY_URL= run -0 notify --dry-run --each --text 'id {{id}}' in.jsonl
	assert_equal "$output" '{"text":"id a"}
{"text":"id b"}'
	run -0 notify --dry-run --raw $'{\n "text": "{{id}}"\n}' in.jsonl
	assert_equal "$output" '{  "text": "b" }'
	assert_equal "$(stats requests)" 0
}

@test "the examples in notify(1) run" {
	scorecard > scores.jsonl
	run_man_examples "$T_ROOT/docs/notify.1" 4
	[ "$(stats accepted)" -ge 3 ]
	texts | grep -qxF "squad: exact match 0.812 (gpt-x)"
}
