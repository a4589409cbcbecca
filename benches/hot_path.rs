//! Criterion micro-benchmarks of pgtrail's hot path, on the real samples.
//!
//! Every benchmark reports `Throughput::Bytes` of the input it hands to the
//! code under test and asserts, on every iteration, the count (and where
//! cheap a checksum) it computed against a value derived independently of
//! that code — line counts, the recording's ground truth, chrono — so a
//! broken parser fails instead of looking fast.
//!
//! | bench | input | bytes counted | asserted |
//! |---|---|---|---|
//! | `prefix/parse_line` | every line of the RDS sample | whole lines | headers = non-TAB lines, pid sum |
//! | `classify/sample_records` | every record message of the sample | messages | matches = ground-truth events |
//! | `classify/mixed_90pct_other` | those + real non-connection messages, ~90 % of records | messages | matches = ground-truth events |
//! | `classify/*_memo` | the same, through a `ClassifyMemo` (fresh each pass, as per chunk) | messages | the same |
//! | `time/parse_pg_timestamp` | every header line (timestamp at its start) | whole lines | count and ms sum = chrono's |
//! | `records/csvlog_decode` | the sample's csvlog repeated to ~1 MB | file | records = copies × 191 |
//! | `records/jsonlog_decode` | the sample's jsonlog repeated to ~1 MB | file | records = copies × 191 |
//! | `pipeline/parse_bytes_stderr` | the RDS stderr sample × 50 (decode + extract) | file | records, events = 50 × sample |
//!
//! Run: `cargo bench --bench hot_path` (a few minutes on 2 cores; pass a
//! filter such as `cargo bench --bench hot_path -- classify` for one group).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use pgtrail::message::{Catalog, ClassifyMemo};
use pgtrail::name::Name;
use pgtrail::pipeline::{self, Detected, ParseOptions};
use pgtrail::prefix::{LineMatch, Prefix};
use pgtrail::record::{Item, Label, csvlog, jsonlog, stderr};
use pgtrail::time::parse_pg_timestamp;

const RDS_PREFIX: &str = "%t:%r:%u@%d:[%p]:";
const SAMPLE_DIR: &str = "samples/pg15/rds";
/// Records in the sample (a record with its DETAIL/continuation lines counts
/// once). The same workload gives 191 in stderr, csvlog and jsonlog form; a
/// decoder that finds a different number is broken.
const SAMPLE_RECORDS: u64 = 191;
/// Target size of the repeated csv/json inputs.
const RECORDS_INPUT_BYTES: usize = 1 << 20;
/// Copies of the stderr sample for the whole-decode benchmark.
const PIPELINE_COPIES: usize = 50;

fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(SAMPLE_DIR)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Physical lines without their newline.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    text.split(|&b| b == b'\n').collect()
}

/// Events the recording script says the sample contains: the sum of the
/// `events` objects of `ground-truth.jsonl` (written from what the script
/// did, not parsed from the log).
fn ground_truth_events() -> u64 {
    let text = String::from_utf8(sample("ground-truth.jsonl")).unwrap();
    let total = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["events"]
                .as_object()
                .expect("ground truth line without events")
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert!(total > 0);
    total
}

/// `buf` repeated until it is at least `size` bytes long; returns the copies.
fn repeat_to(buf: &[u8], size: usize) -> (Vec<u8>, u64) {
    let copies = size.div_ceil(buf.len()).max(1);
    (buf.repeat(copies), copies as u64)
}

/// Short runs: the whole `cargo bench` stays within a few minutes on 2 cores.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// (a) The prefix matcher on every physical line of the RDS sample.
fn bench_prefix(c: &mut Criterion) {
    let log = sample("postgresql.log");
    let lines = lines(&log);
    let prefix = Prefix::compile(RDS_PREFIX).unwrap();
    // Independent expectations: in this sample every line that does not
    // start with a TAB is a record header, and its pid is the first `[…]:`
    // holding only digits (`[local]`, `[unknown]` come before it).
    let headers: Vec<&[u8]> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with(b"\t"))
        .collect();
    let want_count = headers.len() as u64;
    let want_pid_sum: u64 = headers
        .iter()
        .map(|l| {
            let text = std::str::from_utf8(l).unwrap();
            text.split('[')
                .filter_map(|part| part.split_once("]:"))
                .find_map(|(inside, _)| inside.parse::<u64>().ok())
                .expect("a header line without [pid]:")
        })
        .sum();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();

    let mut group = c.benchmark_group("prefix");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse_line", |b| {
        b.iter(|| {
            let (mut count, mut pid_sum) = (0u64, 0u64);
            for line in &lines {
                if let LineMatch::Header { fields, .. } = prefix.parse_line(black_box(line)) {
                    count += 1;
                    pid_sum += u64::from(fields.pid.unwrap_or(0));
                }
            }
            assert_eq!((count, pid_sum), (want_count, want_pid_sum));
            count
        })
    });
    group.finish();
}

