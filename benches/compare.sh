#!/usr/bin/env bash
# benches/compare.sh — whole-run throughput of pgtrail on a ~1 GB realistic
# RDS log, next to the tools it has to beat (pgBadger) and the machine's
# practical limit (rg -c, grep -c, wc -l). See benches/RESULTS.md.
#
# What it does, in order:
#   1. prints machine details (CPU, cores, RAM, kernel, tool versions);
#   2. builds release pgtrail (cargo build --release) unless --no-build,
#      or a profile-guided one (benches/pgo.sh) with --pgo; --cpu LEVEL
#      builds for a CPU level (`-Ctarget-cpu=LEVEL`, say x86-64-v3: AVX2,
#      BMI2; the binary then needs such a CPU), with or without --pgo;
#   3. installs missing tools with apt: ripgrep, pgbadger, time;
#   4. generates the log with benches/scale.py if absent (default
#      /work/bench-data/rds-1G.log, outside the repository), and a 100 MB
#      slice for pgBadger when the full file would take it over ~3 minutes;
#   5. reads each input right before every timed run, so that every command
#      runs on a warm page cache (we measure CPU, not the disk; machines
#      with proactive reclaim, such as DAMON's `pageout` scheme, page out
#      idle page cache within seconds, so one read at the start is not
#      enough);
#   6. times every command (best of --runs for the fast ones, one run for
#      pgBadger and for anything slower than --slow seconds) with wall time
#      and peak RSS from /usr/bin/time, and prints a Markdown table:
#      seconds, MB/s (MB = 10^6 bytes), peak RSS, ratio to pgBadger -j 2,
#      ratio to rg -c;
#   6a. unless --no-floor, times examples/floor.rs (the least work an audit
#      of this log could cost: no validation, no ordering; see its doc) with
#      a thread per CPU and with 1, as JSON and as counts, and prints pgtrail's
#      throughput as a share of it;
#   6b. unless --no-mixed, also times audit on a log of the same size scaled
#      from benches/data/pgbench-rds (a real PostgreSQL 15 log where every
#      statement is logged and 8 % of the lines are connection lines, as on
#      a busy production server), with 2 threads and 1, and rg -c on it;
#   7. checks pgtrail's counts on the file against <file>.expected.json
#      (benches/scale.py --check) and rg/grep/wc's against the scaler's line
#      counts, and exits 1 loudly on any mismatch.
#
# Usage: benches/compare.sh [--size 1G] [--file PATH] [--runs 3] [--slow 30]
#                           [--pgbadger-max-mb 600] [--no-pgbadger] [--no-build]
#                           [--no-check] [--no-mixed] [--no-floor] [--rss-4g] [--pgo]
#                           [--cpu LEVEL]
#                           [--report PATH]
# Environment: CARGO_TARGET_DIR (where cargo builds; default ./target),
#              PGTRAIL (a pgtrail binary to use instead of building one),
#              FLOOR (the floor example's binary; default: built with pgtrail,
#              or found in the target directory with --no-build).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_DIR=/work/bench-data

# ---- options ---------------------------------------------------------------
SIZE=1G                 # size of the generated log (scale.py --size)
FILE=""                 # default: $DATA_DIR/rds-$SIZE.log
RUNS=3                  # best of N for fast commands
SLOW=30                 # a first run longer than this (s) is not repeated
PGBADGER_MAX_MB=600     # above this, pgBadger reads a 100 MB slice instead
PGBADGER=1
BUILD=1
PGO=0
TARGET_CPU=""          # --cpu: -Ctarget-cpu for the build (default: baseline)
CHECK=1
RSS_4G=0
MIXED_ROWS=1
FLOOR_ROWS=1
REPORT=""               # default: $DATA_DIR/compare-<date>.md

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --size) SIZE=$2; shift 2 ;;
        --file) FILE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --slow) SLOW=$2; shift 2 ;;
        --pgbadger-max-mb) PGBADGER_MAX_MB=$2; shift 2 ;;
        --no-pgbadger) PGBADGER=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-floor) FLOOR_ROWS=0; shift ;;
        --pgo) PGO=1; shift ;;
        --cpu) TARGET_CPU=$2; shift 2 ;;
        --no-check) CHECK=0; shift ;;
        --rss-4g) RSS_4G=1; shift ;;
        --no-mixed) MIXED_ROWS=0; shift ;;
        --report) REPORT=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
