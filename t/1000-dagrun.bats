#!/usr/bin/env bats
# dagrun: lint (every error at once, with positions), graph, the search path
# for uses:, usage errors, and the man pages' examples.

load test_helper

F=$T_FIXTURES/dagrun

local_setup() {
	cp -r "$F" fx
	cp -r "$T_ROOT/pipelines" pipelines
}

@test "dagrun --help, --version and usage errors" {
	run -0 --separate-stderr dagrun --help
	assert_output --partial "usage: dagrun [run] FILE [-I dir] [-p name=value]..."
	assert_output --partial "dagrun lint FILE"
	assert_output --partial "dagrun graph FILE [--format dot|mermaid]"
	[ -z "$stderr" ]
	run -0 dagrun --version
	assert_output --regexp '^dagrun \(plumb\) '
	run -2 --separate-stderr dagrun
	[[ "$stderr" == *"a subcommand is needed"* ]]
	run -2 --separate-stderr dagrun frobnicate fx/ok.yaml
	[[ "$stderr" == *"unknown subcommand 'frobnicate'"* ]]
	run -2 --separate-stderr dagrun lint
	[[ "$stderr" == *"'lint' takes one pipeline file"* ]]
	run -2 --separate-stderr dagrun graph --format svg fx/ok.yaml
	[[ "$stderr" == *"unknown --format 'svg' (want dot or mermaid)"* ]]
	run -2 --separate-stderr dagrun lint -p model fx/params.yaml
	[[ "$stderr" == *"-p 'model': want name=value"* ]]
}

@test "status, logs, stop and resume: wrong arguments are usage errors" {
	for c in "status a b" "logs r" "list x" "stop" "resume"; do
		run -2 --separate-stderr dagrun $c
		[[ "$stderr" == "dagrun: wrong arguments for '${c%% *}'"* ]]
		[ -z "$output" ]
	done
}

@test "lint of valid files: nothing on stdout, ok on stderr, exit 0" {
	for f in ok forms; do
		run -0 --separate-stderr dagrun lint "fx/$f.yaml"
		[ -z "$output" ]
		assert_equal "$stderr" "fx/$f.yaml: ok"
	done
	run -0 --separate-stderr dagrun lint --quiet fx/ok.yaml
	[ -z "$stderr" ]
	run -0 dagrun lint -p model=m fx/params.yaml
	run -0 dagrun lint pipelines/rag-index.yaml
}

@test "lint reports every error at once with file:line:column" {
	run -2 --separate-stderr dagrun lint fx/errors.yaml
	[ -z "$output" ]
	expected="fx/errors.yaml:4:20: param 'count' must be an int, not 'ten'
fx/errors.yaml:6:3: task 'fetch' has no 'run'
fx/errors.yaml:7:5: unknown key 'runn' in 'fetch' (did you mean 'run'?)
fx/errors.yaml:9:20: unknown task 'fetc' in 'needs' (did you mean 'fetch'?)
fx/errors.yaml:10:15: unknown param 'mod' (did you mean 'mode'?)
fx/errors.yaml:13:12: task 'parse' has no output 'score'
fx/errors.yaml:13:50: bad 'when': expected a value, found end of expression
fx/errors.yaml:16:31: unknown task 'nosuch' in 'depends'
fx/errors.yaml:17:15: '{{item}}' outside a task with 'each'
fx/errors.yaml:17:24: unknown namespace 'foo' in 'foo.bar' (want params, item, tasks or run)
fx/errors.yaml:18:22: 'resources.cpu' must be cores such as '2', '0.5' or '500m', not 'lots'
fx/errors.yaml:18:36: 'resources.memory' must be bytes such as '256Mi' or '1Gi', not '1GB'
fx/errors.yaml:18:46: 'resources.gpu' must be a whole number of at least 0, not '-1'
fx/errors.yaml:20:30: 'tolerations.operator' must be Exists or Equal, not 'Maybe'"
	assert_equal "$stderr" "$expected"
}

@test "lint names cycles as a path" {
	run -2 --separate-stderr dagrun lint fx/cycle.yaml
	assert_equal "$stderr" "fx/cycle.yaml:2:3: cycle: a -> b -> c -> a
fx/cycle.yaml:11:3: cycle: d -> d"
}

