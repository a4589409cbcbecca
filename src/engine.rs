//! The parallel pipeline for one input: a reader thread streams blocks
//! (decompressing gzip in its own stage), `frame` cuts them into chunks at
//! record boundaries, rayon decodes and extracts chunks in parallel, and the
//! results are fed in input order to the sequential [`Enricher`] and on to
//! the caller. Memory is bounded by the batch size, not the input size, and
//! the events are the same for any thread count and chunk size.

use std::io;
use std::sync::Arc;

use rayon::prelude::*;

use crate::cloudwatch::payload::{self, Sniffed};
use crate::event::Event;
use crate::extract::{Enricher, Out, Stats};
use crate::frame::{self, Framing};
use crate::message::Catalog;
use crate::pipeline::{self, DetectError, Detected, FormatChoice, ParseOptions};
use crate::source::{self, Block, InputSpec, SourceError};

/// How the engine splits and schedules work.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads (1 = everything on the calling thread).
    pub threads: usize,
    /// Target chunk size in bytes (one unit of parallel work).
    pub chunk_bytes: usize,
    /// Size of the blocks the reader thread sends.
    pub block_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_bytes: 1 << 20,
            block_bytes: 4 << 20,
        }
    }
}

/// Bytes read before the format is detected.
const DETECT_BYTES: usize = 256 * 1024;

/// What happened to one input.
pub struct InputResult {
    pub label: Arc<str>,
    pub server: Arc<str>,
    /// `None` when nothing was read (empty input or a read error at once).
    pub detected: Option<Result<Detected, DetectError>>,
    pub stats: Stats,
    pub error: Option<SourceError>,
    /// The whole input, when it is CloudWatch data (a subscription payload,
    /// CLI JSON, an `iam-db-auth-error` log) rather than a PostgreSQL log:
    /// the caller decodes it (`cloudwatch::payload`) and runs its streams.
    pub captured: Option<(Sniffed, Vec<u8>)>,
}

/// A worker pool (or none, for one thread).
pub struct Engine {
    options: EngineOptions,
    pool: Option<rayon::ThreadPool>,
}

