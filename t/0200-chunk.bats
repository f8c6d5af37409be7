#!/usr/bin/env bats
# chunk: strategies, record shape, offsets, bad input, signals, output errors.

load test_helper

doc() {	# doc ID TEXT: one document record with inline text
	python3 -c 'import json,sys; print(json.dumps({"id": sys.argv[1], "text": sys.argv[2]}))' "$1" "$2"
}

field() {	# field LINE-NUMBER KEY < chunks: one field of one output line
	python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[int(sys.argv[1])-1])[sys.argv[2]])' "$1" "$2"
}

@test "chunk --help prints usage on stdout and exits 0" {
	run -0 --separate-stderr chunk --help
	assert_output --partial "usage: chunk [-s size]"
	assert_output --partial "--compat langchain"
	[ -z "$stderr" ]
	run -0 chunk --version
	assert_output --regexp '^chunk \(plumb\) '
}

@test "chunk rejects bad options with exit 2" {
	run -2 --separate-stderr chunk --size 0
	[[ "$stderr" == *"--size: '0' is not a whole number"* ]]
	run -2 --separate-stderr chunk -s 100 -o 100
	[[ "$stderr" == *"--overlap (100) must be smaller than --size (100)"* ]]
	run -2 --separate-stderr chunk --strategy words
	[[ "$stderr" == *"unknown --strategy 'words'"* ]]
	run -2 --separate-stderr chunk --compat llamaindex
	[[ "$stderr" == *"unknown --compat 'llamaindex'"* ]]
	run -2 --separate-stderr chunk --bogus
	[[ "$stderr" == *"usage: chunk"* ]]
	PLUMB_CHUNK_SIZE=abc run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == *"PLUMB_CHUNK_SIZE: 'abc'"* ]]
	run -2 --separate-stderr chunk --strategy fixed --compat langchain
	[[ "$stderr" == "chunk: --compat langchain goes with the recursive strategy, not --strategy fixed"* ]]
}

@test "chunk's usage errors name the environment variable a bad value came from" {
	PLUMB_CHUNK_STRATEGY=markdown run -2 --separate-stderr chunk --compat langchain </dev/null
	[[ "$stderr" == "chunk: --compat langchain goes with the recursive strategy, not PLUMB_CHUNK_STRATEGY=markdown"$'\n'* ]]
	PLUMB_CHUNK_STRATEGY=words run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == "chunk: unknown PLUMB_CHUNK_STRATEGY 'words' (want recursive, markdown or fixed)"$'\n'* ]]
	PLUMB_INVALID_UTF8=drop run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == "chunk: unknown PLUMB_INVALID_UTF8 'drop' (want error or replace)"$'\n'* ]]
	PLUMB_CHUNK_SIZE=0 run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == "chunk: PLUMB_CHUNK_SIZE: '0' is not a whole number from 1 to "* ]]
	PLUMB_CHUNK_OVERLAP=300 PLUMB_CHUNK_SIZE=300 run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == "chunk: PLUMB_CHUNK_OVERLAP (300) must be smaller than PLUMB_CHUNK_SIZE (300)"$'\n'* ]]
	PLUMB_CHUNK_SIZE=100 PLUMB_CHUNK_OVERLAP=200 run -2 --separate-stderr chunk </dev/null
	[[ "$stderr" == "chunk: PLUMB_CHUNK_OVERLAP (200) must be smaller than PLUMB_CHUNK_SIZE (100)"$'\n'* ]]
	run -2 --separate-stderr chunk -o 100 -s 100 </dev/null
	[[ "$stderr" == "chunk: --overlap (100) must be smaller than --size (100)"$'\n'* ]]
	# the default overlap shrinks to a fifth of a small size
	python3 -c 'print("{\"id\":\"d\",\"text\":\"%s\"}" % ("x" * 250))' > small.jsonl
	run -0 chunk --strategy fixed -s 100 small.jsonl
	assert_equal "$(grep -o '"start":[0-9]*,"end":[0-9]*' <<< "$output" | tr '\n' ' ')" \
		'"start":0,"end":100 "start":80,"end":180 "start":160,"end":250 '
	# a flag wins over its variable, and then the variable's value is not checked
	PLUMB_CHUNK_STRATEGY=markdown PLUMB_CHUNK_SIZE=abc run -0 chunk --strategy recursive -s 50 -o 0 </dev/null
}

