#!/usr/bin/env bash
# k8s: dagrun's Kubernetes executor (lib/exec_k8s.c) against the Kubernetes
# test server (t/k8s-server.py, over TLS, no Pod start-up delay), driven by
# its unit test's bench mode as the scheduler drives it.
#  - latency: a 1,000-Pod fan-out, 8 in flight, each next Pod started as soon
#    as one ends; the median time from the executor acting on a Pod's
#    Succeeded event to the server receiving the create of the Pod that was
#    waiting on it (the server's request log has each create's arrival time
#    and Pod name). Target: under 50 ms. Argo's controller takes up to its
#    10 s requeue interval for the same step; it cannot run here (no peer).
#  - qps: a 1,000-Pod fan-out started at once under --qps 50 --burst 1; the
#    rate at which the creates reach the server. Target: the QPS within 10%.
# K8S_BENCH_PODS, K8S_BENCH_INFLIGHT and K8S_BENCH_QPS change the sizes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${BENCH_DIR:=$root/build/bench}"
mkdir -p "$BENCH_DIR"
pods=${K8S_BENCH_PODS:-1000}
inflight=${K8S_BENCH_INFLIGHT:-8}
qps=${K8S_BENCH_QPS:-50}

# the driver is the executor's unit test (make builds it for make check)
out=$(dirname "${BENCH_BUILD:-$root/build/rel/bench}")
unit=$out/t/exec_k8s
if ! make -s -C "$root" O="$out" "$unit" >&2; then
	echo "# k8s: could not build $unit; no figures"
	exit 0
fi

kdir=$(mktemp -d "$BENCH_DIR/k8s.XXXXXX")
python3 "$root/t/k8s-server.py" --port-file "$kdir/port" --tls-dir "$kdir/tls" --token secret:bench \
	> "$kdir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$kdir"' EXIT
for _ in $(seq 200); do [ -s "$kdir/port" ] && break; sleep 0.05; done
if ! [ -s "$kdir/port" ]; then
	echo "# k8s: the test server did not start: $(cat "$kdir/log")"
	exit 0
fi
url=https://127.0.0.1:$(cat "$kdir/port")

# latency, with the rate limiter out of the way (-1: none)
if ! lat=$("$unit" bench "$url" "$kdir/tls" latency "$pods" "$inflight" -1 0); then
	echo "# k8s latency: the driver failed: $lat"
	exit 0
fi
read -r _ n _ failed _ secs _ rate <<<"$(sed -n 1p <<<"$lat")"
read -r _ samples _ median _ p90 _ max <<<"$(sed -n 2p <<<"$lat")"
echo "# k8s: $n Pods ($failed failed) in ${secs} s, $rate Pods/s with $inflight in flight;" \
	"Succeeded -> next create: median $median ms, p90 $p90 ms, max $max ms over $samples" \
	"(target: median under 50 ms; Argo: up to its 10 s requeue)"
printf 'k8s: Succeeded event to next Pod create, median (%s Pods)\tms\t%s\t-\tlower\t<=50\n' "$pods" "$median"

if ! q=$("$unit" bench "$url" "$kdir/tls" qps "$pods" "$pods" "$qps" 1); then
	echo "# k8s qps: the driver failed: $q"
	exit 0
fi
read -r _ creates _ got _ _ <<<"$(sed -n 2p <<<"$q")"
echo "# k8s: $creates creates of a $pods-Pod fan-out at $got/s under --qps $qps --burst 1" \
	"($(awk -v a="$got" -v b="$qps" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }') of the" \
	"limit; target: within 10%)"
printf 'k8s: Pod creates/s under --qps %s (%s-Pod fan-out)\tcreates/s\t%s\t-\thigher\t>=%s\n' "$qps" "$pods" "$got" \
	"$(awk -v q="$qps" 'BEGIN { print q * 0.9 }')"
