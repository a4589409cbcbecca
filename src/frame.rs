//! Where a buffer may be cut into chunks that decode independently, per
//! format. Used by the parallel engine: every chunk starts at a record
//! boundary, so decoding chunks in parallel gives the same records as
//! decoding the whole input at once.
//!
//! - jsonlog: any newline (records never contain one raw).
//! - csvlog: the end of a row as the decoder reads the rows
//!   ([`csvlog::row_ends`]: the csv reader's own quoting, from the start of
//!   the buffer, itself a row boundary, and the decoder's restarts inside a
//!   broken row). Counting quotes was not enough for a damaged file.
//! - stderr (any prefix): before a line that starts a record with a
//!   severity (not DETAIL/HINT…, not a TAB continuation) and that no
//!   forged-prefix span takes: no line in the [`QUIET_BYTES`] before it is
//!   a broken prefix (a span reaches at most a few hundred bytes past its
//!   broken line), or, where one is, the decoder's own walk from the start
//!   of the chunk (`stderr::SpanWalk`) reads it as a line of its own (so
//!   a flood of forged names is cut between its spans) — and when no
//!   secondary line (DETAIL…) among the records
//!   after it could attach to a record before it (the decoder looks back 16
//!   records, `REORDER_WINDOW`, for interleaved output). Where 256 lines in
//!   a row fail only that last rule, the first of them is taken, so that
//!   memory stays bounded.
//! - syslog: never (records are rebuilt from chunks keyed by sequence
//!   numbers across the whole input).

use crate::prefix::{LineMatch, Prefix};
use crate::record::csvlog;
use crate::record::stderr::{REORDER_WINDOW, SpanWalk, strip_export_wrapper};

/// How an input's records may be split.
#[derive(Debug, Clone)]
pub enum Framing {
    JsonLines,
    Csv,
    /// stderr text with this prefix, decoded with this line length limit
    /// (a line longer than it ends a forged span).
    Stderr {
        prefix: Prefix,
        max_line_bytes: usize,
    },
    Whole,
}

/// Bytes before a stderr cut that must hold no foreign or broken line.
pub const QUIET_BYTES: usize = 1024;

/// How far past the target a cut is searched for before giving up (the
/// chunk then grows until a later target).
const SEARCH_BYTES: usize = 1 << 20;

/// Bytes near the end of a buffer where [`cut_points`] makes one more cut,
/// so that the caller carries over little (it copies what it carries).
const TAIL_BYTES: usize = 64 * 1024;

/// Cut points (exclusive chunk ends) in `buf`, about `target` bytes apart,
/// and one more at the first boundary in the last `TAIL_BYTES` (64 KiB) when the
/// chunk it ends is at least that long. Bytes after the last cut point are
/// not a complete chunk yet: the caller carries them over (or, at the end
/// of the input, decodes them as the last chunk).
pub fn cut_points(buf: &[u8], framing: &Framing, target: usize) -> Vec<usize> {
    let target = target.max(1);
    let mut cuts = Vec::new();
    // Where the tail cut is looked for, given the last cut so far.
    let tail_from = |from: usize| {
        let at = buf.len().checked_sub(TAIL_BYTES)?;
        (at >= from + TAIL_BYTES).then_some(at)
    };
    match framing {
        Framing::Whole => {}
        Framing::JsonLines => {
            let mut from = 0;
            let next = |at: usize| {
                memchr::memchr(b'\n', &buf[at..])
                    .map(|nl| at + nl + 1)
                    .filter(|&cut| cut < buf.len())
            };
            while from + target < buf.len() {
                match next(from + target) {
                    Some(cut) => {
                        cuts.push(cut);
                        from = cut;
                    }
                    None => break,
                }
            }
            cuts.extend(tail_from(from).and_then(next));
        }
        Framing::Csv => {
            let mut next_target = target;
            let mut tail = tail_from(0);
            csvlog::row_ends(buf, &mut |end| {
                if end >= next_target || tail.is_some_and(|t| end >= t) {
                    cuts.push(end);
                    next_target = end + target;
                    tail = tail_from(end);
                }
            });
        }
        Framing::Stderr {
            prefix,
            max_line_bytes,
        } => {
            let cut_after =
                |from: usize, at: usize| stderr_cut(buf, prefix, *max_line_bytes, from, at);
            let mut from = 0;
            while from + target < buf.len() {
                match cut_after(from, from + target) {
                    Some(cut) => {
                        cuts.push(cut);
                        from = cut;
                    }
                    None => break,
                }
            }
            cuts.extend(tail_from(from).and_then(|at| cut_after(from, at)));
        }
    }
    cuts
}

