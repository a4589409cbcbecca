//! Writing output on a thread of its own, in order, so the sequential stage
//! (enricher, stitcher) does not wait for the output's system calls.
//!
//! Items are serialised where they are pushed, into a buffer that is handed
//! to the writer thread once it holds `HANDOFF_BYTES`: an item is read
//! while the core that built it still has it in cache, and is freed by the
//! thread that allocated it; only bytes cross to the writer thread (handing
//! it the items cost two-thread runs a tenth of their time in cache misses
//! and cross-thread frees). The writer thread hands each written buffer
//! back to be filled again, so buffers are neither allocated per handoff
//! nor freed on the other thread. Memory stays bounded: at most
//! `BUFFERS_IN_FLIGHT` buffers wait, and a buffer is made only when none is
//! free, so no more than two more ever exist (the one being filled, the one
//! being written). A commit (the live CloudWatch source's
//! checkpoint) waits until everything before it is written and the writer's
//! own commit has run. The first write error stops the thread; the next
//! [`BackgroundWriter::push`] (or [`BackgroundWriter::commit`],
//! [`BackgroundWriter::finish`]) returns it, so the producer stops reading
//! input too.
//!
//! A one-thread run (`--threads 1`) writes inline instead: the same buffer,
//! written on the calling thread when it is full.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// What the producer sends to the writer thread.
enum Message {
    Bytes(Vec<u8>),
    /// Write what came before, commit, and answer.
    Commit(SyncSender<io::Result<Option<u64>>>),
}

/// Serialised bytes gathered before they are handed on (written inline, or
/// sent to the writer thread): at least the output's own buffer, so that it
/// passes them through without copying. Each handoff wakes the writer
/// thread, which on two cores preempts a working thread: at 64 KiB, a
/// two-thread `audit` switched threads some 65 times per MB of input.
const HANDOFF_BYTES: usize = 256 * 1024;

/// A buffer's room: a handoff and the item that crosses the mark.
const BUFFER_BYTES: usize = HANDOFF_BYTES + HANDOFF_BYTES / 4;

/// Buffers that may wait for the writer thread.
const BUFFERS_IN_FLIGHT: usize = 4;

/// Serialises items of type `T` and writes them in the order pushed, on a
/// background thread (or on the calling thread, for one-thread runs:
/// [`BackgroundWriter::inline`]).
pub struct BackgroundWriter<T> {
    /// Serialised items not yet handed on.
    bytes: Vec<u8>,
    serialise: Box<Serialise<T>>,
    sink: Sink,
}

/// Appends an item's bytes to a buffer.
type Serialise<T> = dyn FnMut(&mut Vec<u8>, &T) -> io::Result<()>;

/// Where serialised bytes go.
enum Sink {
    Thread {
        sender: Option<SyncSender<Message>>,
        /// Buffers the thread has written, to be filled again.
        spent: Receiver<Vec<u8>>,
        thread: Option<JoinHandle<io::Result<()>>>,
    },
    Inline(Box<dyn Output>),
}

/// The writing side: the output and what a commit does on it.
struct Committing<W, C> {
    out: W,
    commit: C,
}

/// [`Committing`] with its output type erased.
trait Output {
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn commit(&mut self) -> io::Result<Option<u64>>;
    fn finish(&mut self) -> io::Result<()>;
}