FILE=${FILE:-$DATA_DIR/rds-$SIZE.log}
REPORT=${REPORT:-$DATA_DIR/compare-$(date -u +%Y%m%dT%H%M%SZ).md}
SLICE=$DATA_DIR/rds-100M.log

TMP=$(mktemp -d /tmp/pgtrail-compare.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

mkdir -p "$DATA_DIR" "$(dirname "$REPORT")"
: > "$REPORT"
# say: print a line and append it to the report.
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
die() { echo "compare.sh: $*" >&2; exit 1; }

cd "$REPO"

# ---- 2. build ---------------------------------------------------------------
if [[ -n ${PGTRAIL:-} ]]; then
    [[ -x $PGTRAIL ]] || die "PGTRAIL=$PGTRAIL is not executable"
    PGTRAIL_GIVEN=1
elif [[ $BUILD == 1 && $PGO == 1 ]]; then
    PGTRAIL=${CARGO_TARGET_DIR:-$REPO/target}/pgo/pgtrail
    TARGET_CPU=$TARGET_CPU bash "$REPO/benches/pgo.sh" "$PGTRAIL"
elif [[ $BUILD == 1 && -n $TARGET_CPU ]]; then
    # A directory of its own: the baseline build's artefacts stay valid.
    echo "compare.sh: cargo build --release, -Ctarget-cpu=$TARGET_CPU" >&2
    CPU_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}/cpu-$TARGET_CPU
    RUSTFLAGS="-Ctarget-cpu=$TARGET_CPU" CARGO_TARGET_DIR=$CPU_TARGET_DIR cargo build --release --quiet
    PGTRAIL=$CPU_TARGET_DIR/release/pgtrail
elif [[ $BUILD == 1 ]]; then
    echo "compare.sh: cargo build --release" >&2
    cargo build --release --quiet
    PGTRAIL=${CARGO_TARGET_DIR:-$REPO/target}/release/pgtrail
else
    PGTRAIL=${CARGO_TARGET_DIR:-$REPO/target}/release/pgtrail
fi
[[ -x $PGTRAIL ]] || die "no pgtrail binary at $PGTRAIL (build it or set PGTRAIL)"
if [[ $FLOOR_ROWS == 1 && -z ${FLOOR:-} ]]; then
    FLOOR=${CARGO_TARGET_DIR:-$REPO/target}/release/examples/floor
    if [[ $BUILD == 1 ]]; then
        echo "compare.sh: cargo build --release --example floor" >&2
        cargo build --release --example floor --quiet
    fi
fi
if [[ $FLOOR_ROWS == 1 && ! -x $FLOOR ]]; then
    echo "compare.sh: no floor binary at $FLOOR (build it with cargo build --release --example floor, or set FLOOR); its rows are skipped" >&2
    FLOOR_ROWS=0
fi

# ---- 3. tools -----------------------------------------------------------------
missing=()
command -v rg >/dev/null || missing+=(ripgrep)
[[ -x /usr/bin/time ]] || missing+=(time)
if [[ $PGBADGER == 1 ]] && ! command -v pgbadger >/dev/null; then missing+=(pgbadger); fi
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "compare.sh: apt-get install ${missing[*]}" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        die "could not install ${missing[*]}"
    fi
fi

# ---- 1. machine -----------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
if [[ $BUILD == 1 && -z ${PGTRAIL_GIVEN:-} ]]; then
    built_from=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs grammars 2>/dev/null \
        || built_from="$built_from + uncommitted changes"
    [[ $PGO == 1 ]] && built_from="$built_from, profile-guided (benches/pgo.sh)"
    [[ -n $TARGET_CPU ]] && built_from="$built_from, -Ctarget-cpu=$TARGET_CPU"
else
    built_from="$PGTRAIL (given)"
fi
say "## pgtrail whole-run comparison, $(date -u '+%Y-%m-%d %H:%M UTC')"
say ""
say "- machine: $(nproc) cores, ${cpu:-unknown CPU}, ${mem_gib} GiB RAM, Linux $(uname -r)"
say "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews timings)"
say "- rustc: $(rustc --version 2>/dev/null || echo n/a); pgtrail: $($PGTRAIL --version), built from $built_from"
say "- tools: $(rg --version | head -1); $(grep --version | head -1); $(wc --version | head -1)$(
    [[ $PGBADGER == 1 ]] && printf '; pgBadger %s' "$(pgbadger --version 2>/dev/null | sed -n 's/.*version //p')")"

