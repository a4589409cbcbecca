//! The loop over a run's inputs: files, directories and stdin through the
//! engine; CloudWatch data found in them (subscription payloads, CLI JSON,
//! `iam-db-auth-error` logs) decoded and run stream by stream; and the live
//! CloudWatch source (`--log-group`…), once or polling with `--follow`,
//! with its checkpoint. Events go to the caller's sink in order; the stats
//! lines and error messages go to stderr; the exit code is accumulated.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{exit, stats_line};
use crate::cloud::CloudContext;
use crate::cloudwatch::checkpoint::{self, Checkpoint};
use crate::cloudwatch::events::LineMap;
use crate::cloudwatch::fetch::{FetchOptions, Fetcher, GroupKind, Target};
use crate::cloudwatch::payload::{self, Sniffed};
use crate::cloudwatch::streams::{StreamInput, stream_inputs};
use crate::engine::{Engine, Flow, InputResult};
use crate::event::Event;
use crate::extract::{Enricher, Stats};
use crate::iam_auth::IamAuthErrors;
use crate::message::Catalog;
use crate::name::Name;
use crate::pipeline::{Detected, FormatChoice, ParseOptions};
use crate::source::InputSpec;

/// What a reader hands to the output side.
pub enum Feed {
    /// Events, in order.
    Events(Vec<Box<Event>>),
    /// A batch is complete: flush (and sync an output file); return the
    /// output file's length, if the output is a file.
    Commit,
}

/// The output side of a run.
pub type EventSink<'a> = dyn FnMut(Feed) -> io::Result<Option<u64>> + 'a;

/// The live CloudWatch source, as the command line asked for it.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub fetch: FetchOptions,
    /// Epoch ms, inclusive.
    pub start_ms: Option<i64>,
    /// Epoch ms, inclusive.
    pub end_ms: Option<i64>,
    pub follow: bool,
    pub poll_interval: Duration,
    pub overlap_ms: i64,
    pub checkpoint: Option<PathBuf>,
    /// Stop after this many polls (tests, cron-like use of `--follow`).
    pub max_polls: Option<u64>,
}

impl LiveOptions {
    pub fn is_live(&self) -> bool {
        !self.fetch.groups.is_empty() || !self.fetch.group_prefixes.is_empty()
    }
}

/// What a run learns beside the events, for the session side: the
/// `iam-db-auth-error` lines, and where each CloudWatch server runs.
#[derive(Debug, Default)]
pub struct RunShared {
    pub iam: IamAuthErrors,
    /// By `server` label (the stream): the log group and what its name says.
    pub clouds: HashMap<Name, Arc<CloudContext>>,
}

impl RunShared {
    /// Adds what the run knows to a finished session: the IAM error reason
    /// of a PAM failure, the CloudWatch context of its server.
    pub fn complete(&mut self, session: &mut crate::session::Session) {
        self.iam.attach(session);
        if session.cloud.is_none() {
            session.cloud = self.clouds.get(&session.server).cloned();
        }
    }
}

/// The context a log group's name gives: `/aws/rds/instance/<id>/…` names
/// the DB instance.
pub fn cloud_context(group: &str, region: Option<&str>) -> CloudContext {
    let db_instance_id = group
        .strip_prefix("/aws/rds/instance/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    CloudContext {
        log_group: Some(group.to_owned()),
        db_instance_id,
        region: region.map(str::to_owned),
        ..CloudContext::default()
    }
}

/// State shared by every input of a run.
pub struct Reader<'r> {
    pub quiet: bool,
    engine: Arc<Engine>,
    catalog: &'static Catalog,
    enricher: Enricher<'static>,
    total: Stats,
    skipped: Vec<Name>,
    parsed_inputs: usize,
    pub code: i32,
    /// CloudWatch inputs: line → event id, by input label.
    maps: HashMap<Name, StreamMap>,
    /// The `iam-db-auth-error` lines and server contexts of the run.
    pub shared: &'r RefCell<RunShared>,
    /// The region asked for (`--region`), for the contexts.
    pub region: Option<String>,
    /// The format found for each CloudWatch stream, reused by later polls
    /// (a small batch may not be enough to detect it again).
    fixed: HashMap<Name, ParseOptions>,
    server_override: Option<Name>,
}

