#!/usr/bin/env bats
# upsert-local: records, acks and their order, overwrites, stale chunks,
# deletes, durability under kill -9, snapshots, compaction, locking, bad input.

load test_helper

# vectors ARGS...: chunked vector records of the documents gen-docs.py makes
vectors() {
	python3 "$T_FIXTURES/vstore/gen-docs.py" "$@" | chunk -s 60 -o 0 |
		python3 "$T_FIXTURES/vstore/add-vectors.py"
}

# sorted "id sha" lines of a store
contents() {
	upsert-local --dump "$1" | python3 -c '
import json, sys
for r in sorted((json.loads(l) for l in sys.stdin), key=lambda r: r["id"]):
    print(r["id"], r.get("doc_sha256", "-")[:8])'
}

# stat FIELD DIR: one field of --stats
stat() {
	upsert-local --stats "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# the markers of a vector stream as the acks they should become, in order
want_acks() {
	python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("op") == "done":
        print(json.dumps({"op": "indexed", "doc_id": r["doc_id"], "doc_sha256": r["doc_sha256"], "chunks": r["chunks"]}, separators=(",", ":")))
    elif r.get("op") == "delete":
        print(json.dumps({"op": "deleted", "doc_id": r["doc_id"]}, separators=(",", ":")))' "$1"
}

@test "upsert-local --help prints usage on stdout and exits 0" {
	run -0 --separate-stderr upsert-local --help
	assert_output --partial "usage: upsert-local [-b N]"
	assert_output --partial "PLUMB_LOCAL_STORE"
	[ -z "$stderr" ]
	run -0 upsert-local --version
	assert_output --regexp '^upsert-local \(plumb\) '
}

@test "upsert-local rejects bad usage with exit 2" {
	run -2 --separate-stderr upsert-local </dev/null
	[[ "$stderr" == *"no store directory (give DIR, or set PLUMB_LOCAL_STORE)"* ]]
	run -2 --separate-stderr upsert-local --batch 0 st
	[[ "$stderr" == *"--batch: '0' is not a whole number"* ]]
	run -2 --separate-stderr upsert-local --dump st extra.jsonl
	[[ "$stderr" == *"take no input files"* ]]
	PLUMB_BATCH=x run -2 --separate-stderr upsert-local st </dev/null
	[[ "$stderr" == *"PLUMB_BATCH: 'x'"* ]]
	run -2 --separate-stderr upsert-local --stats nowhere
	[[ "$stderr" == *"cannot open store 'nowhere'"* ]]
}

@test "upsert-local stores every record but its vector and acks each document in input order" {
	vectors 12 > in.jsonl
	run -0 --separate-stderr upsert-local -b 5 st in.jsonl
	[ -z "$stderr" ]
	assert_equal "$output" "$(want_acks in.jsonl)"
	assert_equal "$(stat live st)" "$(grep -c '"vector"' in.jsonl)"
	assert_equal "$(stat dim st)" 8
	assert_equal "$(stat model st)" test-model
	upsert-local --dump st > dump.jsonl
	python3 - <<'PY'
import json, struct
f32 = lambda v: [struct.unpack("f", struct.pack("f", x))[0] for x in v]
want = {r["id"]: r for r in map(json.loads, open("in.jsonl")) if "vector" in r}
got = {r["id"]: r for r in map(json.loads, open("dump.jsonl"))}
assert want.keys() == got.keys()
for k, r in want.items():
    g = got[k]
    assert f32(g.pop("vector")) == f32(r.pop("vector")), k
    assert g == r, (g, r)
    assert list(g) == list(r), "members keep their order"
PY
}

@test "upsert-local keeps payload members verbatim, escapes and all" {
	printf '%s\n' '{"id":"a\u00e9#0","doc_id":"a\u00e9","doc_sha256":"s","chunk":0,"text":"x \"q\"","n":1.50,"vector":[1,0],"model":"m"}' \
		'{"op":"done","doc_id":"a\u00e9","doc_sha256":"s","chunks":1}' > in.jsonl
	run -0 upsert-local st in.jsonl
	# the ack's strings are decoded and written again, as upsert-qdrant's
	assert_output "$(printf '{"op":"indexed","doc_id":"a\xc3\xa9","doc_sha256":"s","chunks":1}')"
	run -0 upsert-local --dump st
	assert_output '{"id":"a\u00e9#0","doc_id":"a\u00e9","doc_sha256":"s","chunk":0,"text":"x \"q\"","n":1.50,"model":"m","vector":[1,0]}'
}

@test "upsert-local overwrites by id: a re-run does not duplicate" {
	vectors 10 > in.jsonl
	upsert-local st in.jsonl > acks1
	contents st > before
	run -0 upsert-local st in.jsonl
	assert_equal "$output" "$(cat acks1)"
	assert_equal "$(contents st)" "$(cat before)"
	assert_equal "$(stat live st)" "$(grep -c '"vector"' in.jsonl)"
	assert_equal "$(stat dead st)" 0	# the overwritten segment was dropped whole
}

@test "upsert-local deletes the stale chunks of a changed document" {
	vectors 8 1 > v1.jsonl
	vectors 8 2 > v2.jsonl
	upsert-local st v1.jsonl > /dev/null
	run -0 upsert-local st v2.jsonl
	assert_equal "$output" "$(want_acks v2.jsonl)"
	# exactly the v2 chunks remain, whatever their count was in v1
	want=$(python3 -c '
import json, sys
for r in sorted((json.loads(l) for l in open("v2.jsonl")), key=lambda r: r.get("id", "")):
    if "vector" in r: print(r["id"], r["doc_sha256"][:8])')
	assert_equal "$(contents st)" "$want"
}

@test "upsert-local drops chunks past the count when a document is re-chunked smaller" {
	python3 "$T_FIXTURES/vstore/gen-docs.py" 3 > docs.jsonl
	chunk -s 60 -o 0 docs.jsonl | python3 "$T_FIXTURES/vstore/add-vectors.py" > small.jsonl
	chunk -s 400 -o 0 docs.jsonl | python3 "$T_FIXTURES/vstore/add-vectors.py" > big.jsonl
	upsert-local st small.jsonl > /dev/null
	run -0 upsert-local st big.jsonl
	# same doc_sha256, fewer chunks: the ones numbered past the count go
	assert_equal "$(contents st | wc -l)" "$(grep -c '"vector"' big.jsonl)"
}

@test "upsert-local deletes a document on a delete record, and acks it" {
	vectors 5 > in.jsonl
	upsert-local st in.jsonl > /dev/null
	printf '%s\n' '{"op":"delete","doc_id":"d2.md"}' '{"op":"delete","doc_id":"never-there"}' > del.jsonl
	run -0 upsert-local st del.jsonl
	assert_line -n 0 '{"op":"deleted","doc_id":"d2.md"}'
	assert_line -n 1 '{"op":"deleted","doc_id":"never-there"}'
	run -0 contents st
	refute_output --partial "d2.md#"
	assert_output --partial "d3.md#0"
}

@test "upsert-local: a document now empty (chunks 0) loses all its points" {
	vectors 3 > in.jsonl
	upsert-local st in.jsonl > /dev/null
	printf '%s\n' '{"op":"done","doc_id":"d1.md","doc_sha256":"e3b0","chunks":0}' > empty.jsonl
	run -0 upsert-local st empty.jsonl
	assert_output '{"op":"indexed","doc_id":"d1.md","doc_sha256":"e3b0","chunks":0}'
	run -0 contents st
	refute_output --partial "d1.md#"
}

@test "upsert-local does not ack a document whose chunks did not all arrive" {
	vectors 4 > all.jsonl
	grep -v '"id": "d2.md#1"' all.jsonl > in.jsonl
	run -65 --separate-stderr upsert-local st in.jsonl
	[[ "$stderr" == *'document "d2.md" has '*' of its '*' chunks in the store; not acknowledged'* ]]
	# the documents before it are stored and acked
	assert_equal "$output" "$(want_acks all.jsonl | head -2)"
	run -65 --separate-stderr upsert-local --keep-going st2 in.jsonl
	assert_equal "$output" "$(want_acks all.jsonl | grep -v d2.md)"
}

@test "upsert-local rejects records without a vector, and unknown ops" {
	python3 "$T_FIXTURES/vstore/gen-docs.py" 1 | chunk -s 60 -o 0 > chunks.jsonl
	run -65 --separate-stderr upsert-local st chunks.jsonl
	[[ "$stderr" == *'upsert-local: chunks.jsonl:1: record has no "vector" (is embed missing from the pipeline?)'* ]]
	echo '{"op":"upsert","doc_id":"x"}' | { run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'stdin:1: unknown op "upsert"'* ]]; }
	# a record with "op" is a marker, vector or not, as in upsert-qdrant (a
	# document embedded straight from discover-diff, without chunk)
	echo '{"id":"x","op":"upsert","text":"t","vector":[1,0]}' |
		{ run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'stdin:1: unknown op "upsert" (want "done" or "delete")'* ]]; }
	echo '{"vector":[1,2]}' | { run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'stdin:1: record has no "id"'* ]]; }
	echo '{"id":"a","vector":[1,"x"]}' | { run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'"vector": element 1 is not a number'* ]]; }
	echo '{"id":"a","vector":[]}' | { run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'"vector" has 0 elements'* ]]; }
	echo '{"id":"a","vector":[1e40]}' | { run -65 --separate-stderr upsert-local st; [[ "$stderr" == *'out of the range of a float'* ]]; }
}

