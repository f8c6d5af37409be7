#!/usr/bin/env bats
# evalscore: golden values (SQuAD by its definition, sacreBLEU's README
# corpus, scikit-learn's documented examples and scikit-learn itself on
# generated labels, numpy's percentiles, retrieval by hand), the seeded
# bootstrap, baseline regressions and gates, every format, bad input, the
# rubric command, LLM-as-judge against t/openai-server.py, the man page.

load test_helper

setup_file() {
	start_openai_server --api-key sk-judge-0123456789 --models judge-1
	start_redis
}

teardown_file() {
	stop_openai_server
	stop_redis
}

local_setup() {
	unset PLUMB_EVAL_METRICS PLUMB_EVAL_FORMAT PLUMB_EVAL_GATES PLUMB_EVAL_BASELINE \
		PLUMB_JUDGE_MODEL PLUMB_EVAL_SEED PLUMB_EVAL_BOOTSTRAP
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
}

# jqs FILTER FILE: one value from the last line (the scorecard) of FILE
last() { tail -n 1 "$1"; }
sc() { tail -n 1 "$2" | jq -c "$1"; }

stats() {	# stats FIELD: a counter of the test server
	curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | jq -r ".$1"
}

rules() { curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__rules" -d "$1" > /dev/null; }

# labels N SEED ERR: N records with a true label and a prediction that is
# wrong with probability ERR, over four classes, one of which ("z") is
# only ever predicted
labels() {
	python3 -c '
import json, random, sys
n, seed, err = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
r = random.Random(seed)
for i in range(n):
    t = r.choice(["cat", "dog", "dog", "pig"])
    p = t if r.random() > err else r.choice(["cat", "dog", "pig", "z"])
    print(json.dumps({"id": "i%d" % i, "output": p + ("\n" if i % 7 == 0 else ""), "label": t}))
' "$@"
}

@test "evalscore --help, --version and usage errors" {
	run -0 evalscore --help
	assert_output --partial "usage: evalscore -m METRIC[,METRIC...] [--pred FIELD]"
	assert_output --partial "--baseline FILE"
	run -0 evalscore --version
	assert_output --regexp '^evalscore \(plumb\) '
	run -2 --separate-stderr evalscore
	assert_equal "${stderr%%$'\n'*}" "evalscore: no metric: name some with -m (for example -m exact_match,f1)"
	run -2 --separate-stderr evalscore -m exact_match,blue
	assert_equal "${stderr%%$'\n'*}" "evalscore: unknown metric 'blue' (see evalscore --help)"
	run -2 --separate-stderr evalscore -m f1 --gate 'bleu>=30'
	assert_equal "${stderr%%$'\n'*}" "evalscore: --gate 'bleu>=30': 'bleu' is not one of the metrics computed"
	run -2 --separate-stderr evalscore -m f1 --gate 'f1 about 3'
	assert_equal "${stderr%%$'\n'*}" "evalscore: --gate 'f1 about 3': want METRIC OP NUMBER with OP one of >= > <= < == !="
	run -2 --separate-stderr evalscore -m f1 --tolerance bleu=1
	assert_equal "${stderr%%$'\n'*}" "evalscore: --tolerance: 'bleu' is not one of the metrics computed"
	run -2 --separate-stderr evalscore -m f1 --tolerance=-1
	run -2 --separate-stderr evalscore -m f1 --format xml
	assert_equal "${stderr%%$'\n'*}" "evalscore: --format 'xml': want json, table, markdown or prometheus"
	run -2 --separate-stderr evalscore -m f1 --items --format table
	run -2 --separate-stderr evalscore -m rubric
	assert_equal "${stderr%%$'\n'*}" "evalscore: the rubric metric needs --rubric-cmd"
	run -2 --separate-stderr evalscore -m judge
	assert_equal "${stderr%%$'\n'*}" "evalscore: the judge metric needs --judge-model (or PLUMB_JUDGE_MODEL)"
	run -2 --separate-stderr evalscore --assert 'regex:(' 
	[[ "$stderr" == "evalscore: --assert 'regex:(': "* ]]
	run -2 --separate-stderr evalscore --assert 'startswith:x'
	run -2 --separate-stderr evalscore -m recall@0
	run -2 --separate-stderr evalscore -m latency_p101
	run -2 --separate-stderr evalscore -m f1 --bootstrap -1
	run -2 --separate-stderr evalscore -m f1 --alpha 2
	run -2 --separate-stderr evalscore -m f1 no-such-file.jsonl
	assert_equal "$stderr" "evalscore: cannot open 'no-such-file.jsonl': No such file or directory"
	PLUMB_EVAL_METRICS=nope run -2 --separate-stderr evalscore
}

@test "evalscore exact_match and f1: the SQuAD v1.1 script's values, computed by its definition" {
	# normalization: lower case, punctuation and a/an/the removed, white space collapsed;
	# F1 over tokens, max over references; an infer failure counts as an empty answer
	cat > squad.jsonl <<-'EOF'
	{"id":"q1","output":"The Eiffel Tower","references":["Eiffel Tower"]}
	{"id":"q2","output":"Paris, France","reference":"Paris"}
	{"id":"q3","output":"in 1889","answers":{"text":["1889","the year 1889"],"answer_start":[3,9]}}
	{"id":"q4","error":"request failed after 5 tries","reference":"blue"}
	{"id":"q5","output":"A  cat!","references":["the cat","dog"]}
	EOF
	run -0 --separate-stderr evalscore -m exact_match,f1 --items squad.jsonl
	assert_equal "${#lines[@]}" 6
	assert_equal "${lines[0]}" '{"id":"q1","scores":{"exact_match":1,"f1":1}}'
	assert_equal "${lines[3]}" '{"id":"q4","scores":{"exact_match":0,"f1":0},"error":true}'
	echo "$output" > out.jsonl
	# q2: P 1/2, R 1: 2/3; q3: "1889" gives 2/3, "year 1889" 1/2: max 2/3
	run -0 jq -e '.scores.f1 - 2/3 | fabs < 1e-12' <(sed -n 2p out.jsonl)
	run -0 jq -e '.scores.f1 - 2/3 | fabs < 1e-12' <(sed -n 3p out.jsonl)
	run -0 jq -e '.scorecard | .n == 5 and .errors == 1 and .suite == "squad"
		and .metrics.exact_match.value == 0.4
		and (.metrics.f1.value - (1 + 2/3 + 2/3 + 0 + 1) / 5 | fabs < 1e-12)
		and .metrics.exact_match.signature == "squad-v1.1" and .metrics.f1.n == 5' <(last out.jsonl)
	# --skip-errors leaves the failure out instead
	run -0 evalscore -m exact_match --skip-errors --slim squad.jsonl
	run -0 jq -e '.scorecard | .n == 4 and .skipped_errors == 1 and .metrics.exact_match.value == 0.5' <<< "$output"
}

@test "evalscore bleu and chrf: sacreBLEU's README corpus, with its signature" {
	# sacreBLEU's README: BLEU = 48.53 (test_bleu.py: 48.530827), chrF2 = 59.73
	cat > mt.jsonl <<-'EOF'
	{"id":1,"output":"The dog bit the man.","references":["The dog bit the man.","The dog had bit the man."]}
	{"id":2,"output":"It wasn't surprising.","references":["It was not unexpected.","No one was surprised."]}
	{"id":3,"output":"The man had just bitten him.","references":["The man bit him first.","The man had bitten the dog."]}
	EOF
	run -0 evalscore -m bleu,chrf --slim mt.jsonl
	run -0 jq -e '.scorecard.metrics | (.bleu.value - 48.530827 | fabs < 5e-7)
		and (.chrf.value * 100 | round) == 5973
		and (.bleu.signature | startswith("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:"))
		and (.chrf.signature | startswith("nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:"))
		and .bleu.ci95[0] < .bleu.value and .bleu.value <= .bleu.ci95[1]' <<< "$output"
	# corpus BLEU is not the mean of the sentence scores in the item lines
	run -0 evalscore -m bleu --items mt.jsonl
	run -0 jq -s -e '(map(select(.scores)) | map(.scores.bleu) | add / length) as $m
		| ($m - .[-1].scorecard.metrics.bleu.value | fabs) > 0.5' <<< "$output"
}

@test "evalscore classification: scikit-learn's documented examples" {
	# classification_report's docstring: y_true [0,1,2,2,2], y_pred [0,0,2,2,1]
	python3 -c '
import json
for i, (t, p) in enumerate(zip([0, 1, 2, 2, 2], [0, 0, 2, 2, 1])):
    print(json.dumps({"id": i, "output": str(p), "label": t}))' > report.jsonl
	run -0 evalscore -m classification --slim report.jsonl
	echo "$output" > sc.json
	run -0 jq -e '.scorecard as $s | $s.metrics as $m
		| ($m.accuracy.value == 0.6)
		and ($m.precision_macro.value == 0.5) and ($m.recall_macro.value - 5/9 | fabs < 1e-12)
		and ($m.f1_macro.value - 22/45 | fabs < 1e-12)
		and ($m.precision_weighted.value - 0.7 | fabs < 1e-12) and ($m.recall_weighted.value == 0.6)
		and ($m.f1_weighted.value - 0.613333333333 | fabs < 1e-9)
		and ($m.f1_micro.value == 0.6)
		and $s.classification.labels == ["0","1","2"]
		and $s.classification.confusion == [[1,0,0],[1,0,0],[0,1,2]]
		and $s.classification.per_class["2"].support == 3
		and ($s.classification.per_class["2"].f1 - 0.8 | fabs < 1e-12)
		and $s.classification.per_class["1"].precision == 0' sc.json
	# numeric labels sort as numbers
	printf '%s\n' '{"output":"10","label":"10"}' '{"output":"9","label":"2"}' | evalscore -m accuracy,f1_macro --slim > num.json
	run -0 jq -c '.scorecard.classification.labels' num.json
	assert_output '["2","9","10"]'
}

@test "evalscore classification agrees with scikit-learn to 4 decimals on generated labels" {
	python3 -c 'import sklearn' || fail "python3-sklearn is needed for this test (make deps)"
	for seed in 1 2 3; do
		labels 300 "$seed" 0.35 > l.jsonl
		evalscore -m classification --bootstrap 0 --slim l.jsonl > sc.json
		run -0 python3 - <<-'PY'
		import json
		from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
		recs = [json.loads(l) for l in open("l.jsonl")]
		yt = [r["label"].strip() for r in recs]
		yp = [r["output"].strip() for r in recs]
		sc = json.load(open("sc.json"))["scorecard"]
		m = sc["metrics"]
		def eq(a, b, what):
		    assert round(a, 4) == round(b, 4) and abs(a - b) < 1e-9, (what, a, b)
		eq(m["accuracy"]["value"], accuracy_score(yt, yp), "accuracy")
		for avg in ("macro", "micro", "weighted"):
		    p, r, f, _ = precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
		    eq(m["precision_" + avg]["value"], p, "precision_" + avg)
		    eq(m["recall_" + avg]["value"], r, "recall_" + avg)
		    eq(m["f1_" + avg]["value"], f, "f1_" + avg)
		labels = sorted(set(yt) | set(yp))
		assert sc["classification"]["labels"] == labels, sc["classification"]["labels"]
		assert sc["classification"]["confusion"] == confusion_matrix(yt, yp, labels=labels).tolist()
		p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
		for i, l in enumerate(labels):
		    pc = sc["classification"]["per_class"][l]
		    eq(pc["precision"], p[i], l); eq(pc["recall"], r[i], l); eq(pc["f1"], f[i], l)
		    assert pc["support"] == s[i]
		assert "z" in labels and m["f1_macro"]["value"] != m["f1_weighted"]["value"]
		PY
	done
}

@test "evalscore retrieval: recall, precision, hit rate, MRR and nDCG of search output by hand" {
	# q1: expected a, c (2); hits by document: b, a, a (a second chunk, dropped), d, c
	#     ranking b a d c: relevant at ranks 2 and 4
	# q2: expected x; hits y, z: nothing relevant
	cat > s.jsonl <<-'EOF'
	{"id":"q1","text":"?","expected":["a","c"],"hits":[{"id":"b#0","doc_id":"b","score":0.9},{"id":"a#1","doc_id":"a","score":0.8},{"id":"a#0","doc_id":"a","score":0.7},{"id":"d#0","doc_id":"d","score":0.6},{"id":"c#3","doc_id":"c","score":0.5}]}
	{"id":"q2","text":"?","expected":["x"],"hits":[{"id":"y#0","doc_id":"y","score":0.4},{"id":"z#0","doc_id":"z","score":0.3}]}
	EOF
	run -0 evalscore -m retrieval@3,recall,mrr --items --bootstrap 0 s.jsonl
	echo "$output" > out.jsonl
	run -0 python3 - <<-'PY'
	import json, math
	lines = [json.loads(l) for l in open("out.jsonl")]
	q1, q2, sc = lines[0]["scores"], lines[1]["scores"], lines[2]["scorecard"]["metrics"]
	d = lambda r: 1 / math.log2(r + 1)
	want1 = {"recall@3": 0.5, "precision@3": 1 / 3, "hit_rate@3": 1, "mrr@3": 0.5,
	         "ndcg@3": d(2) / (d(1) + d(2)), "recall": 1.0, "mrr": 0.5}
	for k, v in want1.items():
	    assert abs(q1[k] - v) < 1e-12, (k, q1[k], v)
	    assert q2[k] == 0, (k, q2[k])
	    assert abs(sc[k]["value"] - v / 2) < 1e-12, (k, sc[k]["value"])
	assert abs(want1["ndcg@3"] - 0.3868528) < 1e-7
	PY
	# with --match id, chunk ids are compared instead
	echo '{"id":"q","expected":["a#0"],"hits":[{"id":"a#1","doc_id":"a","score":1},{"id":"a#0","doc_id":"a","score":0.5}]}' > c.jsonl
	run -0 evalscore -m mrr --match id --slim c.jsonl
	assert_equal "$(jq '.scorecard.metrics.mrr.value' <<< "$output")" 0.5
	run -0 evalscore -m mrr --slim c.jsonl
	assert_equal "$(jq '.scorecard.metrics.mrr.value' <<< "$output")" 0
	# bad search records
	echo '{"id":"q","hits":[]}' > bad1.jsonl
	run -65 --separate-stderr evalscore -m recall@5 bad1.jsonl
	assert_equal "$stderr" 'evalscore: bad1.jsonl:1: no "expected" field (the relevant ids retrieval is scored on)'
	echo '{"id":"q","expected":["a"],"hits":[1,2]}' > bad2.jsonl
	run -65 --separate-stderr evalscore -m recall@5 bad2.jsonl
	assert_equal "$stderr" 'evalscore: bad2.jsonl:1: "hits" is not an array of objects'
	echo '{"id":"q","expected":[],"hits":[]}' > bad3.jsonl
	run -65 --separate-stderr evalscore -m ndcg@5 bad3.jsonl
	assert_equal "$stderr" 'evalscore: bad3.jsonl:1: "expected" is empty'
}

@test "evalscore latency percentiles match numpy's, tokens are summed from usage" {
	python3 -c '
import json, random
r = random.Random(5)
for i in range(101):
    rec = {"id": i, "output": "x", "latency_ms": round(r.lognormvariate(5, 0.7), 3)}
    if i % 10 != 3:
        rec["usage"] = {"prompt_tokens": i, "completion_tokens": 2 * i, "total_tokens": 3 * i}
    if i == 50:
        del rec["latency_ms"]
    print(json.dumps(rec))' > lat.jsonl
	evalscore -m latency,latency_p95,tokens --slim lat.jsonl > sc.json
	run -0 python3 - <<-'PY'
	import json
	import numpy as np
	recs = [json.loads(l) for l in open("lat.jsonl")]
	lat = [r["latency_ms"] for r in recs if "latency_ms" in r]
	m = json.load(open("sc.json"))["scorecard"]["metrics"]
	for name, q in (("latency_p50", 50), ("latency_p90", 90), ("latency_p95", 95), ("latency_p99", 99)):
	    assert abs(m[name]["value"] - np.percentile(lat, q)) < 1e-9, (name, m[name]["value"], np.percentile(lat, q))
	    assert m[name]["n"] == 100 and m[name]["better"] == "lower" and m[name]["unit"] == "ms"
	assert abs(m["latency_mean"]["value"] - np.mean(lat)) < 1e-9
	u = [r["usage"] for r in recs if "usage" in r]
	assert m["tokens_prompt"]["value"] == sum(x["prompt_tokens"] for x in u)
	assert m["tokens_total"]["value"] == sum(x["total_tokens"] for x in u)
	assert m["tokens_total"]["n"] == 91 and m["tokens_total"]["better"] is None
	PY
	echo '{"id":1,"output":"x","latency_ms":"fast"}' > bad.jsonl
	run -65 --separate-stderr evalscore -m latency bad.jsonl
	assert_equal "$stderr" 'evalscore: bad.jsonl:1: "latency_ms" is not a number of 0 or more'
	echo '{"id":1,"output":"x","usage":{"prompt_tokens":"many"}}' > bad.jsonl
	run -65 --separate-stderr evalscore -m tokens bad.jsonl
	assert_equal "$stderr" 'evalscore: bad.jsonl:1: "usage".prompt_tokens is not a number of 0 or more'
}

@test "evalscore assertions: contains, icontains, regex, json from --assert, the record and references" {
	cat > a.jsonl <<-'EOF'
	{"id":1,"output":"The answer is PARIS. Étoile","reference":"Paris"}
	{"id":2,"output":"{\"city\": \"Paris\"}","reference":"paris","assert":[{"type":"contains","value":"city"},{"type":"regex","value":"^\\{"}]}
	{"id":3,"output":"[1, 2","reference":"Lyon","assert":[{"type":"icontains","value":"étoile"}]}
	{"id":4,"output":"42","reference":"42"}
	EOF
	run -0 evalscore -m contains,icontains,regex,json --items --bootstrap 0 a.jsonl
	assert_equal "${lines[0]}" '{"id":1,"scores":{"contains":0,"icontains":1,"regex":0,"json":0}}'
	assert_equal "${lines[1]}" '{"id":2,"scores":{"contains":1,"icontains":1,"regex":1,"json":1}}'
	assert_equal "${lines[2]}" '{"id":3,"scores":{"contains":0,"icontains":0,"regex":0,"json":0}}'
	assert_equal "${lines[3]}" '{"id":4,"scores":{"contains":1,"icontains":1,"regex":1,"json":1}}'
	run -0 jq -e '.scorecard.metrics | .contains.value == 0.5 and .icontains.value == 0.75 and .json.value == 0.5' <<< "${lines[4]}"
	# --assert applies to every record and needs no reference; icontains folds Unicode case
	printf '%s\n' '{"output":"ÉTÉ 2024"}' '{"output":"été"}' '{"output":"winter"}' > b.jsonl
	run -0 evalscore --assert 'icontains:été' --assert 'regex:[0-9]{4}$' --items --bootstrap 0 b.jsonl
	assert_equal "${lines[0]}" '{"id":"#1","scores":{"icontains":1,"regex":1}}'
	assert_equal "${lines[1]}" '{"id":"#2","scores":{"icontains":1,"regex":0}}'
	assert_equal "${lines[2]}" '{"id":"#3","scores":{"icontains":0,"regex":0}}'
	# every check of a type must pass
	run -0 evalscore --assert contains:ÉTÉ --assert contains:2025 --items --bootstrap 0 b.jsonl
	assert_equal "${lines[0]}" '{"id":"#1","scores":{"contains":0}}'
	# bad assertions are bad input
	echo '{"output":"x","assert":[{"type":"regex","value":"("}]}' > c.jsonl
	run -65 --separate-stderr evalscore -m regex c.jsonl
	[[ "$stderr" == "evalscore: c.jsonl:1: regex '(': "* ]]
	echo '{"output":"x","assert":[{"type":"equals","value":"x"}]}' > d.jsonl
	run -65 --separate-stderr evalscore -m contains d.jsonl
	assert_equal "$stderr" "evalscore: d.jsonl:1: \"assert\": unknown type 'equals' (want contains, icontains, regex or json)"
	echo '{"output":"x"}' > e.jsonl
	run -65 --separate-stderr evalscore -m contains e.jsonl
	assert_equal "$stderr" 'evalscore: e.jsonl:1: contains: no check to run (give --assert, an "assert" list or a reference)'
	run -0 evalscore -m json --slim e.jsonl
}

@test "evalscore bootstrap: seeded, deterministic, and of the expected width" {
	python3 -c '
import json
for i in range(200):
    print(json.dumps({"id": i, "output": "a", "reference": "a" if i % 2 else "b"}))' > half.jsonl
	evalscore -m exact_match half.jsonl > 1.json
	evalscore -m exact_match half.jsonl > 2.json
	cmp 1.json 2.json
	evalscore -m exact_match --seed 7 half.jsonl > 3.json
	PLUMB_EVAL_SEED=7 evalscore -m exact_match half.jsonl > 4.json
	cmp 3.json 4.json
	run -0 jq -e --slurpfile a 1.json '.scorecard.metrics.exact_match.value == $a[0].scorecard.metrics.exact_match.value' 3.json
	# another seed, other resamples: bounds of a continuous metric move
	python3 -c '
import json, random
r = random.Random(3)
for i in range(100):
    print(json.dumps({"id": i, "output": "x", "latency_ms": r.uniform(10, 1000)}))' > lat.jsonl
	evalscore -m latency_mean --slim lat.jsonl > l1.json
	evalscore -m latency_mean --slim lat.jsonl > l2.json
	evalscore -m latency_mean --slim --seed 8 lat.jsonl > l3.json
	cmp l1.json l2.json
	run -0 jq -e --slurpfile a l1.json '.scorecard.metrics.latency_mean as $m | $a[0].scorecard.metrics.latency_mean as $n
		| $m.value == $n.value and $m.ci95[0] != $n.ci95[0] and $m.ci95[1] != $n.ci95[1]' l3.json
	# p = 0.5, n = 200: the normal approximation gives 0.5 +- 0.069
	run -0 jq -e '.scorecard.metrics.exact_match | .value == 0.5
		and .ci95[0] > 0.42 and .ci95[0] < 0.45 and .ci95[1] > 0.55 and .ci95[1] < 0.58' 1.json
	run -0 jq -e '.scorecard.signature | startswith("evalscore|bootstrap:1000|seed:12345|ci:percentile|version:")' 1.json
	run -0 evalscore -m exact_match --bootstrap 0 --slim half.jsonl
	run -0 jq -e '.scorecard.metrics.exact_match.ci95 == null' <<< "$output"
	# more resamples: a narrower spread of the bounds, same value
	run -0 evalscore -m exact_match --bootstrap 5000 --slim half.jsonl
	run -0 jq -e '.scorecard.metrics.exact_match | .value == 0.5 and .ci95[0] > 0.42 and .ci95[1] < 0.58' <<< "$output"
}

@test "evalscore --baseline: a significant drop is a regression and exits 1" {
	labels 300 11 0.1 > base.jsonl
	labels 300 11 0.4 > cur.jsonl
	evalscore -m accuracy,exact_match,f1_macro base.jsonl > base.json
	run -1 --separate-stderr evalscore -m accuracy,exact_match,f1_macro --baseline base.json cur.jsonl
	echo "$output" > sc.json
	[[ "$stderr" == *"evalscore: regression: accuracy 0."*" -> 0."*" (p = 0.000999)"* ]]
	run -0 jq -e '.scorecard as $s | $s.passed == false
		and ($s.regressions | map(.metric)) == ["accuracy","exact_match","f1_macro"]
		and $s.baseline.matched == 300 and $s.baseline.only_current == 0
		and $s.baseline.comparisons.accuracy.compared
		and $s.baseline.comparisons.accuracy.p_value < 0.05
		and ($s.baseline.comparisons.accuracy.delta - ($s.baseline.comparisons.accuracy.current - $s.baseline.comparisons.accuracy.baseline) | fabs < 1e-12)
		and $s.baseline.comparisons.accuracy.regression' sc.json
	# a tolerance larger than the drop: no regression
	run -0 evalscore -m accuracy --baseline base.json --tolerance 0.5 --slim cur.jsonl
	run -0 jq -e '.scorecard.passed and .scorecard.regressions == [] and .scorecard.baseline.comparisons.accuracy.tolerance == 0.5' <<< "$output"
	run -1 evalscore -m accuracy --baseline base.json --tolerance accuracy=0.2 --slim cur.jsonl
	PLUMB_EVAL_TOLERANCE=0.5 run -0 evalscore -m accuracy --baseline base.json --slim cur.jsonl
	# the other way round is an improvement, not a regression
	evalscore -m accuracy cur.jsonl > cur.json
	run -0 evalscore -m accuracy --baseline cur.json --slim base.jsonl
	run -0 jq -e '.scorecard.baseline.comparisons.accuracy.delta > 0.2 and .scorecard.passed' <<< "$output"
	# the same run against itself
	run -0 evalscore -m accuracy --baseline cur.json --slim cur.jsonl
	run -0 jq -e '.scorecard.baseline.comparisons.accuracy.delta == 0' <<< "$output"
}

@test "evalscore --baseline: a drop that is not significant is not a regression" {
	# 8 items, one more wrong: p is far above 0.05
	python3 -c '
import json
for i in range(8):
    print(json.dumps({"id": i, "output": "a", "reference": "a" if i < 6 else "b"}))' > base.jsonl
	python3 -c '
import json
for i in range(8):
    print(json.dumps({"id": i, "output": "a", "reference": "a" if i < 5 else "b"}))' > cur.jsonl
	evalscore -m exact_match base.jsonl > base.json
	run -0 evalscore -m exact_match --baseline base.json --slim cur.jsonl
	run -0 jq -e '.scorecard.baseline.comparisons.exact_match | .delta == -0.125 and .p_value > 0.2 and (.regression | not)' <<< "$output"
	# --alpha 1 takes any drop beyond the tolerance; so does --bootstrap 0
	run -1 evalscore -m exact_match --baseline base.json --alpha 1 --slim cur.jsonl
	run -1 --separate-stderr evalscore -m exact_match --baseline base.json --bootstrap 0 --slim cur.jsonl
	run -0 jq -e '.scorecard.regressions[0].p_value == null' <<< "$output"
}

@test "evalscore --baseline: items are matched by id; missing, unknown and incompatible metrics" {
	python3 -c '
import json
for i in range(100):
    print(json.dumps({"id": "q%d" % i, "output": "a", "reference": "a", "latency_ms": 100 + i}))' > base.jsonl
	# this run: q0..q19 missing, q100..q119 new and all wrong, and twice as slow
	python3 -c '
import json
for i in range(20, 120):
    print(json.dumps({"id": "q%d" % i, "output": "a", "reference": "a" if i < 100 else "b", "latency_ms": 200 + 2 * i}))' > cur.jsonl
	evalscore -m exact_match,latency_p50,bleu base.jsonl > base.json
	run -1 --separate-stderr evalscore -m exact_match,latency_p50,tokens,bleu --baseline base.json --lowercase cur.jsonl
	[[ "$stderr" == *"evalscore: baseline: 80 items matched by id; 20 only in this run and 20 only in the baseline are not compared"* ]]
	[[ "$stderr" == *"evalscore: baseline: bleu not compared: signature 'nrefs:1|case:lc|"* ]]
	echo "$output" > sc.json
	run -0 jq -e '.scorecard as $s | $s.baseline.matched == 80 and $s.baseline.only_current == 20
		and $s.baseline.only_baseline == 20
		and $s.metrics.exact_match.value == 0.8
		and $s.baseline.comparisons.exact_match.current == 1 and $s.baseline.comparisons.exact_match.baseline == 1
		and ($s.baseline.comparisons.exact_match.regression | not)
		and $s.baseline.comparisons.latency_p50.regression
		and $s.baseline.comparisons.tokens_prompt == {"compared":false,"why":"not a quality metric"}
		and $s.baseline.comparisons.bleu.why == "the baseline'"'"'s signature differs"
		and ($s.regressions | map(.metric)) == ["latency_p50"]' sc.json
	# a metric the baseline does not have
	run -0 evalscore -m exact_match,f1 --baseline base.json --slim base.jsonl
	run -0 jq -e '.scorecard.baseline.comparisons.f1 == {"compared":false,"why":"not in the baseline"}' <<< "$output"
	# no item in common
	sed 's/"q/"other-q/' base.jsonl > other.jsonl
	run -2 --separate-stderr evalscore -m exact_match --baseline base.json other.jsonl
	assert_equal "$stderr" "evalscore: baseline 'base.json' has no item in common with this run (items are matched by \"id\")"
	# a baseline that cannot serve
	evalscore -m exact_match --slim base.jsonl > slim.json
	run -65 --separate-stderr evalscore -m exact_match --baseline slim.json base.jsonl
	assert_equal "$stderr" "evalscore: slim.json:1: the scorecard has no per-item statistics (written with --slim?), so it cannot be a baseline"
	echo '{"id":1}' > notsc.json
	run -65 --separate-stderr evalscore -m exact_match --baseline notsc.json base.jsonl
	assert_equal "$stderr" 'evalscore: notsc.json:1: not a scorecard (no "scorecard" with "metrics")'
	run -2 --separate-stderr evalscore -m exact_match --baseline missing.json base.jsonl
	assert_equal "$stderr" "evalscore: cannot open baseline 'missing.json': No such file or directory"
	# item lines before the scorecard are fine in a baseline
	evalscore -m exact_match --items base.jsonl > withitems.json
	run -0 evalscore -m exact_match --baseline withitems.json --slim base.jsonl
}

@test "evalscore --gate: passes, fails with exit 1, tests interval bounds" {
	labels 200 3 0.2 > l.jsonl
	run -0 evalscore -m accuracy --gate 'accuracy>=0.7' --slim l.jsonl
	run -0 jq -e '.scorecard.gates == [{"gate":"accuracy>=0.7","metric":"accuracy","value":.scorecard.metrics.accuracy.value,"passed":true}] and .scorecard.passed' <<< "$output"
	run -1 --separate-stderr evalscore -m accuracy --gate 'accuracy >= 0.99' --slim l.jsonl
	[[ "$stderr" == "evalscore: gate failed: accuracy >= 0.99 (accuracy is 0."* ]]
	run -0 jq -e '.scorecard.passed == false and .scorecard.gates[0].passed == false' <<< "$output"
	# the lower bound of the interval is below the value
	acc=$(evalscore -m accuracy --slim l.jsonl | jq '.scorecard.metrics.accuracy.value')
	run -0 evalscore -m accuracy --gate "accuracy>=$acc" --slim l.jsonl
	run -1 evalscore -m accuracy --gate "accuracy.lo>=$acc" --slim l.jsonl
	run -0 evalscore -m accuracy --gate "accuracy.hi>$acc,accuracy<1" --slim l.jsonl
	PLUMB_EVAL_GATES='accuracy<0.5' run -1 evalscore -m accuracy --slim l.jsonl
	# a gate on a metric with no value fails
	echo '{"id":1,"output":"x"}' > nolat.jsonl
	run -1 --separate-stderr evalscore -m latency_p99 --gate 'latency_p99<1000' --slim nolat.jsonl
	run -0 jq -e '.scorecard.metrics.latency_p99.value == null and .scorecard.gates[0].value == null' <<< "$output"
}

@test "evalscore formats: table, markdown, prometheus; a table on a terminal" {
	labels 50 4 0.3 > l.jsonl
	evalscore -m accuracy,f1_macro l.jsonl > base.json
	run -0 evalscore -m accuracy,f1_macro,latency_p50 --format table --suite smoke --model m1 l.jsonl
	assert_line --index 0 "suite smoke   model m1   n 50   bootstrap 1000, seed 12345"
	assert_line --regexp '^metric +value +95% CI +n$'
	assert_line --regexp '^accuracy +0\.[0-9]{4}  \[0\.[0-9]{4}, 0\.[0-9]{4}\] +50$'
	assert_line --regexp '^latency_p50 +- +- +0$'
	assert_line "passed"
	run -1 evalscore -m accuracy,f1_macro --baseline base.json --gate 'accuracy>=0.99' --format markdown l.jsonl
	assert_line '| metric | value | 95% CI | n | baseline | delta | p | |'
	assert_line --regexp '^\| accuracy \| 0\.[0-9]{4} \| \[0\.[0-9]{4}, 0\.[0-9]{4}\] \| 50 \| 0\.[0-9]{4} \| \+0\.0000 \| 0\.0010 \|  \|$'
	assert_line --regexp '^- gate `accuracy>=0.99`: FAILED \(0\.[0-9]{4}\)$'
	assert_line "**FAILED**: 0 regressions, 1 gate failed"
	run -0 evalscore -m accuracy,latency_p99 --format prometheus --suite 'smoke "1"' --model 'x\y' l.jsonl
	echo "$output" > prom.txt
	run -0 python3 - <<-'PY'
	import re
	text = open("prom.txt").read()
	assert text.endswith("\n")
	names, types = [], {}
	sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{suite="((?:[^"\\]|\\.)*)",model="((?:[^"\\]|\\.)*)"\} (\S+)$')
	for line in text.splitlines():
	    if line.startswith("# HELP "):
	        continue
	    m = re.match(r"^# TYPE (\S+) gauge$", line)
	    if m:
	        types[m.group(1)] = True
	        continue
	    m = sample.match(line)
	    assert m, line
	    assert m.group(1) in types, line
	    assert m.group(2) == 'smoke \\"1\\"' and m.group(3) == 'x\\\\y', line
	    names.append(m.group(1))
	    float(m.group(4))
	want = ["plumb_eval_accuracy", "plumb_eval_accuracy_ci95_low", "plumb_eval_accuracy_ci95_high",
	        "plumb_eval_latency_p99", "plumb_eval_latency_p99_ci95_low", "plumb_eval_latency_p99_ci95_high",
	        "plumb_eval_items", "plumb_eval_regressions", "plumb_eval_gates_failed", "plumb_eval_passed"]
	assert names == want, names
	assert "plumb_eval_latency_p99{" in text and " NaN\n" in text
	PY
	run -0 evalscore -m chrf++,recall@5,hit@3 --format prometheus --suite s --model m --bootstrap 0 <<< '{"output":"a","reference":"a","expected":["d"],"hits":[]}'
	assert_line 'plumb_eval_chrf_pp{suite="s",model="m"} 100'
	assert_line 'plumb_eval_recall_at_5{suite="s",model="m"} 0'
	assert_line 'plumb_eval_hit_rate_at_3{suite="s",model="m"} 0'
	# on a terminal the default is the table; elsewhere JSON
	run -0 script -qec "evalscore -m accuracy l.jsonl" /dev/null
	[[ "$output" == *"metric"*"accuracy"* ]]
	run -0 evalscore -m accuracy --slim l.jsonl
	run -0 jq -e '.scorecard' <<< "$output"
	PLUMB_EVAL_FORMAT=markdown run -0 evalscore -m accuracy l.jsonl
	assert_line '| metric | value | 95% CI | n |'
}

@test "evalscore scorecard: the documented members, in order, and per-item statistics" {
	labels 20 9 0.3 > l.jsonl
	run -0 evalscore -m accuracy,f1_macro,tokens --suite s --gate 'accuracy>0' l.jsonl
	run -0 jq -e -c '.scorecard | keys_unsorted == ["suite","model","n","errors","rejected","signature","metrics","classification","regressions","gates","passed","items"]
		and (.metrics.accuracy | keys_unsorted) == ["value","ci95","n","better"]
		and (.metrics.tokens_total | keys_unsorted) == ["value","ci95","n","better","unit"]
		and (.items | length) == 20 and .items[0].id == "i0"
		and (.items[0].stats | keys_unsorted) == ["accuracy","classification","usage"]
		and (.items[0].stats.classification | length) == 2 and .items[0].stats.usage == null' <<< "$output"
	# the model comes from the records unless --model names it
	printf '%s\n' '{"output":"a","label":"a","model":"m2"}' '{"output":"a","label":"a","model":"m1"}' '{"output":"a","label":"a","model":"m2"}' | evalscore -m accuracy --slim > m.json
	assert_equal "$(jq -r '.scorecard.model' m.json)" "m2,m1"
	assert_equal "$(jq -r '.scorecard.suite' m.json)" "null"
}

@test "evalscore bad input: file:line and 65, items before it written; --keep-going, --rejects" {
	printf '%s\n' '{"id":1,"output":"a","reference":"a"}' '{"id":2,"output":"b","reference":"a"}' \
		'{"id":3,"output":"a","reference":' '{"id":4,"output":"a","reference":"a"}' > in.jsonl
	run -65 --separate-stderr evalscore -m exact_match --items in.jsonl
	assert_equal "$stderr" "evalscore: in.jsonl:3: invalid JSON: unexpected end of input (column 34)"
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[1]}" '{"id":2,"scores":{"exact_match":0}}'
	# --keep-going scores the rest, reports, and exits 65
	run -65 --separate-stderr evalscore -m exact_match --slim --keep-going in.jsonl
	[[ "$stderr" == *"evalscore: in.jsonl:3: invalid JSON"*"evalscore: 1 bad input line skipped"* ]]
	run -0 jq -e '.scorecard.n == 3 and .scorecard.rejected == 1' <<< "$output"
	# --rejects keeps it: exit 0, or 1 when a check fails
	run -0 evalscore -m exact_match --slim --rejects bad.jsonl in.jsonl
	assert_equal "$(cat bad.jsonl)" '{"id":3,"output":"a","reference":'
	run -1 evalscore -m exact_match --slim --rejects bad2.jsonl --gate 'exact_match>0.9' in.jsonl
	run -65 evalscore -m exact_match --slim --keep-going --gate 'exact_match>0.9' in.jsonl
	# records the metrics cannot use
	echo '{"id":1,"reference":"a"}' > r1.jsonl
	run -65 --separate-stderr evalscore -m exact_match r1.jsonl
	assert_equal "$stderr" 'evalscore: r1.jsonl:1: no "output" field (the prediction; --pred names another)'
	echo '{"id":1,"output":"a"}' > r2.jsonl
	run -65 --separate-stderr evalscore -m f1 r2.jsonl
	assert_equal "$stderr" 'evalscore: r2.jsonl:1: no reference: none of "references", "reference", "answers", "label" (--ref names another field)'
	echo '{"id":1,"output":"a","references":["a",{"x":1}]}' > r3.jsonl
	run -65 --separate-stderr evalscore -m f1 r3.jsonl
	assert_equal "$stderr" 'evalscore: r3.jsonl:1: "references" is not a string or an array of strings'
	echo '{"id":1,"output":{"a":1},"reference":"a"}' > r4.jsonl
	run -65 --separate-stderr evalscore -m f1 r4.jsonl
	assert_equal "$stderr" 'evalscore: r4.jsonl:1: "output" is not a string'
	printf '%s\n' '{"id":"x","output":"a","reference":"a"}' '{"id":"x","output":"b","reference":"b"}' > r5.jsonl
	run -65 --separate-stderr evalscore -m f1 r5.jsonl
	assert_equal "$stderr" 'evalscore: r5.jsonl:2: duplicate id "x" (first at r5.jsonl:1)'
	echo '{"id":[1],"output":"a","reference":"a"}' > r6.jsonl
	run -65 --separate-stderr evalscore -m f1 r6.jsonl
	assert_equal "$stderr" 'evalscore: r6.jsonl:1: "id" is not a string or a number'
	echo '{"id":1,"output":"a","references":["a","b"]}' > r7.jsonl
	run -65 --separate-stderr evalscore -m f1_macro r7.jsonl
	assert_equal "$stderr" 'evalscore: r7.jsonl:1: classification needs one true label, not 2'
	# --pred and --ref name other fields
	echo '{"id":1,"answer":"Paris","gold":["paris"]}' > r8.jsonl
	run -0 evalscore -m exact_match --pred answer --ref gold --slim r8.jsonl
	run -0 jq -e '.scorecard.metrics.exact_match.value == 1' <<< "$output"
	PLUMB_EVAL_PRED=answer PLUMB_EVAL_REF=gold run -0 evalscore -m exact_match --slim r8.jsonl
	# nothing to score: a scorecard all the same
	run -0 --separate-stderr evalscore -m exact_match --slim < /dev/null
	assert_equal "$stderr" "evalscore: no records to score"
	run -0 jq -e '.scorecard.n == 0 and .scorecard.metrics.exact_match.value == null' <<< "$output"
}

