#!/bin/sh
# make deps: the Debian packages plumb needs to build, test and benchmark.
# Idempotent and quick when everything is present.
set -eu
PKGS="build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev
libhiredis-dev libopenblas-dev libssl-dev libutf8proc-dev bats bats-assert bats-support
redis-server prometheus-pushgateway groff-base time ca-certificates git jq
python3-faiss python3-numpy python3-sklearn
python3-regex python3-tabulate python3-colorama python3-lxml python3-portalocker python3-yaml"
# Node (peer benchmarks, the LangChain compatibility test) and Python (test
# servers) come from Debian only when the machine has none of its own.
# Debian 12's Node is 18; the pinned npm peers ask for 20 or later, and the
# ones the tests run (@langchain/textsplitters, ajv, kubernetes-models) were
# checked to run on 18 all the same.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
command -v python3 >/dev/null 2>&1 || PKGS="$PKGS python3"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing:$missing" >&2
	echo "deps: not root; run as root, or: sudo apt-get install$missing" >&2
	exit 2
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
