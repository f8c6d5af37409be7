#!/usr/bin/env bash
# dagrun's own overhead: a fan-out of `true` with parallelism 2 against
# xargs -P2 running the same commands, in the same run; the peak memory of a
# larger fan-out; and the journal's cost per task. The issue's sizes are
# 10,000 and 100,000 items (DAGRUN_BENCH_N, DAGRUN_BENCH_BIG); the runner's
# per-child cost still grows with the number of children (see the note on
# issue 4), so the defaults are smaller, to keep make bench finite.
N=${DAGRUN_BENCH_N:-1000}
BIG=${DAGRUN_BENCH_BIG:-2000}
set -u
. "$(dirname "$0")/lib.bash"
d=$BENCH_DIR/dagrun
rm -rf "$d" && mkdir -p "$d" && cd "$d" || exit 1
for n in $N $BIG; do
	cat > "fan$n.yaml" <<Y
name: fan$n
tasks:
  fan:
    each: {from: 1, to: $n}
    parallelism: 2
    run: "true"
Y
done
t_dag=$(best_of 3 dagrun run --quiet --runs-dir runs "fan$N.yaml")
t_xargs=$(best_of 3 sh -c "seq $N | xargs -P2 -n1 true")
echo "# dagrun: $N children in ${t_dag}s, xargs -P2 in ${t_xargs}s (target: within 1.3x of xargs at 10,000)"
printf 'dagrun %s-item fan-out of true, parallelism 2 (vs xargs -P2)\ts\t%s\t%s\tlower\n' "$N" "$t_dag" "$t_xargs"
rss=$( { /usr/bin/time -f '%M' dagrun run --quiet --runs-dir runs "fan$BIG.yaml" > /dev/null; } 2>&1 | tail -1)
echo "# dagrun: $BIG-item fan-out peak RSS ${rss} KB (target: under 64 MB at 100,000)"
printf 'dagrun %s-item fan-out peak memory\tKB\t%s\t-\tlower\n' "$BIG" "$rss"
run=$(ls -t runs | head -1)
events=$(wc -l < "runs/$run/journal.jsonl")
bytes=$(stat -c %s "runs/$run/journal.jsonl")
echo "# dagrun: journal of the $BIG-item run: $events events, $bytes bytes ($((bytes / events)) bytes an event, each written and fsync'd)"
