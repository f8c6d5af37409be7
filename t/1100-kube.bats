#!/usr/bin/env bats
# lib/kube.c against the Kubernetes test server (t/k8s-server.py), through the
# live mode of its unit test (t/unit/kube.c): Pods and ConfigMaps, the watch
# with 410s and dropped streams, Retry-After, the rate limiter, every way of
# authenticating; the test server's own fidelity (validation, selectors,
# watch, the kubelet's outcomes, faults); and every Pod manifest the client
# sent checked against the official core/v1 schema (npm kubernetes-models).

load test_helper

setup_file() {
	start_k8s_server
	CA_B64=$(base64 -w0 "$KDIR/tls/ca.crt")
	CLIENT_CRT_B64=$(base64 -w0 "$KDIR/tls/client.crt")
	CLIENT_KEY_B64=$(base64 -w0 "$KDIR/tls/client.key")
	export CA_B64 CLIENT_CRT_B64 CLIENT_KEY_B64
}

teardown_file() {
	stop_k8s_server
	[ -f "$KDIR/pid6" ] && kill "$(cat "$KDIR/pid6")" 2>/dev/null || true
}

local_setup() {
	curl -sfk -X POST "$KSRV/__reset" > /dev/null
	unit=""
	for u in ${PLUMB_UNITS:-}; do
		if [[ "$u" == */kube ]]; then unit=$u; fi
	done
}

# k METHOD PATH [JSON] [CURL-ARGS...]: a request as the admin (client certificate)
k() {
	local m=$1 p=$2 d=${3:-}
	shift 3 2>/dev/null || shift $#
	curl -s --cacert "$KDIR/tls/ca.crt" --cert "$KDIR/tls/client.crt" --key "$KDIR/tls/client.key" \
		-X "$m" -H 'Content-Type: application/json' ${d:+-d "$d"} "$@" "$KSRV$p"
}

# py EXPR < json: evaluate EXPR with the JSON input as d
py() {
	python3 -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r))' "$1"
}

# pod NAME CMD [EXTRA-SPEC-JSON]: a Pod manifest running sh -c CMD
pod() {
	python3 - "$@" <<'PY'
import json, sys
name, cmd = sys.argv[1], sys.argv[2]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
spec = {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "plumb:test", "command": ["sh", "-c", cmd]}]}
for k, v in extra.items():
    if k == "container":
        spec["containers"][0].update(v)
    else:
        spec[k] = v
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "labels": {"app": "t"}}, "spec": spec}))
PY
}

# wait_pod NAME EXPR: poll the Pod until EXPR (python, d = the Pod) is true; prints the Pod
wait_pod() {
	local out
	for _ in $(seq 200); do
		out=$(k GET "/api/v1/namespaces/default/pods/$1")
		if [ "$(printf '%s' "$out" | py "$2")" = true ]; then
			printf '%s\n' "$out"
			return 0
		fi
		sleep 0.05
	done
	printf 'timed out; last: %s\n' "$out" >&2
	return 1
}

live() {
	[ -n "$unit" ] || skip "run through make check (PLUMB_UNITS)"
	run "$unit" live "$1" "$KSRV" "$KDIR/tls"
	echo "$output"	# shown when the test fails
	[ "$status" -eq 0 ]
	refute_output --partial "not ok"
}

@test "client: create, get, list with selectors, log, delete; 409, 422 and Strict errors; ConfigMaps and ownerReferences" {
	live crud
}

@test "client: LIST then WATCH, events as they happen, DELETED, bookmarks" {
	live watch
}

@test "client: a 410 (ERROR event, HTTP status, compacted history) re-lists with no change lost" {
	live gone
}

@test "client: a dropped or expired watch reconnects from its resourceVersion" {
	live drop
}

@test "client: Retry-After on 429, 5xx retried and bounded, dropped connections, 409 on create" {
	live retry
}

@test "client: the rate limiter holds 20 creates a second within 10%" {
	live qps
}

@test "client: bearer tokens, client certificates (files and data), CAs, token files re-read" {
	live auth
}

@test "client: exec credential plugin cached until expiry, run again on a 401" {
	live exec
}

@test "client: in-cluster configuration" {
	export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KPORT
	live incluster
}

