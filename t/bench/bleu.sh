#!/usr/bin/env bash
# bleu: corpus BLEU (sacreBLEU's defaults: 13a, exp smoothing) on 20,000
# generated segments with one reference, through lib/textmetrics (the
# t/bench/bleu.c driver) against sacreBLEU's own command on the same files.
# Both read the files and print the score; the times are whole runs, best of
# several, and the two scores must agree to the four decimals printed.
#
# The peer runs from a sacreBLEU source checkout named by SACREBLEU_DIR (it
# is not packaged in Debian), with Debian's python3-regex, -tabulate,
# -numpy, -colorama, -lxml and -portalocker; without one the benchmark
# reports plumb's figure alone.
set -u
. "$(dirname "$0")/lib.bash"
here=$(cd "$(dirname "$0")" && pwd)
N=20000
hyp=$BENCH_DIR/mt-hyp.txt ref=$BENCH_DIR/mt-ref.txt
[ -s "$hyp" ] && [ -s "$ref" ] || python3 "$here/gen-mt.py" $N "$hyp" "$ref"
cat "$hyp" "$ref" > /dev/null	# warm the page cache

prog=${BENCH_BUILD:-$BENCH_DIR}/bleu
[ -x "$prog" ] || { echo "# bleu: $prog was not built"; exit 0; }
ours_score=$("$prog" "$hyp" "$ref")
ours=$(best_of 5 "$prog" "$hyp" "$ref")
ours_sps=$(awk -v n=$N -v t="$ours" 'BEGIN { printf "%.0f", n / t }')

# sacreBLEU's command; a checkout without the version.py that its build
# step writes gets the version as a module, so nothing is written into it
sacrebleu() {
	"$PY" -c '
import os, sys, types
sys.path.insert(0, sys.argv[1])
if not os.path.exists(os.path.join(sys.argv[1], "sacrebleu", "version.py")):
    v = types.ModuleType("sacrebleu.version")
    v.__version__ = "unknown"
    sys.modules["sacrebleu.version"] = v
from sacrebleu.sacrebleu import main
sys.argv = ["sacrebleu"] + sys.argv[2:]
main()
' "$SACREBLEU_DIR" "$@"
}

peer=- peer_score=-
if [ -n "${SACREBLEU_DIR:-}" ] && [ -d "$SACREBLEU_DIR/sacrebleu" ]; then
	for PY in "${PYTHON:-python3}" /usr/bin/python3; do
		peer_score=$(sacrebleu "$ref" -i "$hyp" -b -w 4 2> "$BENCH_DIR/sacrebleu.err") && break
		peer_score=-
	done
fi
if [ "$peer_score" = - ]; then
	echo "# bleu: peer not available (set SACREBLEU_DIR to a sacreBLEU checkout$([ -s "$BENCH_DIR/sacrebleu.err" ] && echo "; $(tail -1 "$BENCH_DIR/sacrebleu.err")")); plumb's figure only"
else
	t=$(best_of 2 sacrebleu "$ref" -i "$hyp" -b -w 4)
	peer=$(awk -v n=$N -v t="$t" 'BEGIN { printf "%.0f", n / t }')
	[ "$ours_score" = "$peer_score" ] || echo "# bleu: SCORES DIFFER"
fi
echo "# bleu: $N segments: plumb BLEU = $ours_score in ${ours}s, sacreBLEU BLEU = $peer_score$([ "$peer" = - ] || echo " in ${t}s")"
printf 'corpus BLEU, 20,000 segments (vs sacreBLEU)\tseg/s\t%s\t%s\thigher\tx50\n' "$ours_sps" "$peer"
