#!/usr/bin/env bash
# benches/instructions.sh — instructions executed by one pgtrail run, counted
# by callgrind (valgrind): deterministic, so two builds can be compared on a
# noisy machine where wall times move by ±15 %. Used for every per-change
# figure of session 4 in benches/RESULTS.md.
#
# Usage: benches/instructions.sh PGTRAIL [ARGS...]
#   runs PGTRAIL ARGS --threads 1 on the first 5 MB of the scaled RDS log
#   (default ARGS: audit --format jsonl) and prints the total Ir and the
#   callgrind profile's path (read it with callgrind_annotate).
# Environment: SLICE (default /tmp/rds-5M.log), FROM (the log it is cut from,
#   default /work/bench-data/rds-100M.log, made by benches/scale.py).
# Startup alone (grammar compilation) is ~17 M Ir; `rep movsb` copies count
# one instruction per byte, so large memcpy is overstated.
set -euo pipefail
command -v valgrind > /dev/null || { echo "instructions.sh: needs valgrind (apt install valgrind)" >&2; exit 2; }
BIN=${1:?usage: benches/instructions.sh PGTRAIL [ARGS...]}; shift
[ $# = 0 ] && set -- audit --format jsonl
SLICE=${SLICE:-/tmp/rds-5M.log}
FROM=${FROM:-/work/bench-data/rds-100M.log}
[ -f "$SLICE" ] || head -c 5000000 "$FROM" > "$SLICE"
profile=$(mktemp /tmp/pgtrail-callgrind.XXXXXX)
log=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$profile" "$BIN" "$@" --threads 1 "$SLICE" 2> "$log" > /dev/null
grep -o "Collected : [0-9]*" "$log" | awk '{printf "%.1f M Ir\n", $3/1e6}'
rm -f "$log"
echo "profile: $profile"
