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
