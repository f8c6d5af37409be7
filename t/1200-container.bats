#!/usr/bin/env bats
# Shipping plumb, without a Docker engine or a cluster (neither runs here):
# contrib/Dockerfile checked against the image's rules and this machine's
# Debian 12 archive (t/helpers/dockerfile-check.py); what its runtime stage
# holds (make install DESTDIR=... PREFIX=/usr, pipelines/) run as the image's
# user 10001 with configuration only through environment variables, against
# the real Redis and Pushgateway and the test servers; contrib/k8s validated
# against the official Kubernetes schemas (t/helpers/k8s-manifests.mjs), the
# Role's rules, Redis' memory policy applied to a real redis-server; and the
# walkthrough docs/kubernetes.7, whose examples that need no cluster run.

load test_helper

HOOK=/services/T0000TEST/B0000TEST/secretsecretsecret
UID_GID=10001

setup_file() {
	start_redis
	start_pushgateway
	start_openai_server --api-key sk-ship-0123456789 --models text-embedding-3-small,gpt-4o-mini --dim 64
	SRV_DIR=$(mktemp -d "$BATS_FILE_TMPDIR/srv.XXXXXX")
	python3 "$T_ROOT/t/qdrant-server.py" --port-file "$SRV_DIR/qport" > "$SRV_DIR/qlog" 2>&1 3>&- &
	echo $! > "$SRV_DIR/qpid"
	python3 "$T_ROOT/t/webhook-server.py" --port-file "$SRV_DIR/wport" --hook "$HOOK" \
		> "$SRV_DIR/wlog" 2>&1 3>&- &
	echo $! > "$SRV_DIR/wpid"
	for _ in $(seq 200); do [ -s "$SRV_DIR/qport" ] && [ -s "$SRV_DIR/wport" ] && break; sleep 0.05; done
	[ -s "$SRV_DIR/qport" ] && [ -s "$SRV_DIR/wport" ] || { cat "$SRV_DIR"/*log >&2; return 1; }
	export SRV_DIR QSRV="http://127.0.0.1:$(cat "$SRV_DIR/qport")" WSRV="http://127.0.0.1:$(cat "$SRV_DIR/wport")"

	# What the runtime stage holds: make install into a DESTDIR (of the
	# programs under test: -o all builds nothing) and pipelines/ where the
	# Dockerfile copies them. Outside bats' private temp dirs, which the
	# unprivileged user cannot enter.
	SHIP=$(mktemp -d /tmp/plumb-ship.XXXXXX)
	chmod 755 "$SHIP"
	make -s -C "$T_ROOT" -o all install DESTDIR="$SHIP/root" PREFIX=/usr BIN="$PLUMB_BIN" >&2
	mkdir -p "$SHIP/root/usr/share/plumb"
	cp -R "$T_ROOT/pipelines" "$SHIP/root/usr/share/plumb/pipelines"
	chmod -R a+rX "$SHIP/root"
	export SHIP ROOT="$SHIP/root"
}

teardown_file() {
	stop_redis
	stop_pushgateway
	stop_openai_server
	kill "$(cat "$SRV_DIR/qpid")" "$(cat "$SRV_DIR/wpid")" 2>/dev/null || true
	[ -n "${SHIP:-}" ] && rm -rf "$SHIP"
}

local_setup() {
	curl -sf -X POST "$QSRV/__reset" > /dev/null
	curl -sf -X POST "$WSRV/__reset" > /dev/null
	curl -sf -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	redis-cli -p "$REDIS_PORT" flushall > /dev/null
	# the image's WORKDIR, owned by its user
	WORK="$SHIP/work-$BATS_TEST_NUMBER"
	rm -rf "$WORK"
	mkdir -m 755 "$WORK"
	chown "$UID_GID:$UID_GID" "$WORK"
}

needs_root() {
	[ "$(id -u)" = 0 ] || skip "switching to the image's user $UID_GID needs root"
}

# as_plumb [NAME=value...] PROG ARGS...: run as the container would: user and
# group 10001 without supplementary groups, in its WORKDIR, with nothing in
# the environment but PATH, HOME, PLUMB_PIPELINES (the Dockerfile's ENV) and
# the variables given.
as_plumb() {
	(cd "$WORK" && setpriv --reuid="$UID_GID" --regid="$UID_GID" --clear-groups \
		env -i PATH="$ROOT/usr/bin:/usr/bin:/bin" HOME="$WORK" LC_ALL=C \
		PLUMB_PIPELINES="$ROOT/usr/share/plumb/pipelines" "$@")
}

# yaml2jsonl FILE: each YAML document of FILE as one JSON line
yaml2jsonl() {
	python3 -c 'import json, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d is not None:
        print(json.dumps(d))' "$1"
}

# cluster_pipeline > FILE: the pipeline of rag-index-job.yaml's ConfigMap
cluster_pipeline() {
	python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap":
        sys.stdout.write(d["data"]["rag-index-cluster.yaml"])' "$T_ROOT/contrib/k8s/rag-index-job.yaml"
}

npm_peers() {
	NPM_DIR=$("$T_ROOT/t/npm/install") || skip "npm peers not available"
}

check_dockerfile() {	# check_dockerfile FILE [DOCKERIGNORE]
	python3 "$T_ROOT/t/helpers/dockerfile-check.py" --deps "$T_ROOT/contrib/deps.sh" \
		--dockerignore "${2:-$T_ROOT/.dockerignore}" --bin "$PLUMB_BIN" "$1"
}

# --- contrib/Dockerfile -------------------------------------------------------------

@test "Dockerfile: multi-stage Debian 12 pinned by tag, non-root USER, apt lists cleaned, packages in the archive, every linked library provided" {
	run -0 check_dockerfile "$T_ROOT/contrib/Dockerfile"
	assert_output --regexp "^ok: .*contrib/Dockerfile: 8 runtime packages, [0-9]+ libraries checked$"
	# the libraries were really looked at: at least libcurl, jansson, hiredis, openblas
	n=$(echo "$output" | sed 's/.* \([0-9]*\) libraries checked/\1/')
	[ "$n" -ge 10 ]
}

@test "Dockerfile checker: each broken rule is reported at its line" {
	df=$T_ROOT/contrib/Dockerfile
	mutate() { sed "$1" "$df" > Dockerfile; }
	mutate 's/ libhiredis0.14//'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "libhiredis\.so\.0\.14 \(linked by [a-z, -]*embed[a-z, -]*\) is in package libhiredis0\.14, which the runtime stage neither installs nor gets as a dependency"
	mutate 's/ libopenblas0-pthread//'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "libopenblas\.so\.0 \(linked by [a-z, -]*search[a-z, -]*\) is in package libopenblas0-pthread"
	mutate 's/libutf8proc2/libutf8proc2 libno-such-package9/'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "^Dockerfile:[0-9]+: package 'libno-such-package9' is not in the Debian archive index"
	mutate 's/libcurl4 libjansson4/libcurl4 libcurl4-openssl-dev libjansson4/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "the runtime stage installs libcurl4-openssl-dev: build tools and -dev packages belong in the build stage"
	mutate 's/^USER .*/USER plumb/'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "^Dockerfile:[0-9]+: USER plumb: want a numeric uid:gid"
	mutate 's/^USER .*/USER 0:0/'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "^Dockerfile:[0-9]+: USER 0:0: root$"
	mutate '/^USER /d'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "the runtime stage sets no USER: it would run as root"
	mutate 's/-o 10001 -g 10001 //'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "WORKDIR /work is not made the user's"
	mutate 's/^FROM debian:bookworm-slim AS/FROM debian:latest AS/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "FROM debian:latest: the runtime stage must be Debian 12 slim"
	mutate 's/^FROM debian:bookworm AS/FROM debian AS/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "FROM debian: pin the image by a tag"
	mutate 's/^FROM debian:bookworm AS/FROM ubuntu:24.04 AS/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "FROM ubuntu:24.04: want a Debian 12 image"
	mutate '0,/rm -rf \/var\/lib\/apt\/lists\/\*/s//true/'
	run -1 check_dockerfile Dockerfile
	assert_output --regexp "^Dockerfile:[0-9]+: RUN: the apt lists are not cleaned"
	mutate 's/--no-install-recommends //'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "apt-get install without --no-install-recommends"
	mutate 's/libhiredis-dev //'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "the build stage does not install libhiredis-dev (in $T_ROOT/contrib/deps.sh)"
	mutate 's|^COPY pipelines/ .*|ADD https://example.com/pipelines.tar.gz /usr/share/plumb/pipelines/|'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "ADD https://example.com/pipelines.tar.gz: no ADD of URLs"
	assert_output --partial "the runtime stage does not copy pipelines/ to /usr/share/plumb/pipelines"
	mutate 's|^ENV PLUMB_PIPELINES=/usr/share/plumb/pipelines|ENV PLUMB_PIPELINES=/srv|'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "ENV PLUMB_PIPELINES=/usr/share/plumb/pipelines is not set"
	mutate 's/^CMD .*/ENTRYPOINT dagrun "$@"/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "ENTRYPOINT in shell form"
	mutate 's/DESTDIR=\/out/DESTDIR=\/tmp\/out/'
	run -1 check_dockerfile Dockerfile
	assert_output --partial "no build stage runs 'make install DESTDIR=/out PREFIX=/usr'"
	sed '/^FROM debian:bookworm-slim/,$d' "$df" > Dockerfile
	run -1 check_dockerfile Dockerfile
	assert_output --partial "not a multi-stage build"
	# the build context: host binaries and .git must stay out, COPY sources in
	printf '*\n!Makefile\n!lib/\n!tools/\n!docs/\n!bin/\n' > dockerignore
	run -1 check_dockerfile "$df" dockerignore
	assert_output --partial "COPY pipelines/: excluded from the build context"
	assert_output --partial "bin/ is sent with the build context"
	run -2 python3 "$T_ROOT/t/helpers/dockerfile-check.py" no-such-Dockerfile
}

# --- the runtime stage's contents, as its user ----------------------------------------

@test "make install DESTDIR PREFIX=/usr: every program and page where the runtime stage copies them from" {
	for f in "$T_ROOT"/tools/*.c; do
		p=$(basename "$f" .c)
		[ -x "$ROOT/usr/bin/$p" ] || { echo "missing /usr/bin/$p"; return 1; }
	done
	for f in "$T_ROOT"/docs/*.1; do [ -f "$ROOT/usr/share/man/man1/$(basename "$f")" ]; done
	[ -f "$ROOT/usr/share/man/man7/kubernetes.7" ]
	[ -f "$ROOT/usr/share/plumb/pipelines/rag-index.yaml" ]
	# nothing else: no objects, libraries or headers of the build
	run -0 sh -c "cd '$ROOT' && find . -type f | cut -d/ -f2-3 | sort -u"
	assert_output "usr/bin
usr/share"
	run -0 sh -c "cd '$ROOT/usr/share' && ls"
	assert_output "man
plumb"
}

@test "every installed program runs as user 10001 with an empty environment: --version, --help" {
	needs_root
	n=0
	for p in "$ROOT"/usr/bin/*; do
		run -0 as_plumb "$(basename "$p")" --version
		[ -n "$output" ]
		run -0 as_plumb "$(basename "$p")" --help
		assert_output --partial "usage: $(basename "$p")"
		n=$((n + 1))
	done
	[ "$n" -ge 11 ]
	run -0 as_plumb id -u
	assert_output "$UID_GID"
}

@test "indexing entrypoints configured only by environment: discover-diff, chunk, embed (http, Redis cache), upsert-qdrant, upsert-local, search, --commit" {
	needs_root
	docs="$ROOT/usr/share/man/man1"
	ndocs=$(ls "$docs" | wc -l)
	run -0 --separate-stderr as_plumb PLUMB_STATE=state.jsonl discover-diff "$docs"
	assert_equal "${#lines[@]}" "$ndocs"
	printf '%s\n' "${lines[@]}" > "$WORK/docs.jsonl"
	run -0 as_plumb PLUMB_CHUNK_SIZE=600 PLUMB_CHUNK_OVERLAP=60 PLUMB_CHUNK_STRATEGY=markdown chunk docs.jsonl
	printf '%s\n' "${lines[@]}" > "$WORK/chunks.jsonl"
	nchunks=$(jq -s 'map(select(.text)) | length' "$WORK/chunks.jsonl")
	[ "$nchunks" -gt "$ndocs" ]
	[ "$(grep -c '"op":"done"' "$WORK/chunks.jsonl")" -eq "$ndocs" ]
	# chunk's size came from the environment: no chunk is longer than 600 bytes
	python3 -c 'import json, sys
m = max(len(r["text"].encode()) for r in map(json.loads, open(sys.argv[1])) if "text" in r)
assert m <= 600, m' "$WORK/chunks.jsonl"

	env_http=(OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-ship-0123456789
		PLUMB_EMBED_BACKEND=http PLUMB_EMBED_MODEL=text-embedding-3-small PLUMB_EMBED_DIM=64)
	run -0 as_plumb "${env_http[@]}" PLUMB_EMBED_CACHE="$REDIS_URL/3" embed chunks.jsonl
	printf '%s\n' "${lines[@]}" > "$WORK/vectors.jsonl"
	[ "$(grep -c '"model":"text-embedding-3-small"' "$WORK/vectors.jsonl")" -eq "$nchunks" ]
	# the key went to the server and the vectors into the Redis cache
	[ "$(redis-cli -p "$REDIS_PORT" -n 3 dbsize)" -gt 0 ]
	[ "$(curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | jq .embeddings_requests)" -gt 0 ]
	# without the key from the environment the server refuses, as the real one does
	run -2 as_plumb OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" PLUMB_EMBED_BACKEND=http \
		PLUMB_EMBED_MODEL=text-embedding-3-small embed chunks.jsonl

	run -0 as_plumb QDRANT_URL="$QSRV" PLUMB_COLLECTION=docs upsert-qdrant vectors.jsonl
	printf '%s\n' "${lines[@]}" > "$WORK/acks.jsonl"
	[ "$(grep -c '"op":"indexed"' "$WORK/acks.jsonl")" -eq "$ndocs" ]
	[ "$(curl -s "$QSRV/__points/docs" | jq ".points | length")" -eq "$nchunks" ]
	run -0 as_plumb PLUMB_LOCAL_STORE=index upsert-local < "$WORK/vectors.jsonl"
	[ "$(grep -c '"op":"indexed"' <<< "$output")" -eq "$ndocs" ]

	echo '{"id":"q","text":"add embedding vectors to records"}' > "$WORK/q.jsonl"
	run -0 as_plumb "${env_http[@]}" PLUMB_LOCAL_STORE=index PLUMB_SEARCH_K=7 search q.jsonl
	[ "$(jq '.hits | length' <<< "$output")" -eq 7 ]
	run -0 as_plumb "${env_http[@]}" QDRANT_URL="$QSRV" PLUMB_COLLECTION=docs PLUMB_SEARCH_K=4 search q.jsonl
	[ "$(jq '.hits | length' <<< "$output")" -eq 4 ]

	run -0 --separate-stderr as_plumb PLUMB_STATE=state.jsonl discover-diff --commit acks.jsonl
	run -0 --separate-stderr as_plumb PLUMB_STATE=state.jsonl discover-diff "$docs"
	assert_output ""
}

@test "eval entrypoints configured only by environment: infer, evalscore, push-prom to a real Pushgateway, notify" {
	needs_root
	printf '%s\n' '{"id":"q1","input":"Paris","reference":"Paris"}' '{"id":"q2","input":"Lyon","reference":"Paris"}' \
		> "$WORK/suite.jsonl"
	run -0 as_plumb OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1" OPENAI_API_KEY=sk-ship-0123456789 \
		PLUMB_INFER_MODEL=gpt-4o-mini PLUMB_INFER_CONCURRENCY=2 infer suite.jsonl
	printf '%s\n' "${lines[@]}" > "$WORK/out.jsonl"
	[ "$(jq -r .model "$WORK/out.jsonl" | sort -u)" = gpt-4o-mini ]
	run -0 as_plumb PLUMB_EVAL_METRICS=exact_match PLUMB_EVAL_SUITE=ship PLUMB_EVAL_MODEL=gpt-4o-mini \
		PLUMB_EVAL_GATES='exact_match>=0.4' evalscore out.jsonl
	echo "$output" > "$WORK/scores.jsonl"
	[ "$(tail -n 1 "$WORK/scores.jsonl" | jq .scorecard.metrics.exact_match.value)" = 0.5 ]
	# the gate from the environment is enforced
	run -1 as_plumb PLUMB_EVAL_METRICS=exact_match PLUMB_EVAL_GATES='exact_match>=0.9' evalscore out.jsonl
	run -0 as_plumb PUSHGATEWAY_URL="$PUSHGATEWAY_URL" PUSHGATEWAY_JOB=ship push-prom scores.jsonl
	run -0 curl -sf "$PUSHGATEWAY_URL/metrics"
	assert_output --regexp 'job="ship"'
	run -0 as_plumb NOTIFY_URL="$WSRV$HOOK" notify --text 'suite {{scorecard.suite}}: {{scorecard.metrics.exact_match.value}}' scores.jsonl
	run -0 curl -sf "$WSRV/__posts"
	[ "$(jq -r '.[0].message.text' <<< "$output")" = "suite ship: 0.5" ]
}

@test "dagrun in the image: every installed pipeline lints through PLUMB_PIPELINES; the Job's cluster pipeline runs as user 10001" {
	needs_root
	# the standard pipeline and every example the image ships; the examples
	# use: their templates, found through PLUMB_PIPELINES
	for f in "$ROOT"/usr/share/plumb/pipelines/rag-index.yaml "$ROOT"/usr/share/plumb/pipelines/examples/*.yaml; do
		run -0 --separate-stderr as_plumb dagrun lint "$f"
	done
	run -2 --separate-stderr as_plumb PLUMB_PIPELINES= dagrun lint "$ROOT/usr/share/plumb/pipelines/examples/project.yaml"
	cluster_pipeline > "$WORK/rag-index-cluster.yaml"
	chmod 644 "$WORK/rag-index-cluster.yaml"
	run -0 --separate-stderr as_plumb dagrun lint rag-index-cluster.yaml
	# without the image's PLUMB_PIPELINES, uses: rag-index.yaml is not found
	run -2 --separate-stderr as_plumb PLUMB_PIPELINES= dagrun lint rag-index-cluster.yaml
	# the Job's pipeline, run by the local executor as the image would run each
	# task: docs and canaries from the image, state in Redis, the index in Qdrant
	man="$ROOT/usr/share/man"
	params=(-p "docs=$man/man1 $man/man7" -p "state=$REDIS_URL/1"
		-p "canaries=$ROOT/usr/share/plumb/pipelines/examples/canaries.jsonl")
	run -0 --separate-stderr as_plumb QDRANT_URL="$QSRV" dagrun run --quiet --run-id first "${params[@]}" rag-index-cluster.yaml
	run -0 as_plumb dagrun status first
	assert_line "run first Succeeded failures 0"
	assert_line "validate Succeeded exit 0 attempts 1"
	assert_line "commit Succeeded exit 0 attempts 1"
	ndocs=$(ls "$man/man1" "$man/man7" | grep -c '\.[17]$')
	[ "$(lines "$WORK/.plumb/runs/first/tasks/discover.out")" -eq "$ndocs" ]
	# every canary found its document in Qdrant's top 5
	[ "$(curl -s "$QSRV/__points/plumb-docs" | jq '[.points[].payload.doc_id] | unique | length')" -eq "$ndocs" ]
	[ "$(redis-cli -p "$REDIS_PORT" -n 1 dbsize)" -gt 0 ]
	# the state lives in Redis: a second run finds nothing to do
	run -0 --separate-stderr as_plumb QDRANT_URL="$QSRV" dagrun run --quiet --run-id second "${params[@]}" rag-index-cluster.yaml
	[ "$(lines "$WORK/.plumb/runs/second/tasks/discover.out")" -eq 0 ]
	# a canary that misses fails the run, and nothing is committed
	echo '{"id":"miss","text":"how to bake bread","expected":["no-such-page.1"]}' > "$WORK/miss.jsonl"
	redis-cli -p "$REDIS_PORT" -n 1 flushdb > /dev/null
	run -1 --separate-stderr as_plumb QDRANT_URL="$QSRV" dagrun run --quiet --run-id third "${params[@]}" \
		-p canaries=miss.jsonl rag-index-cluster.yaml
	run -0 as_plumb dagrun status third
	assert_line "validate Failed exit 1 attempts 1"
	assert_line "commit Skipped"
}

# --- contrib/k8s ------------------------------------------------------------------------

@test "every manifest of contrib/k8s is valid against the official Kubernetes schemas, strictly" {
	npm_peers
	n=0
	for f in "$T_ROOT"/contrib/k8s/*.yaml; do
		yaml2jsonl "$f" > "$(basename "$f" .yaml).jsonl"
		n=$((n + $(lines "$(basename "$f" .yaml).jsonl")))
	done
	[ "$n" -eq 7 ]
	run -0 node "$T_ROOT/t/helpers/k8s-manifests.mjs" "$NPM_DIR" rbac.jsonl redis.jsonl rag-index-job.jsonl
	assert_output "ok 7"
	# every kind is there: what the walkthrough applies
	run -0 jq -rs 'map(.kind) | sort | join(",")' rbac.jsonl redis.jsonl rag-index-job.jsonl
	assert_output "ConfigMap,Deployment,Job,Role,RoleBinding,Service,ServiceAccount"
}

@test "the manifest validator refuses what the API server refuses" {
	npm_peers
	yaml2jsonl "$T_ROOT/contrib/k8s/redis.yaml" > redis.jsonl
	yaml2jsonl "$T_ROOT/contrib/k8s/rag-index-job.yaml" > job.jsonl
	yaml2jsonl "$T_ROOT/contrib/k8s/rbac.yaml" > rbac.jsonl
	check() { node "$T_ROOT/t/helpers/k8s-manifests.mjs" "$NPM_DIR" "$@"; }
	# an unknown field (strict field validation)
	jq -c 'if .kind == "Deployment" then .spec.template.spec.containers[0].readynessProbe = .spec.template.spec.containers[0].readinessProbe else . end' redis.jsonl > bad.jsonl
	run -1 check bad.jsonl
	assert_output "bad.jsonl:1: Deployment/plumb-redis: spec.template.spec.containers[0].readynessProbe: unknown field"
	# a quantity that is not one, a port that is not a number
	jq -c 'if .kind == "Deployment" then .spec.template.spec.containers[0].resources.limits.memory = "lots" | .spec.template.spec.containers[0].ports[0].containerPort = "6379x" else . end' redis.jsonl > bad.jsonl
	run -1 check bad.jsonl
	assert_output --partial "/spec/template/spec/containers/0/resources/limits/memory: format"
	assert_output --partial "/spec/template/spec/containers/0/ports/0/containerPort: type"
	# a selector that does not match the template, a probe on an unknown port
	jq -c 'if .kind == "Deployment" then .spec.selector.matchLabels["app.kubernetes.io/name"] = "other" | .spec.template.spec.containers[0].livenessProbe.tcpSocket.port = "redsi" else . end' redis.jsonl > bad.jsonl
	run -1 check bad.jsonl
	assert_output --partial "selector does not match template labels"
	assert_output --partial "livenessProbe: no container port named 'redsi'"
	# a Job whose Pods restart, a mount of no volume, a bad name
	jq -c 'if .kind == "Job" then .spec.template.spec.restartPolicy = "Always" | .spec.template.spec.containers[0].volumeMounts[0].name = "nope" | .metadata.name = "Plumb_Job" else . end' job.jsonl > bad.jsonl
	run -1 check bad.jsonl
	assert_output --partial "restartPolicy: 'Always': a Job's Pods must be Never or OnFailure"
	assert_output --partial "volumeMounts[0].name: no volume 'nope'"
	assert_output --partial "metadata.name: 'Plumb_Job' is not a valid DNS-1123 subdomain"
	# a Role rule with a wrongly typed field, a kind no schema here knows
	jq -c 'if .kind == "Role" then .rules[0].verbs = "create" else . end' rbac.jsonl > bad.jsonl
	run -1 check bad.jsonl
	assert_output --partial "Role/plumb-dagrun: /rules/0/verbs: type"
	echo '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"x"}}' > bad.jsonl
	run -1 check bad.jsonl
	assert_output --partial "no schema here for apiVersion 'rbac.authorization.k8s.io/v1' kind 'ClusterRole'"
	run -2 node "$T_ROOT/t/helpers/k8s-manifests.mjs" "$NPM_DIR"
}

@test "rbac.yaml grants exactly the least rights dagrun needs, to its ServiceAccount, in one namespace" {
	run -0 python3 - "$T_ROOT/contrib/k8s" <<'PY'
import glob, sys, yaml
docs = [d for f in sorted(glob.glob(sys.argv[1] + "/*.yaml")) for d in yaml.safe_load_all(open(f)) if d]
kinds = [d["kind"] for d in docs]
assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds, kinds
assert {d["metadata"].get("namespace") for d in docs} == {"plumb"}, "every object in namespace plumb"
roles = [d for d in docs if d["kind"] == "Role"]
assert len(roles) == 1
role = roles[0]
got = set()
for r in role["rules"]:
    assert set(r) == {"apiGroups", "resources", "verbs"}, r   # no resourceNames, no nonResourceURLs
    for g in r["apiGroups"]:
        for res in r["resources"]:
            for v in r["verbs"]:
                assert "*" not in (g, res, v), r
                got.add((g, res, v))
want = {("", "pods", v) for v in ("create", "get", "list", "watch", "delete")} | {("", "pods/log", "get")} \
    | {("", "configmaps", v) for v in ("create", "get", "delete")}
assert got == want, ("extra", sorted(got - want), "missing", sorted(want - got))
rb = [d for d in docs if d["kind"] == "RoleBinding"]
assert len(rb) == 1 and rb[0]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
sa = [d for d in docs if d["kind"] == "ServiceAccount"]
assert len(sa) == 1 and sa[0].get("automountServiceAccountToken") is False
assert rb[0]["subjects"] == [{"kind": "ServiceAccount", "name": sa[0]["metadata"]["name"], "namespace": "plumb"}]
job = [d for d in docs if d["kind"] == "Job"][0]
assert job["spec"]["template"]["spec"]["serviceAccountName"] == sa[0]["metadata"]["name"]
print("ok", len(got))
PY
	assert_output "ok 9"
}

@test "redis.yaml: noeviction under a maxmemory below the limit, applied by a real redis-server, which refuses writes when full and evicts nothing" {
	run -0 python3 - "$T_ROOT/contrib/k8s/redis.yaml" <<'PY'
import sys, yaml
dep = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment"][0]
c = dep["spec"]["template"]["spec"]["containers"][0]
assert c["command"] == ["redis-server"], c["command"]
a = c["args"]
opts = dict(zip(a[0::2], a[1::2]))
assert opts["--maxmemory-policy"] == "noeviction" and opts["--save"] == "" and opts["--appendonly"] == "no", opts
units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
mm = opts["--maxmemory"]
maxmem = int(mm[:-2]) * units[mm[-2:]]
lim = c["resources"]["limits"]["memory"]
assert lim.endswith("Gi") and c["resources"]["requests"]["memory"] == lim
limit = int(lim[:-2]) * 1024**3
assert maxmem <= 0.8 * limit, (maxmem, limit)
assert c["readinessProbe"]["exec"]["command"]
assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
# the args on one line, for redis-server here; then the readiness probe's command
print(" ".join("''" if x == "" else x for x in a))
print(c["readinessProbe"]["exec"]["command"][2])
PY
	args=${lines[0]}
	probe=${lines[1]}
	port=$(free_port)
	mkdir rd
	eval "redis-server $args --port $port --bind 127.0.0.1 --dir '$PWD/rd' --daemonize yes --pidfile '$PWD/rd/pid' --logfile '$PWD/rd/log'"
	for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
	r() { redis-cli -p "$port" "$@"; }
	run -0 r config get maxmemory-policy
	assert_line noeviction
	run -0 r config get maxmemory
	assert_line 805306368
	# the readiness probe's command, against this server's port
	run -0 sh -c "${probe//6379/$port}"
	# full: writes of run data (keys with a TTL, as dagrun's) fail, none is evicted
	r config set maxmemory 3mb > /dev/null
	n=0 refused=""
	while [ "$n" -lt 2000 ]; do
		out=$(r set "plumb:run:r1:$n" "$(head -c 4096 /dev/zero | tr '\0' x)" EX 3600)
		if [ "$out" != OK ]; then refused=$out; break; fi
		n=$((n + 1))
	done
	# every key written before the refusal is still there
	keys=$(r dbsize)
	kill "$(cat rd/pid)"
	[[ "$refused" == *"OOM command not allowed when used memory > 'maxmemory'"* ]]
	[ "$n" -gt 10 ]
	assert_equal "$keys" "$n"
}

@test "the Job runs dagrun in the cluster: the k8s executor, the Redis store, one image everywhere, the pipeline from its ConfigMap" {
	run -0 python3 - "$T_ROOT/contrib/k8s" "$T_ROOT/contrib/Dockerfile" <<'PY'
import re, sys, yaml
docs = [d for f in ("rag-index-job.yaml", "redis.yaml") for d in yaml.safe_load_all(open(sys.argv[1] + "/" + f)) if d]
job = [d for d in docs if d["kind"] == "Job"][0]
cm = [d for d in docs if d["kind"] == "ConfigMap"][0]
svc = [d for d in docs if d["kind"] == "Service"][0]
spec = job["spec"]["template"]["spec"]
c = spec["containers"][0]
a = c["args"]
assert c["command"] == ["dagrun"] and a[0] == "run", a
opt = lambda k: a[a.index(k) + 1]
assert opt("--executor") == "k8s"
port = svc["spec"]["ports"][0]["port"]
assert opt("--store") == "redis://%s:%d/0" % (svc["metadata"]["name"], port), opt("--store")
image = c["image"]
assert opt("--image") == image
pipeline = yaml.safe_load(cm["data"]["rag-index-cluster.yaml"])
assert pipeline["uses"] == "rag-index.yaml" and pipeline["defaults"]["image"] == image
assert pipeline["with"]["state"].startswith("redis://%s:%d/" % (svc["metadata"]["name"], port))
assert not pipeline["with"]["state"].endswith("/0"), "discover-diff's state apart from the run data"
mount = [m for m in c["volumeMounts"] if m["name"] == "pipeline"][0]
vol = [v for v in spec["volumes"] if v["name"] == "pipeline"][0]
assert vol["configMap"]["name"] == cm["metadata"]["name"]
assert a[-1] == mount["mountPath"] + "/rag-index-cluster.yaml"
assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
# the image's user, and a read-only root with /work and /tmp writable
user = re.search(r"^USER (\d+):(\d+)$", open(sys.argv[2]).read(), re.M)
sc = spec["securityContext"]
assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (int(user[1]), int(user[2]), int(user[2]))
assert sc["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/work", "/tmp"}
assert spec["automountServiceAccountToken"] is True
print("ok")
PY
	assert_output ok
}

# --- docs/kubernetes.7 and contrib/README.md ----------------------------------------------

@test "kubernetes(7) renders without warnings, and its examples that need no cluster run" {
	run -0 --separate-stderr groff -man -ww -z "$T_ROOT/docs/kubernetes.7"
	assert_equal "$stderr" ""
	ln -s "$T_ROOT/pipelines" pipelines
	ln -s "$T_ROOT/contrib" contrib
	run_man_examples "$T_ROOT/docs/kubernetes.7" 4
	[ -s rag-index-cluster.yaml ]
	# the cluster's commands are shown without the "$ " prompt, so none ran
	run -0 man_examples "$T_ROOT/docs/kubernetes.7"
	refute_output --regexp '(^|[ |])(kubectl|docker) '
	sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$T_ROOT/docs/kubernetes.7" | grep -q '^kubectl '
}

@test "kubernetes(7) names only files that exist and the Job's own names" {
	sed 's/\\-/-/g' "$T_ROOT/docs/kubernetes.7" > page
	n=0
	for f in $(grep -o 'contrib/[A-Za-z0-9_./-]*[A-Za-z0-9]' page | sort -u); do
		[ -e "$T_ROOT/$f" ] || { echo "kubernetes.7 names $f, which does not exist"; return 1; }
		n=$((n + 1))
	done
	[ "$n" -ge 5 ]
	for name in plumb-dagrun plumb-redis plumb-rag-index plumb-qdrant rag-index-cluster.yaml; do
		grep -q "$name" page
		grep -rq "$name" "$T_ROOT/contrib/k8s"
	done
}

@test "contrib/README.md lists every environment variable of every program's page" {
	missing=""
	for page in "$T_ROOT"/docs/*.1; do
		prog=$(basename "$page" .1)
		row=$(grep "^| \`$prog\` |" "$T_ROOT/contrib/README.md") || { missing="$missing $prog(no row)"; continue; }
		for v in $(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$page" | grep -E '^\.(B|BR|TQ)' |
			grep -oE '\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b' | sort -u); do
			[[ "$row" == *"\`$v\`"* ]] || missing="$missing $prog:$v"
		done
	done
	[ -z "$missing" ] || { echo "missing from contrib/README.md's table:$missing"; return 1; }
}
