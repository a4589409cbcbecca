//! Scratch space on disk: unlinked, owner-only temporary files
//! ([`temp_file`]), positioned reads of them ([`read_exact_at`]), and
//! [`ByteSorter`], which puts more records in order than memory should
//! hold (the `audit` table view sorts every session).
//!
//! Nothing here is evidence: a scratch file is unlinked as soon as it is
//! made, so a crash leaves nothing behind, and where no file can be made
//! or written the records stay in memory, in the same order.

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

/// Bytes of record data a [`ByteSorter`] holds before it writes a run.
pub const SORT_LIMIT: usize = 16 << 20;

/// Bytes read from a run at a time while merging.
const READ_BLOCK: usize = 64 << 10;

/// One record held in memory: where its key starts in the data, and the
/// lengths of its key and value (which follows the key).
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    key: u32,
    value: u32,
}

/// A run in the file: where it starts and how many bytes it has.
#[derive(Clone, Copy)]
struct Run {
    offset: u64,
    len: u64,
}

/// Sorts (key, value) byte records by key (as byte strings), equal keys in
/// the order pushed. Up to a limit of bytes is held in memory; past it, the
/// records held are sorted and written to a scratch file as a run, and
/// [`ByteSorter::finish`] merges the runs.
pub struct ByteSorter {
    data: Vec<u8>,
    entries: Vec<Entry>,
    limit: usize,
    file: LazyFile,
    /// Whether runs still go to the file (no: none could be made, or a
    /// write failed).
    spilling: bool,
    runs: Vec<Run>,
    written: u64,
}

impl ByteSorter {
    /// A sorter that writes a run once `limit` bytes are held.
    pub fn new(limit: usize) -> Self {
        ByteSorter {
            data: Vec::new(),
            entries: Vec::new(),
            limit: limit.max(1),
            file: LazyFile::default(),
            spilling: true,
            runs: Vec::new(),
            written: 0,
        }
    }

    /// Adds a record. Keys and values longer than 4 GiB are cut.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        let key = &key[..key.len().min(u32::MAX as usize)];
        let value = &value[..value.len().min(u32::MAX as usize)];
        self.entries.push(Entry {
            start: self.data.len(),
            key: key.len() as u32,
            value: value.len() as u32,
        });
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        if self.spilling && self.data.len() >= self.limit {
            self.write_run();
        }
    }

    fn key(&self, e: &Entry) -> &[u8] {
        &self.data[e.start..e.start + e.key as usize]
    }

    fn sort(&mut self) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by(|a, b| self.key(a).cmp(self.key(b)));
        self.entries = entries;
    }

    /// Sorts what is held and writes it as a run; where that fails, it
    /// stays in memory, and so does everything after it.
    fn write_run(&mut self) {
        self.sort();
        let Some(file) = self.file.get() else {
            self.spilling = false;
            return;
        };
        let mut bytes = Vec::with_capacity(READ_BLOCK);
        let mut len = 0u64;
        let mut result = Ok(());
        for e in &self.entries {
            bytes.extend_from_slice(&e.key.to_le_bytes());
            bytes.extend_from_slice(&e.value.to_le_bytes());
            let end = e.start + e.key as usize + e.value as usize;
            bytes.extend_from_slice(&self.data[e.start..end]);
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
                self.data.clear();
                self.entries.clear();
            }
            // The file ends with part of a run no one reads.
            Err(_) => self.spilling = false,
        }
    }

    /// Every record, in order.
    pub fn finish(mut self) -> Sorted {
        self.sort();
        let memory = Source::Memory {
            data: self.data,
            entries: self.entries,
            next: 0,
        };
        let mut sources: Vec<Source> = self
            .runs
            .iter()
            .map(|r| {
                Source::Run(RunReader {
                    offset: r.offset,
                    end: r.offset + r.len,
                    buf: Vec::new(),
                    pos: 0,
                    head: None,
                })
            })
            .collect();
        sources.push(memory);
        Sorted {
            file: self.file.into_file(),
            sources,
            started: false,
            order: Vec::new(),
        }
    }
}

