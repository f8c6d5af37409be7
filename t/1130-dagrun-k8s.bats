#!/usr/bin/env bats
# dagrun --executor k8s end to end: the pipelines that pass locally, each
# task and fan-out child a Pod created through the Kubernetes test server
# (t/k8s-server.py, which plays the kubelet by running the Pod's command: the
# in-Pod shim `dagrun step`), outputs through a real redis-server; a failing
# Pod, resume after kill -9 adopting the run's Pods, stop deleting them.

load test_helper

setup_file() {
	start_redis
	start_k8s_cluster e2e
}

teardown_file() {
	stop_k8s_server
	stop_redis
}

local_setup() {
	cp "$T_FIXTURES"/dagrun-run/*.yaml "$T_FIXTURES"/dagrun-flow/*.yaml .
	export KUBECONFIG=$KDIR/kubeconfig
}

k8s() { dagrun run --executor k8s --store "$REDIS_URL" --image plumb:test "$@"; }

pods() {	# the Pods of run $1 at the server: "name phase" lines
	curl -sf --cacert "$KDIR/tls/ca.crt" -H 'Authorization: Bearer secret' \
		"$KSRV/api/v1/namespaces/e2e/pods?labelSelector=plumb.dev%2Frun%3D$1" |
		jq -r '.items[] | "\(.metadata.name) \(.status.phase)"'
}

outputs() {	# the outputs of run $2 in runs directory $1
	(cd "$1/$2/tasks" && for f in *.out; do echo "$f: $(cat "$f" | tr '\n' '|')"; done)
}

@test "the local pipelines give the same outputs with every task a Pod" {
	# (Pods share no files: the fixtures' count files stay in each Pod's own
	# directory, which does not change their outputs)
	for f in basic fanout stream; do
		run -0 dagrun run $f.yaml --run-id "$f" --runs-dir files --quiet
		run -0 k8s $f.yaml --run-id "$f" --runs-dir pods --quiet
		assert_equal "$(outputs pods "$f")" "$(outputs files "$f")"
	done
	# succeeded Pods are deleted (--pod-gc on-success); each was created with
	# the shim, the image, labels, and an owner
	run -0 pods fanout
	assert_output ""
	run -0 jq -rs '[.[] | select(.metadata.labels["plumb.dev/run"] == "fanout")] |
		(length > 5) and all(.spec.containers[0].command[0:2] == ["dagrun", "step"] and
		.spec.containers[0].image == "plumb:test" and
		.spec.restartPolicy == "Never" and
		(.metadata.ownerReferences | length) == 1)' "$KDIR/manifests.jsonl"
	assert_output true
}

@test "fan-in through Pods is streamed: the reader's Pod starts with the fan-out and gets every child in order" {
	run -0 k8s fanin.yaml --run-id fi --quiet
	# its Pod has no saw-1 file to make: child 3 waited for it in vain
	assert_equal "$(cat .plumb/runs/fi/tasks/reader.out)" "shard 0
shard 1
shard 2
shard 3 timed out"
	run -0 jq -s '(map(.event == "task_started" and .task == "reader") | index(true)) <
		(map(.event == "task_finished" and .task == "shards" and .child == null) | index(true))' \
		.plumb/runs/fi/journal.jsonl
	assert_output true
}

@test "a failing Pod fails its task, is kept for debugging, and its log is in the run directory" {
	run -1 --separate-stderr k8s gate.yaml --run-id g -p fail=1 --image-pull-secret regcred
	[[ "$stderr" == *"dagrun: train: Failed (exit 1)"* ]]
	assert_equal "$(cat .plumb/runs/g/tasks/alert.out)" "alert Failed"
	run -0 pods g
	assert_output --regexp 'train.* Failed'
	run -0 dagrun logs g train
	assert_output --partial "epoch 1"
	run -0 jq -rs '[.[] | select(.metadata.labels["plumb.dev/run"] == "g")] |
		all(.spec.imagePullSecrets == [{"name": "regcred"}] and
		.spec.automountServiceAccountToken == false)' "$KDIR/manifests.jsonl"
	assert_output true
}

@test "resume after kill -9 adopts the run's Pods: no second copy of any Pod, nothing lost" {
	cat > slow.yaml <<-'Y'
	tasks:
	  first:
	    run: echo one
	  shards:
	    needs: [first]
	    each: [1, 2, 3, 4]
	    parallelism: 4
	    run: if [ {{item}} -ge 3 ]; then sleep 3; fi; echo "shard {{item}}"
	  last:
	    needs: [shards]
	    run: cat
	Y
	dagrun run --executor k8s --store "$REDIS_URL" --image plumb:test slow.yaml --run-id c 2>/dev/null &
	pid=$!
	# until children 1 and 2 are done, while 3 and 4 still run
	for _ in $(seq 200); do
		[ "$(jq -s '[.[] | select(.event == "task_finished" and .child != null)] | length' \
			.plumb/runs/c/journal.jsonl 2>/dev/null)" = 2 ] && break
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" || true
	run -0 --separate-stderr dagrun resume c
	[[ "$stderr" == *"dagrun: first: Succeeded before"* ]]
	[[ "$stderr" == *"dagrun: shards/0: Succeeded before"* ]]
	assert_equal "$(cat .plumb/runs/c/tasks/last.out)" "shard 1
shard 2
shard 3
shard 4"
	# one Pod each for first and the four children: the running ones were adopted
	run -0 jq -rs '[.[] | select(.metadata.labels["plumb.dev/run"] == "c") |
		.metadata.labels["plumb.dev/task"] + "/" + (.metadata.labels["plumb.dev/child"] // "-")] |
		group_by(.) | map("\(.[0]) \(length)") | .[]' "$KDIR/manifests.jsonl"
	assert_line "first/- 1"
	assert_line "shards/0 1"
	assert_line "shards/2 1"
	assert_line "shards/3 1"
}

@test "stop deletes the run's running Pods; --executor k8s needs a store" {
	dagrun run --executor k8s --store "$REDIS_URL" --image plumb:test long.yaml --run-id s 2>/dev/null &
	pid=$!
	for _ in $(seq 200); do [ -e long.count ] && break; sleep 0.05; done
	run -0 dagrun stop s
	wait "$pid" && status=0 || status=$?
	assert_equal "$status" 143
	run -0 pods s
	refute_output --partial Running
	run -2 --separate-stderr dagrun run basic.yaml --executor k8s
	[[ "$stderr" == "dagrun: --executor k8s needs --store redis://"* ]]
	run -2 --separate-stderr dagrun run basic.yaml --executor nomad
	[[ "$stderr" == "dagrun: --executor 'nomad': want local or k8s"* ]]
}
