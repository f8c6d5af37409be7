#!/usr/bin/env bats
# lib/exec_k8s.c, dagrun's Kubernetes executor, against the Kubernetes test
# server (t/k8s-server.py, which plays the kubelet), through the live mode of
# its unit test (t/unit/exec_k8s.c): the executor is driven as the scheduler
# drives it (start, poll its descriptors, reap, signal), with attempts that
# run "/bin/sh -c CMD" without the in-Pod shim. Every Pod manifest it sent is
# checked against the official core/v1 schema (npm kubernetes-models). The
# tests of a watch that fails for good also run dagrun itself, with its Pods'
# shim and outputs through a real redis-server.

load test_helper

setup_file() {
	start_redis
	start_k8s_cluster wf
}

teardown_file() {
	stop_k8s_server
	stop_redis
}

local_setup() {
	unit=""
	for u in ${PLUMB_UNITS:-}; do
		if [[ "$u" == */exec_k8s ]]; then unit=$u; fi
	done
}

live() {
	[ -n "$unit" ] || skip "run through make check (PLUMB_UNITS)"
	run "$unit" live "$1" "$KSRV" "$KDIR/tls"
	echo "$output"	# shown when the test fails
	[ "$status" -eq 0 ]
	refute_output --partial "not ok"
	assert_output --regexp $'\n1\\.\\.[1-9][0-9]*$'
}

@test "k8s executor: exit codes, logs into the run directory (appended per attempt), env, on-success GC, ends reported as they happen" {
	live codes
}

@test "k8s executor: --pod-gc on-completion deletes every ended Pod, never keeps them all" {
	live gc
}

@test "k8s executor: OOMKilled, Evicted (transient), DeadlineExceeded, ImagePullBackOff and a missing Secret past the pending timeout, env from Secrets" {
	live outcomes
}

@test "k8s executor: SIGTERM and SIGKILL delete the Pod (also one whose create is in flight); its log up to then is kept" {
	live signals
}

@test "k8s executor: a Pod the API server refuses (400, 403) fails its attempt with the reason, and the executor goes on" {
	live invalid
}

@test "k8s executor: 409 on create adopts the existing Pod (lost answers, resume after dagrun died); never a second copy" {
	live adopt
}

@test "k8s executor: deleting the run's ConfigMap deletes its Pods (ownerReferences); their attempts end as lost" {
	live owner
}

@test "k8s executor: an ERROR 410 inside the watch re-lists and loses no Pod's end" {
	live gone
}

@test "k8s executor: a dropped watch reconnects and loses no Pod's end" {
	live drop
}

@test "k8s executor: a watch answered 403 for good (the Role lost its rights mid-run) ends every attempt in flight, failed with the answer, Pods deleted, nothing left waiting; a later attempt watches anew" {
	live watchfail
}

@test "k8s executor: a watch failing with 500s is given up once failures have gone on for the bound" {
	live watchtime
}

@test "k8s executor: bursts of 403s and 500s, each shorter than the limits, are forgiven by the events between them" {
	live watchflap
}

@test "k8s executor: connection errors past the bound are checked with a LIST first: watches that are always dropped give nothing up (the LISTs show the ends); LISTs dropped too do" {
	live watchconn
}

@test "k8s executor: 429 with Retry-After on create is waited out" {
	live retry
}

@test "k8s executor: Pods are created at --qps 20 within 10%" {
	live qps
}

@test "k8s executor: configuration errors: no kubeconfig, no run id, the run's ConfigMap refused or already there" {
	live config
}

