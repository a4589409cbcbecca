//! Bursts found while the sorted failures stream past: the sliding windows
//! of [`bursts_of`](super::bursts_of) and
//! [`distinct_bursts_of`](super::distinct_bursts_of), one per subject, held
//! only while they can still change.
//!
//! Failures arrive in the findings' order, so by time. A subject's window
//! holds its failures within the rule's window of its latest one; a burst
//! of the subject is open while a later window could still share a failure
//! with it, and its failures go to the [`Evidence`] as they join it. Every
//! [`SWEEP_EVERY`] failures, windows older than the rule's window before
//! the current time are dropped (the next failure of their subject would
//! drop them anyway), so memory follows the failures of the last window,
//! not the input.

use std::collections::VecDeque;

use foldhash::{HashMap, HashSet};

use super::evidence::{Evidence, Slot};
use super::{Fail, NO_NAME};

/// Failures a detector takes between two sweeps.
const SWEEP_EVERY: u64 = 1 << 16;

/// What a detector groups failures by, and what makes a window qualify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// `brute_force_user`: failures of one user.
    User,
    /// `brute_force_client`: failures from one client.
    Client,
    /// `password_spraying`: distinct users one client failed as (failures
    /// with a user).
    Spraying,
    /// `repeated_iam_failures`: PAM failures of one user.
    Pam,
}

impl Rule {
    fn subject(self, f: &Fail) -> u32 {
        match self {
            Rule::User => f.user,
            Rule::Client => f.client,
            Rule::Spraying if f.user != NO_NAME => f.client,
            Rule::Pam if f.pam => f.user,
            Rule::Spraying | Rule::Pam => NO_NAME,
        }
    }

    /// The other name of a failure, counted distinct in a burst.
    fn other(self, f: &Fail) -> u32 {
        match self {
            Rule::User | Rule::Pam => f.client,
            Rule::Client | Rule::Spraying => f.user,
        }
    }

    /// Whether bursts note the (user, client) pairs their successful
    /// logins are looked for with.
    fn has_successes(self) -> bool {
        self != Rule::Pam
    }
}

/// A burst: the failures of one subject between its first and last, all
/// in its evidence list.
#[derive(Debug)]
pub(super) struct Burst {
    pub(super) subject: u32,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) count: usize,
    /// Distinct known other names ([`Rule::other`]).
    pub(super) distinct: usize,
    /// The (user, client) pairs of its failures where both are known.
    pub(super) pairs: Vec<(u32, u32)>,
    pub(super) slot: Slot,
}

/// A burst that may still grow.
struct Open {
    /// The subject's number of its last failure.
    end: u64,
    slot: Slot,
    first: i64,
    last: i64,
    count: usize,
    others: HashSet<u32>,
    pairs: HashSet<(u32, u32)>,
}

impl Open {
    fn add(&mut self, rule: Rule, index: u32, f: &Fail, ev: &mut Evidence) {
        ev.push_fail(self.slot, index, f);
        if self.count == 0 {
            self.first = f.t;
        }
        self.count += 1;
        self.last = f.t;
        let other = rule.other(f);
        if other != NO_NAME {
            self.others.insert(other);
        }
        if rule.has_successes() && f.user != NO_NAME && f.client != NO_NAME {
            self.pairs.insert((f.user, f.client));
        }
    }

    fn close(self, subject: u32) -> Burst {
        Burst {
            subject,
            first: self.first,
            last: self.last,
            count: self.count,
            distinct: self.others.len(),
            pairs: self.pairs.into_iter().collect(),
            slot: self.slot,
        }
    }
}

/// One subject: its failures numbered in order, those in its window, and
/// its open burst.
#[derive(Default)]
struct Track {
    next: u64,
    /// (number, position in the sorted failures, failure).
    window: VecDeque<(u64, u32, Fail)>,
    /// Failures per user in the window ([`Rule::Spraying`]).
    users: HashMap<u32, usize>,
    open: Option<Open>,
}

impl Track {
    fn pop_front(&mut self) {
        if let Some((_, _, f)) = self.window.pop_front()
            && let Some(n) = self.users.get_mut(&f.user)
        {
            *n -= 1;
            if *n == 0 {
                self.users.remove(&f.user);
            }
        }
    }

    /// The number of the window's first failure.
    fn left(&self) -> u64 {
        self.window.front().map_or(self.next, |x| x.0)
    }

    /// Closes the open burst once no later window can share a failure with
    /// it.
    fn close_if_behind(&mut self, subject: u32, out: &mut Vec<Burst>) {
        if self.open.as_ref().is_some_and(|o| o.end < self.left())
            && let Some(open) = self.open.take()
        {
            out.push(open.close(subject));
        }
    }
}

/// The bursts of one rule (see the module documentation).
pub(super) struct Detector {
    rule: Rule,
    min: usize,
    window: i64,
    tracks: HashMap<u32, Track>,
    taken: u64,
    bursts: Vec<Burst>,
}

impl Detector {
    /// A detector of windows of at most `window` ms qualifying with `min`
    /// failures (distinct users for [`Rule::Spraying`]); `None` when `min`
    /// is 0 (the finding is off).
    pub(super) fn new(rule: Rule, min: usize, window: i64) -> Option<Self> {
        (min > 0).then(|| Detector {
            rule,
            min,
            window,
            tracks: HashMap::default(),
            taken: 0,
            bursts: Vec::new(),
        })
    }

    pub(super) fn rule(&self) -> Rule {
        self.rule
    }