# ---- 4. data ----------------------------------------------------------------------
# has_expected FILE: FILE and a FILE.expected.json with every count this
# script checks (an older scale.py wrote fewer).
has_expected() {
    [[ -f $1 && -f $1.expected.json ]] && python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
sys.exit(not all(k in e for k in ("lines", "lines_with_connection_authorized", "per_copy", "events_by_kind", "sessions_by_outcome")))
' "$1.expected.json"
}
# A (re)generated file also gets fresh expected counts from this binary.
if ! has_expected "$FILE"; then
    python3 benches/scale.py --size "$SIZE" --out "$FILE" --pgtrail "$PGTRAIL"
fi
BYTES=$(stat -c %s "$FILE")
expected() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$FILE.expected.json" "$1"; }
say "- input: $FILE: $BYTES bytes, $(expected lines) lines, $(expected copies) copies of" \
    "$(expected sample) with fresh pids and shifted timestamps ($(expected first_time) … $(expected last_time))"

# pgBadger runs about 4–6 MB/s here: past PGBADGER_MAX_MB it would take over
# ~3 minutes, so it reads a 100 MB slice made by the same scaler instead.
PGB_FILE=$FILE
if [[ $PGBADGER == 1 && $BYTES -gt $((PGBADGER_MAX_MB * 1000000)) ]]; then
    PGB_FILE=$SLICE
    if ! has_expected "$SLICE"; then
        python3 benches/scale.py --size 100M --out "$SLICE" --pgtrail "$PGTRAIL"
    fi
    say "- pgBadger reads $SLICE ($(stat -c %s "$SLICE") bytes, same generator); its MB/s are on what it read"
fi

# The mixed log: same size, scaled from a real log that is mostly statements.
MIXED=$DATA_DIR/pgbench-$SIZE.log
if [[ $MIXED_ROWS == 1 ]]; then
    if ! has_expected "$MIXED"; then
        python3 benches/scale.py --input benches/data/pgbench-rds/postgresql.log --size "$SIZE" \
            --out "$MIXED" --pgtrail "$PGTRAIL"
    fi
    say "- mixed log: $MIXED: $(stat -c %s "$MIXED") bytes, scaled from benches/data/pgbench-rds/postgresql.log" \
        "(PostgreSQL 15 under pgbench, every statement logged; 8 % of the lines are connection lines)"
fi

# ---- 5. warm the page cache ----------------------------------------------------------
# The inputs of the next measurements, read again before each timed run.
WARM=("$FILE")
warm() {
    local f
    for f in "${WARM[@]}"; do
        if [[ -d $f ]]; then find "$f" -type f -exec cat {} + > /dev/null; else cat "$f" > /dev/null; fi
    done
}
say "- page cache: warm (each input read again right before every timed run; nothing dropped)"
say "- timing: wall clock; best of $RUNS runs, or 1 run for pgBadger and for commands slower than ${SLOW} s;" \
    "peak RSS = max over runs of /usr/bin/time %M"

# ---- 6. timing --------------------------------------------------------------------------
# Results, one line per command: label|seconds|peak RSS KiB|bytes read|runs
# (the table converts RSS to MB = 10^6 bytes, like the throughputs)
RESULTS=$TMP/results

# measure LABEL BYTES OUTFILE MAXRUNS CMD... — runs CMD with stdout to OUTFILE,
# up to MAXRUNS times (once if the first run is slower than $SLOW seconds),
# and records the best wall time and the peak RSS over the runs.
measure() {
    local label=$1 bytes=$2 out=$3 max_runs=$4
    shift 4
    local best="" peak=0 runs=0 start end secs rc e rss
    echo "compare.sh: $label" >&2
    while ((runs < max_runs)); do
        warm
        start=$EPOCHREALTIME
        rc=0
        /usr/bin/time -f '%e %M' -o "$TMP/time" "$@" > "$out" 2> "$TMP/stderr" || rc=$?
        end=$EPOCHREALTIME
        runs=$((runs + 1))
        if [[ $rc != 0 ]]; then
            echo "compare.sh: $label exited $rc:" >&2
            tail -5 "$TMP/stderr" >&2
            echo "$label|FAILED (exit $rc)|0|$bytes|$runs" >> "$RESULTS"
            return 0
        fi
        read -r e rss < <(tail -1 "$TMP/time")
        : "$e"  # /usr/bin/time's own %e has 10 ms resolution; we use EPOCHREALTIME
        secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
        if [[ -z $best ]] || awk -v s="$secs" -v b="$best" 'BEGIN { exit !(s < b) }'; then best=$secs; fi
        ((rss > peak)) && peak=$rss
        if awk -v s="$secs" -v slow="$SLOW" 'BEGIN { exit !(s > slow) }'; then break; fi
    done
    echo "$label|$best|$peak|$bytes|$runs" >> "$RESULTS"
}

