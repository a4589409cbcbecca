//! The floor: the least work an `audit` of an RDS-prefix log could cost.
//!
//! A measurement, not a tool. It answers one question for issue 4: how fast
//! can *any* program turn the benchmark log into one JSON line per session
//! on this machine, if it drops everything pgtrail does beyond that? It reads
//! the file in 4 MiB blocks, splits lines with memchr, reads the RDS prefix
//! (`%t:%r:%u@%d:[%p]:`) by position with no validation, recognises the
//! handful of connection messages by their first bytes, keeps one entry per
//! open pid, and writes a session line (times, client, user, database,
//! application, method, outcome and the evidence line numbers, strings
//! escaped) when the session ends. Each thread takes one contiguous part of
//! the file, and sessions that cross a part's edge are dropped.
//!
//! What it does not do, on purpose: detect forged or ambiguous lines, handle
//! continuation lines, other prefixes, pid reuse, sweeps, bounds, ordering,
//! determinism across thread counts, TLS, CloudWatch, filters, or errors.
//! Its output is not pgtrail's and must never be used as evidence.
//!
//! With `--count` it writes no JSON and counts sessions by user and outcome
//! instead (the floor of `summary`), printing the counts at the end.
//!
//! ```text
//! cargo run --release --example floor -- [--threads N] [--count] FILE > /dev/null
//! ```
//! It prints, on stderr, the lines, the sessions written and the bytes of
//! JSON, so two runs can be checked against each other and against
//! `pgtrail audit`'s count.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

const BLOCK: usize = 4 << 20;

/// One open session: owned copies of what the end line does not repeat.
#[derive(Default)]
struct Open {
    start: i64,
    client: Vec<u8>,
    user: Vec<u8>,
    database: Vec<u8>,
    application: Vec<u8>,
    method: Vec<u8>,
    identity: Vec<u8>,
    hba_line: Vec<u8>,
    ssl: Vec<u8>,
    evidence: Vec<u64>,
}

struct Totals {
    lines: u64,
    sessions: u64,
    json_bytes: u64,
    /// `--count`: sessions by user and outcome (success, failure,
    /// abandoned, incomplete).
    by_user: HashMap<Vec<u8>, [u64; 4], foldhash::fast::RandomState>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut threads = 1usize;
    let mut path = None;
    let mut count = false;
    while let Some(a) = args.next() {
        if a == "--count" {
            count = true;
        } else if a == "--threads" {
            threads = args.next().and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
        } else {
            path = Some(a);
        }
    }
    let Some(path) = path else {
        eprintln!("usage: floor [--threads N] [--count] FILE");
        std::process::exit(2);
    };
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) => {
            eprintln!("floor: {path}: {e}");
            std::process::exit(2);
        }
    };
    let parts: Vec<(u64, u64)> = (0..threads as u64)
        .map(|i| (len * i / threads as u64, len * (i + 1) / threads as u64))
        .collect();
    let totals: Vec<std::io::Result<Totals>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|&(from, to)| {
                let path = &path;
                s.spawn(move || run_part(path, from, to, count))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("floor thread"))
            .collect()
    });
    let (mut lines, mut sessions, mut bytes) = (0, 0, 0);
    let mut by_user: HashMap<Vec<u8>, [u64; 4]> = HashMap::new();
    for t in totals {
        match t {
            Ok(t) => {
                lines += t.lines;
                sessions += t.sessions;
                bytes += t.json_bytes;
                for (user, counts) in t.by_user {
                    let sum = by_user.entry(user).or_default();
                    for (s, c) in sum.iter_mut().zip(counts) {
                        *s += c;
                    }
                }
            }
            Err(e) => {
                eprintln!("floor: {path}: {e}");
                std::process::exit(1);
            }
        }
    }
    if count {
        let mut users: Vec<_> = by_user.into_iter().collect();
        users.sort();
        let mut out = std::io::stdout().lock();
        for (user, [success, failure, abandoned, incomplete]) in users {
            let user = String::from_utf8_lossy(&user);
            let line = format!(
                "{user:?}: {success} success, {failure} failure, {abandoned} abandoned, {incomplete} incomplete\n"
            );
            if out.write_all(line.as_bytes()).is_err() {
                std::process::exit(1);
            }
        }
    }
    eprintln!("floor: {lines} lines, {sessions} sessions, {bytes} bytes of JSON");
}