impl Engine {
    pub fn new(options: EngineOptions) -> io::Result<Engine> {
        let pool = if options.threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(options.threads)
                    .thread_name(|i| format!("pgtrail-worker-{i}"))
                    .build()
                    .map_err(io::Error::other)?,
            )
        } else {
            None
        };
        Ok(Engine { options, pool })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Maps `items` in slices of `per_task` on the worker pool, keeping order
    /// (used to serialise output in parallel).
    pub fn map_slices<T: Sync, R: Send>(
        &self,
        items: &[T],
        per_task: usize,
        f: impl Fn(&[T]) -> R + Sync + Send,
    ) -> Vec<R> {
        let per_task = per_task.max(1);
        match &self.pool {
            Some(pool) if items.len() > per_task => {
                pool.install(|| items.par_chunks(per_task).map(&f).collect())
            }
            _ => items.chunks(per_task).map(f).collect(),
        }
    }

    /// Reads one input and feeds its events, in order, to `emit` through
    /// `enricher` (which carries per-process state across inputs of a run).
    /// `server` overrides the label derived from the file name.
    pub fn run(
        &self,
        spec: &InputSpec,
        parse: &ParseOptions,
        catalog: &Catalog,
        server: Option<&Arc<str>>,
        enricher: &mut Enricher<'_>,
        emit: &mut dyn FnMut(Vec<Box<Event>>) -> io::Result<()>,
    ) -> io::Result<InputResult> {
        let stream = source::stream(spec, self.options.block_bytes, 2);
        let label = stream.label.clone();
        let server = server.cloned().unwrap_or_else(|| stream.server.clone());
        let mut result = InputResult {
            label: label.clone(),
            server: server.clone(),
            detected: None,
            stats: Stats::default(),
            error: None,
            captured: None,
        };
        let mut pending: Vec<u8> = Vec::new();
        let mut framing: Option<Framing> = None;
        // Lines before `pending` starts.
        let mut line_base: u64 = 0;
        let batch = self.options.chunk_bytes * self.options.threads.max(1);
        let mut at_end = false;
        // Output errors stop the run; they are returned after cleanup.
        let mut failed: Option<io::Error> = None;
        while !at_end {
            match stream.blocks.recv() {
                Ok(Block::Data(data)) => pending.extend_from_slice(&data),
                Ok(Block::Error(e)) => {
                    result.error = Some(e);
                    at_end = true;
                }
                Err(_) => at_end = true,
            }
            if framing.is_none() {
                if pending.len() < DETECT_BYTES && !at_end {
                    continue;
                }
                if pending.is_empty() {
                    break;
                }
                if parse.format == FormatChoice::Auto
                    && let Some(kind) = payload::sniff(&pending)
                {
                    // CloudWatch data is small and not streamable: read it all.
                    while !at_end {
                        match stream.blocks.recv() {
                            Ok(Block::Data(data)) => pending.extend_from_slice(&data),
                            Ok(Block::Error(e)) => {
                                result.error = Some(e);
                                at_end = true;
                            }
                            Err(_) => at_end = true,
                        }
                    }
                    result.captured = Some((kind, std::mem::take(&mut pending)));
                    return Ok(result);
                }
                let detected = pipeline::detect(&pending, parse, catalog);
                framing = match &detected {
                    Ok(Detected::Stderr { prefix, .. }) => Some(Framing::Stderr(prefix.clone())),
                    Ok(Detected::Csvlog) => Some(Framing::Csv),
                    Ok(Detected::Jsonlog) => Some(Framing::JsonLines),
                    Ok(Detected::Syslog { .. }) => Some(Framing::Whole),
                    Err(_) => None,
                };
                let ok = detected.is_ok();
                result.detected = Some(detected);
                if !ok {
                    return Ok(result);
                }
            }
            let Some(framing_now) = &framing else {
                continue;
            };
            if !at_end && (pending.len() < batch || matches!(framing_now, Framing::Whole)) {
                continue;
            }
            let cuts = if at_end {
                let mut cuts = frame::cut_points(&pending, framing_now, self.options.chunk_bytes);
                cuts.push(pending.len());
                cuts
            } else {
                frame::cut_points(&pending, framing_now, self.options.chunk_bytes)
            };
            let Some(&consumed) = cuts.last() else {
                continue;
            };
            let Some(Ok(detected)) = &result.detected else {
                break;
            };
            let outputs =
                self.decode_chunks(&pending, &cuts, detected, parse, catalog, &server, &label);
            let mut released = Vec::new();
            for (outs, stats, lines) in outputs {
                result.stats.add(&stats);
                for mut out in outs {
                    if let Out::Event { event, .. } = &mut out {
                        shift_lines(event, line_base);
                    }
                    enricher.push(out, &mut |e| released.push(e));
                }
                line_base += lines;
            }
            pending.drain(..consumed);
            if let Err(e) = emit(released) {
                failed = Some(e);
                break;
            }
        }
        drop(stream);
        match failed {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// Decodes `buf[..cuts.last()]` as chunks ending at `cuts`, in parallel.
    /// Returns per chunk: the extractor's output (line numbers relative to
    /// the chunk), its stats, and its number of lines.
    #[allow(clippy::too_many_arguments)]
    fn decode_chunks(
        &self,
        buf: &[u8],
        cuts: &[usize],
        detected: &Detected,
        parse: &ParseOptions,
        catalog: &Catalog,
        server: &Arc<str>,
        label: &Arc<str>,
    ) -> Vec<(Vec<Out>, Stats, u64)> {
        let ranges: Vec<(usize, usize)> = cuts
            .iter()
            .scan(0usize, |start, &end| {
                let range = (*start, end);
                *start = end;
                Some(range)
            })
            .collect();
        let one = |&(start, end): &(usize, usize)| {
            let chunk = &buf[start..end];
            let lines = memchr::memchr_iter(b'\n', chunk).count() as u64
                + u64::from(!chunk.is_empty() && !chunk.ends_with(b"\n"));
            let (outs, stats) = decode_chunk(chunk, detected, parse, catalog, server, label);
            (outs, stats, lines)
        };
        match &self.pool {
            Some(pool) if ranges.len() > 1 => pool.install(|| ranges.par_iter().map(one).collect()),
            _ => ranges.iter().map(one).collect(),
        }
    }
}

/// Decodes and extracts one chunk (line numbers relative to it).
fn decode_chunk(
    chunk: &[u8],
    detected: &Detected,
    parse: &ParseOptions,
    catalog: &Catalog,
    server: &Arc<str>,
    label: &Arc<str>,
) -> (Vec<Out>, Stats) {
    pipeline::extract_bytes(
        chunk,
        detected,
        parse,
        catalog,
        server.clone(),
        label.clone(),
    )
}

fn shift_lines(event: &mut Event, base: u64) {
    if base == 0 {
        return;
    }
    if let Some(source) = &mut event.source {
        source.line += base;
    }
    for related in &mut event.related_sources {
        related.line += base;
    }
}

/// The time of the first event in the first block of an input (to order
/// the files of one server, such as hourly files given in any order).
/// `None` for stdin, unreadable or unrecognised inputs.
pub fn first_event_time(spec: &InputSpec, parse: &ParseOptions, catalog: &Catalog) -> Option<i64> {
    if matches!(spec, InputSpec::Stdin) {
        return None;
    }
    let stream = source::stream(spec, DETECT_BYTES, 1);
    let mut head = Vec::new();
    while head.len() < DETECT_BYTES {
        match stream.blocks.recv() {
            Ok(Block::Data(data)) => head.extend_from_slice(&data),
            _ => break,
        }
    }
    drop(stream);
    // Only whole lines.
    let end = memchr::memrchr(b'\n', &head).map_or(head.len(), |nl| nl + 1);
    let head = &head[..end];
    let detected = pipeline::detect(head, parse, catalog).ok()?;
    let (outs, _) = pipeline::extract_bytes(
        head,
        &detected,
        parse,
        catalog,
        Arc::from(""),
        Arc::from(""),
    );
    outs.iter()
        .filter_map(|out| match out {
            Out::Event { event, .. } => event.time_ms,
            Out::AppSeen { .. } => None,
        })
        .min()
}