@test "client: in-cluster configuration with an IPv6 service host" {
	[ -n "$unit" ] || skip "run through make check (PLUMB_UNITS)"
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
		skip "no IPv6 loopback here"
	python3 "$T_ROOT/t/k8s-server.py" --host ::1 --port-file "$KDIR/port6" --tls-dir "$KDIR/tls6" \
		--token secret:admin >"$KDIR/log6" 2>&1 3>&- &
	echo $! > "$KDIR/pid6"
	for _ in $(seq 200); do [ -s "$KDIR/port6" ] && break; sleep 0.05; done
	export KUBERNETES_SERVICE_HOST=::1 KUBERNETES_SERVICE_PORT=$(cat "$KDIR/port6")
	run -0 "$unit" live incluster "https://[::1]:$KUBERNETES_SERVICE_PORT" "$KDIR/tls6"
	assert_output --partial "https://[::1]:$KUBERNETES_SERVICE_PORT"
	refute_output --partial "not ok"
}

@test "every Pod manifest the client sent is valid against the official core/v1 schema" {
	[ -s "$KDIR/manifests.jsonl" ] || skip "no manifests: the client tests did not run"
	npm_dir=$("$T_ROOT/t/npm/install") || skip "npm peers not available"
	run -0 node "$T_ROOT/t/helpers/k8s-validate.mjs" "$npm_dir" "$KDIR/manifests.jsonl"
	assert_output --regexp '^ok [0-9]+$'
	# the validator is not a rubber stamp: what the server refused, it refuses too
	run -1 node "$T_ROOT/t/helpers/k8s-validate.mjs" "$npm_dir" "$KDIR/manifests.jsonl.rejected"
	assert_output --partial "/spec/restartPolicy must be equal to one of the allowed values"
	run -1 node "$T_ROOT/t/helpers/k8s-validate.mjs" "$npm_dir" < <(pod x true '{"container": {"image": 7}}')
	assert_output --partial "stdin:1: Pod/x: data/spec/containers/0/image must be string"
}

# --- the test server's fidelity -----------------------------------------------------------

@test "server: authentication: 401 Status without credentials or with a wrong token" {
	run -0 curl -s --cacert "$KDIR/tls/ca.crt" "$KSRV/api/v1/namespaces/default/pods"
	assert_output '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}'
	run -0 curl -s -o /dev/null -w '%{http_code}' --cacert "$KDIR/tls/ca.crt" -H 'Authorization: Bearer nope' "$KSRV/api/v1/namespaces/default/pods"
	assert_output 401
	run -0 curl -s -o /dev/null -w '%{http_code}' --cacert "$KDIR/tls/ca.crt" -H 'Authorization: Bearer secret' "$KSRV/api/v1/namespaces/default/pods"
	assert_output 200
	# a client certificate from another CA fails the TLS handshake
	run curl -s -o /dev/null -w '%{http_code}' --cacert "$KDIR/tls/ca.crt" --cert "$KDIR/tls/stranger.crt" --key "$KDIR/tls/stranger.key" "$KSRV/api/v1/namespaces/default/pods"
	assert_output 000
	[ "$status" -ne 0 ]
	run -0 sh -c "curl -sk '$KSRV/__log' | python3 -c 'import json,sys; print(sorted({e.get(\"user\") for e in json.load(sys.stdin)[\"log\"] if e.get(\"user\")}))'"
	assert_output "['admin']"
}

