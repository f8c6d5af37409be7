#!/usr/bin/env bats
# push-prom against a real prometheus-pushgateway started for this file: the
# gauges and their labels read back from /metrics and /api/v1/metrics, PUT
# replacing a group, "/" and empty label values, the last-success time,
# retries and an unreachable Pushgateway, bad scorecards.

load test_helper

setup_file() {
	start_pushgateway
}

teardown_file() {
	stop_pushgateway
}

teardown() {
	# a Pushgateway a test started itself
	if [ -f "$BATS_TEST_TMPDIR/late.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/late.pid")" 2>/dev/null || true
	fi
}

local_setup() {
	curl -sf -X PUT "$PUSHGATEWAY_URL/api/v1/admin/wipe" > /dev/null
	# wiping is queued: wait until no group is left
	for _ in $(seq 100); do
		[ "$(groups_json)" = "[]" ] && break
		sleep 0.05
	done
	unset PUSHGATEWAY_JOB PLUMB_EVAL_SUITE PLUMB_EVAL_MODEL
}

# The grouping keys on the Pushgateway, as a sorted JSON list.
groups_json() {
	curl -sf "$PUSHGATEWAY_URL/api/v1/metrics" | python3 -c '
import json, sys
print(json.dumps(sorted([g["labels"] for g in json.load(sys.stdin)["data"]], key=json.dumps), sort_keys=True))'
}

# gauge NAME [LABEL=VALUE ...]: the values of NAME on the Pushgateway whose
# labels include every LABEL=VALUE given, one per line.
gauge() {
	curl -sf "$PUSHGATEWAY_URL/api/v1/metrics" | python3 -c '
import json, sys
name, want = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
for g in json.load(sys.stdin)["data"]:
    for m in g.get(name, {}).get("metrics", []):
        if all(m["labels"].get(k) == v for k, v in want.items()):
            print(m["value"])' "$@"
}

# The scrape text of /metrics, only plumb's lines.
scrape() {
	curl -sf "$PUSHGATEWAY_URL/metrics" | grep 'plumb_eval_' || true
}

scorecard() {	# a scorecard as evalscore writes it, after two per-item lines (--items)
	cat <<-'EOF'
	{"id":"q1","scores":{"exact_match":1}}
	{"id":"q2","scores":{"exact_match":0}}
	{"scorecard":{"suite":"squad","model":"gpt-x","n":200,"errors":0,"rejected":0,"signature":"evalscore|bootstrap:1000|seed:12345|ci:percentile|version:test","metrics":{"exact_match":{"value":0.81,"ci95":[0.75,0.86],"n":200,"better":"higher","signature":"squad-v1.1"},"f1":{"value":0.875,"ci95":[0.8,0.9],"n":200,"better":"higher","signature":"squad-v1.1"}},"regressions":[],"gates":[{"gate":"exact_match>=0.8","metric":"exact_match","value":0.81,"passed":true}],"passed":true}}
	EOF
}

@test "push-prom --help and usage errors" {
	run -0 push-prom --help
	assert_output --partial "usage: push-prom [--url URL] [--job NAME] [--label NAME=VALUE]..."
	run -0 push-prom --version
	PUSHGATEWAY_URL= run -2 --separate-stderr push-prom
	assert_equal "${stderr%%$'\n'*}" "push-prom: no Pushgateway: give --url or set PUSHGATEWAY_URL"
	run -2 --separate-stderr push-prom --url ftp://x
	assert_equal "${stderr%%$'\n'*}" "push-prom: --url 'ftp://x' is not an http(s) URL"
	run -2 --separate-stderr push-prom --url "$PUSHGATEWAY_URL/metrics/job/x"
	assert_equal "${stderr%%$'\n'*}" "push-prom: --url is the Pushgateway's root, without /metrics/job/..."
	run -2 --separate-stderr push-prom --label novalue
	[[ "${stderr%%$'\n'*}" == "push-prom: --label 'novalue': want NAME=VALUE,"* ]]
	run -2 --separate-stderr push-prom --label 'bad-name=1'
	run -2 --separate-stderr push-prom --label '__reserved=1'
	run -2 --separate-stderr push-prom --label '9lives=1'
	run -2 --separate-stderr push-prom --label job=x
	assert_equal "${stderr%%$'\n'*}" "push-prom: --label 'job=x': the job is set with --job"
	run -2 --separate-stderr push-prom --label a=1 --label a=2
	assert_equal "${stderr%%$'\n'*}" "push-prom: --label 'a' given twice"
	run -2 --separate-stderr push-prom --group-by suite,colour
	assert_equal "${stderr%%$'\n'*}" "push-prom: --group-by: 'colour' is not suite or model"
	run -2 --separate-stderr push-prom --key colour=x
	run -2 --separate-stderr push-prom --key value=a..b
	assert_equal "${stderr%%$'\n'*}" "push-prom: --key value=a..b: empty member in path 'a..b'"
	run -2 --separate-stderr push-prom --job ''
	run -2 --separate-stderr push-prom --retries 0
	# nothing was pushed by any of these
	assert_equal "$(groups_json)" "[]"
}