/// Real PostgreSQL messages that are not about connections: what dominates a
/// production log with statement logging, autovacuum and checkpoints on. The
/// bench asserts that none of them classifies as a connection event.
const OTHER_MESSAGES: &[(Label, &str)] = &[
    (
        Label::Log,
        "duration: 0.412 ms  statement: SELECT id, name, balance FROM accounts WHERE id = 42",
    ),
    (
        Label::Log,
        "statement: UPDATE accounts SET balance = balance - 100.00 WHERE id = 7",
    ),
    (
        Label::Log,
        "duration: 12.874 ms  execute <unnamed>: SELECT o.id, o.total FROM orders o WHERE o.customer_id = $1 ORDER BY o.created_at DESC LIMIT 50",
    ),
    (
        Label::Log,
        "duration: 1.031 ms  bind <unnamed>: INSERT INTO events (kind, payload) VALUES ($1, $2)",
    ),
    (Label::Log, "statement: BEGIN"),
    (Label::Log, "statement: COMMIT"),
    (Label::Log, "checkpoint starting: time"),
    (
        Label::Log,
        "checkpoint complete: wrote 1834 buffers (11.2%); 0 WAL file(s) added, 0 removed, 2 recycled; write=179.870 s, sync=0.012 s, total=179.912 s; sync files=41, longest=0.004 s, average=0.001 s; distance=30241 kB, estimate=30241 kB",
    ),
    (
        Label::Log,
        "automatic vacuum of table \"appdb.public.orders\": index scans: 1\n\tpages: 0 removed, 4426 remain, 4426 scanned (100.00% of total)\n\ttuples: 1203 removed, 100000 remain, 0 are dead but not yet removable",
    ),
    (
        Label::Log,
        "automatic analyze of table \"appdb.public.orders\"\n\tavg read rate: 0.000 MB/s, avg write rate: 0.000 MB/s\n\tsystem usage: CPU: user: 0.03 s, system: 0.00 s, elapsed: 0.05 s",
    ),
    (
        Label::Log,
        "temporary file: path \"base/pgsql_tmp/pgsql_tmp12345.0\", size 10485760",
    ),
    (
        Label::Log,
        "process 12345 still waiting for ShareLock on transaction 987654 after 1000.123 ms",
    ),
    (
        Label::Error,
        "duplicate key value violates unique constraint \"accounts_pkey\"",
    ),
    (
        Label::Error,
        "relation \"missing_table\" does not exist at character 15",
    ),
    (Label::Error, "canceling statement due to statement timeout"),
    (Label::Warning, "there is no transaction in progress"),
];

/// Record messages of the sample, as the stderr decoder assembles them.
fn sample_records(log: &[u8], prefix: &Prefix) -> Vec<(Label, String)> {
    let mut records = Vec::new();
    stderr::decode(
        log,
        prefix,
        0,
        &stderr::StderrOptions::default(),
        &mut |item| {
            if let Item::Record(r) = item {
                records.push((r.label, r.message.into_owned()));
            }
        },
    );
    records
}

/// (b) Message classification: the sample's records, and a realistic mix.
fn bench_classify(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let log = sample("postgresql.log");
    let prefix = Prefix::compile(RDS_PREFIX).unwrap();
    let records = sample_records(&log, &prefix);
    assert_eq!(records.len() as u64, SAMPLE_RECORDS, "stderr decoder");
    // Every event of the ground truth comes from exactly one record.
    let want = ground_truth_events();

    // The mix: the sample's records, each followed by nine non-connection
    // messages, so ~90 % of what is classified is not about connections.
    let mut mixed: Vec<(Label, String)> = Vec::new();
    let mut others = OTHER_MESSAGES.iter().cycle();
    for record in &records {
        mixed.push(record.clone());
        for _ in 0..9 {
            let (label, text) = others.next().unwrap();
            mixed.push((*label, (*text).to_string()));
        }
    }

    let mut group = c.benchmark_group("classify");
    for (name, input) in [("sample_records", &records), ("mixed_90pct_other", &mixed)] {
        let bytes: usize = input.iter().map(|(_, m)| m.len()).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut matched = 0u64;
                for (label, message) in input {
                    if catalog.classify(*label, black_box(message)).is_some() {
                        matched += 1;
                    }
                }
                assert_eq!(matched, want, "{name}: connection messages matched");
                matched
            })
        });
        // As the extractor classifies: through a memo of the chunk's texts
        // (a fresh one per pass, as per chunk).
        group.bench_function(format!("{name}_memo"), |b| {
            b.iter(|| {
                let mut memo = ClassifyMemo::new();
                let mut matched = 0u64;
                for (label, message) in input {
                    if catalog
                        .classify_memo(&mut memo, *label, black_box(message))
                        .is_some()
                    {
                        matched += 1;
                    }
                }
                assert_eq!(matched, want, "{name}_memo: connection messages matched");
                matched
            })
        });
    }
    group.finish();
}

