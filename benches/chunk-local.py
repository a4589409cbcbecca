#!/usr/bin/env python3
"""Share of sessions whose evidence lies in one chunk (docs/engine-next.md).

Usage: benches/chunk-local.py LOG SESSIONS.jsonl [CHUNK_BYTES]
  SESSIONS.jsonl: `pgtrail audit --format jsonl LOG` output.
Chunk edges are approximated by fixed offsets (the engine cuts at the
record boundary after each); a session is local when every line of its
`evidence` falls in one chunk. Prints the count, the share and the spans
in lines.
"""
import json
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    log, sessions = sys.argv[1], sys.argv[2]
    chunk = int(sys.argv[3]) if len(sys.argv) == 4 else 512 * 1024
    starts = [0]  # byte offset of each line, 1-based through starts[line - 1]
    with open(log, "rb") as f:
        pos = 0
        for line in f:
            pos += len(line)
            starts.append(pos)
    local = total = 0
    spans = []
    with open(sessions) as f:
        for row in f:
            lines = [int(e.rsplit(":", 1)[1].split("#")[0]) for e in json.loads(row)["evidence"]]
            if not lines:
                continue
            total += 1
            local += len({starts[n - 1] // chunk for n in lines}) == 1
            spans.append(max(lines) - min(lines))
    if not total:
        sys.exit("no sessions with evidence")
    spans.sort()
    print(
        f"{log}: {total} sessions, chunk-local {local} ({100 * local / total:.2f} %), "
        f"span in lines: median {spans[len(spans) // 2]}, p99 {spans[int(len(spans) * 0.99)]}, "
        f"max {spans[-1]}"
    )


if __name__ == "__main__":
    main()
