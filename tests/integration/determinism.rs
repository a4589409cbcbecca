//! The parallel engine gives byte-identical output for every thread count
//! and chunk size, on every sample (every format, the forging attacks
//! included), for `parse` and `audit`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::repo;

fn logs() -> Vec<PathBuf> {
    let mut logs = Vec::new();
    let mut stack = vec![repo().join("samples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with("postgresql") || dir.ends_with("prefixes") {
                logs.push(path);
            }
        }
    }
    logs.sort();
    logs
}

fn run(args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run pgtrail");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn output_is_identical_for_any_threads_and_chunk_size() {
    let logs = logs();
    assert!(logs.len() > 30, "{}", logs.len());
    // One run over all samples at once (many inputs, one enricher), plus
    // each file alone with the smallest chunks.
    let all: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
    for command in ["parse", "audit"] {
        let base = |threads: &str, chunk: &str, inputs: &[String]| {
            let mut args = vec![command, "-q", "--threads", threads, "--chunk-bytes", chunk];
            if command == "audit" {
                args.extend(["--format", "jsonl"]);
            }
            args.extend(inputs.iter().map(String::as_str));
            run(&args)
        };
        let reference = base("1", "1048576", &all);
        assert!(!reference.is_empty());
        for (threads, chunk) in [("2", "1048576"), ("2", "4096"), ("4", "512"), ("3", "1")] {
            let out = base(threads, chunk, &all);
            assert!(
                out == reference,
                "{command} --threads {threads} --chunk-bytes {chunk} differs from one thread"
            );
        }
    }
}

