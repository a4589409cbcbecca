//! Evidence lists: the session ids each finding lists, gathered while the
//! sorted failures and logins stream past, and read back as its
//! [`SessionIds`].
//!
//! In memory, an item of a list is an index in the run's [`IdBook`] (its
//! failures, or its keys). When the failures themselves went to sorted
//! runs on disk, the lists hold [`Key`]s instead, gathered in memory up to
//! a bound and then written, list by list, as blocks of an unlinked
//! temporary file: memory then holds the pending keys and one (offset,
//! count) per block, never a list. Where no file can be written, the keys
//! go to the book instead.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use super::{Fail, IdBook, Key, SessionId, SessionIds};
use crate::scratch::{LazyFile, read_back_error, read_exact_at};

/// Keys read from a block at a time.
const READ_BLOCK: usize = 1024;

/// A run of keys of one list in the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    offset: u64,
    count: u32,
}

/// Keys of a [`SessionIds`] in the file: its blocks, in order.
#[derive(Clone)]
pub(super) struct Stored {
    file: Arc<File>,
    blocks: Vec<Block>,
    len: usize,
}

impl Stored {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Reads keys `from..from + buf`'s capacity (at most [`READ_BLOCK`]) of
    /// block `block` into `buf`.
    fn read(&self, block: usize, from: u32, buf: &mut Vec<Key>) -> io::Result<()> {
        buf.clear();
        let b = self.blocks[block];
        let n = (b.count - from).min(READ_BLOCK as u32) as usize;
        let mut bytes = vec![0u8; n * Key::BYTES];
        read_exact_at(
            &self.file,
            &mut bytes,
            b.offset + u64::from(from) * Key::BYTES as u64,
        )
        .map_err(read_back_error)?;
        buf.extend(bytes.chunks_exact(Key::BYTES).map(Key::decode));
        Ok(())
    }
}

/// A finding's list in an [`Evidence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Slot(usize);

impl Slot {
    /// Its place in the lists [`Evidence::finish`] gives.
    pub(super) fn index(self) -> usize {
        self.0
    }
}

#[derive(Default)]
struct List {
    /// Items of the book.
    items: Vec<u32>,
    /// Keys not written yet.
    pending: Vec<Key>,
    blocks: Vec<Block>,
    stored: usize,
}

/// Where keys go when lists are kept on disk.
struct Disk {
    file: LazyFile,
    /// Whether blocks still go to the file (no: none could be made, or a
    /// write failed; the keys then go to the book).
    writable: bool,
    /// Bytes of whole blocks in the file.
    written: u64,
    /// Keys pending over every list.
    pending: usize,
    limit: usize,
}

/// The lists of a run's findings (see the module documentation).
pub(super) struct Evidence {
    /// The book the items point into; its failures are the sorted ones
    /// when they were all in memory.
    pub(super) book: IdBook,
    lists: Vec<List>,
    /// `None`: the lists hold items of the book.
    disk: Option<Disk>,
}

impl Evidence {
    /// Lists of items of `book`.
    pub(super) fn in_memory(book: IdBook) -> Self {
        Evidence {
            book,
            lists: Vec::new(),
            disk: None,
        }
    }

    /// Lists of keys, written to a file once `limit` keys are pending.
    pub(super) fn on_disk(book: IdBook, limit: usize) -> Self {
        Evidence {
            book,
            lists: Vec::new(),
            disk: Some(Disk {
                file: LazyFile::default(),
                writable: true,
                written: 0,
                pending: 0,
                limit: limit.max(1),
            }),
        }
    }

    /// A new, empty list.
    pub(super) fn open(&mut self) -> Slot {
        self.lists.push(List::default());
        Slot(self.lists.len() - 1)
    }

    /// Adds failure `index` of the sorted failures, `fail`.
    pub(super) fn push_fail(&mut self, slot: Slot, index: u32, fail: &Fail) {
        if self.disk.is_some() {
            self.push_key(slot, fail.key());
        } else {
            self.lists[slot.0].items.push(index);
        }
    }

    /// Adds `key` (a record that is not a failure of the book).
    pub(super) fn push_key(&mut self, slot: Slot, key: Key) {
        if let Some(disk) = self.disk.as_mut().filter(|d| d.writable) {
            disk.pending += 1;
            let full = disk.pending >= disk.limit;
            self.lists[slot.0].pending.push(key);
            if full {
                self.flush();
            }
        } else {
            let item = self.book.push_key(key);
            self.lists[slot.0].items.push(item);
        }
    }

    /// Writes every pending key, list by list, as blocks of the file (one
    /// write). Where no file can be made or a write fails, they go to the
    /// book instead, and so do all later keys; blocks written before stay.
    fn flush(&mut self) {
        let Some(disk) = self.disk.as_mut().filter(|d| d.pending > 0) else {
            return;
        };
        disk.pending = 0;

        let mut bytes = Vec::new();
        let mut blocks = Vec::new();
        for (i, list) in self.lists.iter().enumerate() {
            if !list.pending.is_empty() {
                let offset = disk.written + bytes.len() as u64;
                list.pending.iter().for_each(|k| k.encode(&mut bytes));
                // More than 2^32 keys pending cannot be held anyway.
                let count = list.pending.len() as u32;
                blocks.push((i, Block { offset, count }));
            }
        }
        let wrote = match disk.file.get() {
            Some(file) if disk.writable => file.write_all(&bytes).is_ok(),
            _ => false,
        };
        if !wrote {
            // The file ends with part of a block no one reads; what was
            // written before stays readable.
            disk.writable = false;
            for list in &mut self.lists {
                for key in std::mem::take(&mut list.pending) {
                    list.items.push(self.book.push_key(key));
                }
            }
            return;
        }
        disk.written += bytes.len() as u64;
        for (i, block) in blocks {
            let list = &mut self.lists[i];
            list.stored += block.count as usize;
            list.blocks.push(block);
            // The memory of a long list goes with its keys.
            list.pending = Vec::new();
        }
    }