@test "server: Pod validation as the API server does it" {
	run -0 k POST /api/v1/namespaces/default/pods '{"spec":{"containers":[{"name":"c","image":"i"}]}}'
	assert_output --partial '"message":"Pod \"\" is invalid: metadata.name: Required value: name or generateName is required","reason":"Invalid"'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"-bad"},"spec":{"containers":[{"name":"c","image":"i"}]}}'
	assert_output --partial 'metadata.name: Invalid value: \"-bad\": a lowercase RFC 1123 subdomain'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"a"},"spec":{}}'
	assert_output --partial '"message":"Pod \"a\" is invalid: spec.containers: Required value"'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"a"},"spec":{"restartPolicy":"Sometimes","containers":[{"name":"c","image":"i"}]}}'
	assert_output --partial 'spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"memory":"lots"}}}]}}'
	assert_output --partial '"code":400'
	assert_output --partial 'quantities must match the regular expression'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"nvidia.com/gpu":"1","cpu":"1"},"requests":{"cpu":"1500m","nvidia.com/gpu":"2"}}}]}}'
	assert_output --partial 'must be less than or equal to cpu limit of 1'
	assert_output --partial 'must be equal to nvidia.com/gpu limit of 1'
	run -0 k POST /api/v1/namespaces/default/pods '{"metadata":{"name":"a","labels":{"bad key":"v"}},"spec":{"activeDeadlineSeconds":0,"containers":[{"name":"C","image":"i","env":[{"name":"1X","value":"v"}]}],"tolerations":[{"operator":"Maybe"}]}}'
	assert_output --partial 'metadata.labels: Invalid value: \"bad key\"'
	assert_output --partial 'spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive'
	assert_output --partial 'spec.containers[0].name: Invalid value: \"C\": a lowercase RFC 1123 label'
	assert_output --partial 'spec.containers[0].env[0].name: Invalid value: \"1X\"'
	assert_output --partial 'spec.tolerations[0].operator: Unsupported value: \"Maybe\"'
	run -0 k POST '/api/v1/namespaces/default/pods?fieldValidation=Strict' '{"metadata":{"name":"a","nmae":"x"},"spec":{"containers":[{"name":"c","image":"i","imagee":"j"}]}}'
	assert_output --partial '"message":"strict decoding error: unknown field \"metadata.nmae\", unknown field \"spec.containers[0].imagee\"","reason":"BadRequest","code":400'
	run -0 k POST /api/v1/namespaces/other/pods '{"metadata":{"name":"a","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}]}}'
	assert_output --partial 'the namespace of the provided object does not match the namespace sent on the request'
	run -0 k POST /api/v1/namespaces/default/pods '{"apiVersion":"v2","metadata":{"name":"a"}}'
	assert_output --partial 'the API version in the data (v2) does not match the expected API version (v1)'
	run -0 k POST /api/v1/namespaces/default/pods 'not json'
	assert_output --partial '"reason":"BadRequest","code":400'
	# nothing of the above was created
	run -0 sh -c "curl -sk '$KSRV/__stats' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pods_created\"])'"
	assert_output 0
}

@test "server: unknown fields under Warn (the default) are dropped with a Warning header; 409 on a second create" {
	run -0 k POST /api/v1/namespaces/default/pods "$(pod w1 true '{"bogus": 1}')" -D "$BATS_TEST_TMPDIR/h"
	assert_output --partial '"name":"w1"'
	refute_output --partial bogus
	run -0 grep -i '^Warning: 299 - "unknown field \\"spec.bogus\\""' "$BATS_TEST_TMPDIR/h"
	run -0 k POST /api/v1/namespaces/default/pods "$(pod w1 true)"
	assert_output '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"w1\" already exists","reason":"AlreadyExists","code":409,"details":{"name":"w1","kind":"pods"}}'
	run -0 k GET /api/v1/namespaces/default/pods/nope
	assert_output '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","code":404,"details":{"name":"nope","kind":"pods"}}'
}

@test "server: label selectors (=, ==, !=, in, notin, exists, !key), field selectors, limit and continue" {
	for spec in a:prod:x b:prod: c:dev:x d:test:; do
		IFS=: read -r n env tier <<<"$spec"
		labels="{\"env\":\"$env\"${tier:+,\"tier\":\"$tier\"}}"
		k POST /api/v1/namespaces/default/pods "{\"metadata\":{\"name\":\"$n\",\"labels\":$labels},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}" >/dev/null
	done
	names() { k GET "/api/v1/namespaces/default/pods?$1" | py '",".join(i["metadata"]["name"] for i in d["items"])'; }
	run -0 names 'labelSelector=env%3Dprod'; assert_output a,b
	run -0 names 'labelSelector=env%3D%3Dprod'; assert_output a,b
	run -0 names 'labelSelector=env!%3Dprod'; assert_output c,d
	run -0 names 'labelSelector=env%20in%20(dev,test)'; assert_output c,d
	run -0 names 'labelSelector=env%20notin%20(dev,test),tier'; assert_output a
	run -0 names 'labelSelector=!tier'; assert_output b,d
	run -0 names 'fieldSelector=metadata.name%3Dc'; assert_output c
	run -0 names 'fieldSelector=status.phase%3DRunning'; assert_output ""
	run -0 k GET '/api/v1/namespaces/default/pods?fieldSelector=spec.image%3Dx'
	assert_output --partial '"message":"field label not supported: spec.image"'
	run -0 k GET '/api/v1/namespaces/default/pods?limit=3'
	page1=$output
	run -0 py 'len(d["items"])' <<<"$page1"; assert_output 3
	cont=$(py 'd["metadata"]["continue"]' <<<"$page1")
	run -0 k GET "/api/v1/namespaces/default/pods?limit=3&continue=$cont"
	run -0 py '[i["metadata"]["name"] for i in d["items"]], "continue" in d["metadata"]' <<<"$output"
	assert_output '[["d"], false]'
}

