# Sourced by benchmarks: timing helpers.

# best_of N CMD...: the best wall time in seconds of N runs of CMD (output to /dev/null)
best_of() {
	local n=$1 best="" t0 t1 t
	shift
	for _ in $(seq "$n"); do
		t0=$(date +%s.%N)
		"$@" > /dev/null || return 1
		t1=$(date +%s.%N)
		t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
		if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
	done
	echo "$best"
}

# mbps BYTES SECONDS
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