# Does this pgtrail have a --threads flag (global or per command)?
THREADS=0
if { "$PGTRAIL" --help; "$PGTRAIL" audit --help; } 2>&1 | grep -q -- '--threads'; then THREADS=1; fi

: > "$RESULTS"
measure "pgtrail audit --format jsonl" "$BYTES" /dev/null "$RUNS" "$PGTRAIL" audit --format jsonl -q "$FILE"
measure "pgtrail summary --format json" "$BYTES" /dev/null "$RUNS" "$PGTRAIL" summary --format json -q "$FILE"
measure "pgtrail parse" "$BYTES" /dev/null "$RUNS" "$PGTRAIL" parse -q "$FILE"
for cmd in "audit --format jsonl" "summary --format json" "parse"; do
    if [[ $THREADS == 1 ]]; then
        # shellcheck disable=SC2086 # $cmd is a command and its flags
        measure "pgtrail $cmd, 1 thread" "$BYTES" /dev/null "$RUNS" \
            env PGTRAIL_THREADS=1 "$PGTRAIL" $cmd --threads 1 -q "$FILE"
    else
        echo "pgtrail $cmd, 1 thread|n/a (no --threads flag)|0|$BYTES|0" >> "$RESULTS"
    fi
done
# The same log as a directory of 1 MB files (hourly files, exports): the
# inputs of a run are decoded one after the other without a pause.
mkdir -p "$TMP/split"
split -C 1000000 -d -a 5 "$FILE" "$TMP/split/part-"
WARM=("$TMP/split")
measure "pgtrail audit --format jsonl, as $(find "$TMP/split" -type f | wc -l) files in a directory" "$BYTES" /dev/null "$RUNS" \
    "$PGTRAIL" audit --format jsonl -q --server rds "$TMP/split"
rm -rf "$TMP/split"
if [[ $MIXED_ROWS == 1 ]]; then
    WARM=("$MIXED")
    MIXED_BYTES=$(stat -c %s "$MIXED")
    measure "pgtrail audit --format jsonl, mixed log" "$MIXED_BYTES" /dev/null "$RUNS" \
        "$PGTRAIL" audit --format jsonl -q "$MIXED"
    if [[ $THREADS == 1 ]]; then
        measure "pgtrail audit --format jsonl, mixed log, 1 thread" "$MIXED_BYTES" /dev/null "$RUNS" \
            "$PGTRAIL" audit --format jsonl --threads 1 -q "$MIXED"
    fi
    measure "rg -c 'connection authorized', mixed log" "$MIXED_BYTES" "$TMP/rg-mixed.out" "$RUNS" \
        rg -c 'connection authorized' "$MIXED"
fi
WARM=("$FILE")
if [[ $FLOOR_ROWS == 1 ]]; then
    # One thread per CPU, as pgtrail's default, then one.
    for threads in "$(nproc)" 1; do
        suffix=""; [[ $threads == 1 ]] && suffix=", 1 thread"
        measure "floor (examples/floor.rs), sessions as JSON$suffix" "$BYTES" /dev/null "$RUNS" \
            "$FLOOR" --threads "$threads" "$FILE"
        measure "floor (examples/floor.rs) --count$suffix" "$BYTES" /dev/null "$RUNS" \
            "$FLOOR" --count --threads "$threads" "$FILE"
    done