/// Reads the lines that start in `[from, to)` (a line starts in the part if
/// the byte before it is a newline inside it, or it starts the file).
fn run_part(path: &str, from: u64, to: u64, count: bool) -> std::io::Result<Totals> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; BLOCK];
    let mut filled = 0usize;
    let mut pos_in_file = from; // file offset of buf[0]
    let mut skip_first = from != 0;
    let mut state = Part {
        count,
        ..Part::default()
    };
    let stdout = std::io::stdout();
    loop {
        let n = file.read(&mut buf[filled..])?;
        let eof = n == 0;
        filled += n;
        let mut start = 0usize;
        if skip_first {
            // The partial line belongs to the previous part.
            match memchr::memchr(b'\n', &buf[..filled]) {
                Some(nl) => {
                    start = nl + 1;
                    skip_first = false;
                }
                None if eof => break,
                None => {
                    filled = 0;
                    pos_in_file += n as u64;
                    continue;
                }
            }
        }
        loop {
            if pos_in_file + start as u64 >= to {
                state.finish(&stdout)?;
                return Ok(state.totals);
            }
            match memchr::memchr(b'\n', &buf[start..filled]) {
                Some(nl) => {
                    state.line(&buf[start..start + nl]);
                    start += nl + 1;
                }
                None if eof => {
                    if start < filled {
                        state.line(&buf[start..filled]);
                    }
                    state.finish(&stdout)?;
                    return Ok(state.totals);
                }
                None => break,
            }
        }
        buf.copy_within(start..filled, 0);
        pos_in_file += start as u64;
        filled -= start;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    state.finish(&stdout)?;
    Ok(state.totals)
}

struct Part {
    open: HashMap<u32, Open, foldhash::fast::RandomState>,
    totals: Totals,
    out: Vec<u8>,
    second: [u8; 19],
    second_epoch: i64,
    /// Entries of ended sessions, kept to reuse their buffers.
    pool: Vec<Open>,
    finders: Finders,
    /// `--count`: tally instead of writing JSON.
    count: bool,
    /// The last second formatted by `iso`, and its text.
    iso_second: i64,
    iso_text: [u8; 19],
    latest: i64,
}

/// The substring searchers, built once.
struct Finders {
    pid_open: memchr::memmem::Finder<'static>,
    application: memchr::memmem::Finder<'static>,
    ssl: memchr::memmem::Finder<'static>,
    identity: memchr::memmem::Finder<'static>,
    method: memchr::memmem::Finder<'static>,
    hba: memchr::memmem::Finder<'static>,
}

/// Unauthorised attempts idle this long (log time) are written and dropped,
/// as pgtrail's sweep does, so the table holds open sessions only.
const ABANDON_AFTER_MS: i64 = 10 * 60 * 1000;
const SWEEP_EVERY: u64 = 65_536;
/// At most this many open sessions are kept (pgtrail's `MAX_OPEN_SESSIONS`).
const MAX_OPEN: usize = 10_000;

impl Default for Part {
    fn default() -> Self {
        Part {
            open: HashMap::default(),
            totals: Totals {
                lines: 0,
                sessions: 0,
                json_bytes: 0,
                by_user: HashMap::default(),
            },
            count: false,
            iso_second: i64::MIN,
            iso_text: *b"0000-00-00T00:00:00",
            out: Vec::with_capacity(1 << 20),
            second: [0; 19],
            second_epoch: 0,
            pool: Vec::new(),
            finders: Finders {
                pid_open: memchr::memmem::Finder::new(b":["),
                application: memchr::memmem::Finder::new(b"application_name="),
                ssl: memchr::memmem::Finder::new(b" SSL enabled ("),
                identity: memchr::memmem::Finder::new(b"identity=\""),
                method: memchr::memmem::Finder::new(b"method="),
                hba: memchr::memmem::Finder::new(b" ("),
            },
            latest: i64::MIN,
        }
    }
}

