//! The parallel pipeline over the inputs of a run: per input, a reader
//! thread streams blocks (decompressing gzip in its own stage) and `frame`
//! cuts them into chunks at record boundaries; the chunks of every input
//! form one stream of batches, decoded and extracted in parallel (pool
//! workers and the calling thread claim chunks one at a time), and the
//! results are fed in input order to the sequential [`Enricher`] and on to
//! the caller. Memory is bounded by the batch size, not the input size, and
//! the events are the same for any thread count and chunk size.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::cloudwatch::payload::{self, Sniffed};
use crate::event::{Event, EventKind};
use crate::extract::{Enricher, Out, Stats};
use crate::frame::{self, Framing};
use crate::message::Catalog;
use crate::name::Name;
use crate::pipeline::{self, DetectError, Detected, FormatChoice, ParseOptions};
use crate::prefetch::{prefetch, prefetching};
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
    /// Least size of the blocks the reader thread sends (a block holds a
    /// whole batch: threads × chunk × 2 when that is larger).
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
    pub label: Name,
    pub server: Name,
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
    /// Formats detected while ordering files ([`Engine::first_event_time`]),
    /// reused when the file is read if its sniff window is unchanged.
    known: Mutex<HashMap<PathBuf, KnownFormat>>,
}

/// A format detected on an input's sniff window, with what identifies
/// that window.
struct KnownFormat {
    window_len: usize,
    window_hash: u64,
    detected: Detected,
}

impl KnownFormat {
    fn new(window: &[u8], detected: Detected) -> KnownFormat {
        KnownFormat {
            window_len: window.len(),
            window_hash: window_hash(window),
            detected,
        }
    }

    /// The format, if it was detected on this window.
    fn for_window(&self, window: &[u8]) -> Option<&Detected> {
        (self.window_len == window.len() && self.window_hash == window_hash(window))
            .then_some(&self.detected)
    }
}