impl<W, C> Output for Committing<W, C>
where
    W: Write,
    C: FnMut(&mut W) -> io::Result<Option<u64>>,
{
    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn commit(&mut self) -> io::Result<Option<u64>> {
        (self.commit)(&mut self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<T> BackgroundWriter<T> {
    /// Starts the writer thread, which owns `out`; `serialise` appends an
    /// item's bytes to a buffer. `out` is flushed at the end; commits only
    /// flush.
    pub fn new<W, F>(out: W, serialise: F) -> io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut Vec<u8>, &T) -> io::Result<()> + 'static,
    {
        Self::with_commit(out, serialise, |out: &mut W| out.flush().map(|()| None))
    }

    /// Like [`BackgroundWriter::new`], with what a commit does on `out`
    /// (e.g. flush and sync a file, returning its length).
    pub fn with_commit<W, F, C>(out: W, serialise: F, commit: C) -> io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut Vec<u8>, &T) -> io::Result<()> + 'static,
        C: FnMut(&mut W) -> io::Result<Option<u64>> + Send + 'static,
    {
        let mut output = Committing { out, commit };
        let (sender, receiver) = mpsc::sync_channel::<Message>(BUFFERS_IN_FLIGHT);
        // Unbounded, but it never holds more buffers than exist.
        let (give_back, spent) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("pgtrail-writer".into())
            .spawn(move || {
                for message in receiver {
                    match message {
                        Message::Bytes(mut bytes) => {
                            output.bytes(&bytes)?;
                            // One grown by a huge item is not kept.
                            if bytes.capacity() <= 2 * BUFFER_BYTES {
                                bytes.clear();
                                let _ = give_back.send(bytes);
                            }
                        }
                        Message::Commit(answer) => {
                            let committed = output.commit();
                            let failed = committed
                                .as_ref()
                                .err()
                                .map(|e| io::Error::new(e.kind(), e.to_string()));
                            let _ = answer.send(committed);
                            if let Some(e) = failed {
                                return Err(e);
                            }
                        }
                    }
                }
                output.finish()
            })?;
        Ok(BackgroundWriter {
            bytes: Vec::with_capacity(BUFFER_BYTES),
            serialise: Box::new(serialise),
            sink: Sink::Thread {
                sender: Some(sender),
                spent,
                thread: Some(thread),
            },
        })
    }

    /// The same writer without a thread: the buffer is written on the
    /// calling thread (`--threads 1` means one thread).
    pub fn inline<W, F, C>(out: W, serialise: F, commit: C) -> Self
    where
        W: Write + 'static,
        F: FnMut(&mut Vec<u8>, &T) -> io::Result<()> + 'static,
        C: FnMut(&mut W) -> io::Result<Option<u64>> + 'static,
    {
        BackgroundWriter {
            bytes: Vec::with_capacity(BUFFER_BYTES),
            serialise: Box::new(serialise),
            sink: Sink::Inline(Box::new(Committing { out, commit })),
        }
    }

    /// Serialises one item; returns the writer's error if it has stopped.
    /// An item that fails to serialise leaves no bytes behind.
    pub fn push(&mut self, item: T) -> io::Result<()> {
        let before = self.bytes.len();
        if let Err(e) = (self.serialise)(&mut self.bytes, &item) {
            self.bytes.truncate(before);
            return Err(e);
        }
        drop(item);
        if self.bytes.len() >= HANDOFF_BYTES {
            self.hand_on()?;
        }
        Ok(())
    }

    /// Writes everything pushed so far and runs the writer's commit;
    /// returns what it returned.
    pub fn commit(&mut self) -> io::Result<Option<u64>> {
        self.hand_on()?;
        match &mut self.sink {
            Sink::Inline(output) => output.commit(),
            Sink::Thread { .. } => {
                let (answer, answered) = mpsc::sync_channel(1);
                self.send(Message::Commit(answer))?;
                match answered.recv() {
                    Ok(result) => result,
                    // The thread stopped before answering: its error says why.
                    Err(_) => Err(self.stopped()),
                }
            }
        }
    }

    /// Hands the serialised bytes on: written inline, or sent to the thread.
    fn hand_on(&mut self) -> io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Inline(output) => {
                let written = output.bytes(&self.bytes);
                self.bytes.clear();
                written
            }
            Sink::Thread { spent, .. } => {
                let empty = spent
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BUFFER_BYTES));
                let full = std::mem::replace(&mut self.bytes, empty);
                self.send(Message::Bytes(full))
            }
        }
    }

    fn send(&mut self, message: Message) -> io::Result<()> {
        let sent = match &self.sink {
            Sink::Thread {
                sender: Some(sender),
                ..
            } => sender.send(message).is_ok(),
            _ => false,
        };
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// The error the stopped writer thread ended with.
    fn stopped(&mut self) -> io::Error {
        self.join()
            .err()
            .unwrap_or_else(|| io::Error::other("the output thread stopped without an error"))
    }

    /// Ends the writer thread (its sender dropped) and returns its result.
    fn join(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Thread { sender, thread, .. } => {
                *sender = None;
                match thread.take() {
                    Some(thread) => thread
                        .join()
                        .map_err(|_| io::Error::other("the output thread panicked"))?,
                    None => Ok(()),
                }
            }
            Sink::Inline(_) => Ok(()),
        }
    }

    /// Writes what is queued, waits for the thread and flushes the output.
    pub fn finish(mut self) -> io::Result<()> {
        self.hand_on()?;
        match &mut self.sink {
            Sink::Inline(output) => output.finish(),
            Sink::Thread { .. } => self.join(),
        }
    }
}