fn find(hay: &[u8], from: usize, byte: u8) -> Option<usize> {
    memchr::memchr(byte, hay.get(from..)?).map(|i| from + i)
}

impl Part {
    /// Writes the sessions still open at the end of the part.
    fn finish(&mut self, stdout: &std::io::Stdout) -> std::io::Result<()> {
        let mut open: Vec<(u32, Open)> = self.open.drain().collect();
        open.sort_unstable_by_key(|(pid, s)| (s.start, *pid));
        for (pid, s) in open {
            self.write_unended(pid, s, b"incomplete", b"end of input");
        }
        self.flush(stdout)
    }

    fn flush(&mut self, stdout: &std::io::Stdout) -> std::io::Result<()> {
        self.totals.json_bytes += self.out.len() as u64;
        stdout.lock().write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn line(&mut self, line: &[u8]) {
        self.totals.lines += 1;
        let n = self.totals.lines;
        let _ = self.try_line(line, n);
        if self.out.len() > 1 << 20 {
            let _ = self.flush(&std::io::stdout());
        }
    }

    fn epoch(&mut self, ts: &[u8]) -> Option<i64> {
        if ts == self.second {
            return Some(self.second_epoch);
        }
        let d = |a: usize, b: usize| -> Option<i64> {
            let mut v = 0i64;
            for &c in ts.get(a..b)? {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, m, day) = (d(0, 4)?, d(5, 7)?, d(8, 10)?);
        let (hh, mm, ss) = (d(11, 13)?, d(14, 16)?, d(17, 19)?);
        // Days from civil (Howard Hinnant).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let epoch = (days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000;
        self.second.copy_from_slice(ts.get(..19)?);
        self.second_epoch = epoch;
        Some(epoch)
    }

    fn try_line(&mut self, line: &[u8], n: u64) -> Option<()> {
        // %t = "YYYY-MM-DD HH:MM:SS UTC", then ':'.
        let ts = line.get(..19)?;
        let time = self.epoch(ts)?;
        self.latest = self.latest.max(time);
        if n.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
        let mut p = find(line, 19, b':')? + 1;
        // %r = "host(port)" or empty, then ':'.
        // An IPv6 client starts with a colon too ("::1(5432)").
        let client = if line.get(p) == Some(&b':') && line.get(p + 1) != Some(&b':') {
            &line[p..p]
        } else {
            let end = if line.get(p) == Some(&b'[') {
                b']'
            } else {
                b')'
            };
            let close = find(line, p, end)?;
            let c = &line[p..=close];
            p = close + 1;
            c
        };
        p += 1;
        // %u@%d, then ":[" %p "]:".
        let at = find(line, p, b'@')?;
        let user = &line[p..at];
        let bracket = at + self.finders.pid_open.find(&line[at..])? + 1;
        let database = &line[at + 1..bracket - 1];
        let close = find(line, bracket, b']')?;
        let mut pid = 0u32;
        for &c in &line[bracket + 1..close] {
            pid = pid
                .wrapping_mul(10)
                .wrapping_add(u32::from(c.wrapping_sub(b'0')));
        }
        let label_end = find(line, close + 2, b':')?;
        let label = &line[close + 2..label_end];
        let msg = line.get(label_end + 3..)?;
        match (label, msg.get(..12)?) {
            (b"LOG", b"connection r") => {
                if let Some(old) = self.open.remove(&pid) {
                    let last = old.evidence.last().copied().unwrap_or(n);
                    self.write(pid, old, time, last, b"incomplete", b"pid reused");
                }
                let fresh = self.pool.pop().unwrap_or_default();
                let s = self.open.entry(pid).or_insert(fresh);
                s.start = time;
                s.client.clear();
                s.client.extend_from_slice(client);
                s.evidence.push(n);
            }
            (b"LOG", b"connection a") => {
                let s = self.open.get_mut(&pid)?;
                s.evidence.push(n);
                if msg.starts_with(b"connection authorized: user=") {
                    s.user.clear();
                    s.user.extend_from_slice(user);
                    s.database.clear();
                    s.database.extend_from_slice(database);
                    s.application.clear();
                    s.ssl.clear();
                    let ssl = self.finders.ssl.find(msg);
                    if let Some(a) = self.finders.application.find(msg) {
                        let rest = &msg[a + 17..ssl.unwrap_or(msg.len()).max(a + 17)];
                        s.application.extend_from_slice(rest);
                    }
                    if let Some(at) = ssl {
                        let rest = &msg[at + 14..];
                        s.ssl
                            .extend_from_slice(&rest[..rest.len().saturating_sub(1)]);
                    }
                } else {
                    let field = |key: &memchr::memmem::Finder<'_>, end: u8| -> &[u8] {
                        key.find(msg).map_or(&[][..], |at| {
                            let rest = &msg[at + key.needle().len()..];
                            &rest[..memchr::memchr(end, rest).unwrap_or(rest.len())]
                        })
                    };
                    let f = &self.finders;
                    let (identity, method) = (field(&f.identity, b'"'), field(&f.method, b' '));
                    let hba = field(&f.hba, b')');
                    s.identity.clear();
                    s.identity.extend_from_slice(identity);
                    s.method.clear();
                    s.method.extend_from_slice(method);
                    s.hba_line.clear();
                    s.hba_line.extend_from_slice(hba);
                }
            }
            (b"LOG", b"disconnectio") => {
                let s = self.open.remove(&pid)?;
                self.write(pid, s, time, n, b"success", b"client");
            }
            (b"FATAL", _) => {
                if let Some(mut s) = self.open.remove(&pid) {
                    s.user.clear();
                    s.user.extend_from_slice(user);
                    s.database.clear();
                    s.database.extend_from_slice(database);
                    self.write(pid, s, time, n, b"failure", msg);
                }
            }
            _ => {
                if let Some(s) = self.open.get_mut(&pid) {
                    s.evidence.push(n);
                }
            }
        }
        Some(())
    }

    fn write(&mut self, pid: u32, mut s: Open, end: i64, n: u64, outcome: &[u8], reason: &[u8]) {
        if s.evidence.last() != Some(&n) {
            s.evidence.push(n);
        }
        if self.count {
            let column = match outcome {
                b"success" => 0,
                b"failure" => 1,
                b"abandoned" => 2,
                _ => 3,
            };
            match self.totals.by_user.get_mut(&s.user[..]) {
                Some(counts) => counts[column] += 1,
                None => {
                    let mut counts = [0; 4];
                    counts[column] = 1;
                    self.totals.by_user.insert(s.user.clone(), counts);
                }
            }
            self.totals.sessions += 1;
            self.recycle(s);
            return;
        }
        let (start_iso, end_iso) = (self.iso(s.start), self.iso(end));
        let o = &mut self.out;
        let mut ints = itoa::Buffer::new();
        o.extend_from_slice(b"{\"session_id\":\"floor/");
        o.extend_from_slice(ints.format(pid).as_bytes());
        o.push(b'/');
        o.extend_from_slice(ints.format(s.start).as_bytes());
        o.extend_from_slice(b"\",\"pid\":");
        o.extend_from_slice(ints.format(pid).as_bytes());
        o.extend_from_slice(b",\"start\":\"");
        o.extend_from_slice(&start_iso);
        o.extend_from_slice(b"\",\"end\":\"");
        o.extend_from_slice(&end_iso);
        o.extend_from_slice(b"\",\"duration_ms\":");
        o.extend_from_slice(ints.format(end - s.start).as_bytes());
        o.extend_from_slice(b",\"outcome\":\"");
        o.extend_from_slice(outcome);
        for (key, value) in [
            (&b"\",\"user\":\""[..], &s.user[..]),
            (b"\",\"database\":\"", &s.database),
            (b"\",\"application_name\":\"", &s.application),
            (b"\",\"client\":\"", &s.client),
            (b"\",\"auth_method\":\"", &s.method),
            (b"\",\"identity\":\"", &s.identity),
            (b"\",\"hba_line\":\"", &s.hba_line),
            (b"\",\"ssl\":\"", &s.ssl),
            (b"\",\"end_reason\":\"", reason),
        ] {
            o.extend_from_slice(key);
            escape(o, value);
        }
        o.extend_from_slice(b"\",\"evidence\":[");
        for (i, line) in s.evidence.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(b"\"floor.log:");
            o.extend_from_slice(ints.format(*line).as_bytes());
            o.push(b'"');
        }
        o.extend_from_slice(b"]}\n");
        self.totals.sessions += 1;
        self.recycle(s);
    }

