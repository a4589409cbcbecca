//! Scratch space on disk: unlinked, owner-only temporary files
//! ([`temp_file`], [`LazyFile`]), positioned reads of them
//! ([`read_exact_at`]), and [`ExternalSort`], which puts more records in
//! order than memory should hold (the `audit` table view's rows, the
//! findings' credential failures).
//!
//! Nothing here is evidence: a scratch file is unlinked as soon as it is
//! made, so a crash leaves nothing behind, and where no file can be made
//! or written the records stay in memory, in the same order.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, Write};

/// A new temporary file, already unlinked where the system allows it (so
/// nothing is left behind, even after a crash), readable by its owner only.
pub fn temp_file() -> io::Result<File> {
    use std::fs::OpenOptions;
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..16 {
        let path = dir.join(format!(
            ".pgtrail-scratch-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(file) => {
                // Where an open file cannot be removed, it stays: callers
                // then keep their records in memory instead.
                if std::fs::remove_file(&path).is_err() {
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(io::Error::other("temporary file cannot be unlinked"));
                }
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

/// Reads exactly `buf.len()` bytes of `file` at `offset`, without moving
/// a shared file position (the readers of one file interleave).
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A scratch file made the first time it is asked for; none when it cannot
/// be made (then it is not tried again).
#[derive(Default)]
pub struct LazyFile {
    file: Option<File>,
    tried: bool,
}

impl LazyFile {
    /// The file, made now if this is the first call. The first time in a
    /// run that no file can be made, a note on stderr says so (the data
    /// then stays in memory, which `TMPDIR` pointing at a disk avoids).
    pub fn get(&mut self) -> Option<&mut File> {
        if !self.tried {
            self.tried = true;
            self.file = match temp_file() {
                Ok(file) => Some(file),
                Err(e) => {
                    static NOTED: std::sync::atomic::AtomicBool =
                        std::sync::atomic::AtomicBool::new(false);
                    if !NOTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        note!(
                            "pgtrail: note: no scratch file in {} ({e}): what would go there stays in memory (set TMPDIR to a writable disk)",
                            std::env::temp_dir().display()
                        );
                    }
                    None
                }
            };
        }
        self.file.as_mut()
    }

    /// A lazy file that is `file` already (tests give one that fails).
    pub fn with(file: Option<File>) -> Self {
        LazyFile { file, tried: true }
    }

    /// The file, if it was made.
    pub fn made(&self) -> Option<&File> {
        self.file.as_ref()
    }

    pub fn into_file(self) -> Option<File> {
        self.file
    }
}

/// `e`, saying it came from reading back a scratch file (which has no
/// name: it was unlinked when made) and in which directory.
pub fn read_back_error(e: io::Error) -> io::Error {
    let dir = std::env::temp_dir();
    io::Error::new(
        e.kind(),
        format!("reading back a scratch file in {}: {e}", dir.display()),
    )
}

/// Bytes of records an [`ExternalSort`] of the table view holds before it
/// writes a run.
pub const SORT_LIMIT: usize = 16 << 20;

/// Bytes read from a run at a time while merging, at most; also the size
/// of the blocks a run is written in.
const READ_BLOCK: usize = 64 << 10;

/// Bytes of read buffers a merge holds for all its runs together, so that
/// a larger input (more runs) does not need more memory to merge: each run
/// reads blocks of this over the number of runs, between
/// [`MIN_READ_BLOCK`] and [`READ_BLOCK`].
const MERGE_READ_BUDGET: usize = 512 << 10;

/// The smallest block a run is read in (past 128 runs the budget grows).
const MIN_READ_BLOCK: usize = 4 << 10;

/// The bytes each of `runs` runs reads at a time while merging.
fn read_block(runs: usize) -> usize {
    (MERGE_READ_BUDGET / runs.max(1)).clamp(MIN_READ_BLOCK, READ_BLOCK)
}

/// A record an [`ExternalSort`] can write to a scratch file and read back.
pub trait Spill: Sized {
    /// Appends the record's bytes.
    fn encode(&self, out: &mut Vec<u8>);
    /// The record at the front of `b` and the bytes it took; `None` when
    /// `b` holds less than a whole record.
    fn decode(b: &[u8]) -> Option<(Self, usize)>;
    /// Bytes the record holds in memory (what the sort's limit counts).
    fn size(&self) -> usize;
}

/// How an [`ExternalSort`] orders its records.
pub type Order<'c, T> = dyn FnMut(&T, &T) -> Ordering + 'c;

/// A run in the file: where it starts and how many bytes it has.
#[derive(Clone, Copy)]
struct Run {
    offset: u64,
    len: u64,
}

/// Sorts records with a given order, equal ones in the order pushed. Up to
/// a limit of bytes is held in memory; past it, the records held are sorted
/// and written to a scratch file as a run, and [`ExternalSort::finish`]
/// merges the runs. Where no file can be made or written, the records stay
/// in memory, in the same order.
pub struct ExternalSort<T> {
    held: Vec<T>,
    held_bytes: usize,
    limit: usize,
    file: LazyFile,
    /// Whether runs still go to the file (no: none could be made, or a
    /// write failed).
    spilling: bool,
    runs: Vec<Run>,
    written: u64,
    /// The order never ties (see [`ExternalSort::with_total_order`]).
    total_order: bool,
}

impl<T: Spill> ExternalSort<T> {
    /// A sort that writes a run once `limit` bytes are held (`usize::MAX`:
    /// never).
    pub fn new(limit: usize) -> Self {
        ExternalSort {
            held: Vec::new(),
            held_bytes: 0,
            limit: limit.max(1),
            file: LazyFile::default(),
            spilling: limit != usize::MAX,
            runs: Vec::new(),
            written: 0,
            total_order: false,
        }
    }

    /// [`ExternalSort::new`] for an order under which no two records are
    /// equal (a unique field decides ties): the records are then sorted in
    /// place, with the stable sort's result but without its scratch buffer
    /// (as large as the records held, for a run of a few MB).
    pub fn with_total_order(limit: usize) -> Self {
        ExternalSort {
            total_order: true,
            ..ExternalSort::new(limit)
        }
    }

    /// Sorts the records held.
    fn sort_held(&mut self, order: &mut Order<'_, T>) {
        if self.total_order {
            self.held.sort_unstable_by(|a, b| order(a, b));
        } else {
            self.held.sort_by(|a, b| order(a, b));
        }
    }

    /// Adds a record; `order` sorts a run when one is written.
    pub fn push(&mut self, record: T, order: &mut Order<'_, T>) {
        self.held_bytes += record.size();
        self.held.push(record);
        if self.spilling && self.held_bytes >= self.limit {
            self.write_run(order);
        }
    }

    /// Sorts what is held and writes it as a run; where that fails, it
    /// stays in memory, and so does everything after it.
    fn write_run(&mut self, order: &mut Order<'_, T>) {
        self.sort_held(order);
        let Some(file) = self.file.get() else {
            self.spilling = false;
            return;
        };
        let mut bytes = Vec::with_capacity(READ_BLOCK);
        let mut len = 0u64;
        let mut result = Ok(());
        for record in &self.held {
            record.encode(&mut bytes);
            if bytes.len() >= READ_BLOCK {
                len += bytes.len() as u64;
                result = file.write_all(&bytes);
                bytes.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() {
            len += bytes.len() as u64;
            result = file.write_all(&bytes);
        }
        match result {
            Ok(()) => {
                self.runs.push(Run {
                    offset: self.written,
                    len,
                });
                self.written += len;
                self.held.clear();
                self.held_bytes = 0;
            }
            // The file ends with part of a run no one reads.
            Err(_) => self.spilling = false,
        }
    }

    /// Every record, in order.
    pub fn finish(mut self, order: &mut Order<'_, T>) -> Sorted<T> {
        self.sort_held(order);
        match self.file.into_file() {
            Some(file) if !self.runs.is_empty() => {
                // What is left since the last run is usually far less than
                // a run: the room for a whole one goes back now, not after
                // the merge (the findings fill a second sort meanwhile).
                self.held.shrink_to_fit();
                let block = read_block(self.runs.len());
                let mut sources: Vec<Source<T>> = self
                    .runs
                    .iter()
                    .map(|r| Source::Run {
                        reader: RunReader {
                            offset: r.offset,
                            end: r.offset + r.len,
                            buf: Vec::new(),
                            pos: 0,
                            block,
                        },
                        head: None,
                    })
                    .collect();
                sources.push(Source::Memory(self.held.into_iter()));
                Sorted::Merged(Merge { file, sources })
            }
            _ => Sorted::Memory(self.held),
        }
    }
}

/// Reads the records of one run from the file, a block at a time.
struct RunReader {
    offset: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes read at a time (more when one record is larger).
    block: usize,
}

impl RunReader {
    /// The next record of the run; `None` at its end.
    fn next<T: Spill>(&mut self, file: &File) -> io::Result<Option<T>> {
        loop {
            if let Some((record, used)) = T::decode(&self.buf[self.pos..]) {
                self.pos += used;
                return Ok(Some(record));
            }
            if self.offset == self.end {
                return if self.pos == self.buf.len() {
                    Ok(None)
                } else {
                    Err(read_back_error(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a sorted run ends inside a record",
                    )))
                };
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let take = (self.block.max(self.buf.len()) as u64).min(self.end - self.offset) as usize;
            let from = self.buf.len();
            self.buf.resize(from + take, 0);
            read_exact_at(file, &mut self.buf[from..], self.offset).map_err(read_back_error)?;
            self.offset += take as u64;
        }
    }
}

/// A run being merged, or the records that were still in memory.
enum Source<T> {
    Run { reader: RunReader, head: Option<T> },
    Memory(std::vec::IntoIter<T>),
}

impl<T: Spill> Source<T> {
    fn head(&self) -> Option<&T> {
        match self {
            Source::Run { head, .. } => head.as_ref(),
            Source::Memory(records) => records.as_slice().first(),
        }
    }

    /// Takes the head and reads the next one.
    fn take(&mut self, file: &File) -> io::Result<Option<T>> {
        match self {
            Source::Run { reader, head } => {
                let taken = head.take();
                *head = reader.next(file)?;
                Ok(taken)
            }
            Source::Memory(records) => Ok(records.next()),
        }
    }
}

/// The runs of an [`ExternalSort`] being merged.
pub struct Merge<T> {
    file: File,
    sources: Vec<Source<T>>,
}

/// The records of an [`ExternalSort`], in order.
pub enum Sorted<T> {
    /// All of them, in memory (no run was written).
    Memory(Vec<T>),
    Merged(Merge<T>),
}

impl<T: Spill> Sorted<T> {
    /// Calls `each` with every record in order and its position in that
    /// order; stops at the first error (of `each`, or reading a run back).
    pub fn for_each(
        &mut self,
        order: &mut Order<'_, T>,
        mut each: impl FnMut(u32, &T) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Sorted::Memory(records) => {
                for (i, record) in records.iter().enumerate() {
                    // More than 2^32 records cannot be held anyway.
                    each(i as u32, record)?;
                }
                Ok(())
            }
            Sorted::Merged(merge) => merge.for_each(order, &mut each),
        }
    }

    /// Whether the records came back from runs in a file.
    pub fn is_merged(&self) -> bool {
        matches!(self, Sorted::Merged(_))
    }

    /// The records when they were all in memory; else none (a merge gives
    /// its records once, through [`Sorted::for_each`]).
    pub fn into_memory(self) -> Vec<T> {
        match self {
            Sorted::Memory(records) => records,
            Sorted::Merged(_) => Vec::new(),
        }
    }
}

impl<T: Spill> Merge<T> {
    fn for_each(
        &mut self,
        order: &mut Order<'_, T>,
        each: &mut dyn FnMut(u32, &T) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = &self.file;
        let mut sources = std::mem::take(&mut self.sources);
        for s in &mut sources {
            if let Source::Run { reader, head } = s {
                *head = reader.next(file)?;
            }
        }
        // The sources with records left, the one with the least head last
        // (equal heads: the earlier source, whose records came first, last).
        let mut live: Vec<usize> = (0..sources.len())
            .filter(|&i| sources[i].head().is_some())
            .collect();
        // Whether source `a`'s head comes after source `b`'s.
        let mut after = |sources: &[Source<T>], a: usize, b: usize| -> bool {
            match (sources[a].head(), sources[b].head()) {
                (Some(x), Some(y)) => order(x, y).then(a.cmp(&b)).is_gt(),
                _ => a > b,
            }
        };
        live.sort_by(|&a, &b| {
            if after(&sources, a, b) {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        });
        let mut position: u32 = 0;
        while let Some(i) = live.pop() {
            if let Some(record) = sources[i].take(file)? {
                each(position, &record)?;
                position = position.wrapping_add(1);
            }
            if sources[i].head().is_some() {
                let at = live.partition_point(|&o| after(&sources, o, i));
                live.insert(at, i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test record: a key and a value of any length.
    #[derive(Debug, Clone, PartialEq)]
    struct Pair(Vec<u8>, Vec<u8>);

    impl Spill for Pair {
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
            out.extend_from_slice(&(self.1.len() as u32).to_le_bytes());
            out.extend_from_slice(&self.0);
            out.extend_from_slice(&self.1);
        }

        fn decode(b: &[u8]) -> Option<(Self, usize)> {
            let len = |i: usize| -> Option<usize> {
                Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize)
            };
            let (k, v) = (len(0)?, len(4)?);
            let rest = b.get(8..8 + k + v)?;
            Some((Pair(rest[..k].to_vec(), rest[k..].to_vec()), 8 + k + v))
        }

        fn size(&self) -> usize {
            8 + self.0.len() + self.1.len()
        }
    }

    /// Records come out as a stable sort puts them, values intact, with
    /// their positions, whatever the limit (runs of one record, of many,
    /// or none; values longer than a read block).
    #[test]
    fn sorted_like_a_stable_sort() {
        let mut rng = crate::summary::tests::Rng(7);
        let mut next = |n: u64| rng.below(n);
        let records: Vec<Pair> = (0..3000u32)
            .map(|i| {
                let key: Vec<u8> = (0..next(4)).map(|_| next(3) as u8).collect();
                let long = if i % 500 == 0 {
                    70_000
                } else {
                    next(200) as usize
                };
                Pair(key, format!("{i}:{}", "v".repeat(long)).into_bytes())
            })
            .collect();
        let mut want = records.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let mut order = |a: &Pair, b: &Pair| a.0.cmp(&b.0);
        for limit in [1, 100, 5000, usize::MAX] {
            let mut sorter = ExternalSort::new(limit);
            for r in &records {
                sorter.push(r.clone(), &mut order);
            }
            assert_eq!(sorter.runs.is_empty(), limit == usize::MAX, "limit {limit}");
            let mut got = Vec::new();
            sorter
                .finish(&mut order)
                .for_each(&mut order, |i, r| {
                    assert_eq!(i as usize, got.len());
                    got.push(r.clone());
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, want, "limit {limit}");
        }
    }

    /// Under an order that never ties, the in-place sort gives what the
    /// stable one gives, whatever the limit.
    #[test]
    fn a_total_order_sorts_the_same() {
        let mut rng = crate::summary::tests::Rng(3);
        let records: Vec<Pair> = (0..2000u32)
            .map(|i| Pair(vec![rng.below(5) as u8], i.to_be_bytes().to_vec()))
            .collect();
        let mut order = |a: &Pair, b: &Pair| a.0.cmp(&b.0).then(a.1.cmp(&b.1));
        let mut want = records.clone();
        want.sort_by(|a, b| order(a, b));
        for limit in [1, 700, usize::MAX] {
            let mut sorter = ExternalSort::with_total_order(limit);
            for r in &records {
                sorter.push(r.clone(), &mut order);
            }
            let mut got = Vec::new();
            sorter
                .finish(&mut order)
                .for_each(&mut order, |_, r| {
                    got.push(r.clone());
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, want, "limit {limit}");
        }
    }

    /// A scratch file cut short is an error that says so, not a panic and
    /// not a silent end.
    #[test]
    fn a_damaged_run_is_an_error() {
        let mut order = |a: &Pair, b: &Pair| a.0.cmp(&b.0);
        let mut sorter = ExternalSort::new(1);
        for i in 0..100u8 {
            sorter.push(Pair(vec![i], vec![i; 10]), &mut order);
        }
        let mut sorted = sorter.finish(&mut order);
        let Sorted::Merged(merge) = &sorted else {
            panic!("the runs went to a file")
        };
        merge.file.set_len(30).unwrap();
        let mut seen = 0;
        let e = sorted
            .for_each(&mut order, |_, _| {
                seen += 1;
                Ok(())
            })
            .unwrap_err();
        assert!(
            e.to_string().starts_with("reading back a scratch file in "),
            "{e}"
        );
        assert!(seen < 100);
    }

    /// The merge's read buffers take the same memory for 8 runs as for
    /// 128 (a larger input), and a block never exceeds a written one.
    #[test]
    fn a_merge_reads_within_one_budget() {
        for runs in [1, 2, 7, 8, 27, 128] {
            assert!(runs * read_block(runs) <= MERGE_READ_BUDGET.max(READ_BLOCK));
            assert!(read_block(runs) <= READ_BLOCK);
        }
        assert_eq!(read_block(8) * 8, read_block(128) * 128);
        assert_eq!(read_block(10_000), MIN_READ_BLOCK);
    }

    #[test]
    fn nothing_in_nothing_out() {
        let mut order = |a: &Pair, b: &Pair| a.0.cmp(&b.0);
        let mut n = 0;
        ExternalSort::new(10)
            .finish(&mut order)
            .for_each(&mut order, |_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}
