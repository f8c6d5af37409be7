#!/usr/bin/env bats
# lib/exec_k8s.c, dagrun's Kubernetes executor, against the Kubernetes test
# server (t/k8s-server.py, which plays the kubelet), through the live mode of
# its unit test (t/unit/exec_k8s.c): the executor is driven as the scheduler
# drives it (start, poll its descriptors, reap, signal), with attempts that
# run "/bin/sh -c CMD" without the in-Pod shim. Every Pod manifest it sent is
# checked against the official core/v1 schema (npm kubernetes-models).

load test_helper

setup_file() {
	start_k8s_server
}

teardown_file() {
	stop_k8s_server
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
