#!/usr/bin/env bats
# dagrun: how data flows between tasks. Fan-in streamed while the fan-out
# runs, in item order, of any size; a reader of a fan-out that fails; the
# cache; a fan-out streaming over an upstream that is retried; events; the
# progress table on a terminal; commands run without a shell.

load test_helper

F=$T_FIXTURES/dagrun-flow

local_setup() {
	cp "$F"/*.yaml .
}

# "event task child status" lines of run $1's journal
events() {
	jq -r '[.event, .task // "-", (.child // "-" | tostring), .status // "-"] | join(" ")' \
		".plumb/runs/$1/journal.jsonl"
}

@test "fan-in is streamed: the reader gets children's output in item order while the fan-out runs" {
	run -0 --separate-stderr dagrun run fanin.yaml --run-id f
	assert_equal "$(cat .plumb/runs/f/tasks/reader.out)" "shard 0
shard 1
shard 2
shard 3 after the reader saw 1"
	assert_equal "$(cat .plumb/runs/f/tasks/shards.out)" "$(cat .plumb/runs/f/tasks/reader.out)"
	# the reader started before the fan-out finished
	run -0 events f
	assert_line --index 1 "task_started shards - -"
	run -0 jq -s '(map(.event == "task_started" and .task == "reader") | index(true)) <
		(map(.event == "task_finished" and .task == "shards" and .child == null) | index(true))' \
		.plumb/runs/f/journal.jsonl
	assert_output true
}

@test "a reader of a fan-out that fails is ended and fails: it never succeeds on part of it" {
	run -1 --separate-stderr dagrun run fanin-fail.yaml --run-id f
	[ ! -e reader-finished ]
	[[ "$stderr" == *"dagrun: shards: Failed (2 of 3 children succeeded)"* ]]
	[[ "$stderr" == *"dagrun: reader: Failed (an upstream task it was reading failed)"* ]]
	[[ "$stderr" == *"dagrun: after: Skipped (an upstream task did not succeed)"* ]]
	run -0 events f
	assert_line "task_finished reader - Failed"
	assert_line "run_finished - - Failed"
}

@test "a reader that uses the fan-out's outputs waits for its end" {
	run -0 dagrun run fanin-wait.yaml --run-id w --quiet
	assert_equal "$(cat .plumb/runs/w/tasks/reader.out)" "2 lines
shard 1
shard 2"
	run -0 jq -s '(map(.event == "task_started" and .task == "reader") | index(true)) >
		(map(.event == "task_finished" and .task == "shards" and .child == null) | index(true))' \
		.plumb/runs/w/journal.jsonl
	assert_output true
}

@test "fan-in of any size: 9 MB from three children, byte for byte" {
	run -0 dagrun run big.yaml --run-id b --quiet
	for c in a b c; do head -c 3000000 /dev/zero | tr '\0' $c; echo; done > expected
	cmp expected .plumb/runs/b/tasks/join.out
	cmp expected .plumb/runs/b/tasks/shards.out
}

@test "cache: a task or child whose command, environment and input succeeded before is not run" {
	run -0 --separate-stderr dagrun run cache.yaml --run-id c1
	assert_equal "$(lines make.count)" 1
	assert_equal "$(lines shards.count)" 3
	run -0 --separate-stderr dagrun run cache.yaml --run-id c2
	[[ "$stderr" == *"dagrun: make: Succeeded (cached)"* ]]
	[[ "$stderr" == *"dagrun: shards/2: Succeeded (cached)"* ]]
	assert_equal "$(lines make.count)" 1
	assert_equal "$(lines shards.count)" 3
	assert_equal "$(lines fresh.count)" 2
	assert_equal "$(cat .plumb/runs/c2/tasks/fresh.out)" "hello 1
hello 2
hello 3"
	run -0 jq -c 'select(.task == "make" and .event == "task_finished") | .cached' \
		.plumb/runs/c2/journal.jsonl
	assert_output true
	# a new item runs alone; a new input to the children runs them all again
	run -0 dagrun run cache.yaml --run-id c3 --quiet -p 'items=[1, 2, 3, 4]'
	assert_equal "$(lines shards.count)" 4
	run -0 dagrun run cache.yaml --run-id c4 --quiet -p word=bye
	assert_equal "$(lines make.count)" 2
	assert_equal "$(lines shards.count)" 7
	assert_equal "$(cat .plumb/runs/c4/tasks/fresh.out)" "bye 1
bye 2
bye 3"
	# and the cache lives where it is told to
	run -0 dagrun run cache.yaml --run-id c5 --quiet --cache-dir elsewhere
	assert_equal "$(lines make.count)" 3
	[ -n "$(find elsewhere -type f)" ]
	PLUMB_CACHE_DIR=elsewhere run -0 dagrun run cache.yaml --run-id c6 --quiet
	assert_equal "$(lines make.count)" 3
}

@test "a fan-out streams over an upstream that is retried: given lines are kept if the retry writes them again" {
	run -0 --separate-stderr dagrun run upretry.yaml --run-id u
	[[ "$stderr" == *"dagrun: produce: Failed (exit 75), retrying"* ]]
	# children 0 and 1 started during the first attempt and were not run again
	assert_equal "$(lines work.count)" 3
	assert_equal "$(cat .plumb/runs/u/tasks/work.out)" "got line 1
got line 2
got line 3"
}

@test "a fan-out fails when its retried upstream writes other lines than its children were given" {
	run -1 --separate-stderr dagrun run upretry.yaml --run-id u -p second=other
	[[ "$stderr" == *"dagrun: work: Failed (its upstream's retry wrote other lines than the children were given)"* ]]
	run -0 events u
	assert_line "task_finished work - Failed"
}

@test "--events writes the journal's events as they happen, to a file or stdout" {
	run -0 dagrun run fanin-wait.yaml --run-id e --quiet --events ev.jsonl
	cmp ev.jsonl .plumb/runs/e/journal.jsonl
	run -0 --separate-stderr dagrun run fanin-wait.yaml --run-id e2 --quiet --events -
	assert_equal "$output" "$(cat .plumb/runs/e2/journal.jsonl)"
	PLUMB_EVENTS=ev3.jsonl run -0 dagrun run fanin-wait.yaml --run-id e3 --quiet
	cmp ev3.jsonl .plumb/runs/e3/journal.jsonl
	run -2 --separate-stderr dagrun run fanin-wait.yaml --events nodir/ev.jsonl
	assert_equal "$stderr" "dagrun: cannot open 'nodir/ev.jsonl': No such file or directory"
}

@test "on a terminal, progress is a table of tasks with done, running, failed and rate" {
	script -qec "dagrun run fanin.yaml --run-id t" /dev/null > tty.out
	run -0 grep -a 'shards.*Succeeded.*4/4 done, 0 running, 0 failed' tty.out
	run -0 grep -a 'reader.*Succeeded' tty.out
	run -0 grep -a 'dagrun: run t: Succeeded' tty.out
	# per-child lines are left to the table
	run -1 grep -a 'shards/2: started' tty.out
}

@test "a command without shell syntax runs without a shell; a missing program is exit 127" {
	cat > p.yaml <<-'EOF'
	tasks:
	  a:
	    run: nosuchprogram --flag
	  b:
	    run: echo '{{"{{"}}x}}' $((1+2))
	EOF
	run -1 --separate-stderr dagrun run p.yaml --run-id p
	[[ "$stderr" == *"dagrun: a: Failed (exit 127)"* ]]
	assert_equal "$(cat .plumb/runs/p/tasks/a.log)" "dagrun: cannot run 'nosuchprogram': No such file or directory"
	assert_equal "$(cat .plumb/runs/p/tasks/b.out)" "{{x}} 3"
}

@test "fan-out children at once: the CPUs by default, PLUMB_FANOUT_PARALLELISM, or parallelism" {
	printf 'tasks:\n  f:\n    each: {from: 0, to: 6}\n    run: echo s >> ev; sleep 0.2; echo e >> ev\n' > f.yaml
	PLUMB_FANOUT_PARALLELISM=1 run -0 dagrun run f.yaml --quiet
	run -0 awk '/s/ { n++; if (n > m) m = n } /e/ { n-- } END { print m }' ev
	assert_output 1
	rm ev
	PLUMB_FANOUT_PARALLELISM=3 run -0 dagrun run f.yaml --quiet
	run -0 awk '/s/ { n++; if (n > m) m = n } /e/ { n-- } END { print m }' ev
	assert_output 3
}