# bad MARKER...: each marker alone is rejected with that message
bad_marker() {
	local msg=$1 m
	shift
	for m in "$@"; do
		echo "$m" > m.jsonl
		run -65 --separate-stderr upsert-local st m.jsonl
		assert_equal "$stderr" "upsert-local: m.jsonl:1: $msg"
		assert_output ""
	done
}

@test "upsert-local rejects markers without doc_id, doc_sha256 or chunks, as upsert-qdrant does" {
	bad_marker '"done" marker has no "doc_id" string' \
		'{"op":"done","doc_sha256":"x","chunks":0}' \
		'{"op":"done","doc_id":"","doc_sha256":"x","chunks":0}' \
		'{"op":"done","doc_id":7,"doc_sha256":"x","chunks":0}'
	bad_marker '"done" marker has no "doc_sha256" string' \
		'{"op":"done","doc_id":"x","chunks":1}' \
		'{"op":"done","doc_id":"x","doc_sha256":"","chunks":1}' \
		'{"op":"done","doc_id":"x","doc_sha256":null,"chunks":1}'
	bad_marker '"done" marker has no "chunks" count' \
		'{"op":"done","doc_id":"x","doc_sha256":"s"}' \
		'{"op":"done","doc_id":"x","doc_sha256":"s","chunks":-1}' \
		'{"op":"done","doc_id":"x","doc_sha256":"s","chunks":1.5}' \
		'{"op":"done","doc_id":"x","doc_sha256":"s","chunks":"1"}'
	bad_marker '"delete" record has no "doc_id" string' \
		'{"op":"delete"}' '{"op":"delete","doc_id":""}' '{"op":"delete","doc_id":["x"]}'
}

