//! The findings' sorted records ([`Fail`]: the credential failures, and the
//! successful logins a burst may list) in the findings' order ([`Ranker`]),
//! with bounded memory: a [`crate::scratch::ExternalSort`] whose runs past
//! `run_len` records go to a scratch file. The order is the same whether
//! the records stayed in memory or not.

use std::io;

use super::{Fail, Key, Lexicon, Ranker, u32_at};
use crate::scratch::{self, ExternalSort, Spill};

/// Bytes of one record in a run: its key ([`Key::encode`]), user, client
/// (u32) and pam (u8); little-endian.
const RECORD: usize = Key::BYTES + 9;

impl Spill for Fail {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key().encode(out);
        out.extend_from_slice(&self.user.to_le_bytes());
        out.extend_from_slice(&self.client.to_le_bytes());
        out.push(u8::from(self.pam));
    }

    fn decode(b: &[u8]) -> Option<(Self, usize)> {
        let b = b.get(..RECORD)?;
        let at = Key::BYTES;
        let fail = Fail::new(
            Key::decode(b),
            u32_at(b, at),
            u32_at(b, at + 4),
            b[at + 8] != 0,
        );
        Some((fail, RECORD))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Fail>()
    }
}

/// Records gathered for sorting (see the module documentation).
pub(super) struct Runs(ExternalSort<Fail>);

impl Runs {
    /// Runs of `run_len` records (`usize::MAX`: all in memory). The
    /// findings' order ends with the arrival number, one per session, and
    /// a session gives one record at most: it never ties.
    pub(super) fn new(run_len: usize) -> Self {
        Runs(ExternalSort::with_total_order(
            run_len.saturating_mul(std::mem::size_of::<Fail>()),
        ))
    }

    /// Adds a record; `lex` orders them when a run is written.
    pub(super) fn push(&mut self, record: Fail, lex: &Lexicon) {
        let mut ranker = Ranker::new(lex);
        self.0
            .push(record, &mut |a, b| ranker.cmp(&a.key(), &b.key()));
    }

    /// Every record, in order.
    pub(super) fn sorted(self, lex: &Lexicon) -> Sorted {
        let mut ranker = Ranker::new(lex);
        Sorted(self.0.finish(&mut |a, b| ranker.cmp(&a.key(), &b.key())))
    }
}

/// The records of a [`Runs`], in order.
pub(super) struct Sorted(scratch::Sorted<Fail>);

impl Sorted {
    /// Whether the records came back from runs in a file (else they are
    /// all in memory, and [`Sorted::into_memory`] gives them).
    pub(super) fn is_merged(&self) -> bool {
        self.0.is_merged()
    }

    /// Calls `each` with every record in order and its position in that
    /// order; stops at the first error (of `each`, or reading a run).
    pub(super) fn for_each(
        &mut self,
        lex: &Lexicon,
        each: impl FnMut(u32, &Fail) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut ranker = Ranker::new(lex);
        self.0
            .for_each(&mut |a, b| ranker.cmp(&a.key(), &b.key()), each)
    }

    /// The records when they were all in memory (the book's failures then
    /// point into them); else none.
    pub(super) fn into_memory(self) -> Vec<Fail> {
        self.0.into_memory()
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
        f.encode(&mut bytes);
        assert_eq!(bytes.len(), RECORD);
        let (g, used) = Fail::decode(&bytes).unwrap();
        assert_eq!(used, RECORD);
        assert!(Fail::decode(&bytes[..RECORD - 1]).is_none());
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
            let mut sorted = runs.sorted(&lex);
            let wrote = sorted.is_merged();
            let mut got = Vec::new();
            sorted
                .for_each(&lex, |i, f| {
                    assert_eq!(i as usize, got.len());
                    got.push(f.seq);
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, expected, "run length {run_len}");
            if run_len < 5000 {
                assert!(wrote, "run length {run_len} used the file");
            }
        }
    }
}
