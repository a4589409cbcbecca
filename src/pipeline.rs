//! One input from bytes to events: format detection, the decoder for that
//! format, and the extractor. No I/O happens here; `source` loads the bytes
//! and the CLI writes the events.

use std::borrow::Cow;
use std::fmt;

use crate::event::Event;
use crate::extract::{Enricher, Extractor, Out, Stats};
use crate::message::Catalog;
use crate::name::Name;
use crate::prefix::{LineMatch, Prefix, Preset, presets};
use crate::record::{Item, Label, csvlog, jsonlog, stderr, syslog};

/// The record format of an input, as chosen by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatChoice {
    Auto,
    Stderr,
    Csvlog,
    Jsonlog,
    Syslog,
}

/// What to parse and how.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    pub format: FormatChoice,
    /// A prefix given with `--prefix` or `--preset`; `None` auto-detects.
    pub prefix: Option<Prefix>,
    pub max_line_bytes: usize,
    /// Which events keep their message text.
    pub messages: MessageText,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            format: FormatChoice::Auto,
            prefix: None,
            max_line_bytes: 1 << 20,
            messages: MessageText::Every,
        }
    }
}

/// Which events keep their message text ([`crate::event::Event::message`]).
/// Copying the text of every record costs an allocation per event; sessions
/// read only the text that explains an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageText {
    /// Every event (`parse` prints them).
    #[default]
    Every,
    /// Only what a session reads: refusals, authentication notes and
    /// protocol errors (its `failure_message` and `notes`), suspect events,
    /// and `authorized` events of csvlog/jsonlog (their text is read again
    /// when the application name settles the TLS check). Other events
    /// have an empty message.
    Explanations,
}

/// The format found for an input.
#[derive(Debug, Clone)]
pub enum Detected {
    Stderr {
        prefix: Prefix,
        preset: Option<&'static str>,
    },
    Csvlog,
    Jsonlog,
    Syslog {
        prefix: Prefix,
        preset: Option<&'static str>,
    },
}

impl fmt::Display for Detected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detected::Stderr { prefix, preset } | Detected::Syslog { prefix, preset } => {
                let kind = if matches!(self, Detected::Syslog { .. }) {
                    "syslog"
                } else {
                    "stderr"
                };
                match preset {
                    Some(name) => {
                        write!(f, "{kind}, prefix preset '{name}' ({:?})", prefix.as_str())
                    }
                    None => write!(f, "{kind}, prefix {:?}", prefix.as_str()),
                }
            }
            Detected::Csvlog => f.write_str("csvlog"),
            Detected::Jsonlog => f.write_str("jsonlog"),
        }
    }
}

/// Why an input's format could not be determined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectError {
    pub message: String,
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How many header lines auto-detection looks at.
const DETECT_LINES: usize = 200;

/// The bytes a format is detected on: the whole lines of the first 256 KiB
/// (all of `bytes` when they are no longer). Given more than 256 KiB of an
/// input, or all of it, the window is a function of the input alone, so
/// [`detect`] on it gives what `detect` gives on any longer start.
pub fn sniff_window(bytes: &[u8]) -> &[u8] {
    let limit = bytes.len().min(256 * 1024);
    match memchr::memrchr(b'\n', &bytes[..limit]) {
        Some(end) if limit < bytes.len() => &bytes[..end + 1],
        _ => &bytes[..limit],
    }
}

/// How well a preset explains the first lines of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fit {
    /// Lines that parse as a record header.
    matched: usize,
    /// Lines where the prefix's `%u`/`%d` agree with the user and database
    /// the message itself names (`connection authorized: user=… database=…`).
    confirmed: usize,
    /// Lines where they disagree: the preset split the line wrongly (e.g.
    /// `%d` swallowing an application name).
    contradicted: usize,
    /// Escapes in the preset: among equals, the simpler explanation wins.
    escapes: usize,
}

impl Fit {
    /// Higher is better.
    fn rank(&self) -> (usize, usize, std::cmp::Reverse<usize>) {
        (
            self.matched.saturating_sub(self.contradicted),
            self.confirmed,
            std::cmp::Reverse(self.escapes),
        )
    }
}

