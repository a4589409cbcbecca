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
# one instruction per byte, so large memcpy is overstated. The second figure
# leaves out libc's memset: under callgrind the reader thread sometimes finds
# no block handed back and zeroes a fresh one, which moves the total by up to
# ±1.5 % between runs of one binary; without it runs agree within ±0.3 %.
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
total=$(grep -o "Collected : [0-9]*" "$log" | awk '{print $3}')
memset=$(callgrind_annotate "$profile" 2> /dev/null | awk '/__memset_[a-z0-9_]*unaligned/ && !seen {gsub(",", "", $1); print $1; seen = 1}')
awk -v t="$total" -v m="${memset:-0}" 'BEGIN { printf "%.1f M Ir, %.1f M without memset\n", t / 1e6, (t - m) / 1e6 }'
rm -f "$log"
echo "profile: $profile"