@test "chunk writes chunk records, a done marker, and passes deletes through" {
	printf '%s\n' '{"id":"a.md","text":"one two three four five six","sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":27,"path":"docs/a.md","meta":{"lang":"en"},"owner":"x"}' \
		'{"id":"old.md","op":"delete"}' > in.jsonl
	run -0 chunk -s 10 -o 0 in.jsonl
	assert_equal "${lines[0]}" '{"id":"a.md#0","doc_id":"a.md","doc_sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","chunk":0,"start":0,"end":7,"text":"one two","path":"docs/a.md","meta":{"lang":"en"},"owner":"x"}'
	assert_equal "${lines[1]}" '{"id":"a.md#1","doc_id":"a.md","doc_sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","chunk":1,"start":8,"end":18,"text":"three four","path":"docs/a.md","meta":{"lang":"en"},"owner":"x"}'
	assert_equal "${lines[3]}" '{"op":"done","doc_id":"a.md","doc_sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","chunks":3}'
	assert_equal "${lines[4]}" '{"op":"delete","doc_id":"old.md"}'
	assert_equal "${#lines[@]}" 5
}

@test "chunk's own fields replace a document's fields of the same names" {
	# a document carrying doc_id, doc_sha256, chunk, start or end (chunk's
	# output fed back, say) must not give a record two members of one name
	printf '%s\n' '{"id":"a","text":"hello world","start":99,"doc_id":"other","doc_sha256":"x","chunk":7,"\u0065nd":1,"owner":"me"}' > in.jsonl
	run -0 chunk in.jsonl
	assert_equal "${lines[0]}" '{"id":"a#0","doc_id":"a","doc_sha256":"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9","chunk":0,"start":0,"end":11,"text":"hello world","owner":"me"}'
	# a name the document repeats is copied once, with the value chunk reads (the last)
	printf '%s\n' '{"id":"a","owner":"me","text":"hi","owner":"you","\u006fwner":"them","tags":[1]}' > dup.jsonl
	run -0 chunk dup.jsonl
	assert_equal "${lines[0]}" '{"id":"a#0","doc_id":"a","doc_sha256":"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4","chunk":0,"start":0,"end":2,"text":"hi","\u006fwner":"them","tags":[1]}'
	# markdown writes "meta" itself: one "meta", with the document's last one merged in
	printf '%s\n' '{"id":"m","text":"# T\n\nbody","meta":{"a":1},"x":1,"meta":{"b":2}}' > md.jsonl
	run -0 chunk --strategy markdown md.jsonl
	assert_equal "${lines[0]}" '{"id":"m#0","doc_id":"m","doc_sha256":"'"$(printf '# T\n\nbody' | sha256sum | cut -d' ' -f1)"'","chunk":0,"start":0,"end":9,"text":"# T\n\nbody","meta":{"headings":["T"],"b":2},"x":1}'
	for f in in.jsonl md.jsonl dup.jsonl; do
		chunk "$f" > out.jsonl
		chunk --strategy markdown "$f" >> out.jsonl
		run -0 python3 -c '
import json, sys
def once(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)
for l in open("out.jsonl"):
    json.loads(l, object_pairs_hook=once)
'
	done
}