/// How well `prefix` explains `sample`. With a `floor` (the best rank's
/// first key so far), the lines stop being read as soon as the preset can
/// no longer reach it: even if every line left matched, it would rank
/// below the best, so it cannot win. The fit is then partial (`None`).
fn fit(
    prefix: &Prefix,
    escapes: usize,
    sample: &[&[u8]],
    catalog: &Catalog,
    floor: Option<usize>,
) -> Option<Fit> {
    use crate::message::Field;
    let mut fit = Fit {
        matched: 0,
        confirmed: 0,
        contradicted: 0,
        escapes,
    };
    for (i, line) in sample.iter().enumerate() {
        if let Some(floor) = floor {
            let left = sample.len() - i;
            if (fit.matched + left).saturating_sub(fit.contradicted) < floor {
                return None;
            }
        }
        let LineMatch::Header {
            fields,
            label,
            body,
            ..
        } = prefix.parse_line(line)
        else {
            continue;
        };
        fit.matched += 1;
        let Ok(body) = std::str::from_utf8(body) else {
            continue;
        };
        let Some(found) = catalog.classify(label, body) else {
            continue;
        };
        let pairs = [
            (fields.user, found.get(Field::User)),
            (fields.database, found.get(Field::Database)),
        ];
        for (in_prefix, in_message) in pairs {
            if let (Some(a), Some(b)) = (in_prefix, in_message) {
                if a == b.as_bytes() {
                    fit.confirmed += 1;
                } else {
                    fit.contradicted += 1;
                }
            }
        }
    }
    Some(fit)
}

/// The lines detection reads: the first [`DETECT_LINES`] lines of the sniff
/// window that are neither empty nor continuations.
fn detect_sample(text: &[u8]) -> Vec<&[u8]> {
    sniff_window(text)
        .split(|&b| b == b'\n')
        .map(|l| stderr::strip_export_wrapper(l).1)
        .filter(|l| !l.is_empty() && !l.starts_with(b"\t"))
        .take(DETECT_LINES)
        .collect()
}

/// Every preset that compiles, in file order, with its escape count.
fn compiled_presets() -> impl Iterator<Item = (&'static Preset, Prefix, usize)> {
    presets().iter().filter_map(|preset| {
        let prefix = Prefix::compile(&preset.prefix).ok()?;
        let escapes = preset.prefix.matches('%').count();
        Some((preset, prefix, escapes))
    })
}

/// Tries every preset on the first lines. The one that parses the most lines
/// wins, discounting lines where the prefix's user or database contradicts
/// the message; ties go to the preset the messages confirm most, then to the
/// simpler preset, then to the earlier one in grammars/prefixes.toml.
///
/// A preset stops being tried once it cannot win (see `fit`): on a
/// directory of hourly files, the presets that do not fit cost most of
/// detecting each file. The error, which lists every preset's count, counts
/// them all again.
pub fn detect_prefix(
    text: &[u8],
    catalog: &Catalog,
) -> Result<(Prefix, &'static str), DetectError> {
    let sample = detect_sample(text);
    let mut best: Option<(Prefix, &'static str, Fit)> = None;
    for (preset, prefix, escapes) in compiled_presets() {
        let floor = best.as_ref().map(|(_, _, b)| b.rank().0);
        let Some(fit) = fit(&prefix, escapes, &sample, catalog, floor) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, _, b)| fit.rank() > b.rank()) {
            best = Some((prefix, preset.name.as_str(), fit));
        }
    }
    let best = best.map(|(prefix, name, fit)| (prefix, name, fit.matched));
    match best {
        Some((prefix, name, matched)) if matched > 0 && matched * 2 >= sample.len() => {
            Ok((prefix, name))
        }
        _ => {
            let tried: Vec<String> = compiled_presets()
                .map(|(preset, prefix, escapes)| {
                    let matched =
                        fit(&prefix, escapes, &sample, catalog, None).map_or(0, |fit| fit.matched);
                    format!(
                        "  {:<14} {:<44} {matched}/{} lines",
                        preset.name,
                        preset.prefix,
                        sample.len()
                    )
                })
                .collect();
            Err(DetectError {
                message: format!(
                    "no known log format fits: not csvlog, not jsonlog, not syslog, and no log_line_prefix preset matches at least half of the first {} lines.\nTried:\n{}\nGive the server's log_line_prefix with --prefix '<value of SHOW log_line_prefix>', or the format with --log-format.",
                    sample.len(),
                    tried.join("\n")
                ),
            })
        }
    }
}

