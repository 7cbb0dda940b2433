#!/usr/bin/env bash
# Publish a finished paper reproduction: replace results/paper/ (what the README quotes)
# with its report, figures (PNG), timing and reference-model table.
#   bash scripts/publish.sh runs/reproduce
# Refuses a workdir whose report is missing, is not the paper profile, or was trained from
# uncommitted code; then update the README's "What it measured" (tests/test_readme.py checks it).
set -euo pipefail
workdir=${1:?usage: bash scripts/publish.sh WORKDIR  (the --workdir of a finished cvd reproduce --profile paper)}
fail() { echo "error: $*" >&2; exit 2; }
[ -d "$workdir" ] || fail "no directory $workdir"
workdir=$(cd "$workdir" && pwd)
report="$workdir/report/report.md"
[ -f "$report" ] && [ -f "$workdir/timing.json" ] || fail "no report and timing in $workdir: has cvd reproduce finished?"
grep -q '^- \*\*profile\*\*: cvd reproduce --profile paper ' "$report" || fail "$report is not the paper profile's"
commit=$(sed -nE 's/^- \*\*code\*\*: commit ([0-9a-f]+) \([0-9]+ runs\)$/\1/p' "$report")
[ -n "$commit" ] || fail "$report does not name one commit, without uncommitted changes, for all its runs"
cd "$(dirname "$0")/.."
git merge-base --is-ancestor "$commit" HEAD 2>/dev/null || fail "the runs' commit $commit is not in this branch's history"
out=results/paper
rm -rf "$out" && mkdir -p "$out"
cp "$report" "$workdir"/report/F*.png "$workdir/timing.json" "$out/"
cp "$workdir/reference/results.md" "$out/reference_results.md"
echo "published $(ls "$out" | wc -l) files to results/paper/ from $workdir"
