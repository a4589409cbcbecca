//! Sorted runs: records ([`Fail`]: the credential failures, and the
//! successful logins a burst may list) put in the findings' order
//! ([`Ranker`]) with bounded memory.
//!
//! Records gather in memory. Once `run_len` are held, they are sorted and
//! written to an unlinked temporary file as one run; [`Runs::sorted`]
//! merges the runs. A run that holds fewer records than `run_len` never
//! touches a file, and where no file can be written the records stay in
//! memory: the order is the same either way.

use std::fs::File;
use std::io::{self, Write};

use super::{Fail, Key, Lexicon, Ranker, u32_at};
use crate::scratch::{LazyFile, read_exact_at};

/// Bytes of one record in a run: time, start (i64), arrival (u64), server,
/// pid, id code, user, client (u32), pam (u8); little-endian.
const RECORD: usize = 45;

/// Records read from a run at a time while merging.
const MERGE_BLOCK: usize = 1024;

fn encode(f: &Fail, out: &mut Vec<u8>) {
    f.key().encode(out);
    out.extend_from_slice(&f.user.to_le_bytes());
    out.extend_from_slice(&f.client.to_le_bytes());
    out.push(u8::from(f.pam));
}

fn decode(b: &[u8]) -> Fail {
    let at = Key::BYTES;
    Fail::new(
        Key::decode(b),
        u32_at(b, at),
        u32_at(b, at + 4),
        b[at + 8] != 0,
    )
}

/// One run written to the file: where it starts, how many records.
#[derive(Debug, Clone, Copy)]
struct Run {
    offset: u64,
    count: u64,
}

/// Records gathered for sorting (see the module documentation).
pub(super) struct Runs {
    buf: Vec<Fail>,
    run_len: usize,
    file: LazyFile,
    /// Whether runs still go to the file (no file, or a write failed: no).
    spilling: bool,
    runs: Vec<Run>,
    written: u64,
}

impl Runs {
    /// Runs of `run_len` records (`usize::MAX`: all in memory).
    pub(super) fn new(run_len: usize) -> Self {
        Runs {
            buf: Vec::new(),
            run_len: run_len.max(1),
            file: LazyFile::default(),
            spilling: run_len != usize::MAX,
            runs: Vec::new(),
            written: 0,
        }
    }

    /// Adds a record; `lex` orders them when a run is written.
    pub(super) fn push(&mut self, record: Fail, lex: &Lexicon) {
        self.buf.push(record);
        if self.spilling && self.buf.len() >= self.run_len {
            self.write_run(lex);
        }
    }

    /// Sorts the gathered records and writes them as a run; on failure
    /// they stay in memory, and so do all later ones.
    fn write_run(&mut self, lex: &Lexicon) {
        let Some(file) = self.file.get() else {
            self.spilling = false;
            return;
        };
        let mut ranker = Ranker::new(lex);
        self.buf.sort_by(|a, b| ranker.cmp(&a.key(), &b.key()));
        let mut bytes = Vec::with_capacity(MERGE_BLOCK * RECORD);
        let mut result = Ok(());
        for piece in self.buf.chunks(MERGE_BLOCK) {
            bytes.clear();
            piece.iter().for_each(|f| encode(f, &mut bytes));
            result = file.write_all(&bytes);
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => {
                let count = self.buf.len() as u64;
                self.runs.push(Run {
                    offset: self.written,
                    count,
                });
                self.written += count * RECORD as u64;
                self.buf.clear();
            }
            // The file now ends with part of a run no one reads.
            Err(_) => self.spilling = false,
        }
    }

    /// Every record, in order.
    pub(super) fn sorted(mut self, lex: &Lexicon) -> Sorted {
        let mut ranker = Ranker::new(lex);
        self.buf.sort_by(|a, b| ranker.cmp(&a.key(), &b.key()));
        match self.file.into_file() {
            Some(file) if !self.runs.is_empty() => {
                let mut sources: Vec<Source> = self
                    .runs
                    .iter()
                    .map(|r| Source {
                        offset: r.offset,
                        left: r.count,
                        block: Vec::new(),
                        pos: 0,
                    })
                    .collect();
                sources.push(Source {
                    offset: 0,
                    left: 0,
                    block: self.buf,
                    pos: 0,
                });
                Sorted::Merged(Merge { file, sources })
            }
            _ => Sorted::Memory(self.buf),
        }
    }
}

/// One run being merged: the records of its block not yet given, and
/// what is left of it in the file.
struct Source {
    offset: u64,
    left: u64,
    block: Vec<Fail>,
    pos: usize,
}

impl Source {
    fn head(&self) -> Option<&Fail> {
        self.block.get(self.pos)
    }

    /// Moves past the head, reading the next block when this one is done.
    fn advance(&mut self, file: &File) -> io::Result<()> {
        self.pos += 1;
        if self.pos >= self.block.len() {
            self.refill(file)?;
        }
        Ok(())
    }

    fn refill(&mut self, file: &File) -> io::Result<()> {
        self.block.clear();
        self.pos = 0;
        let n = self.left.min(MERGE_BLOCK as u64) as usize;
        if n == 0 {
            return Ok(());
        }
        let mut bytes = vec![0u8; n * RECORD];
        read_exact_at(file, &mut bytes, self.offset)?;
        self.block.extend(bytes.chunks_exact(RECORD).map(decode));
        self.offset += bytes.len() as u64;
        self.left -= n as u64;
        Ok(())
    }
}