@test "chunk rejects a sha256 that is not a SHA-256, and writes a given one in lower case" {
	for bad in '5' 'null' '["x"]' '""' '"abc"' "\"$(printf '%063d' 0)\"" "\"$(printf '%065d' 0)\"" \
		"\"$(printf 'g%063d' 0)\"" "\"\\u0030$(printf '%063d' 0)\"" "{\"a\":\"b\"}"; do
		printf '{"id":"a","text":"hello","sha256":%s}\n' "$bad" > in.jsonl
		run -65 --separate-stderr chunk in.jsonl
		case $bad in
		\"*) assert_equal "$stderr" "chunk: in.jsonl:1: \"sha256\" is not 64 hex digits: $bad" ;;
		*) assert_equal "$stderr" "chunk: in.jsonl:1: \"sha256\" is not a string: $bad" ;;
		esac
		assert_equal "$output" ""
	done
	# a long value is shown in part
	printf '{"id":"a","text":"hello","sha256":"%s"}\n' "$(printf '%0100d' 0)" > in.jsonl
	run -65 --separate-stderr chunk in.jsonl
	assert_equal "$stderr" "chunk: in.jsonl:1: \"sha256\" is not 64 hex digits: \"$(printf '%079d' 0)..."
	# bad input under the usual policy: --keep-going goes on to the next document
	printf '%s\n' '{"id":"a","text":"x","sha256":"abc"}' '{"id":"b","text":"y"}' > in.jsonl
	run -65 --separate-stderr chunk --keep-going in.jsonl
	assert_equal "${#lines[@]}" 2
	[[ "${lines[1]}" == '{"op":"done","doc_id":"b",'* ]]
	[[ "$stderr" == *'in.jsonl:1: "sha256" is not 64 hex digits: "abc"'* ]]
	# as discover-diff: either case in, lower case out
	printf '{"id":"u","text":"hello","sha256":"%s"}\n' 2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824 > in.jsonl
	run -0 chunk in.jsonl
	assert_equal "${lines[1]}" '{"op":"done","doc_id":"u","doc_sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","chunks":1}'
}

@test "chunk computes doc_sha256 of the text when the record has none" {
	doc d 'héllo wörld' > in.jsonl
	run -0 chunk in.jsonl
	want=$(printf '%s' 'héllo wörld' | sha256sum | cut -d' ' -f1)
	assert_equal "$(echo "${lines[0]}" | field 1 doc_sha256)" "$want"
	assert_equal "$(echo "${lines[1]}" | field 1 chunks)" 1
}

@test "chunk gives an empty document a done marker with no chunks" {
	printf '%s\n' '{"id":"e","text":""}' '{"id":"w","text":" \n\n \t"}' > in.jsonl
	run -0 chunk in.jsonl
	assert_equal "${lines[0]}" '{"op":"done","doc_id":"e","doc_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","chunks":0}'
	[[ "${lines[1]}" == '{"op":"done","doc_id":"w",'*'"chunks":0}' ]]
}

@test "chunk recursive, markdown and fixed keep offsets, sizes and overlap on a varied corpus" {
	python3 "$T_ROOT/t/bench/gen-corpus.py" 0.4 2048 7 > docs.jsonl
	for cfg in "recursive 800 100" "recursive 200 0" "recursive 37 12" "markdown 500 50" "markdown 120 20" "fixed 300 60" "fixed 64 0"; do
		set -- $cfg
		chunk --strategy "$1" -s "$2" -o "$3" docs.jsonl > out.jsonl
		run -0 python3 "$T_ROOT/t/helpers/check-chunks.py" docs.jsonl out.jsonl "$2" "$3" "$1"
	done
}

@test "chunk recursive prefers paragraph, then sentence boundaries" {
	doc p "$(printf 'First paragraph here.\n\nSecond one. It has two sentences.')" > in.jsonl
	run -0 chunk -s 30 -o 0 in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "First paragraph here."
	assert_equal "$(echo "${lines[1]}" | field 1 text)" "Second one."
	assert_equal "$(echo "${lines[2]}" | field 1 text)" "It has two sentences."
}

