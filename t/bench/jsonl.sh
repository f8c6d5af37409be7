#!/usr/bin/env bash
# The JSONL record path (scan, read two fields, write the record back) against
# jansson's parse-and-dump on the same 40 MB file, in one process.
set -u
. "$(dirname "$0")/lib.bash"
corpus=$BENCH_DIR/corpus-40mb.jsonl
[ -s "$corpus" ] || python3 "$(dirname "$0")/gen-corpus.py" 40 2048 1 > "$corpus"
prog=${BENCH_BUILD:-$BENCH_DIR}/jsonscan
[ -x "$prog" ] || { echo "# jsonl: $prog was not built"; exit 0; }
read -r ours peer bytes < <("$prog" "$corpus")
printf 'JSONL read 2 fields + write record (vs jansson)\tMB/s\t%s\t%s\thigher\n' "$(mbps "$bytes" "$ours")" "$(mbps "$bytes" "$peer")"