@test "server: the kubelet runs the command with the Pod's env, Secrets and ConfigMaps; exit codes and logs" {
	k POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"creds"},"data":{"token":"czNjcjN0"},"stringData":{"user":"ann"}}' >/dev/null
	k POST /api/v1/namespaces/default/configmaps '{"metadata":{"name":"cfg"},"data":{"MODE":"fast"}}' >/dev/null
	run -0 k POST /api/v1/namespaces/default/pods "$(pod env1 'echo "$GREETING $TOKEN $CFG_MODE $USER_NAME $ME"; echo to-stderr >&2; exit 7' \
		'{"container": {"env": [{"name": "NAME", "value": "world"}, {"name": "GREETING", "value": "hello $(NAME)"},
		  {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
		  {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
		  "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}}]}}' |
		python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["spec"]["containers"][0]; c["env"].append({"name":"USER_NAME","valueFrom":{"secretKeyRef":{"name":"creds","key":"user"}}}); print(json.dumps(d))')"
	run -0 wait_pod env1 'd["status"]["phase"] == "Failed"'
	run -0 py '[d["status"]["containerStatuses"][0]["state"]["terminated"][k] for k in ("exitCode", "reason")]' <<<"$output"
	assert_output '[7, "Error"]'
	run -0 k GET /api/v1/namespaces/default/pods/env1/log
	assert_output "$(printf 'hello world s3cr3t fast ann env1\nto-stderr')"
	run -0 k GET '/api/v1/namespaces/default/pods/env1/log?tailLines=1'
	assert_output to-stderr
	run -0 k POST /api/v1/namespaces/default/pods "$(pod ok1 'exit 0')"
	run -0 wait_pod ok1 'd["status"]["phase"] == "Succeeded"'
	run -0 py '[d["status"]["containerStatuses"][0]["state"]["terminated"][k] for k in ("exitCode", "reason")] + [c["type"] for c in d["status"]["conditions"]]' <<<"$output"
	assert_output '[0, "Completed", "PodScheduled", "Initialized", "Ready", "ContainersReady"]'
	run -0 k POST /api/v1/namespaces/default/pods "$(pod nocmd x '{"container": {"command": ["/no/such/binary"]}}')"
	run -0 wait_pod nocmd 'd["status"]["phase"] == "Failed"'
	assert_output --partial '"reason":"StartError"'
}

@test "server: a missing Secret holds the Pod in CreateContainerConfigError until it exists" {
	run -0 k POST /api/v1/namespaces/default/pods "$(pod sec1 'echo $P' '{"container": {"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "late", "key": "p"}}}]}}')"
	run -0 wait_pod sec1 'd["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError"'
	run -0 py 'd["status"]["phase"], d["status"]["containerStatuses"][0]["state"]["waiting"]["message"]' <<<"$output"
	assert_output '["Pending", "secret \"late\" not found"]'
	run -0 k GET /api/v1/namespaces/default/pods/sec1/log
	assert_output --partial 'is waiting to start: CreateContainerConfigError'
	k POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"late"},"stringData":{"p":"here"}}' >/dev/null
	run -0 wait_pod sec1 'd["status"]["phase"] == "Succeeded"'
	run -0 k GET /api/v1/namespaces/default/pods/sec1/log
	assert_output here
	run -0 k POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"b64"},"data":{"k":"!!!"}}'
	assert_output --partial 'illegal base64 data'
}