/// A CloudWatch input's line map, and which events of it are new.
struct StreamMap {
    lines: LineMap,
    /// With a checkpoint, a poll parses the whole re-read window (so late
    /// events find their record's context) but emits only the events whose
    /// event id was not emitted before.
    emit_only: Option<HashSet<Arc<str>>>,
}

/// Puts CloudWatch event ids on the events of CloudWatch inputs, and drops
/// those of a re-read window that were emitted by an earlier poll.
#[allow(clippy::vec_box)] // the engine hands events over boxed
fn annotate(maps: &HashMap<Name, StreamMap>, events: &mut Vec<Box<Event>>) {
    if maps.is_empty() {
        return;
    }
    events.retain_mut(|event| {
        let map = event.source.as_ref().and_then(|s| maps.get(&s.input));
        let Some(map) = map else {
            return true;
        };
        map.lines.annotate(event);
        match (
            &map.emit_only,
            event.source.as_ref().and_then(|s| s.event_id.as_ref()),
        ) {
            (Some(only), Some(id)) => only.contains(id),
            _ => true,
        }
    });
}

/// Parse options that reuse a detected format.
fn fixed_options(detected: &Detected, base: &ParseOptions) -> ParseOptions {
    let (format, prefix) = match detected {
        Detected::Stderr { prefix, .. } => (FormatChoice::Stderr, Some(prefix.clone())),
        Detected::Syslog { prefix, .. } => (FormatChoice::Syslog, Some(prefix.clone())),
        Detected::Csvlog => (FormatChoice::Csvlog, None),
        Detected::Jsonlog => (FormatChoice::Jsonlog, None),
    };
    ParseOptions {
        format,
        prefix,
        max_line_bytes: base.max_line_bytes,
        messages: base.messages,
    }
}