@test "chunk counts size in code points, never cutting a character" {
	doc u "ééééééééééééééééééééé日本語日本語😀😀😀😀" > in.jsonl
	run -0 chunk --strategy fixed -s 5 -o 2 in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "ééééé"
	assert_equal "$(echo "${lines[0]}" | field 1 end)" 10
	run -0 python3 "$T_ROOT/t/helpers/check-chunks.py" in.jsonl <(chunk --strategy fixed -s 5 -o 2 in.jsonl) 5 2 fixed
	run -0 python3 "$T_ROOT/t/helpers/check-chunks.py" in.jsonl <(chunk -s 3 -o 1 in.jsonl) 3 1 recursive
}

@test "chunk markdown keeps heading paths and whole code blocks" {
	python3 -c 'import json; print(json.dumps({"id":"guide.md","path":"'"$T_FIXTURES"'/chunk/guide.md","meta":{"headings":"old","lang":"en"}}))' > in.jsonl
	run -0 chunk --strategy markdown -s 60 -o 0 in.jsonl
	echo "$output" > out.jsonl
	python3 - <<'PY'
import json
recs = [json.loads(l) for l in open("out.jsonl")]
chunks = [r for r in recs if "text" in r]
by_text = {c["text"]: c for c in chunks}
code = [c for c in chunks if c["text"].startswith("```sh")]
assert len(code) == 1 and code[0]["text"].endswith("make\n```"), code
assert code[0]["meta"] == {"headings": ["Guide", "Install"], "lang": "en"}, code[0]["meta"]
opts = [c for c in chunks if "environment variable" in c["text"]][0]
assert opts["meta"]["headings"] == ["Guide", "Install", "Options"], opts
usage = [c for c in chunks if "Pipe the programs" in c["text"]][0]
assert usage["meta"]["headings"] == ["Guide", "Usage"], usage
assert not any("not a heading" in h for c in chunks for h in c["meta"]["headings"])
for c in chunks:
    assert len(c["text"]) <= 60 or c["text"].startswith("```"), c
PY
}

@test "chunk markdown splits a code block only when it alone exceeds the size" {
	body=$(printf '```\n%s\n```' "$(seq 1 40 | tr '\n' ' ' | fold -w 20)")
	doc big "$(printf '# T\n\n%s\n' "$body")" > in.jsonl
	run -0 chunk --strategy markdown -s 40 -o 0 in.jsonl
	run -0 python3 "$T_ROOT/t/helpers/check-chunks.py" in.jsonl <(chunk --strategy markdown -s 40 -o 0 in.jsonl) 40 0 markdown
}

@test "chunk reads documents from path, relative to the working directory" {
	mkdir docs && printf 'hello from a file\n' > docs/a.txt
	echo '{"id":"a.txt","path":"docs/a.txt"}' | chunk > out.jsonl
	run -0 field 1 text < out.jsonl
	assert_output "hello from a file"
}

@test "chunk stops at a missing file with exit 65 and the input line" {
	printf '%s\n' '{"id":"ok","text":"fine"}' '{"id":"gone","path":"nope/missing.md"}' '{"id":"after","text":"x"}' > in.jsonl
	run -65 --separate-stderr chunk in.jsonl
	assert_equal "$stderr" "chunk: in.jsonl:2: cannot read 'nope/missing.md': No such file or directory"
	assert_equal "${lines[1]}" '{"op":"done","doc_id":"ok","doc_sha256":"'"$(printf fine | sha256sum | cut -d' ' -f1)"'","chunks":1}'
	assert_equal "${#lines[@]}" 2
}

@test "chunk reports an unreadable file" {
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	mkdir -p pub && printf 'secret' > pub/s.md && chmod 600 pub/s.md && chmod 755 pub . "$BATS_TEST_TMPDIR"
	echo '{"id":"s","path":"pub/s.md"}' > pub/in.jsonl && chmod 644 pub/in.jsonl
	run -65 --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$PLUMB_BIN/chunk" pub/in.jsonl
	assert_equal "$stderr" "chunk: pub/in.jsonl:1: cannot read 'pub/s.md': Permission denied"
}

