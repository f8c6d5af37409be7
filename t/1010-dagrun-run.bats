#!/usr/bin/env bats
# dagrun run: local processes in dependency order, stdin from upstream
# outputs, outputs and templates, gates, depends on outcomes, retries,
# timeouts, parallelism, on_exit, the run directory and its journal.

load test_helper

F=$T_FIXTURES/dagrun-run

local_setup() {
	cp "$F"/*.yaml .
}

# The events of a run's journal as "event task status exit attempt" lines.
events() {
	jq -r '[.event, .task // "-", .status // "-", (.exit // "-" | tostring), (.attempt // "-" | tostring)] | join(" ")' \
		".plumb/runs/$1/journal.jsonl"
}

@test "run: dependency order, stdin from needs in order, env templates, on_exit" {
	run -0 --separate-stderr dagrun run basic.yaml --run-id r1 -p n=4
	[ -z "$output" ]
	assert_equal "$(cat .plumb/runs/r1/tasks/gen.out)" "$(seq 4)"
	assert_equal "$(cat .plumb/runs/r1/tasks/sum.out)" "$(seq 4; echo A; echo 'sum of 4 in r1')"
	assert_equal "$(tail -1 count)" sum
	assert_equal "$(sort count | tr '\n' ' ')" "a gen sum "
	assert_equal "$(cat on_exit.txt)" "Succeeded 0"
	[[ "$stderr" == *"dagrun: gen: started"* ]]
	[[ "$stderr" == *"dagrun: sum: Succeeded"* ]]
	[[ "$stderr" == *"dagrun: run r1: Succeeded" ]]
	assert_equal "$(cat .plumb/runs/r1/pid)" "$(jq -r 'select(.event=="run_started") | .pid' .plumb/runs/r1/journal.jsonl)"
	run -0 jq -se 'length == 10 and .[0].event == "run_started" and .[0].id == "r1" and
		.[-1] == (.[-1] | .event = "run_finished" | .status = "Succeeded" | .failures = 0)' \
		.plumb/runs/r1/journal.jsonl
}

@test "run: plain 'dagrun FILE', --quiet, PLUMB_RUNS_DIR, --runs-dir and a default run id" {
	run -0 --separate-stderr dagrun basic.yaml --quiet
	[ -z "$stderr" ]
	run -0 ls .plumb/runs
	assert_output --regexp '^[0-9]{8}T[0-9]{6}-[0-9]+$'
	PLUMB_RUNS_DIR=elsewhere run -0 dagrun basic.yaml --run-id x --quiet
	[ -f elsewhere/x/journal.jsonl ]
	run -0 dagrun basic.yaml --run-id y --runs-dir other --quiet
	assert_equal "$(cat other/y/tasks/gen.out)" "$(seq 3)"
	run -2 --separate-stderr dagrun basic.yaml --run-id y --runs-dir other
	assert_equal "$stderr" "dagrun: run 'y' exists in 'other'"
	run -2 --separate-stderr dagrun basic.yaml --run-id a/b
	assert_equal "$stderr" "dagrun: bad run id 'a/b'"
}

@test "run: an invalid pipeline is not run: its lint errors, exit 2" {
	printf 'tasks:\n  a:\n    needs: [b]\n    run: echo a > ran\n' > bad.yaml
	run -2 --separate-stderr dagrun run bad.yaml
	assert_equal "$stderr" "bad.yaml:3:13: unknown task 'b' in 'needs'"
	[ ! -e ran ] && [ ! -e .plumb ]
	run -2 --separate-stderr dagrun run basic.yaml -p n=many
	assert_equal "$stderr" "basic.yaml:3:3: -p 'n=many': param 'n' must be an int"
}

@test "run: a gate on a JSON output is false, so the task is skipped and the run succeeds" {
	run -0 --separate-stderr dagrun run gate.yaml --run-id g
	assert_equal "$(cat count)" "train
evaluate"
	[[ "$stderr" == *"dagrun: publish: Skipped (when is false)"* ]]
	[[ "$stderr" == *"dagrun: alert: Skipped (depends is false)"* ]]
	assert_equal "$(cat .plumb/runs/g/tasks/report.out)" "well done/4/header/Skipped"
	assert_equal "$(cat .plumb/runs/g/tasks/train.log)" "epoch 1"
	assert_equal "$(cat on_exit.txt)" "Succeeded 0"
	run -0 events g
	assert_line "task_finished publish Skipped - -"
	assert_line "task_finished train Succeeded 0 1"
	assert_line "run_finished - Succeeded - -"
}

@test "run: a true gate runs the task" {
	run -0 dagrun run gate.yaml --run-id g -p threshold=0.5 --quiet
	assert_equal "$(cat .plumb/runs/g/tasks/publish.out)" published
	assert_equal "$(cat .plumb/runs/g/tasks/report.out)" "well done/4/header/Succeeded"
	assert_equal "$(sort count | tr '\n' ' ')" "evaluate publish train "
}

@test "run: a failed branch triggers the alert task through depends, the run fails" {
	run -1 --separate-stderr dagrun run gate.yaml --run-id g -p fail=1
	assert_equal "$(cat count)" "train
alert"
	assert_equal "$(cat .plumb/runs/g/tasks/alert.out)" "alert Failed"
	[[ "$stderr" == *"dagrun: train: Failed (exit 1)"* ]]
	[[ "$stderr" == *"dagrun: evaluate: Skipped (an upstream task did not succeed)"* ]]
	[[ "$stderr" == *"dagrun: run g: Failed" ]]
	assert_equal "$(cat on_exit.txt)" "Failed 1"
	run -0 events g
	assert_line "task_finished train Failed 1 1"
	assert_line "task_finished alert Succeeded 0 1"
	assert_line "run_finished - Failed - -"
}

@test "run: retries on transient failures, exhausted, widened, a child killed by a signal, a timeout" {
	PLUMB_KILL_GRACE=0.2 run -1 --separate-stderr dagrun run retry.yaml --run-id r
	assert_equal "$(lines flaky.count)" 3
	assert_equal "$(cat .plumb/runs/r/tasks/flaky.out)" ok
	assert_equal "$(lines permanent.count)" 1
	assert_equal "$(lines widened.count)" 3
	assert_equal "$(lines killed.count)" 2
	assert_equal "$(lines slow.count)" 1
	[ ! -e after.count ]
	[[ "$stderr" == *"dagrun: killed: Failed (signal 9), retrying"* ]]
	[[ "$stderr" == *"dagrun: killed: started (attempt 2)"* ]]
	[[ "$stderr" == *"dagrun: slow: Failed (exit 137, timed out)"* ]]
	run -0 events r
	assert_line "task_finished flaky Failed 75 1"
	assert_line "task_finished flaky Failed 75 2"
	assert_line "task_finished flaky Succeeded 0 3"
	assert_line "task_finished killed Failed 137 2"
	assert_line "task_finished widened Failed 1 3"
	assert_line "task_finished after Skipped - -"
	assert_line "run_finished - Failed - -"
	run -0 jq -c 'select(.task == "slow" and .event == "task_finished") | [.exit, .timeout]' \
		.plumb/runs/r/journal.jsonl
	assert_output "[137,true]"
	run -0 jq -r 'select(.task == "flaky" and .event == "task_finished") | .retry // false' \
		.plumb/runs/r/journal.jsonl
	assert_output "true
true
false"
}

@test "run: a timeout ends with SIGTERM when the task heeds it" {
	printf 'tasks:\n  t:\n    timeout: 100ms\n    run: sleep 30\n' > t.yaml
	SECONDS=0
	run -1 --separate-stderr dagrun run t.yaml --run-id t
	[ "$SECONDS" -lt 5 ]
	[[ "$stderr" == *"dagrun: t: Failed (exit 143, timed out)"* ]]
}

@test "run: pipeline parallelism bounds the tasks running at once" {
	run -0 dagrun run parallel.yaml --quiet
	assert_equal "$(grep -c s ev)" 4
	# never more than two started and not yet ended
	run -0 awk '/s/ { n++; if (n > m) m = n } /e/ { n-- } END { print m }' ev
	assert_output 2
}

@test "each: over a list of maps, a JSON array param, a range in batches; fan-in in item order" {
	run -0 --separate-stderr dagrun run fanout.yaml --run-id f
	assert_equal "$(cat .plumb/runs/f/tasks/gather.out)" "small=1
large=8
shard s1
shard s2
shard s3
[0 2] 
2
[4 6] 
2
[8] 
1"
	assert_equal "$(lines models.count)" 2
	assert_equal "$(cat .plumb/runs/f/tasks/shards/1.out)" "shard s2"
	assert_equal "$(cat .plumb/runs/f/tasks/ranges/2.out)" "[8] 
1"
	[[ "$stderr" == *"dagrun: ranges: Succeeded (3 of 3 children succeeded)"* ]]
	# parallelism: "{{params.par}}" = 2 children of ranges at once
	run -0 awk '/s/ { n++; if (n > m) m = n } /e/ { n-- } END { print m }' ranges.ev
	assert_output 2
	run -0 jq -c 'select(.task == "shards" and .event == "task_finished" and .child == null)' \
		.plumb/runs/f/journal.jsonl
	assert_output --partial '"status":"Succeeded","children":3,"succeeded":3}'
	run -0 dagrun run fanout.yaml --run-id g --quiet -p 'shards=["a"]'
	assert_equal "$(grep shard .plumb/runs/g/tasks/gather.out)" "shard a"
}

@test "each over a task's output lines is streamed: children start while it runs" {
	run -0 --separate-stderr dagrun run stream.yaml --run-id s
	assert_equal "$(cat .plumb/runs/s/tasks/produce.log)" "saw the first child"
	assert_equal "$(cat .plumb/runs/s/tasks/fanin.out)" "LINE 1
LINE 2
LINE 3
LINE 4
LINE 5
LINE 6
LINE 7"
	assert_equal "$(lines work.count)" 4
	assert_equal "$(cat .plumb/runs/s/tasks/work/3.out)" "LINE 7"
	[[ "$stderr" == *"dagrun: work/3: Succeeded"* ]]
}

@test "min_success lets part of a fan-out fail; without it one failed child fails the task" {
	run -1 --separate-stderr dagrun run partial.yaml --run-id p
	[[ "$stderr" == *"dagrun: shards: Succeeded (2 of 4 children succeeded)"* ]]
	[[ "$stderr" == *"dagrun: strict: Failed (1 of 2 children succeeded)"* ]]
	assert_equal "$(cat .plumb/runs/p/tasks/after.out)" "ok 1
ok 2"
	run -0 jq -r 'select(.event == "task_finished" and .task == "shards" and .child != null) | "\(.child) \(.status)"' \
		.plumb/runs/p/journal.jsonl
	assert_line "2 Failed"
	assert_line "0 Succeeded"
}

# Wait until file $1 has $2 lines (up to 5 s).
wait_lines() {
	for _ in $(seq 100); do
		[ -e "$1" ] && [ "$(lines "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

@test "status, list and logs read the run directory" {
	run -1 dagrun run gate.yaml --run-id g1 -p fail=1 --quiet
	run -0 dagrun run basic.yaml --run-id g2 --quiet
	run -0 dagrun list
	assert_output "g1	Failed	gate
g2	Succeeded	basic"
	run -0 dagrun status g1
	assert_output "run g1 Failed failures 1
train Failed exit 1 attempts 1
evaluate Skipped
publish Skipped
report Skipped
alert Succeeded exit 0 attempts 1
on_exit Succeeded exit 0 attempts 1"
	run -0 dagrun status
	assert_line --index 0 "run g2 Succeeded failures 0"
	run -0 dagrun run partial.yaml --run-id p --quiet --runs-dir r2 || true
	run -0 dagrun status p --runs-dir r2
	assert_line "shards Succeeded children 2/4"
	assert_line "strict Failed children 1/2"
	run -0 --separate-stderr dagrun logs g1 train
	assert_output "epoch 1"
	run -0 dagrun run fanout.yaml --run-id f --quiet
	run -0 dagrun logs f shards/1
	assert_output ""
	run -2 --separate-stderr dagrun logs f shards/9
	assert_equal "$stderr" "dagrun: no log of 'shards/9' in run 'f'"
	run -2 --separate-stderr dagrun status nosuch
	assert_equal "$stderr" "dagrun: no run 'nosuch' in '.plumb/runs'"
	run -2 --separate-stderr dagrun status --runs-dir empty
	assert_equal "$stderr" "dagrun: no runs in 'empty'"
}

@test "resume after kill -9: nothing that succeeded runs again, nothing is lost" {
	dagrun run crash.yaml --run-id c 2>/dev/null &
	pid=$!
	wait_lines shards.count 4
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" || true
	run -0 dagrun status c
	# last reads the fan-out's output as it is assembled: it was running too
	assert_output "run c Stopped
first Succeeded exit 0 attempts 1
shards Running children 2/4
last Running"
	run -2 --separate-stderr dagrun run crash.yaml --run-id c
	touch resumed
	run -0 --separate-stderr dagrun resume c
	[[ "$stderr" == *"dagrun: first: Succeeded before"* ]]
	[[ "$stderr" == *"dagrun: shards/1: Succeeded before"* ]]
	[[ "$stderr" == *"dagrun: shards/2: started"* ]]
	# first and children 1 and 2 ran once, children 3 and 4 twice, and last,
	# which had not finished, twice
	assert_equal "$(lines first.count)" 1
	assert_equal "$(sort shards.count | tr '\n' ' ')" "1 2 3 3 4 4 "
	assert_equal "$(lines last.count)" 2
	assert_equal "$(cat .plumb/runs/c/tasks/last.out)" "shard 1
shard 2
shard 3
shard 4"
	run -0 dagrun status c
	assert_line --index 0 "run c Succeeded failures 0"
	run -0 jq -r .event .plumb/runs/c/journal.jsonl
	assert_line run_resumed
	# the children dagrun left running were ended
	run -1 pgrep -f 'sleep 31'
}

@test "stop and SIGINT: running tasks are ended, the run is interrupted, on_exit runs" {
	dagrun run long.yaml --run-id s 2>stderr &
	pid=$!
	wait_lines long.count 1
	run -0 dagrun status s
	assert_output "run s Running
long Running"
	run -0 dagrun stop s
	wait "$pid" && status=0 || status=$?
	assert_equal "$status" 143
	assert_equal "$(cat on_exit.txt)" "Interrupted 1"
	[ ! -e next.count ]
	grep -qx "dagrun: interrupted: stopping" stderr
	run -0 dagrun status s
	assert_output "run s Interrupted failures 1
long Failed exit 143 attempts 1
next Skipped
on_exit Succeeded exit 0 attempts 1"
	run -1 --separate-stderr dagrun stop s
	assert_equal "$stderr" "dagrun: run 's' is not running (Interrupted)"
	# SIGINT to dagrun itself does the same
	rm long.count
	dagrun run long.yaml --run-id i 2>/dev/null &
	pid=$!
	wait_lines long.count 1
	kill -INT "$pid"
	wait "$pid" && status=0 || status=$?
	assert_equal "$status" 130
	run -0 jq -r 'select(.event == "run_finished") | .status' .plumb/runs/i/journal.jsonl
	assert_output Interrupted
}

@test "each over no items succeeds; min_success 1.0 means every item, 1 means one" {
	run -0 --separate-stderr dagrun run empty-fanout.yaml --run-id e0
	assert_equal "$(cat .plumb/runs/e0/tasks/after.out)" "done"
	[[ "$stderr" == *"all: Succeeded (0 of 0 children succeeded)"* ]]
	# three items: "one" has a failing child but needs only one success
	run -0 --separate-stderr dagrun run empty-fanout.yaml --run-id e3 -p lines=3
	[[ "$stderr" == *"one: Succeeded (2 of 3 children succeeded)"* ]]
	# and "1.0" demands them all
	sed -i 's/run: cat/run: "read x; [ $x -ne 3 ]"/' empty-fanout.yaml
	run -1 --separate-stderr dagrun run empty-fanout.yaml --run-id e4 -p lines=3
	[[ "$stderr" == *"all: Failed (2 of 3 children succeeded)"* ]]
}