@test "upsert-local: a marker without doc_sha256 deletes nothing and acks nothing" {
	# it once took the chunk just written for a stale one, deleted it and
	# acked the document with "chunks":0
	printf '%s\n' '{"id":"a#0","doc_id":"a","doc_sha256":"s1","chunk":0,"vector":[1,0]}' \
		'{"op":"done","doc_id":"a"}' > in.jsonl
	run -65 --separate-stderr upsert-local st in.jsonl
	assert_equal "$stderr" 'upsert-local: in.jsonl:2: "done" marker has no "doc_sha256" string'
	assert_output ""
	run -0 upsert-local --dump st
	assert_output '{"id":"a#0","doc_id":"a","doc_sha256":"s1","chunk":0,"vector":[1,0]}'
	# with a count, the message names what is missing, not the chunks
	printf '%s\n' '{"op":"done","doc_id":"a","chunks":1}' > m.jsonl
	run -65 --separate-stderr upsert-local st m.jsonl
	assert_equal "$stderr" 'upsert-local: m.jsonl:1: "done" marker has no "doc_sha256" string'
	run -0 contents st
	assert_output "a#0 s1"
	# --keep-going: the bad marker is reported, the documents after it acked
	bad='{"op":"done","doc_id":"d1.md","chunks":1}'
	{ vectors 1; echo "$bad"; vectors 1 1 2; } > kg.jsonl
	n=$(grep -nF "$bad" kg.jsonl | cut -d: -f1)
	run -65 --separate-stderr upsert-local --keep-going st2 kg.jsonl
	[[ "$stderr" == *"kg.jsonl:$n: \"done\" marker has no \"doc_sha256\" string"* ]]
	grep -vF "$bad" kg.jsonl > good.jsonl
	assert_equal "$output" "$(want_acks good.jsonl)"
	# and the store is that of the input without the bad marker
	upsert-local st3 good.jsonl > /dev/null
	assert_equal "$(upsert-local --dump st2 | sort)" "$(upsert-local --dump st3 | sort)"
}