/// (c) `%t` timestamps: every header line, with the timestamp at its start.
fn bench_time(c: &mut Criterion) {
    let log = sample("postgresql.log");
    let headers: Vec<&[u8]> = lines(&log)
        .into_iter()
        .filter(|l| !l.starts_with(b"\t"))
        .collect();
    // The oracle: chrono on the same text ("2026-11-28 16:22:42 UTC").
    let want_sum: i64 = headers
        .iter()
        .map(|l| {
            let text = std::str::from_utf8(&l[..19]).unwrap();
            assert_eq!(&l[19..23], b" UTC");
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_millis()
        })
        .sum();
    let want_count = headers.len() as u64;
    let bytes: usize = headers.iter().map(|l| l.len() + 1).sum();

    let mut group = c.benchmark_group("time");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse_pg_timestamp", |b| {
        b.iter(|| {
            let (mut count, mut sum) = (0u64, 0i64);
            for line in &headers {
                if let Some((ms, used)) = parse_pg_timestamp(black_box(line)) {
                    debug_assert_eq!(used, 23);
                    count += 1;
                    sum += ms;
                }
            }
            assert_eq!((count, sum), (want_count, want_sum));
            count
        })
    });
    group.finish();
}

/// (d, e) csvlog and jsonlog decoding of the same workload, ~1 MB each.
fn bench_records(c: &mut Criterion) {
    let mut group = c.benchmark_group("records");
    type Decode = for<'a> fn(&'a [u8], u64, &mut dyn FnMut(Item<'a>));
    let decoders: [(&str, &str, Decode); 2] = [
        ("csvlog_decode", "postgresql.csv", csvlog::decode),
        ("jsonlog_decode", "postgresql.json", jsonlog::decode),
    ];
    for (name, file, decode) in decoders {
        let (input, copies) = repeat_to(&sample(file), RECORDS_INPUT_BYTES);
        let want = copies * SAMPLE_RECORDS;
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let (mut records, mut other) = (0u64, 0u64);
                decode(black_box(&input), 0, &mut |item| match item {
                    Item::Record(r) => {
                        records += 1;
                        black_box(&r);
                    }
                    _ => other += 1,
                });
                assert_eq!((records, other), (want, 0), "{name}: records, unparsed");
                records
            })
        });
    }
    group.finish();
}

/// (f) The whole stderr path of one input: decode + extract to events.
fn bench_pipeline(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let one = sample("postgresql.log");
    let (input, copies) = repeat_to(&one, one.len() * PIPELINE_COPIES);
    let options = ParseOptions::default();
    let detected = pipeline::detect(&input, &options, catalog).unwrap();
    assert!(
        matches!(&detected, Detected::Stderr { prefix, .. } if prefix.as_str() == RDS_PREFIX),
        "detected {detected}"
    );
    let want = (copies * SAMPLE_RECORDS, copies * ground_truth_events());
    let server = Name::new("bench");
    let name = Name::new("bench.log");

    let mut group = c.benchmark_group("pipeline");
    // ~25 ms per iteration: fewer, longer samples.
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("parse_bytes_stderr", |b| {
        b.iter(|| {
            let parsed = pipeline::parse_bytes(
                black_box(&input),
                &detected,
                &options,
                catalog,
                server,
                name,
            );
            let got = (parsed.stats.records, parsed.events.len() as u64);
            assert_eq!(got, want, "records, events");
            assert_eq!(parsed.stats.unparsed_total(), 0);
            parsed.events.len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_prefix, bench_classify, bench_time, bench_records, bench_pipeline
}
criterion_main!(benches);