@test "push-prom: gauges with suite and model labels, CI bounds, HELP and TYPE, last success" {
	scorecard > scores.jsonl
	t0=$(date +%s)
	run -0 --separate-stderr push-prom --job nightly scores.jsonl
	t1=$(date +%s)
	assert_equal "$output" ""
	scrape > scrape.txt
	grep -qxF '# TYPE plumb_eval_exact_match gauge' scrape.txt
	grep -qxF '# HELP plumb_eval_exact_match evalscore exact_match' scrape.txt
	grep -qxF 'plumb_eval_exact_match{instance="",job="nightly",model="gpt-x",suite="squad"} 0.81' scrape.txt
	grep -qxF 'plumb_eval_exact_match_ci95_low{instance="",job="nightly",model="gpt-x",suite="squad"} 0.75' scrape.txt
	grep -qxF 'plumb_eval_exact_match_ci95_high{instance="",job="nightly",model="gpt-x",suite="squad"} 0.86' scrape.txt
	grep -qxF '# HELP plumb_eval_exact_match_ci95_low evalscore exact_match, 95% bootstrap interval, lower bound' scrape.txt
	grep -qxF 'plumb_eval_f1{instance="",job="nightly",model="gpt-x",suite="squad"} 0.875' scrape.txt
	grep -qxF 'plumb_eval_items{instance="",job="nightly",model="gpt-x",suite="squad"} 200' scrape.txt
	grep -qxF 'plumb_eval_passed{instance="",job="nightly",model="gpt-x",suite="squad"} 1' scrape.txt
	grep -qxF 'plumb_eval_regressions{instance="",job="nightly",model="gpt-x",suite="squad"} 0' scrape.txt
	grep -qxF 'plumb_eval_gates_failed{instance="",job="nightly",model="gpt-x",suite="squad"} 0' scrape.txt
	grep -qxF '# TYPE plumb_eval_last_success_timestamp_seconds gauge' scrape.txt
	# every gauge has its HELP and TYPE
	assert_equal "$(grep -c '^# HELP plumb_eval_' scrape.txt)" 11
	assert_equal "$(grep -c '^# TYPE plumb_eval_.* gauge$' scrape.txt)" 11
	ts=$(gauge plumb_eval_last_success_timestamp_seconds job=nightly suite=squad model=gpt-x)
	awk -v t="$ts" -v a="$t0" -v b="$t1" 'BEGIN { exit !(t + 0 >= a && t + 0 <= b) }'
	# the group is job and suite: a run of another model replaces it
	assert_equal "$(groups_json)" '[{"job": "nightly", "suite": "squad"}]'
}

@test "push-prom: metric names become Prometheus names; null is NaN; a bare number is a value" {
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"chrf++":{"value":55.5},"recall@5":0.9,"rougeL":{"value":0.4},"bleu":{"value":null,"ci95":null},"p-r":{"value":1}}}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	scrape > scrape.txt
	# the names evalscore --format prometheus gives
	grep -qxF 'plumb_eval_chrf_pp{instance="",job="plumb_eval",model="m",suite="s"} 55.5' scrape.txt
	grep -qxF '# HELP plumb_eval_chrf_pp evalscore chrf++' scrape.txt
	grep -qxF 'plumb_eval_recall_at_5{instance="",job="plumb_eval",model="m",suite="s"} 0.9' scrape.txt
	grep -qxF 'plumb_eval_rougeL{instance="",job="plumb_eval",model="m",suite="s"} 0.4' scrape.txt
	grep -qxF 'plumb_eval_p_r{instance="",job="plumb_eval",model="m",suite="s"} 1' scrape.txt
	grep -qxF 'plumb_eval_bleu{instance="",job="plumb_eval",model="m",suite="s"} NaN' scrape.txt
	grep -qxF 'plumb_eval_bleu_ci95_low{instance="",job="plumb_eval",model="m",suite="s"} NaN' scrape.txt
	# no interval given: no bounds
	run -1 grep -q plumb_eval_chrf_pp_ci95 scrape.txt
	# neither regressions nor passed: the run passed; no n: no items gauge
	grep -qxF 'plumb_eval_passed{instance="",job="plumb_eval",model="m",suite="s"} 1' scrape.txt
	run -1 grep -q plumb_eval_items scrape.txt
	run -1 grep -q plumb_eval_regressions scrape.txt
	run -1 grep -q plumb_eval_gates_failed scrape.txt
}