/// The runs of a [`Runs`] being merged.
pub(super) struct Merge {
    file: File,
    sources: Vec<Source>,
}

/// The records of a [`Runs`], in order.
pub(super) enum Sorted {
    /// All of them, in memory (no run was written).
    Memory(Vec<Fail>),
    Merged(Merge),
}

impl Sorted {
    /// Calls `each` with every record in order and its position in that
    /// order; stops at the first error (of `each`, or reading a run).
    pub(super) fn for_each(
        &mut self,
        lex: &Lexicon,
        mut each: impl FnMut(u32, &Fail) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Sorted::Memory(records) => {
                for (i, f) in records.iter().enumerate() {
                    // More than 2^32 records cannot be held anyway.
                    each(i as u32, f)?;
                }
                Ok(())
            }
            Sorted::Merged(merge) => merge.for_each(lex, &mut each),
        }
    }

    /// The records when they were all in memory (the book's failures then
    /// point into them); else none.
    pub(super) fn into_memory(self) -> Vec<Fail> {
        match self {
            Sorted::Memory(records) => records,
            Sorted::Merged(_) => Vec::new(),
        }
    }
}

impl Merge {
    fn for_each(
        &mut self,
        lex: &Lexicon,
        each: &mut dyn FnMut(u32, &Fail) -> io::Result<()>,
    ) -> io::Result<()> {
        let Merge { file, sources } = self;
        for s in sources.iter_mut() {
            if s.head().is_none() {
                s.refill(file)?;
            }
        }
        let mut ranker = Ranker::new(lex);
        // The sources with records left, the one with the least head last.
        let mut order: Vec<usize> = (0..sources.len())
            .filter(|&i| sources[i].head().is_some())
            .collect();
        let head = |sources: &[Source], i: usize| sources[i].head().map(Fail::key);
        order.sort_by(|&a, &b| match (head(sources, a), head(sources, b)) {
            (Some(x), Some(y)) => ranker.cmp(&y, &x),
            _ => std::cmp::Ordering::Equal,
        });
        let mut position: u32 = 0;
        while let Some(i) = order.pop() {
            if let Some(f) = sources[i].head() {
                each(position, f)?;
                position = position.wrapping_add(1);
            }
            sources[i].advance(file)?;
            if let Some(key) = head(sources, i) {
                let at = order.partition_point(|&o| {
                    head(sources, o).is_some_and(|k| ranker.cmp(&k, &key).is_gt())
                });
                order.insert(at, i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{IdCode, NO_START};

    #[test]
    fn records_round_trip() {
        let f = Fail {
            t: -5,
            start: NO_START,
            seq: u64::MAX - 3,
            server: 7,
            pid: u32::MAX,
            id: IdCode(IdCode::TEXT | 9),
            user: 3,
            client: u32::MAX,
            pam: true,
        };
        let mut bytes = Vec::new();
        encode(&f, &mut bytes);
        assert_eq!(bytes.len(), RECORD);
        let g = decode(&bytes);
        assert_eq!(
            (
                g.t, g.start, g.seq, g.server, g.pid, g.id, g.user, g.client, g.pam
            ),
            (
                f.t, f.start, f.seq, f.server, f.pid, f.id, f.user, f.client, f.pam
            )
        );
    }

    /// Records pushed in any order come out in the ranker's order, with
    /// their positions, whatever the run length.
    #[test]
    fn merged_runs_equal_one_sort() {
        let mut lex = Lexicon::default();
        let servers = [lex.names.intern(Some("b")), lex.names.intern(Some("a"))];
        let mut records = Vec::new();
        let mut rng = crate::summary::tests::Rng(17);
        for seq in 0..5_000u64 {
            records.push(Fail {
                // Few distinct times: ties are broken by the rest.
                t: rng.below(40) as i64,
                start: match rng.below(2) {
                    0 => NO_START,
                    _ => rng.below(9) as i64,
                },
                seq,
                server: servers[rng.below(2) as usize],
                pid: rng.below(50) as u32,
                id: IdCode(1 + rng.below(3) as u32),
                user: 0,
                client: 0,
                pam: false,
            });
        }
        let mut expected = records.clone();
        let mut ranker = Ranker::new(&lex);
        expected.sort_by(|a, b| ranker.cmp(&a.key(), &b.key()));
        let expected: Vec<u64> = expected.iter().map(|f| f.seq).collect();
        for run_len in [1, 2, 7, 1000, 4999, 5000, usize::MAX] {
            let mut runs = Runs::new(run_len);
            for f in &records {
                runs.push(*f, &lex);
            }
            let wrote = !runs.runs.is_empty();
            let mut sorted = runs.sorted(&lex);
            let mut got = Vec::new();
            sorted
                .for_each(&lex, |i, f| {
                    assert_eq!(i as usize, got.len());
                    got.push(f.seq);
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, expected, "run length {run_len}");
            assert_eq!(
                matches!(sorted, Sorted::Merged(_)),
                wrote,
                "run length {run_len}"
            );
            if run_len < 5000 {
                assert!(wrote, "run length {run_len} used the file");
            }
        }
    }
}