/// The first safe stderr cut at or after `at`; after [`LATE_DETAIL_TRIES`]
/// lines that are safe but for a late DETAIL line, the first of those.
/// `from` (before `at`) is where the chunk starts: decoding starts afresh
/// there, so the decoder's walk from it tells which lines after broken
/// lines a forged span takes.
fn stderr_cut(
    buf: &[u8],
    prefix: &Prefix,
    max_line_bytes: usize,
    from: usize,
    at: usize,
) -> Option<usize> {
    let limit = buf.len().min(at + SEARCH_BYTES);
    let mut line_start = match memchr::memrchr(b'\n', &buf[..at]) {
        Some(nl) => nl + 1,
        None => 0,
    };
    if line_start < at {
        line_start = at + memchr::memchr(b'\n', &buf[at..limit])? + 1;
    }
    // The first cut that is safe but for a late DETAIL line, and how many
    // cuts were tried since, in case none is safe at all.
    let mut fallback = None;
    let mut tried = 0;
    // Made the first time a broken line is near a candidate.
    let mut walk: Option<SpanWalk<'_, '_>> = None;
    while line_start < limit {
        let line_end = memchr::memchr(b'\n', &buf[line_start..])? + line_start;
        if starts_record(&buf[line_start..line_end], prefix)
            && (quiet_before(buf, line_start, prefix)
                || walk
                    .get_or_insert_with(|| SpanWalk::new(buf, from, prefix, max_line_bytes))
                    .own_line(line_start))
        {
            if nothing_attaches_back(buf, line_start, prefix) {
                return Some(line_start);
            }
            fallback.get_or_insert(line_start);
            tried += 1;
            if tried > LATE_DETAIL_TRIES {
                break;
            }
        }
        line_start = line_end + 1;
    }
    // A stretch with no safe cut (each record followed by a DETAIL line of
    // another process's earlier record: interleaved output, never seen in a
    // real log here): cut anyway, so that memory stays bounded; such a
    // DETAIL may then stand apart from its record, depending on the cut.
    if tried > LATE_DETAIL_TRIES || limit < buf.len() {
        return fallback;
    }
    None
}

/// Cuts tried, each failing only for a DETAIL line that could attach back
/// across it, before the first of them is taken anyway.
const LATE_DETAIL_TRIES: usize = 256;

fn starts_record(line: &[u8], prefix: &Prefix) -> bool {
    let (_, content) = strip_export_wrapper(line);
    matches!(prefix.parse_line(content), LineMatch::Header { label, .. } if label.is_severity())
}

/// No broken line (a prefix cut short by a newline in a client field)
/// starts in the `QUIET_BYTES` before `cut`: the decoder reads the lines
/// after a broken one into its forged span, at most `MAX_FORGED_BYTES` of
/// them before the last. Foreign lines carry nothing to the next line.
fn quiet_before(buf: &[u8], cut: usize, prefix: &Prefix) -> bool {
    let from = cut.saturating_sub(QUIET_BYTES);
    // Lines fully inside the window, plus the one the window starts in.
    let mut start = match memchr::memrchr(b'\n', &buf[..from]) {
        Some(nl) => nl + 1,
        None => 0,
    };
    while start < cut {
        let end = memchr::memchr(b'\n', &buf[start..cut]).map_or(cut, |nl| start + nl);
        let (_, content) = strip_export_wrapper(&buf[start..end]);
        let fine = content.is_empty()
            || content.starts_with(b"\t")
            || !matches!(prefix.parse_line(content), LineMatch::Broken { .. });
        if !fine {
            return false;
        }
        start = end + 1;
    }
    true
}