@test "push-prom: a second PUT replaces its group, and only its group" {
	echo '{"scorecard":{"suite":"a","model":"m1","metrics":{"x":{"value":1},"y":{"value":2}}}}' |
		push-prom --url "$PUSHGATEWAY_URL" --job j
	echo '{"scorecard":{"suite":"b","model":"m1","metrics":{"x":{"value":10}}}}' |
		push-prom --url "$PUSHGATEWAY_URL" --job j
	echo '{"scorecard":{"suite":"a","model":"m2","metrics":{"x":{"value":3}}}}' |
		push-prom --url "$PUSHGATEWAY_URL" --job j
	# suite a: y is gone, x is the new run's, with the new model
	assert_equal "$(gauge plumb_eval_x suite=a)" 3
	assert_equal "$(gauge plumb_eval_x suite=a model=m2)" 3
	assert_equal "$(gauge plumb_eval_y)" ""
	# suite b is another group and is untouched
	assert_equal "$(gauge plumb_eval_x suite=b model=m1)" 10
	assert_equal "$(groups_json)" '[{"job": "j", "suite": "a"}, {"job": "j", "suite": "b"}]'
	# --group-by suite,model keeps one group per model
	echo '{"scorecard":{"suite":"a","model":"m3","metrics":{"x":{"value":4}}}}' |
		push-prom --url "$PUSHGATEWAY_URL" --job j --group-by suite,model
	assert_equal "$(gauge plumb_eval_x suite=a model=m3)" 4
	assert_equal "$(gauge plumb_eval_x suite=a model=m2)" 3
}

@test "push-prom: label values with '/', empty or unusual characters survive through @base64" {
	echo '{"scorecard":{"suite":"squad/dev","model":"org/model:v1","metrics":{"em":{"value":0.5}}}}' > sc.jsonl
	push-prom --url "$PUSHGATEWAY_URL/" --job 'nightly/eval' --label path=/var/tmp --label empty= \
		--label 'spaced=a b' --label 'greek=Προμηθεύς' --label dot=. --label plain=x-1.2_3~ -v sc.jsonl 2> err
	assert_equal "$(groups_json)" \
		'[{"dot": ".", "empty": "", "greek": "\u03a0\u03c1\u03bf\u03bc\u03b7\u03b8\u03b5\u03cd\u03c2", "job": "nightly/eval", "path": "/var/tmp", "plain": "x-1.2_3~", "spaced": "a b", "suite": "squad/dev"}]'
	assert_equal "$(gauge plumb_eval_em path=/var/tmp empty= suite=squad/dev model=org/model:v1 job=nightly/eval)" 0.5
	# as the README spells them: the URL-safe alphabet, "=" for an empty value
	grep -qF "/metrics/job@base64/bmlnaHRseS9ldmFs/suite@base64/c3F1YWQvZGV2/path@base64/L3Zhci90bXA=/empty@base64/=/" err
	grep -qF "/greek@base64/zqDPgc6_zrzOt864zrXPjc-C/" err
	grep -qF "/plain/x-1.2_3~" err
	# an empty suite is an empty grouping label, and the group is still found again
	echo '{"scorecard":{"metrics":{"em":{"value":0.25}}}}' | push-prom --url "$PUSHGATEWAY_URL" --job e
	echo '{"scorecard":{"metrics":{"em":{"value":0.75}}}}' | push-prom --url "$PUSHGATEWAY_URL" --job e
	assert_equal "$(gauge plumb_eval_em job=e suite=)" 0.75
}