/// Finds the format of `bytes` (or takes the user's choice).
pub fn detect(
    bytes: &[u8],
    options: &ParseOptions,
    catalog: &Catalog,
) -> Result<Detected, DetectError> {
    let sniff = sniff_window(bytes);
    let format = match options.format {
        FormatChoice::Auto => {
            if jsonlog::looks_like_jsonlog(sniff) {
                FormatChoice::Jsonlog
            } else if csvlog::looks_like_csvlog(sniff) {
                FormatChoice::Csvlog
            } else if syslog::looks_like_syslog(sniff) {
                FormatChoice::Syslog
            } else {
                FormatChoice::Stderr
            }
        }
        other => other,
    };
    let prefix_for = |text: &[u8]| -> Result<(Prefix, Option<&'static str>), DetectError> {
        match &options.prefix {
            Some(prefix) => Ok((prefix.clone(), None)),
            None => detect_prefix(text, catalog).map(|(p, name)| (p, Some(name))),
        }
    };
    Ok(match format {
        FormatChoice::Jsonlog => Detected::Jsonlog,
        FormatChoice::Csvlog => Detected::Csvlog,
        FormatChoice::Syslog => {
            let unwrapped = syslog::unwrap_syslog(sniff);
            let (prefix, preset) = prefix_for(&unwrapped.text)?;
            Detected::Syslog { prefix, preset }
        }
        FormatChoice::Stderr | FormatChoice::Auto => {
            let (prefix, preset) = prefix_for(sniff)?;
            Detected::Stderr { prefix, preset }
        }
    })
}

/// Events and counters of one input.
pub struct Parsed {
    pub events: Vec<Event>,
    pub stats: Stats,
}

/// True when a record's message is a connection or authentication message
/// (only those lines are checked for a second reading of their prefix).
pub fn is_connection_message(catalog: &Catalog, label: Label, body: &[u8]) -> bool {
    catalog
        .classify(label, &String::from_utf8_lossy(body))
        .is_some()
}

/// [`extract_bytes`] reserves room for an item per this many bytes of
/// input: more items than a dense connection log's one event per ~175
/// bytes, so that the list never regrows (and copies itself).
const ITEM_BYTES_GUESS: usize = 128;

/// Decodes `bytes` in the detected format and extracts its records (the
/// stateless stage; see [`Extractor`]). Line numbers count from the start
/// of `bytes`.
pub fn extract_bytes(
    bytes: &[u8],
    detected: &Detected,
    options: &ParseOptions,
    catalog: &Catalog,
    server: Name,
    input: Name,
) -> (Vec<Out>, Stats) {
    let mut extractor = Extractor::new(catalog, server, input);
    extractor.messages = options.messages;
    extractor.out.reserve(bytes.len() / ITEM_BYTES_GUESS);
    let check = |label, body: &[u8]| is_connection_message(catalog, label, body);
    let may = |label, body: &[u8]| catalog.may_classify(label, body);
    let stderr_options = stderr::StderrOptions {
        max_line_bytes: options.max_line_bytes,
        check_ambiguity: Some(&check),
        may_matter: Some(&may),
    };
    match detected {
        Detected::Stderr { prefix, .. } => {
            stderr::decode_recycling(bytes, prefix, 0, &stderr_options, &mut |item| {
                extractor.push_returning(item)
            });
        }
        Detected::Csvlog => csvlog::decode(bytes, 0, &mut |item| extractor.push(item)),
        Detected::Jsonlog => jsonlog::decode(bytes, 0, &mut |item| extractor.push(item)),
        Detected::Syslog { prefix, .. } => {
            let unwrapped = syslog::unwrap_syslog(bytes);
            for (line, text) in &unwrapped.unparsed {
                extractor.push(Item::Unparsed {
                    reason: crate::record::Unparsed::BadSyslog,
                    line: *line,
                    text: Cow::Borrowed(text.as_str()),
                });
            }
            let map = |line: u64| -> u64 {
                line.checked_sub(1)
                    .and_then(|i| unwrapped.line_map.get(i as usize))
                    .copied()
                    .unwrap_or(line)
            };
            stderr::decode_recycling(&unwrapped.text, prefix, 0, &stderr_options, &mut |item| {
                extractor.push_returning(remap_lines(item, &map))
            });
        }
    }
    extractor.finish()
}