@test "upsert-local acks carry their marker's other members, as upsert-qdrant's do" {
	printf '%s\n' '{"id":"a#0","doc_id":"a","doc_sha256":"s","chunk":0,"vector":[1,0]}' \
		'{"meta":{"k":1},"op":"done","doc_id":"a","chunks":1,"doc_sha256":"s","n":1.50}' \
		'{"op":"delete","why":"gone","doc_id":"b"}' \
		'{"op":"done","doc_id":"e\u0301","doc_sha256":"\u0073","chunks":0,"tags":["x", "y"]}' > in.jsonl
	run -0 --separate-stderr upsert-local st in.jsonl
	[ -z "$stderr" ]
	assert_equal "$output" "$(printf '%s\n' \
		'{"op":"indexed","doc_id":"a","doc_sha256":"s","chunks":1,"meta":{"k":1},"n":1.50}' \
		'{"op":"deleted","doc_id":"b","why":"gone"}' \
		"$(printf '{"op":"indexed","doc_id":"e\xcc\x81","doc_sha256":"s","chunks":0,"tags":["x", "y"]}')")"
}

@test "upsert-local stops at malformed JSON with file and line, having stored and acked what came before" {
	vectors 2 > good.jsonl
	{ cat good.jsonl; echo '{"id":"x", nope}'; vectors 1 5; } > in.jsonl
	n=$(($(lines good.jsonl) + 1))
	run -65 --separate-stderr upsert-local -b 1000 st in.jsonl
	[[ "$stderr" == *"upsert-local: in.jsonl:$n: invalid JSON: "*"(column 12)"* ]]
	assert_equal "$output" "$(want_acks good.jsonl)"
	assert_equal "$(stat live st)" "$(grep -c '"vector"' good.jsonl)"
}

@test "upsert-local --rejects keeps bad lines verbatim and exits 0" {
	{ vectors 1; echo 'not json'; echo '{"id":"q","text":"no vector"}'; vectors 1 1 3; } > in.jsonl
	run -0 --separate-stderr upsert-local --rejects bad.jsonl st in.jsonl
	assert_equal "$(cat bad.jsonl)" "$(printf '%s\n' 'not json' '{"id":"q","text":"no vector"}')"
	assert_equal "${#lines[@]}" 2
	[[ "$stderr" == *"2 bad input lines written to the rejects file"* ]]
}

@test "upsert-local rejects a vector of another dimension or model, storing nothing of it" {
	vectors 2 > in.jsonl
	upsert-local st in.jsonl > /dev/null
	vectors 1 1 7 | python3 "$T_FIXTURES/vstore/add-vectors.py" --dim 12 > wide.jsonl
	run -65 --separate-stderr upsert-local st wide.jsonl
	[[ "$stderr" == *"wide.jsonl:1: vector has 12 dimensions, the store 'st' holds 8"* ]]
	run -0 contents st
	refute_output --partial "d7.md"
	vectors 1 1 7 | python3 "$T_FIXTURES/vstore/add-vectors.py" --model other > other.jsonl
	run -65 --separate-stderr upsert-local st other.jsonl
	[[ "$stderr" == *'other.jsonl:1: model "other" is not the store'"'"'s ("test-model"): use another store for it'* ]]
	assert_equal "$(stat live st)" "$(grep -c '"vector"' in.jsonl)"
}