@test "push-prom: a failed run keeps the last success time; passed and regressions say why" {
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"em":{"value":0.9}},"regressions":[]}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	ts=$(gauge plumb_eval_last_success_timestamp_seconds suite=s)
	[ -n "$ts" ]
	sleep 1.1
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"em":{"value":0.5}},"regressions":[{"metric":"em"}]}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	assert_equal "$(gauge plumb_eval_em suite=s)" 0.5
	assert_equal "$(gauge plumb_eval_passed suite=s)" 0
	assert_equal "$(gauge plumb_eval_regressions suite=s)" 1
	assert_equal "$(gauge plumb_eval_last_success_timestamp_seconds suite=s)" "$ts"
	# without "passed", a failed gate fails the run too
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"em":{"value":0.7}},"regressions":[],"gates":[{"gate":"em>=0.5","passed":true},{"gate":"em>=0.8","passed":false}]}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	assert_equal "$(gauge plumb_eval_passed suite=s)" 0
	assert_equal "$(gauge plumb_eval_gates_failed suite=s)" 1
	assert_equal "$(gauge plumb_eval_last_success_timestamp_seconds suite=s)" "$ts"
	# "passed" wins over the regressions list
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"em":{"value":0.95}},"regressions":[],"passed":false}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	assert_equal "$(gauge plumb_eval_passed suite=s)" 0
	assert_equal "$(gauge plumb_eval_last_success_timestamp_seconds suite=s)" "$ts"
	echo '{"scorecard":{"suite":"s","model":"m","metrics":{"em":{"value":0.95}},"passed":true}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	ts2=$(gauge plumb_eval_last_success_timestamp_seconds suite=s)
	awk -v a="$ts" -v b="$ts2" 'BEGIN { exit !(b + 0 > a + 0) }'
	# a suite that never passed has no last-success time
	echo '{"scorecard":{"suite":"new","model":"m","metrics":{"em":{"value":0.1}},"passed":false}}' |
		push-prom --url "$PUSHGATEWAY_URL"
	assert_equal "$(gauge plumb_eval_passed suite=new)" 0
	assert_equal "$(gauge plumb_eval_last_success_timestamp_seconds suite=new)" ""
}

@test "push-prom: an unreachable Pushgateway is exit 69 after the retries, and no password shows" {
	scorecard > scores.jsonl
	port=$(free_port)
	run -69 --separate-stderr push-prom --url "http://user:s3cret@127.0.0.1:$port" --retries 2 scores.jsonl
	[[ "$stderr" == "push-prom: 'http://127.0.0.1:$port/metrics/job/plumb_eval/suite/squad': Failed to connect to 127.0.0.1 port $port "*" (after 2 tries)" ]]
	[[ "$stderr" != *s3cret* ]]
	# a failed run asks for the last success first; down, that fails the same way
	echo '{"scorecard":{"suite":"s","metrics":{"em":0.1},"passed":false}}' > failed.jsonl
	run -69 --separate-stderr push-prom --url "http://127.0.0.1:$port" --retries 2 failed.jsonl
	[[ "$stderr" == *"(after 2 tries)" ]]
}

@test "push-prom retries until the Pushgateway comes up" {
	scorecard > scores.jsonl
	port=$(free_port)
	( sleep 1.5; exec prometheus-pushgateway --web.listen-address="127.0.0.1:$port" \
		--persistence.file="$BATS_TEST_TMPDIR/late.data" --log.level=error ) > late.log 2>&1 3>&- &
	echo $! > "$BATS_TEST_TMPDIR/late.pid"
	run -0 --separate-stderr push-prom --url "http://127.0.0.1:$port" --retries 8 -v scores.jsonl
	curl -sf "http://127.0.0.1:$port/metrics" > late.txt
	grep -qxF 'plumb_eval_exact_match{instance="",job="plumb_eval",model="gpt-x",suite="squad"} 0.81' late.txt
	tries=$(sed -n 's/.*pushed 11 gauges (\([0-9]*\) tries)$/\1/p' <<< "$stderr")
	[ "$tries" -ge 2 ]
}

@test "push-prom: what the Pushgateway refuses (a type conflict) is exit 65 with its reason" {
	printf '# TYPE plumb_eval_exact_match counter\nplumb_eval_exact_match 5\n' |
		curl -sf -X PUT --data-binary @- "$PUSHGATEWAY_URL/metrics/job/other"
	scorecard > scores.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" scores.jsonl
	[[ "$stderr" == "push-prom: '$PUSHGATEWAY_URL/metrics/job/plumb_eval/suite/squad': 400: "*"plumb_eval_exact_match"* ]]
	assert_equal "$(gauge plumb_eval_f1)" ""
}

