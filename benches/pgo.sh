#!/usr/bin/env bash
# benches/pgo.sh — a profile-guided release build of pgtrail.
#
# Builds an instrumented binary, runs it on training inputs made only from
# the repository's own logs, merges the profile and rebuilds the release
# binary with it. The code is the same; LLVM only lays out and inlines the
# hot paths according to where a real run spends its time.
#
# Training (every command runs with two threads, output to /dev/null):
#   - `audit`, `summary --format json` and `parse` on samples/ (every
#     PostgreSQL version and log format, forged lines included), and
#     `audit --format table`, `--format ocsf` and `--format ecs` there, so
#     that no path is trained as cold by omission;
#   - the same three commands on a 20 MB log scaled from the bundled RDS
#     sample (benches/scale.py, the shape of the benchmark log) and on the
#     recorded pgbench log (benches/data/pgbench-rds, mostly statements).
#
# Usage: benches/pgo.sh [OUT]   (default OUT: target/pgo/pgtrail)
# Needs llvm-profdata from the LLVM release rustc uses (`rustc -vV`; on
# Debian: apt install llvm-22). Takes two release builds (~15 minutes on
# 2 cores). Environment: CARGO_TARGET_DIR (default target/), PGO_DIR (the
# work directory, default target/pgo-work), TARGET_CPU (say x86-64-v3:
# both builds use `-Ctarget-cpu=$TARGET_CPU`, and the binary then runs only
# on CPUs of that level; default: the target's baseline, as cargo builds).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/pgo/pgtrail}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${PGO_DIR:-$TARGET/pgo-work}

llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
PROFDATA=$(command -v "llvm-profdata-$llvm_major" || command -v llvm-profdata || true)
# Another release's llvm-profdata cannot read rustc's raw profiles.
profdata_major=$([ -n "$PROFDATA" ] && "$PROFDATA" --version 2>/dev/null | sed -n 's/.*LLVM version \([0-9]*\).*/\1/p' || true)
if [ -z "$PROFDATA" ] || [ "$profdata_major" != "$llvm_major" ]; then
    echo "pgo.sh: needs llvm-profdata $llvm_major, rustc's LLVM (Debian: apt install llvm-$llvm_major)" >&2
    exit 2
fi

# The same code generation options for both builds, so that the profile
# fits the code it is used on.
CPU_FLAGS=${TARGET_CPU:+ -Ctarget-cpu=$TARGET_CPU}

rm -rf "$WORK"
mkdir -p "$WORK/raw" "$(dirname "$OUT")"
WORK=$(cd "$WORK" && pwd)
echo "pgo.sh: instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$WORK/raw$CPU_FLAGS" CARGO_TARGET_DIR="$TARGET/pgo-gen" \
    cargo build --release --quiet
GEN="$TARGET/pgo-gen/release/pgtrail"
# The build scripts ran instrumented too: only pgtrail's runs are kept.
rm -f "$WORK"/raw/*

# The training inputs: the scaled slice is made by the benchmark's scaler.
SLICE="$WORK/rds-20M.log"
python3 benches/scale.py --size 20M --out "$SLICE" --pgtrail "$GEN" > /dev/null
MIXED=benches/data/pgbench-rds/postgresql.log

echo "pgo.sh: training" >&2
# Exit codes 1 and 3 are expected (samples/ holds scripts and notes too).
train() {
    local code=0
    "$GEN" "$@" --threads 2 --quiet > /dev/null 2>&1 || code=$?
    case $code in
        0 | 1 | 3) ;;
        *) echo "pgo.sh: pgtrail $* exited with $code" >&2; exit 1 ;;
    esac
}
for input in samples/ "$SLICE" "$MIXED"; do
    train audit --format jsonl "$input"
    train summary --format json "$input"
    train parse "$input"
done
for format in table ocsf ecs; do
    train audit --format "$format" samples/
done

"$PROFDATA" merge -o "$WORK/pgtrail.profdata" "$WORK/raw"
echo "pgo.sh: optimised build" >&2
RUSTFLAGS="-Cprofile-use=$WORK/pgtrail.profdata$CPU_FLAGS" CARGO_TARGET_DIR="$TARGET/pgo-use" \
    cargo build --release --quiet
cp "$TARGET/pgo-use/release/pgtrail" "$OUT"
echo "pgo.sh: wrote $OUT" >&2