impl<T> Drop for BackgroundWriter<T> {
    fn drop(&mut self) {
        // Unfinished (an error elsewhere): let the thread end; its result
        // no longer matters.
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_every_item_in_order() {
        let shared = Shared::default();
        let mut w = BackgroundWriter::new(shared.clone(), |out: &mut Vec<u8>, n: &u32| {
            writeln!(out, "{n}")
        })
        .unwrap();
        // Several megabytes: many handoffs, through buffers written and
        // handed back to be filled again.
        let items = 1_000_000u32;
        for n in 0..items {
            w.push(n).unwrap();
        }
        w.finish().unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert!(text.len() > 20 * HANDOFF_BYTES);
        let expected: String = (0..items).map(|n| format!("{n}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_commit_sees_everything_pushed_before_it() {
        let shared = Shared::default();
        let probe = shared.clone();
        let mut w = BackgroundWriter::with_commit(
            shared.clone(),
            |out: &mut Vec<u8>, n: &u32| writeln!(out, "{n}"),
            move |_: &mut Shared| Ok(Some(probe.0.lock().unwrap().len() as u64)),
        )
        .unwrap();
        for n in 0..3000u32 {
            w.push(n).unwrap();
        }
        let expected: usize = (0..3000u32).map(|n| format!("{n}\n").len()).sum();
        assert_eq!(w.commit().unwrap(), Some(expected as u64));
        w.finish().unwrap();
    }

    #[test]
    fn inline_writes_the_same_and_commits_in_place() {
        let shared = Shared::default();
        let probe = shared.clone();
        let mut w = BackgroundWriter::inline(
            shared.clone(),
            |out: &mut Vec<u8>, n: &u32| writeln!(out, "{n}"),
            move |_: &mut Shared| Ok(Some(probe.0.lock().unwrap().len() as u64)),
        );
        for n in 0..3000u32 {
            w.push(n).unwrap();
        }
        let expected: String = (0..3000u32).map(|n| format!("{n}\n")).collect();
        assert_eq!(w.commit().unwrap(), Some(expected.len() as u64));
        w.finish().unwrap();
        assert_eq!(*shared.0.lock().unwrap(), expected.into_bytes());
    }

    /// A `Write` that fails once it has taken `limit` bytes.
    struct Closing {
        taken: usize,
        limit: usize,
    }

    impl Write for Closing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.taken >= self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            self.taken += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_error_reaches_the_producer_on_both_paths() {
        let closing = || Closing {
            taken: 0,
            limit: 100_000,
        };
        let line = |out: &mut Vec<u8>, n: &u32| writeln!(out, "{n}");
        let flush = |out: &mut Closing| out.flush().map(|()| None);
        for mut w in [
            BackgroundWriter::new(closing(), line).unwrap(),
            BackgroundWriter::inline(closing(), line, flush),
        ] {
            let mut error = None;
            for n in 0..1_000_000u32 {
                if let Err(e) = w.push(n) {
                    error = Some(e);
                    break;
                }
            }
            let error = error.or_else(|| w.finish().err()).expect("an error");
            assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        }
    }

    #[test]
    fn an_item_that_fails_to_serialise_leaves_no_bytes() {
        let shared = Shared::default();
        let mut w = BackgroundWriter::new(shared.clone(), |out: &mut Vec<u8>, n: &u32| {
            write!(out, "{n}")?;
            if *n == 10 {
                return Err(io::Error::other("not serialisable"));
            }
            writeln!(out)
        })
        .unwrap();
        for n in 0..20u32 {
            let pushed = w.push(n);
            assert_eq!(pushed.is_err(), n == 10, "{n}");
        }
        w.finish().unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..20u32)
            .filter(|&n| n != 10)
            .map(|n| format!("{n}\n"))
            .collect();
        assert_eq!(text, expected);
    }
}