@test "upsert-local acks only what is durable: kill -9 at random moments, then re-run" {
	{ vectors 50 1; vectors 20 2; for i in $(seq 30 39); do echo "{\"op\":\"delete\",\"doc_id\":\"d$i.md\"}"; done; } > in.jsonl
	start=$(date +%s.%N)
	upsert-local -b 3 clean in.jsonl > clean-acks
	dur=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print (b - a) * 1.2 + 0.02 }')
	: > before
	for trial in $(seq 25); do
		upsert-local -b 3 st in.jsonl > acks 2> err &
		pid=$!
		sleep "$(awk -v s="$RANDOM" -v d="$dur" 'BEGIN { srand(s); printf "%.3f", rand() * d }')"
		kill -9 "$pid" 2>/dev/null || true
		rc=0
		wait "$pid" || rc=$?
		[ "$rc" = 0 ] || [ "$rc" = 137 ] || { echo "trial $trial: exit $rc: $(cat err)"; false; }
		# the store always opens, and holds a prefix of the input that
		# covers every ack written
		run -0 upsert-local --dump st
		echo "$output" > after
		run -0 python3 "$T_FIXTURES/vstore/check-prefix.py" before in.jsonl acks after
		mv after before
	done
	run -0 upsert-local -b 3 st in.jsonl
	assert_equal "$output" "$(cat clean-acks)"
	assert_equal "$(upsert-local --dump st | sort)" "$(upsert-local --dump clean | sort)"
	run -0 ls st
	refute_output --partial ".tmp"
}

@test "upsert-local: readers see a consistent snapshot while a writer appends and compacts" {
	{ vectors 40 1; vectors 40 2; vectors 40 1; } > in.jsonl
	upsert-local st < /dev/null
	: > empty
	# feed slowly, in small batches, so that commits and merges go on
	# while readers open the store
	# (acks exists before the writer starts: the loop below copies it)
	: > acks
	( while IFS= read -r l; do printf '%s\n' "$l"; sleep 0.002; done < in.jsonl ) |
		upsert-local -b 2 st >> acks &
	pid=$!
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 40 ]; do
		cp acks acks-seen
		upsert-local --dump st > snap || { echo "dump failed"; false; }
		run -0 python3 "$T_FIXTURES/vstore/check-prefix.py" empty in.jsonl acks-seen snap
		n=$((n + 1))
	done
	wait "$pid"
	[ "$n" -ge 5 ]
	run -0 python3 "$T_FIXTURES/vstore/check-prefix.py" empty in.jsonl acks <(upsert-local --dump st)
	assert_output --partial "the state after line $(lines in.jsonl) of"
}

@test "upsert-local --compact keeps every point and leaves one segment" {
	vectors 30 > in.jsonl
	upsert-local -b 1 st in.jsonl > /dev/null
	vectors 10 2 > v2.jsonl
	upsert-local -b 1 st v2.jsonl > /dev/null
	[ "$(stat segments st)" -gt 1 ]
	before=$(upsert-local --dump st | sort)
	run -0 upsert-local --compact --stats st
	assert_output --partial '"segments":1,'
	assert_output --partial '"dead":0,'
	assert_equal "$(upsert-local --dump st | sort)" "$before"
	assert_equal "$(ls st | grep -c '^seg-')" 1
	run -0 upsert-local --compact st
	assert_output ""
}

@test "upsert-local compacts by itself: small segments merge, and past 30% dead all is rewritten" {
	vectors 60 > in.jsonl
	upsert-local -b 1 st in.jsonl > /dev/null
	# one commit per point would be $(grep -c vector in.jsonl) segments
	[ "$(stat segments st)" -le 12 ]
	before=$(upsert-local --dump st | sort)
	# overwrite most of it in one batch: the dead rows go at once
	upsert-local -b 100000 st in.jsonl > /dev/null
	assert_equal "$(stat dead st)" 0
	assert_equal "$(upsert-local --dump st | sort)" "$before"
}

@test "upsert-local: one writer at a time; --no-wait fails with 75, else it waits" {
	upsert-local st < /dev/null
	vectors 2 > in.jsonl
	flock st/LOCK sleep 2 &
	holder=$!
	for _ in $(seq 100); do flock -n st/LOCK true || break; sleep 0.02; done
	run -75 --separate-stderr upsert-local --no-wait st in.jsonl
	[[ "$stderr" == *"store 'st' is locked by another writer"* ]]
	PLUMB_NO_WAIT=1 run -75 upsert-local st in.jsonl
	run -0 --separate-stderr upsert-local st in.jsonl
	[[ "$stderr" == *"store 'st' is in use by another writer; waiting"* ]]
	assert_equal "$output" "$(want_acks in.jsonl)"
	wait "$holder"
}