@test "k8s executor: every Pod manifest it sent is valid against the official core/v1 schema" {
	[ -s "$KDIR/manifests.jsonl" ] || skip "no manifests: the live tests did not run"
	npm_dir=$("$T_ROOT/t/npm/install") || skip "npm peers not available"
	run -0 node "$T_ROOT/t/helpers/k8s-validate.mjs" "$npm_dir" "$KDIR/manifests.jsonl"
	assert_output --regexp '^ok [0-9]+$'
	# they are the executor's: labelled, owned by the run's ConfigMap, restartPolicy Never
	run -0 python3 -c '
import json, sys
pods = [json.loads(l) for l in open(sys.argv[1])]
bad = [p["metadata"]["name"] for p in pods
       if p["spec"]["restartPolicy"] != "Never"
       or not p["metadata"]["labels"].get("plumb.dev/run")
       or p["metadata"]["ownerReferences"][0]["kind"] != "ConfigMap"
       or p["spec"].get("automountServiceAccountToken") is not False]
print(len(pods), bad)' "$KDIR/manifests.jsonl"
	assert_output --regexp '^[1-9][0-9]+ \[\]$'
	# what the server refused (the bad quantity), the schema refuses too
	[ -s "$KDIR/manifests.jsonl.rejected" ]
	run -1 node "$T_ROOT/t/helpers/k8s-validate.mjs" "$npm_dir" "$KDIR/manifests.jsonl.rejected"
	assert_output --partial 'resources/limits/memory must match format "quantity"'
}

# --- dagrun, when the watch of its Pods fails for good -------------------------

ctl() {	# METHOD PATH [JSON]: the test server's control endpoints
	curl -sf --cacert "$KDIR/tls/ca.crt" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
		"$KSRV$2" > /dev/null
}

pods() {	# the Pods of run $1 at the server: "name phase" lines
	curl -sf --cacert "$KDIR/tls/ca.crt" -H 'Authorization: Bearer secret' \
		"$KSRV/api/v1/namespaces/wf/pods?labelSelector=plumb.dev%2Frun%3D$1" |
		jq -r '.items[] | "\(.metadata.name) \(.status.phase)"'
}

# dagrun run in the background, for run id $1 (more arguments follow)
start_dagrun() {
	local id=$1
	shift
	KUBECONFIG=$KDIR/kubeconfig dagrun run --executor k8s --store "$REDIS_URL" --image plumb:test \
		--run-id "$id" "$@" > "$id.stdout" 2> "$id.stderr" &
	dpid=$!
}

# until task $2 of run $1 runs in its Pod
until_task_runs() {
	for _ in $(seq 300); do
		pods "$1" | grep -q "^$1-$2-.* Running$" && return 0
		sleep 0.1
	done
	return 1
}

# until dagrun (run $1) ends, at most $2 seconds; sets dstatus and dtime
wait_dagrun() {
	local t0=$SECONDS
	for _ in $(seq $(($2 * 10))); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$dpid" 2>/dev/null; then
		kill "$dpid"
		wait "$dpid" || true
		cat "$1.stderr"
		echo "dagrun did not end in $2 s"
		return 1
	fi
	wait "$dpid" && dstatus=0 || dstatus=$?
	dtime=$((SECONDS - t0))
}

FORBIDDEN='{"query": "labelSelector=plumb.dev", "status": 403, "times": 0, "reason": "Forbidden",
 "message": "pods is forbidden: User \"system:serviceaccount:wf:plumb-dagrun\" cannot watch resource \"pods\" in API group \"\" in the namespace \"wf\""}'

