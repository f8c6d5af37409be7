#!/bin/sh
# make demo: run the example pipeline (pipelines/examples/project.yaml, which
# uses the standard pipelines/rag-index.yaml) with dagrun over the project's
# own documentation, with the embedded defaults (hash embeddings, the local
# store). Its validate task runs canary queries: a miss fails the run, and the
# demo. A second run must find nothing to do.
set -eu
work=build/demo
rm -rf "$work"
mkdir -p "$work"
runs=$work/runs

echo "== dagrun run -I pipelines pipelines/examples/project.yaml"
dagrun run -I pipelines --runs-dir "$runs" --run-id first pipelines/examples/project.yaml
dagrun status --runs-dir "$runs" first
upsert-local --stats build/demo/index

echo
echo "== the canary queries of the validate task: recall@5 and reciprocal rank of each"
grep -v '"scorecard"' "$runs/first/tasks/validate.out" |
	sed 's/^{"id":"\([^"]*\)","scores":{"recall@5":\([0-9.]*\),"mrr":\([0-9.]*\)}.*/\1: recall@5 \2, rr \3/'
tail -n 1 "$runs/first/tasks/validate.out" | cut -c1-200

echo
echo "== a second run: nothing changed, nothing to do"
dagrun run -I pipelines --runs-dir "$runs" --run-id second --quiet pipelines/examples/project.yaml
n=$(wc -l < "$runs/second/tasks/discover.out")
echo "changed documents: $n"
[ "$n" -eq 0 ] || { echo "demo: committed documents were found again" >&2; exit 1; }