@test "upsert-local on SIGTERM finishes its commit, writes its acks and dies of the signal" {
	vectors 3 > in.jsonl
	mkfifo fifo
	upsert-local -b 100000 st < fifo > out 2> err &
	pid=$!
	exec 7> fifo
	cat in.jsonl >&7
	# acks come out as soon as input waits
	for _ in $(seq 100); do [ "$(lines out)" = 3 ] && break; sleep 0.05; done
	assert_equal "$(cat out)" "$(want_acks in.jsonl)"
	# points without a marker yet: stored on the way out
	vectors 1 1 9 | grep '"vector"' >&7
	sleep 0.2
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	exec 7>&-
	assert_equal "$rc" 143
	run -0 contents st
	assert_output --partial "d9.md#0"
}

@test "upsert-local --stats summarizes the store" {
	vectors 4 > in.jsonl
	upsert-local st in.jsonl > /dev/null
	run -0 upsert-local --stats st
	n=$(grep -c '"vector"' in.jsonl)
	assert_output --regexp '^\{"store":"st","generation":[0-9]+,"dim":8,"model":"test-model","segments":1,"points":'"$n"',"live":'"$n"',"dead":0,"bytes":[0-9]+\}$'
}

@test "upsert-local will not make a store of a directory holding other files" {
	mkdir notes && echo hi > notes/todo.txt
	run -2 --separate-stderr upsert-local notes </dev/null
	[[ "$stderr" == *"'notes' is not empty and holds no plumb vector store"* ]]
	assert_equal "$(ls notes)" "todo.txt"
	run -2 --separate-stderr upsert-local --stats notes
	[[ "$stderr" == *"'notes' is not a plumb vector store (no MANIFEST)"* ]]
}

@test "upsert-local: a store path that is a file or under one is a usage error (2); missing parents are made" {
	echo hi > afile
	run -2 --separate-stderr upsert-local afile </dev/null
	assert_equal "$stderr" "upsert-local: cannot open store 'afile': Not a directory"
	run -2 --separate-stderr upsert-local afile/st </dev/null
	assert_equal "$stderr" "upsert-local: cannot create directory 'afile/st': Not a directory"
	for op in --dump --stats --compact; do
		run -2 --separate-stderr upsert-local $op afile
		[[ "$stderr" == *"'afile': Not a directory"* ]]
		run -2 --separate-stderr upsert-local $op afile/st
		[[ "$stderr" == *"'afile/st': Not a directory"* ]]
	done
	assert_equal "$(cat afile)" hi
	# a writer makes the parents it needs; a reader finds no store there
	run -2 --separate-stderr upsert-local --dump new/parents/st
	[[ "$stderr" == *"cannot open store 'new/parents/st': No such file or directory"* ]]
	vectors 1 > in.jsonl
	run -0 upsert-local new/parents/st in.jsonl
	assert_equal "$output" "$(want_acks in.jsonl)"
	assert_equal "$(stat live new/parents/st)" "$(grep -c '"vector"' in.jsonl)"
}

teardown() {
	if [ -n "${NOBODY_DIR:-}" ]; then
		chmod -R u+rwx "$NOBODY_DIR" 2>/dev/null || true
		rm -rf "$NOBODY_DIR"
	fi
}

# Run a command as nobody (root ignores permissions).
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups env PATH="$PATH" "$@"
}

