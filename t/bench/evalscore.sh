#!/usr/bin/env bash
# evalscore end to end, JSON Lines in and scorecard out, against sacreBLEU's
# command line on the same segments (t/bench/gen-mt.py): corpus BLEU on
# 20,000 segments, and BLEU and chrF with 95% intervals from 1,000 bootstrap
# resamples on 2,000 (sacreBLEU's --confidence holds every resample in
# memory at once, so 20,000 would take it gigabytes). The peer runs from a
# sacreBLEU checkout in $SACREBLEU_DIR (git clone of mjpost/sacrebleu; needs
# python3-regex, -tabulate, -numpy, -colorama, -lxml, -portalocker); without
# one, plumb's figures only. The scores of both are printed and must agree.
set -u
. "$(dirname "$0")/lib.bash"
here=$(cd "$(dirname "$0")" && pwd)

# hyp and ref files, and the same as evalscore records
make_set() {	# make_set N: sets HYP REF JSONL
	HYP=$BENCH_DIR/mt-$1.hyp REF=$BENCH_DIR/mt-$1.ref JSONL=$BENCH_DIR/mt-$1.jsonl
	[ -s "$HYP" ] && [ -s "$REF" ] || python3 "$here/gen-mt.py" "$1" "$HYP" "$REF"
	[ -s "$JSONL" ] || python3 -c '
import json, sys
hyp = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
ref = open(sys.argv[2], encoding="utf-8").read().split("\n")[:-1]
assert len(hyp) == len(ref)
with open(sys.argv[3], "w", encoding="utf-8") as f:
    for i, (h, r) in enumerate(zip(hyp, ref)):
        f.write(json.dumps({"id": i, "output": h, "reference": r}, ensure_ascii=False) + "\n")
' "$HYP" "$REF" "$JSONL"
}

# a python3 that can run sacreBLEU from the checkout, or nothing
peer_python() {
	[ -n "${SACREBLEU_DIR:-}" ] && [ -d "$SACREBLEU_DIR/sacrebleu" ] || return 1
	for py in python3 /usr/bin/python3; do
		PYTHONPATH=$SACREBLEU_DIR "$py" -c 'import sacrebleu' 2>/dev/null && { echo "$py"; return 0; }
	done
	return 1
}

sacrebleu() { PYTHONPATH=$SACREBLEU_DIR "$PY" -m sacrebleu "$@"; }

PY=$(peer_python) || PY=
[ -n "$PY" ] || echo "# evalscore: sacreBLEU not available (set SACREBLEU_DIR to a checkout); plumb's figures only"

# 1. corpus BLEU, 20,000 segments
make_set 20000
ours=$(best_of 3 evalscore -m bleu --bootstrap 0 --slim "$JSONL")
score=$(evalscore -m bleu --bootstrap 0 --slim "$JSONL" | jq '.scorecard.metrics.bleu.value * 10000 | round / 10000')
peer=-
if [ -n "$PY" ]; then
	peer=$(best_of 1 sacrebleu "$REF" -i "$HYP" -m bleu -b)
	pscore=$(sacrebleu "$REF" -i "$HYP" -m bleu -b -w 4)
	echo "# evalscore: corpus BLEU of 20,000 segments: evalscore $score, sacreBLEU $pscore"
	[ "$(printf '%.4f' "$score")" = "$(printf '%.4f' "$pscore")" ] ||
		echo "# evalscore: SCORES DIFFER: evalscore $score, sacreBLEU $pscore"
fi
printf 'evalscore -m bleu, 20,000 segments (vs sacrebleu CLI)\ts\t%s\t%s\tlower\n' "$ours" "$peer"

# 2. BLEU and chrF with bootstrap intervals, 2,000 segments
make_set 2000
ours=$(best_of 3 evalscore -m bleu,chrf --bootstrap 1000 --slim "$JSONL")
evalscore -m bleu,chrf --bootstrap 1000 --slim "$JSONL" > "$BENCH_DIR/mt-2000.sc.json"
peer=-
if [ -n "$PY" ]; then
	peer=$(best_of 1 sacrebleu "$REF" -i "$HYP" -m bleu chrf --confidence --confidence-n 1000)
	sacrebleu "$REF" -i "$HYP" -m bleu chrf --confidence --confidence-n 1000 -f json -w 2 \
		> "$BENCH_DIR/mt-2000.sacrebleu.json"
	jq -r --slurpfile s "$BENCH_DIR/mt-2000.sacrebleu.json" '.scorecard.metrics as $m
		| "# evalscore: 2,000 segments, 1,000 resamples: BLEU \($m.bleu.value * 100 | round / 100) +- \(($m.bleu.ci95[1] - $m.bleu.ci95[0]) / 2 * 100 | round / 100), sacreBLEU \($s[0][0].score) +- \($s[0][0].confidence_var); chrF \($m.chrf.value * 100 | round / 100) +- \(($m.chrf.ci95[1] - $m.chrf.ci95[0]) / 2 * 100 | round / 100), sacreBLEU \($s[0][1].score) +- \($s[0][1].confidence_var)"' \
		"$BENCH_DIR/mt-2000.sc.json"
fi
printf 'evalscore -m bleu,chrf --bootstrap 1000, 2,000 segments\ts\t%s\t%s\tlower\n' "$ours" "$peer"