/// A 64-bit hash of a sniff window: it tells a file's start that changed
/// since it was ordered (a log still being written).
fn window_hash(window: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0).hash_one(window)
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
        Ok(Engine {
            options,
            pool,
            known: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Reads one input and feeds its events, in order, to `emit` through
    /// `enricher` (which carries per-process state across inputs of a run).
    /// `server` overrides the label derived from the file name.
    pub fn run(
        &self,
        spec: &InputSpec,
        parse: &ParseOptions,
        catalog: &Catalog,
        server: Option<Name>,
        enricher: &mut Enricher<'_>,
        emit: &mut dyn FnMut(Vec<Box<Event>>) -> io::Result<()>,
    ) -> io::Result<InputResult> {
        let mut only = None;
        self.run_many(
            std::slice::from_ref(spec),
            parse,
            catalog,
            server,
            enricher,
            emit,
            &mut |result| {
                only = Some(result);
                Flow::Continue
            },
        )?;
        only.ok_or_else(|| io::Error::other("the engine ended an input without a result"))
    }

    /// Reads `specs` in order, as one stream of batches: the next input is
    /// opened, its format detected and its first batches decoded while the
    /// end of the current one goes through the in-order stage, so many
    /// small files keep every thread busy too. Events reach `emit` in input
    /// order, through `enricher`; after the last event of each input,
    /// `done` gets its result and says whether to go on ([`Flow::Stop`]
    /// ends the run there, with nothing of the later inputs emitted).
    ///
    /// With a worker pool, the workers decode up to one batch ahead of the
    /// one in the in-order stage; the calling thread helps decode once its
    /// in-order work is done.
    #[allow(clippy::too_many_arguments)]
    pub fn run_many(
        &self,
        specs: &[InputSpec],
        parse: &ParseOptions,
        catalog: &Catalog,
        server: Option<Name>,
        enricher: &mut Enricher<'_>,
        emit: &mut dyn FnMut(Vec<Box<Event>>) -> io::Result<()>,
        done: &mut dyn FnMut(InputResult) -> Flow,
    ) -> io::Result<()> {
        let chunk_bytes = self.options.chunk_bytes;
        let mut producer = Producer {
            specs,
            next: 0,
            current: None,
            end_pending: None,
            spare: None,
            parse,
            catalog,
            server,
            known: &self.known,
            block_bytes: self.options.block_bytes,
            chunk_bytes,
            batch_bytes: chunk_bytes * self.options.threads.max(1) * CHUNKS_PER_THREAD,
        };
        let decode_one = |input: &InputContext, chunk: &[u8]| -> Decoded {
            let lines = memchr::memchr_iter(b'\n', chunk).count() as u64
                + u64::from(!chunk.is_empty() && !chunk.ends_with(b"\n"));
            let (outs, stats) = decode_chunk(chunk, input, parse, catalog);
            (outs, stats, lines)
        };
        // Batches queued ahead of the in-order stage, the one it takes next
        // included: with workers, one more is decoding meanwhile.
        let lookahead = if self.pool.is_some() { 2 } else { 1 };
        let mut consume = |steps: &mut VecDeque<Step>,
                           producer: &mut Producer<'_>,
                           spawn: &mut dyn FnMut(&Arc<Work>)|
         -> io::Result<()> {
            let mut current: Option<InputRun> = None;
            loop {
                while steps.iter().filter(|s| matches!(s, Step::Batch(_))).count() < lookahead {
                    let Some(step) = producer.next_step() else {
                        break;
                    };
                    if let Step::Batch(work) = &step {
                        spawn(work);
                    }
                    // CloudWatch data is held whole; the caller usually
                    // stops there to run its streams: read no further.
                    let held = matches!(&step, Step::Start(r) if r.captured.is_some());
                    steps.push_back(step);
                    if held {
                        break;
                    }
                }
                let Some(step) = steps.pop_front() else {
                    return Ok(());
                };
                match step {
                    Step::Start(result) => {
                        current = Some(InputRun {
                            result: *result,
                            line_base: 0,
                        })
                    }
                    Step::Batch(work) => {
                        let run = current.as_mut().ok_or_else(|| {
                            io::Error::other("the engine cut a batch outside an input")
                        })?;
                        let outputs = collect(work, steps, &decode_one, &mut producer.spare)?;
                        run.sequential(outputs, enricher, emit)?;
                    }
                    Step::End(error) => {
                        let mut run = current.take().ok_or_else(|| {
                            io::Error::other("the engine ended an input it did not start")
                        })?;
                        if error.is_some() {
                            run.result.error = error;
                        }
                        if done(run.result) == Flow::Stop {
                            return Ok(());
                        }
                    }
                }
            }
        };
        let mut steps = VecDeque::new();
        match &self.pool {
            None => consume(&mut steps, &mut producer, &mut |_| {}),
            Some(pool) => pool.in_place_scope(|scope| {
                let decode_one = &decode_one;
                let workers = pool.current_num_threads();
                consume(&mut steps, &mut producer, &mut |work| {
                    for _ in 0..workers {
                        let work = Arc::clone(work);
                        scope.spawn(move |_| work.help(decode_one));
                    }
                })
            }),
        }
    }
}

/// What the caller of [`Engine::run_many`] wants after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next input.
    Continue,
    /// End the run here (nothing of the later inputs was emitted).
    Stop,
}

/// The results of a batch, for the in-order stage: the calling thread
/// decodes what is left of it and, while a worker finishes its last chunk,
/// chunks of the batches queued `behind` it rather than wait. The batch's
/// buffer goes back to `spare`.
fn collect(
    work: Arc<Work>,
    behind: &VecDeque<Step>,
    decode: &Decode<'_>,
    spare: &mut Option<Vec<u8>>,
) -> io::Result<Vec<Decoded>> {
    work.help(decode);
    let mut later = behind.iter().filter_map(|step| match step {
        Step::Batch(work) => Some(work),
        _ => None,
    });
    let mut helping = later.next();
    while !work.is_done()
        && let Some(other) = helping
    {
        if !other.help_one(decode) {
            helping = later.next();
        }
    }
    work.wait();
    // A worker may still hold its handle for a moment; then the buffer is
    // not reused, which is harmless.
    match Arc::try_unwrap(work) {
        Ok(work) => {
            let (outputs, bytes) = work.into_results()?;
            *spare = Some(bytes);
            Ok(outputs)
        }
        Err(work) => work.take_results(),
    }
}

/// The names and format every chunk of one input is decoded with.
struct InputContext {
    detected: Detected,
    server: Name,
    label: Name,
}