    /// The book and every list as [`SessionIds`], by slot.
    pub(super) fn finish(mut self) -> (Arc<IdBook>, Vec<SessionIds>) {
        self.flush();
        let book = Arc::new(self.book);
        let file = self.disk.and_then(|d| d.file.into_file()).map(Arc::new);
        let ids = self
            .lists
            .into_iter()
            .map(|list| SessionIds {
                book: Arc::clone(&book),
                stored: match &file {
                    Some(file) if !list.blocks.is_empty() => Some(Stored {
                        file: Arc::clone(file),
                        blocks: list.blocks,
                        len: list.stored,
                    }),
                    _ => None,
                },
                items: list.items,
            })
            .collect();
        (book, ids)
    }
}

/// The ids of a [`SessionIds`], in order: those stored in the file, then
/// those in memory. Reading the file can fail: an error ends the ids.
pub struct Iter<'a> {
    ids: &'a SessionIds,
    /// The next block of the file to read, and the keys of it read so far.
    block: usize,
    read: u32,
    buf: Vec<Key>,
    pos: usize,
    item: usize,
    failed: bool,
}

impl<'a> Iter<'a> {
    pub(super) fn new(ids: &'a SessionIds) -> Self {
        Iter {
            ids,
            block: 0,
            read: 0,
            buf: Vec::new(),
            pos: 0,
            item: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = io::Result<SessionId<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let book = &*self.ids.book;
        if let Some(stored) = &self.ids.stored {
            while self.pos >= self.buf.len() && self.block < stored.blocks.len() {
                if self.read >= stored.blocks[self.block].count {
                    self.block += 1;
                    self.read = 0;
                    continue;
                }
                if let Err(e) = stored.read(self.block, self.read, &mut self.buf) {
                    self.failed = true;
                    return Some(Err(e));
                }
                self.read += self.buf.len() as u32;
                self.pos = 0;
            }
            if let Some(&key) = self.buf.get(self.pos) {
                self.pos += 1;
                return Some(Ok(SessionId { book, key }));
            }
        }
        let &item = self.ids.items.get(self.item)?;
        self.item += 1;
        Some(Ok(SessionId {
            book,
            key: book.key(item),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{IdCode, NO_START};

    fn key(i: u32) -> Key {
        Key {
            t: i64::from(i) * 7 - 100,
            start: if i.is_multiple_of(3) {
                NO_START
            } else {
                i64::from(i)
            },
            seq: u64::from(i) << 33,
            server: i % 5,
            pid: i,
            id: IdCode(1 + i % 4),
        }
    }

    #[test]
    fn keys_round_trip() {
        let mut bytes = Vec::new();
        key(12345).encode(&mut bytes);
        assert_eq!(bytes.len(), Key::BYTES);
        let k = Key::decode(&bytes);
        let want = key(12345);
        assert_eq!(
            (k.t, k.start, k.seq, k.server, k.pid, k.id),
            (want.t, want.start, want.seq, want.server, want.pid, want.id)
        );
    }

    /// Interleaved lists come back whole and in order, from the file (in
    /// blocks of any size) and from memory alike.
    #[test]
    fn interleaved_lists_read_back_in_order() {
        for limit in [1, 3, 1000, 5000, usize::MAX] {
            let mut ev = if limit == usize::MAX {
                Evidence::in_memory(IdBook::default())
            } else {
                Evidence::on_disk(IdBook::default(), limit)
            };
            let slots: Vec<Slot> = (0..4).map(|_| ev.open()).collect();
            let mut want: Vec<Vec<u32>> = vec![Vec::new(); 4];
            for i in 0..3000u32 {
                let s = (i * i % 7 % 4) as usize;
                if s == 3 {
                    continue; // an empty list
                }
                ev.push_key(slots[s], key(i));
                want[s].push(i);
            }
            let (_, ids) = ev.finish();
            for s in 0..4 {
                assert_eq!(ids[s].len(), want[s].len());
                let got: Vec<u32> = ids[s].iter().map(|k| k.unwrap().key.pid).collect();
                assert_eq!(got, want[s], "limit {limit}, list {s}");
                if limit < 3000 && !want[s].is_empty() {
                    assert!(ids[s].stored.is_some(), "limit {limit}: in the file");
                }
            }
        }
    }

    /// A write that fails (a full disk) sends the keys to memory: nothing
    /// is lost and the order holds.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_keeps_the_keys_in_memory() {
        let mut ev = Evidence::on_disk(IdBook::default(), 4);
        if let Some(disk) = &mut ev.disk {
            let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
            disk.file = LazyFile::with(Some(full.unwrap()));
        }
        let a = ev.open();
        let b = ev.open();
        for i in 0..50 {
            ev.push_key(if i % 3 == 0 { a } else { b }, key(i));
        }
        let (_, ids) = ev.finish();
        let pids = |s: &SessionIds| -> Vec<u32> { s.iter().map(|k| k.unwrap().key.pid).collect() };
        assert_eq!(
            pids(&ids[0]),
            (0..50).filter(|i| i % 3 == 0).collect::<Vec<_>>()
        );
        assert_eq!(
            pids(&ids[1]),
            (0..50).filter(|i| i % 3 != 0).collect::<Vec<_>>()
        );
        assert!(ids[0].stored.is_none() && ids[1].stored.is_none());
    }
}