@test "push-prom: bad input is file:line and 65, and nothing is pushed" {
	printf '%s\n' '{"id":"q1"}' '{"id":"q2"' '{"scorecard":{"metrics":{"em":0.5}}}' > bad.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" bad.jsonl
	assert_equal "$stderr" "push-prom: bad.jsonl:2: invalid JSON: unexpected end of input (column 11)"
	assert_equal "$(groups_json)" "[]"

	printf '%s\n' '{"scorecard":{"metrics":{"em":0.5}}}' '{"id":"q1","scores":{}}' > notlast.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" notlast.jsonl
	assert_equal "$stderr" 'push-prom: notlast.jsonl:2: not a scorecard: no member "scorecard"'
	echo '{"scorecard":{"n":3}}' > nometrics.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" nometrics.jsonl
	assert_equal "$stderr" 'push-prom: nometrics.jsonl:1: the scorecard has no "metrics"'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{"em":{"value":"high"}}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: metric "em": the value is a string, not a number'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{"em":{"ci95":[0,1]}}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: metric "em" has no "value"'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{"em":{"value":1,"ci95":[0]}}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: metric "em": the confidence interval is not [low, high]'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"suite":7,"metrics":{}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: the scorecard'"'"'s "suite" is a number, not a string'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{},"passed":"yes"}}'
	assert_equal "$stderr" 'push-prom: stdin:1: the scorecard'"'"'s "passed" is a string, not true or false'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{"a.b":1,"a_b":2}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: metrics "a.b" and "a_b" both become the gauge "plumb_eval_a_b"'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" <<< '{"scorecard":{"metrics":{"passed":1}}}'
	assert_equal "$stderr" 'push-prom: stdin:1: metric "passed" becomes the gauge "plumb_eval_passed", which push-prom writes itself'
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" < /dev/null
	assert_equal "$stderr" "push-prom: no input: want a scorecard on the last line"
	assert_equal "$(groups_json)" "[]"
}

@test "push-prom --keep-going and --rejects: a bad line before the scorecard" {
	printf '%s\n' '{"id":"q1"}' 'not json' '{"scorecard":{"suite":"s","metrics":{"em":0.5}}}' > in.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" --keep-going in.jsonl
	[[ "$stderr" == "push-prom: in.jsonl:2: invalid JSON: "*$'\n'"push-prom: 1 bad input line skipped" ]]
	assert_equal "$(gauge plumb_eval_em suite=s)" 0.5
	run -0 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" --rejects rej.jsonl in.jsonl
	assert_equal "$(cat rej.jsonl)" "not json"
	# a bad scorecard cannot be skipped: it is the whole push
	printf '%s\n' '{"scorecard":{"metrics":{"em":"x"}}}' > badsc.jsonl
	run -65 --separate-stderr push-prom --url "$PUSHGATEWAY_URL" --rejects rej2.jsonl badsc.jsonl
	assert_equal "${lines[*]:-}" ""
	[[ "$stderr" == *"nothing pushed: the scorecard on the last line is bad" ]]
	assert_equal "$(cat rej2.jsonl)" '{"scorecard":{"metrics":{"em":"x"}}}'
}

@test "push-prom: --scorecard and --key read another shape; flags and variables win over fields" {
	echo '{"result":{"name":"nightly-qa","scores":{"em":{"score":0.5,"interval":[0.4,0.6]}},"ok":true,"count":7}}' > other.jsonl
	push-prom --url "$PUSHGATEWAY_URL" --scorecard result --key suite=name --key metrics=scores \
		--key value=score --key ci=interval --key passed=ok --key n=count other.jsonl
	assert_equal "$(gauge plumb_eval_em suite=nightly-qa)" 0.5
	assert_equal "$(gauge plumb_eval_em_ci95_high suite=nightly-qa)" 0.6
	assert_equal "$(gauge plumb_eval_items suite=nightly-qa)" 7
	assert_equal "$(gauge plumb_eval_passed suite=nightly-qa)" 1
	# the whole line as the scorecard, nested fields by path
	echo '{"metrics":{"em":{"value":0.25,"ci":[0.2,0.3]}},"meta":{"suite":"deep"}}' |
		push-prom --url "$PUSHGATEWAY_URL" --scorecard . --key suite=meta.suite
	assert_equal "$(gauge plumb_eval_em suite=deep)" 0.25
	assert_equal "$(gauge plumb_eval_em_ci95_low suite=deep)" 0.2
	# the environment a container sets
	scorecard > scores.jsonl
	PUSHGATEWAY_URL=$PUSHGATEWAY_URL PUSHGATEWAY_JOB=ci PLUMB_EVAL_SUITE=env-suite PLUMB_EVAL_MODEL=env-model \
		push-prom scores.jsonl
	assert_equal "$(gauge plumb_eval_f1 job=ci suite=env-suite model=env-model)" 0.875
	PUSHGATEWAY_URL=$PUSHGATEWAY_URL PLUMB_EVAL_SUITE=env-suite push-prom --suite flag-suite scores.jsonl
	assert_equal "$(gauge plumb_eval_f1 job=plumb_eval suite=flag-suite model=gpt-x)" 0.875
}