/// Reads the records of one run from the file, a block at a time.
struct RunReader {
    offset: u64,
    end: u64,
    buf: Vec<u8>,
    pos: usize,
    /// The current record: key and value ranges in `buf`.
    head: Option<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl RunReader {
    /// Makes at least `n` unread bytes available in `buf`.
    fn ensure(&mut self, file: &File, n: usize) -> io::Result<()> {
        let have = self.buf.len() - self.pos;
        if have >= n {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let want = (n - have).max(READ_BLOCK) as u64;
        let take = want.min(self.end - self.offset) as usize;
        if have + take < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a sorted run in the scratch file ends early",
            ));
        }
        let from = self.buf.len();
        self.buf.resize(from + take, 0);
        read_exact_at(file, &mut self.buf[from..], self.offset)?;
        self.offset += take as u64;
        Ok(())
    }

    fn advance(&mut self, file: &File) -> io::Result<()> {
        if let Some((_, value)) = self.head.take() {
            self.pos = value.end;
        }
        if self.pos == self.buf.len() && self.offset == self.end {
            return Ok(());
        }
        self.ensure(file, 8)?;
        let len = |at: usize| {
            let b = &self.buf[at..at + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let (key, value) = (len(self.pos), len(self.pos + 4));
        self.ensure(file, 8 + key + value)?;
        let start = self.pos + 8;
        self.head = Some((start..start + key, start + key..start + key + value));
        Ok(())
    }
}

/// A run being merged, or the records that were still in memory.
enum Source {
    Run(RunReader),
    Memory {
        data: Vec<u8>,
        entries: Vec<Entry>,
        next: usize,
    },
}

impl Source {
    fn head(&self) -> Option<(&[u8], &[u8])> {
        match self {
            Source::Run(r) => r
                .head
                .as_ref()
                .map(|(k, v)| (&r.buf[k.clone()], &r.buf[v.clone()])),
            Source::Memory {
                data,
                entries,
                next,
            } => entries.get(*next).map(|e| {
                let key_end = e.start + e.key as usize;
                (
                    &data[e.start..key_end],
                    &data[key_end..key_end + e.value as usize],
                )
            }),
        }
    }

    fn advance(&mut self, file: Option<&File>) -> io::Result<()> {
        match self {
            Source::Run(r) => match file {
                Some(file) => r.advance(file),
                None => Ok(()),
            },
            Source::Memory { next, .. } => {
                *next += 1;
                Ok(())
            }
        }
    }
}

/// The records of a [`ByteSorter`], in order.
pub struct Sorted {
    file: Option<File>,
    sources: Vec<Source>,
    started: bool,
    /// Sources with records left, the one with the least head last (equal
    /// keys: the earlier source last).
    order: Vec<usize>,
}

impl Sorted {
    /// Calls `each` with every record in order (key, value); stops at the
    /// first error (of `each`, or reading a run back).
    pub fn for_each(
        &mut self,
        mut each: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = self.file.as_ref();
        let sources = &mut self.sources;
        if !self.started {
            self.started = true;
            for s in sources.iter_mut() {
                if let Source::Run(_) = s {
                    s.advance(file)?;
                }
            }
            self.order = (0..sources.len())
                .filter(|&i| sources[i].head().is_some())
                .collect();
            let key = |i: usize| sources[i].head().map(|h| h.0);
            self.order.sort_by(|&a, &b| (key(b), b).cmp(&(key(a), a)));
        }
        while let Some(i) = self.order.pop() {
            if let Some((key, value)) = sources[i].head() {
                each(key, value)?;
            }
            sources[i].advance(file)?;
            if let Some((key, _)) = sources[i].head() {
                let at = self.order.partition_point(|&o| {
                    sources[o].head().is_some_and(|(k, _)| (k, o) > (key, i))
                });
                self.order.insert(at, i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records come out sorted by key, equal keys in the order pushed,
    /// values intact, whatever the limit (runs of one record, of many, or
    /// none).
    #[test]
    fn sorted_like_a_stable_sort() {
        let mut rng = crate::summary::tests::Rng(7);
        let mut next = |n: u64| rng.below(n);
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..3000u32)
            .map(|i| {
                let key: Vec<u8> = (0..next(4)).map(|_| next(3) as u8).collect();
                let value = format!("{i}:{}", "v".repeat(next(200) as usize)).into_bytes();
                (key, value)
            })
            .collect();
        let mut want = records.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        for limit in [1, 100, 5000, 1 << 30] {
            let mut sorter = ByteSorter::new(limit);
            for (k, v) in &records {
                sorter.push(k, v);
            }
            assert_eq!(sorter.runs.is_empty(), limit == 1 << 30, "limit {limit}");
            let mut got = Vec::new();
            sorter
                .finish()
                .for_each(|k, v| {
                    got.push((k.to_vec(), v.to_vec()));
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, want, "limit {limit}");
        }
    }

    #[test]
    fn nothing_in_nothing_out() {
        let mut n = 0;
        ByteSorter::new(10)
            .finish()
            .for_each(|_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}
