//! Following one log file as PostgreSQL appends to it (`audit --follow`,
//! like `tail -f`): sessions are handed out as soon as they end.
//!
//! - The file is read from its start, then polled for growth every
//!   [`FollowOptions::poll`]. Only complete records are decoded: bytes
//!   up to the last record boundary the format allows (`frame`), and the
//!   rest once the file has been quiet for [`FollowOptions::settle`] and
//!   ends with a newline (PostgreSQL writes a record with its continuation
//!   lines at once, so a quiet file holds no half record).
//! - Attempts that have not been authorized within PostgreSQL's longest
//!   authentication timeout ([`ABANDON_AFTER_MS`], 10 min) are closed as
//!   abandoned. The log's own clock stops when the server is quiet, so
//!   while the file is quiet the time it has been quiet is added to it
//!   (not the wall clock: a server's clock may be skewed, and an old file
//!   read from its start must not look stale). Authorized sessions stay
//!   open until their end is logged.
//! - The format is detected once, on the first 256 KiB or the first quiet
//!   moment. syslog files are not followed (their records are rebuilt
//!   across the whole input).
//! - A file that shrinks (truncated in place) is read again from its start;
//!   a file renamed away by rotation is not followed to its successor.
//!
//! - A successful login is announced before its session ends
//!   ([`Update::Established`]) once nothing refused it for
//!   [`ESTABLISHED_AFTER_MS`](crate::session::ESTABLISHED_AFTER_MS) (1 s) of log time or quiet time, so a SIEM
//!   sees a logon when it happens, not at disconnection; the session is
//!   handed out again when it ends ([`Update::Ended`]).
//!
//! Filters and output are the caller's: `each` receives every update.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::event::Event;
use crate::extract::{Enricher, Out};
use crate::frame::{self, Framing};
use crate::message::Catalog;
use crate::name::Name;
use crate::pipeline::{self, Detected, ParseOptions};
use crate::session::{ABANDON_AFTER_MS, Session, Stitcher};
use crate::source;

/// Bytes read per round before decoding what is complete.
const READ_BUDGET: usize = 4 << 20;

/// How often, while the file is quiet, attempts are checked for staleness.
const STALE_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Bytes read before the format is detected (unless the file goes quiet first).
const DETECT_BYTES: usize = 256 * 1024;

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// How often the file is checked for growth.
    pub poll: Duration,
    /// How long the file must be quiet before its last record is taken as
    /// complete and stale attempts are closed.
    pub settle: Duration,
    /// Stop (closing every open session, as at the end of an input) after
    /// the file has been quiet this long; `None` follows until interrupted.
    pub exit_after_idle: Option<Duration>,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll: Duration::from_millis(250),
            settle: Duration::from_secs(1),
            exit_after_idle: None,
        }
    }
}

/// What the follower hands out.
#[derive(Debug)]
pub enum Update {
    /// A login that succeeded, its session still open (`end` unknown).
    Established(Session),
    /// A session that ended (or was closed as abandoned or open); its
    /// `logon_announced()` says whether it was announced before.
    Ended(Session),
}

/// Why following stopped early.
#[derive(Debug)]
pub enum FollowError {
    /// Reading the file failed.
    Input(io::Error),
    /// The format could not be recognised, or is syslog.
    Format(String),
    /// `each` failed (writing the output).
    Output(io::Error),
}