/// What the producer hands to the in-order stage, in input order.
enum Step {
    /// An input begins (its result so far: names, format, or why it has
    /// no batches).
    Start(Box<InputResult>),
    /// A batch of the current input, decoding or decoded.
    Batch(Arc<Work>),
    /// The current input ended (with the read error that ended it).
    End(Option<SourceError>),
}

/// The in-order side of one input: its result and where its lines start.
struct InputRun {
    result: InputResult,
    line_base: u64,
}

impl InputRun {
    /// Runs decoded chunks through the enricher, in order, and emits what
    /// it releases.
    fn sequential(
        &mut self,
        outputs: Vec<Decoded>,
        enricher: &mut Enricher<'_>,
        emit: &mut dyn FnMut(Vec<Box<Event>>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut released = Vec::new();
        for (outs, chunk_stats, lines) in outputs {
            self.result.stats.add(&chunk_stats);
            for mut out in prefetching(outs, prefetch_event) {
                if let Out::Event { event, .. } = &mut out {
                    shift_lines(event, self.line_base);
                }
                enricher.push(out, &mut |e| released.push(e));
            }
            self.line_base += lines;
        }
        emit(released)
    }
}

fn prefetch_event(out: &Out) {
    if let Out::Event { event, .. } = out {
        prefetch(&**event);
    }
}

/// The producing side of a run, on the calling thread: opens the inputs in
/// order, detects their format and cuts them into batches.
struct Producer<'a> {
    specs: &'a [InputSpec],
    /// The next input to open.
    next: usize,
    /// The input being cut, with how it is framed.
    current: Option<(Reader, Framing, Arc<InputContext>)>,
    /// An input with no batches (empty, unreadable, not recognised, or
    /// CloudWatch data): its end comes right after its start.
    end_pending: Option<Option<SourceError>>,
    /// A decoded batch's buffer (a reader block), handed back to the reader
    /// thread to be filled again: fresh memory would be faulted in (and
    /// zeroed by the kernel) page by page.
    spare: Option<Vec<u8>>,
    parse: &'a ParseOptions,
    catalog: &'a Catalog,
    server: Option<Name>,
    known: &'a Mutex<HashMap<PathBuf, KnownFormat>>,
    block_bytes: usize,
    chunk_bytes: usize,
    batch_bytes: usize,
}

impl Producer<'_> {
    /// The next step of the run; `None` once every input has ended.
    fn next_step(&mut self) -> Option<Step> {
        if let Some(error) = self.end_pending.take() {
            return Some(Step::End(error));
        }
        if let Some((reader, framing, input)) = &mut self.current {
            // A decoded batch's buffer is a block: the reader thread fills
            // it again.
            if let Some(spare) = self.spare.take() {
                reader.give_back(spare);
            }
            return Some(
                match reader.next_batch(framing, self.batch_bytes, self.chunk_bytes) {
                    Some(batch) => Step::Batch(Arc::new(Work::new(batch, Arc::clone(input)))),
                    None => {
                        let error = reader.error.take();
                        self.current = None;
                        Step::End(error)
                    }
                },
            );
        }
        let spec = self.specs.get(self.next)?;
        self.next += 1;
        Some(Step::Start(Box::new(self.open(spec))))
    }

    /// Opens an input and detects its format from the first bytes.
    fn open(&mut self, spec: &InputSpec) -> InputResult {
        // A block holds a whole batch, so that a batch is one block.
        let block_bytes = self.block_bytes.max(self.batch_bytes);
        let stream = source::stream(spec, block_bytes, HEAD_ROOM, 2);
        let label = stream.label;
        let server = self.server.unwrap_or(stream.server);
        let mut result = InputResult {
            label,
            server,
            detected: None,
            stats: Stats::default(),
            error: None,
            captured: None,
        };
        let mut reader = Reader::new(stream, block_bytes);
        // More than the sniff window, or all of the input: see
        // `pipeline::sniff_window`.
        while reader.unread().len() <= DETECT_BYTES && !reader.at_end {
            reader.receive();
        }
        if reader.unread().is_empty() {
            self.end_pending = Some(reader.error.take());
            return result;
        }
        if self.parse.format == FormatChoice::Auto
            && let Some(kind) = payload::sniff(reader.unread())
        {
            // CloudWatch data is small and not streamable: read it all.
            while !reader.at_end {
                reader.receive();
            }
            result.captured = Some((kind, reader.take_unread()));
            self.end_pending = Some(reader.error.take());
            return result;
        }
        let window = pipeline::sniff_window(reader.unread());
        let known = match spec {
            InputSpec::Path(path) => lock(self.known)
                .remove(path)
                .and_then(|known| known.for_window(window).cloned()),
            _ => None,
        };
        let detected =
            match known.map_or_else(|| pipeline::detect(window, self.parse, self.catalog), Ok) {
                Ok(d) => d,
                Err(e) => {
                    result.detected = Some(Err(e));
                    self.end_pending = Some(reader.error.take());
                    return result;
                }
            };
        let framing = match &detected {
            Detected::Stderr { prefix, .. } => Framing::Stderr {
                prefix: prefix.clone(),
                max_line_bytes: self.parse.max_line_bytes,
            },
            Detected::Csvlog => Framing::Csv,
            Detected::Jsonlog => Framing::JsonLines,
            Detected::Syslog { .. } => Framing::Whole,
        };
        result.detected = Some(Ok(detected.clone()));
        let input = Arc::new(InputContext {
            detected,
            server,
            label,
        });
        self.current = Some((reader, framing, input));
        result
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
    /// The input the batch belongs to.
    input: Arc<InputContext>,
    /// The next chunk index not yet claimed.
    next: AtomicUsize,
    results: Vec<Mutex<Option<Decoded>>>,
    /// Chunks decoded so far, and a signal when all are.
    done: Mutex<usize>,
    all_done: Condvar,
}

