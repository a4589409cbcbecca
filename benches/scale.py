#!/usr/bin/env python3
"""Scale a real PostgreSQL stderr log (RDS prefix) up to a benchmark-sized log.

The output is K copies of the sample. Copy k (k = 0 … K-1):

- has every `YYYY-MM-DD HH:MM:SS UTC` timestamp (the `%t` of the prefix, and
  the same text inside messages such as "database system was shut down at …")
  shifted forward by k × (sample span + gap), with real calendar arithmetic,
  so dates roll over midnight and month ends correctly;
- has every process id replaced by a fresh one, unique across all copies
  (or, with --pid-max, wrapping around below that value like a real server's):
  the `[%p]` of the prefix (backends and server background processes alike)
  and the `(PID n)` of a "background worker … (PID n) exited" message. The
  mapping is one-to-one within a copy, so records of one process in the
  sample stay one process in the copy and sessions stitch exactly as in the
  original. Nothing else changes: ports, client addresses, user names and
  line order are byte-for-byte those of the sample.

Next to the output it writes `<out>.expected.json`: the counts pgtrail must
report on the scaled log, i.e. K × what `pgtrail parse`, `pgtrail audit
--format jsonl` and `pgtrail summary --format json` report on the sample
(the binary is run once on the sample, see --pgtrail), plus the number of
lines and bytes written.

The whole sample is compiled once into a str.format template whose fields
are the timestamps and pids, so writing a copy is one C-level format call;
copies are written in large chunks. 1 GB takes about 10 s.

`--check FILE` runs pgtrail on a scaled FILE and compares its counts with
FILE.expected.json (exit 1 on any mismatch); `--refresh FILE` rewrites
FILE.expected.json from the current binary's counts on the sample, for when
pgtrail's output on the sample changed on purpose.

Usage:
  benches/scale.py --size 1G --out /work/bench-data/rds-1G.log
  benches/scale.py --size 100M --out /work/bench-data/rds-100M.log
  benches/scale.py --size 1G --gzip --out /work/bench-data/rds-1G.log.gz
  benches/scale.py --check /work/bench-data/rds-1G.log --pgtrail "$CARGO_TARGET_DIR/release/pgtrail"
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUT = os.path.join(REPO, "samples/pg15/rds/postgresql.log")
DEFAULT_PGTRAIL = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"),
                               "release/pgtrail")
PID_LIMIT = 2**31 - 1

# `%t` as PostgreSQL writes it with log_timezone=UTC.
TS_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) UTC")
# The `[%p]:` of the RDS prefix `%t:%r:%u@%d:[%p]:`, right before the
# severity label: the first `:[digits]:LABEL:  ` of a line.
PREFIX_PID_RE = re.compile(r":\[(\d+)\]:(?=[A-Z]+:  )")
# "background worker "…" (PID 3853) exited with exit code 1"
MESSAGE_PID_RE = re.compile(r"\(PID (\d+)\)")


def parse_size(text: str) -> int:
    """'1G', '100M', '512K', '12345' → bytes (binary multiples)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (examples: 1G, 100M, 4096)")
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * mult)


def fmt_ts(epoch: int) -> str:
    t = time.gmtime(epoch)
    return "%04d-%02d-%02d %02d:%02d:%02d" % t[:6]


