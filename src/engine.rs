//! The parallel pipeline for one input: a reader thread streams blocks
//! (decompressing gzip in its own stage), `frame` cuts them into chunks at
//! record boundaries, rayon decodes and extracts chunks in parallel, and the
//! results are fed in input order to the sequential [`Enricher`] and on to
//! the caller. Memory is bounded by the batch size, not the input size, and
//! the events are the same for any thread count and chunk size.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

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
    /// Threads that parse, the calling thread included: it runs the
    /// in-order stage while `threads - 1` pool workers decode the next batch
    /// (1 = everything on the calling thread).
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
            chunk_bytes: 1 << 19,
            block_bytes: 1 << 20,
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
        // The calling thread is one of the threads: it runs the sequential
        // stage while the pool decodes the next batch.
        let pool = if options.threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(options.threads - 1)
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

    /// Reads one input and feeds its events, in order, to `emit` through
    /// `enricher` (which carries per-process state across inputs of a run).
    /// `server` overrides the label derived from the file name.
    ///
    /// With a worker pool, batch N+1 is decoded on the pool while batch N
    /// goes through the sequential stage (enricher, `emit`) on the calling
    /// thread; at most one batch is decoded ahead.
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
        let mut reader = Reader {
            stream: &stream,
            block_bytes: self.options.block_bytes,
            spare: None,
            pending: Vec::new(),
            at_end: false,
            error: None,
        };

        // The format, from the first bytes.
        while reader.pending.len() < DETECT_BYTES && !reader.at_end {
            reader.receive();
        }
        if reader.pending.is_empty() {
            result.error = reader.error.take();
            return Ok(result);
        }
        if parse.format == FormatChoice::Auto
            && let Some(kind) = payload::sniff(&reader.pending)
        {
            // CloudWatch data is small and not streamable: read it all.
            while !reader.at_end {
                reader.receive();
            }
            result.error = reader.error.take();
            result.captured = Some((kind, std::mem::take(&mut reader.pending)));
            return Ok(result);
        }
        let detected = match pipeline::detect(&reader.pending, parse, catalog) {
            Ok(d) => d,
            Err(e) => {
                result.detected = Some(Err(e));
                result.error = reader.error.take();
                return Ok(result);
            }
        };
        let framing = match &detected {
            Detected::Stderr { prefix, .. } => Framing::Stderr(prefix.clone()),
            Detected::Csvlog => Framing::Csv,
            Detected::Jsonlog => Framing::JsonLines,
            Detected::Syslog { .. } => Framing::Whole,
        };
        let batch_bytes =
            self.options.chunk_bytes * self.options.threads.max(1) * CHUNKS_PER_THREAD;
        let decode_one = |chunk: &[u8]| -> Decoded {
            let lines = memchr::memchr_iter(b'\n', chunk).count() as u64
                + u64::from(!chunk.is_empty() && !chunk.ends_with(b"\n"));
            let (outs, stats) = decode_chunk(chunk, &detected, parse, catalog, &server, &label);
            (outs, stats, lines)
        };

        // The sequential stage, in input order.
        let mut line_base: u64 = 0;
        let mut stats = Stats::default();
        let mut sequential = |outputs: Vec<Decoded>| -> io::Result<()> {
            let mut released = Vec::new();
            for (outs, chunk_stats, lines) in outputs {
                stats.add(&chunk_stats);
                for mut out in outs {
                    if let Out::Event { event, .. } = &mut out {
                        shift_lines(event, line_base);
                    }
                    enricher.push(out, &mut |e| released.push(e));
                }
                line_base += lines;
            }
            emit(released)
        };

        let outcome = match &self.pool {
            None => (|| {
                while let Some(batch) =
                    reader.next_batch(&framing, batch_bytes, self.options.chunk_bytes)
                {
                    let work = Work::new(batch);
                    work.help(&decode_one);
                    let (outputs, bytes) = work.into_results()?;
                    reader.recycle(bytes);
                    sequential(outputs)?;
                }
                Ok(())
            })(),
            Some(pool) => pool.in_place_scope(|scope| {
                let decode_one = &decode_one;
                let mut ahead: Option<Arc<Work>> = None;
                loop {
                    // Batch N+1 goes to the workers; the calling thread then
                    // helps finish batch N and runs it through the in-order
                    // stage while the workers decode N+1.
                    let next = reader
                        .next_batch(&framing, batch_bytes, self.options.chunk_bytes)
                        .map(|batch| {
                            let work = Arc::new(Work::new(batch));
                            for _ in 0..pool.current_num_threads() {
                                let work = Arc::clone(&work);
                                scope.spawn(move |_| work.help(decode_one));
                            }
                            work
                        });
                    if let Some(work) = ahead.take() {
                        work.help(decode_one);
                        work.wait();
                        // A worker may still hold its handle for a moment;
                        // then the buffer is not reused, which is harmless.
                        match Arc::try_unwrap(work) {
                            Ok(work) => {
                                let (outputs, bytes) = work.into_results()?;
                                reader.recycle(bytes);
                                sequential(outputs)?;
                            }
                            Err(work) => sequential(work.take_results()?)?,
                        }
                    }
                    match next {
                        Some(work) => ahead = Some(work),
                        None => return Ok(()),
                    }
                }
            }),
        };
        result.detected = Some(Ok(detected));
        result.stats = stats;
        result.error = reader.error.take();
        drop(reader);
        drop(stream);
        outcome.map(|()| result)
    }
}

/// One chunk's extractor output (line numbers relative to the chunk), its
/// stats and its number of lines.
type Decoded = (Vec<Out>, Stats, u64);

/// Chunks per thread in a batch: more than one, so that a thread that
/// finishes early (the calling thread after the in-order stage) finds
/// chunks left to decode.
const CHUNKS_PER_THREAD: usize = 2;