@test "chunk rejects invalid UTF-8 in a file, or replaces it when asked" {
	printf 'caf\xe9 au lait' > latin1.txt
	echo '{"id":"l","path":"latin1.txt"}' > in.jsonl
	run -65 --separate-stderr chunk in.jsonl
	assert_equal "$stderr" "chunk: in.jsonl:1: 'latin1.txt': invalid UTF-8 at byte 3 (--invalid-utf8 replace to substitute U+FFFD)"
	run -0 chunk --invalid-utf8 replace in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "caf� au lait"
	PLUMB_INVALID_UTF8=replace run -0 chunk in.jsonl
}

@test "chunk rejects a lone surrogate escape in text, or replaces it" {
	echo '{"id":"s","text":"a\ud800b"}' > in.jsonl
	run -65 --separate-stderr chunk in.jsonl
	assert_equal "$stderr" 'chunk: in.jsonl:1: "text": lone surrogate \uD800 in string'
	run -0 chunk --invalid-utf8 replace in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "a�b"
}

@test "chunk stops at malformed JSON with file, line and column, after flushing earlier output" {
	printf '%s\n' '{"id":"a","text":"first"}' '{"id":"b","text":"x",}' '{"id":"c","text":"never"}' > in.jsonl
	run -65 --separate-stderr chunk in.jsonl
	assert_equal "$stderr" "chunk: in.jsonl:2: invalid JSON: expected a string key (column 22)"
	assert_equal "${#lines[@]}" 2
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "first"
	run -65 --separate-stderr chunk < in.jsonl
	assert_equal "$stderr" "chunk: stdin:2: invalid JSON: expected a string key (column 22)"
}

@test "chunk rejects records it cannot use" {
	echo '{"text":"no id"}' > z; run -65 --separate-stderr chunk < z
	assert_equal "$stderr" 'chunk: stdin:1: document has no "id" string'
	echo '{"id":"x"}' > a; run -65 --separate-stderr chunk a
	assert_equal "$stderr" 'chunk: a:1: document "x" has neither "text" nor "path"'
	echo '{"id":"x","op":"done","text":"t"}' > b; run -65 --separate-stderr chunk b
	assert_equal "$stderr" 'chunk: b:1: unknown op "done" (want "upsert" or "delete")'
	echo '[1,2]' > c; run -65 --separate-stderr chunk c
	assert_equal "$stderr" 'chunk: c:1: invalid JSON: expected a JSON object (column 1)'
	printf '{"id":"x","text":"\xff"}\n' > d; run -65 --separate-stderr chunk d
	assert_equal "$stderr" 'chunk: d:1: invalid JSON: invalid UTF-8 (column 19)'
}

@test "chunk --keep-going reports each bad line, goes on, and exits 65" {
	printf '%s\n' '{"id":"a","text":"one"}' 'not json' '{"id":"b"}' '{"id":"c","text":"three"}' > in.jsonl
	run -65 --separate-stderr chunk --keep-going in.jsonl
	assert_equal "${#lines[@]}" 4
	[[ "$stderr" == *"in.jsonl:2: invalid JSON: expected a JSON object (column 1)"* ]]
	[[ "$stderr" == *'in.jsonl:3: document "b" has neither "text" nor "path"'* ]]
	[[ "$stderr" == *"2 bad input lines skipped"* ]]
}

@test "chunk --rejects keeps bad lines verbatim and exits 0" {
	printf '%s\n' '{"id":"a","text":"one"}' 'not json' '{"id":"b"}' > in.jsonl
	run -0 --separate-stderr chunk --rejects rej.jsonl in.jsonl
	assert_equal "$(cat rej.jsonl)" "$(printf '%s\n' 'not json' '{"id":"b"}')"
	[[ "$stderr" == *"2 bad input lines written to the rejects file"* ]]
	PLUMB_REJECTS=rej2.jsonl run -0 chunk in.jsonl
	assert_equal "$(lines rej2.jsonl)" 2
}