impl Work {
    fn new(batch: Batch, input: Arc<InputContext>) -> Work {
        let chunks = batch.cuts.len();
        Work {
            batch,
            input,
            next: AtomicUsize::new(0),
            results: (0..chunks).map(|_| Mutex::new(None)).collect(),
            done: Mutex::new(0),
            all_done: Condvar::new(),
        }
    }

    /// Decodes chunks until none is left to claim.
    fn help(&self, decode: &Decode<'_>) {
        while self.help_one(decode) {}
    }

    /// Decodes the next unclaimed chunk; false when none is left.
    fn help_one(&self, decode: &Decode<'_>) -> bool {
        let cuts = &self.batch.cuts;
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= cuts.len() {
            return false;
        }
        // Counted as done even if decoding panics, so that the calling
        // thread is not left waiting (it then finds the result missing and
        // stops the run).
        let _finished = Finished(self);
        let start = if i == 0 { 0 } else { cuts[i - 1] };
        let decoded = decode(&self.input, &self.batch.bytes()[start..cuts[i]]);
        *lock(&self.results[i]) = Some(decoded);
        true
    }

    /// True when every chunk is decoded.
    fn is_done(&self) -> bool {
        *lock(&self.done) == self.results.len()
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
        Ok((outputs, self.batch.buffer))
    }
}

/// Marks one claimed chunk as done when dropped (also on unwinding).
struct Finished<'w>(&'w Work);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish_one();
    }
}

/// Decodes one chunk of an input.
type Decode<'d> = dyn Fn(&InputContext, &[u8]) -> Decoded + Sync + 'd;

/// Locks a mutex whose data stays valid even if a holder panicked (a
/// decoding panic is a bug, reported by the pool; the results it did not
/// write are simply missing).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bytes of an input cut at record boundaries, ready to decode.
struct Batch {
    /// The batch is `buffer[start..]` (a reader block: see [`Reader`]).
    buffer: Vec<u8>,
    start: usize,
    /// Exclusive chunk ends in the batch's bytes; the last one is their
    /// length.
    cuts: Vec<usize>,
}