class Template:
    """The sample as a str.format template.

    Fields 0 … T-1 are the distinct timestamps (without " UTC"), fields
    T … T+P-1 the distinct pids, in order of first appearance.
    """

    def __init__(self, text: str):
        self.lines = text.count("\n")
        ts_index: dict[int, int] = {}
        pid_index: dict[int, int] = {}
        self.ts: list[int] = []  # epoch seconds of each timestamp field
        self.pids: list[int] = []  # original pid of each pid field
        # (start, end, kind, index) of every field, in text order
        slots: list[tuple[int, int, str, int]] = []
        self.prefix_pid_lines = 0

        def ts_slot(m: re.Match[str]) -> None:
            y, mo, d, h, mi, s = (int(g) for g in m.groups())
            epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
            if fmt_ts(epoch) != m.group(0)[:-4]:
                raise SystemExit(f"scale.py: not a valid timestamp: {m.group(0)!r}")
            i = ts_index.setdefault(epoch, len(ts_index))
            if i == len(self.ts):
                self.ts.append(epoch)
            slots.append((m.start(), m.end() - 4, "t", i))  # keep " UTC" literal

        def pid_slot(start: int, end: int, value: int) -> None:
            i = pid_index.setdefault(value, len(pid_index))
            if i == len(self.pids):
                self.pids.append(value)
            slots.append((start, end, "p", i))

        # Positions are absolute offsets in `text` (regex pos/endpos per line).
        pos = 0
        for line in text.splitlines(keepends=True):
            end = pos + len(line)
            for m in TS_RE.finditer(text, pos, end):
                ts_slot(m)
            m = PREFIX_PID_RE.search(text, pos, end)
            # Only a line that starts with `%t` has a prefix (TAB continuations
            # and foreign text have none).
            if m and TS_RE.match(text, pos, end):
                self.prefix_pid_lines += 1
                pid_slot(m.start(1), m.end(1), int(m.group(1)))
                for mm in MESSAGE_PID_RE.finditer(text, m.end(), end):
                    pid_slot(mm.start(1), mm.end(1), int(mm.group(1)))
            pos = end
        if not self.ts or not self.pids:
            raise SystemExit("scale.py: no `%t` timestamps or `[%p]` pids found: is this an RDS-prefix log?")
        slots.sort()
        parts: list[str] = []
        last = 0
        for start, end, kind, i in slots:
            if start < last:
                raise SystemExit("scale.py: overlapping fields (a pid inside a timestamp?)")
            parts.append(text[last:start].replace("{", "{{").replace("}", "}}"))
            parts.append("{%d}" % (i if kind == "t" else len(self.ts) + i))
            last = end
        parts.append(text[last:].replace("{", "{{").replace("}", "}}"))
        self.format = "".join(parts).format
        self.span = max(self.ts) - min(self.ts)

    def copy(self, k: int, step: int, pid_base: int, pid_max: int = 0) -> str:
        """Copy k. With pid_max, pids wrap around into [pid_base, pid_max)
        like a real server's (still distinct within a copy)."""
        shift = k * step
        n = len(self.pids)
        values = [fmt_ts(t + shift) for t in self.ts]
        if pid_max:
            span = pid_max - pid_base
            values.extend(str(pid_base + (k * n + i) % span) for i in range(n))
        else:
            values.extend(str(pid_base + k * n + i) for i in range(n))
        return self.format(*values)


def stream_counts(pgtrail: str, args: list[str], key: str) -> tuple[Counter, str]:
    """Runs pgtrail and counts its JSON Lines output by the string value of
    `key` (the first `"key":"…"` of each line), streaming, so outputs of
    gigabytes cost no memory. Returns (counts, stderr).

    A JSON string cannot contain the raw text `"key":"` (its quotes would be
    escaped), so the first occurrence is the top-level field.
    """
    needle = b'"%s":"' % key.encode()
    counts: Counter = Counter()
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen([pgtrail, *args], stdout=subprocess.PIPE, stderr=err,
                                    bufsize=1 << 20)
        except FileNotFoundError:
            raise SystemExit(f"scale.py: pgtrail binary {pgtrail!r} not found "
                             "(cargo build --release, or give --pgtrail)")
        assert proc.stdout is not None
        missing = 0
        for line in proc.stdout:
            at = line.find(needle)
            if at < 0:
                missing += 1
                continue
            start = at + len(needle)
            counts[line[start:line.index(b'"', start)].decode()] += 1
        code = proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise SystemExit(f"scale.py: {pgtrail} {' '.join(args)} exited {code}:\n{stderr[-2000:]}")
    if missing:
        counts["<no " + key + ">"] += missing
    return counts, stderr


def pgtrail_counts(pgtrail: str, path: str) -> dict:
    """What pgtrail reports on `path`: events by kind (parse), records (parse's
    stats line), sessions by outcome (audit --format jsonl) and the summary's
    totals (summary --format json)."""
    events, stderr = stream_counts(pgtrail, ["parse", path], "event")
    # stats line: "pgtrail: FILE: stderr, …: 191 records, 178 events (…), unrecognised: 0"
    records = [int(m.group(1)) for m in re.finditer(r": (\d+) records, \d+ events", stderr)]
    outcomes, _ = stream_counts(pgtrail, ["audit", "--format", "jsonl", "-q", path], "outcome")
    summary = subprocess.run([pgtrail, "summary", "--format", "json", "-q", path],
                             capture_output=True, text=True)
    if summary.returncode != 0:
        raise SystemExit(f"scale.py: pgtrail summary exited {summary.returncode}:\n{summary.stderr[-2000:]}")
    totals = json.loads(summary.stdout).get("totals", {})
    return {
        "records": sum(records) if records else None,
        "events": sum(events.values()),
        "events_by_kind": dict(sorted(events.items())),
        "sessions": sum(outcomes.values()),
        "sessions_by_outcome": dict(sorted(outcomes.items())),
        "summary_totals": totals,
    }