@test "server: injected outcomes: OOMKilled, Evicted, DeadlineExceeded, ImagePullBackOff" {
	curl -sfk -X POST "$KSRV/__faults" -d '[{"pod": "oom", "outcome": "OOMKilled"}, {"pod": "evict", "outcome": "Evicted"},
		{"pod": "pull", "outcome": "ImagePullBackOff"}]' >/dev/null
	for n in oom evict pull; do k POST /api/v1/namespaces/default/pods "$(pod $n 'sleep 30')" >/dev/null; done
	k POST /api/v1/namespaces/default/pods "$(pod late 'sleep 30' '{"activeDeadlineSeconds": 1}')" >/dev/null
	run -0 wait_pod oom 'd["status"]["phase"] == "Failed"'
	run -0 py 'd["status"]["containerStatuses"][0]["state"]["terminated"]' <<<"$output"
	assert_output --partial '"exitCode": 137, "reason": "OOMKilled"'
	run -0 wait_pod evict 'd["status"]["phase"] == "Failed"'
	run -0 py 'd["status"]["reason"]' <<<"$output"
	assert_output Evicted
	run -0 wait_pod late 'd["status"]["phase"] == "Failed"'
	run -0 py 'd["status"]["reason"], d["status"]["message"]' <<<"$output"
	assert_output '["DeadlineExceeded", "Pod was active on the node longer than the specified deadline"]'
	run -0 wait_pod pull '"waiting" in d["status"]["containerStatuses"][0]["state"]'
	run -0 py 'd["status"]["phase"], d["status"]["containerStatuses"][0]["state"]["waiting"]' <<<"$output"
	assert_output '["Pending", {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"plumb:test\""}]'
	sleep 0.5
	run -0 k GET /api/v1/namespaces/default/pods/pull
	run -0 py 'd["status"]["phase"]' <<<"$output"
	assert_output Pending
	# no sleep 30 is left running
	run -0 sh -c "curl -sk '$KSRV/__stats' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"running\"])'"
	assert_output 0
}

@test "server: deleting a running Pod: deletionTimestamp, SIGTERM, then gone; a ConfigMap's deletion collects its Pods" {
	run -0 k POST /api/v1/namespaces/default/pods "$(pod slow 'trap "echo got TERM; exit 0" TERM; sleep 30 & wait')"
	run -0 wait_pod slow 'd["status"]["phase"] == "Running"'
	sleep 0.2
	run -0 k DELETE /api/v1/namespaces/default/pods/slow
	run -0 py '"deletionTimestamp" in d["metadata"], d["metadata"]["deletionGracePeriodSeconds"]' <<<"$output"
	assert_output '[true, 30]'
	for _ in $(seq 100); do
		k GET /api/v1/namespaces/default/pods/slow | grep -q NotFound && break
		sleep 0.05
	done
	run -0 k GET /api/v1/namespaces/default/pods/slow
	assert_output --partial NotFound
	run -0 k POST /api/v1/namespaces/default/configmaps '{"metadata":{"name":"owner"}}'
	uid=$(py 'd["metadata"]["uid"]' <<<"$output")
	for n in kid1 kid2; do
		pod $n 'sleep 30' | python3 -c "import json,sys; d=json.load(sys.stdin); d['metadata']['ownerReferences']=[{'apiVersion':'v1','kind':'ConfigMap','name':'owner','uid':'$uid'}]; print(json.dumps(d))" |
			{ read -r body; k POST /api/v1/namespaces/default/pods "$body" >/dev/null; }
	done
	k POST /api/v1/namespaces/default/pods "$(pod free 'sleep 30')" >/dev/null
	run -0 k DELETE /api/v1/namespaces/default/configmaps/owner
	assert_output --partial '"status":"Success"'
	for _ in $(seq 100); do
		[ "$(k GET /api/v1/namespaces/default/pods | py 'len(d["items"])')" = 1 ] && break
		sleep 0.05
	done
	run -0 k GET /api/v1/namespaces/default/pods
	run -0 py '[i["metadata"]["name"] for i in d["items"]]' <<<"$output"
	assert_output '["free"]'
	run -0 k DELETE '/api/v1/namespaces/default/pods/free?gracePeriodSeconds=0'
	run -0 k GET /api/v1/namespaces/default/pods/free
	assert_output --partial NotFound
}