@test "evalscore --rubric-cmd: a score per record; failures named by file and line" {
	cat > rb.jsonl <<-'EOF'
	{"id":"a","output":"short"}
	{"id":"b","output":"a longer answer"}
	EOF
	run -0 evalscore --rubric-cmd "jq '.output | length'" --items --bootstrap 0 rb.jsonl
	assert_equal "${lines[0]}" '{"id":"a","scores":{"rubric":5}}'
	assert_equal "${lines[1]}" '{"id":"b","scores":{"rubric":15}}'
	run -0 jq -e '.scorecard.metrics.rubric.value == 10' <<< "${lines[2]}"
	# a JSON reply with a reason
	run -0 evalscore --rubric-cmd "jq -c '{score: (.output | length / 10), reason: \"by length\"}'" --items --bootstrap 0 rb.jsonl
	assert_equal "${lines[0]}" '{"id":"a","scores":{"rubric":0.5},"rubric_reason":"by length"}'
	# failures
	run -65 --separate-stderr evalscore --rubric-cmd 'cat > /dev/null; echo oops >&2; exit 3' rb.jsonl
	assert_equal "$stderr" $'oops\nevalscore: rb.jsonl:1: --rubric-cmd exited with status 3'
	run -65 --separate-stderr evalscore --rubric-cmd 'echo not a number' rb.jsonl
	assert_equal "$stderr" "evalscore: rb.jsonl:1: --rubric-cmd printed no score: 'not a number' (want a number, or {\"score\": number})"
	run -65 --separate-stderr evalscore --rubric-cmd 'kill -9 $$' rb.jsonl
	assert_equal "$stderr" "evalscore: rb.jsonl:1: --rubric-cmd was killed by signal 9"
	run -65 --separate-stderr evalscore --rubric-cmd 'no-such-command-here' rb.jsonl
	[[ "$stderr" == *"evalscore: rb.jsonl:1: --rubric-cmd exited with status 127 (command not found?)" ]]
	# a command that does not read its input does not kill evalscore
	python3 -c 'import json; print(json.dumps({"id": "big", "output": "x" * 3000000}))' > big.jsonl
	run -0 evalscore --rubric-cmd 'echo 1' --slim big.jsonl
	# --keep-going: the failed record is left out, the others scored
	run -65 --separate-stderr evalscore --rubric-cmd "jq 'if .id == \"a\" then error(\"no\") else 1 end'" --slim --keep-going rb.jsonl
	run -0 jq -e '.scorecard.n == 1 and .scorecard.metrics.rubric.value == 1' <<< "${lines[-1]}"
}