fi
measure "rg -c 'connection authorized'" "$BYTES" "$TMP/rg.out" "$RUNS" rg -c 'connection authorized' "$FILE"
measure "grep -c 'connection authorized'" "$BYTES" "$TMP/grep.out" "$RUNS" grep -c 'connection authorized' "$FILE"
measure "wc -l" "$BYTES" "$TMP/wc.out" "$RUNS" wc -l "$FILE"
if [[ $PGBADGER == 1 ]]; then
    PGB_BYTES=$(stat -c %s "$PGB_FILE")
    WARM=("$PGB_FILE")
    for jobs in 1 2; do
        label="pgbadger"
        args=()
        if [[ $jobs == 2 ]]; then label="pgbadger -j 2"; args=(-j 2); fi
        [[ $PGB_FILE == "$FILE" ]] || label="$label (100 MB slice)"
        measure "$label" "$PGB_BYTES" /dev/null 1 \
            pgbadger "${args[@]}" -f stderr --prefix '%t:%r:%u@%d:[%p]:' -o "$TMP/pgbadger.json" "$PGB_FILE"
    done
fi

# Optional: does peak RSS stay flat on a 4 GB file? Capped at 16 GiB of
# address space, since an engine that loads its input whole needs several
# times the file size and would otherwise exhaust the machine.
if [[ $RSS_4G == 1 ]]; then
    FILE4=$DATA_DIR/rds-4G.log
    has_expected "$FILE4" || python3 benches/scale.py --size 4G --out "$FILE4" --pgtrail "$PGTRAIL"
    WARM=("$FILE4")
    # shellcheck disable=SC2016 # $@ expands in the inner shell
    for cmd in "audit --format jsonl" "summary --format json" "parse"; do
        # shellcheck disable=SC2086 # $cmd is a command and its flags
        measure "pgtrail $cmd (4 GB file, 16 GiB cap)" "$(stat -c %s "$FILE4")" /dev/null 1 \
            bash -c 'ulimit -v $((16 * 1024 * 1024)) && exec "$@"' _ "$PGTRAIL" $cmd -q "$FILE4"
    done
fi

# ---- the table -------------------------------------------------------------------------------
# Ratios are throughput ratios: "× pgBadger -j 2" = this MB/s ÷ pgBadger -j 2's MB/s.
say ""
awk -F'|' '
    function mbps(i) { return secs[i] > 0 ? bytes[i] / secs[i] / 1e6 : 0 }
    function num(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : x >= 0.1 ? sprintf("%.2f", x) : sprintf("%.4f", x) }
    function ratio(a, b) { return (a > 0 && b > 0) ? num(a / b) "×" : "–" }
    {
        n++; label[n] = $1; secs[n] = $2 + 0; raw[n] = $2; rss[n] = $3; bytes[n] = $4; runs[n] = $5
        if ($1 ~ /^pgbadger -j 2/) pgb = n
        if ($1 ~ /^rg -c/) rg = n
    }
    END {
        print "| command | seconds | MB/s | peak RSS MB | × pgBadger -j 2 | × rg -c | runs |"
        print "|---|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= n; i++) {
            if (secs[i] == 0) { printf "| `%s` | %s | | | | | |\n", label[i], raw[i]; continue }
            printf "| `%s` | %.2f | %.1f | %.0f | %s | %s | %d |\n", label[i], secs[i], mbps(i), rss[i] * 1.024 / 1000,
                pgb ? ratio(mbps(i), mbps(pgb)) : "–", rg ? ratio(mbps(i), mbps(rg)) : "–", runs[i]
        }
    }' "$RESULTS" | tee -a "$REPORT"