@test "upsert-local: a store this user may not read or write is a usage error (2), not an internal one" {
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null || skip "setpriv is not installed"
		as_nobody true 2>/dev/null || skip "cannot switch to user nobody with setpriv"
		run_as=as_nobody
		# a directory nobody can reach (the test's own is private)
		NOBODY_DIR=$(mktemp -d /tmp/plumb-ul-nobody.XXXXXX)
		chmod 755 "$NOBODY_DIR"
		cd "$NOBODY_DIR"
		as_nobody upsert-local --version > /dev/null ||
			skip "user nobody cannot run $PLUMB_BIN/upsert-local"
	else
		run_as=env
	fi
	vectors 2 > in.jsonl
	upsert-local st in.jsonl > /dev/null
	# not ours to write
	chmod 555 st
	run -2 --separate-stderr "$run_as" upsert-local st in.jsonl
	assert_equal "$stderr" "upsert-local: cannot write store 'st': Permission denied"
	assert_output ""
	run -2 --separate-stderr "$run_as" upsert-local --compact st
	assert_equal "$stderr" "upsert-local: cannot write store 'st': Permission denied"
	# reading needs no write permission
	run -0 "$run_as" upsert-local --stats st
	assert_output --partial '"live":'
	# not ours to read
	chmod 000 st
	run -2 --separate-stderr "$run_as" upsert-local --dump st
	assert_equal "$stderr" "upsert-local: cannot open store 'st': Permission denied"
	run -2 --separate-stderr "$run_as" upsert-local st in.jsonl
	assert_equal "$stderr" "upsert-local: cannot open store 'st': Permission denied"
	chmod 755 st
	chmod 000 st/MANIFEST
	run -2 --separate-stderr "$run_as" upsert-local --stats st
	assert_equal "$stderr" "upsert-local: cannot open 'st/MANIFEST': Permission denied"
	chmod 644 st/MANIFEST
	# a new store where this user may not make one
	mkdir closed && chmod 555 closed
	run -2 --separate-stderr "$run_as" upsert-local closed/st in.jsonl
	assert_equal "$stderr" "upsert-local: cannot create directory 'closed/st': Permission denied"
	[ ! -e closed/st ]
	chmod 755 closed
	# all of it untouched
	assert_equal "$(stat live st)" "$(grep -c '"vector"' in.jsonl)"
}

@test "upsert-local takes its settings from the environment, flags winning" {
	vectors 3 > in.jsonl
	PLUMB_LOCAL_STORE=envstore run -0 upsert-local < in.jsonl
	assert_equal "$(stat live envstore)" "$(grep -c '"vector"' in.jsonl)"
	PLUMB_LOCAL_STORE=envstore run -0 upsert-local --stats
	assert_output --partial '"store":"envstore"'
	PLUMB_BATCH=1 upsert-local st in.jsonl > /dev/null
	[ "$(stat generation st)" -gt 4 ]
	PLUMB_BATCH=1 upsert-local -b 1000 st2 in.jsonl > /dev/null
	assert_equal "$(stat generation st2)" 2
}

@test "upsert-local fails with exit 70 when stdout cannot be written" {
	vectors 1 > in.jsonl
	run -70 --separate-stderr sh -c 'upsert-local st in.jsonl > /dev/full'
	assert_equal "$stderr" "upsert-local: write error on standard output: No space left on device"
}

@test "upsert-local closes the loop with discover-diff: acked documents are not found again" {
	mkdir docs
	for i in 1 2 3; do python3 -c 'import sys; print(("word%s " % sys.argv[1]) * 40)' "$i" > "docs/f$i.md"; done
	discover-diff --quiet --state state.jsonl docs | chunk -s 100 -o 0 |
		python3 "$T_FIXTURES/vstore/add-vectors.py" | upsert-local st |
		discover-diff --quiet --state state.jsonl --commit
	run -0 discover-diff --quiet --state state.jsonl docs
	assert_output ""
	rm docs/f2.md
	echo "changed" > docs/f3.md
	discover-diff --quiet --state state.jsonl docs | chunk -s 100 -o 0 |
		python3 "$T_FIXTURES/vstore/add-vectors.py" | upsert-local st |
		discover-diff --quiet --state state.jsonl --commit
	run -0 discover-diff --quiet --state state.jsonl docs
	assert_output ""
	run -0 contents st
	refute_output --partial "f2.md"
	assert_equal "$(contents st | grep -c f3.md)" 1
}

@test "the examples in upsert-local(1) run" {
	mkdir -p docs && cp "$T_FIXTURES/chunk/guide.md" docs/guide.md
	run_man_examples "$T_ROOT/docs/upsert-local.1" 4
}