@test "evalscore judge: scores from a chat model, unparsable replies recorded, cache" {
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-judge-0123456789
	printf 'Q: {{input}}\nA: {{output}}\nR: {{reference}}' > prompt.txt
	rules '{"rules":{
		"Q: capital of France?\nA: Paris\nR: Paris":{"content":"The answer is right. **Score:** 5","latency_ms":400},
		"Q: 2+2?\nA: 5\nR: 4":"Score = 1\nwait, let me recheck. Score: [[2]]",
		"Q: colour of the sky?\nA: blue\nR: blue":"I cannot grade this.",
		"Q: largest planet?\nA: Jupiter\nR: Jupiter":"Score: 9",
		"Q: a hard one\nA: ?\nR: x":{"status":500,"message":"judge overloaded"},
		"Q: tallest mountain?\nA: Everest\nR: Everest":"Score: 4"}}'
	cat > j.jsonl <<-'EOF'
	{"id":1,"input":"capital of France?","output":"Paris","reference":"Paris"}
	{"id":2,"input":"2+2?","output":"5","reference":"4"}
	{"id":3,"input":"colour of the sky?","output":"blue","reference":"blue"}
	{"id":4,"input":"largest planet?","output":"Jupiter","reference":"Jupiter"}
	{"id":5,"input":"a hard one","output":"?","reference":"x"}
	{"id":6,"input":"tallest mountain?","output":"Everest","reference":"Everest"}
	EOF
	# every reply takes 150 ms, so the requests overlap
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__faults" -d '{"latency_ms":150}' > /dev/null
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --retries 2 \
		--concurrency 6 --cache jcache --items --bootstrap 0 j.jsonl
	echo "$output" > out.jsonl
	jerr=$stderr
	nth() { sed -n "$1p" out.jsonl; }
	assert_equal "$(nth 1)" '{"id":1,"scores":{"judge":5},"judge_reply":"The answer is right. **Score:** 5"}'
	# the last score in the reply counts
	run -0 jq -e '.scores.judge == 2' <<< "$(nth 2)"
	assert_equal "$(nth 3)" '{"id":3,"scores":{"judge":null},"judge_reply":"I cannot grade this.","judge_error":"no score in the reply"}'
	run -0 jq -e '.scores.judge == null and .judge_error == "score 9 is outside 1..5"' <<< "$(nth 4)"
	run -0 jq -e '.scores.judge == null and (.judge_error | startswith("request failed: ")) and (.judge_error | contains("judge overloaded"))' <<< "$(nth 5)"
	run -0 jq -e '.id == 6 and .scores.judge == 4' <<< "$(nth 6)"
	# input order although the first reply came last
	assert_equal "$(jq -c '.id' out.jsonl | head -n 6 | tr '\n' ' ')" "1 2 3 4 5 6 "
	[ "$(stats in_flight_max)" -ge 5 ]
	[[ "$jerr" == *"evalscore: j.jsonl:3: judge: no score in the reply"* ]]
	[[ "$jerr" == *"evalscore: j.jsonl:5: judge: request failed: "* ]]
	run -0 jq -e '.scorecard as $s | $s.metrics.judge.value == (5 + 2 + 4) / 3 and $s.metrics.judge.n == 3
		and $s.judge.model == "judge-1" and $s.judge.unparsed == 2 and $s.judge.failed == 1
		and ($s.judge.problems | map(.id)) == [3,4,5] and $s.judge.problems[0].reply == "I cannot grade this."' <(last out.jsonl)
	# the request: the rendered prompt as one user message, temperature 0
	run -0 jq -e '.chat_bodies[0] | .model == "judge-1" and .temperature == 0
		and .messages == [{"role":"user","content":"Q: capital of France?\nA: Paris\nR: Paris"}]' \
		<(curl -s "http://127.0.0.1:$OPENAI_PORT/__stats")
	# a re-run asks the server only what failed before (failures are not cached)
	before=$(stats chat_requests)
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --retries 1 --cache jcache --slim j.jsonl
	assert_equal "$(( $(stats chat_requests) - before ))" 1
	# the cache in a real redis-server
	redis-cli -p "$REDIS_PORT" flushall > /dev/null
	before=$(stats chat_requests)
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --retries 1 --cache "$REDIS_URL" --slim j.jsonl
	assert_equal "$(( $(stats chat_requests) - before ))" 6
	assert_equal "$(redis-cli -p "$REDIS_PORT" dbsize)" 5
	before=$(stats chat_requests)
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --retries 1 --cache "$REDIS_URL" --slim j.jsonl
	assert_equal "$(( $(stats chat_requests) - before ))" 1
	# --judge-scale and --judge-pattern
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --judge-scale 0:10 --retries 1 --cache jcache --slim --bootstrap 0 j.jsonl
	run -0 jq -e '.scorecard.metrics.judge.value == (5 + 2 + 9 + 4) / 4' <<< "$output"
	run -0 --separate-stderr evalscore --judge-model judge-1 --judge-prompt prompt.txt --judge-pattern 'right|wait' --retries 1 --cache jcache --slim j.jsonl
	run -0 jq -e '.scorecard.metrics.judge.n == 0 and .scorecard.judge.unparsed == 5' <<< "$output"
}