@test "lint: unknown keys with suggestions, duplicates, bad templates and depends" {
	run -2 --separate-stderr dagrun lint fx/misc.yaml
	assert_equal "$stderr" "fx/misc.yaml:1:1: unknown key 'taks' in 'pipeline' (did you mean 'tasks'?)
fx/misc.yaml:4:15: unclosed '{{'
fx/misc.yaml:5:3: duplicate key 'a' in 'tasks'
fx/misc.yaml:9:13: task 'b' reads 'stdin' from 'c' but does not wait for it (add it to 'needs')
fx/misc.yaml:10:17: bad 'depends': unknown outcome 'Done' (want Succeeded, Failed, Skipped or Errored)
fx/misc.yaml:13:15: task 'c' uses '{{tasks.b.status}}' but does not depend on 'b'"
}

@test "lint checks Kubernetes fields, retries, durations, ranges and min_success" {
	run -2 --separate-stderr dagrun lint fx/k8s-errors.yaml
	[ "${#stderr_lines[@]}" -eq 12 ]
	[[ "${stderr_lines[0]}" == "fx/k8s-errors.yaml:2:20: 'service_account' must be a Kubernetes name"* ]]
	assert_equal "${stderr_lines[1]}" "fx/k8s-errors.yaml:3:19: secret variable '1BAD' is not a valid environment variable name"
	assert_equal "${stderr_lines[2]}" "fx/k8s-errors.yaml:3:19: secret 'openai' must be SECRET-NAME/KEY"
	assert_equal "${stderr_lines[3]}" "fx/k8s-errors.yaml:4:18: 'retry.limit' must be a whole number of at least 0, not '-1'"
	assert_equal "${stderr_lines[5]}" "fx/k8s-errors.yaml:4:41: 'retry.on' must be transient, failure or always"
	assert_equal "${stderr_lines[6]}" "fx/k8s-errors.yaml:8:14: 'timeout' must be a duration such as 30s, 500ms, 5m or 2h"
	assert_equal "${stderr_lines[7]}" "fx/k8s-errors.yaml:10:30: a toleration with operator Exists takes no value"
	assert_equal "${stderr_lines[8]}" "fx/k8s-errors.yaml:11:18: 'tolerations.effect' must be NoSchedule, PreferNoSchedule or NoExecute, not 'Never'"
	assert_equal "${stderr_lines[9]}" "fx/k8s-errors.yaml:12:18: 'min_success' must be a count (3), a fraction (0.9) or a percentage (90%)"
	assert_equal "${stderr_lines[10]}" "fx/k8s-errors.yaml:13:11: a range in 'each' needs 'to'"
	assert_equal "${stderr_lines[11]}" "fx/k8s-errors.yaml:13:27: 'each.step' must not be 0"
}

@test "lint reports YAML syntax errors and missing files" {
	run -2 --separate-stderr dagrun lint fx/syntax.yaml
	[[ "$stderr" == "fx/syntax.yaml:4:1: yaml: did not find expected ',' or ']'"* ]]
	run -2 --separate-stderr dagrun lint fx/nonexistent.yaml
	assert_equal "$stderr" "fx/nonexistent.yaml: cannot open 'fx/nonexistent.yaml': No such file or directory"
}

@test "params: required, -p type, enum and unknown names, each over a JSON param" {
	run -2 --separate-stderr dagrun lint fx/params.yaml
	assert_equal "$stderr" "fx/params.yaml:2:3: param 'model' is required (set it with -p model=VALUE)"
	run -2 --separate-stderr dagrun lint fx/params.yaml -p model=m -p backend=foo \
		-p threshold=x -p verbose=yes -p modle=x -p 'shards={"a":1}'
	assert_equal "$stderr" "fx/params.yaml:1:1: -p 'modle=x': unknown param 'modle' (did you mean 'model'?)
fx/params.yaml:3:3: -p 'backend=foo': param 'backend' must be one of hash, http
fx/params.yaml:4:3: -p 'threshold=x': param 'threshold' must be a number
fx/params.yaml:6:3: -p 'verbose=yes': param 'verbose' must be true or false
fx/params.yaml:13:12: 'each' of task 'shard' must be a JSON array, not '{\"a\":1}'"
	run -0 dagrun lint fx/params.yaml -p model=m -p backend=http -p threshold=0.95 -p 'shards=["x"]'
}