/// Follows `path`; calls `on_detected` once with the detected format and
/// `each` with every session as it ends. Returns only on error or after
/// `exit_after_idle`.
pub fn follow(
    path: &Path,
    parse: &ParseOptions,
    catalog: &Catalog,
    server: Option<Name>,
    options: &FollowOptions,
    on_detected: &mut dyn FnMut(&Detected),
    each: &mut dyn FnMut(Update) -> io::Result<()>,
) -> Result<(), FollowError> {
    let mut file = File::open(path).map_err(FollowError::Input)?;
    let label = Name::new(path.to_string_lossy().as_ref());
    let server = server.unwrap_or_else(|| Name::new(source::server_label(path).as_str()));
    let mut state = State {
        catalog,
        parse,
        server,
        label,
        enricher: Enricher::new(catalog),
        stitcher: Stitcher::new(),
        detected: None,
        line_base: 0,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut offset: u64 = 0;
    let mut last_growth = Instant::now();
    let mut settled = false;
    let mut last_stale_check = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // Truncated in place: start again.
        let len = file.metadata().map_err(FollowError::Input)?.len();
        if len < offset {
            file.seek(SeekFrom::Start(0)).map_err(FollowError::Input)?;
            offset = 0;
            pending.clear();
        }
        // At most READ_BUDGET per round, so a large file already on disk
        // is decoded piece by piece (memory stays bounded).
        let mut read_now = 0usize;
        let mut more = false;
        loop {
            if read_now >= READ_BUDGET {
                more = true;
                break;
            }
            let n = file.read(&mut buf).map_err(FollowError::Input)?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            read_now += n;
            pending.extend_from_slice(&buf[..n]);
        }
        let grew = read_now > 0;
        if grew {
            settled = false;
        }
        // Quiet: at the end of the file, with nothing new for `settle`
        // (counted from the end of the last round that read something, so
        // the time spent decoding is not mistaken for quiet).
        let quiet = !grew && last_growth.elapsed() >= options.settle;
        if state.detected.is_none()
            && (pending.len() >= DETECT_BYTES || (quiet && !pending.is_empty()))
        {
            match pipeline::detect(&pending, parse, catalog) {
                Ok(Detected::Syslog { .. }) => {
                    return Err(FollowError::Format(
                        "syslog files cannot be followed; follow the csvlog, jsonlog or stderr log"
                            .into(),
                    ));
                }
                Ok(d) => {
                    on_detected(&d);
                    state.detected = Some(d);
                }
                Err(e) if pending.len() >= DETECT_BYTES => {
                    return Err(FollowError::Format(e.to_string()));
                }
                Err(_) => {}
            }
        }
        if state.detected.is_some() {
            let complete = if quiet && pending.ends_with(b"\n") {
                pending.len()
            } else {
                state.last_boundary(&pending)
            };
            if complete > 0 {
                state.decode(&pending[..complete], each)?;
                pending.drain(..complete);
            }
            if quiet && !settled {
                settled = true;
                let quiet_ms = i64::try_from(last_growth.elapsed().as_millis()).unwrap_or(i64::MAX);
                state.settle(quiet_ms, each)?;
            }
            if quiet && last_stale_check.elapsed() >= STALE_CHECK_EVERY {
                last_stale_check = Instant::now();
                let quiet_ms = i64::try_from(last_growth.elapsed().as_millis()).unwrap_or(i64::MAX);
                state.close_stale(quiet_ms, each)?;
            }
        }
        if grew {
            last_growth = Instant::now();
        }
        if let Some(idle) = options.exit_after_idle
            && !grew
            && last_growth.elapsed() >= idle
            && (state.detected.is_some() || pending.is_empty())
        {
            if state.detected.is_some() && !pending.is_empty() {
                state.decode(&pending, each)?;
            }
            return state.finish(each);
        }
        if !more {
            std::thread::sleep(options.poll);
        }
    }
}

/// What persists between polls.
struct State<'a> {
    catalog: &'a Catalog,
    parse: &'a ParseOptions,
    server: Name,
    label: Name,
    enricher: Enricher<'a>,
    stitcher: Stitcher,
    detected: Option<Detected>,
    /// Lines before the next byte to decode.
    line_base: u64,
}

