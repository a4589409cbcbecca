//! The successful logins set aside while sessions arrive ([`LoginSpill`]), in
//! an unlinked temporary file ([`crate::scratch`]).

use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

use super::{IdCode, Key, Login, NO_START};
use crate::scratch::{LazyFile, read_back_error};

/// Successful logins written aside while sessions arrive and read back
/// once, by [`Collector::finish`], keeping only those a burst can list:
/// in an unlinked temporary file (falling back to memory when none can be
/// written), or in memory.
pub(super) struct LoginSpill {
    /// Records not written to the file yet (all of them without a file).
    buf: Vec<u8>,
    pub(super) file: LazyFile,
    /// Bytes of whole records in the file.
    pub(super) in_file: u64,
    /// Whether to use a temporary file at all.
    use_file: bool,
}

/// Bytes of records gathered before they go to the file.
pub(super) const SPILL_CHUNK: usize = 1 << 20;

impl LoginSpill {
    pub(super) fn new(use_file: bool) -> Self {
        LoginSpill {
            buf: Vec::new(),
            file: LazyFile::default(),
            in_file: 0,
            use_file,
        }
    }

    pub(super) fn push(&mut self, login: &Login, id: &str) {
        let b = &mut self.buf;
        b.extend_from_slice(&login.user.to_le_bytes());
        b.extend_from_slice(&login.client.to_le_bytes());
        b.extend_from_slice(&login.key.t.to_le_bytes());
        b.push(u8::from(login.key.start().is_some()));
        b.extend_from_slice(&login.key.start().unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&login.key.server.to_le_bytes());
        b.extend_from_slice(&login.key.pid.to_le_bytes());
        b.extend_from_slice(&login.key.seq.to_le_bytes());
        // Session ids are short; a longer one would be cut, not misread.
        let id = &id.as_bytes()[..id.len().min(u32::MAX as usize)];
        b.extend_from_slice(&(id.len() as u32).to_le_bytes());
        b.extend_from_slice(id);
        if self.use_file && self.buf.len() >= SPILL_CHUNK {
            self.write_chunk();
        }
    }

    /// Moves the gathered records to the file. Without a file (none could
    /// be created, or a write failed) they stay in memory; the file keeps
    /// the whole records written before.
    fn write_chunk(&mut self) {
        let Some(file) = self.file.get() else {
            self.use_file = false;
            return;
        };
        match file.write_all(&self.buf) {
            Ok(()) => {
                self.in_file += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(_) => self.use_file = false,
        }
    }

    /// Reads every record back, in the order written.
    pub(super) fn read(mut self, each: &mut dyn FnMut(Login, &str)) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        match std::mem::take(&mut self.file).into_file() {
            Some(mut file) if self.in_file > 0 => {
                file.seek(SeekFrom::Start(0)).map_err(read_back_error)?;
                let from_file = BufReader::with_capacity(SPILL_CHUNK, file).take(self.in_file);
                decode_logins(from_file.chain(&buf[..]), each).map_err(read_back_error)
            }
            _ => decode_logins(&buf[..], each),
        }
    }
}

/// Decodes the records [`LoginSpill::push`] wrote: user, client (u32), time
/// (i64), start (a presence byte and an i64), server, pid (u32), arrival
/// (u64), id length (u32), id bytes; little-endian. The logins' keys come
/// with a placeholder [`IdCode`]: the id is given as text.
fn decode_logins(mut reader: impl Read, each: &mut dyn FnMut(Login, &str)) -> io::Result<()> {
    const HEAD: usize = 45;
    let mut head = [0u8; HEAD];
    let mut bytes = Vec::new();
    loop {
        // A record starts here, or the records end.
        match reader.read(&mut head[..1]) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        reader.read_exact(&mut head[1..])?;
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let i64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[i..i + 8]);
            i64::from_le_bytes(b)
        };
        let login = Login {
            user: u32_at(0),
            client: u32_at(4),
            key: Key {
                t: i64_at(8),
                start: if head[16] == 1 { i64_at(17) } else { NO_START },
                seq: i64_at(33) as u64,
                server: u32_at(25),
                pid: u32_at(29),
                id: IdCode(1),
            },
        };
        bytes.resize(u32_at(41) as usize, 0);
        reader.read_exact(&mut bytes)?;
        each(login, &String::from_utf8_lossy(&bytes));
    }
}
