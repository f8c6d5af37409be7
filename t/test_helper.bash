# Loaded by every t/*.bats file. Each test runs in its own temp dir with a

bats_require_minimum_version 1.5.0
# fixed PATH (plumb's bin/ first), a temp HOME and LC_ALL=C.

bats_load_library bats-support
bats_load_library bats-assert

T_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
T_FIXTURES=$T_ROOT/t/fixtures
: "${PLUMB_BIN:=$T_ROOT/bin}"

setup() {
	export PATH="$PLUMB_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	export HOME="$BATS_TEST_TMPDIR/home"
	export LC_ALL=C
	unset PLUMB_KEEP_GOING PLUMB_REJECTS PLUMB_VERBOSE PLUMB_STATE QDRANT_URL \
		QDRANT_API_KEY OPENAI_BASE_URL OPENAI_API_KEY
	mkdir -p "$HOME"
	cd "$BATS_TEST_TMPDIR" || return 1
	if declare -F local_setup >/dev/null; then local_setup; fi
}

# A free TCP port on loopback.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Start a private redis-server for this file (call from setup_file); sets
# REDIS_PORT and REDIS_URL. stop_redis in teardown_file.
start_redis() {
	REDIS_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/redis.XXXXXX")
	REDIS_PORT=$(free_port)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
		--save '' --appendonly no --daemonize yes --pidfile "$REDIS_DIR/pid" \
		--logfile "$REDIS_DIR/log" >/dev/null
	for _ in $(seq 100); do
		redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
		sleep 0.05
	done
	redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { cat "$REDIS_DIR/log" >&2; return 1; }
	export REDIS_PORT REDIS_DIR REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

stop_redis() {
	[ -n "${REDIS_DIR:-}" ] && [ -f "$REDIS_DIR/pid" ] || return 0
	kill "$(cat "$REDIS_DIR/pid")" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$(cat "$REDIS_DIR/pid")" 2>/dev/null || break; sleep 0.05; done
}

# Line count of a file, without the leading spaces some wc versions print.
lines() { wc -l < "$1" | tr -d ' '; }

# The runnable lines of a man page's EXAMPLES section: those starting "$ ".
man_examples() {
	sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$1" | sed -n 's/^\$ //p' | sed 's/\\-/-/g; s/\\e/\\/g'
}

# Run every example of a man page (run_man_examples PAGE MIN [--output]):
# each must exit 0 (and with --output print something), and there must be at
# least MIN of them.
run_man_examples() {
	local page=$1 min=$2 want_output=${3:-} n=0 cmd
	while IFS= read -r cmd; do
		run -0 bash -o pipefail -c "$cmd"
		if [ -n "$want_output" ] && [ -z "$output" ]; then
			echo "example printed nothing: $cmd"
			return 1
		fi
		n=$((n + 1))
	done < <(man_examples "$page")
	[ "$n" -ge "$min" ] || { echo "$page: $n examples, want at least $min"; return 1; }
}

# Start a private prometheus-pushgateway for this file (call from setup_file):
# on loopback, on a free port, its persistence file in a temp dir, the admin
# API on (so a test can wipe it); waits until it is ready. Sets
# PUSHGATEWAY_PORT, PUSHGATEWAY_DIR and PUSHGATEWAY_URL. stop_pushgateway in
# teardown_file.
start_pushgateway() {
	PUSHGATEWAY_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/pushgateway.XXXXXX")
	PUSHGATEWAY_PORT=$(free_port)
	prometheus-pushgateway --web.listen-address="127.0.0.1:$PUSHGATEWAY_PORT" \
		--persistence.file="$PUSHGATEWAY_DIR/metrics.data" --web.enable-admin-api \
		--log.level=warn > "$PUSHGATEWAY_DIR/log" 2>&1 3>&- &
	echo $! > "$PUSHGATEWAY_DIR/pid"
	for _ in $(seq 200); do
		curl -sf "http://127.0.0.1:$PUSHGATEWAY_PORT/-/ready" > /dev/null 2>&1 && break
		sleep 0.05
	done
	curl -sf "http://127.0.0.1:$PUSHGATEWAY_PORT/-/ready" > /dev/null ||
		{ cat "$PUSHGATEWAY_DIR/log" >&2; return 1; }
	export PUSHGATEWAY_PORT PUSHGATEWAY_DIR PUSHGATEWAY_URL="http://127.0.0.1:$PUSHGATEWAY_PORT"
}

stop_pushgateway() {
	[ -n "${PUSHGATEWAY_DIR:-}" ] && [ -f "$PUSHGATEWAY_DIR/pid" ] || return 0
	kill "$(cat "$PUSHGATEWAY_DIR/pid")" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$(cat "$PUSHGATEWAY_DIR/pid")" 2>/dev/null || break; sleep 0.05; done
}

# Start t/openai-server.py for this file (call from setup_file) with the
# given options (--api-key, --models, ...); waits for its port. Sets
# OPENAI_DIR (its port file, pid and log) and OPENAI_PORT.
# stop_openai_server in teardown_file.
start_openai_server() {
	OPENAI_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/openai.XXXXXX")
	python3 "$T_ROOT/t/openai-server.py" --port-file "$OPENAI_DIR/port" "$@" \
		> "$OPENAI_DIR/log" 2>&1 3>&- &
	echo $! > "$OPENAI_DIR/pid"
	for _ in $(seq 200); do [ -s "$OPENAI_DIR/port" ] && break; sleep 0.05; done
	[ -s "$OPENAI_DIR/port" ] || { cat "$OPENAI_DIR/log" >&2; return 1; }
	export OPENAI_PORT=$(cat "$OPENAI_DIR/port") OPENAI_DIR
}

stop_openai_server() {
	[ -n "${OPENAI_DIR:-}" ] && [ -f "$OPENAI_DIR/pid" ] || return 0
	kill "$(cat "$OPENAI_DIR/pid")" 2>/dev/null || true
}

# Start t/k8s-server.py for this file (call from setup_file): HTTPS with a CA
# it makes in KDIR/tls, the bearer token "secret", every accepted manifest
# logged to KDIR/manifests.jsonl. Sets KDIR, KPORT and KSRV.
# stop_k8s_server in teardown_file.
start_k8s_server() {
	KDIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/k8s.XXXXXX")
	python3 "$T_ROOT/t/k8s-server.py" --port-file "$KDIR/port" --tls-dir "$KDIR/tls" \
		--token secret:admin --manifest-log "$KDIR/manifests.jsonl" "$@" \
		> "$KDIR/log" 2>&1 3>&- &
	echo $! > "$KDIR/pid"
	for _ in $(seq 200); do [ -s "$KDIR/port" ] && break; sleep 0.05; done
	[ -s "$KDIR/port" ] || { cat "$KDIR/log" >&2; return 1; }
	KPORT=$(cat "$KDIR/port")
	export KDIR KPORT KSRV="https://127.0.0.1:$KPORT"
}

# start_k8s_cluster NAMESPACE: the server, playing a kubelet that runs plumb's
# programs (dagrun step) in its Pods, and KDIR/kubeconfig with a context on it
# in NAMESPACE. Call from setup_file; stop_k8s_server in teardown_file.
start_k8s_cluster() {
	export PATH="$PLUMB_BIN:$PATH"
	start_k8s_server
	cat > "$KDIR/kubeconfig" <<-K
	apiVersion: v1
	kind: Config
	current-context: t
	clusters:
	- name: t
	  cluster: {server: "$KSRV", certificate-authority: "$KDIR/tls/ca.crt"}
	users:
	- name: me
	  user: {token: secret}
	contexts:
	- name: t
	  context: {cluster: t, user: me, namespace: $1}
	K
}

stop_k8s_server() {
	[ -n "${KDIR:-}" ] && [ -f "$KDIR/pid" ] || return 0
	kill "$(cat "$KDIR/pid")" 2>/dev/null || true
}

# Start t/webhook-server.py for this file (call from setup_file) with hook
# path $1. Sets WEBHOOK_DIR and WEBHOOK_PORT. stop_webhook_server in
# teardown_file.
start_webhook_server() {
	WEBHOOK_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-/tmp}/webhook.XXXXXX")
	python3 "$T_ROOT/t/webhook-server.py" --port-file "$WEBHOOK_DIR/port" --hook "$1" \
		> "$WEBHOOK_DIR/log" 2>&1 3>&- &
	echo $! > "$WEBHOOK_DIR/pid"
	for _ in $(seq 200); do [ -s "$WEBHOOK_DIR/port" ] && break; sleep 0.05; done
	[ -s "$WEBHOOK_DIR/port" ] || { cat "$WEBHOOK_DIR/log" >&2; return 1; }
	export WEBHOOK_PORT=$(cat "$WEBHOOK_DIR/port") WEBHOOK_DIR
}

stop_webhook_server() {
	[ -n "${WEBHOOK_DIR:-}" ] && [ -f "$WEBHOOK_DIR/pid" ] || return 0
	kill "$(cat "$WEBHOOK_DIR/pid")" 2>/dev/null || true
}