/// A larger input made of many copies of a real sample, so that chunks
/// really run in parallel: same output with 1 and 2 threads.
#[test]
fn a_large_input_is_identical_with_one_and_two_threads() {
    let sample = std::fs::read(repo().join("samples/pg15/rds/postgresql.log")).expect("sample");
    let dir = std::env::temp_dir().join(format!("pgtrail-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("big.log");
    std::fs::write(&path, sample.repeat(300)).expect("write");
    let p = path.display().to_string();
    for command in [
        vec!["parse", "-q"],
        vec!["audit", "-q", "--format", "jsonl"],
    ] {
        let with = |threads: &str| {
            let mut args = command.clone();
            args.extend(["--threads", threads, "--chunk-bytes", "65536", p.as_str()]);
            run(&args)
        };
        let one = with("1");
        assert!(one == with("2"), "{command:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whole directories as inputs: every sample, the CloudWatch fixtures (read
/// whole, their streams run before the next input) and files that are not
/// logs (skipped). The next input is decoded while the current one ends, so
/// this checks that events, stats lines and skipped-file notes keep their
/// order for any thread count and chunk size.
#[test]
fn directories_give_identical_output_and_notes_for_any_threads() {
    let run_all = |threads: &str, chunk: &str| {
        run_chunked(
            &["audit", "--format", "jsonl"],
            threads,
            chunk,
            &["samples", "tests/cloudwatch"],
        )
    };
    let reference = run_all("1", "1048576");
    let notes = String::from_utf8_lossy(&reference.2).into_owned();
    assert!(notes.contains("CloudWatch data"), "{notes}");
    assert!(notes.contains("files skipped"), "{notes}");
    assert!(reference.1.len() > 100_000, "{}", reference.1.len());
    for (threads, chunk) in [("2", "524288"), ("2", "300"), ("3", "4096")] {
        let run = format!("--threads {threads} --chunk-bytes {chunk}");
        assert_same_run(&run_all(threads, chunk), &reference, &run);
    }
}

/// Exit code, output and notes of a run.
type Run = (Option<i32>, Vec<u8>, Vec<u8>);

/// `pgtrail COMMAND… --threads THREADS --chunk-bytes CHUNK INPUTS…`, run in
/// the repository.
fn run_chunked<S: AsRef<std::ffi::OsStr>>(
    command: &[&str],
    threads: &str,
    chunk: &str,
    inputs: &[S],
) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_pgtrail"))
        .args(command)
        .args(["--threads", threads, "--chunk-bytes", chunk])
        .args(inputs)
        .current_dir(repo())
        .output()
        .expect("run pgtrail");
    (output.status.code(), output.stdout, output.stderr)
}

/// `out` has the exit code, output and notes of `reference`.
fn assert_same_run(out: &Run, reference: &Run, run: &str) {
    assert!(out.0 == reference.0, "exit code, {run}");
    assert!(out.1 == reference.1, "output, {run}");
    assert!(out.2 == reference.2, "notes, {run}");
}

/// Damaged copies of every sample (found by fuzzing: a stray quote in a
/// csvlog row, a DETAIL line moved records away from its record): bytes
/// replaced by quotes, separators, line ends and label text, lines
/// duplicated, dropped, cut short or moved, from a fixed seed. The output,
/// notes and exit code are the same for any thread count and chunk size.
#[test]
fn damaged_samples_give_identical_output_for_any_chunk_size() {
    let dir = std::env::temp_dir().join(format!("pgtrail-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut inputs = Vec::new();
    for (i, log) in logs().iter().enumerate() {
        let Ok(bytes) = std::fs::read(log) else {
            continue;
        };
        let ext = log.extension().and_then(|e| e.to_str()).unwrap_or("log");
        for copy in 0..3 {
            let path = dir.join(format!("damaged-{i}-{copy}.{ext}"));
            std::fs::write(&path, damage(&bytes, &mut rng)).expect("write");
            inputs.push(path.display().to_string());
        }
    }
    assert!(inputs.len() > 90, "{}", inputs.len());
    for command in [vec!["parse"], vec!["audit", "--format", "jsonl"]] {
        let run_all = |threads: &str, chunk: &str| run_chunked(&command, threads, chunk, &inputs);
        let reference = run_all("1", "1048576");
        assert!(reference.0.is_some(), "{command:?}: killed by a signal");
        assert!(!reference.1.is_empty(), "{command:?}");
        for (threads, chunk) in [("2", "64"), ("2", "300"), ("3", "4096")] {
            let run = format!("{command:?} --threads {threads} --chunk-bytes {chunk}");
            assert_same_run(&run_all(threads, chunk), &reference, &run);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A flood of forged names (a broken prefix line every few hundred bytes,
/// which any client can cause), made of the forging sample's real lines
/// with a fresh pid for each attempt: the engine cuts it between the
/// forged spans, and the output, notes and exit code are the same for any
/// thread count and chunk size.
#[test]
fn a_flood_of_forged_names_is_identical_for_any_chunk_size() {
    let log = std::fs::read_to_string(repo().join("samples/forging/pg15-rds/postgresql.log"))
        .expect("the forging sample");
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with("):evil\""))
        .expect("the sample's broken line");
    let block = lines[at - 1..at + 3].join("\n") + "\n";
    assert!(block.contains("[4493]"), "{block}");
    let flood: String = (0..2000)
        .map(|i| block.replace("4493", &(100_000 + i).to_string()))
        .collect();
    let dir = std::env::temp_dir().join(format!("pgtrail-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("flood.log");
    std::fs::write(&path, flood).expect("write");
    for command in [vec!["parse"], vec!["audit", "--format", "jsonl"]] {
        let run_all = |threads: &str, chunk: &str| run_chunked(&command, threads, chunk, &[&path]);
        let reference = run_all("1", "1048576");
        let notes = String::from_utf8_lossy(&reference.2).into_owned();
        assert!(notes.contains("suspect 2000"), "{command:?}: {notes}");
        for (threads, chunk) in [("2", "65536"), ("2", "4096"), ("3", "300")] {
            let run = format!("{command:?} --threads {threads} --chunk-bytes {chunk}");
            assert_same_run(&run_all(threads, chunk), &reference, &run);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of `bytes` with one to eight pieces of damage.
fn damage(bytes: &[u8], rng: &mut XorShift) -> Vec<u8> {
    const PIECES: [&[u8]; 14] = [
        b"\"",
        b",",
        b"\t",
        b"\n",
        b"\r",
        b"\0",
        b"\xff",
        b"\\",
        b"[",
        b"]",
        b":",
        b"@",
        b"LOG:  ",
        b"DETAIL:  ",
    ];
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..1 + rng.below(8) {
        let i = rng.below(lines.len());
        match rng.below(5) {
            0 | 1 if !lines[i].is_empty() => {
                let at = rng.below(lines[i].len());
                let end = (at + rng.below(3)).min(lines[i].len());
                let piece = PIECES[rng.below(PIECES.len())];
                lines[i].splice(at..end, piece.iter().copied());
            }
            2 => {
                let copy = lines[i].clone();
                lines.insert(rng.below(lines.len()), copy);
            }
            3 if !lines[i].is_empty() => {
                let keep = rng.below(lines[i].len());
                lines[i].truncate(keep);
            }
            _ => {
                let line = lines.remove(i);
                lines.insert(rng.below(lines.len() + 1), line);
            }
        }
    }
    lines.join(&b'\n')
}

/// A small seeded generator: the damage is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}