@test "push-prom: a scorecard evalscore wrote, its failed gate included" {
	# evalscore -m exact_match,f1,chrf++ --suite squad/dev --model gpt-x --slim --gate 'exact_match>=0.9'
	cat > sc.jsonl <<-'EOF'
	{"scorecard":{"suite":"squad/dev","model":"gpt-x","n":3,"errors":0,"rejected":0,"signature":"evalscore|bootstrap:1000|seed:12345|ci:percentile|version:test","metrics":{"exact_match":{"value":0.66666666666666663,"ci95":[0,1],"n":3,"better":"higher","signature":"squad-v1.1"},"f1":{"value":0.66666666666666663,"ci95":[0,1],"n":3,"better":"higher","signature":"squad-v1.1"},"chrf++":{"value":43.878139590308265,"ci95":[0,100],"n":3,"better":"higher","signature":"nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"}},"regressions":[],"gates":[{"gate":"exact_match>=0.9","metric":"exact_match","value":0.66666666666666663,"passed":false}],"passed":false}}
	EOF
	push-prom --job ci sc.jsonl
	scrape > scrape.txt
	grep -qxF 'plumb_eval_chrf_pp{instance="",job="ci",model="gpt-x",suite="squad/dev"} 43.878139590308265' scrape.txt
	grep -qxF 'plumb_eval_chrf_pp_ci95_high{instance="",job="ci",model="gpt-x",suite="squad/dev"} 100' scrape.txt
	grep -qxF 'plumb_eval_exact_match{instance="",job="ci",model="gpt-x",suite="squad/dev"} 0.6666666666666666' scrape.txt
	grep -qxF 'plumb_eval_gates_failed{instance="",job="ci",model="gpt-x",suite="squad/dev"} 1' scrape.txt
	grep -qxF 'plumb_eval_passed{instance="",job="ci",model="gpt-x",suite="squad/dev"} 0' scrape.txt
	grep -qxF 'plumb_eval_items{instance="",job="ci",model="gpt-x",suite="squad/dev"} 3' scrape.txt
	run -1 grep -q last_success scrape.txt
}

@test "push-prom pushes what evalscore --format prometheus prints, under the same names" {
	[ -x "$PLUMB_BIN/evalscore" ] || skip "evalscore is not built"
	printf '%s\n' '{"id":"1","output":"Paris","reference":"Paris"}' '{"id":"2","output":"the cat","reference":"a cat"}' \
		'{"id":"3","output":"Lyon","reference":"Paris"}' > ev.jsonl
	args=(-m exact_match,f1,chrf++ --suite squad --model m1 --slim)
	evalscore "${args[@]}" ev.jsonl | push-prom --job same
	evalscore "${args[@]}" --format prometheus ev.jsonl > evalscore.prom
	curl -sf "$PUSHGATEWAY_URL/metrics" > pushed.prom
	run -0 python3 - <<-'PY'
	import math, re
	def samples(path):
	    out = {}
	    for line in open(path):
	        m = re.match(r'(plumb_eval_\w+)\{[^}]*\} (\S+)$', line.strip())
	        if m and "last_success" not in m.group(1):
	            out[m.group(1)] = float(m.group(2))
	    return out
	want, got = samples("evalscore.prom"), samples("pushed.prom")
	assert want and set(want) == set(got), (sorted(want), sorted(got))
	for k in want:
	    assert want[k] == got[k] or (math.isnan(want[k]) and math.isnan(got[k])), (k, want[k], got[k])
	PY
}

@test "the examples in push-prom(1) run" {
	scorecard > scores.jsonl
	run_man_examples "$T_ROOT/docs/push-prom.1" 3
	assert_equal "$(gauge plumb_eval_exact_match job=nightly env=staging suite=squad)" 0.81
}