@test "uses: found beside the file, through -I and PLUMB_PIPELINES; with: is checked" {
	run -2 --separate-stderr dagrun lint fx/uses.yaml
	assert_equal "$stderr" "fx/uses.yaml:1:7: pipeline 'base.yaml' not found beside 'fx/uses.yaml' or in the search path (-I, PLUMB_PIPELINES)"
	run -2 --separate-stderr dagrun lint -I fx/lib fx/uses.yaml
	assert_equal "$stderr" "fx/uses.yaml:4:3: unknown param 'time' in 'with' (did you mean 'times'?)"
	PLUMB_PIPELINES=/nonexistent:fx/lib run -2 --separate-stderr dagrun lint fx/uses.yaml
	[[ "$stderr" == *"unknown param 'time' in 'with'"* ]]
	run -2 --separate-stderr dagrun lint -I fx/lib fx/uses-bad.yaml
	assert_equal "$stderr" "fx/uses-bad.yaml:3:10: param 'times' must be an int, not 'many'"
	run -0 dagrun lint -I fx/lib fx/uses-ok.yaml
	# the using file replaced bye and added extra
	run -0 dagrun graph -I fx/lib fx/uses-ok.yaml
	assert_output --partial '"hello" -> "bye";'
	assert_output --partial '"bye" -> "extra";'
}

@test "the shipped pipelines lint, the example through -I and PLUMB_PIPELINES" {
	run -0 dagrun lint pipelines/rag-index.yaml
	run -2 --separate-stderr dagrun lint pipelines/examples/project.yaml
	[[ "$stderr" == *"pipeline 'rag-index.yaml' not found"* ]]
	run -0 dagrun lint -I pipelines pipelines/examples/project.yaml
	PLUMB_PIPELINES=$PWD/pipelines run -0 dagrun lint pipelines/examples/project.yaml
	run -0 dagrun lint -I pipelines -p backend=http -p parallelism=8 pipelines/examples/project.yaml
	run -2 --separate-stderr dagrun lint -I pipelines -p backend=gpu pipelines/examples/project.yaml
	[[ "$stderr" == *"param 'backend' must be one of hash, http"* ]]
}

@test "graph draws DOT" {
	run -0 dagrun graph fx/ok.yaml
	assert_output 'digraph "small" {
	rankdir=LR;
	node [shape=box];
	"a";
	"b" [shape=box3d, label="b\n(each line of a)"];
	"c";
	"on_exit" [shape=octagon];
	"a" -> "b" [style=bold, label="each"];
	"b" -> "c" [style=dashed];
	"a" -> "c" [style=dashed];
	"c" -> "on_exit" [style=dotted];
}'
	PLUMB_GRAPH_FORMAT=dot run -0 dagrun graph fx/ok.yaml
	assert_line --index 0 'digraph "small" {'
}

@test "graph draws Mermaid" {
	run -0 dagrun graph --format mermaid fx/ok.yaml
	assert_output 'flowchart LR
    t0["a"]
    t1[["b (each line of a)"]]
    t2["c"]
    t3{{"on_exit"}}
    t0 ==>|each| t1
    t1 -.-> t2
    t0 -.-> t2
    t2 -.- t3'
	PLUMB_GRAPH_FORMAT=mermaid run -0 dagrun graph fx/ok.yaml
	assert_line --index 0 'flowchart LR'
}

@test "graph refuses an invalid pipeline with its errors" {
	run -2 --separate-stderr dagrun graph fx/cycle.yaml
	[ -z "$output" ]
	[[ "$stderr" == *"cycle: a -> b -> c -> a"* ]]
}

@test "graph output errors are reported" {
	[ -w /dev/full ] || skip "no /dev/full"
	run -70 --separate-stderr bash -c 'dagrun graph fx/ok.yaml > /dev/full'
	[[ "$stderr" == *"write error"* ]]
}

@test "the examples in dagrun(1) run" {
	n=0
	while IFS= read -r cmd; do
		run -0 bash -o pipefail -c "$cmd"
		n=$((n + 1))
	done < <(man_examples "$T_ROOT/docs/dagrun.1")
	[ "$n" -ge 4 ]
}

@test "the examples in pipeline-format(7) lint" {
	n=0
	mkdir -p ex
	# each example is between .EX and .EE after a '.\" lint: NAME' comment
	while IFS= read -r name; do
		sed -n "/^\\.\\\\\" lint: $name\$/,/^\\.EE/p" "$T_ROOT/docs/pipeline-format.7" |
			sed '1,2d;$d' | sed 's/\\e/\\/g; s/\\-/-/g' > "ex/$name"
		[ -s "ex/$name" ]
		run -0 --separate-stderr dagrun lint -I ex "ex/$name"
		n=$((n + 1))
	done < <(sed -n 's/^\.\\" lint: //p' "$T_ROOT/docs/pipeline-format.7")
	[ "$n" -ge 3 ]
	run -0 --separate-stderr groff -man -ww -z "$T_ROOT/docs/pipeline-format.7"
	[ -z "$stderr" ]
}