    /// Clears an ended session's entry and keeps it for the next one.
    fn recycle(&mut self, mut s: Open) {
        for field in [
            &mut s.client,
            &mut s.user,
            &mut s.database,
            &mut s.application,
            &mut s.method,
            &mut s.identity,
            &mut s.hba_line,
            &mut s.ssl,
        ] {
            field.clear();
        }
        s.evidence.clear();
        self.pool.push(s);
    }

    /// Writes a session that has no ending line: it ends where it started,
    /// and its evidence is what it has.
    fn write_unended(&mut self, pid: u32, s: Open, outcome: &[u8], reason: &[u8]) {
        let (start, last) = (s.start, s.evidence.last().copied().unwrap_or(0));
        self.write(pid, s, start, last, outcome, reason);
    }

    /// Writes and drops attempts never authorised and idle for ten minutes.
    fn sweep(&mut self) {
        let cutoff = self.latest.saturating_sub(ABANDON_AFTER_MS);
        let stale: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, s)| s.user.is_empty() && s.start < cutoff)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in stale {
            if let Some(s) = self.open.remove(&pid) {
                self.write_unended(pid, s, b"abandoned", b"idle");
            }
        }
        // Past the bound, the oldest sessions are written as incomplete.
        if self.open.len() > MAX_OPEN {
            let mut by_age: Vec<(i64, u32)> =
                self.open.iter().map(|(p, s)| (s.start, *p)).collect();
            by_age.sort_unstable();
            for (_, pid) in &by_age[..by_age.len() - MAX_OPEN] {
                if let Some(s) = self.open.remove(pid) {
                    self.write_unended(*pid, s, b"incomplete", b"evicted");
                }
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds (civil from days).
    fn iso(&mut self, ms: i64) -> [u8; 24] {
        let secs = ms.div_euclid(1000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        if secs != self.iso_second {
            self.iso_second = secs;
            self.iso_text = civil(secs);
        }
        out[..19].copy_from_slice(&self.iso_text);
        let m = ms.rem_euclid(1000);
        out[20] = b'0' + (m / 100) as u8;
        out[21] = b'0' + (m / 10 % 10) as u8;
        out[22] = b'0' + (m % 10) as u8;
        out
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for epoch seconds (civil from days).
fn civil(secs: i64) -> [u8; 19] {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    out
}

/// JSON string body: quotes, backslashes and control bytes escaped.
fn escape(out: &mut Vec<u8>, s: &[u8]) {
    let special = s.iter().fold(false, |any, &c| {
        any | (c < 0x20) | (c == b'"') | (c == b'\\')
    });
    if !special {
        out.extend_from_slice(s);
        return;
    }
    let mut from = 0;
    for (i, &c) in s.iter().enumerate() {
        if c < 0x20 || c == b'"' || c == b'\\' {
            out.extend_from_slice(&s[from..i]);
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ => {
                    out.extend_from_slice(b"\\u00");
                    out.push(b"0123456789abcdef"[usize::from(c >> 4)]);
                    out.push(b"0123456789abcdef"[usize::from(c & 15)]);
                }
            }
            from = i + 1;
        }
    }
    out.extend_from_slice(&s[from..]);
}
