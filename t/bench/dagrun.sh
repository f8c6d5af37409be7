#!/usr/bin/env bash
# dagrun's own overhead, at the issue's sizes: a 10,000-item fan-out of `true`
# with parallelism 2 against xargs -P2 running the same commands in the same
# run (target: within 1.3x); the peak memory of a 100,000-item fan-out
# (target: under 64 MB); and the journal's cost per task (its bytes, and the
# time its grouped fsyncs add). DAGRUN_BENCH_N and DAGRUN_BENCH_BIG change
# the sizes.
N=${DAGRUN_BENCH_N:-10000}
BIG=${DAGRUN_BENCH_BIG:-100000}
set -u
. "$(dirname "$0")/lib.bash"
d=$BENCH_DIR/dagrun
rm -rf "$d" && mkdir -p "$d" && cd "$d" || exit 1
for n in $N $BIG; do
	cat > "fan$n.yaml" <<Y
name: fan$n
tasks:
  fan:
    each: {from: 0, to: $n}
    parallelism: 2
    run: "true"
Y
done
# one run of each, alternating, three times: the best of each
t_dag="" t_xargs=""
for _ in 1 2 3; do
	rm -rf runs
	t=$(best_of 1 dagrun run --quiet --runs-dir runs "fan$N.yaml") || exit 1
	[ -z "$t_dag" ] || awk -v a="$t" -v b="$t_dag" 'BEGIN { exit !(a < b) }' && t_dag=$t
	t=$(best_of 1 sh -c "seq $N | xargs -P2 -n1 true")
	[ -z "$t_xargs" ] || awk -v a="$t" -v b="$t_xargs" 'BEGIN { exit !(a < b) }' && t_xargs=$t
done
ratio=$(awk -v a="$t_dag" -v b="$t_xargs" 'BEGIN { printf "%.2f", a / b }')
echo "# dagrun: $N children in ${t_dag}s, xargs -P2 in ${t_xargs}s: ${ratio}x (target: within 1.3x)"
printf 'dagrun %s-item fan-out of true, parallelism 2 (vs xargs -P2)\ts\t%s\t%s\tlower\tx0.77\n' "$N" "$t_dag" "$t_xargs"
# the journal: bytes per task, and what its fsyncs cost (the same run with
# them deferred to the end)
run=$(ls runs | head -1)
events=$(wc -l < "runs/$run/journal.jsonl")
bytes=$(stat -c %s "runs/$run/journal.jsonl")
rm -rf runs
t_nosync=$(PLUMB_JOURNAL_SYNC=100000 best_of 1 dagrun run --quiet --runs-dir runs "fan$N.yaml")
per=$(awk -v a="$t_dag" -v b="$t_nosync" -v n="$N" 'BEGIN { d = (a - b) * 1e6 / n; printf "%.0f", d < 0 ? 0 : d }')
echo "# dagrun: journal: $events events, $((bytes / N)) bytes a task ($((bytes / events)) an event); grouped fsyncs add ${per} us a task (${t_dag}s against ${t_nosync}s without them)"
printf 'dagrun journal per task\tbytes\t%s\t-\tlower\n' "$((bytes / N))"
rm -rf runs
rss=$( { /usr/bin/time -f '%M' dagrun run --quiet --runs-dir runs "fan$BIG.yaml" > /dev/null; } 2>&1 | tail -1)
echo "# dagrun: $BIG-item fan-out peak RSS ${rss} KB (target: under 64 MB)"
printf 'dagrun %s-item fan-out peak memory\tKB\t%s\t-\tlower\t<=65536\n' "$BIG" "$rss"
rm -rf runs
