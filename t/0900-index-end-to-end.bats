#!/usr/bin/env bats
# The RAG indexing pipeline end to end, as a user runs it:
#   discover-diff DIR --state S | chunk | embed | upsert-local IDX | discover-diff --state S --commit
# Incremental runs keep the store equal to the current documents; unchanged
# documents are not embedded again; kill -9 anywhere, then a re-run, gives the
# store of a clean run, vectors included; both stores write the same acks;
# search canaries pass and fail.

load test_helper

setup_file() {
	start_openai_server
	QDIR=$(mktemp -d "$BATS_FILE_TMPDIR/qdrant.XXXXXX")
	python3 "$BATS_TEST_DIRNAME/qdrant-server.py" --port-file "$QDIR/port" > "$QDIR/log" 2>&1 3>&- &
	echo $! > "$QDIR/pid"
	for _ in $(seq 200); do [ -s "$OPENAI_DIR/port" ] && [ -s "$QDIR/port" ] && break; sleep 0.05; done
	export OPENAI_PORT=$(cat "$OPENAI_DIR/port") OPENAI_DIR QDIR QSRV="http://127.0.0.1:$(cat "$QDIR/port")"
}

teardown_file() {
	stop_openai_server
	kill "$(cat "$QDIR/pid")" 2>/dev/null || true
}

CHUNK="chunk --strategy markdown -s 300 -o 30"

index_local() {	# the pipeline, with the embedder given in $EMBED
	set -o pipefail
	discover-diff --quiet --state state.jsonl docs | $CHUNK | ${EMBED:-embed --dim 64} |
		upsert-local idx | discover-diff --quiet --state state.jsonl --commit
}

expect_store() {	# the store equals the chunks of the documents now in docs/, vectors too
	discover-diff --quiet docs | $CHUNK | ${EMBED:-embed --dim 64} > expected.jsonl
	upsert-local --dump idx > dump.jsonl
	run -0 python3 "$T_ROOT/t/helpers/same-store.py" expected.jsonl dump.jsonl
	echo "$output"
}

index_qdrant() {
	set -o pipefail
	discover-diff --quiet --state qstate.jsonl docs | $CHUNK | embed --dim 64 |
		upsert-qdrant --url "$QSRV" -c docs | discover-diff --quiet --state qstate.jsonl --commit
}

qdump() {	# every point of collection $1 as a record: its payload, point id and vector
	curl -sf "$QSRV/__points/$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["points"]:
    r = dict(p["payload"])
    r["qdrant_id"] = p["id"]
    r["vector"] = p["vector"]
    print(json.dumps(r))'
}

expect_qdrant() {	# the collection equals the chunks of the documents now in docs/
	# (not their vectors: a Cosine collection holds them normalized; a
	# clean run's collection is the reference for those)
	discover-diff --quiet docs | $CHUNK > expected.jsonl
	qdump docs > qdump.jsonl
	run -0 python3 "$T_ROOT/t/helpers/same-store.py" expected.jsonl qdump.jsonl
	echo "$output"
}