@test "dagrun --executor k8s: the Role loses list and watch mid-run: the run ends failed in seconds, the reason in its journal and logs, on_exit run, no Pod left running, no retry of exit 2" {
	ctl POST /__reset
	cat > p.yaml <<-'Y'
	tasks:
	  first:
	    run: echo one
	  slow:
	    needs: [first]
	    retry: {limit: 2, backoff: 100ms}
	    run: echo slow-started >&2; sleep 60; echo slow-done
	on_exit:
	  run: echo "on_exit {{run.status}}"
	Y
	start_dagrun wf403 p.yaml
	until_task_runs wf403 slow
	ctl POST /__faults "$FORBIDDEN"
	ctl POST /__drop-watches
	wait_dagrun wf403 30
	cat wf403.stderr
	assert_equal "$dstatus" 1
	[ "$dtime" -le 15 ]
	grep -q "dagrun: slow: Failed (exit 2, WatchFailed: 403 Forbidden)" wf403.stderr
	run -0 jq -c 'select(.event == "task_finished" and (.task == "slow" or .task == "on_exit")) |
		[.task, .status, .exit, .reason, .retry]' .plumb/runs/wf403/journal.jsonl
	# exit 2 (a configuration error) is not transient: slow is not retried;
	# on_exit starts a new watch, which the API refuses the same way
	assert_output '["slow","Failed",2,"WatchFailed: 403 Forbidden",null]
["on_exit","Failed",2,"WatchFailed: 403 Forbidden",null]'
	run -0 jq -r 'select(.event == "run_finished") | .status' .plumb/runs/wf403/journal.jsonl
	assert_output Failed
	run -0 dagrun status wf403
	assert_line "slow Failed exit 2 attempts 1"
	run -0 dagrun logs wf403 slow
	assert_output --partial "slow-started"
	assert_output --partial 'the watch of pods failed for good: 403 Forbidden: pods is forbidden: User "system:serviceaccount:wf:plumb-dagrun" cannot watch resource "pods"'
	refute_output --partial "slow-done"
	# the Pods nobody could watch any more were deleted
	ctl DELETE /__faults
	for _ in $(seq 100); do [ -z "$(pods wf403 | grep -v Succeeded)" ] && break; sleep 0.1; done
	run -0 pods wf403
	refute_output --partial Running
	refute_output --partial Pending
}

@test "dagrun --executor k8s: a watch failing with 500s past PLUMB_WATCH_FAIL_TIMEOUT fails the attempt with exit 69, which retry retries with a new watch" {
	ctl POST /__reset
	cat > p.yaml <<-'Y'
	tasks:
	  slow:
	    retry: {limit: 1, backoff: 100ms}
	    run: echo slow-started >&2; sleep 60
	Y
	PLUMB_WATCH_FAIL_TIMEOUT=1 start_dagrun wf500 p.yaml
	until_task_runs wf500 slow
	ctl POST /__faults '{"query": "watch=true", "status": 500, "times": 0}'
	ctl POST /__drop-watches
	wait_dagrun wf500 40
	cat wf500.stderr
	assert_equal "$dstatus" 1
	[ "$dtime" -le 25 ]
	run -0 jq -c 'select(.event == "task_finished") | [.task, .exit, .attempt, .reason, .retry]' \
		.plumb/runs/wf500/journal.jsonl
	assert_output '["slow",69,1,"WatchFailed: 500 InternalError",true]
["slow",69,2,"WatchFailed: 500 InternalError",null]'
	run -0 dagrun logs wf500 slow
	assert_output --partial 'the watch of pods failed for good: 500 InternalError: Internal error occurred: injected fault (failing for '
	run -2 --separate-stderr dagrun run p.yaml --executor k8s --store "$REDIS_URL" --watch-fail-timeout 0
	[[ "$stderr" == "dagrun: --watch-fail-timeout '0': want seconds"* ]]
	PLUMB_WATCH_FAIL_TIMEOUT=soon run -2 --separate-stderr dagrun run p.yaml
	[[ "$stderr" == "dagrun: PLUMB_WATCH_FAIL_TIMEOUT 'soon': want seconds"* ]]
}

@test "dagrun --executor k8s: a few 500s and dropped watches mid-run are recovered from: the run succeeds" {
	ctl POST /__reset
	cat > p.yaml <<-'Y'
	tasks:
	  slow:
	    run: echo slow-started >&2; sleep 2; echo slow-done
	  after:
	    needs: [slow]
	    run: cat
	Y
	start_dagrun wfok p.yaml
	until_task_runs wfok slow
	ctl POST /__faults '{"query": "watch=true", "status": 500, "times": 3}'
	ctl POST /__drop-watches
	wait_dagrun wfok 30
	cat wfok.stderr
	assert_equal "$dstatus" 0
	assert_equal "$(cat .plumb/runs/wfok/tasks/after.out)" "slow-done"
	# the server did answer 500s, and dropped a watch
	run -0 bash -c "curl -sf --cacert '$KDIR/tls/ca.crt' '$KSRV/__log' | jq '[.log[] | select(.fault == 500)] | length'"
	assert_output 3
}
