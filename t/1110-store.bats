#!/usr/bin/env bats
# dagrun's artifact store (lib/store.c) and in-Pod step shim (lib/step.c)
# against a real redis-server started here: the live mode of t/unit/store.c,
# and the shim run as a process through the driver in t/unit/step.c (what
# `dagrun step` calls), watched from outside while it runs.

load test_helper

setup_file() {
	start_redis
}

teardown_file() {
	stop_redis
}

local_setup() {
	store="" step=""
	for u in ${PLUMB_UNITS:-}; do
		case "$u" in
		*/store) store=$u ;;
		*/step) step=$u ;;
		esac
	done
	[ -n "$store" ] && [ -n "$step" ] || skip "run through make check (PLUMB_UNITS)"
	R="run$BATS_TEST_NUMBER"
}

# wait_until SHELL-CONDITION: up to 10 s
wait_until() {
	for _ in $(seq 200); do
		eval "$1" && return 0
		sleep 0.05
	done
	echo "timed out waiting for: $1"
	return 1
}

# live TEST...: the store's unit tests of those names, against this Redis
live() {
	run -0 "$store" live "$REDIS_URL" "$@"
	refute_output --partial "not ok"
	assert_output --regexp '1\.\.[1-9]'
}

@test "store: outputs written in pieces and read from any offset while they grow" {
	live basics pieces keys
}

@test "store: a retried attempt replaces an earlier one, atomically for readers" {
	live replace
}

@test "store: a fan-in spliced by reference from finished children, in order" {
	live splice
}

@test "store: a reader follows a writer that is still writing, woken by pub/sub" {
	live follow
}

@test "store: small values per task and child" {
	live values
}

@test "store: a TTL on every key, refreshed as outputs are written" {
	live ttl refresh
}

@test "store: expired, deleted and missing runs, bad URLs" {
	live expiry delete missing-run open-errors
}

@test "store: connections the server drops are made again, nothing lost or doubled" {
	live reconnect
}

@test "store: a 100 MB output in chunks of at most 64 KiB, client memory bounded" {
	live big
	assert_output --partial "1527 chunk keys, none over 65520 bytes"
}

@test "step: the output is in Redis while the command still runs" {
	run -0 "$step" create "$REDIS_URL" "$R"
	"$step" run --store "$REDIS_URL" --run "$R" --task t -- \
		'echo first; while [ ! -e go ]; do sleep 0.05; done; echo second' 3>&- &
	pid=$!
	wait_until '[ "$("$step" cat "$REDIS_URL" "$R" t.out)" = first ]'
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output --regexp '^gen=1 attempt=1 size=6 done=0 status=0$'
	kill -0 "$pid"
	touch go
	wait "$pid"
	run -0 "$step" cat "$REDIS_URL" "$R" t.out
	assert_output $'first\nsecond'
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output 'gen=1 attempt=1 size=13 done=1 status=0'
	run -0 "$step" get "$REDIS_URL" "$R" t exit
	assert_output 0
	# every key the step wrote expires (the default TTL: 7 days)
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern "plumb:{$R}:*"
	[ "${#lines[@]}" -ge 5 ]
	for k in "${lines[@]}"; do
		t=$(redis-cli -p "$REDIS_PORT" TTL "$k")
		[ "$t" -gt 600000 ] && [ "$t" -le 604800 ] || { echo "$k: TTL $t"; return 1; }
	done
}

@test "step: stdin is the upstream outputs in order, one still being written" {
	run -0 "$step" create "$REDIS_URL" "$R"
	{ echo b1; while [ ! -e go ]; do sleep 0.05; done; echo b2; } |
		"$step" write "$REDIS_URL" "$R" b.out 1 3>&- &
	wpid=$!
	printf 'a1\na2\n' | "$step" write "$REDIS_URL" "$R" a.out 1
	wait_until '"$step" stat "$REDIS_URL" "$R" b.out 2>/dev/null | grep -q size=3'
	"$step" run --store "$REDIS_URL" --run "$R" --task c --input b.out --input a.out -- \
		'cat; echo end' 3>&- &
	spid=$!
	# b's first line goes through at once; a, though finished, waits its turn
	wait_until '[ "$("$step" cat "$REDIS_URL" "$R" c.out)" = b1 ]'
	sleep 0.3
	run -0 "$step" cat "$REDIS_URL" "$R" c.out
	assert_output b1
	run -0 "$step" stat "$REDIS_URL" "$R" c.out
	assert_output --partial "done=0"
	touch go
	wait "$wpid"
	wait "$spid"
	run -0 "$step" cat "$REDIS_URL" "$R" c.out
	assert_output $'b1\nb2\na1\na2\nend'
	run -0 "$step" get "$REDIS_URL" "$R" c lines
	assert_output 5
}

