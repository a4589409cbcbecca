//! The shared vocabulary: what kind of thing a log record says happened
//! ([`EventKind`]), why a connection was refused ([`FailureClass`]), and the
//! owned [`Event`] every later stage (sessions, correlation, sinks) consumes.
//!
//! This module does not serialise anything: wire formats live in `sink`.

use std::fmt;
use std::sync::Arc;

pub use crate::name::Name;

/// The text of a field (user, database, address, method, …): stored inline
/// up to 24 bytes, so most fields of an event cost no allocation.
pub use compact_str::CompactString as Text;

macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in grammar files and output.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the snake_case name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What a connection-related record says happened.
    pub enum EventKind {
        Received => "received",
        Authenticated => "authenticated",
        Authorized => "authorized",
        Ready => "ready",
        AuthFailed => "auth_failed",
        AuthNote => "auth_note",
        Terminated => "terminated",
        Disconnected => "disconnected",
        Protocol => "protocol",
        Suspect => "suspect",
    }
}

named_enum! {
    /// Why a connection attempt was refused (or, for `auth_note`, what the
    /// explanation is about).
    pub enum FailureClass {
        Password => "password",
        RoleMissing => "role_missing",
        NoPassword => "no_password",
        PasswordExpired => "password_expired",
        InvalidSecret => "invalid_secret",
        EmptyPassword => "empty_password",
        Pam => "pam",
        Ldap => "ldap",
        Radius => "radius",
        Cert => "cert",
        Gss => "gss",
        Sspi => "sspi",
        Ident => "ident",
        Peer => "peer",
        Oauth => "oauth",
        NoHbaEntry => "no_hba_entry",
        HbaReject => "hba_reject",
        DatabaseMissing => "database_missing",
        LoginNotPermitted => "login_not_permitted",
        ConnectPrivilege => "connect_privilege",
        TooManyConnectionsRole => "too_many_connections_role",
        TooManyConnectionsDatabase => "too_many_connections_database",
        TooManyClients => "too_many_clients",
        ServerNotReady => "server_not_ready",
        AuthTimeout => "auth_timeout",
        Ssl => "ssl",
        Protocol => "protocol",
        Other => "other",
    }
}

named_enum! {
    /// Why a record was turned into a `suspect` event instead of being trusted.
    pub enum SuspectReason {
        /// A newline inside a raw `%u`/`%d` broke the prefix; the following
        /// lines completing it were absorbed (log forging).
        BrokenPrefix => "broken_prefix",
        /// Client text in the prefix (`%a`, `%u`, `%d`) allows a second
        /// reading of the line with a different message.
        AmbiguousPrefix => "ambiguous_prefix",
        /// A connection message carrying a CONTEXT: raised from SQL
        /// (PL/pgSQL `RAISE LOG`), not by the server's connection code.
        RaisedFromSql => "raised_from_sql",
    }
}

/// Where a record came from: the input's label and the 1-based line of the
/// record's first physical line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provenance {
    /// The path as given (or `-` for stdin); for CloudWatch, the log group and stream.
    pub input: Name,
    /// 1-based physical line of the record's first line.
    pub line: u64,
    /// The CloudWatch Logs event id of the record, when it came from
    /// CloudWatch (the API, an S3 export keeps none, a subscription payload).
    pub event_id: Option<Arc<str>>,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.input, self.line)?;
        if let Some(id) = &self.event_id {
            write!(f, "#{id}")?;
        }
        Ok(())
    }
}

/// One connection- or authentication-related fact, with its provenance.
///
/// Owned: events are few compared to records, and they outlive the input
/// buffer they were parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Milliseconds since the Unix epoch, UTC.
    pub time_ms: Option<i64>,
    pub kind: EventKind,
    /// The grammar message id that matched (e.g. `auth_failed.password`).
    pub message_id: Option<&'static str>,
    pub server: Name,
    pub pid: Option<u32>,
    pub user: Option<Text>,
    pub database: Option<Text>,
    pub application_name: Option<Text>,
    pub client_addr: Option<Text>,
    pub client_port: Option<u16>,
    pub auth_method: Option<Text>,
    pub identity: Option<Text>,
    pub hba_line: Option<Text>,
    pub ssl_protocol: Option<Text>,
    pub ssl_cipher: Option<Text>,
    pub ssl_bits: Option<u32>,
    /// True when the TLS fields come from text that a client-chosen
    /// application name could have forged (stderr formats, see README).
    pub ssl_unverified: bool,
    pub failure_class: Option<FailureClass>,
    pub sqlstate: Option<Text>,
    pub severity: Option<&'static str>,
    pub message: String,
    pub detail: Option<Text>,
    pub session_duration_ms: Option<u64>,
    /// When the CloudWatch/S3 export wrapper gave an ingestion time.
    pub ingest_time_ms: Option<i64>,
    /// The record contained bytes that are not UTF-8 (replaced lossily).
    pub invalid_utf8: bool,
    pub source: Option<Provenance>,
    /// For `suspect` events: why the record cannot be trusted.
    pub suspect_reason: Option<SuspectReason>,
    /// Further records this event was built from (the tail of a forged
    /// line, for `suspect`).
    pub related_sources: Vec<Provenance>,
}

impl Event {
    /// [`Event::new`] on the heap, written there directly (an event is
    /// large: building it on the stack and moving it into a box cost a copy).
    #[inline]
    pub fn boxed(kind: EventKind, server: Name) -> Box<Self> {
        Box::write(Box::new_uninit(), Event::new(kind, server))
    }

    /// An event of `kind` from `server` with every optional field empty.
    #[inline]
    pub fn new(kind: EventKind, server: Name) -> Self {
        Event {
            time_ms: None,
            kind,
            message_id: None,
            server,
            pid: None,
            user: None,
            database: None,
            application_name: None,
            client_addr: None,
            client_port: None,
            auth_method: None,
            identity: None,
            hba_line: None,
            ssl_protocol: None,
            ssl_cipher: None,
            ssl_bits: None,
            ssl_unverified: false,
            failure_class: None,
            sqlstate: None,
            severity: None,
            message: String::new(),
            detail: None,
            session_duration_ms: None,
            ingest_time_ms: None,
            invalid_utf8: false,
            source: None,
            suspect_reason: None,
            related_sources: Vec::new(),
        }
    }
}
