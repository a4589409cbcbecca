//! Serialising and writing output on a thread of its own, in order, so the
//! sequential stage (enricher, stitcher) does not wait for it.
//!
//! Items are handed over in batches through a bounded channel (memory stays
//! bounded: at most [`BATCHES_IN_FLIGHT`] batches wait); the writer thread
//! serialises them one by one with the given function. The first write
//! error stops the thread; the next [`BackgroundWriter::push`] (or
//! [`BackgroundWriter::finish`]) returns it, so the producer stops reading
//! input too.

use std::io::{self, Write};
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

/// Items per batch sent to the writer thread.
const BATCH: usize = 1024;

/// Batches that may wait for the writer thread.
const BATCHES_IN_FLIGHT: usize = 4;

/// Writes items of type `T` on a background thread, in the order pushed.
pub struct BackgroundWriter<T: Send + 'static> {
    batch: Vec<T>,
    sender: Option<SyncSender<Vec<T>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<T: Send + 'static> BackgroundWriter<T> {
    /// Starts the writer thread, which owns `out` and calls `write` for
    /// each item, then flushes `out` at the end.
    pub fn new<W, F>(mut out: W, mut write: F) -> io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut W, &T) -> io::Result<()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::sync_channel::<Vec<T>>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("pgtrail-writer".into())
            .spawn(move || {
                for batch in receiver {
                    for item in &batch {
                        write(&mut out, item)?;
                    }
                }
                out.flush()
            })?;
        Ok(BackgroundWriter {
            batch: Vec::with_capacity(BATCH),
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Queues one item; returns the writer's error if it has stopped.
    pub fn push(&mut self, item: T) -> io::Result<()> {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let sent = match &self.sender {
            Some(sender) => sender.send(batch).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread stopped: its error says why.
            self.sender = None;
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the output thread stopped without an error")))
        }
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
