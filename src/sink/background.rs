//! Serialising and writing output on a thread of its own, in order, so the
//! sequential stage (enricher, stitcher) does not wait for it.
//!
//! Items are handed over in batches through a bounded channel (memory stays
//! bounded: at most `BATCHES_IN_FLIGHT` batches wait); the writer thread
//! serialises them one by one with the given function. A commit (the live
//! CloudWatch source's checkpoint) waits until everything before it is
//! written and the writer's own commit has run. The first write error stops
//! the thread; the next [`BackgroundWriter::push`] (or
//! [`BackgroundWriter::commit`], [`BackgroundWriter::finish`]) returns it,
//! so the producer stops reading input too.
//!
//! A one-thread run (`--threads 1`) writes inline instead: the same
//! functions, called on the calling thread as items are pushed.

use std::io::{self, Write};
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

/// What the producer sends to the writer thread.
enum Message<T> {
    Items(Vec<T>),
    /// Write what came before, commit, and answer.
    Commit(SyncSender<io::Result<Option<u64>>>),
}

/// Items per batch sent to the writer thread.
const BATCH: usize = 1024;

/// Batches that may wait for the writer thread.
const BATCHES_IN_FLIGHT: usize = 4;

/// Writes items of type `T` on a background thread, in the order pushed
/// (or on the calling thread, for one-thread runs: [`BackgroundWriter::inline`]).
pub struct BackgroundWriter<T: Send + 'static> {
    batch: Vec<T>,
    sender: Option<SyncSender<Message<T>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Set when the items are written on the calling thread.
    inline: Option<Box<dyn Serialise<T>>>,
}

/// The writing side: the output and what to do with an item and a commit.
struct Serialiser<W, F, C> {
    out: W,
    write: F,
    commit: C,
}

/// [`Serialiser`] with its output type erased.
trait Serialise<T> {
    fn item(&mut self, item: &T) -> io::Result<()>;
    fn commit(&mut self) -> io::Result<Option<u64>>;
    fn finish(&mut self) -> io::Result<()>;
}

impl<T, W, F, C> Serialise<T> for Serialiser<W, F, C>
where
    W: Write,
    F: FnMut(&mut W, &T) -> io::Result<()>,
    C: FnMut(&mut W) -> io::Result<Option<u64>>,
{
    fn item(&mut self, item: &T) -> io::Result<()> {
        (self.write)(&mut self.out, item)
    }

    fn commit(&mut self) -> io::Result<Option<u64>> {
        (self.commit)(&mut self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<T: Send + 'static> BackgroundWriter<T> {
    /// Starts the writer thread, which owns `out` and calls `write` for
    /// each item, then flushes `out` at the end. Commits only flush.
    pub fn new<W, F>(out: W, write: F) -> io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut W, &T) -> io::Result<()> + Send + 'static,
    {
        Self::with_commit(out, write, |out: &mut W| out.flush().map(|()| None))
    }

    /// Like [`BackgroundWriter::new`], with what a commit does on `out`
    /// (e.g. flush and sync a file, returning its length).
    pub fn with_commit<W, F, C>(out: W, write: F, commit: C) -> io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut W, &T) -> io::Result<()> + Send + 'static,
        C: FnMut(&mut W) -> io::Result<Option<u64>> + Send + 'static,
    {
        let mut serialiser = Serialiser { out, write, commit };
        let (sender, receiver) = mpsc::sync_channel::<Message<T>>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("pgtrail-writer".into())
            .spawn(move || {
                for message in receiver {
                    match message {
                        Message::Items(batch) => {
                            for item in &batch {
                                serialiser.item(item)?;
                            }
                        }
                        Message::Commit(answer) => {
                            let committed = serialiser.commit();
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
                Serialise::<T>::finish(&mut serialiser)
            })?;
        Ok(BackgroundWriter {
            batch: Vec::with_capacity(BATCH),
            sender: Some(sender),
            thread: Some(thread),
            inline: None,
        })
    }

    /// The same writer without a thread: each item is written as it is
    /// pushed, on the calling thread (`--threads 1` means one thread).
    pub fn inline<W, F, C>(out: W, write: F, commit: C) -> Self
    where
        W: Write + 'static,
        F: FnMut(&mut W, &T) -> io::Result<()> + 'static,
        C: FnMut(&mut W) -> io::Result<Option<u64>> + 'static,
    {
        BackgroundWriter {
            batch: Vec::new(),
            sender: None,
            thread: None,
            inline: Some(Box::new(Serialiser { out, write, commit })),
        }
    }

    /// Queues one item; returns the writer's error if it has stopped.
    pub fn push(&mut self, item: T) -> io::Result<()> {
        if let Some(inline) = &mut self.inline {
            return inline.item(&item);
        }
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Writes everything pushed so far and runs the writer's commit;
    /// returns what it returned.
    pub fn commit(&mut self) -> io::Result<Option<u64>> {
        if let Some(inline) = &mut self.inline {
            return inline.commit();
        }
        if !self.batch.is_empty() {
            self.send()?;
        }
        let (answer, answered) = mpsc::sync_channel(1);
        self.send_message(Message::Commit(answer))?;
        match answered.recv() {
            Ok(result) => result,
            // The thread stopped before answering: its error says why.
            Err(_) => Err(self.stopped()),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.send_message(Message::Items(batch))
    }

    fn send_message(&mut self, message: Message<T>) -> io::Result<()> {
        let sent = match &self.sender {
            Some(sender) => sender.send(message).is_ok(),
            None => false,
        };
        if sent { Ok(()) } else { Err(self.stopped()) }
    }

    /// The error the stopped writer thread ended with.
    fn stopped(&mut self) -> io::Error {
        self.sender = None;
        self.join()
            .err()
            .unwrap_or_else(|| io::Error::other("the output thread stopped without an error"))
    }

    fn join(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("the output thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Writes what is queued, waits for the thread and flushes the output.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(inline) = &mut self.inline {
            return inline.finish();
        }
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.sender = None;
        self.join()
    }
}

impl<T: Send + 'static> Drop for BackgroundWriter<T> {
    fn drop(&mut self) {
        // Unfinished (an error elsewhere): let the thread end; its result
        // no longer matters.
        self.sender = None;
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
        let mut w = BackgroundWriter::new(shared.clone(), |out: &mut Shared, n: &u32| {
            writeln!(out, "{n}")
        })
        .unwrap();
        for n in 0..5000u32 {
            w.push(n).unwrap();
        }
        w.finish().unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..5000u32).map(|n| format!("{n}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_commit_sees_everything_pushed_before_it() {
        let shared = Shared::default();
        let probe = shared.clone();
        let mut w = BackgroundWriter::with_commit(
            shared.clone(),
            |out: &mut Shared, n: &u32| writeln!(out, "{n}"),
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
            |out: &mut Shared, n: &u32| writeln!(out, "{n}"),
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

    #[test]
    fn a_write_error_reaches_the_producer() {
        let mut w = BackgroundWriter::new(Shared::default(), |_: &mut Shared, n: &u32| {
            if *n == 10 {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
            } else {
                Ok(())
            }
        })
        .unwrap();
        let mut error = None;
        for n in 0..100_000u32 {
            if let Err(e) = w.push(n) {
                error = Some(e);
                break;
            }
        }
        let error = error.or_else(|| w.finish().err()).expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }
}
