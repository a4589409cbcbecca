//! Opening inputs: paths, directories, stdin, gzip. The only module of the
//! parsing side that does I/O; it yields byte blocks with a label.
//!
//! - `expand` turns command-line inputs into an ordered list: `-` is stdin,
//!   a directory stands for every regular file under it (recursively,
//!   sorted by path, hidden `.`-prefixed files and directories skipped,
//!   symbolic links to files followed, symbolic links to directories not
//!   descended into). A path named explicitly is taken as given, hidden or
//!   not, whatever its file type (a FIFO from `<(zcat …)` works).
//! - `stream` reads one input in a background thread, in bounded blocks
//!   (`load` collects them). gzip is recognised by its magic bytes, not the
//!   file name, and may have several members (`cat a.gz b.gz`). A truncated
//!   or corrupt gzip keeps everything decompressed before the damage and
//!   reports the compressed offset where decoding stopped.
//! - `server_label` derives a per-server label from the file name, so the
//!   hourly files of one server share it (rules on the function).

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::name::Name;
use flate2::bufread::MultiGzDecoder;

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    Path(PathBuf),
    Stdin,
    /// Text already in memory (a CloudWatch log stream rendered as lines):
    /// its input label and server label, and the bytes (not compressed).
    Memory {
        label: Name,
        server: Name,
        bytes: Arc<[u8]>,
    },
}

impl InputSpec {
    /// How messages name the input: the path as given (lossy UTF-8), `-`
    /// for stdin, or a stream's label.
    pub fn label(&self) -> String {
        match self {
            InputSpec::Path(path) => path.to_string_lossy().into_owned(),
            InputSpec::Stdin => "-".to_owned(),
            InputSpec::Memory { label, .. } => label.to_string(),
        }
    }
}

/// An input read into memory.
#[derive(Debug)]
pub struct Loaded {
    /// The path as given, or `-` for stdin.
    pub label: Name,
    /// Server label derived from the path (see `server_label`); `stdin` for stdin.
    pub server: Name,
    /// The (decompressed) content; on error, everything read before it.
    pub bytes: Vec<u8>,
    pub error: Option<SourceError>,
}

