#!/usr/bin/env python3
"""benches/fuzz.py PGTRAIL [MUTANTS] [SEED] — damages the real samples at
random and checks that pgtrail neither panics nor depends on its thread
count or chunk size: for each damaged copy, `audit --format jsonl`,
`summary --format json` and `parse` run with one thread and with two
threads and tiny chunks (64, 300 or 4096 bytes); exit code and output must
be the same. Prints one line per problem (the damaged copy is kept in
$TMPDIR) and a final count; exit 1 if any.

Damage: bytes replaced by quotes, separators, line ends, NUL, invalid
UTF-8 or label text; lines duplicated, dropped, cut short or moved. It
found the two framing bugs fixed in session 16 (a csvlog row damaged by a
stray quote, a DETAIL line moved records away from its record);
tests/integration/determinism.rs runs a fixed-seed version of it in CI.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

PIECES = [b'"', b',', b'{', b'}', b'\t', b'\n', b'\x00', b'\xff', b'\\', b':', b'@', b'[', b']',
          b'(', b')', b'0', b'9', b' ', b'\r', b'\xc3', b'LOG:  ', b'FATAL:  ', b'DETAIL:  ',
          b'\n\t', b'""', b'\\u0000', b'\\"']


def samples(root):
    out = []
    for dirpath, _, names in os.walk(os.path.join(root, 'samples')):
        if os.sep + 'iam' in dirpath:
            continue
        for name in names:
            if name.endswith(('.log', '.csv', '.json')) and not name.startswith('ground-truth'):
                out.append(os.path.join(dirpath, name))
    return sorted(out)


def damage(data, rng):
    lines = data.split(b'\n')
    for _ in range(rng.randint(1, 12)):
        op, i = rng.random(), rng.randrange(len(lines))
        if op < 0.5 and lines[i]:
            b = bytearray(lines[i])
            at = rng.randrange(len(b))
            b[at:at + rng.randint(0, 3)] = rng.choice(PIECES)
            lines[i] = bytes(b)
        elif op < 0.65:
            lines.insert(rng.randrange(len(lines)), lines[i])
        elif op < 0.75 and len(lines) > 1:
            del lines[i]
        elif op < 0.85 and lines[i]:
            lines[i] = lines[i][:rng.randrange(len(lines[i]))]
        else:
            k = rng.randrange(len(lines))
            lines[i], lines[k] = lines[k], lines[i]
    return b'\n'.join(lines)


def main():
    binary = sys.argv[1]
    mutants = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = samples(root)
    work = tempfile.mkdtemp(prefix='pgtrail-fuzz-')
    problems = 0
    for n in range(mutants):
        source = rng.choice(files)
        ext = os.path.splitext(source)[1]
        path = os.path.join(work, f'damaged{ext}')
        with open(source, 'rb') as f:
            data = damage(f.read(), rng)
        with open(path, 'wb') as f:
            f.write(data)
        for command in (['audit', '--format', 'jsonl'], ['summary', '--format', 'json'], ['parse']):
            results = []
            for extra in (['--threads', '1'],
                          ['--threads', '2', '--chunk-bytes', str(rng.choice([64, 300, 4096]))]):
                p = subprocess.run([binary] + command + extra + [path], capture_output=True, timeout=120)
                if p.returncode < 0 or p.returncode == 101 or b'panicked' in p.stderr:
                    problems += 1
                    print(f'PANIC {source} {command} {extra}: {p.stderr[-300:]!r}', flush=True)
                results.append((p.returncode, hashlib.sha256(p.stdout).hexdigest()))
            if results[0] != results[1]:
                problems += 1
                kept = os.path.join(work, f'differs-{n}{ext}')
                with open(kept, 'wb') as f:
                    f.write(data)
                print(f'DIFFERS {source} {command}: {kept}', flush=True)
    if not problems:
        shutil.rmtree(work, ignore_errors=True)
    print(f'{mutants} damaged copies, seed {seed}: {problems} problems')
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