@test "evalscore judge: the default prompt, bad records and configuration errors" {
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-judge-0123456789
	# the server echoes the prompt back, which ends with the instruction
	echo '{"id":1,"messages":[{"role":"user","content":"hi"}],"output":"hello","reference":"hey"}' > one.jsonl
	run -0 --separate-stderr evalscore --judge-model judge-1 --items --bootstrap 0 one.jsonl
	assert_equal "$stderr" "evalscore: one.jsonl:1: judge: no score in the reply"
	run -0 jq -r '.judge_reply' <<< "${lines[0]}"
	[[ "$output" == *$'Question:\nuser: hi\n\nReference answer:\nhey\n\nAnswer to grade:\nhello\n\n'* ]]
	[[ "$output" == *'give your rating on the last line in the form "Score: N".' ]]
	# a placeholder the record cannot fill
	printf '{{missing}}' > p.txt
	run -65 --separate-stderr evalscore --judge-model judge-1 --judge-prompt p.txt one.jsonl
	assert_equal "$stderr" 'evalscore: one.jsonl:1: judge prompt: no field "missing" for {{missing}}'
	# a key the server refuses: every request would fail alike
	OPENAI_API_KEY=sk-wrong run -2 --separate-stderr evalscore --judge-model judge-1 one.jsonl
	[[ "$stderr" == "evalscore: judge: "*"401"* ]]
	run -2 --separate-stderr evalscore --judge-model judge-1 --base-url ftp://x one.jsonl
	assert_equal "${stderr%%$'\n'*}" "evalscore: --base-url 'ftp://x' is not an http(s) URL"
	run -2 evalscore --judge-model judge-1 --judge-scale 5:1 one.jsonl
	PLUMB_JUDGE_MODEL=judge-1 run -0 evalscore -m judge --slim one.jsonl
	PLUMB_JUDGE_MODEL=judge-1 run -0 evalscore -m exact_match --slim one.jsonl
	run -0 jq -e '.scorecard.metrics | keys == ["exact_match"]' <<< "$output"
}

@test "evalscore man page examples run" {
	run_man_examples "$T_ROOT/docs/evalscore.1" 9
}