# ---- targets of issue 4 (informational) ----------------------------------------------------
say ""
awk -F'|' -v threads="$THREADS" '
    { v[$1] = ($2 + 0 > 0) ? $4 / $2 / 1e6 : 0; rss[$1] = $3 * 1.024 / 1000 }
    function pgb() { for (k in v) if (k ~ /^pgbadger -j 2/) return v[k]; return 0 }
    function verdict(ok) { return ok ? "met" : "NOT met" }
    END {
        a = "pgtrail audit --format jsonl"; s = "pgtrail summary --format json"; p = "pgtrail parse"
        printf "- target audit ≥ 1000 MB/s: %.1f MB/s — %s\n", v[a], verdict(v[a] >= 1000)
        if (pgb() > 0) printf "- target audit ≥ 100× pgBadger -j 2: %.1f× — %s\n", v[a] / pgb(), verdict(v[a] / pgb() >= 100)
        printf "- target summary ≥ 1500 MB/s: %.1f MB/s — %s\n", v[s], verdict(v[s] >= 1500)
        f = "floor (examples/floor.rs), sessions as JSON"; fc = "floor (examples/floor.rs) --count"
        if (v[f] > 0) printf "- (informational) audit at %.0f %% of the floor (%.1f MB/s), summary at %.0f %% of the floor --count (%.1f MB/s)\n", 100 * v[a] / v[f], v[f], 100 * v[s] / v[fc], v[fc]
        m = a ", mixed log"
        if (m in v) printf "- (informational) audit on the mixed log: %.1f MB/s\n", v[m]
        if (threads == 1) {
            for (c in v) if (c ~ /, 1 thread$/ && v[c] > 0) {
                base = substr(c, 1, length(c) - length(", 1 thread"))
                if (c ~ /^pgtrail/)
                    printf "- target %s: 2 threads ≥ 1.7× 1 thread: %.2f× — %s\n", base, v[base] / v[c], verdict(v[base] / v[c] >= 1.7)
                else
                    printf "- (informational) %s: 2 threads ÷ 1 thread: %.2f×\n", base, v[base] / v[c]
            }
        } else print "- target 2 threads ≥ 1.7× 1 thread: n/a (no --threads flag yet)"
        worst = 0; for (c in rss) if (c ~ /^pgtrail/ && c !~ /4 GB/ && rss[c] > worst) worst = rss[c]
        printf "- target peak RSS ≤ 100 MB on this file: worst pgtrail command %.0f MB — %s\n", worst, verdict(worst <= 100)
        for (c in rss) if (c ~ /4 GB file/) {
            base = substr(c, 1, index(c, " (4 GB") - 1)
            printf "- target %s peak RSS on 4 GB no higher than on this file (within 10 %% for noise): %.0f MB vs %.0f MB — %s\n", base, rss[c], rss[base], verdict(rss[c] <= rss[base] * 1.1)
        }
    }' "$RESULTS" | tee -a "$REPORT"

# ---- 7. counts -----------------------------------------------------------------------------------
if [[ $CHECK == 1 ]]; then
    say ""
    fail=0
    # rg/grep/wc against the scaler's own line counts
    check_eq() {
        if [[ $2 == "$3" ]]; then say "- count OK: $1 = $2"
        else say "- COUNT MISMATCH: $1 = $2, expected $3"; fail=1; fi
    }
    check_eq "rg -c 'connection authorized'" "$(cat "$TMP/rg.out")" "$(expected lines_with_connection_authorized)"
    check_eq "grep -c 'connection authorized'" "$(cat "$TMP/grep.out")" "$(expected lines_with_connection_authorized)"
    check_eq "wc -l" "$(awk '{ print $1 }' "$TMP/wc.out")" "$(expected lines)"
    # pgtrail: events by kind (parse), records (parse stats line), sessions by
    # outcome (audit --format jsonl) and summary totals, against K × the sample
    checked=("$FILE")
    if [[ $MIXED_ROWS == 1 ]]; then
        checked+=("$MIXED")
        check_eq "rg -c 'connection authorized', mixed log" "$(cat "$TMP/rg-mixed.out")" \
            "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines_with_connection_authorized"])' "$MIXED.expected.json")"
    fi
    for f in "${checked[@]}"; do
        if python3 benches/scale.py --check "$f" --pgtrail "$PGTRAIL" 2> "$TMP/check"; then
            say "- $(sed 's/^scale.py: //' "$TMP/check")"
        else
            tee -a "$REPORT" < "$TMP/check" >&2
            fail=1
        fi
    done
    # With a --threads flag, the parallel output must be byte-identical to one thread's.
    if [[ $THREADS == 1 ]]; then
        for cmd in "audit --format jsonl" "parse"; do
            # shellcheck disable=SC2086 # $cmd is a command and its flags
            one=$(env PGTRAIL_THREADS=1 "$PGTRAIL" $cmd --threads 1 -q "$FILE" | sha256sum)
            # shellcheck disable=SC2086
            many=$("$PGTRAIL" $cmd -q "$FILE" | sha256sum)
            check_eq "sha256 of 'pgtrail $cmd' output, default threads vs 1 thread" "${many%% *}" "${one%% *}"
        done
    fi
    if [[ $fail == 1 ]]; then
        say ""
        say "**COUNT CHECK FAILED** — the timings above are not valid for a broken engine."
        echo "compare.sh: report in $REPORT" >&2
        exit 1
    fi
fi
say ""
say "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "compare.sh: report in $REPORT" >&2
