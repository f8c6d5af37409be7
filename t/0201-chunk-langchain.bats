#!/usr/bin/env bats
# chunk --compat langchain against the real @langchain/textsplitters (npm),
# chunk by chunk, on generated corpora and on edge cases.

load test_helper

setup_file() {
	PEERS=$("$BATS_TEST_DIRNAME/npm/install") || PEERS=""
	export PEERS
}

local_setup() {
	[ -n "$PEERS" ] || skip "the npm peer @langchain/textsplitters could not be installed (see build/npm/install.log)"
}

compare() {	# compare DOCS SIZE OVERLAP
	node "$PEERS/langchain-chunk.mjs" "$1" "$2" "$3" > lc.jsonl
	chunk --compat langchain -s "$2" -o "$3" "$1" > pl.jsonl
	run -0 python3 "$T_ROOT/t/helpers/compare-langchain.py" "$1" lc.jsonl pl.jsonl
	echo "$output"
}

@test "chunk --compat langchain equals LangChain on a varied corpus at the sizes people use" {
	python3 "$T_ROOT/t/bench/gen-corpus.py" 3 2500 11 > docs.jsonl
	for cfg in "1000 200" "800 100" "512 64" "300 0"; do
		compare docs.jsonl $cfg
	done
}

@test "chunk --compat langchain equals LangChain with small sizes and long documents" {
	python3 "$T_ROOT/t/bench/gen-corpus.py" 1 12000 12 > docs.jsonl
	for cfg in "100 20" "50 49" "20 5"; do
		compare docs.jsonl $cfg
	done
}

@test "chunk --compat langchain equals LangChain on white space and Unicode edge cases" {
	python3 - > edge.jsonl <<'PY'
import json
texts = [
    "", " ", "\n\n\n\n", "a\n\n\n\nb", "a\n\n\nb", "  leading and trailing  ",
    "x" * 250, ("word " * 80).strip(), "line\r\nline\r\nline",
    "tabs\tand\tmore\ttabs " * 20, "nbsp\u00a0joined\u00a0words " * 30,
    "ideographic\u3000space and\u2028line\u2029separators " * 15,
    "\ufeffbyte order mark " * 20, "caf\u00e9 na\u00efve \u6771\u4eac \u691c\u7d22 " * 40,
    "para one.\n\npara two is longer than the others by some way.\n\n\n\npara three.\n" * 8,
    "\n".join("- item %d with a few words" % i for i in range(60)),
    "no-spaces-" * 40 + " then spaces " * 10,
]
for i, t in enumerate(texts):
    print(json.dumps({"id": "edge-%02d" % i, "text": t}))
PY
	for cfg in "40 10" "25 0" "10 3" "5 1" "2 0" "1 0"; do
		compare edge.jsonl $cfg
	done
}