/// No secondary line (DETAIL, HINT, CONTEXT…) after `cut` attaches to a
/// record before it. The decoder attaches such a line to the latest record
/// of its process among the last [`REORDER_WINDOW`] items (interleaved
/// output of several processes), so a cut is safe when each secondary line
/// within the first that many records after it follows a record of its own
/// process after the cut. Lines past the end of `buf` are unknown: a cut
/// whose window runs past it is not safe.
fn nothing_attaches_back(buf: &[u8], cut: usize, prefix: &Prefix) -> bool {
    let mut after: Vec<Option<u32>> = Vec::with_capacity(REORDER_WINDOW);
    let mut start = cut;
    while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
        let end = start + nl;
        let (_, content) = strip_export_wrapper(&buf[start..end]);
        start = end + 1;
        if let LineMatch::Header { label, fields, .. } = prefix.parse_line(content) {
            if label.is_severity() {
                if after.len() == REORDER_WINDOW {
                    return true;
                }
                after.push(fields.pid);
            } else if !after.contains(&fields.pid) {
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stderr_framing(prefix: Prefix) -> Framing {
        Framing::Stderr {
            prefix,
            max_line_bytes: 1 << 20,
        }
    }

    fn chunks<'a>(buf: &'a [u8], framing: &Framing, target: usize) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cut_points(buf, framing, target) {
            out.push(&buf[from..cut]);
            from = cut;
        }
        out.push(&buf[from..]);
        out
    }

    #[test]
    fn csv_cuts_only_outside_quotes() {
        let buf = b"a,\"x\ny\",1\nb,\"\"\"q\"\"\n\",2\nc,3\n";
        let parts = chunks(buf, &Framing::Csv, 1);
        assert_eq!(
            parts,
            vec![&b"a,\"x\ny\",1\n"[..], b"b,\"\"\"q\"\"\n\",2\n", b"c,3\n"]
        );
    }

    #[test]
    fn stderr_cuts_keep_details_and_forged_spans_whole() {
        let text = "2026-11-28 14:51:20 UTC:127.0.0.1(35708):a@d:[1]:FATAL:  password authentication failed for user \"a\"\n\
2026-11-28 14:51:20 UTC:127.0.0.1(35708):a@d:[1]:DETAIL:  Role \"a\" does not exist.\n\
\tConnection matched pg_hba.conf line 6: \"host all all 127.0.0.1/32 scram-sha-256\"\n\
2026-11-28 14:51:29 UTC:127.0.0.1(35956):evil\"\n\
2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]@template1:[29600]:FATAL:  no pg_hba.conf entry\n\
2026-11-28 14:51:30 UTC:127.0.0.1(35957):b@d:[2]:LOG:  connection received: host=127.0.0.1 port=35957\n";
        let prefix = Prefix::compile("%t:%r:%u@%d:[%p]:").unwrap();
        let framing = stderr_framing(prefix);
        // No cut: not before the DETAIL, not inside the forged span, and
        // the record after it is too near the end to know what follows.
        assert!(cut_points(text.as_bytes(), &framing, 1).is_empty());
        // Followed by a long clean stretch, cuts fall only before severity
        // lines after the span.
        let clean = "2026-11-28 14:51:31 UTC:127.0.0.1(35958):b@d:[3]:LOG:  disconnection: session time: 0:00:00.001 user=b database=d host=127.0.0.1 port=35958\n".repeat(60);
        let all = format!("{text}{clean}");
        let parts = chunks(all.as_bytes(), &framing, 1);
        assert!(parts.len() > 5, "{}", parts.len());
        assert_eq!(parts.concat(), all.as_bytes());
        assert!(parts[0].starts_with(b"2026-11-28 14:51:20"));
        assert!(
            parts[0].windows(4).any(|w| w == b"2030"),
            "the forged span stays in the first chunk"
        );
        // The first cut may come right after the span.
        for part in &parts[1..] {
            assert!(
                part.starts_with(b"2026-11-28 14:51:3"),
                "{:?}",
                String::from_utf8_lossy(part)
            );
        }
    }

    #[test]
    fn a_long_buffer_is_cut_once_more_near_its_end() {
        let line = "2026-11-28 14:51:31 UTC:127.0.0.1(35958):b@d:[3]:LOG:  disconnection: session time: 0:00:00.001 user=b database=d host=127.0.0.1 port=35958\n";
        let stderr = stderr_framing(Prefix::compile("%t:%r:%u@%d:[%p]:").unwrap());
        for (framing, line) in [
            (
                &Framing::JsonLines,
                "{\"a\":1,\"message\":\"connection received\"}\n",
            ),
            (&Framing::Csv, "2026-11-28,\"a\nb\",1\n"),
            (&stderr, line),
        ] {
            // Three tails' worth and a cut-off line: the target is out of
            // reach, so only the tail cut is made.
            let whole = line.repeat(3 * TAIL_BYTES / line.len());
            let buf = format!("{whole}{}", &line[..line.len() / 2]);
            let cuts = cut_points(buf.as_bytes(), framing, 1 << 30);
            assert_eq!(cuts.len(), 1, "{framing:?}");
            let cut = cuts[0];
            assert!(
                buf.len() - cut <= TAIL_BYTES,
                "{framing:?}: carries {}",
                buf.len() - cut
            );
            assert!(
                buf[cut..].starts_with(line),
                "{framing:?}: cut inside a record"
            );
            // The tail chunk is not made shorter than the tail.
            let short = &buf[buf.len() - TAIL_BYTES - line.len()..];
            let short = &short[short.find('\n').unwrap() + 1..];
            assert!(
                cut_points(short.as_bytes(), framing, 1 << 30).is_empty(),
                "{framing:?}"
            );
        }
    }

    /// A DETAIL line that comes a few records after its record (output of
    /// several processes interleaved) attaches to it in chunks of any size:
    /// no cut falls between them. Real lines of the pg15 Debian sample,
    /// the DETAIL of pid 4063 moved after the records that follow it.
    #[test]
    fn a_late_detail_is_not_cut_from_its_record() {
        let Some(real) = crate::sample_text("samples/pg15/debian/postgresql.log") else {
            return; // no samples in this checkout
        };
        let mut lines: Vec<&str> = real.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains("[4063]") && l.contains("DETAIL:"))
            .expect("the sample's DETAIL of pid 4063");
        // The DETAIL and its TAB continuation, five records later.
        let detail: Vec<&str> = lines.drain(at..at + 2).collect();
        assert!(detail[1].starts_with('\t'));
        for (i, line) in detail.into_iter().enumerate() {
            lines.insert(at + 5 + i, line);
        }
        let text = lines.join("\n") + "\n";
        let prefix = Prefix::compile("%m [%p] %q%u@%d ").unwrap();
        let whole = decoded(text.as_bytes(), &prefix, None);
        assert!(
            whole.iter().any(
                |i| i.contains("Password does not match for user \\\"app_md5\\\"")
                    && i.contains("pid: Some(4063)")
            ),
            "the DETAIL attaches in one piece"
        );
        for target in [1, 100, 1000, 4000] {
            assert_eq!(
                decoded(text.as_bytes(), &prefix, Some(target)),
                whole,
                "target {target}"
            );
        }
    }

    /// The items the stderr decoder makes of `text`, whole or (with a
    /// target) chunk by chunk as the framer cuts it, line numbers carried.
    fn decoded(text: &[u8], prefix: &Prefix, target: Option<usize>) -> Vec<String> {
        use crate::record::stderr::{StderrOptions, decode};
        let parts = match target {
            Some(target) => chunks(text, &stderr_framing(prefix.clone()), target),
            None => vec![text],
        };
        let mut items = Vec::new();
        let mut lines = 0;
        for part in parts {
            decode(
                part,
                prefix,
                lines,
                &StderrOptions::default(),
                &mut |item| items.push(format!("{item:?}")),
            );
            lines += memchr::memchr_iter(b'\n', part).count() as u64;
        }
        items
    }

    /// A flood of forged names (a broken prefix line every few hundred
    /// bytes, which any client can cause) is still cut into chunks near the
    /// target, right after the forged spans, and reads the same in chunks.
    /// Real lines of the forging sample: a `received`, the broken line, the
    /// forged record and its TAB line.
    #[test]
    fn a_flood_of_forged_names_is_cut_between_the_spans() {
        let Some(log) = crate::sample_text("samples/forging/pg15-rds/postgresql.log") else {
            return; // no samples in this checkout
        };
        let lines: Vec<&str> = log.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.ends_with("):evil\""))
            .expect("the sample's broken line");
        let block = lines[at - 1..at + 3].join("\n") + "\n";
        assert!(lines[at + 1].starts_with("2030-") && lines[at + 2].starts_with('\t'));
        let text = block.repeat(2000);
        let prefix = Prefix::compile("%t:%r:%u@%d:[%p]:").unwrap();
        let parts = bounded_chunks(text.as_bytes(), &stderr_framing(prefix.clone()));
        for part in &parts[1..] {
            assert!(
                part.starts_with(lines[at - 1].as_bytes()),
                "a cut after a span"
            );
        }
        let whole = decoded(text.as_bytes(), &prefix, None);
        assert_eq!(
            whole.iter().filter(|i| i.starts_with("Suspect")).count(),
            2000
        );
        for target in [1, 300, 4000, 64 * 1024] {
            assert_eq!(
                decoded(text.as_bytes(), &prefix, Some(target)),
                whole,
                "target {target}"
            );
        }
    }

    /// Memory stays bounded where no cut is safe in the usual sense: a log
    /// where every few lines is foreign (here a csvlog row, foreign to the
    /// stderr prefix), and one where every DETAIL line comes after the next
    /// process's record (interleaved output). Chunks stay near the target.
    /// Real lines of the pg15 samples.
    #[test]
    fn chunks_stay_bounded_between_foreign_lines_and_late_details() {
        let (Some(log), Some(csv)) = (
            crate::sample_text("samples/pg15/debian/postgresql.log"),
            crate::sample_text("samples/pg15/rds/postgresql.csv"),
        ) else {
            return; // no samples in this checkout
        };
        let lines: Vec<&str> = log.lines().collect();
        // Two records with a DETAIL line each, of two processes.
        let pairs: Vec<(&str, &str)> = lines
            .windows(2)
            .filter(|w| w[0].contains("FATAL:") && w[1].contains("DETAIL:"))
            .map(|w| (w[0], w[1]))
            .collect();
        let ((rec_a, det_a), (rec_b, det_b)) = (pairs[0], pairs[1]);
        assert_ne!(&rec_a[24..32], &rec_b[24..32], "two processes");
        let foreign = csv.lines().next().unwrap();
        // Foreign every fourth line; then each DETAIL after the other
        // process's record, so that a DETAIL follows every possible cut.
        let foreign_heavy = format!("{rec_a}\n{det_a}\n{rec_b}\n{foreign}\n").repeat(8000);
        let late_details = format!("{rec_a}\n{det_b}\n{rec_b}\n{det_a}\n").repeat(8000);
        let framing = stderr_framing(Prefix::compile("%m [%p] %q%u@%d ").unwrap());
        for text in [foreign_heavy, late_details] {
            bounded_chunks(text.as_bytes(), &framing);
        }
    }

    /// `text` cut with a 64 KiB target: the whole of it, in more than ten
    /// chunks none of which reaches twice the target.
    fn bounded_chunks<'a>(text: &'a [u8], framing: &Framing) -> Vec<&'a [u8]> {
        let parts = chunks(text, framing, 64 * 1024);
        assert_eq!(parts.concat(), text);
        let longest = parts.iter().map(|p| p.len()).max().unwrap_or(0);
        assert!(
            parts.len() > 10 && longest < 128 * 1024,
            "{} parts, {longest}",
            parts.len()
        );
        parts
    }

    #[test]
    fn json_cuts_at_newlines() {
        let buf = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        assert_eq!(chunks(buf, &Framing::JsonLines, 4).len(), 3);
        assert!(cut_points(buf, &Framing::Whole, 1).is_empty());
    }
}