@test "step: an upstream whose writer has not started yet is waited for" {
	run -0 "$step" create "$REDIS_URL" "$R"
	"$step" run --store "$REDIS_URL" --run "$R" --task d --input later.out -- 'tr a-z A-Z' 3>&- &
	spid=$!
	sleep 0.5
	kill -0 "$spid"
	echo hello | "$step" write "$REDIS_URL" "$R" later.out 1
	wait "$spid"
	run -0 "$step" cat "$REDIS_URL" "$R" d.out
	assert_output HELLO
}

@test "step: the exit status, and death by a signal as 128+n, are recorded" {
	run -0 "$step" create "$REDIS_URL" "$R"
	run -3 "$step" run --store "$REDIS_URL" --run "$R" --task t -- 'echo x; exit 3'
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output --partial "done=1 status=3"
	run -0 "$step" get "$REDIS_URL" "$R" t exit
	assert_output 3
	run -137 "$step" run --store "$REDIS_URL" --run "$R" --task t --child 2 -- 'kill -KILL $$'
	run -0 "$step" get "$REDIS_URL" "$R" t/2 exit
	assert_output 137
	run -0 "$step" get "$REDIS_URL" "$R" t/2 signal
	assert_output 9
	run -0 "$step" stat "$REDIS_URL" "$R" t/2.out
	assert_output --partial "size=0 done=1 status=137"
}

@test "step: SIGTERM is passed on to the command's process group" {
	run -0 "$step" create "$REDIS_URL" "$R"
	"$step" run --store "$REDIS_URL" --run "$R" --task t -- \
		"trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done" 3>&- &
	pid=$!
	wait_until '[ "$("$step" cat "$REDIS_URL" "$R" t.out)" = ready ]'
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 7 ]
	run -0 "$step" cat "$REDIS_URL" "$R" t.out
	assert_output $'ready\ngot TERM'
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output --partial "done=1 status=7"
}

@test "step: stderr goes to the log key and to the shim's own stderr" {
	run -0 "$step" create "$REDIS_URL" "$R"
	run -0 --separate-stderr "$step" run --store "$REDIS_URL" --run "$R" --task t -- \
		'echo out; echo err1 >&2; echo err2 >&2'
	assert_equal "$stderr" $'err1\nerr2'
	assert_output ""
	run -0 "$step" cat "$REDIS_URL" "$R" t.log
	assert_output $'err1\nerr2'
	run -0 "$step" cat "$REDIS_URL" "$R" t.out
	assert_output out
}

@test "step: a retried attempt replaces the first attempt's output and values" {
	run -0 "$step" create "$REDIS_URL" "$R"
	run -75 "$step" run --store "$REDIS_URL" --run "$R" --task t -- 'echo one; exit 75'
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task t --attempt 2 -- 'echo two'
	run -0 "$step" cat "$REDIS_URL" "$R" t.out
	assert_output two
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output 'gen=2 attempt=2 size=4 done=1 status=0'
	run -0 "$step" get "$REDIS_URL" "$R" t attempt
	assert_output 2
	# the first attempt's chunks are gone
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern "plumb:{$R}:c:t.out:1:*"
	assert_output ""
}

@test "step: a failed upstream stops the command with 75, and its readers are not left waiting" {
	run -0 "$step" create "$REDIS_URL" "$R"
	printf 'u1\n' | "$step" write "$REDIS_URL" "$R" up.out 1 1
	run -75 --separate-stderr "$step" run --store "$REDIS_URL" --run "$R" --task t \
		--input up.out -- 'cat; sleep 30'
	assert_equal "$stderr" "step: input 'up.out' failed (its writer ended with status 1)"
	run -0 "$step" stat "$REDIS_URL" "$R" t.out
	assert_output --partial "done=1 status=75"
	run -0 "$step" get "$REDIS_URL" "$R" t reason
	assert_output "input 'up.out' failed (its writer ended with status 1)"
}