impl State<'_> {
    /// The end of the last complete record in `pending` (0 if none).
    fn last_boundary(&self, pending: &[u8]) -> usize {
        let framing = match &self.detected {
            Some(Detected::Stderr { prefix, .. }) => Framing::Stderr {
                prefix: prefix.clone(),
                max_line_bytes: self.parse.max_line_bytes,
            },
            Some(Detected::Csvlog) => Framing::Csv,
            Some(Detected::Jsonlog) => Framing::JsonLines,
            Some(Detected::Syslog { .. }) | None => return 0,
        };
        frame::cut_points(pending, &framing, 1)
            .last()
            .copied()
            .unwrap_or(0)
    }

    /// Decodes complete records and hands out the sessions that ended.
    fn decode(
        &mut self,
        bytes: &[u8],
        each: &mut dyn FnMut(Update) -> io::Result<()>,
    ) -> Result<(), FollowError> {
        let Some(detected) = &self.detected else {
            return Ok(());
        };
        let (outs, _stats) = pipeline::extract_bytes(
            bytes,
            detected,
            self.parse,
            self.catalog,
            self.server,
            self.label,
        );
        let base = self.line_base;
        let mut released: Vec<Box<Event>> = Vec::new();
        for mut out in outs {
            if let Out::Event { event, .. } = &mut out {
                shift_lines(event, base);
            }
            self.enricher.push(out, &mut |e| released.push(e));
        }
        self.line_base += memchr::memchr_iter(b'\n', bytes).count() as u64;
        self.stitch(&released, 0, each)
    }

    fn stitch(
        &mut self,
        events: &[Box<Event>],
        quiet_ms: i64,
        each: &mut dyn FnMut(Update) -> io::Result<()>,
    ) -> Result<(), FollowError> {
        for event in events {
            self.stitcher.push(event);
        }
        self.hand_out(quiet_ms, each)
    }

    /// The file went quiet: release what the enricher holds (events
    /// waiting for a later record to confirm their TLS fields).
    fn settle(
        &mut self,
        quiet_ms: i64,
        each: &mut dyn FnMut(Update) -> io::Result<()>,
    ) -> Result<(), FollowError> {
        let mut released = Vec::new();
        self.enricher.finish(&mut |e| released.push(e));
        self.stitch(&released, quiet_ms, each)
    }

    /// Closes the attempts that can no longer authenticate, the file
    /// having been quiet for `quiet_ms`.
    fn close_stale(
        &mut self,
        quiet_ms: i64,
        each: &mut dyn FnMut(Update) -> io::Result<()>,
    ) -> Result<(), FollowError> {
        self.stitcher.close_stale(quiet_ms);
        self.hand_out(quiet_ms, each)
    }

    /// Hands out the sessions that ended, then the logins established
    /// (counting `quiet_ms` of quiet input).
    fn hand_out(
        &mut self,
        quiet_ms: i64,
        each: &mut dyn FnMut(Update) -> io::Result<()>,
    ) -> Result<(), FollowError> {
        for session in self.stitcher.take_done() {
            each(Update::Ended(session)).map_err(FollowError::Output)?;
        }
        for session in self.stitcher.take_established(quiet_ms) {
            each(Update::Established(session)).map_err(FollowError::Output)?;
        }
        Ok(())
    }

    /// Stops following: everything still open is closed as at the end of
    /// an input.
    fn finish(mut self, each: &mut dyn FnMut(Update) -> io::Result<()>) -> Result<(), FollowError> {
        let mut released = Vec::new();
        self.enricher.finish(&mut |e| released.push(e));
        self.stitch(&released, 0, each)?;
        for session in self.stitcher.finish() {
            each(Update::Ended(session)).map_err(FollowError::Output)?;
        }
        Ok(())
    }
}

fn shift_lines(event: &mut Event, base: u64) {
    if let Some(source) = &mut event.source {
        source.line += base;
    }
    for related in &mut event.related_sources {
        related.line += base;
    }
}

/// The abandon delay, for messages and docs.
pub const ABANDON_DELAY_MINUTES: i64 = ABANDON_AFTER_MS / 60_000;