def grep_count(raw: bytes, needle: bytes = b"connection authorized") -> int:
    """Lines containing `needle`, like `grep -c` / `rg -c`."""
    return sum(1 for line in raw.split(b"\n") if needle in line)


def scale_counts(counts, k: int):
    """Multiplies every integer in a (nested) dict of counts by k."""
    if isinstance(counts, dict):
        return {key: scale_counts(value, k) for key, value in counts.items()}
    if isinstance(counts, int) and not isinstance(counts, bool):
        return counts * k
    return counts


COUNT_KEYS = ("records", "events", "events_by_kind", "sessions", "sessions_by_outcome", "summary_totals")


def diff_counts(want: dict, got: dict, path: str = "") -> list[str]:
    """Human-readable differences between two (nested) count dicts."""
    out = []
    for key in sorted(set(want) | set(got)):
        a, b = want.get(key), got.get(key)
        name = f"{path}.{key}" if path else key
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_counts(a, b, name)
        elif a != b:
            out.append(f"  {name}: expected {a}, got {b}")
    return out


def write_expected(out: str, expected: dict) -> None:
    with open(out + ".expected.json", "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")


def load_expected(path: str) -> dict:
    try:
        with open(path + ".expected.json") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"scale.py: {path}.expected.json missing: regenerate {path} with scale.py")


def check(path: str, pgtrail: str) -> int:
    """Compares pgtrail's counts on a scaled file with FILE.expected.json."""
    expected = load_expected(path)
    if "per_copy" not in expected:
        raise SystemExit(f"scale.py: {path}.expected.json has no counts (made with --no-expected): run --refresh")
    started = time.monotonic()
    got = pgtrail_counts(pgtrail, path)
    want = {k: expected[k] for k in COUNT_KEYS if k in expected}
    problems = diff_counts(want, {k: got[k] for k in want})
    elapsed = time.monotonic() - started
    if not problems:
        print(f"scale.py: counts OK on {path} ({expected['copies']} copies × sample; "
              f"{got['events']:,} events, {got['sessions']:,} sessions, checked in {elapsed:.0f} s)",
              file=sys.stderr)
        return 0
    print(f"scale.py: COUNT MISMATCH on {path}:", *problems, sep="\n", file=sys.stderr)
    # Tell an engine bug on the big file apart from a changed sample result.
    now = pgtrail_counts(pgtrail, expected["sample"])
    sample_diff = diff_counts(expected["per_copy"], now)
    if sample_diff:
        print("scale.py: note: pgtrail's counts on the sample itself changed since the data was generated:",
              *sample_diff,
              f"scale.py: if that change is intended: benches/scale.py --refresh {path} --pgtrail {pgtrail}",
              sep="\n", file=sys.stderr)
    else:
        print(f"scale.py: the sample still gives the counts of expected.json, so the scaled run differs from "
              f"{expected['copies']} × the sample: the engine loses, duplicates or mis-stitches records at scale.",
              file=sys.stderr)
    return 1