impl Batch {
    fn bytes(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

/// Room at the start of every block the reader thread sends, where the
/// bytes after the last record boundary of the previous batch are put so
/// that the block itself is never copied: the reader thread's buffer is
/// the batch. `frame::cut_points` cuts once more in a buffer's last 64 KiB,
/// so what is carried over fits unless a record is longer than that.
const HEAD_ROOM: usize = 128 * 1024;

/// The reading side of one input: blocks from its reader thread, the bytes
/// not yet decoded, and the read error if one ended the input.
struct Reader {
    stream: source::Stream,
    /// Capacity of the blocks the stream sends, room included: a buffer
    /// this large goes back to the reader thread to be filled again.
    block_capacity: usize,
    /// The bytes not yet handed out are `pending[start..]`.
    pending: Vec<u8>,
    start: usize,
    /// A buffer for the bytes carried over to the next batch, reused.
    carry: Vec<u8>,
    at_end: bool,
    error: Option<SourceError>,
}

impl Reader {
    /// The reader of a stream of blocks of `block_bytes` after
    /// [`HEAD_ROOM`].
    fn new(stream: source::Stream, block_bytes: usize) -> Reader {
        Reader {
            stream,
            block_capacity: HEAD_ROOM + block_bytes,
            pending: Vec::new(),
            start: 0,
            carry: Vec::new(),
            at_end: false,
            error: None,
        }
    }

    /// The bytes read and not yet handed out.
    fn unread(&self) -> &[u8] {
        &self.pending[self.start..]
    }

    /// Takes the bytes read and not yet handed out.
    fn take_unread(&mut self) -> Vec<u8> {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.drain(..self.start);
        self.start = 0;
        bytes
    }

    /// Waits for the next block. When the bytes not yet handed out fit in
    /// its head room they move there and the block becomes the pending
    /// buffer; otherwise (a record longer than the room, or an input read
    /// whole) the block is appended to them.
    fn receive(&mut self) {
        match self.stream.blocks.recv() {
            Ok(Block::Data(mut data)) => {
                let unread = self.pending.len() - self.start;
                if unread <= HEAD_ROOM {
                    let start = HEAD_ROOM - unread;
                    data[start..HEAD_ROOM].copy_from_slice(&self.pending[self.start..]);
                    let old = std::mem::replace(&mut self.pending, data);
                    self.start = start;
                    self.give_back(old);
                } else {
                    self.pending.extend_from_slice(&data[HEAD_ROOM..]);
                    self.stream.recycle(data);
                }
            }
            Ok(Block::Error(e)) => {
                self.error = Some(e);
                self.at_end = true;
            }
            Err(_) => self.at_end = true,
        }
    }

    /// Keeps a buffer no longer pending: a block goes back to the reader
    /// thread, a smaller one holds the next carry-over, and one that grew
    /// far past a block (around a very long record) is freed.
    fn give_back(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() > 2 * self.block_capacity {
            return;
        }
        if buffer.capacity() >= self.block_capacity {
            self.stream.recycle(buffer);
        } else if buffer.capacity() > self.carry.capacity() {
            buffer.clear();
            self.carry = buffer;
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
            let unread = &self.pending[self.start..];
            if !self.at_end && (unread.len() < batch_bytes || whole) {
                self.receive();
                continue;
            }
            let mut cuts = frame::cut_points(unread, framing, chunk_bytes);
            if self.at_end {
                if unread.is_empty() {
                    return None;
                }
                if cuts.last() != Some(&unread.len()) {
                    cuts.push(unread.len());
                }
            }
            let Some(&consumed) = cuts.last() else {
                // No record boundary yet: read on.
                self.receive();
                continue;
            };
            // The rest starts the next batch: it moves into the head room
            // of the next block when that arrives.
            let mut rest = std::mem::take(&mut self.carry);
            rest.clear();
            rest.extend_from_slice(&unread[consumed..]);
            let end = self.start + consumed;
            let mut buffer = std::mem::replace(&mut self.pending, rest);
            buffer.truncate(end);
            let start = std::mem::replace(&mut self.start, 0);
            return Some(Batch {
                buffer,
                start,
                cuts,
            });
        }
    }
}

/// Decodes and extracts one chunk (line numbers relative to it).
fn decode_chunk(
    chunk: &[u8],
    input: &InputContext,
    parse: &ParseOptions,
    catalog: &Catalog,
) -> (Vec<Out>, Stats) {
    // Every event holds both names: interned, they cost no reference count.
    pipeline::extract_bytes(
        chunk,
        &input.detected,
        parse,
        catalog,
        input.server,
        input.label,
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

/// Whole lines read for a file's first event time: its first event is
/// nearly always on the first lines (PostgreSQL logs `starting` and
/// `connection received` first), and reading the whole sniff window of every
/// file of a directory cost a quarter of the run on 1 MB files.
const ORDER_BYTES: usize = 32 * 1024;

/// How many of an input's first connections [`InputHead::openings`] keeps.
pub const HEAD_OPENINGS: usize = 16;

/// What the head of an input says about it, read before a run orders the
/// files of a server ([`Engine::input_head`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputHead {
    /// The earliest event time among the head's events.
    pub first_time: Option<i64>,
    /// The first connections the head opens (`connection received`), as
    /// (pid, second of log time), at most [`HEAD_OPENINGS`], in log order.
    /// Two inputs of one server that open the same connections are the
    /// same log written twice: several `log_destination`s (stderr, csvlog,
    /// jsonlog) or a copy. Seconds, because stderr's `%t` has no
    /// milliseconds while csvlog and jsonlog have them (and each
    /// destination takes its own time stamp, so they may differ by one).
    pub openings: Vec<(u32, i64)>,
}

impl Engine {
    /// The time of the earliest event among the first 32 KiB of whole lines
    /// of an input, or of its sniff window (256 KiB) when those hold none:
    /// to order the files of one server, such as hourly files given in any
    /// order. `None` for stdin, unreadable or unrecognised inputs. The format
    /// detected on the way is kept, for the run to reuse.
    pub fn first_event_time(
        &self,
        spec: &InputSpec,
        parse: &ParseOptions,
        catalog: &Catalog,
    ) -> Option<i64> {
        self.input_head(spec, parse, catalog).first_time
    }

    /// [`Engine::first_event_time`] and the first connections the same
    /// lines open ([`InputHead::openings`]). Empty for stdin, unreadable or
    /// unrecognised inputs.
    pub fn input_head(
        &self,
        spec: &InputSpec,
        parse: &ParseOptions,
        catalog: &Catalog,
    ) -> InputHead {
        if matches!(spec, InputSpec::Stdin) {
            return InputHead::default();
        }
        // One byte more than the window, as the run reads (see `open`).
        let stream = source::stream(spec, DETECT_BYTES + 1, 0, 1);
        let mut head = Vec::new();
        while head.len() <= DETECT_BYTES {
            match stream.blocks.recv() {
                Ok(Block::Data(data)) => head.extend_from_slice(&data),
                _ => break,
            }
        }
        drop(stream);
        let window = pipeline::sniff_window(&head);
        let Ok(detected) = pipeline::detect(window, parse, catalog) else {
            return InputHead::default();
        };
        let read_head = |bytes: &[u8]| {
            let (outs, _) = pipeline::extract_bytes(
                bytes,
                &detected,
                parse,
                catalog,
                Name::new(""),
                Name::new(""),
            );
            let mut head = InputHead::default();
            for out in &outs {
                let Out::Event { event, .. } = out else {
                    continue;
                };
                let Some(time) = event.time_ms else {
                    continue;
                };
                head.first_time = Some(head.first_time.map_or(time, |t| t.min(time)));
                if let (EventKind::Received, Some(pid), true) =
                    (event.kind, event.pid, head.openings.len() < HEAD_OPENINGS)
                {
                    head.openings.push((pid, time.div_euclid(1000)));
                }
            }
            head
        };
        let first = match memchr::memrchr(b'\n', &window[..window.len().min(ORDER_BYTES)]) {
            Some(nl) if window.len() > ORDER_BYTES => Some(read_head(&window[..=nl])),
            _ => None,
        };
        let head = match first {
            Some(head) if head.first_time.is_some() => head,
            _ => read_head(window),
        };
        if let InputSpec::Path(path) = spec {
            lock(&self.known).insert(path.clone(), KnownFormat::new(window, detected));
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/pg15/rds/postgresql.log")
    }

    fn engine() -> Engine {
        Engine::new(EngineOptions {
            threads: 1,
            ..EngineOptions::default()
        })
        .expect("an engine of one thread")
    }

    #[test]
    fn a_known_format_holds_only_for_its_window() {
        let detected = Detected::Csvlog;
        let known = KnownFormat::new(b"a\nb\n", detected);
        assert!(known.for_window(b"a\nb\n").is_some());
        assert!(known.for_window(b"a\nc\n").is_none());
        assert!(known.for_window(b"a\nb\nc\n").is_none());
    }

    #[test]
    fn ordering_a_file_keeps_its_format_for_the_run() {
        let catalog = Catalog::builtin();
        let parse = ParseOptions::default();
        let engine = engine();
        let path = sample_path();
        let bytes = std::fs::read(&path).expect("the bundled RDS sample");
        let time = engine.first_event_time(&InputSpec::Path(path.clone()), &parse, catalog);
        let expected = pipeline::detect(&bytes, &parse, catalog).expect("an RDS log");
        let (outs, _) = pipeline::extract_bytes(
            pipeline::sniff_window(&bytes),
            &expected,
            &parse,
            catalog,
            Name::new(""),
            Name::new(""),
        );
        // The sample is shorter than 32 KiB: its earliest event counts.
        assert!(bytes.len() < ORDER_BYTES);
        let first = outs
            .iter()
            .filter_map(|out| match out {
                Out::Event { event, .. } => event.time_ms,
                Out::AppSeen { .. } => None,
            })
            .min();
        assert!(first.is_some());
        assert_eq!(time, first);
        // The first connections it opens, in log order.
        let openings: Vec<(u32, i64)> = outs
            .iter()
            .filter_map(|out| match out {
                Out::Event { event, .. } if event.kind == EventKind::Received => {
                    Some((event.pid?, event.time_ms? / 1000))
                }
                _ => None,
            })
            .take(HEAD_OPENINGS)
            .collect();
        assert_eq!(openings.len(), HEAD_OPENINGS);
        let head = engine.input_head(&InputSpec::Path(path.clone()), &parse, catalog);
        assert_eq!(head.openings, openings);
        assert_eq!(head.first_time, first);
        let known = lock(&engine.known);
        let kept = known.get(&path).expect("the format is kept");
        let window = pipeline::sniff_window(&bytes);
        assert_eq!(
            format!("{:?}", kept.for_window(window)),
            format!("{:?}", Some(&expected))
        );
    }

    /// Every batch a reader hands out, concatenated, is the input, and each
    /// ends at a record boundary, whether the blocks are larger or smaller
    /// than a batch, and whether what is carried over fits in the head room
    /// (blocks of 1,000 bytes for batches of 200 KB: it does not) or not.
    #[test]
    fn a_reader_hands_out_the_input_whole_in_record_batches() {
        let sample = std::fs::read(sample_path()).expect("the bundled RDS sample");
        let input = sample.repeat(12);
        assert!(input.len() > 2 * HEAD_ROOM);
        let prefix = crate::prefix::Prefix::compile("%t:%r:%u@%d:[%p]:").expect("the RDS prefix");
        let framings = [
            Framing::Stderr {
                prefix,
                max_line_bytes: 1 << 20,
            },
            Framing::Whole,
        ];
        for framing in &framings {
            for (block, batch_bytes, chunk) in [
                (1_000, 200_000, 4_096),
                (4_096, 8_192, 1_024),
                (300_000, 64 * 1024, 16 * 1024),
                (1 << 20, 1 << 20, 1 << 19),
            ] {
                let spec = InputSpec::Memory {
                    label: Name::new("memory"),
                    server: Name::new("memory"),
                    bytes: Arc::from(input.as_slice()),
                };
                let mut reader = Reader::new(source::stream(&spec, block, HEAD_ROOM, 2), block);
                let mut joined = Vec::new();
                let mut spare = None;
                while let Some(batch) = reader.next_batch(framing, batch_bytes, chunk) {
                    let bytes = batch.bytes();
                    assert_eq!(batch.cuts.last(), Some(&bytes.len()));
                    assert!(batch.cuts.windows(2).all(|w| w[0] < w[1]));
                    if joined.len() + bytes.len() < input.len() {
                        assert!(bytes.ends_with(b"\n"), "block {block}, batch {batch_bytes}");
                        assert_ne!(input[joined.len() + bytes.len()], b'\t');
                    }
                    joined.extend_from_slice(bytes);
                    if let Some(buffer) = spare.replace(batch.buffer) {
                        reader.give_back(buffer);
                    }
                }
                assert!(reader.error.is_none());
                assert!(
                    joined == input,
                    "block {block}, batch {batch_bytes}, chunk {chunk}"
                );
            }
        }
    }
}