impl<'r> Reader<'r> {
    pub fn new(
        engine: Engine,
        quiet: bool,
        server_override: Option<Name>,
        shared: &'r RefCell<RunShared>,
    ) -> Reader<'r> {
        let catalog = Catalog::builtin();
        Reader {
            quiet,
            engine: Arc::new(engine),
            catalog,
            enricher: Enricher::new(catalog),
            total: Stats::default(),
            skipped: Vec::new(),
            parsed_inputs: 0,
            code: exit::OK,
            maps: HashMap::new(),
            shared,
            region: None,
            fixed: HashMap::new(),
            server_override,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Reads one input through the engine; CloudWatch data found in it is
    /// decoded and run stream by stream. `walked`: found in a directory
    /// (not a PostgreSQL log → skipped with a note, not an error).
    pub fn run_spec(
        &mut self,
        spec: &InputSpec,
        walked: bool,
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<Option<Detected>> {
        let Reader {
            engine,
            catalog,
            enricher,
            maps,
            server_override,
            ..
        } = self;
        let engine: &Engine = engine;
        let maps: &HashMap<Name, StreamMap> = maps;
        let result = engine.run(
            spec,
            options,
            catalog,
            *server_override,
            enricher,
            &mut |mut batch| {
                annotate(maps, &mut batch);
                emit(Feed::Events(batch)).map(|_| ())
            },
        )?;
        self.note_error(&result);
        if let Some((kind, bytes)) = &result.captured {
            self.run_captured(&result, *kind, bytes, options, emit)?;
            return Ok(None);
        }
        Ok(self.report(result, walked))
    }

    /// Reads inputs in order through the engine, the next one decoding
    /// while the current one ends (see [`Engine::run_many`]). `walked` as
    /// for [`Reader::run_spec`]. An input that turns out to be CloudWatch
    /// data stops the stream there: its streams run before the next input.
    pub fn run_specs(
        &mut self,
        inputs: &[(InputSpec, bool)],
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<()> {
        let specs: Vec<InputSpec> = inputs.iter().map(|(spec, _)| spec.clone()).collect();
        let mut next = 0;
        while next < specs.len() {
            let first = next;
            // The engine holds the enricher and the line maps while the
            // per-input reports below need the rest of `self`.
            let engine = Arc::clone(&self.engine);
            let catalog = self.catalog;
            let server_override = self.server_override;
            let mut enricher = std::mem::replace(&mut self.enricher, Enricher::new(catalog));
            let maps = std::mem::take(&mut self.maps);
            let mut captured = None;
            let run = engine.run_many(
                &specs[next..],
                options,
                catalog,
                server_override,
                &mut enricher,
                &mut |mut batch| {
                    annotate(&maps, &mut batch);
                    emit(Feed::Events(batch)).map(|_| ())
                },
                &mut |result| {
                    let walked = inputs[next].1;
                    next += 1;
                    self.note_error(&result);
                    if result.captured.is_some() {
                        captured = Some(result);
                        return Flow::Stop;
                    }
                    self.report(result, walked);
                    Flow::Continue
                },
            );
            self.enricher = enricher;
            self.maps = maps;
            run?;
            if next == first {
                // Every run ends at least one input; never loop on none.
                return Err(io::Error::other("the engine ended no input"));
            }
            if let Some(result) = captured
                && let Some((kind, bytes)) = &result.captured
            {
                self.run_captured(&result, *kind, bytes, options, emit)?;
            }
        }
        Ok(())
    }

    /// The read error that ended an input, if any.
    fn note_error(&mut self, result: &InputResult) {
        if let Some(err) = &result.error {
            note!("pgtrail: error: {err}");
            self.code = self.code.max(exit::INPUT_ERROR);
        }
    }

    /// Stats line, warnings and exit code of one engine run.
    fn report(&mut self, result: InputResult, walked: bool) -> Option<Detected> {
        let detected = match result.detected {
            None => {
                if result.error.is_none() && !self.quiet {
                    note!("pgtrail: {}: empty", result.label);
                }
                return None;
            }
            Some(Ok(d)) => d,
            Some(Err(_)) if walked => {
                self.skipped.push(result.label);
                return None;
            }
            Some(Err(e)) => {
                note!("pgtrail: error: {}: {e}", result.label);
                self.code = self.code.max(exit::UNRECOGNISED);
                return None;
            }
        };
        self.parsed_inputs += 1;
        if !self.quiet {
            note!(
                "pgtrail: {}: {}",
                result.label,
                stats_line(&detected, &result.stats)
            );
        }
        if result.stats.records == 0 {
            note!(
                "pgtrail: error: {}: no record recognised ({}); check --log-format/--prefix",
                result.label,
                detected
            );
            self.code = self.code.max(exit::UNRECOGNISED);
        } else if result.stats.events == 0 && !self.quiet {
            note!(
                "pgtrail: warning: {}: no connection events; is log_connections on?",
                result.label
            );
        }
        self.total.add(&result.stats);
        Some(detected)
    }

    /// An input that turned out to be CloudWatch data.
    fn run_captured(
        &mut self,
        result: &InputResult,
        kind: Sniffed,
        bytes: &[u8],
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<()> {
        let label = &result.label;
        match kind {
            Sniffed::IamAuthErrors => {
                let stats =
                    self.shared
                        .borrow_mut()
                        .iam
                        .read_text(bytes, *label, result.server, &|_| (None, None));
                self.report_iam(label, &stats);
                Ok(())
            }
            Sniffed::CloudWatchJson => {
                let default_stream = self
                    .server_override
                    .as_deref()
                    .unwrap_or(&result.server)
                    .to_owned();
                let decoded = payload::decode(bytes, &default_stream);
                if !self.quiet {
                    note!(
                        "pgtrail: {label}: CloudWatch data: {} events ({} DATA_MESSAGE, {} CONTROL_MESSAGE skipped, {} CLI documents)",
                        decoded.events.len(),
                        decoded.data_messages,
                        decoded.control_messages,
                        decoded.cli_documents
                    );
                }
                if let Some(e) = &decoded.error {
                    note!("pgtrail: error: {label}: {e}; the events before it were read");
                    self.code = self.code.max(exit::INPUT_ERROR);
                }
                if decoded.events.is_empty() && decoded.control_messages == 0 {
                    note!("pgtrail: error: {label}: no CloudWatch event found");
                    self.code = self.code.max(exit::UNRECOGNISED);
                }
                let inputs = stream_inputs(decoded.events, self.server_override);
                self.run_streams(inputs, options, emit)
            }
        }
    }

    fn report_iam(&mut self, label: &str, stats: &crate::iam_auth::ReadStats) {
        self.parsed_inputs += 1;
        if !self.quiet {
            note!(
                "pgtrail: {label}: iam-db-auth-error log: {} lines, {} errors, unrecognised: {}",
                stats.lines,
                stats.errors,
                stats.unrecognised
            );
        }
        if stats.errors == 0 && stats.unrecognised > 0 {
            note!("pgtrail: error: {label}: no iam-db-auth-error line recognised");
            self.code = self.code.max(exit::UNRECOGNISED);
        }
    }

    /// Runs prepared CloudWatch streams: `iam-db-auth-error` streams first
    /// (their reasons must be known when PAM failures are stitched), then
    /// the PostgreSQL streams through the engine.
    pub fn run_streams(
        &mut self,
        mut inputs: Vec<StreamInput>,
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<()> {
        inputs.sort_by_key(|i| i.kind);
        for input in inputs {
            if input.duplicates > 0 && !self.quiet {
                note!(
                    "pgtrail: {}: {} repeated events (same event id) dropped",
                    input.label,
                    input.duplicates
                );
            }
            if input.kind == GroupKind::IamAuthError {
                let map = &input.rendered.map;
                let stats = self.shared.borrow_mut().iam.read_text(
                    &input.rendered.bytes,
                    input.label,
                    input.server,
                    &|line| match map.event_at(line) {
                        Some((ts, id)) => (Some(ts), Some(id.clone())),
                        None => (None, None),
                    },
                );
                self.report_iam(&input.label, &stats);
                continue;
            }
            if let Some(group) = &input.group {
                let context = cloud_context(group, self.region.as_deref());
                self.shared
                    .borrow_mut()
                    .clouds
                    .entry(input.server)
                    .or_insert_with(|| Arc::new(context));
            }
            let options = self
                .fixed
                .get(&input.label)
                .cloned()
                .unwrap_or_else(|| options.clone());
            self.maps.insert(
                input.label,
                StreamMap {
                    lines: input.rendered.map,
                    emit_only: input.emit_only,
                },
            );
            let spec = InputSpec::Memory {
                label: input.label,
                server: input.server,
                bytes: Arc::from(input.rendered.bytes),
            };
            let saved = self.server_override.take();
            let detected = self.run_spec(&spec, false, &options, emit);
            self.server_override = saved;
            if let Some(d) = detected? {
                self.fixed
                    .entry(input.label)
                    .or_insert_with(|| fixed_options(&d, &options));
            }
        }
        Ok(())
    }

    /// Releases the events the enricher still holds.
    pub fn flush_held(&mut self, emit: &mut EventSink<'_>) -> io::Result<()> {
        let mut rest = Vec::new();
        self.enricher.finish(&mut |event| rest.push(event));
        annotate(&self.maps, &mut rest);
        emit(Feed::Events(rest)).map(|_| ())
    }

    /// The end of the run: held events, the notes about skipped files, the
    /// totals. Returns the exit code.
    pub fn finish(&mut self, emit: &mut EventSink<'_>) -> io::Result<i32> {
        self.flush_held(emit)?;
        let skipped = &self.skipped;
        if !skipped.is_empty() && !self.quiet {
            let shown: Vec<&str> = skipped.iter().take(4).map(|s| &**s).collect();
            let more = if skipped.len() > shown.len() {
                ", …"
            } else {
                ""
            };
            note!(
                "pgtrail: skipped {} files found in directories that are not PostgreSQL logs ({}{more})",
                skipped.len(),
                shown.join(", ")
            );
        }
        if self.parsed_inputs == 0 && !skipped.is_empty() {
            note!(
                "pgtrail: error: none of the {} files found is a PostgreSQL log",
                skipped.len()
            );
            self.code = self.code.max(exit::UNRECOGNISED);
        }
        if self.parsed_inputs > 1 && !self.quiet {
            note!(
                "pgtrail: total: {} inputs, {} records, {} events, {} unrecognised lines{}",
                self.parsed_inputs,
                self.total.records,
                self.total.events,
                self.total.unparsed_total(),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} files skipped", skipped.len())
                }
            );
        }
        Ok(self.code)
    }

    /// The live source: discover the streams, fetch each from its start
    /// (the checkpoint's overlap window, else `--since`, else — following —
    /// the overlap window before now), skip event ids already emitted, run
    /// the new events, commit the output, then write the checkpoint. Once,
    /// or every `poll_interval` with `--follow`.
    pub fn run_live(
        &mut self,
        live: &LiveOptions,
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<()> {
        let fetcher = match Fetcher::new(live.fetch.clone()) {
            Ok(f) => f,
            Err(e) => {
                note!("pgtrail: error: CloudWatch Logs: {e}");
                self.code = self.code.max(exit::INPUT_ERROR);
                return Ok(());
            }
        };
        let mut checkpoint = match &live.checkpoint {
            Some(path) => match Checkpoint::load(path) {
                Ok(c) => Some(c),
                Err(e) => {
                    note!("pgtrail: error: checkpoint {e}");
                    self.code = self.code.max(exit::INPUT_ERROR);
                    return Ok(());
                }
            },
            // Without a file, progress is kept in memory: a follower never
            // emits an event of the re-read window twice.
            None => Some(Checkpoint::default()),
        };
        let mut polls = 0u64;
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            match fetcher.discover() {
                Err(e) => {
                    note!("pgtrail: error: CloudWatch Logs: {e}");
                    self.code = self.code.max(exit::INPUT_ERROR);
                    if !live.follow {
                        return Ok(());
                    }
                }
                Ok(targets) => {
                    if targets.is_empty() && !self.quiet {
                        note!("pgtrail: warning: CloudWatch Logs: no log stream found");
                    }
                    self.poll(
                        &fetcher,
                        &targets,
                        live,
                        now,
                        checkpoint.as_mut(),
                        options,
                        emit,
                    )?;
                }
            }
            polls += 1;
            if !live.follow || live.max_polls.is_some_and(|m| polls >= m) {
                return Ok(());
            }
            std::thread::sleep(live.poll_interval);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn poll(
        &mut self,
        fetcher: &Fetcher,
        targets: &[Target],
        live: &LiveOptions,
        now: i64,
        checkpoint: Option<&mut Checkpoint>,
        options: &ParseOptions,
        emit: &mut EventSink<'_>,
    ) -> io::Result<()> {
        let windows: Vec<(Target, Option<i64>, Option<i64>)> = targets
            .iter()
            .map(|t| {
                let resume = checkpoint
                    .as_deref()
                    .and_then(|c| c.stream(&checkpoint::key(&t.group, &t.stream)))
                    .and_then(|s| s.resume_from(live.overlap_ms));
                let start = resume
                    .or(live.start_ms)
                    .or_else(|| live.follow.then(|| now - live.overlap_ms));
                (t.clone(), start, live.end_ms)
            })
            .collect();
        let mut emitted: Vec<(String, Vec<(String, i64)>)> = Vec::new();
        let (mut skipped, mut fresh, mut pages, mut received) = (0usize, 0usize, 0u64, 0usize);
        let seen_of = |key: &str| checkpoint.as_deref().and_then(|c| c.stream(key));
        // Streams are parsed one by one, in order, as they arrive
        // (`iam-db-auth-error` streams sort first).
        fetcher.fetch_each(&windows, &mut |f| {
            pages += f.pages;
            received += f.events.len();
            if let Some(e) = &f.error {
                note!("pgtrail: error: CloudWatch Logs: {e}; the events before it were read");
                self.code = self.code.max(exit::INPUT_ERROR);
            }
            if f.malformed > 0 {
                note!(
                    "pgtrail: warning: {}:{}: {} events without timestamp or message skipped",
                    f.target.group,
                    f.target.stream,
                    f.malformed
                );
            }
            let key = checkpoint::key(&f.target.group, &f.target.stream);
            let seen = seen_of(&key);
            let is_seen = |id: &String| seen.is_some_and(|s| s.seen.contains_key(id));
            let mut ids = Vec::new();
            let mut new = HashSet::new();
            for event in &f.events {
                match &event.event_id {
                    Some(id) if is_seen(id) => skipped += 1,
                    Some(id) => {
                        ids.push((id.clone(), event.timestamp_ms));
                        new.insert(Arc::from(id.as_str()));
                    }
                    None => {}
                }
            }
            fresh += new.len();
            // With progress to resume from, a PostgreSQL stream's whole
            // window is parsed for context and only new ids go out.
            let context = seen.is_some() && f.target.kind == GroupKind::Postgres;
            let events = if context {
                if ids.is_empty() { Vec::new() } else { f.events }
            } else {
                f.events
                    .into_iter()
                    .filter(|e| e.event_id.as_ref().is_none_or(|id| !is_seen(id)))
                    .collect()
            };
            emitted.push((key, ids));
            if events.is_empty() {
                return Ok(());
            }
            let mut inputs = stream_inputs(events, self.server_override);
            if context {
                for input in &mut inputs {
                    input.emit_only = Some(new.clone());
                }
            }
            self.run_streams(inputs, options, emit)
        })?;
        if !self.quiet {
            note!(
                "pgtrail: CloudWatch Logs: {} streams, {pages} pages, {received} events",
                windows.len()
            );
            if skipped > 0 && !live.follow {
                note!(
                    "pgtrail: CloudWatch Logs: {skipped} events already emitted (checkpoint) skipped"
                );
            }
        }
        let fetched_events = fresh;
        // Everything of this poll goes out before the checkpoint covers it.
        self.flush_held(emit)?;
        let output_len = emit(Feed::Commit)?;
        let Some(cp) = checkpoint else {
            return Ok(());
        };
        for (key, ids) in emitted {
            cp.stream_mut(&key).record(ids, live.overlap_ms, now);
        }
        cp.output_len = output_len;
        if let Some(path) = &live.checkpoint {
            if std::env::var_os("PGTRAIL_FAILPOINT").is_some_and(|v| v == "before-checkpoint") {
                // Test hook: die like `kill -9` between output and checkpoint.
                std::process::abort();
            }
            cp.save(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("writing checkpoint {}: {e}", path.display()),
                )
            })?;
        }
        if live.follow && !self.quiet && fetched_events > 0 {
            note!("pgtrail: CloudWatch Logs: poll: {fetched_events} new events");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_from_group_names() {
        let c = cloud_context("/aws/rds/instance/mydb/postgresql", Some("eu-west-1"));
        assert_eq!(c.db_instance_id.as_deref(), Some("mydb"));
        assert_eq!(
            c.log_group.as_deref(),
            Some("/aws/rds/instance/mydb/postgresql")
        );
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        let c = cloud_context("/aws/rds/cluster/shop/postgresql", None);
        assert_eq!(c.db_instance_id, None);
        assert_eq!(
            c.log_group.as_deref(),
            Some("/aws/rds/cluster/shop/postgresql")
        );
        let mut shared = RunShared::default();
        shared.clouds.insert(Name::new("db1"), Arc::new(c.clone()));
        let events = vec![{
            let mut e = Event::new(crate::event::EventKind::Received, Name::new("db1"));
            e.pid = Some(7);
            e.time_ms = Some(1);
            e
        }];
        let mut stitcher = crate::session::Stitcher::new();
        for e in &events {
            stitcher.push(e);
        }
        let mut sessions = stitcher.finish();
        shared.complete(&mut sessions[0]);
        assert_eq!(sessions[0].cloud.as_deref(), Some(&c));
    }
}