@test "chunk skips blank lines and reads several files and stdin in order" {
	printf '%s\n\n' '{"id":"a","text":"A"}' > 1.jsonl
	printf '%s\n' '{"id":"c","text":"C"}' > 3.jsonl
	run -0 sh -c 'echo "{\"id\":\"b\",\"text\":\"B\"}" | chunk 1.jsonl - 3.jsonl'
	assert_equal "$(printf '%s\n' "${lines[@]}" | grep -o '"doc_id":"[abc]"' | uniq | tr -d '\n')" '"doc_id":"a""doc_id":"b""doc_id":"c"'
	run -2 --separate-stderr chunk missing.jsonl
	assert_equal "$stderr" "chunk: cannot open 'missing.jsonl': No such file or directory"
}

@test "chunk takes a directory given as input for a file that cannot be opened (exit 2)" {
	mkdir dir
	printf '%s\n' '{"id":"a","text":"A"}' > 1.jsonl
	run -2 --separate-stderr chunk dir
	assert_equal "$stderr" "chunk: cannot open 'dir': Is a directory"
	assert_equal "$output" ""
	# the files before it are done, in order
	run -2 --separate-stderr chunk 1.jsonl dir
	assert_equal "$stderr" "chunk: cannot open 'dir': Is a directory"
	[[ "${lines[1]}" == '{"op":"done","doc_id":"a",'* ]]
	run -2 --separate-stderr sh -c 'chunk < dir'
	assert_equal "$stderr" "chunk: cannot open '-': Is a directory"
}

@test "chunk handles a 50 MB line with memory bounded by the document" {
	python3 -c 'import json; w=("lorem ipsum dolor sit amet " * 2000000)[:50000000]; print(json.dumps({"id":"big","text":w}))' > big.jsonl
	/usr/bin/time -f '%M' -o rss chunk -s 1000 -o 100 big.jsonl > out.jsonl
	run -0 tail -1 out.jsonl
	assert_output --regexp '^\{"op":"done","doc_id":"big",.*"chunks":5[0-9]{4}\}$'
	# the line, the decoded text and the output buffer; not the whole output
	[ "$(cat rss)" -lt 200000 ]
}

@test "chunk output is deterministic" {
	python3 "$T_ROOT/t/bench/gen-corpus.py" 0.2 1500 3 > docs.jsonl
	chunk docs.jsonl > a.out
	chunk docs.jsonl > b.out
	cmp a.out b.out
}

@test "chunk ends quietly when downstream closes the pipe" {
	python3 "$T_ROOT/t/bench/gen-corpus.py" 5 2048 5 > docs.jsonl
	run -0 --separate-stderr bash -c 'set -o pipefail; chunk docs.jsonl | head -1 >/dev/null; echo "status ${PIPESTATUS[0]}"'
	assert_output "status 141"
	[ -z "$stderr" ]
}

@test "chunk fails with exit 70 when stdout cannot be written" {
	doc a "some text" > in.jsonl
	run -70 --separate-stderr sh -c 'chunk in.jsonl > /dev/full'
	assert_equal "$stderr" "chunk: write error on standard output: No space left on device"
}

@test "chunk stops at a record boundary on SIGTERM and dies of it" {
	mkfifo in.fifo
	( doc a "first document"; sleep 5 ) > in.fifo &
	chunk in.fifo > out.jsonl 2> err &
	pid=$!
	for _ in $(seq 50); do [ -s out.jsonl ] && break; sleep 0.1; done
	kill -TERM $pid
	# wait in this shell: run's subshell is not chunk's parent
	rc=0
	wait $pid || rc=$?
	assert_equal "$rc" 143
	assert_equal "$(lines out.jsonl)" 2
	assert_equal "$(tail -c 1 out.jsonl | od -An -c | tr -d ' ')" '\n'
	kill %1 2>/dev/null || true
}

