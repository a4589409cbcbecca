//! The RDS `iam-db-auth-error` log: one line per IAM database login that
//! RDS refused, with the reason PostgreSQL's own log never gives (its PAM
//! failure only says `Authentication failure`). The line format and the
//! error codes live in `grammars/iam_db_auth_error.toml`, with their sources.
//!
//! [`IamAuthErrors`] collects the lines of a run and attaches each to the
//! PAM failure session of the same user closest in time (within
//! [`MATCH_WINDOW_MS`], preferring the same server), as a note
//! `iam-db-auth-error <reason> (<code>): <message>` plus its provenance in
//! the session's evidence.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::event::{FailureClass, Provenance};
use crate::name::Name;
use crate::session::Session;

/// How far apart the IAM error and the PAM failure may be.
pub const MATCH_WINDOW_MS: i64 = 10_000;

#[derive(Debug, Deserialize)]
struct File {
    error: Vec<ErrorCode>,
}

/// One error code of the log, from the grammar file.
#[derive(Debug, Deserialize)]
pub struct ErrorCode {
    pub code: String,
    pub reason: String,
    pub description: String,
    pub samples: Vec<String>,
    pub sample_source: String,
}

/// The error codes of `grammars/iam_db_auth_error.toml`.
pub fn codes() -> &'static [ErrorCode] {
    static CODES: OnceLock<Vec<ErrorCode>> = OnceLock::new();
    CODES.get_or_init(|| {
        toml::from_str::<File>(include_str!("../grammars/iam_db_auth_error.toml"))
            .map(|f| f.error)
            .unwrap_or_default()
    })
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAuthLine {
    /// From the line's own `YYYY-MM-DDTHH:MM:SS,mmm` (UTC), when present.
    pub time_ms: Option<i64>,
    pub level: String,
    pub user: Option<String>,
    pub status: Option<u16>,
    pub code: Option<String>,
    /// The `reason` of the code (or the code itself when unknown).
    pub reason: Option<String>,
    /// The text after the level.
    pub message: String,
}

/// `2025-09-22T12:02:30,806` → epoch ms (UTC).
fn parse_time(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < 23 || b[10] != b'T' || b[19] != b',' {
        return None;
    }
    let mut iso = b[..23].to_vec();
    iso[19] = b'.';
    iso.push(b'Z');
    let (ms, _) = crate::time::parse_iso_utc(&iso)?;
    Some((ms, 23))
}