inputs() { curl -s "http://127.0.0.1:$OPENAI_PORT/__stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["inputs"])'; }

@test "incremental indexing: edits, shortened, deleted and added documents, nothing stale, nothing embedded twice" {
	curl -s -X POST "http://127.0.0.1:$OPENAI_PORT/__reset" > /dev/null
	export EMBED="embed --backend http --base-url http://127.0.0.1:$OPENAI_PORT/v1 --model m --dim 32"
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 12 1
	run -0 index_local
	first=$(inputs)
	expect_store	# embeds every chunk again, for the vectors to compare
	[ "$first" -eq "$(grep -vc '"op":' expected.jsonl)" ]
	first=$(inputs)

	# nothing changed: nothing is embedded
	run -0 index_local
	assert_equal "$(inputs)" "$first"

	# edit one, shorten one, delete one, add one
	printf '\nappended words: canary zulu\n' >> docs/doc001.md
	printf '# Short\n\nnow a single short paragraph.\n' > docs/doc002.md
	rm docs/doc003.md
	printf '# New\n\nbrand new document about the quebec romeo pipeline.\n' > docs/new.md
	run -0 index_local
	changed=$(for f in doc001.md doc002.md new.md; do
		printf '{"id":"%s","path":"docs/%s"}\n' "$f" "$f"; done | $CHUNK | grep -vc '"op":')
	assert_equal "$(inputs)" "$((first + changed))"
	expect_store
	grep -q '"doc_id":"doc003.md"' dump.jsonl && false
	true
}

@test "search canaries over the indexed store pass, and a missed one fails with 1" {
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 8 2
	printf '# Install\n\nTo install plumb run make deps then make install.\n' > docs/install.md
	run -0 index_local
	echo '{"id":"q1","text":"how to install plumb with make deps","expected":["install.md"]}' > canary.jsonl
	run -0 --separate-stderr search --local idx -k 3 --dim 64 canary.jsonl
	[[ "$output" == *'"hits":[{"id":"install.md#0","doc_id":"install.md"'* ]]
	echo '{"id":"q2","text":"alpha bravo charlie","expected":["install.md"]}' > miss.jsonl
	run -1 --separate-stderr search --local idx -k 1 --dim 64 miss.jsonl
	[[ "$stderr" == *'canary "q2" missed "install.md"'* ]]
}

crash_loop() {	# crash_loop TRIALS SINK STATE [EDITS]: runs with a random process killed
	local trials=$1 sink=$2 st=$3 edits=${4:-25} killed=0 t=0 dur=30 t0
	# until that many runs had a process killed mid-way (a run may end
	# before its kill), at most four times as many runs
	while [ "$killed" -lt "$trials" ] && [ "$t" -lt $((4 * trials)) ]; do
		t=$((t + 1))
		python3 "$T_ROOT/t/helpers/corpus-edit.py" docs mutate "$t" "$edits"
		t0=$(date +%s%N)
		setsid bash -o pipefail -c "discover-diff --quiet --state $st docs | $CHUNK | embed --dim 64 --batch 8 |
			$sink | discover-diff --quiet --state $st --commit" 2>/dev/null &
		leader=$!
		# at a random moment within the time the last whole run took, so
		# the kill lands mid-run on a fast machine and on a loaded one
		sleep "$(awk -v d="$dur" -v r="$RANDOM" 'BEGIN { printf "%.4f", d * r / 32768 / 1000 }')"
		# the pipeline's programs are the children of its shell; not the
		# group, which under SAN=1 also holds LeakSanitizer's tracer (a
		# clone of the exiting program: killing it hangs that program)
		victims=($(pgrep -P "$leader" || true))
		if [ ${#victims[@]} -gt 0 ]; then
			kill -9 "${victims[RANDOM % ${#victims[@]}]}" 2>/dev/null && killed=$((killed + 1))
		fi
		# a run that does not end is a failure to report, not a hang of
		# the suite
		local waited=0
		while running "$leader" && [ "$waited" -lt 1200 ]; do
			sleep 0.05
			waited=$((waited + 1))
		done
		if running "$leader"; then
			echo "# run $t did not end within 60 s:"
			ps -o pid,ppid,stat,wchan:20,args -g "$leader" | sed 's/^/# /'
			pkill -9 -g "$leader" 2>/dev/null || true
			return 1
		fi
		if wait "$leader"; then
			dur=$((($(date +%s%N) - t0) / 1000000))
		fi
		pkill -9 -g "$leader" 2>/dev/null || true
	done
	echo "# $killed of $t runs had a process killed"
	[ "$killed" -ge $((trials / 2)) ]
	# one clean run picks up whatever the crashed runs left
	bash -o pipefail -c "discover-diff --quiet --state $st docs | $CHUNK | embed --dim 64 | $sink | discover-diff --quiet --state $st --commit"
}

running() {	# whether process $1 exists and is not a zombie
	local st
	read -r st < "/proc/$1/stat" 2>/dev/null || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

@test "kill -9 of any pipeline process at a random moment, then a re-run, gives the store of a clean run" {
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 150 3
	crash_loop "${PLUMB_CRASH_TRIALS:-20}" "upsert-local -b 16 idx" state.jsonl
	expect_store
	# and a clean run from nothing gives the same points: ids, payloads
	# and vectors, bit for bit
	mkdir clean && cp -r docs clean/ && cd clean
	discover-diff --quiet docs | $CHUNK | embed --dim 64 | upsert-local idx > /dev/null
	upsert-local --dump idx > ../clean-dump.jsonl
	cd ..
	run -0 python3 "$T_ROOT/t/helpers/same-store.py" clean-dump.jsonl dump.jsonl
	assert_output --partial ", vectors and members too"
}

@test "kill -9 at random moments with upsert-qdrant: the collection ends equal to the documents and to a clean run's" {
	curl -sf -X POST "$QSRV/__reset" > /dev/null
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 100 5
	crash_loop "${PLUMB_CRASH_TRIALS:-12}" "upsert-qdrant --url $QSRV -c docs -b 16" qstate.jsonl 50
	expect_qdrant
	# and a clean run from nothing, into another collection, gives the
	# same points: ids, payloads and vectors, bit for bit
	mkdir clean && cp -r docs clean/ && cd clean
	discover-diff --quiet docs | $CHUNK | embed --dim 64 | upsert-qdrant --url "$QSRV" -c clean > /dev/null
	cd ..
	qdump clean > clean-dump.jsonl
	run -0 python3 "$T_ROOT/t/helpers/same-store.py" clean-dump.jsonl qdump.jsonl
	assert_output --partial ", vectors and members too"
}

@test "the same pipeline with upsert-qdrant against the Qdrant test server, then search --qdrant" {
	curl -sf -X POST "$QSRV/__reset" > /dev/null
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 10 4
	printf '# Install\n\nTo install plumb run make deps then make install.\n' > docs/install.md
	run -0 index_qdrant
	expect_qdrant
	printf '\nappended words: canary zulu\n' >> docs/doc001.md
	printf '# Short\n\nnow a single short paragraph.\n' > docs/doc002.md
	rm docs/doc003.md
	printf '# New\n\nbrand new document.\n' > docs/new.md
	run -0 index_qdrant
	expect_qdrant
	run -0 index_qdrant
	expect_qdrant
	echo '{"id":"q1","text":"how to install plumb with make deps","expected":["install.md"]}' |
		{ run -0 --separate-stderr search --qdrant "$QSRV" -c docs -k 3 --dim 64; echo "$output"; } > hits.jsonl
	grep -q '"doc_id":"install.md"' hits.jsonl
}

# markers and deletes with members of their own, which acks carry (written
# with odd spacing, escapes and a number's trailing zero, so that only
# verbatim copies compare equal), then deletes of the documents named
with_extras() {
	python3 -c '
import json, sys
for i, l in enumerate(sys.stdin):
    r = json.loads(l)
    if r.get("op") == "done":
        r["meta"] = {"run": sys.argv[1], "n": i, "who": "caf\u00e9"}
    elif r.get("op") == "delete":
        r["why"] = "gone"
    print(json.dumps(r))
for d in sys.argv[2:]:
    print("{\"op\":\"delete\",\"doc_id\":%s,\"why\":\"gone\",\"at\":[1, 2.50]}" % json.dumps(d))' "$@"
}

@test "upsert-local and upsert-qdrant write the same acks, byte for byte, for the same input" {
	curl -sf -X POST "$QSRV/__reset" > /dev/null
	python3 "$T_ROOT/t/helpers/corpus-edit.py" docs init 6 6
	printf '# Caf\xc3\xa9\n\nan escaped doc_id.\n' > $'docs/caf\xc3\xa9.md'
	: > docs/empty.md
	discover-diff --quiet --state state.jsonl docs | $CHUNK | embed --dim 64 | with_extras r1 never-there.md > in1.jsonl
	grep -q '"doc_id": "caf\\u00e9.md"' in1.jsonl
	run -0 --separate-stderr upsert-local idx in1.jsonl
	printf '%s\n' "$output" > local1.acks
	run -0 --separate-stderr upsert-qdrant --url "$QSRV" -c acks in1.jsonl
	printf '%s\n' "$output" > qdrant1.acks
	# one ack per document, carrying its marker's members
	assert_equal "$(lines local1.acks)" 9
	grep -q '^{"op":"indexed","doc_id":"doc001.md","doc_sha256":"[0-9a-f]*","chunks":[0-9]*,"meta":{"run": "r1", "n": [0-9]*, "who": "caf\\u00e9"}}$' local1.acks
	grep -q '^{"op":"deleted","doc_id":"never-there.md","why":"gone","at":\[1, 2.50\]}$' local1.acks
	cmp local1.acks qdrant1.acks
	discover-diff --quiet --state state.jsonl --commit < local1.acks

	# a second run: changed, emptied and deleted documents
	printf '\nappended words.\n' >> docs/doc001.md
	: > docs/doc002.md
	rm docs/doc003.md
	discover-diff --quiet --state state.jsonl docs | $CHUNK | embed --dim 64 | with_extras r2 > in2.jsonl
	grep -q '"op": "delete", "doc_id": "doc003.md", "why": "gone"' in2.jsonl
	run -0 --separate-stderr upsert-local idx in2.jsonl
	printf '%s\n' "$output" > local2.acks
	run -0 --separate-stderr upsert-qdrant --url "$QSRV" -c acks in2.jsonl
	printf '%s\n' "$output" > qdrant2.acks
	assert_equal "$(lines local2.acks)" 3
	cmp local2.acks qdrant2.acks
}

@test "embed and search with the http backend: queries are embedded by the same server" {
	mkdir docs
	printf '# A\n\nalpha bravo charlie\n' > docs/a.md
	printf '# B\n\ndelta echo foxtrot\n' > docs/b.md
	export OPENAI_BASE_URL="http://127.0.0.1:$OPENAI_PORT/v1"
	discover-diff --quiet docs | chunk | embed --backend http --model m --dim 32 | upsert-local idx > /dev/null
	# this test server maps equal texts to equal vectors: the query finds its twin
	python3 -c 'import json; print(json.dumps({"id": "q", "text": "# B\n\ndelta echo foxtrot", "expected": ["b.md"]}))' > q.jsonl
	run -0 --separate-stderr search --local idx --backend http --model m --dim 32 -k 1 q.jsonl
	[[ "$output" == *'"hits":[{"id":"b.md#0","doc_id":"b.md","score":'* ]]
	run -2 --separate-stderr search --local idx --backend http --model m --dim 32 --base-url "http://127.0.0.1:$OPENAI_PORT/nope" q.jsonl
	[[ "$stderr" == *"404"* ]]
}