@test "server: watch from a resourceVersion, selector changes, bookmarks, timeoutSeconds, 410 for a compacted version" {
	curl -sfk -X POST "$KSRV/__config" -d '{"bookmark_interval": 0.3}' >/dev/null
	run -0 k GET /api/v1/namespaces/default/pods
	rv=$(py 'd["metadata"]["resourceVersion"]' <<<"$output")
	k POST /api/v1/namespaces/default/pods "$(pod wa 'exit 0')" >/dev/null
	k POST /api/v1/namespaces/default/pods "$(pod wb 'exit 0')" | py 'd["metadata"]["name"]' >/dev/null
	run -0 wait_pod wa 'd["status"]["phase"] == "Succeeded"'
	run -0 k GET "/api/v1/namespaces/default/pods?watch=true&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dwa"
	run -0 python3 -c '
import json, sys
evs = [json.loads(l) for l in sys.argv[1].splitlines()]
print([e["type"] for e in evs if e["type"] != "BOOKMARK"][:2], evs[-1]["type"],
      [e["object"]["status"]["phase"] for e in evs if e["type"] == "MODIFIED"][-1],
      sorted(set(e["object"]["metadata"].get("name", "-") for e in evs if e["type"] != "BOOKMARK")),
      list(evs[-1]["object"]["metadata"]))' "$output"
	assert_output "['ADDED', 'MODIFIED'] BOOKMARK Succeeded ['wa'] ['resourceVersion']"
	# no resourceVersion: the current objects first, as ADDED
	run -0 k GET "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1"
	run -0 python3 -c 'import json,sys; print(sorted((json.loads(l)["type"], json.loads(l)["object"]["metadata"]["name"]) for l in sys.argv[1].splitlines()))' "$output"
	assert_output "[('ADDED', 'wa'), ('ADDED', 'wb')]"
	curl -sfk -X POST "$KSRV/__compact" >/dev/null
	run -0 k GET "/api/v1/namespaces/default/pods?watch=true&resourceVersion=$rv&timeoutSeconds=1"
	assert_output --regexp '^\{"type":"ERROR","object":\{"kind":"Status","apiVersion":"v1","metadata":\{\},"status":"Failure","message":"too old resource version: [0-9]+ \([0-9]+\)","reason":"Expired","code":410\}\}$'
}

@test "server: injected faults: 429 with Retry-After, 5xx, a dropped connection, 410 inside a watch" {
	curl -sfk -X POST "$KSRV/__faults" -d '{"path": "/pods", "method": "GET", "status": 429, "retry_after": 2}' >/dev/null
	run -0 k GET /api/v1/namespaces/default/pods '' -D "$BATS_TEST_TMPDIR/h"
	assert_output --partial '"reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":2}'
	run -0 grep -i '^Retry-After: 2' "$BATS_TEST_TMPDIR/h"
	curl -sfk -X POST "$KSRV/__faults" -d '{"path": "/pods", "status": 503}' >/dev/null
	run -0 k GET /api/v1/namespaces/default/pods '' -o /dev/null -w '%{http_code}'
	assert_output 503
	curl -sfk -X POST "$KSRV/__faults" -d '{"path": "/pods", "drop": true}' >/dev/null
	run -52 k GET /api/v1/namespaces/default/pods '' -o /dev/null -w '%{http_code}'
	assert_output 000
	run -0 k GET /api/v1/namespaces/default/pods '' -o /dev/null -w '%{http_code}'
	assert_output 200
	curl -sfk -X POST "$KSRV/__faults" -d '{"watch": "gone", "after": 1}' >/dev/null
	k POST /api/v1/namespaces/default/pods "$(pod f1 true)" >/dev/null
	k POST /api/v1/namespaces/default/pods "$(pod f2 true)" >/dev/null
	run -0 k GET "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=5"
	run -0 python3 -c 'import json,sys; print([(e["type"], e["object"].get("code")) for e in map(json.loads, sys.argv[1].splitlines())])' "$output"
	assert_output "[('ADDED', None), ('ERROR', 410)]"
}

@test "server: --start-delay keeps Pods Pending that long" {
	curl -sfk -X POST "$KSRV/__config" -d '{"start_delay": 0.6}' >/dev/null
	k POST /api/v1/namespaces/default/pods "$(pod delayed true)" >/dev/null
	sleep 0.3
	run -0 k GET /api/v1/namespaces/default/pods/delayed
	run -0 py 'd["status"]["phase"], d["status"]["containerStatuses"][0]["state"]' <<<"$output"
	assert_output '["Pending", {"waiting": {"reason": "ContainerCreating"}}]'
	run -0 wait_pod delayed 'd["status"]["phase"] == "Succeeded"'
	curl -sfk -X POST "$KSRV/__config" -d '{"start_delay": 0}' >/dev/null
}