@test "step: a missing run is a configuration error (2), an unreachable Redis unavailable (69)" {
	run -2 --separate-stderr "$step" run --store "$REDIS_URL" --run nope --task t -- true
	assert_equal "$stderr" "step: no run 'nope' in $REDIS_URL (never created, deleted or expired)"
	port=$(free_port)
	run -69 --separate-stderr "$step" run --store "redis://:pw@127.0.0.1:$port" --run x --task t -- true
	assert_output ""
	[[ "$stderr" == "step: redis redis://:***@127.0.0.1:$port: "* ]]
	run -2 --separate-stderr "$step" run --store "redis://127.0.0.1:$REDIS_PORT/x" --run x --task t -- true
	assert_equal "$stderr" "step: bad database number in Redis URL"
}

@test "step: 30 MB of output streams through in chunks, byte for byte" {
	run -0 "$step" create "$REDIS_URL" "$R"
	head -c 30000000 /dev/urandom > data
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task t -- 'cat data'
	"$step" cat "$REDIS_URL" "$R" t.out > got
	cmp data got
	run -0 "$step" get "$REDIS_URL" "$R" t bytes
	assert_output 30000000
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern "plumb:{$R}:c:t.out:*"
	[ "${#lines[@]}" -eq 458 ]
	for k in "${lines[@]:0:20}"; do
		[ "$(redis-cli -p "$REDIS_PORT" STRLEN "$k")" -le 65520 ]
	done
}

@test "step: a fan-in reads the children's outputs, spliced in order as they finish" {
	run -0 "$step" create "$REDIS_URL" "$R"
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task f --child 0 -- 'echo c0'
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task f --child 1 -- 'printf ""'
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task f --child 2 -- 'seq 3'
	{ printf 'f/0.out\n'; while [ ! -e go ]; do sleep 0.05; done; printf 'f/1.out\nf/2.out\n'; } |
		"$step" splice "$REDIS_URL" "$R" f.out 3>&- &
	wpid=$!
	"$step" run --store "$REDIS_URL" --run "$R" --task g --input f.out -- 'cat; echo end' 3>&- &
	spid=$!
	wait_until '[ "$("$step" cat "$REDIS_URL" "$R" g.out)" = c0 ]'
	kill -0 "$spid"
	touch go
	wait "$wpid"
	wait "$spid"
	run -0 "$step" cat "$REDIS_URL" "$R" g.out
	assert_output $'c0\n1\n2\n3\nend'
	# by reference: the fan-in has no chunk of its own
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern "plumb:{$R}:c:f.out:*"
	assert_output ""
}

@test "step: a fan-out child reads its batch, a byte range of an upstream still running" {
	run -0 "$step" create "$REDIS_URL" "$R"
	{ printf 'l1\nl2\nl3\n'; while [ ! -e go ]; do sleep 0.05; done; printf 'l4\n'; } |
		"$step" write "$REDIS_URL" "$R" up.out 1 3>&- &
	wpid=$!
	# lines 2-3 are there: the child runs and ends while its upstream goes on
	run -0 "$step" run --store "$REDIS_URL" --run "$R" --task fan --child 1 \
		--input 'up.out@3+6' -- 'tr l L'
	run -0 "$step" cat "$REDIS_URL" "$R" fan/1.out
	assert_output $'L2\nL3'
	run -0 "$step" stat "$REDIS_URL" "$R" up.out
	assert_output --partial "done=0"
	# line 4 is not there yet: the next child waits for it
	"$step" run --store "$REDIS_URL" --run "$R" --task fan --child 2 --input 'up.out@9+3' -- cat 3>&- &
	spid=$!
	sleep 0.3
	kill -0 "$spid"
	touch go
	wait "$wpid"
	wait "$spid"
	run -0 "$step" cat "$REDIS_URL" "$R" fan/2.out
	assert_output l4
}