/// Decodes `bytes` and returns its events, single-threaded, the whole
/// input at once (the reference the parallel engine must equal).
pub fn parse_bytes(
    bytes: &[u8],
    detected: &Detected,
    options: &ParseOptions,
    catalog: &Catalog,
    server: Name,
    input: Name,
) -> Parsed {
    let (outs, stats) = extract_bytes(bytes, detected, options, catalog, server, input);
    let mut enricher = Enricher::new(catalog);
    let mut events = Vec::new();
    for out in outs {
        enricher.push(out, &mut |e| events.push(*e));
    }
    enricher.finish(&mut |e| events.push(*e));
    Parsed { events, stats }
}

/// Maps line numbers of rebuilt syslog text back to the syslog file.
fn remap_lines<'a>(item: Item<'a>, map: &dyn Fn(u64) -> u64) -> Item<'a> {
    match item {
        Item::Record(mut r) => {
            r.line = map(r.line);
            r.last_line = map(r.last_line);
            Item::Record(r)
        }
        Item::Quiet(mut q) => {
            q.line = map(q.line);
            q.last_line = map(q.last_line);
            Item::Quiet(q)
        }
        Item::Unparsed { reason, line, text } => Item::Unparsed {
            reason,
            line: map(line),
            text,
        },
        Item::Suspect {
            mut head,
            tail_lines,
        } => {
            head.line = map(head.line);
            head.last_line = map(head.last_line);
            Item::Suspect {
                head,
                tail_lines: tail_lines.into_iter().map(map).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preset an exhaustive search picks: every preset's full fit,
    /// the best rank, the earlier preset among equals.
    fn exhaustive(text: &[u8], catalog: &Catalog) -> Option<&'static str> {
        let sample = detect_sample(text);
        let mut best: Option<(&'static str, Fit)> = None;
        for (preset, prefix, escapes) in compiled_presets() {
            let Some(fit) = fit(&prefix, escapes, &sample, catalog, None) else {
                panic!("a fit without a floor is complete");
            };
            if best.is_none_or(|(_, b)| fit.rank() > b.rank()) {
                best = Some((preset.name.as_str(), fit));
            }
        }
        best.filter(|(_, fit)| fit.matched > 0 && fit.matched * 2 >= sample.len())
            .map(|(name, _)| name)
    }

    fn stderr_samples() -> Vec<Vec<u8>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut logs = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "log")
                    && let Ok(bytes) = std::fs::read(&path)
                {
                    logs.push(bytes);
                }
            }
        }
        logs
    }

    /// Stopping a preset once it cannot win changes no choice: on every
    /// bundled `.log` sample, and on mixtures of two samples' first lines
    /// (near-ties, where the order of the presets decides).
    #[test]
    fn pruned_detection_picks_what_the_exhaustive_search_picks() {
        let catalog = Catalog::builtin();
        let logs = stderr_samples();
        assert!(logs.len() >= 20, "only {} samples", logs.len());
        let mut texts: Vec<Vec<u8>> = logs.clone();
        for (i, a) in logs.iter().enumerate() {
            let b = &logs[(i + 1) % logs.len()];
            for share in [40, 100, 160] {
                let head: Vec<&[u8]> = a.split(|&c| c == b'\n').take(share).collect();
                let tail: Vec<&[u8]> = b.split(|&c| c == b'\n').take(200 - share).collect();
                let mut mixed = head.join(&b'\n');
                mixed.push(b'\n');
                mixed.extend_from_slice(&tail.join(&b'\n'));
                texts.push(mixed);
            }
        }
        let mut errors = 0;
        for text in &texts {
            let pruned = detect_prefix(text, catalog).ok().map(|(_, name)| name);
            assert_eq!(pruned, exhaustive(text, catalog));
            errors += usize::from(pruned.is_none());
        }
        // Some mixtures fit no preset: the error path is covered too.
        assert!(
            errors > 0 && errors < texts.len(),
            "{errors} of {}",
            texts.len()
        );
    }
}
