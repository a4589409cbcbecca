//! Interned names: the server label and the input label (a path, or a
//! CloudWatch log group and stream) that every event and session carries.
//!
//! A [`Name`] is a `Copy` handle to a string kept for the whole process, so
//! copying it into an event and dropping the event cost nothing. With a
//! reference-counted `Arc<str>` each event paid two atomic increments when
//! it was built and two decrements when it was dropped, and each chunk made
//! its own copy of both names so that threads did not share one count.
//! (Measured when this replaced them: the time the decrements seemed to
//! take was the wait for the event's cold memory, which moved to the next
//! read; `crate::prefetch` is what shortened it.)
//!
//! Memory: one copy of each distinct name ever made, for the life of the
//! process. Names come from inputs (file paths, `--server`, log group and
//! stream names), never from log records, so they are bounded by what the
//! user asked to read.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};

/// An interned string: equal names are the same allocation, so equality is
/// a pointer comparison. Hashing and ordering follow the text, as `str`'s
/// do (a `Name` can be looked up by `&str` in maps keyed by names).
#[derive(Clone, Copy)]
pub struct Name(&'static str);

impl Name {
    /// The name for `text`, made once per distinct text.
    pub fn new(text: &str) -> Name {
        static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let names = NAMES.get_or_init(Default::default);
        // A poisoned lock still holds a consistent set: insertion is the
        // only mutation and it cannot panic half-way.
        let mut names = names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&known) = names.get(text) {
            return Name(known);
        }
        let kept: &'static str = Box::leak(Box::from(text));
        names.insert(kept);
        Name(kept)
    }

    /// The text, for as long as the process runs.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl PartialEq for Name {
    /// Interned: the same text is the same pointer.
    fn eq(&self, other: &Name) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.0.cmp(other.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::new(&text)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_are_one_name() {
        let a = Name::new("db1");
        let b = Name::from(String::from("db1"));
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_ne!(a, Name::new("db2"));
        assert_eq!(&*a, "db1");
    }

    #[test]
    fn names_order_and_hash_as_their_text() {
        let mut names = [Name::new("b"), Name::new("a"), Name::new("c")];
        names.sort();
        assert_eq!(names.map(Name::as_str), ["a", "b", "c"]);
        let set: HashSet<Name> = names.into_iter().collect();
        assert!(set.contains("b"));
        assert!(!set.contains("d"));
    }
}