def refresh(path: str, pgtrail: str) -> int:
    """Rewrites FILE.expected.json's counts from the current binary's counts on the sample."""
    expected = load_expected(path)
    with open(expected["sample"], "rb") as f:
        raw = f.read()
    if hashlib.sha256(raw if raw.endswith(b"\n") else raw + b"\n").hexdigest() != expected["sample_sha256"]:
        raise SystemExit(f"scale.py: {expected['sample']} changed since {path} was made: regenerate it")
    expected["lines_with_connection_authorized"] = expected["copies"] * grep_count(raw)
    counts = pgtrail_counts(pgtrail, expected["sample"])
    expected["per_copy"] = counts
    expected.update(scale_counts(counts, expected["copies"]))
    expected["pgtrail"] = pgtrail
    write_expected(path, expected)
    print(f"scale.py: refreshed {path}.expected.json", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=DEFAULT_INPUT,
                    help="RDS-prefix stderr sample (default samples/pg15/rds/postgresql.log)")
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"),
                    help="target size of the (uncompressed) output, e.g. 1G, 100M (default 1G); "
                         "copies are whole, so the file is at most one sample larger")
    ap.add_argument("--out", help="output path (default /work/bench-data/rds-<size>.log[.gz])")
    ap.add_argument("--gzip", action="store_true", help="write gzip (level --gzip-level) instead of plain text")
    ap.add_argument("--gzip-level", type=int, default=6, help="gzip level (default 6, like gzip/logrotate)")
    ap.add_argument("--gap", type=int, default=60, help="seconds between the end of one copy and the next (default 60)")
    ap.add_argument("--pid-base", type=int, default=100000, help="first fresh pid (default 100000)")
    ap.add_argument("--pid-max", type=int, default=0,
                    help="let pids wrap around below this value, as on a real server (e.g. 32768 or 4194304); "
                         "default: every pid is unique across the whole file")
    ap.add_argument("--pgtrail", default=DEFAULT_PGTRAIL,
                    help="pgtrail binary for the counts (default $CARGO_TARGET_DIR/release/pgtrail, else target/release/pgtrail)")
    ap.add_argument("--no-expected", action="store_true", help="do not run pgtrail; record lines/bytes only")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", metavar="FILE", help="compare pgtrail's counts on FILE with FILE.expected.json")
    mode.add_argument("--refresh", metavar="FILE", help="rewrite FILE.expected.json's counts from the sample")
    args = ap.parse_args()
    if args.pid_max > PID_LIMIT:
        raise SystemExit("scale.py: --pid-max must be at most 2^31 - 1")
    if args.check:
        return check(args.check, args.pgtrail)
    if args.refresh:
        return refresh(args.refresh, args.pgtrail)

    if args.out is None:
        size = args.size
        label = next((f"{size >> s}{u}" for s, u in ((40, "T"), (30, "G"), (20, "M"), (10, "K"))
                      if size >= 1 << s and size % (1 << s) == 0), str(size))
        args.out = f"/work/bench-data/rds-{label}.log" + (".gz" if args.gzip else "")

    with open(args.input, "rb") as f:
        raw = f.read()
    if not raw.endswith(b"\n"):
        raw += b"\n"
    # latin-1 maps bytes 1:1 to code points, so any byte survives the round trip.
    tpl = Template(raw.decode("latin-1"))
    step = tpl.span + args.gap
    if args.pid_max and args.pid_max - args.pid_base < len(tpl.pids):
        raise SystemExit(f"scale.py: --pid-max leaves fewer than the {len(tpl.pids)} pids a copy needs")

    counts = None if args.no_expected else pgtrail_counts(args.pgtrail, args.input)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # Written under a temporary name and renamed at the end, so an interrupted
    # run never leaves a file that looks complete.
    tmp = args.out + ".partial"
    started = time.monotonic()
    written = 0
    k = 0
    chunk: list[str] = []
    chunk_len = 0
    CHUNK = 16 << 20  # write in 16 MiB pieces
    if args.gzip:
        out = gzip.open(tmp, "wb", compresslevel=args.gzip_level)
    else:
        out = open(tmp, "wb", buffering=0)
    with out:
        while written < args.size:
            if not args.pid_max and args.pid_base + (k + 1) * len(tpl.pids) > PID_LIMIT:
                raise SystemExit(f"scale.py: pids would reach 2^31 after {k} copies; lower --pid-base or --size")
            text = tpl.copy(k, step, args.pid_base, args.pid_max)
            chunk.append(text)
            chunk_len += len(text)
            written += len(text)  # latin-1: one char = one byte
            k += 1
            if chunk_len >= CHUNK:
                out.write("".join(chunk).encode("latin-1"))
                chunk.clear()
                chunk_len = 0
        if chunk:
            out.write("".join(chunk).encode("latin-1"))
    os.replace(tmp, args.out)
    elapsed = time.monotonic() - started
    copies = k

    expected = {
        "file": os.path.abspath(args.out),
        "sample": os.path.abspath(args.input),
        "sample_sha256": hashlib.sha256(raw).hexdigest(),
        "sample_bytes": len(raw),
        "sample_lines": tpl.lines,
        "copies": copies,
        "bytes": written,
        "compressed_bytes": os.path.getsize(args.out) if args.gzip else None,
        "lines": copies * tpl.lines,
        "lines_with_connection_authorized": copies * grep_count(raw),
        "step_seconds": step,
        "first_time": fmt_ts(min(tpl.ts)) + " UTC",
        "last_time": fmt_ts(max(tpl.ts) + (copies - 1) * step) + " UTC",
        "pids_per_copy": len(tpl.pids),
        "pid_range": ([args.pid_base, args.pid_max - 1] if args.pid_max
                      else [args.pid_base, args.pid_base + copies * len(tpl.pids) - 1]),
        "pids_wrap": bool(args.pid_max),
    }
    if counts is not None:
        expected["per_copy"] = counts
        expected.update(scale_counts(counts, copies))
        expected["pgtrail"] = args.pgtrail
    write_expected(args.out, expected)
    print(f"scale.py: wrote {args.out}: {copies} copies, {written:,} bytes, {expected['lines']:,} lines "
          f"({expected['first_time']} … {expected['last_time']}) in {elapsed:.1f} s "
          f"({written / max(elapsed, 1e-9) / 1e6:.0f} MB/s); expected counts in {args.out}.expected.json",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
