#!/usr/bin/env bats
# dagrun --store: the same pipelines with every output in Redis (a real
# redis-server), each attempt run under `dagrun step`, as the Kubernetes
# executor runs them: the same outputs as with files, streamed fan-out and
# fan-in through the store, a retried upstream, a failed fan-out's reader,
# TTLs, resume after kill -9.

load test_helper

setup_file() {
	start_redis
}

teardown_file() {
	stop_redis
}

local_setup() {
	cp "$T_FIXTURES"/dagrun-run/*.yaml "$T_FIXTURES"/dagrun-flow/*.yaml .
}

# the outputs of run $2 in runs directory $1 as "file: content" lines
outputs() {
	(cd "$1/$2/tasks" && for f in *.out; do echo "$f: $(cat "$f" | tr '\n' '|')"; done)
}

@test "the same pipelines give the same outputs through the store as through files" {
	for f in basic fanout stream big; do
		rm -f *.count *.ev started-* ev
		run -0 dagrun run $f.yaml --run-id "$f" --runs-dir files --quiet
		rm -f *.count *.ev started-* ev
		run -0 dagrun run $f.yaml --run-id "$f" --runs-dir store --quiet --store "$REDIS_URL"
		assert_equal "$(outputs store "$f")" "$(outputs files "$f")"
	done
	# the outputs are in Redis, with the run's TTL (7 days by default)
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern 'plumb:{fanout}:*'
	[ "${#lines[@]}" -gt 10 ]
	ttl=$(redis-cli -p "$REDIS_PORT" ttl "${lines[0]}")
	[ "$ttl" -gt 600000 ] && [ "$ttl" -le 604800 ]
}

@test "fan-in through the store is streamed: the reader has child 1's output while the fan-out runs" {
	run -0 dagrun run fanin.yaml --run-id f --quiet --store "$REDIS_URL" --store-ttl 3600
	assert_equal "$(cat .plumb/runs/f/tasks/reader.out)" "shard 0
shard 1
shard 2
shard 3 after the reader saw 1"
	key=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'plumb:{f}:*' | head -1)
	ttl=$(redis-cli -p "$REDIS_PORT" ttl "$key")
	[ "$ttl" -gt 3000 ] && [ "$ttl" -le 3600 ]
}

@test "through the store, a reader of a fan-out that fails is ended and fails" {
	run -1 --separate-stderr dagrun run fanin-fail.yaml --run-id f --store "$REDIS_URL"
	[ ! -e reader-finished ]
	[[ "$stderr" == *"dagrun: reader: Failed"* ]]
	[[ "$stderr" == *"dagrun: after: Skipped (an upstream task did not succeed)"* ]]
}

@test "through the store, a fan-out keeps the lines a retried upstream writes again, and fails on others" {
	run -0 dagrun run upretry.yaml --run-id u --quiet --store "$REDIS_URL"
	assert_equal "$(lines work.count)" 3
	assert_equal "$(cat .plumb/runs/u/tasks/work.out)" "got line 1
got line 2
got line 3"
	rm -f attempt-1 started-* work.count
	run -1 --separate-stderr dagrun run upretry.yaml --run-id u2 -p second=other --store "$REDIS_URL"
	[[ "$stderr" == *"dagrun: work: Failed (its upstream's retry wrote other lines than the children were given)"* ]]
}

@test "through the store, resume after kill -9 runs nothing again that succeeded" {
	dagrun run crash.yaml --run-id c --store "$REDIS_URL" 2>/dev/null &
	pid=$!
	for _ in $(seq 100); do [ -e shards.count ] && [ "$(lines shards.count)" -ge 4 ] && break; sleep 0.05; done
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" || true
	touch resumed
	# the store is remembered with the run
	run -0 --separate-stderr dagrun resume c
	assert_equal "$(lines first.count)" 1
	assert_equal "$(sort shards.count | tr '\n' ' ')" "1 2 3 3 4 4 "
	assert_equal "$(cat .plumb/runs/c/tasks/last.out)" "shard 1
shard 2
shard 3
shard 4"
}

@test "--store wants a Redis URL; an unreachable one is a clear error" {
	run -2 --separate-stderr dagrun run basic.yaml --store /tmp/x
	[[ "$stderr" == "dagrun: --store '/tmp/x': want redis://host[:port][/db]"* ]]
	run -70 --separate-stderr dagrun run basic.yaml --run-id down --store "redis://127.0.0.1:$(free_port)"
	[[ "$stderr" == *"dagrun: run 'down':"* ]]
}

@test "dagrun step runs one attempt against the store, as a Pod does" {
	run -0 dagrun run basic.yaml --run-id s --quiet --store "$REDIS_URL"
	run -0 dagrun step --store "$REDIS_URL" --run s --task extra --input gen.out -- 'wc -l'
	run -0 redis-cli -p "$REDIS_PORT" --scan --pattern 'plumb:{s}:c:extra.out*'
	[ -n "$output" ]
	run -2 --separate-stderr dagrun step --store "$REDIS_URL" --task x -- true
	[[ "$stderr" == *"step needs --store, --run and --task"* ]]
	run -2 --separate-stderr dagrun step --store "$REDIS_URL" --run nosuchrun --task x -- true
	[[ "$stderr" == *"dagrun: step x:"* ]]
}
