//! IAM correlation: which AWS principal a database session that logged in
//! with an RDS IAM token (through PAM) was.
//!
//! No AWS log records the signing of an IAM database token or the
//! `rds-db:connect` check, so the answer is built from circumstantial
//! evidence, each piece with its provenance:
//!
//! - `cloudtrail`: IAM sessions (AssumeRole*, GetFederationToken,
//!   GetSessionToken) and every call made with an access key (key → time,
//!   address);
//! - `policy`: who may `rds-db:connect` as which database user
//!   (`aws iam get-account-authorization-details`);
//! - `inventory`: which EC2 instance (and instance profile) holds an
//!   address (`aws ec2 describe-instances` / `describe-network-interfaces`);
//! - `config`: which account, region and DB resource id a server is;
//! - `correlate`: ranks the candidates for one session and fills
//!   [`crate::cloud::IamAttribution`].
//!
//! Everything is read before the logs; correlation runs per session as
//! sessions stream out of the stitcher.

pub mod cloudtrail;
pub mod config;
pub mod correlate;
pub mod inventory;
pub mod policy;

mod glob;
mod json;

use std::fmt;
use std::path::{Path, PathBuf};

pub use correlate::{CorrelateOptions, Correlator, IamIndex};

/// Why an AWS input could not be used (completely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The file could not be read (missing, I/O error, truncated gzip).
    Unreadable { path: PathBuf, message: String },
    /// The file was read but is not the expected kind of AWS export.
    Unrecognised { path: PathBuf, message: String },
}

impl InputError {
    pub fn unreadable(path: &Path, message: impl Into<String>) -> Self {
        InputError::Unreadable {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub fn unrecognised(path: &Path, message: impl Into<String>) -> Self {
        InputError::Unrecognised {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Unreadable { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
            InputError::Unrecognised { path, message } => {
                write!(f, "{}: {message}", path.display())
            }
        }
    }
}

/// Reads every file of `path` (a file, or a directory walked recursively in
/// path order, hidden entries skipped), gzip detected by content. Returns
/// (path, bytes) per file; a file that cannot be read completely is an
/// error naming it.
pub(crate) fn read_files(path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, InputError> {
    use crate::source::{self, InputSpec};
    let specs = source::expand(std::slice::from_ref(&path.to_path_buf()))
        .map_err(|e| InputError::unreadable(e.path(), source_message(&e)))?;
    let mut files = Vec::new();
    for spec in specs {
        let file = match &spec {
            InputSpec::Path(p) => p.clone(),
            InputSpec::Stdin => PathBuf::from("-"),
            InputSpec::Memory { label, .. } => PathBuf::from(&**label),
        };
        let loaded = source::load(&spec);
        if let Some(e) = loaded.error {
            return Err(InputError::unreadable(&file, source_message(&e)));
        }
        files.push((file, loaded.bytes));
    }
    if files.is_empty() {
        return Err(InputError::unreadable(path, "no files found"));
    }
    Ok(files)
}

/// Reads the JSON exports of `path` (a file, or every file of a directory)
/// and hands each parsed document to `add` with its label. A file `add`
/// rejects is an error when named, and a note in `skipped` when met in a
/// directory (which may hold other exports); a directory with no usable
/// file is an error.
pub(crate) fn read_json_exports(
    path: &Path,
    skipped: &mut Vec<String>,
    mut add: impl FnMut(&str, &serde_json::Value) -> Result<(), String>,
) -> Result<(), InputError> {
    let walked = path.is_dir();
    let mut used = 0usize;
    for (file, bytes) in read_files(path)? {
        let label = file.display().to_string();
        let added = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| format!("bad JSON at line {}: {e}", e.line()))
            .and_then(|doc| add(&label, &doc));
        match added {
            Ok(()) => used += 1,
            Err(m) if walked => skipped.push(format!("{label}: {m}")),
            Err(m) => return Err(InputError::unrecognised(&file, m)),
        }
    }
    if used == 0 {
        return Err(InputError::unrecognised(
            path,
            "no usable file in the directory",
        ));
    }
    Ok(())
}

/// A source error's text without its path (which `InputError` prints).
fn source_message(e: &crate::source::SourceError) -> String {
    use crate::source::SourceError;
    match e {
        SourceError::NotFound { .. } => "no such file or directory".to_owned(),
        SourceError::Io { source, .. } => source.to_string(),
        SourceError::Gzip { offset, source, .. } => {
            format!("gzip data truncated or corrupt at compressed byte {offset} ({source})")
        }
    }
}

/// An address as text → its canonical form (an IPv4-mapped IPv6 address
/// such as `::ffff:10.0.0.1` becomes `10.0.0.1`), or `None` when it is not
/// an address (`ec2.amazonaws.com`, `[local]`).
pub(crate) fn parse_ip(text: &str) -> Option<std::net::IpAddr> {
    text.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}