/// Parses one line (`[time] [LEVEL] message`); `None` if it is not one.
pub fn parse_line(line: &str) -> Option<IamAuthLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (time_ms, rest) = match parse_time(line.as_bytes()) {
        Some((ms, used)) => (Some(ms), line[used..].trim_start()),
        None => (None, line.trim_start()),
    };
    let rest = rest.strip_prefix('[')?;
    let (level, message) = rest.split_once(']')?;
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let message = message.trim().to_owned();
    if !message.contains("connection request for user") {
        return None;
    }
    let user = message.split_once("for user ").and_then(|(_, after)| {
        let after = after.trim_start();
        let (quote, body) = match after.chars().next()? {
            q @ ('\'' | '`' | '"') => (Some(q), &after[1..]),
            _ => (None, after),
        };
        let end = match quote {
            Some(q) => body.find(q)?,
            None => body.find(' ').unwrap_or(body.len()),
        };
        Some(body[..end].to_owned())
    });
    let tail = message.rfind("(Status Code:").map(|at| &message[at..]);
    let status = tail.and_then(|t| {
        let digits: String = t["(Status Code:".len()..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    let code = tail.and_then(|t| {
        let after = t.split_once("Error Code:")?.1.trim_start();
        let code: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!code.is_empty()).then_some(code)
    });
    let reason = code.as_ref().map(|c| {
        codes()
            .iter()
            .find(|k| &k.code == c)
            .map_or_else(|| c.clone(), |k| k.reason.clone())
    });
    Some(IamAuthLine {
        time_ms,
        level: level.to_owned(),
        user,
        status,
        code,
        reason,
        message,
    })
}

/// True when the first non-empty line (S3 export wrapper allowed) is one.
pub fn looks_like(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n')
        .map(|l| crate::record::stderr::strip_export_wrapper(l).1)
        .find(|l| !l.trim_ascii().is_empty())
        .and_then(|l| std::str::from_utf8(l).ok())
        .is_some_and(|l| parse_line(l).is_some_and(|p| p.time_ms.is_some()))
}

/// A parsed line with where it came from.
#[derive(Debug, Clone)]
pub struct IamAuthError {
    pub line: IamAuthLine,
    /// The line's time, else the CloudWatch event time.
    pub time_ms: Option<i64>,
    /// The server label (CloudWatch stream or file's label).
    pub server: Name,
    pub source: Provenance,
}

/// Result of reading one `iam-db-auth-error` input.
#[derive(Debug, Default)]
pub struct ReadStats {
    pub lines: u64,
    pub errors: u64,
    /// Non-empty lines that are not of the format (counted, reported).
    pub unrecognised: u64,
}

/// The IAM errors of a run, matched to PAM failures as sessions end.
#[derive(Debug, Default)]
pub struct IamAuthErrors {
    errors: Vec<IamAuthError>,
    used: Vec<bool>,
}

impl IamAuthErrors {
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn push(&mut self, error: IamAuthError) {
        self.errors.push(error);
        self.used.push(false);
    }

    /// Reads log text (`input` names it in provenance; `fallback_time`
    /// gives the time of a line without one, e.g. the CloudWatch event's).
    pub fn read_text(
        &mut self,
        text: &[u8],
        input: Name,
        server: Name,
        fallback_time: &dyn Fn(u64) -> (Option<i64>, Option<Arc<str>>),
    ) -> ReadStats {
        let mut stats = ReadStats::default();
        for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
            let number = n as u64 + 1;
            let (wrapper_ms, content) = crate::record::stderr::strip_export_wrapper(raw);
            if content.trim_ascii().is_empty() {
                continue;
            }
            stats.lines += 1;
            let parsed = std::str::from_utf8(content).ok().and_then(parse_line);
            let Some(line) = parsed else {
                stats.unrecognised += 1;
                continue;
            };
            stats.errors += 1;
            let (event_ms, event_id) = fallback_time(number);
            self.push(IamAuthError {
                time_ms: line.time_ms.or(wrapper_ms).or(event_ms),
                line,
                server,
                source: Provenance {
                    input,
                    line: number,
                    event_id,
                },
            });
        }
        stats
    }

    /// Attaches the closest unused error of the same user to a PAM failure.
    pub fn attach(&mut self, session: &mut Session) {
        if self.errors.is_empty() || session.failure_class != Some(FailureClass::Pam) {
            return;
        }
        let (Some(user), Some(at)) = (&session.user, session.end_ms.or(session.start_ms)) else {
            return;
        };
        let best = self
            .errors
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                !self.used[*i]
                    && e.line.user.as_deref() == Some(user.as_str())
                    && e.time_ms.is_some_and(|t| (t - at).abs() <= MATCH_WINDOW_MS)
            })
            .min_by_key(|(_, e)| {
                (
                    *e.server != *session.server,
                    e.time_ms.map_or(i64::MAX, |t| (t - at).abs()),
                )
            })
            .map(|(i, _)| i);
        if let Some(i) = best {
            self.used[i] = true;
            let e = &self.errors[i];
            let code = e.line.code.as_deref().unwrap_or("unknown");
            let reason = e.line.reason.as_deref().unwrap_or("unknown");
            session.notes.push(format!(
                "iam-db-auth-error {reason} ({code}): {}",
                e.line.message
            ));
            session.evidence.push(e.source.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_parses_to_its_code() {
        assert_eq!(codes().len(), 5);
        for code in codes() {
            for sample in &code.samples {
                let line = parse_line(sample).unwrap_or_else(|| panic!("{sample}"));
                assert_eq!(line.code.as_deref(), Some(code.code.as_str()), "{sample}");
                assert_eq!(line.reason.as_deref(), Some(code.reason.as_str()));
                assert_eq!(line.level, "ERROR");
                let user = line.user.as_deref().unwrap();
                assert!(["user_1", "user_2", "db_user"].contains(&user), "{user}");
                assert!(line.status.is_some_and(|s| s >= 400));
            }
        }
    }

    #[test]
    fn real_line_time_and_sniffing() {
        let real = "2025-09-22T12:02:30,806 [ERROR] Failed to authorize the connection request for user 'user_1' due to an internal IAM DB Auth error. (Status Code: 500, Error Code: InternalError)";
        let line = parse_line(real).unwrap();
        assert_eq!(line.time_ms, Some(1_758_542_550_806));
        assert!(looks_like(real.as_bytes()));
        let wrapped = format!("2025-09-22T12:02:30.806Z {real}\n");
        assert!(looks_like(wrapped.as_bytes()));
        assert!(!looks_like(
            b"2026-11-28 16:22:42 UTC::@:[3847]:LOG:  starting\n"
        ));
        assert!(parse_line("[ERROR] something else").is_none());
    }
}