/// A batch being decoded. Any thread may help: each claims the next chunk
/// not yet taken, so pool workers and the calling thread (once its
/// in-order work is done) share the batch chunk by chunk. The results are
/// put in place by chunk index, so their order never depends on who
/// decoded what.
struct Work {
    batch: Batch,
    /// The next chunk index not yet claimed.
    next: AtomicUsize,
    results: Vec<Mutex<Option<Decoded>>>,
    /// Chunks decoded so far, and a signal when all are.
    done: Mutex<usize>,
    all_done: Condvar,
}

impl Work {
    fn new(batch: Batch) -> Work {
        let chunks = batch.cuts.len();
        Work {
            batch,
            next: AtomicUsize::new(0),
            results: (0..chunks).map(|_| Mutex::new(None)).collect(),
            done: Mutex::new(0),
            all_done: Condvar::new(),
        }
    }

    /// Decodes chunks until none is left to claim.
    fn help(&self, decode: &(dyn Fn(&[u8]) -> Decoded + Sync)) {
        let cuts = &self.batch.cuts;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= cuts.len() {
                return;
            }
            // Counted as done even if decoding panics, so that the
            // calling thread is not left waiting (it then finds the result
            // missing and stops the run).
            let _finished = Finished(self);
            let start = if i == 0 { 0 } else { cuts[i - 1] };
            let decoded = decode(&self.batch.bytes[start..cuts[i]]);
            *lock(&self.results[i]) = Some(decoded);
        }
    }

    fn finish_one(&self) {
        let mut done = lock(&self.done);
        *done += 1;
        if *done == self.results.len() {
            self.all_done.notify_all();
        }
    }

    /// Waits until every chunk is decoded.
    fn wait(&self) {
        let mut done = lock(&self.done);
        while *done < self.results.len() {
            done = self
                .all_done
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The decoded chunks in input order (after [`Work::wait`]); an error
    /// if a chunk has no result (its decoding panicked).
    fn take_results(&self) -> io::Result<Vec<Decoded>> {
        self.results
            .iter()
            .map(|slot| {
                lock(slot)
                    .take()
                    .ok_or_else(|| io::Error::other("a decoding task stopped without a result"))
            })
            .collect()
    }

    /// The decoded chunks and the batch's buffer, for reuse.
    fn into_results(self) -> io::Result<(Vec<Decoded>, Vec<u8>)> {
        let outputs = self.take_results()?;
        Ok((outputs, self.batch.bytes))
    }
}

/// Marks one claimed chunk as done when dropped (also on unwinding).
struct Finished<'w>(&'w Work);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish_one();
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked (a
/// decoding panic is a bug, reported by the pool; the results it did not
/// write are simply missing).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bytes of an input cut at record boundaries, ready to decode.
struct Batch {
    bytes: Vec<u8>,
    /// Exclusive chunk ends in `bytes`; the last one is `bytes.len()`.
    cuts: Vec<usize>,
}

/// The reading side of a run: blocks from the reader thread, the bytes not
/// yet decoded, and the read error if one ended the input.
struct Reader<'s> {
    stream: &'s source::Stream,
    /// Size of the blocks the stream sends.
    block_bytes: usize,
    /// A decoded batch's buffer, reused for the next one: fresh memory
    /// would be faulted in (and zeroed by the kernel) page by page.
    spare: Option<Vec<u8>>,
    pending: Vec<u8>,
    at_end: bool,
    error: Option<SourceError>,
}

impl Reader<'_> {
    /// Gives back the buffer of a batch that is decoded.
    fn recycle(&mut self, bytes: Vec<u8>) {
        self.spare = Some(bytes);
    }

    /// Waits for the next block.
    fn receive(&mut self) {
        match self.stream.blocks.recv() {
            Ok(Block::Data(data)) => self.pending.extend_from_slice(&data),
            Ok(Block::Error(e)) => {
                self.error = Some(e);
                self.at_end = true;
            }
            Err(_) => self.at_end = true,
        }
    }

    /// The next batch of about `batch_bytes`, cut into chunks of about
    /// `chunk_bytes` at record boundaries; the rest of the input at its end;
    /// `None` when everything was handed out.
    fn next_batch(
        &mut self,
        framing: &Framing,
        batch_bytes: usize,
        chunk_bytes: usize,
    ) -> Option<Batch> {
        loop {
            let whole = matches!(framing, Framing::Whole);
            if !self.at_end && (self.pending.len() < batch_bytes || whole) {
                self.receive();
                continue;
            }
            let mut cuts = frame::cut_points(&self.pending, framing, chunk_bytes);
            if self.at_end {
                if self.pending.is_empty() {
                    return None;
                }
                if cuts.last() != Some(&self.pending.len()) {
                    cuts.push(self.pending.len());
                }
            }
            let Some(&consumed) = cuts.last() else {
                // No record boundary yet: read on.
                self.receive();
                continue;
            };
            // The rest starts the next batch, in a buffer that will not
            // have to grow (and be copied) while blocks arrive.
            let mut rest = self.spare.take().unwrap_or_default();
            rest.clear();
            rest.reserve(batch_bytes + self.block_bytes);
            rest.extend_from_slice(&self.pending[consumed..]);
            self.pending.truncate(consumed);
            let bytes = std::mem::replace(&mut self.pending, rest);
            return Some(Batch { bytes, cuts });
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
    // Copies of the names for this chunk's events: every event holds both,
    // and sharing one reference count with the events of other threads made
    // each clone and drop a contended atomic.
    pipeline::extract_bytes(
        chunk,
        detected,
        parse,
        catalog,
        Arc::from(&**server),
        Arc::from(&**label),
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
