#!/bin/bash
# benches/same-output.sh CANDIDATE REF — byte-compares CANDIDATE's output with REF's
# (two pgtrail binaries, e.g. before and after a performance change) on every
# log-like sample and a 20 MB slice of the scaled RDS log, for parse, audit in
# every format, and summary; with 1 and 2 threads and tiny chunks.
# Prints one line per difference and a final count; exit 1 if any differ.
CAND=${1:?usage: same-output.sh CANDIDATE REF}; REF=${2:?usage: same-output.sh CANDIDATE REF}
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
files=$(find samples -type f \( -name '*.log' -o -name '*.csv' -o -name '*.json' -o -name '*.jsonl' -o -name '*.gz' \) ! -path '*/iam/aws/*' ! -path '*/iam/cloudtrail/*' ! -name 'meta.json' ! -name 'iam-ground-truth.jsonl' | sort)
files="$files $(find benches/data -name '*.log' | sort | tr '\n' ' ')"
files="$files /tmp/rds-20M.log"
[ -f /tmp/rds-20M.log ] || head -c 20000000 /work/bench-data/rds-100M.log > /tmp/rds-20M.log
T=$(mktemp -d /tmp/same.XXXXXX); trap 'rm -rf "$T"' EXIT
diffs=0; runs=0
run() { # args...
  "$REF" "$@" > "$T/ref.out" 2> "$T/ref.err"; r1=$?
  "$CAND" "$@" > "$T/cand.out" 2> "$T/cand.err"; r2=$?
  runs=$((runs+1))
  if [ $r1 != $r2 ] || ! cmp -s "$T/ref.out" "$T/cand.out" || ! cmp -s "$T/ref.err" "$T/cand.err"; then
    echo "DIFF (exit $r1 vs $r2): $*"; diffs=$((diffs+1))
  fi
}
for f in $files; do
  for t in 1 2; do
    run parse --threads $t "$f"
    for fmt in jsonl csv table ocsf ecs cef; do run audit --format $fmt --threads $t "$f"; done
    run summary --format json --threads $t "$f"
    run summary --format table --threads $t "$f"
  done
  run audit --format jsonl --threads 2 --chunk-bytes 300 "$f"
  run parse --threads 2 --chunk-bytes 300 "$f"
done
# all samples in one run (ordering across inputs), and the IAM sample with correlation
mapfile -t logs < <(find samples -name '*.log' | sort)
run audit --format jsonl "${logs[@]}"
IAM=(--cloudtrail samples/iam/cloudtrail --iam-authorization samples/iam/aws/iam-authorization-app-account.json --iam-authorization samples/iam/aws/iam-authorization-security-account.json --ec2-inventory samples/iam/aws/ec2-describe-instances.json --ec2-inventory samples/iam/aws/ec2-describe-network-interfaces.json --aws-config samples/iam/aws-config.toml)
for fmt in jsonl ocsf ecs cef table; do run audit --format $fmt "${IAM[@]}" samples/iam/postgresql.log; done
run summary --format json "${IAM[@]}" samples/iam/postgresql.log
run audit samples/
echo "$runs runs, $diffs differ"
[ $diffs = 0 ]