/// Why an input could not be listed or read (completely).
#[derive(Debug)]
pub enum SourceError {
    /// A path given on the command line does not exist.
    NotFound { path: PathBuf },
    /// The OS refused to open, list or read a path.
    Io { path: PathBuf, source: io::Error },
    /// A gzip stream is truncated or corrupt; `offset` is the compressed
    /// byte offset where decoding stopped.
    Gzip {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
}

impl SourceError {
    /// The path the error is about (`-` for stdin).
    pub fn path(&self) -> &Path {
        match self {
            SourceError::NotFound { path }
            | SourceError::Io { path, .. }
            | SourceError::Gzip { path, .. } => path,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::NotFound { path } => {
                write!(f, "{}: no such file or directory", path.display())
            }
            SourceError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            SourceError::Gzip {
                path,
                offset,
                source,
            } => write!(
                f,
                "{}: gzip data truncated or corrupt at compressed byte {offset} ({source}); \
                 the data before it was read",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SourceError::NotFound { .. } => None,
            SourceError::Io { source, .. } | SourceError::Gzip { source, .. } => Some(source),
        }
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Collects the regular files under `dir` (recursively, hidden entries
/// skipped, directory symlinks not followed).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let io_err = |source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        let is_file =
            kind.is_file() || (kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if kind.is_dir() {
            walk(&path, out)?;
        } else if is_file {
            out.push(path);
        }
    }
    Ok(())
}

/// Expands command-line inputs: `-` → stdin, a directory → its regular
/// files (recursive, sorted by path, hidden entries skipped), anything else
/// that exists → itself. A missing path is an error naming it.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<InputSpec>, SourceError> {
    let mut specs = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            specs.push(InputSpec::Stdin);
            continue;
        }
        let meta = fs::metadata(input).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SourceError::NotFound {
                path: input.clone(),
            },
            _ => SourceError::Io {
                path: input.clone(),
                source,
            },
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            files.sort();
            specs.extend(files.into_iter().map(InputSpec::Path));
        } else {
            specs.push(InputSpec::Path(input.clone()));
        }
    }
    Ok(specs)
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads one whole input into memory (gzip detected by magic bytes), through
/// the same reader as [`stream`]. Never fails outright: errors are in
/// `Loaded::error`, and `bytes` keeps what was read before them.
pub fn load(spec: &InputSpec) -> Loaded {
    let stream = stream(spec, 1 << 20, 0, 2);
    let mut bytes = Vec::new();
    let mut error = None;
    for block in stream.blocks.iter() {
        match block {
            Block::Data(data) => bytes.extend_from_slice(&data),
            Block::Error(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Loaded {
        label: stream.label,
        server: stream.server,
        bytes,
        error,
    }
}

/// File names (after stripping) that say nothing about which server wrote a log.
const GENERIC_FILES: &[&str] = &[
    "postgresql",
    "postgres",
    "pg",
    "pgsql",
    "log",
    "logs",
    "error",
    "errors",
    "stderr",
    "csvlog",
    "jsonlog",
    "syslog",
    "messages",
    "server",
];

/// Directory names that say nothing about which server wrote a log.
const GENERIC_DIRS: &[&str] = &[
    "postgresql",
    "postgres",
    "pg",
    "pgsql",
    "log",
    "logs",
    "pg_log",
    "pglog",
    "error",
    "errors",
    "var",
    "lib",
    "usr",
    "tmp",
    "data",
    "pgdata",
    "home",
    "srv",
    "opt",
    "mnt",
    "root",
];

fn is_generic_file(name: &str) -> bool {
    name.is_empty() || GENERIC_FILES.contains(&name.to_ascii_lowercase().as_str())
}

fn is_generic_dir(name: &str) -> bool {
    GENERIC_DIRS.contains(&name.to_ascii_lowercase().as_str())
}

/// A CloudWatch export chunk (`000000.gz`): the directory is the log stream.
fn is_numbered_chunk(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit())
}

const WEEKDAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Strips one trailing rotation or date suffix; `None` if there is none.
fn strip_rotation(name: &str) -> Option<&str> {
    // A run of digits and separators at the end, holding a date (≥ 8 digits):
    // `.2024-03-10-11`, `-2024-03-10_111000`, `-20240310`, `.2024-03-10-1110`.
    let tail = name.len()
        - name
            .trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
            .len();
    let run = &name[name.len() - tail..];
    if run.bytes().filter(u8::is_ascii_digit).count() >= 8 {
        // Cut at the first separator that is followed by a digit.
        let cut = run.char_indices().find(|&(i, c)| {
            matches!(c, '-' | '_' | '.') && run[i + 1..].starts_with(|d: char| d.is_ascii_digit())
        });
        if let Some((i, _)) = cut {
            let stem = &name[..name.len() - tail + i];
            if !stem.is_empty() {
                return Some(stem);
            }
        }
    }
    // Numbered rotation: `.1`, `.12`.
    if let Some((stem, n)) = name.rsplit_once('.')
        && !stem.is_empty()
        && !n.is_empty()
        && n.len() <= 3
        && n.bytes().all(|c| c.is_ascii_digit())
    {
        return Some(stem);
    }
    // Weekday files: `postgresql-Mon`.
    if let Some((stem, day)) = name.rsplit_once(['-', '_'])
        && !stem.is_empty()
        && WEEKDAYS.contains(&day)
    {
        return Some(stem);
    }
    None
}

fn strip_extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()
        && matches!(
            ext.to_ascii_lowercase().as_str(),
            "log" | "csv" | "json" | "jsonl"
        ))
    .then_some(stem)
}

/// The server label for a log file path.
///
/// 1. Take the file name; strip `.gz`; strip trailing rotation suffixes
///    (dates such as `.2024-03-10-11`, Aurora's `.2024-03-10-1110`,
///    `-20240310`; numbered `.1`; weekday `-Mon`); strip the extension
///    `.log`/`.csv`/`.json`/`.jsonl`; strip date suffixes again
///    (`postgresql-2024-03-10_111000.log` → `postgresql`).
/// 2. If what remains is specific (`postgresql-15-main`, `db1`), that is
///    the label.
/// 3. Otherwise (`postgresql`, `postgres`, `pg`, …) the label is made of
///    the nearest two non-generic directory names of the absolute path,
///    outer first, joined by `-`: `samples/pg15/rds/postgresql.log` →
///    `pg15-rds`, `/srv/db1/pg_log/postgresql-Mon.log` → `db1`,
///    `/var/lib/postgresql/15/main/log/postgresql.json` → `15-main`
///    (generic directories such as `log`, `pg_log`, `error`, `data`, `var`
///    are skipped, as are hidden ones). If no directory qualifies, the
///    stripped file name is used.
/// 4. An all-digit name (a CloudWatch export's `<task>/<stream>/000000.gz`)
///    takes only its directory, the log stream: `mydb-instance-1`.
pub fn server_label(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: &str = &file;
    if let Some(stem) = name.strip_suffix(".gz").filter(|s| !s.is_empty()) {
        name = stem;
    }
    while let Some(stem) = strip_rotation(name) {
        name = stem;
    }
    if let Some(stem) = strip_extension(name) {
        name = stem;
    }
    while let Some(stem) = strip_rotation(name) {
        name = stem;
    }
    let chunk = is_numbered_chunk(name);
    if !chunk && !is_generic_file(name) {
        return name.to_owned();
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dirs: Vec<String> = absolute
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .rev()
        .filter(|d| !is_generic_dir(d) && !d.starts_with('.'))
        .take(if chunk { 1 } else { 2 })
        .collect();
    if dirs.is_empty() {
        return if name.is_empty() {
            file
        } else {
            name.to_owned()
        };
    }
    dirs.reverse();
    dirs.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("pgtrail-source-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Text that does not compress to nothing, so truncation bites mid-stream.
    fn sample_text(lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|i| format!("2026-11-28 14:57:{:02}.{:03} UTC [{}] LOG:  connection received: host=10.0.{}.{} port={}\n", i % 60, i % 1000, 1000 + i * 7, i % 251, (i * 13) % 251, 1024 + (i * 7919) % 60000))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn gzip_round_trip_by_magic_not_name() {
        let dir = TempDir::new("gz");
        let text = sample_text(100);
        let p = dir.file("db1/postgresql.log", &gz(&text));
        let loaded = load(&InputSpec::Path(p.clone()));
        assert!(loaded.error.is_none(), "{:?}", loaded.error);
        assert_eq!(loaded.bytes, text);
        assert_eq!(&*loaded.label, p.to_string_lossy());
        // Label: the two nearest specific directories (the temp dir, db1).
        let tmp_name = dir.0.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(*loaded.server, format!("{tmp_name}-db1"));

        let plain = dir.file("db1/plain.log.gz", &text);
        let loaded = load(&InputSpec::Path(plain));
        assert!(loaded.error.is_none());
        assert_eq!(loaded.bytes, text);
    }

    /// Every block starts with the head room asked for and the bytes after
    /// it, in order, are the input, plain or gzip, whether the blocks are
    /// fresh (grown as bytes come) or handed back (shorter than the room,
    /// shorter than a block, a whole block, or longer than one).
    #[test]
    fn stream_blocks_leave_head_room_and_carry_the_input() {
        let dir = TempDir::new("blocks");
        let text = sample_text(20_000);
        assert!(text.len() > 1_000_000);
        let plain = dir.file("plain.log", &text);
        let packed = dir.file("packed.log.gz", &gz(&text));
        for path in [plain, packed] {
            for (block_bytes, head_room) in [(1_000, 0), (300_000, 128 * 1024), (1 << 20, 100)] {
                let s = stream(&InputSpec::Path(path.clone()), block_bytes, head_room, 2);
                let mut joined = Vec::new();
                for (handed_back, block) in s.blocks.iter().enumerate() {
                    let Block::Data(mut data) = block else {
                        panic!("{}: a read error", path.display());
                    };
                    assert!(data.len() > head_room && data.len() <= head_room + block_bytes);
                    joined.extend_from_slice(&data[head_room..]);
                    // Back at a length of its own, as the engine does, or
                    // longer than a block (a buffer that held a long record).
                    match handed_back % 4 {
                        0 => data.truncate(head_room / 2),
                        1 => data.truncate(data.len() - 1),
                        2 => data.resize(3 * (head_room + block_bytes), b'x'),
                        _ => {}
                    }
                    s.recycle(data);
                }
                assert!(
                    joined == text,
                    "{}: {block_bytes}, {head_room}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn multi_member_gzip() {
        let dir = TempDir::new("multi");
        let (a, b) = (sample_text(10), b"second member\n".to_vec());
        let mut both = gz(&a);
        both.extend(gz(&b));
        let loaded = load(&InputSpec::Path(dir.file("x.gz", &both)));
        assert!(loaded.error.is_none(), "{:?}", loaded.error);
        assert_eq!(loaded.bytes, [a, b].concat());
    }

    #[test]
    fn truncated_gzip_keeps_what_was_read() {
        let dir = TempDir::new("trunc");
        let text = sample_text(20_000);
        let first = gz(b"complete first member\n");
        let second = gz(&text);
        let mut data = first.clone();
        data.extend_from_slice(&second[..second.len() / 2]);
        let cut_at = data.len() as u64;
        let p = dir.file("postgresql.log.2026-11-28-14.gz", &data);
        let loaded = load(&InputSpec::Path(p.clone()));
        let err = loaded.error.expect("truncation is an error");
        match &err {
            SourceError::Gzip { path, offset, .. } => {
                assert_eq!(path, &p);
                assert!(
                    *offset > first.len() as u64 && *offset <= cut_at,
                    "{offset}"
                );
            }
            other => panic!("{other:?}"),
        }
        let shown = err.to_string();
        assert!(
            shown.contains(&*p.to_string_lossy()) && shown.contains("compressed byte"),
            "{shown}"
        );
        assert!(loaded.bytes.starts_with(b"complete first member\n"));
        let rest = &loaded.bytes[22..];
        assert!(rest.len() > text.len() / 4, "{}", rest.len());
        assert!(text.starts_with(rest));

        // Corrupt (not truncated): flip bytes in the middle of the deflate data.
        let mut corrupt = second.clone();
        for b in &mut corrupt[second.len() / 2..second.len() / 2 + 64] {
            *b ^= 0x5a;
        }
        let loaded = load(&InputSpec::Path(dir.file("c.gz", &corrupt)));
        assert!(
            matches!(loaded.error, Some(SourceError::Gzip { .. })),
            "{:?}",
            loaded.error
        );
        // Inflating damaged data yields some garbage before the damage is
        // detected; what precedes the damage is intact.
        assert!(loaded.bytes.len() > 4096);
        assert_eq!(loaded.bytes[..4096], text[..4096]);
    }

    #[test]
    fn unreadable_and_missing() {
        let dir = TempDir::new("missing");
        let missing = dir.0.join("nope.log");
        let err = expand(std::slice::from_ref(&missing)).unwrap_err();
        assert!(matches!(&err, SourceError::NotFound { path } if path == &missing));
        assert!(err.to_string().contains("nope.log"));

        let loaded = load(&InputSpec::Path(missing.clone()));
        let err = loaded.error.unwrap();
        assert!(matches!(&err, SourceError::Io { path, .. } if path == &missing));
        assert!(std::error::Error::source(&err).is_some());
        assert!(loaded.bytes.is_empty());

        // A directory given to load (not through expand) is an OS error too.
        let loaded = load(&InputSpec::Path(dir.0.clone()));
        assert!(matches!(loaded.error, Some(SourceError::Io { .. })));
    }

    #[test]
    fn directory_expansion_order() {
        let dir = TempDir::new("walk");
        for rel in [
            "b/2.log",
            "a/z.log",
            "a/b/y.log",
            "c.log",
            ".hidden.log",
            ".git/config",
            "a/.x/secret.log",
        ] {
            dir.file(rel, b"x\n");
        }
        let specs =
            expand(&[dir.0.clone(), PathBuf::from("-"), dir.0.join(".hidden.log")]).unwrap();
        let names: Vec<String> = specs
            .iter()
            .map(|s| match s {
                InputSpec::Path(p) => p
                    .strip_prefix(&dir.0)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                InputSpec::Stdin => "-".to_owned(),
                InputSpec::Memory { label, .. } => label.to_string(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "a/b/y.log",
                "a/z.log",
                "b/2.log",
                "c.log",
                "-",
                ".hidden.log"
            ]
        );
    }

    #[test]
    fn server_labels() {
        let cases = [
            ("samples/pg15/rds/postgresql.log", "pg15-rds"),
            ("samples/pg15/rds/postgresql.log.2024-03-10-11", "pg15-rds"),
            (
                "samples/pg15/rds/postgresql.log.2024-03-10-11.gz",
                "pg15-rds",
            ),
            ("aurora/db7/postgresql.log.2024-03-10-1110", "aurora-db7"),
            ("/srv/db1/pg_log/postgresql-2024-03-10_111000.log", "db1"),
            ("/srv/db1/pg_log/postgresql-2024-03-10_111000.csv", "db1"),
            ("/srv/db1/pg_log/postgresql-Mon.log", "db1"),
            ("/var/lib/postgresql/15/main/log/postgresql.json", "15-main"),
            (
                "/var/log/postgresql/postgresql-15-main.log",
                "postgresql-15-main",
            ),
            (
                "/var/log/postgresql/postgresql-15-main.log.1",
                "postgresql-15-main",
            ),
            (
                "/var/log/postgresql/postgresql-15-main.log.2.gz",
                "postgresql-15-main",
            ),
            ("/logs/orders-db.log-20240310.gz", "orders-db"),
            ("/exports/3f2a/mydb-instance-1/000000.gz", "mydb-instance-1"),
            ("/var/log/postgresql.log", "postgresql"),
            ("/var/log/syslog", "syslog"),
            ("samples/pg15/syslog/postgresql.log", "pg15-syslog"),
        ];
        for (path, want) in cases {
            assert_eq!(server_label(Path::new(path)), want, "{path}");
        }
        let relative = server_label(Path::new("postgresql.log"));
        assert!(!relative.is_empty());
    }

    #[test]
    fn errors_display_path() {
        let e = SourceError::Gzip {
            path: "a/b.gz".into(),
            offset: 1234,
            source: io::Error::other("corrupt deflate stream"),
        };
        assert_eq!(e.path(), Path::new("a/b.gz"));
        let s = e.to_string();
        assert!(s.starts_with("a/b.gz: ") && s.contains("1234"), "{s}");
    }
}

/// A block of an input read by [`stream`], or why reading stopped.
#[derive(Debug)]
pub enum Block {
    /// Decompressed bytes, in order, after the `head_room` bytes that
    /// [`stream`] was asked to leave free at the start of every block.
    Data(Vec<u8>),
    /// Reading stopped here; everything sent before still counts.
    Error(SourceError),
}

/// An input being read by a background thread: decompression (gzip,
/// detected by magic bytes) runs in that thread, so it overlaps parsing.
/// At most `depth` blocks of `block_bytes` wait in the channel: memory stays
/// bounded whatever the input size. Each block starts with `head_room` bytes
/// of room (their contents are unspecified), where the receiver can put the
/// end of the previous block in front of this one without copying the block.
pub struct Stream {
    pub label: Name,
    pub server: Name,
    pub blocks: std::sync::mpsc::Receiver<Block>,
    /// Blocks handed back once read ([`Stream::recycle`]).
    spent: std::sync::mpsc::SyncSender<Vec<u8>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    /// Hands a block's buffer back to the reader thread, which fills it
    /// again instead of allocating and zeroing a new one. Optional: a
    /// buffer not handed back is simply freed.
    pub fn recycle(&self, block: Vec<u8>) {
        let _ = self.spent.try_send(block);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Dropping the receiver makes the reader's next send fail and stop.
        if let Some(handle) = self.reader.take() {
            let (_, dummy) = std::sync::mpsc::channel();
            drop(std::mem::replace(&mut self.blocks, dummy));
            let _ = handle.join();
        }
    }
}

/// Counts the bytes read through it (the compressed offset of gzip errors).
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Starts reading `spec` in a background thread.
pub fn stream(spec: &InputSpec, block_bytes: usize, head_room: usize, depth: usize) -> Stream {
    let (label, server, path): (Name, Name, PathBuf) = match spec {
        InputSpec::Stdin => (Name::new("-"), Name::new("stdin"), PathBuf::from("-")),
        InputSpec::Path(p) => (
            Name::new(&spec.label()),
            Name::new(server_label(p).as_str()),
            p.clone(),
        ),
        InputSpec::Memory { label, server, .. } => (*label, *server, PathBuf::from(&**label)),
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(depth.max(1));
    let (spent, recycled) = std::sync::mpsc::sync_channel(depth.max(1) + 1);
    let spec = spec.clone();
    let reader = std::thread::spawn(move || {
        let input: Box<dyn Read> = match &spec {
            InputSpec::Stdin => Box::new(io::stdin()),
            InputSpec::Memory { bytes, .. } => {
                for block in bytes.chunks(block_bytes.max(1)) {
                    let mut data = vec![0; head_room];
                    data.extend_from_slice(block);
                    if tx.send(Block::Data(data)).is_err() {
                        return;
                    }
                }
                return;
            }
            InputSpec::Path(p) => match fs::File::open(p) {
                Ok(f) => Box::new(f),
                Err(source) => {
                    let _ = tx.send(Block::Error(SourceError::Io { path, source }));
                    return;
                }
            },
        };
        let mut input = io::BufReader::with_capacity(
            1 << 16,
            Counting {
                inner: input,
                count: 0,
            },
        );
        let gzip = match io::BufRead::fill_buf(&mut input) {
            Ok(head) => head.starts_with(&GZIP_MAGIC),
            Err(source) => {
                let _ = tx.send(Block::Error(SourceError::Io { path, source }));
                return;
            }
        };
        if gzip {
            let mut decoder = MultiGzDecoder::new(input);
            pump(
                &mut decoder,
                (&tx, &recycled),
                (head_room, block_bytes),
                |e, d: &MultiGzDecoder<_>| {
                    let consumed = d.get_ref().get_ref().count - d.get_ref().buffer().len() as u64;
                    SourceError::Gzip {
                        path: path.clone(),
                        offset: consumed,
                        source: e,
                    }
                },
            );
        } else {
            pump(
                &mut input,
                (&tx, &recycled),
                (head_room, block_bytes),
                |source, _| SourceError::Io {
                    path: path.clone(),
                    source,
                },
            );
        }
    });
    Stream {
        label,
        server,
        blocks: rx,
        spent,
        reader: Some(reader),
    }
}

/// The room a fresh block starts with, before it grows.
const FIRST_READ: usize = 64 * 1024;

/// Reads `r` into blocks of about `block_bytes`, each after `head_room`
/// bytes left free, and sends them; an error is sent last. Stops quietly
/// when the receiver is gone. Blocks handed back (`recycled`) are filled
/// again: only new memory is zeroed.
fn pump<R: Read>(
    r: &mut R,
    (tx, recycled): (
        &std::sync::mpsc::SyncSender<Block>,
        &std::sync::mpsc::Receiver<Vec<u8>>,
    ),
    (head_room, block_bytes): (usize, usize),
    error: impl Fn(io::Error, &R) -> SourceError,
) {
    let full = head_room + block_bytes;
    loop {
        let mut block = recycled.try_recv().unwrap_or_default();
        // Reserved whole (untouched memory costs nothing), so that growing
        // never moves the bytes read.
        block.reserve_exact(full.saturating_sub(block.len()));
        // A block handed back is filled to a block's size at most.
        block.truncate(full);
        if block.len() < head_room {
            block.resize(head_room, 0);
        }
        let mut filled = head_room;
        let mut failure = None;
        while filled < full {
            if filled == block.len() {
                // Room grows as bytes come, zeroed once: a block handed
                // back is not zeroed again, and a small file does not have
                // a whole fresh block zeroed.
                let room = (2 * block.len()).max(head_room + FIRST_READ).min(full);
                block.resize(room, 0);
            }
            match r.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        block.truncate(filled);
        if filled > head_room && tx.send(Block::Data(block)).is_err() {
            return;
        }
        if let Some(e) = failure {
            let _ = tx.send(Block::Error(error(e, r)));
            return;
        }
        if filled < full {
            // End of input (a short block is only returned at the end).
            return;
        }
    }
}