@test "chunk takes its settings from the environment, flags winning" {
	doc a "one two three four five six seven" > in.jsonl
	PLUMB_CHUNK_SIZE=10 PLUMB_CHUNK_OVERLAP=0 run -0 chunk in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "one two"
	PLUMB_CHUNK_SIZE=10 PLUMB_CHUNK_OVERLAP=0 run -0 chunk -s 14 in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "one two three"
	PLUMB_CHUNK_STRATEGY=fixed PLUMB_CHUNK_SIZE=4 PLUMB_CHUNK_OVERLAP=0 run -0 chunk in.jsonl
	assert_equal "$(echo "${lines[0]}" | field 1 text)" "one "
}

@test "chunk --help and chunk(1) list every option and variable chunk takes" {
	run -0 chunk --help
	for opt in --size --overlap --strategy --compat --invalid-utf8 --keep-going --rejects --verbose --quiet --help --version; do
		assert_output --partial -- "$opt"
		grep -qF -- "${opt//-/\\-}" "$T_ROOT/docs/chunk.1" || { echo "chunk(1) lacks $opt"; return 1; }
	done
	assert_output --partial "(PLUMB_VERBOSE)"
	# every PLUMB_ variable the program reads is in ENVIRONMENT
	vars=$(strings "$PLUMB_BIN/chunk" | grep -E '^PLUMB_[A-Z0-9_]+$' | sort -u)
	[[ "$vars" == *PLUMB_VERBOSE* && "$vars" == *PLUMB_CHUNK_SIZE* ]]
	env_section=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$T_ROOT/docs/chunk.1")
	for v in $vars; do
		[[ "$env_section" == *"$v"* ]] || { echo "chunk(1) ENVIRONMENT lacks $v"; return 1; }
	done
}

@test "chunk --verbose and PLUMB_VERBOSE give a summary; by default stderr stays quiet" {
	printf '%s\n' '{"id":"a","text":"one two three"}' '{"id":"b","op":"delete"}' '{"id":"c","text":"four five six"}' > in.jsonl
	run -0 --separate-stderr chunk -s 8 -o 0 in.jsonl
	assert_equal "$stderr" ""
	run -0 --separate-stderr chunk -v -s 8 -o 0 in.jsonl
	assert_equal "$stderr" "chunk: 2 documents split into 4 chunks, 1 delete passed on"
	PLUMB_VERBOSE=1 run -0 --separate-stderr chunk -s 8 -o 0 in.jsonl
	assert_equal "$stderr" "chunk: 2 documents split into 4 chunks, 1 delete passed on"
}

@test "chunk shows a progress line on a terminal, and none with --quiet" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	# standard error on a pseudo-terminal; records far enough apart in time
	cat > slow.sh <<'SH'
( echo '{"id":"a","text":"x"}'; sleep 0.6; echo '{"id":"b","text":"y"}'; sleep 0.6; echo '{"id":"c","text":"z"}' ) | chunk "$@" > out.jsonl
SH
	run -0 script -qec "sh slow.sh" /dev/null
	[[ "$output" == *"chunk: 2 documents"* ]]
	assert_equal "$(lines out.jsonl)" 6
	run -0 script -qec "sh slow.sh --quiet" /dev/null
	assert_equal "$output" ""
	assert_equal "$(lines out.jsonl)" 6
}

@test "the examples in chunk(1) run" {
	mkdir -p docs && cp "$T_FIXTURES/chunk/guide.md" docs/guide.md
	printf '%s\n' '{"id":"guide.md","path":"docs/guide.md"}' > docs.jsonl
	run_man_examples "$T_ROOT/docs/chunk.1" 3 --output
}