    /// Takes the next failure in order: `index`, its position.
    pub(super) fn push(&mut self, index: u32, f: &Fail, ev: &mut Evidence) {
        let subject = self.rule.subject(f);
        if subject == NO_NAME {
            return;
        }
        self.taken += 1;
        if self.taken.is_multiple_of(SWEEP_EVERY) {
            self.sweep(f.t);
        }
        let (rule, window) = (self.rule, self.window);
        let track = self.tracks.entry(subject).or_default();
        let number = track.next;
        track.next += 1;
        track.window.push_back((number, index, *f));
        if rule == Rule::Spraying {
            *track.users.entry(f.user).or_default() += 1;
        }
        while track.window.len() > 1
            && track
                .window
                .front()
                .is_some_and(|x| f.t.saturating_sub(x.2.t) > window)
        {
            track.pop_front();
        }
        track.close_if_behind(subject, &mut self.bursts);
        let qualifies = if rule == Rule::Spraying {
            track.users.len() >= self.min
        } else {
            track.window.len() >= self.min
        };
        if !qualifies {
            return;
        }
        let open = match &mut track.open {
            Some(open) => open,
            None => track.open.insert(Open {
                end: 0,
                slot: ev.open(),
                first: 0,
                last: 0,
                count: 0,
                others: HashSet::default(),
                pairs: HashSet::default(),
            }),
        };
        // The failures of the window not in the burst yet: all of them
        // for a new burst, else those after its end.
        let len = track.window.len();
        let fresh = if open.count == 0 {
            len
        } else {
            usize::try_from(number - open.end).map_or(len, |n| n.min(len))
        };
        for &(_, index, ref f) in track.window.range(len - fresh..) {
            open.add(rule, index, f, ev);
        }
        open.end = number;
    }

    /// Drops what the next failure of each subject would drop, given that
    /// it comes at `now` or later, and the subjects left with nothing.
    fn sweep(&mut self, now: i64) {
        let window = self.window;
        for (&subject, track) in &mut self.tracks {
            while track
                .window
                .front()
                .is_some_and(|x| now.saturating_sub(x.2.t) > window)
            {
                track.pop_front();
            }
            track.close_if_behind(subject, &mut self.bursts);
        }
        self.tracks
            .retain(|_, t| !t.window.is_empty() || t.open.is_some());
    }

    /// Every burst, in no particular order.
    pub(super) fn finish(mut self) -> Vec<Burst> {
        for (subject, track) in self.tracks {
            if let Some(open) = track.open {
                self.bursts.push(open.close(subject));
            }
        }
        self.bursts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{IdBook, IdCode, NO_START, bursts_of, distinct_bursts_of};

    fn fail(t: i64, user: u32, client: u32, pam: bool) -> Fail {
        Fail {
            t,
            start: NO_START,
            seq: 0,
            server: 0,
            pid: 0,
            id: IdCode(1),
            user,
            client,
            pam,
        }
    }

    /// The streaming detectors find, subject by subject, exactly the
    /// bursts of the batch functions over each subject's failures, with
    /// the same evidence, across sweeps.
    #[test]
    fn detectors_equal_the_batch() {
        let mut rng = crate::summary::tests::Rng(99);
        let mut next = |n: u64| rng.below(n);
        for round in 0..12 {
            let len = [10, 300, 200_000][round % 3];
            let mut t = 0i64;
            let fails: Vec<Fail> = (0..len)
                .map(|_| {
                    t += [0, 1, 50, 4_000, 700_000][next(5) as usize];
                    let name = |v: u64| if v == 0 { NO_NAME } else { v as u32 };
                    let (user, client) = (name(next(6)), name(next(5)));
                    fail(t, user, client, next(3) == 0)
                })
                .collect();
            for rule in [Rule::User, Rule::Client, Rule::Spraying, Rule::Pam] {
                let (min, window) = [(3, 10_000), (1, 0), (10, 300_000)][round % 3];
                let mut ev = Evidence::in_memory(IdBook::default());
                let mut d = Detector::new(rule, min, window).unwrap();
                for (i, f) in fails.iter().enumerate() {
                    d.push(i as u32, f, &mut ev);
                }
                let bursts = d.finish();
                ev.book.fails = fails.clone();
                let (_, lists) = ev.finish();
                let mut got: Vec<(u32, Vec<u32>)> = bursts
                    .iter()
                    .map(|b| {
                        let items = lists[b.slot.index()].items.clone();
                        assert_eq!(items.len(), b.count);
                        (b.subject, items)
                    })
                    .collect();
                got.sort();
                let mut want: Vec<(u32, Vec<u32>)> = Vec::new();
                let mut subjects: Vec<u32> = fails.iter().map(|f| rule.subject(f)).collect();
                subjects.sort();
                subjects.dedup();
                for s in subjects.into_iter().filter(|&s| s != NO_NAME) {
                    let members: Vec<u32> = (0..fails.len() as u32)
                        .filter(|&i| rule.subject(&fails[i as usize]) == s)
                        .collect();
                    let time = |i: usize| fails[members[i] as usize].t;
                    let found = if rule == Rule::Spraying {
                        let item = |i: usize| (time(i), fails[members[i] as usize].user);
                        distinct_bursts_of(members.len(), item, min, window)
                    } else {
                        bursts_of(members.len(), time, min, window)
                    };
                    want.extend(found.into_iter().map(|(a, b)| (s, members[a..=b].to_vec())));
                }
                want.sort();
                assert_eq!(got, want, "round {round}, {rule:?}");
            }
        }
    }
}
