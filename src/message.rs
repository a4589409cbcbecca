//! Connection and authentication messages: the catalog compiled from
//! `grammars/messages/*.toml` and `grammars/details.toml`, and the matcher
//! that turns one record's message text into an event kind, a failure class
//! and borrowed fields.
//!
//! Every message text lives in the grammar files (see [`crate::grammar`] for
//! the template language); this module hard-codes none. Dispatch works on
//! each template's leading literal: a 64 Kbit table of first byte pairs
//! rejects most unrelated messages (a checkpoint, a statement) with one
//! lookup, then a radix tree finds the templates whose leading literal is a
//! prefix of the message; only those whose level fits the record's label are
//! tried, longest leading literal first, in catalog order among equals.
//!
//! Classification borrows from the message and never allocates.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::event::{EventKind, FailureClass};
use crate::grammar::{self, Captures, GrammarError, Template};
use crate::record::{Label, range_within};

pub use crate::grammar::MAX_CAPTURES as MAX_FIELDS;

macro_rules! fields {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every field, in declaration order (a placeholder's slot is its index here).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The snake_case names used in templates, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The snake_case name used in templates.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the snake_case name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

fields! {
    /// A value a message template can capture.
    pub enum Field {
        /// The role name as the client sent it (raw, ≤ 63 bytes).
        User => "user",
        Database => "database",
        /// Client address: numeric IP, host name (`log_hostname`), or `[local]`.
        Host => "host",
        /// Client port.
        Port => "port",
        ApplicationName => "application_name",
        /// The authenticated identity (`connection authenticated: identity="…"`,
        /// the OS/cert/Kerberos name a usermap compares).
        Identity => "identity",
        /// The pg_hba method name (`scram-sha-256`, `pam`, …).
        Method => "method",
        HbaFile => "hba_file",
        HbaLineNumber => "hba_line_number",
        /// The raw pg_hba.conf line, without its enclosing quotes.
        HbaLine => "hba_line",
        SslProtocol => "ssl_protocol",
        SslCipher => "ssl_cipher",
        SslBits => "ssl_bits",
        SslCompression => "ssl_compression",
        GssAuthenticated => "gss_authenticated",
        GssEncrypted => "gss_encrypted",
        GssDelegated => "gss_delegated",
        GssPrincipal => "gss_principal",
        /// `H:MM:SS.mmm`, hours not padded (`0:00:00.847`).
        SessionTime => "session_time",
        /// The encryption state the hba messages end with (`SSL on`, `no encryption`, …).
        Encryption => "encryption",
        /// Free text: a PAM/LDAP/OpenSSL error, an errno text (`%m`), …
        Reason => "reason",
        SetupTotalMs => "setup_total_ms",
        ForkMs => "fork_ms",
        AuthenticationMs => "authentication_ms",
        /// An external server: LDAP, RADIUS, Ident host.
        Server => "server",
        /// That server's port (Ident).
        ServerPort => "server_port",
        /// Any other number (a PID in a cancel request, a RADIUS code, …).
        Number => "number",
        /// The pg_ident.conf map name.
        Usermap => "usermap",
        /// An LDAP search filter or search attribute value.
        LdapFilter => "ldap_filter",
        /// The `ldapbinddn` of a failed search+bind.
        LdapBindDn => "ldap_bind_dn",
        /// The requested frontend protocol (`1234.5679`).
        ProtocolVersion => "protocol_version",
    }
}

/// One `[[message]]` of the grammar files, compiled.
#[derive(Debug, Clone)]
pub struct MessageDef {
    /// E.g. `auth_failed.password`. Interned ([`intern_id`]): events carry
    /// it without a reference count shared across threads.
    pub id: &'static str,
    /// The grammar file it comes from (`grammars/messages/auth.toml`).
    pub file: Arc<str>,
    /// The levels as printed in the log (COMMERROR → LOG, ERROR during
    /// authentication → FATAL).
    pub levels: Box<[Label]>,
    pub sqlstates: Box<[Box<str>]>,
    /// The template text.
    pub text: Box<str>,
    pub event: EventKind,
    pub class: Option<FailureClass>,
    /// PostgreSQL versions that print it (`9.6-18`, `14-18`, `10, 13-18`).
    pub versions: Box<str>,
    pub samples: Box<[Box<str>]>,
    /// Where the samples come from; `format-string` when they are the format
    /// string instantiated by hand because no real line was found.
    pub sample_source: Option<Box<str>>,
    /// Position in [`Catalog::messages`].
    pub index: usize,
    template: Template,
    level_mask: u16,
}

impl MessageDef {
    /// The fields this message can capture, in template order.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.template
            .slots()
            .iter()
            .map(|s| Field::ALL[usize::from(*s)])
    }

    /// True when some samples were instantiated from the format string
    /// (`sample_source` says `format-string`) rather than seen in a log.
    pub fn has_format_string_samples(&self) -> bool {
        self.sample_source
            .as_deref()
            .is_some_and(|s| s.contains(FORMAT_STRING))
    }
}

/// One `[[detail]]` rule, compiled.
#[derive(Debug, Clone)]
pub struct DetailDef {
    /// The rule's id if it has one, else `detail #n`.
    pub id: Arc<str>,
    pub file: Arc<str>,
    pub text: Box<str>,
    /// The refined class; `None` for rules that only extract fields or
    /// recognise a DETAIL without changing the class.
    pub class: Option<FailureClass>,
    /// Message ids the rule applies to; empty = every message.
    pub applies_to: Box<[Arc<str>]>,
    pub versions: Option<Box<str>>,
    pub samples: Box<[Box<str>]>,
    pub sample_source: Option<Box<str>>,
    template: Template,
    /// `applies_to` as message indices, sorted.
    applies: Box<[usize]>,
    /// The rule captures hba fields: it matches the last DETAIL line.
    hba: bool,
}

impl DetailDef {
    fn applies(&self, message: usize) -> bool {
        self.applies.is_empty() || self.applies.binary_search(&message).is_ok()
    }
}

const FORMAT_STRING: &str = "format-string";

/// The captured fields of a match, stored inline as byte ranges of the
/// message (no allocation).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    text: &'a str,
    len: u8,
    items: [(Field, u32, u32); MAX_FIELDS],
    /// For each field (by its place in [`Field::ALL`]), 1 + the index of
    /// its first item, 0 when absent: building an event asks for every
    /// field.
    first: [u8; Field::ALL.len()],
}

impl<'a> Fields<'a> {
    fn from_captures(caps: &Captures, text: &'a str) -> Fields<'a> {
        let mut out = Fields {
            text,
            len: 0,
            items: [(Field::User, 0, 0); MAX_FIELDS],
            first: [0; Field::ALL.len()],
        };
        for c in caps.as_slice() {
            if let Some(f) = Field::ALL.get(usize::from(c.slot))
                && usize::from(out.len) < MAX_FIELDS
            {
                out.items[usize::from(out.len)] = (*f, c.start, c.end);
                out.len += 1;
                let first = &mut out.first[usize::from(c.slot)];
                if *first == 0 {
                    *first = out.len;
                }
            }
        }
        out
    }

    fn value(&self, start: u32, end: u32) -> &'a str {
        // Captures end on char boundaries (the matcher checks); `get` keeps
        // this panic-free regardless.
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    pub fn get(&self, field: Field) -> Option<&'a str> {
        let item = usize::from(self.first[field as usize]).checked_sub(1)?;
        self.items.get(item).map(|&(_, s, e)| self.value(s, e))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Field, &'a str)> + '_ {
        self.items[..usize::from(self.len)]
            .iter()
            .map(|&(f, s, e)| (f, self.value(s, e)))
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A classified message: which grammar entry matched and what it captured.
/// Borrows from the catalog and the message text.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    pub def: &'a MessageDef,
    pub id: &'a str,
    pub event: EventKind,
    pub class: Option<FailureClass>,
    pub fields: Fields<'a>,
}

impl<'a> Match<'a> {
    /// The captured text of `field`, if the template has it and it matched.
    pub fn get(&self, field: Field) -> Option<&'a str> {
        self.fields.get(field)
    }

    /// The captured field parsed as an unsigned number.
    pub fn get_u64(&self, field: Field) -> Option<u64> {
        self.get(field)?.parse().ok()
    }
}

/// What the DETAIL of a matched message adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetailInfo<'d> {
    /// The refined class, when a rule recognised the DETAIL and names one.
    pub class: Option<FailureClass>,
    pub hba_file: Option<&'d str>,
    pub hba_line_number: Option<u32>,
    pub hba_line: Option<&'d str>,
    /// The authentication method of `hba_line` ([`hba_rule_method`]).
    pub hba_method: Option<&'d str>,
}

/// A radix-tree node over the templates' leading literals.
#[derive(Debug, Clone, Default)]
struct Node {
    /// The bytes this node adds to its parent's (empty only for the root).
    label: Box<[u8]>,
    /// The first byte of each child's label, in the order of `children`.
    edge_bytes: Box<[u8]>,
    children: Box<[u32]>,
    /// The messages to try when the walk stops here, in precedence order:
    /// those whose leading literal ends here (catalog order), then those of
    /// each ancestor up to the root — longest leading literal first.
    candidates: Box<[u32]>,
}

/// A node of the byte trie the radix tree is built from.
#[derive(Debug, Default)]
struct TrieNode {
    /// Children by byte, sorted.
    edges: Vec<(u8, usize)>,
    /// Messages whose leading literal ends exactly here, in catalog order.
    here: Vec<usize>,
}

/// 65 536 bits: which first two bytes a message must start with to possibly
/// match some template (all set when a template has a leading literal
/// shorter than two bytes).
#[derive(Debug, Clone)]
struct Prefix2(Box<[u64; 1024]>);

impl Prefix2 {
    fn index(a: u8, b: u8) -> usize {
        usize::from(a) << 8 | usize::from(b)
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, bytes: &[u8]) -> bool {
        match bytes {
            [a, b, ..] => {
                let i = Self::index(*a, *b);
                self.0[i / 64] & (1 << (i % 64)) != 0
            }
            _ => true,
        }
    }
}

/// The compiled grammars.
#[derive(Debug, Clone)]
pub struct Catalog {
    messages: Vec<MessageDef>,
    details: Vec<DetailDef>,
    nodes: Vec<Node>,
    /// The root's child for each first byte (0: none; the root is node 0).
    root: Box<[u32; 256]>,
    prefix2: Prefix2,
    /// Union of the messages' level masks.
    level_mask: u16,
    /// Unique to this catalog and its clones: what a [`ClassifyMemo`]
    /// remembers answers for.
    id: u64,
}

/// Slots of a [`ClassifyMemo`].
const MEMO_SLOTS: usize = 256;
/// The fields that make a message text unique in a real log (a client
/// port, a session time, the setup times of PostgreSQL 18): texts that
/// carry one are not remembered.
const UNIQUE_FIELDS: [Field; 5] = [
    Field::Port,
    Field::SessionTime,
    Field::SetupTotalMs,
    Field::ForkMs,
    Field::AuthenticationMs,
];
const MEMO_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0);

/// The last classifications of one extractor (one chunk), for the
/// messages a server repeats word for word (`connection authorized: user=app
/// database=app …`, a password failing for the same user), so those are
/// matched against the templates once: a direct-mapped table of
/// `MEMO_SLOTS` (256) texts keyed by level and text, each with the message it
/// matched (or none) and the captures. A hit compares the whole text, so
/// [`Catalog::classify_memo`] answers exactly what [`Catalog::classify`]
/// does. Texts that carry a client port or a session time, unique in a
/// real log (and repeated only in a log made by copying one), are not
/// remembered: they cost a hash. Texts are client-controlled (user and
/// database names), but a crafted collision only costs a miss.
pub struct ClassifyMemo {
    /// The [`Catalog`] id the slots hold answers of (0: none yet).
    catalog: u64,
    slots: Vec<MemoSlot>,
    /// DETAIL texts already classified, by message index and text (see
    /// [`Catalog::classify_detail_memo`]).
    details: foldhash::HashMap<Box<str>, Vec<(usize, DetailRanges)>>,
}

/// A [`DetailInfo`] with its text parts as ranges of the DETAIL text, so
/// that it applies to any copy of that text.
#[derive(Clone)]
struct DetailRanges {
    class: Option<FailureClass>,
    hba_file: Option<Range<usize>>,
    hba_line_number: Option<u32>,
    hba_line: Option<Range<usize>>,
    hba_method: Option<Range<usize>>,
}

/// The most DETAIL texts a memo keeps; past it, it starts over (a server
/// logs few distinct ones: its pg_hba.conf rules, a handful of reasons).
const MEMO_DETAILS: usize = 256;

/// The longest text a memo keeps. A memo lives as long as its thread, so
/// this bounds it (about 1 MiB of texts and 1 MiB of DETAIL texts) however
/// long the lines a client can make the server write; the messages a
/// server repeats are a few hundred bytes.
const MEMO_TEXT_MAX: usize = 4096;

#[derive(Default)]
struct MemoSlot {
    hash: u64,
    /// The level bit (0: empty slot).
    bit: u16,
    text: Vec<u8>,
    /// The message matched (its index) and the fields, with no text.
    found: Option<(u32, Fields<'static>)>,
}

impl ClassifyMemo {
    /// An empty memo. Used with a catalog other than its last one, a memo
    /// starts over.
    pub fn new() -> Self {
        ClassifyMemo {
            catalog: 0,
            slots: (0..MEMO_SLOTS).map(|_| MemoSlot::default()).collect(),
            details: foldhash::HashMap::default(),
        }
    }
}

impl ClassifyMemo {
    /// Makes the memo hold answers of the catalog `id` only: one used with
    /// another catalog before starts over.
    fn serve(&mut self, id: u64) {
        if self.catalog != id {
            *self = ClassifyMemo::new();
            self.catalog = id;
        }
    }
}

impl Default for ClassifyMemo {
    fn default() -> Self {
        ClassifyMemo::new()
    }
}

/// Catalog ids; 0 is never given.
static CATALOG_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn label_bit(label: Label) -> u16 {
    1 << (label as u16)
}

/// The labels a template level accepts: FATAL and ERROR accept each other
/// (jsonlog prints the untranslated severity and an ERROR raised during
/// authentication is promoted to FATAL), unless the message sets
/// `exact_level`.
fn level_mask(level: Label) -> u16 {
    match level {
        Label::Fatal | Label::Error => label_bit(Label::Fatal) | label_bit(Label::Error),
        other => label_bit(other),
    }
}

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/grammar_sources.rs"));
}

impl Catalog {
    /// The grammars shipped in `grammars/`, embedded at compile time,
    /// compiled once.
    ///
    /// # Panics
    /// If the shipped grammars do not compile; the unit tests guarantee they do.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::from_sources(builtin::SOURCES) {
            Ok(c) => c,
            Err(e) => panic!("built-in grammar: {e}"),
        })
    }

    /// The embedded grammar files as (path, text) pairs.
    pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
        builtin::SOURCES
    }

    /// Compiles grammar files given as (file name, TOML text) pairs, in
    /// order. Errors name the file and the message id. Every sample must
    /// classify as its own entry.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Catalog, GrammarError> {
        let mut messages = Vec::new();
        let mut raw_details = Vec::new();
        let mut ids: HashMap<&'static str, (Arc<str>, usize)> = HashMap::new();
        for (file, text) in files {
            let raw = grammar::parse_file(file, text)?;
            let file: Arc<str> = Arc::from(*file);
            for m in raw.messages {
                let index = messages.len();
                let def = compile_message(&file, m, index)?;
                if let Some((other, _)) = ids.get(def.id) {
                    return Err(GrammarError::new(
                        &file,
                        Some(&format!("message \"{}\"", def.id)),
                        format!("duplicate id (also in {other})"),
                    ));
                }
                ids.insert(def.id, (file.clone(), index));
                messages.push(def);
            }
            for (n, d) in raw.details.into_iter().enumerate() {
                raw_details.push((file.clone(), n, d));
            }
        }
        let mut details = Vec::new();
        let mut detail_ids = HashMap::new();
        for (file, n, d) in raw_details {
            let def = compile_detail(&file, n, d, &ids)?;
            if let Some(other) = detail_ids.insert(def.id.clone(), file.clone()) {
                return Err(GrammarError::new(
                    &file,
                    Some(&format!("detail \"{}\"", def.id)),
                    format!("duplicate id (also in {other})"),
                ));
            }
            details.push(def);
        }
        let mut catalog = Catalog {
            level_mask: messages.iter().fold(0, |m, d| m | d.level_mask),
            nodes: Vec::new(),
            root: Box::new([0; 256]),
            prefix2: Prefix2(Box::new([0; 1024])),
            messages,
            details,
            id: CATALOG_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        catalog.build_trie();
        catalog.check_samples()?;
        Ok(catalog)
    }

    /// Builds the radix tree of leading literals (with each node's
    /// candidate list) and the two-byte prefilter.
    fn build_trie(&mut self) {
        // A byte trie first …
        let mut trie = vec![TrieNode::default()];
        for def in &self.messages {
            let lead = def.template.leading_literal().as_bytes();
            match lead {
                [a, b, ..] => self.prefix2.set(Prefix2::index(*a, *b)),
                [a] => (0..=255u8).for_each(|b| self.prefix2.set(Prefix2::index(*a, b))),
                [] => (0..1 << 16).for_each(|i| self.prefix2.set(i)),
            }
            let mut at = 0;
            for &b in lead {
                at = match trie[at].edges.binary_search_by_key(&b, |e| e.0) {
                    Ok(i) => trie[at].edges[i].1,
                    Err(i) => {
                        let child = trie.len();
                        trie.push(TrieNode::default());
                        trie[at].edges.insert(i, (b, child));
                        child
                    }
                };
            }
            trie[at].here.push(def.index);
        }
        // … then chains of single-child nodes without messages are merged,
        // and each node lists its own messages before its ancestors'.
        let as_u32 = |i: usize| u32::try_from(i).expect("fewer than 2^32 templates");
        let mut nodes = vec![Node {
            candidates: trie[0].here.iter().map(|&i| as_u32(i)).collect(),
            ..Node::default()
        }];
        let mut stack = vec![(0usize, 0usize)]; // (trie node, radix node)
        while let Some((t, r)) = stack.pop() {
            let mut edge_bytes = Vec::new();
            let mut children = Vec::new();
            for &(b, mut child) in &trie[t].edges {
                let mut label = vec![b];
                while trie[child].here.is_empty() && trie[child].edges.len() == 1 {
                    let (next_b, next) = trie[child].edges[0];
                    label.push(next_b);
                    child = next;
                }
                let id = nodes.len();
                let candidates = trie[child]
                    .here
                    .iter()
                    .map(|&i| as_u32(i))
                    .chain(nodes[r].candidates.iter().copied())
                    .collect();
                nodes.push(Node {
                    label: label.into_boxed_slice(),
                    candidates,
                    ..Node::default()
                });
                edge_bytes.push(b);
                children.push(as_u32(id));
                if r == 0 {
                    self.root[usize::from(b)] = as_u32(id);
                }
                stack.push((child, id));
            }
            nodes[r].edge_bytes = edge_bytes.into_boxed_slice();
            nodes[r].children = children.into_boxed_slice();
        }
        self.nodes = nodes;
    }

    fn check_samples(&self) -> Result<(), GrammarError> {
        for def in &self.messages {
            let id = format!("message \"{}\"", def.id);
            for (n, sample) in def.samples.iter().enumerate() {
                for &level in def.levels.iter() {
                    match self.classify(level, sample) {
                        Some(m) if m.def.index == def.index => {}
                        Some(m) => {
                            return Err(GrammarError::new(
                                &def.file,
                                Some(&id),
                                format!(
                                    "sample {} at level {} classifies as \"{}\" ({}), which comes first; \
                                     make one of the templates more specific",
                                    n + 1,
                                    level.as_str(),
                                    m.id,
                                    m.def.file
                                ),
                            ));
                        }
                        None => {
                            return Err(GrammarError::new(
                                &def.file,
                                Some(&id),
                                format!(
                                    "sample {} does not match the template at level {}: {sample:?}",
                                    n + 1,
                                    level.as_str()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        for d in &self.details {
            let id = format!("detail \"{}\"", d.id);
            for (n, sample) in d.samples.iter().enumerate() {
                let mut caps = Captures::default();
                if !d.template.matches(sample, &mut caps) {
                    return Err(GrammarError::new(
                        &d.file,
                        Some(&id),
                        format!("sample {} does not match the template: {sample:?}", n + 1),
                    ));
                }
                if let Some(first) = self
                    .details
                    .iter()
                    .filter(|o| o.hba == d.hba)
                    .find(|o| o.template.matches(sample, &mut caps))
                    && !Arc::ptr_eq(&first.id, &d.id)
                {
                    return Err(GrammarError::new(
                        &d.file,
                        Some(&id),
                        format!(
                            "sample {} is claimed by detail \"{}\" ({}), which comes first",
                            n + 1,
                            first.id,
                            first.file
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Classifies one message text (multi-line messages already joined with
    /// `\n`, TABs removed). `label` is the record's severity. Returns `None`
    /// for anything that is not a connection or authentication message.
    /// False when [`Catalog::classify`] surely finds nothing in a message
    /// whose text starts with `body` (raw bytes, before any UTF-8 repair):
    /// no message of this level, or no template starting with its first two
    /// bytes. Cheap (a bit test), for skipping the records a log is mostly
    /// made of (statements, durations, checkpoints) before their text is
    /// converted. Bodies of fewer than two bytes, or that start with
    /// non-ASCII bytes (which the lossy conversion may replace), may.
    pub fn may_classify(&self, label: Label, body: &[u8]) -> bool {
        if self.level_mask & label_bit(label) == 0 {
            return false;
        }
        match body {
            [a, b, ..] if a.is_ascii() && b.is_ascii() => self.prefix2.contains(body),
            _ => true,
        }
    }

    pub fn classify<'a>(&'a self, label: Label, message: &'a str) -> Option<Match<'a>> {
        let bit = label_bit(label);
        if self.level_mask & bit == 0 || !self.prefix2.contains(message.as_bytes()) {
            return None;
        }
        let mut caps = Captures::default();
        let index = self.find(bit, message, &mut caps)?;
        Some(self.match_of(index, Fields::from_captures(&caps, message)))
    }

    /// [`Catalog::classify`] through `memo`: the same answer, from the memo
    /// when the same level and text were classified lately.
    pub fn classify_memo<'a>(
        &'a self,
        memo: &mut ClassifyMemo,
        label: Label,
        message: &'a str,
    ) -> Option<Match<'a>> {
        let bit = label_bit(label);
        let bytes = message.as_bytes();
        if self.level_mask & bit == 0 || !self.prefix2.contains(bytes) {
            return None;
        }
        if bytes.len() > MEMO_TEXT_MAX {
            return self.classify(label, message);
        }
        memo.serve(self.id);
        let hash = std::hash::BuildHasher::hash_one(&MEMO_HASH, (bit, bytes));
        let slot = &mut memo.slots[hash as usize % MEMO_SLOTS];
        if slot.hash == hash && slot.bit == bit && slot.text == bytes {
            let (index, fields) = slot.found.as_ref()?;
            return Some(self.match_of(
                *index,
                Fields {
                    text: message,
                    ..*fields
                },
            ));
        }
        let mut caps = Captures::default();
        let found = self
            .find(bit, message, &mut caps)
            .map(|index| (index, Fields::from_captures(&caps, message)));
        let unique = found
            .as_ref()
            .is_some_and(|(_, fields)| UNIQUE_FIELDS.iter().any(|&f| fields.get(f).is_some()));
        if !unique {
            slot.hash = hash;
            slot.bit = bit;
            slot.text.clear();
            slot.text.extend_from_slice(bytes);
            slot.found = found.map(|(index, fields)| (index, Fields { text: "", ..fields }));
        }
        let (index, fields) = found?;
        Some(self.match_of(index, fields))
    }

    fn match_of<'a>(&'a self, index: u32, fields: Fields<'a>) -> Match<'a> {
        let def = &self.messages[index as usize];
        Match {
            def,
            id: def.id,
            event: def.event,
            class: def.class,
            fields,
        }
    }

    /// The message (its index) whose template matches, its captures in
    /// `caps`; the level (`bit`) and first byte pair are known to fit.
    fn find(&self, bit: u16, message: &str, caps: &mut Captures) -> Option<u32> {
        let bytes = message.as_bytes();
        // Walk down the radix tree as far as the message follows it.
        let mut node = 0;
        let mut pos = 0;
        let mut next = bytes.first().map_or(0, |&b| self.root[usize::from(b)]);
        while next != 0 {
            let child = &self.nodes[next as usize];
            if !bytes[pos..].starts_with(&child.label) {
                break;
            }
            node = next as usize;
            pos += child.label.len();
            let Some(&b) = bytes.get(pos) else { break };
            next = child
                .edge_bytes
                .iter()
                .position(|&e| e == b)
                .map_or(0, |i| child.children[i]);
        }
        for &mi in self.nodes[node].candidates.iter() {
            let def = &self.messages[mi as usize];
            // The walk passed every candidate's leading literal.
            if def.level_mask & bit != 0 && def.template.matches_after_leading(message, caps) {
                return Some(mi);
            }
        }
        None
    }

    /// Applies the DETAIL rules to the DETAIL of a match: the refined class
    /// (if a rule names one) and the pg_hba fields of a `Connection matched …`
    /// line.
    ///
    /// The `Connection matched` text is always the last DETAIL line (the
    /// server appends it after any explanation), and an hba line cannot
    /// contain a newline, so only the last line is tried for it; the rest —
    /// which may contain newlines inside a hostile user name — is matched as
    /// a whole, then by its first line.
    pub fn classify_detail<'d>(&self, m: &Match<'_>, detail: &'d str) -> DetailInfo<'d> {
        let mut info = DetailInfo::default();
        let index = m.def.index;
        let (head, last) = match detail.rfind('\n') {
            Some(i) => (&detail[..i], &detail[i + 1..]),
            None => ("", detail),
        };
        let mut caps = Captures::default();
        let mut rest = detail;
        for rule in self.details.iter().filter(|d| d.hba && d.applies(index)) {
            if rule.template.matches(last, &mut caps) {
                for c in caps.as_slice() {
                    let value = last.get(c.range());
                    match Field::ALL.get(usize::from(c.slot)) {
                        Some(Field::HbaFile) => info.hba_file = value,
                        Some(Field::HbaLine) => info.hba_line = value,
                        Some(Field::HbaLineNumber) => {
                            info.hba_line_number = value.and_then(|v| v.parse().ok());
                        }
                        _ => {}
                    }
                }
                if rule.class.is_some() {
                    info.class = rule.class;
                }
                rest = head;
                break;
            }
        }
        info.hba_method = info.hba_line.and_then(hba_rule_method);
        if rest.is_empty() {
            return info;
        }
        let first_line = rest.split('\n').next().unwrap_or(rest);
        let candidates = if first_line.len() < rest.len() {
            &[rest, first_line][..]
        } else {
            &[rest][..]
        };
        for text in candidates {
            if let Some(rule) = self
                .details
                .iter()
                .filter(|d| !d.hba && d.applies(index))
                .find(|d| d.template.matches(text, &mut caps))
            {
                if rule.class.is_some() {
                    info.class = rule.class;
                }
                break;
            }
        }
        info
    }

    /// [`Catalog::classify_detail`] through `memo`: the same answer, from
    /// the memo when the same message's DETAIL had the same text before
    /// (a failure repeated against the same pg_hba.conf rule). Classifying
    /// one tries every DETAIL rule: ~1,500 instructions.
    pub fn classify_detail_memo<'d>(
        &self,
        memo: &mut ClassifyMemo,
        m: &Match<'_>,
        detail: &'d str,
    ) -> DetailInfo<'d> {
        if detail.len() > MEMO_TEXT_MAX {
            return self.classify_detail(m, detail);
        }
        memo.serve(self.id);
        let index = m.def.index;
        let known = memo
            .details
            .get(detail)
            .and_then(|seen| seen.iter().find(|(i, _)| *i == index));
        if let Some((_, known)) = known {
            let part = |r: &Option<Range<usize>>| r.clone().and_then(|r| detail.get(r));
            return DetailInfo {
                class: known.class,
                hba_file: part(&known.hba_file),
                hba_line_number: known.hba_line_number,
                hba_line: part(&known.hba_line),
                hba_method: part(&known.hba_method),
            };
        }
        let info = self.classify_detail(m, detail);
        if memo.details.len() >= MEMO_DETAILS {
            memo.details.clear();
        }
        let range = |p: Option<&str>| p.and_then(|p| range_within(detail.as_bytes(), p.as_bytes()));
        let ranges = DetailRanges {
            class: info.class,
            hba_file: range(info.hba_file),
            hba_line_number: info.hba_line_number,
            hba_line: range(info.hba_line),
            hba_method: range(info.hba_method),
        };
        memo.details
            .entry(detail.into())
            .or_default()
            .push((index, ranges));
        info
    }

    pub fn messages(&self) -> &[MessageDef] {
        &self.messages
    }

    pub fn details(&self) -> &[DetailDef] {
        &self.details
    }

    /// The message with this id.
    pub fn message(&self, id: &str) -> Option<&MessageDef> {
        self.messages.iter().find(|m| m.id == id)
    }
}

/// The method of a raw pg_hba.conf rule: `host db user addr [mask] method [options]`.
pub fn hba_rule_method(rule: &str) -> Option<&str> {
    // At most the first six words matter; no allocation. Words are split on
    // ASCII whitespace, as PostgreSQL tokenizes pg_hba.conf.
    let mut words = [""; 6];
    let mut count = 0;
    for (slot, word) in words.iter_mut().zip(rule.split_ascii_whitespace()) {
        *slot = word;
        count += 1;
    }
    let words = &words[..count];
    let kind = *words.first()?;
    let index = if kind == "local" {
        3
    } else if kind.starts_with("host") {
        // An address with a separate netmask takes two words.
        let addr = words.get(3)?;
        if !addr.contains('/')
            && words
                .get(4)
                .is_some_and(|w| w.parse::<std::net::IpAddr>().is_ok())
        {
            5
        } else {
            4
        }
    } else {
        return None;
    };
    words.get(index).copied()
}

fn compile_message(
    file: &Arc<str>,
    m: grammar::RawMessage,
    index: usize,
) -> Result<MessageDef, GrammarError> {
    let label = format!("message \"{}\"", m.id);
    let err = |msg: String| GrammarError::new(file, Some(&label), msg);
    if m.id.trim().is_empty() || m.id.contains(char::is_whitespace) {
        return Err(err("`id` must be a non-empty word".into()));
    }
    let mut levels = Vec::new();
    let mut mask = 0;
    for level in m.level.into_vec() {
        if level == "COMMERROR" {
            return Err(err("level COMMERROR is printed as LOG: write `LOG`".into()));
        }
        let Some(l) = Label::parse(level.as_bytes()).filter(|l| l.is_severity()) else {
            return Err(err(format!(
                "unknown level `{level}` (LOG, FATAL, ERROR, WARNING, …)"
            )));
        };
        levels.push(l);
        mask |= if m.exact_level {
            label_bit(l)
        } else {
            level_mask(l)
        };
    }
    if levels.is_empty() {
        return Err(err("`level` is empty".into()));
    }
    let sqlstates: Vec<Box<str>> = m
        .sqlstate
        .into_vec()
        .into_iter()
        .map(String::into_boxed_str)
        .collect();
    for s in &sqlstates {
        if s.len() != 5
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(err(format!(
                "bad sqlstate `{s}` (five digits or capital letters)"
            )));
        }
    }
    let event = EventKind::from_name(&m.event).ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(|e| e.as_str()).collect();
        err(format!(
            "unknown event `{}`{}",
            m.event,
            hint(&m.event, &names)
        ))
    })?;
    let class = match &m.class {
        Some(c) => Some(parse_class(c).map_err(&err)?),
        None => None,
    };
    if class.is_none() && matches!(event, EventKind::AuthFailed | EventKind::AuthNote) {
        return Err(err(format!("event `{}` needs a `class`", event.as_str())));
    }
    grammar::check_versions(&m.versions).map_err(&err)?;
    if m.samples.is_empty() {
        return Err(err(
            "no samples: add at least one real log line (or one instantiated from \
                        the format string, with sample_source = \"format-string\")"
                .into(),
        ));
    }
    let template =
        Template::compile(&m.text, Field::NAMES).map_err(|e| err(format!("text: {e}")))?;
    Ok(MessageDef {
        id: intern_id(&m.id),
        file: file.clone(),
        levels: levels.into_boxed_slice(),
        sqlstates: sqlstates.into_boxed_slice(),
        text: m.text.into_boxed_str(),
        event,
        class,
        versions: m.versions.into_boxed_str(),
        samples: m.samples.into_iter().map(String::into_boxed_str).collect(),
        sample_source: m.sample_source.map(String::into_boxed_str),
        index,
        template,
        level_mask: mask,
    })
}

fn compile_detail(
    file: &Arc<str>,
    n: usize,
    d: grammar::RawDetail,
    ids: &HashMap<&'static str, (Arc<str>, usize)>,
) -> Result<DetailDef, GrammarError> {
    let id: Arc<str> = match &d.id {
        Some(id) => Arc::from(id.as_str()),
        None => Arc::from(format!("detail #{}", n + 1)),
    };
    let label = format!("detail \"{id}\"");
    let err = |msg: String| GrammarError::new(file, Some(&label), msg);
    let class = match &d.class {
        Some(c) => Some(parse_class(c).map_err(&err)?),
        None => None,
    };
    let mut applies = Vec::new();
    for a in &d.applies_to {
        let Some((_, index)) = ids.get(a.as_str()) else {
            let known: Vec<&str> = ids.keys().map(|k| &**k).collect();
            return Err(err(format!(
                "applies_to names unknown message `{a}`{}",
                hint(a, &known)
            )));
        };
        applies.push(*index);
    }
    applies.sort_unstable();
    if let Some(v) = &d.versions {
        grammar::check_versions(v).map_err(&err)?;
    }
    if d.samples.is_empty() {
        return Err(err("no samples".into()));
    }
    let template =
        Template::compile(&d.text, Field::NAMES).map_err(|e| err(format!("text: {e}")))?;
    let hba = template.slots().iter().any(|s| {
        matches!(
            Field::ALL.get(usize::from(*s)),
            Some(Field::HbaFile | Field::HbaLine | Field::HbaLineNumber)
        )
    });
    Ok(DetailDef {
        id,
        file: file.clone(),
        text: d.text.into_boxed_str(),
        class,
        applies_to: d.applies_to.into_iter().map(Arc::from).collect(),
        versions: d.versions.map(String::into_boxed_str),
        samples: d.samples.into_iter().map(String::into_boxed_str).collect(),
        sample_source: d.sample_source.map(String::into_boxed_str),
        template,
        applies: applies.into_boxed_slice(),
        hba,
    })
}

fn parse_class(name: &str) -> Result<FailureClass, String> {
    FailureClass::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = FailureClass::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown class `{name}`{}", hint(name, &names))
    })
}

fn hint(name: &str, candidates: &[&str]) -> String {
    grammar::suggest(name, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The one copy of a message id for the life of the process. Ids are few
/// (one per grammar message) and every catalogue built reuses them, so
/// what this keeps is bounded by the grammar, not by how often it is loaded.
pub fn intern_id(id: &str) -> &'static str {
    static IDS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = ids.get(id) {
        return known;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> &'static Catalog {
        Catalog::builtin()
    }

    #[track_caller]
    fn m<'a>(label: Label, text: &'a str) -> Match<'a> {
        cat()
            .classify(label, text)
            .unwrap_or_else(|| panic!("no match for {text:?}"))
    }

    fn log(text: &str) -> Match<'_> {
        m(Label::Log, text)
    }

    fn fatal(text: &str) -> Match<'_> {
        m(Label::Fatal, text)
    }

    #[test]
    fn every_sample_classifies_as_its_own_message() {
        let c = cat();
        assert!(c.messages().len() > 100, "{}", c.messages().len());
        for def in c.messages() {
            assert!(!def.samples.is_empty(), "{} has no sample", def.id);
            assert!(
                def.sample_source.is_some(),
                "{} has no sample_source",
                def.id
            );
            for sample in def.samples.iter() {
                for &level in def.levels.iter() {
                    assert!(c.may_classify(level, sample.as_bytes()), "{sample:?}");
                    let got = c
                        .classify(level, sample)
                        .unwrap_or_else(|| panic!("{}: sample {sample:?} does not match", def.id));
                    assert_eq!(got.id, def.id, "sample {sample:?}");
                    assert_eq!(got.event, def.event);
                    assert_eq!(got.class, def.class);
                }
            }
        }
    }

    #[test]
    fn every_detail_sample_matches_its_rule() {
        let c = cat();
        assert!(c.details().len() >= 10);
        for d in c.details() {
            assert!(!d.samples.is_empty(), "{} has no sample", d.id);
            for sample in d.samples.iter() {
                let target = d
                    .applies_to
                    .first()
                    .map_or("auth_failed.password", |a| &**a);
                let def = c.message(target).expect("applies_to id exists");
                let fake = Match {
                    def,
                    id: def.id,
                    event: def.event,
                    class: def.class,
                    fields: Fields::from_captures(&Captures::default(), ""),
                };
                let info = c.classify_detail(&fake, sample);
                if d.hba {
                    assert!(
                        info.hba_line.is_some() && info.hba_line_number.is_some(),
                        "{}: {sample}",
                        d.id
                    );
                } else {
                    assert_eq!(info.class, d.class, "{}: {sample}", d.id);
                }
            }
        }
    }

    #[test]
    fn events_need_classes_where_the_brief_says() {
        for def in cat().messages() {
            if matches!(def.event, EventKind::AuthFailed | EventKind::AuthNote) {
                assert!(def.class.is_some(), "{}", def.id);
            }
            assert!(
                def.id.starts_with(def.event.as_str())
                    || def.event == EventKind::Disconnected
                    || def.event == EventKind::Authenticated
                    || def.event == EventKind::Authorized
                    || def.event == EventKind::Received
                    || def.event == EventKind::Ready,
                "{}: id should start with the event name",
                def.id
            );
        }
    }

    #[test]
    fn authorized_with_spaces_in_application_name() {
        let x = log(
            "connection authorized: user=terraformuser database=postgres application_name=Terraform provider SSL enabled (protocol=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256)",
        );
        assert_eq!(x.id, "authorized");
        assert_eq!(x.event, EventKind::Authorized);
        assert_eq!(x.get(Field::User), Some("terraformuser"));
        assert_eq!(x.get(Field::Database), Some("postgres"));
        assert_eq!(x.get(Field::ApplicationName), Some("Terraform provider"));
        assert_eq!(x.get(Field::SslProtocol), Some("TLSv1.2"));
        assert_eq!(x.get(Field::SslCipher), Some("ECDHE-RSA-AES256-GCM-SHA384"));
        assert_eq!(x.get_u64(Field::SslBits), Some(256));
        assert_eq!(x.get(Field::SslCompression), None);

        let plain = log("connection authorized: user=alice database=appdb");
        assert_eq!(plain.fields.len(), 2);
        assert_eq!(plain.get(Field::ApplicationName), None);

        // An application name that imitates the suffix: shortest match wins
        // (the ambiguity is resolved downstream).
        let forged = log(
            "connection authorized: user=a database=b application_name=psql SSL enabled (protocol=TLSv1.3, cipher=X, bits=256)",
        );
        assert_eq!(forged.get(Field::ApplicationName), Some("psql"));
        assert_eq!(forged.get(Field::SslCipher), Some("X"));
        // One that imitates it badly stays in the application name.
        let odd =
            log("connection authorized: user=a database=b application_name=x SSL enabled (nope");
        assert_eq!(odd.get(Field::ApplicationName), Some("x SSL enabled (nope"));
        assert_eq!(odd.get(Field::SslProtocol), None);
    }

    #[test]
    fn authorized_ssl_variants_by_version() {
        // 9.6/10: no bits.
        let v10 = log(
            "connection authorized: user=alice database=appdb SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, compression=off)",
        );
        assert_eq!(v10.get(Field::SslBits), None);
        assert_eq!(v10.get(Field::SslCompression), Some("off"));
        assert_eq!(v10.get(Field::SslCipher), Some("TLS_AES_256_GCM_SHA384"));
        // 11–13: bits and compression.
        let v11 = log(
            "connection authorized: user=alice database=appdb SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256, compression=off)",
        );
        assert_eq!(v11.get(Field::SslBits), Some("256"));
        assert_eq!(v11.get(Field::SslCompression), Some("off"));
        // 14+: no compression.
        let v14 = log(
            "connection authorized: user=alice database=appdb application_name=psql-ssl SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)",
        );
        assert_eq!(v14.get(Field::ApplicationName), Some("psql-ssl"));
        assert_eq!(v14.get(Field::SslProtocol), Some("TLSv1.3"));
        assert_eq!(v14.get(Field::SslBits), Some("256"));
        assert_eq!(v14.get(Field::SslCompression), None);
        // 16+ GSS with delegated credentials.
        let gss = log(
            "connection authorized: user=test1 database=postgres application_name=001_auth.pl GSS (authenticated=yes, encrypted=yes, delegated_credentials=no, principal=test1@EXAMPLE.COM)",
        );
        assert_eq!(gss.get(Field::GssAuthenticated), Some("yes"));
        assert_eq!(gss.get(Field::GssEncrypted), Some("yes"));
        assert_eq!(gss.get(Field::GssDelegated), Some("no"));
        assert_eq!(gss.get(Field::GssPrincipal), Some("test1@EXAMPLE.COM"));
        assert_eq!(gss.get(Field::ApplicationName), Some("001_auth.pl"));
    }

    #[test]
    fn replication_authorized() {
        let x = log(
            "replication connection authorized: user=replu application_name=walrcv SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)",
        );
        assert_eq!(x.id, "authorized.replication");
        assert_eq!(x.event, EventKind::Authorized);
        assert_eq!(x.get(Field::User), Some("replu"));
        assert_eq!(x.get(Field::Database), None);
        assert_eq!(x.get(Field::ApplicationName), Some("walrcv"));
        assert_eq!(x.get(Field::SslBits), Some("256"));
        let bare = log("replication connection authorized: user=repuser");
        assert_eq!(bare.get(Field::User), Some("repuser"));
    }

    #[test]
    fn disconnection_fields() {
        let x = log(
            "disconnection: session time: 0:00:00.847 user=terraformuser database=postgres host=82.214.175.74 port=13708",
        );
        assert_eq!(x.event, EventKind::Disconnected);
        assert_eq!(x.get(Field::SessionTime), Some("0:00:00.847"));
        assert_eq!(x.get(Field::User), Some("terraformuser"));
        assert_eq!(x.get(Field::Host), Some("82.214.175.74"));
        assert_eq!(x.get(Field::Port), Some("13708"));
        let v6 =
            log("disconnection: session time: 1:02:03.004 user=a b database= host=::1 port=5432");
        assert_eq!(v6.get(Field::User), Some("a b"));
        assert_eq!(v6.get(Field::Database), Some(""));
        assert_eq!(v6.get(Field::Host), Some("::1"));
        assert_eq!(v6.get(Field::Port), Some("5432"));
        let local = log(
            "disconnection: session time: 0:00:44.331 user=postgres database=postgres host=[local]",
        );
        assert_eq!(local.get(Field::Host), Some("[local]"));
        assert_eq!(local.get(Field::Port), None);
    }

    #[test]
    fn connection_received_fields() {
        let v6 = log("connection received: host=::1 port=61349");
        assert_eq!(v6.event, EventKind::Received);
        assert_eq!(v6.get(Field::Host), Some("::1"));
        assert_eq!(v6.get(Field::Port), Some("61349"));
        let full = log("connection received: host=2001:db8::17 port=40022");
        assert_eq!(full.get(Field::Host), Some("2001:db8::17"));
        let local = log("connection received: host=[local]");
        assert_eq!(local.get(Field::Host), Some("[local]"));
        assert_eq!(local.get(Field::Port), None);
        let name = log("connection received: host=client.example.com port=5");
        assert_eq!(name.get(Field::Host), Some("client.example.com"));
    }

    #[test]
    fn authenticated_identity_with_a_quote() {
        let x = log(
            r#"connection authenticated: identity="we ird"name" method=scram-sha-256 (/var/lib/postgresql/16/main/pg_hba.conf:6)"#,
        );
        assert_eq!(x.event, EventKind::Authenticated);
        assert_eq!(x.get(Field::Identity), Some(r#"we ird"name"#));
        assert_eq!(x.get(Field::Method), Some("scram-sha-256"));
        assert_eq!(
            x.get(Field::HbaFile),
            Some("/var/lib/postgresql/16/main/pg_hba.conf")
        );
        assert_eq!(x.get(Field::HbaLineNumber), Some("6"));
        let trust = log(
            r#"connection authenticated: user="monitor" method=trust (/etc/postgresql/17/main/pg_hba.conf:125)"#,
        );
        assert_eq!(trust.id, "authenticated.trust");
        assert_eq!(trust.get(Field::User), Some("monitor"));
        assert_eq!(trust.get(Field::Identity), None);
    }

    #[test]
    fn no_hba_entry_forms() {
        let short = fatal(r#"no pg_hba.conf entry for host "10.1.2.3", user "app", database "db""#);
        assert_eq!(short.id, "auth_failed.no_hba_entry");
        assert_eq!(short.class, Some(FailureClass::NoHbaEntry));
        assert_eq!(short.get(Field::Database), Some("db"));
        assert_eq!(short.get(Field::Encryption), None);
        let v14 = fatal(
            r#"no pg_hba.conf entry for host "10.0.1.123", user "devworld", database "airflow_db", no encryption"#,
        );
        assert_eq!(v14.get(Field::Host), Some("10.0.1.123"));
        assert_eq!(v14.get(Field::User), Some("devworld"));
        assert_eq!(v14.get(Field::Database), Some("airflow_db"));
        assert_eq!(v14.get(Field::Encryption), Some("no encryption"));
        // A database name imitating the state cannot fake it.
        let forged = fatal(
            r#"no pg_hba.conf entry for host "1.2.3.4", user "u", database "x", SSL encryption", no encryption"#,
        );
        assert_eq!(forged.get(Field::Database), Some(r#"x", SSL encryption"#));
        assert_eq!(forged.get(Field::Encryption), Some("no encryption"));
        let repl = fatal(
            r#"no pg_hba.conf entry for replication connection from host "192.168.57.13", user "barman", no encryption"#,
        );
        assert_eq!(repl.id, "auth_failed.no_hba_entry.replication");
        assert_eq!(repl.get(Field::User), Some("barman"));
        let reject = fatal(
            r#"pg_hba.conf rejects connection for host "127.0.0.1", user "app1user", database "app1", SSL off"#,
        );
        assert_eq!(reject.class, Some(FailureClass::HbaReject));
        assert_eq!(reject.get(Field::Encryption), Some("SSL off"));
    }

    #[test]
    fn pam_log_reason() {
        let x = log("pam_authenticate failed: Authentication failure");
        assert_eq!(x.id, "auth_note.pam_authenticate");
        assert_eq!(x.event, EventKind::AuthNote);
        assert_eq!(x.class, Some(FailureClass::Pam));
        assert_eq!(x.get(Field::Reason), Some("Authentication failure"));
        let f = fatal(r#"PAM authentication failed for user "pganalyze""#);
        assert_eq!(f.event, EventKind::AuthFailed);
        assert_eq!(f.get(Field::User), Some("pganalyze"));
    }

    #[test]
    fn levels_gate_templates() {
        let c = cat();
        // FATAL templates accept ERROR (untranslated jsonlog, promoted ERRORs).
        assert!(
            c.classify(
                Label::Error,
                r#"password authentication failed for user "a""#
            )
            .is_some()
        );
        // …but not LOG.
        assert!(
            c.classify(Label::Log, r#"password authentication failed for user "a""#)
                .is_none()
        );
        assert!(
            c.classify(Label::Fatal, "connection received: host=[local]")
                .is_none()
        );
        assert!(
            c.classify(Label::Detail, "connection received: host=[local]")
                .is_none()
        );
        // Texts that are also statement ERRORs are FATAL-only.
        assert!(
            c.classify(Label::Error, r#"role "x" does not exist"#)
                .is_none()
        );
        assert!(
            c.classify(Label::Error, r#"database "x" does not exist"#)
                .is_none()
        );
        assert!(
            c.classify(Label::Fatal, r#"role "x" does not exist"#)
                .is_some()
        );
        // Same text, two levels, two entries.
        assert_eq!(
            log(r#"OAuth bearer authentication failed for user "u""#).event,
            EventKind::AuthNote
        );
        assert_eq!(
            fatal(r#"OAuth bearer authentication failed for user "u""#).event,
            EventKind::AuthFailed
        );
        // Listed at two levels.
        assert_eq!(
            log("invalid password packet size").id,
            "auth_failed.password_packet_size"
        );
        assert_eq!(
            fatal("invalid password packet size").id,
            "auth_failed.password_packet_size"
        );
        assert_eq!(
            m(
                Label::Warning,
                "terminating connection because of crash of another server process"
            )
            .event,
            EventKind::Terminated
        );
    }

    #[test]
    fn other_messages_are_rejected() {
        let c = cat();
        for (label, text) in [
            (Label::Log, "checkpoint starting: time"),
            (
                Label::Log,
                "checkpoint complete: wrote 3 buffers (0.0%); 0 WAL file(s) added",
            ),
            (
                Label::Error,
                r#"relation "foo" does not exist at character 15"#,
            ),
            (Label::Error, "division by zero"),
            (Label::Log, "statement: SELECT 1"),
            (Label::Log, "duration: 0.123 ms"),
            (
                Label::Log,
                "automatic vacuum of table \"db.public.t\": index scans: 0",
            ),
            (Label::Log, "database system is ready to accept connections"),
            (Label::Log, "connection"),
            (Label::Log, ""),
            (Label::Fatal, "role"),
            (Label::Log, "connection received: "),
            (
                Label::Error,
                r#"invalid value for parameter "DateStyle": "x""#,
            ),
            (Label::Error, "canceling statement due to user request"),
        ] {
            assert!(c.classify(label, text).is_none(), "{text:?} matched");
        }
    }

    #[test]
    fn detail_rules() {
        let c = cat();
        let failed = fatal(r#"password authentication failed for user "nosuchuser""#);
        let two = "Role \"nosuchuser\" does not exist.\nConnection matched file \"/var/lib/postgresql/16/main/pg_hba.conf\" line 6: \"host    appdb       all         127.0.0.1/32    scram-sha-256\"";
        let info = c.classify_detail(&failed, two);
        assert_eq!(info.class, Some(FailureClass::RoleMissing));
        assert_eq!(
            info.hba_file,
            Some("/var/lib/postgresql/16/main/pg_hba.conf")
        );
        assert_eq!(info.hba_line_number, Some(6));
        assert_eq!(
            info.hba_line,
            Some("host    appdb       all         127.0.0.1/32    scram-sha-256")
        );

        // SCRAM mismatch: only the hba line (9.6–15 form).
        let one = "Connection matched pg_hba.conf line 13: \"hostssl    all             +rds_iam             all            pam\"";
        let info = c.classify_detail(&failed, one);
        assert_eq!(info.class, None);
        assert_eq!(info.hba_line_number, Some(13));
        assert_eq!(info.hba_file, None);

        for (detail, class) in [
            (
                "User \"a\" has no password assigned.",
                FailureClass::NoPassword,
            ),
            (
                "User \"a\" has an expired password.",
                FailureClass::PasswordExpired,
            ),
            (
                "Password does not match for user \"a\".",
                FailureClass::Password,
            ),
            (
                "User \"a\" does not have a valid SCRAM secret.",
                FailureClass::InvalidSecret,
            ),
            (
                "User \"a\" has an empty password.",
                FailureClass::EmptyPassword,
            ),
        ] {
            let with_hba = format!(
                "{detail}\nConnection matched pg_hba.conf line 1: \"host all all all md5\""
            );
            assert_eq!(
                c.classify_detail(&failed, &with_hba).class,
                Some(class),
                "{detail}"
            );
            assert_eq!(
                c.classify_detail(&failed, detail).class,
                Some(class),
                "{detail}"
            );
        }

        // A user name with a newline cannot replace the real hba line, which is last.
        let hostile = "Role \"x\nConnection matched pg_hba.conf line 1: \"host all all 0.0.0.0/0 trust\"\" does not exist.\nConnection matched pg_hba.conf line 7: \"host db all 10.0.0.0/8 scram-sha-256\"";
        let info = c.classify_detail(&failed, hostile);
        assert_eq!(info.hba_line_number, Some(7));
        assert_eq!(info.class, Some(FailureClass::RoleMissing));

        // Rules only apply to their messages.
        let pam = fatal(r#"PAM authentication failed for user "a""#);
        let info = c.classify_detail(&pam, "Role \"a\" does not exist.\nConnection matched pg_hba.conf line 14: \"host all all all pam\"");
        assert_eq!(info.class, None);
        assert_eq!(info.hba_line_number, Some(14));

        // TLS failure caused by the client certificate (16+, two-line DETAIL).
        let tls = log("could not accept SSL connection: certificate verify failed");
        let info = c.classify_detail(&tls, "Client certificate verification failed at depth 0: unable to get local issuer certificate.\nFailed certificate data (unverified): subject \"/CN=alice\", serial number 1, issuer \"/CN=ca\".");
        assert_eq!(info.class, Some(FailureClass::Cert));
        assert_eq!(c.classify_detail(&tls, "").class, None);
    }

    #[test]
    fn hba_rule_methods() {
        assert_eq!(
            hba_rule_method("hostssl    all             +rds_iam             all            pam"),
            Some("pam")
        );
        assert_eq!(
            hba_rule_method("host    appdb       all         127.0.0.1/32    scram-sha-256"),
            Some("scram-sha-256")
        );
        assert_eq!(
            hba_rule_method("host all all 10.0.0.0 255.0.0.0 md5"),
            Some("md5")
        );
        assert_eq!(
            hba_rule_method("local   all   postgres   peer map=x"),
            Some("peer")
        );
        assert_eq!(hba_rule_method("garbage"), None);
    }

    #[test]
    fn the_detail_memo_answers_what_classification_does() {
        let c = cat();
        let mut memo = ClassifyMemo::new();
        let failed = fatal(r#"password authentication failed for user "a""#);
        let pam = fatal(r#"PAM authentication failed for user "a""#);
        let hba = "Connection matched pg_hba.conf line 14: \"host all all all pam\"";
        let mut details: Vec<String> = c
            .details()
            .iter()
            .flat_map(|d| d.samples.iter().map(|s| s.to_string()))
            .collect();
        let with_hba: Vec<String> = details.iter().map(|d| format!("{d}\n{hba}")).collect();
        details.extend(with_hba);
        details.push(String::new());
        details.push("Role \"x\nConnection matched pg_hba.conf line 1: \"host all all 0.0.0.0/0 trust\"\" does not exist.\nConnection matched pg_hba.conf line 7: \"host db all 10.0.0.0/8 scram-sha-256\"".into());
        assert!(details.len() > 20, "{} details", details.len());
        // Twice over (the second pass answers from the memo), under two
        // messages whose rules differ, each text a fresh copy.
        for _ in 0..2 {
            for m in [&failed, &pam] {
                for detail in &details {
                    let copy = detail.clone();
                    assert_eq!(
                        c.classify_detail_memo(&mut memo, m, &copy),
                        c.classify_detail(m, detail),
                        "{detail:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn grammar_errors_name_file_and_id() {
        let good = r#"
[[message]]
id = "x.one"
level = "LOG"
sqlstate = "00000"
text = 'hello {user}'
event = "received"
versions = "9.6-18"
samples = ['hello bob']
sample_source = "format-string"
"#;
        assert!(Catalog::from_sources(&[("good.toml", good)]).is_ok());
        let cases: &[(&str, &str)] = &[
            (
                good.replace("hello {user}", "hello {usr}").leak(),
                "did you mean `user`",
            ),
            (
                good.replace("hello {user}", "hello [{user}").leak(),
                "unclosed `[`",
            ),
            (
                good.replace("samples = ['hello bob']", "samples = ['bye bob']")
                    .leak(),
                "does not match",
            ),
            (
                good.replace("samples = ['hello bob']", "samples = []")
                    .leak(),
                "no samples",
            ),
            (
                good.replace("event = \"received\"", "event = \"recieved\"")
                    .leak(),
                "did you mean `received`",
            ),
            (
                good.replace("event = \"received\"", "event = \"auth_failed\"")
                    .leak(),
                "needs a `class`",
            ),
            (
                good.replace("level = \"LOG\"", "level = \"COMMERROR\"")
                    .leak(),
                "printed as LOG",
            ),
            (
                good.replace("sqlstate = \"00000\"", "sqlstate = \"0000\"")
                    .leak(),
                "bad sqlstate",
            ),
            (
                good.replace("versions = \"9.6-18\"", "versions = \"18-9.6\"")
                    .leak(),
                "bad version range",
            ),
            (
                good.replace("text = 'hello {user}'\n", "").leak(),
                "missing field `text`",
            ),
            (
                good.replace("sample_source", "sample_sauce").leak(),
                "unknown field `sample_sauce`",
            ),
        ];
        for (text, want) in cases {
            let err = Catalog::from_sources(&[("grammars/messages/bad.toml", text)]).unwrap_err();
            assert_eq!(err.file, "grammars/messages/bad.toml");
            assert_eq!(err.id.as_deref(), Some("message \"x.one\""), "{err}");
            let shown = err.to_string();
            assert!(shown.contains(want), "{shown:?} lacks {want:?}");
            assert!(
                shown.starts_with("grammars/messages/bad.toml: message \"x.one\": "),
                "{shown}"
            );
        }
        // Duplicates and shadowing name the other file.
        let dup = Catalog::from_sources(&[("a.toml", good), ("b.toml", good)]).unwrap_err();
        assert_eq!(dup.file, "b.toml");
        assert!(
            dup.to_string().contains("duplicate id (also in a.toml)"),
            "{dup}"
        );
        let wide = good
            .replace("x.one", "x.wide")
            .replace("hello {user}", "hello {reason}");
        let shadow = Catalog::from_sources(&[("a.toml", &wide), ("b.toml", good)]).unwrap_err();
        assert_eq!(shadow.file, "b.toml");
        assert!(
            shadow
                .to_string()
                .contains("classifies as \"x.wide\" (a.toml)"),
            "{shadow}"
        );
        // A TOML syntax error names the file and the line.
        let syntax = Catalog::from_sources(&[("s.toml", "[[message]\nid = 1")]).unwrap_err();
        assert_eq!(syntax.file, "s.toml");
        assert!(syntax.to_string().contains("line 1"), "{syntax}");
        // A detail with an unknown applies_to.
        let det = format!(
            "{good}\n[[detail]]\nid = \"d\"\ntext = 'x'\napplies_to = [\"x.once\"]\nsamples = ['x']\n"
        );
        let err = Catalog::from_sources(&[("d.toml", &det)]).unwrap_err();
        assert_eq!(err.id.as_deref(), Some("detail \"d\""));
        assert!(err.to_string().contains("did you mean `x.one`"), "{err}");
    }

    /// The precedence the dispatch implements, without it: every template
    /// whose level fits, longest leading literal first, catalog order among
    /// equals, each matched from the start of the text.
    fn classify_by_trying_all<'a>(
        order: &[&'a MessageDef],
        label: Label,
        text: &'a str,
    ) -> Option<(&'static str, Vec<(Field, &'a str)>)> {
        let mut caps = Captures::default();
        order
            .iter()
            .filter(|d| d.level_mask & label_bit(label) != 0)
            .find(|d| d.template.matches(text, &mut caps))
            .map(|d| {
                let fields = Fields::from_captures(&caps, text);
                (d.id, fields.iter().collect())
            })
    }

    /// Texts to classify from a sample file: each line, what follows each
    /// `:  ` (a stderr severity), each double-quoted piece (csv, json), and
    /// cuts of those.
    fn texts_of(line: &str) -> Vec<&str> {
        let mut out = vec![line];
        out.extend(line.match_indices(":  ").map(|(i, _)| &line[i + 3..]));
        out.extend(line.split('"').skip(1).step_by(2));
        let cuts: Vec<&str> = out
            .iter()
            .flat_map(|t| {
                [t.len() / 2, t.len().saturating_sub(1)]
                    .into_iter()
                    .filter_map(|n| t.get(..n))
            })
            .collect();
        out.extend(cuts);
        out
    }

    #[test]
    fn dispatch_agrees_with_trying_every_template() {
        let c = cat();
        let mut order: Vec<&MessageDef> = c.messages().iter().collect();
        order.sort_by_key(|d| std::cmp::Reverse(d.template.leading_literal().len()));
        let mut texts: Vec<String> = Vec::new();
        for def in c.messages() {
            texts.extend(def.samples.iter().map(|s| s.to_string()));
        }
        for d in c.details() {
            texts.extend(d.samples.iter().map(|s| s.to_string()));
        }
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples"
        ))];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| {
                    ["log", "csv", "json", "jsonl"].contains(&&*e.to_string_lossy())
                }) {
                    files += 1;
                    let bytes = std::fs::read(&path).unwrap();
                    let text = String::from_utf8_lossy(&bytes);
                    for line in text.lines() {
                        texts.extend(texts_of(line).into_iter().map(str::to_owned));
                    }
                }
            }
        }
        assert!(files > 50, "{files} sample files");
        let mut matched = 0;
        for text in &texts {
            for label in [Label::Log, Label::Fatal, Label::Error, Label::Warning] {
                let want = classify_by_trying_all(&order, label, text);
                let got = c
                    .classify(label, text)
                    .map(|m| (m.id, m.fields.iter().collect::<Vec<_>>()));
                assert_eq!(got, want, "{label:?} {text:?}");
                matched += usize::from(got.is_some());
            }
        }
        assert!(matched > 1000, "{matched} matches");

        // The memo answers the same, whether a text is new to it, seen
        // just before, or seen a whole corpus ago (its slot reused since).
        let mut memo = ClassifyMemo::new();
        let mut hits = 0;
        for round in 0..2 {
            for text in &texts {
                for label in [Label::Log, Label::Fatal, Label::Error, Label::Warning] {
                    let want = c
                        .classify(label, text)
                        .map(|m| (m.id, m.class, m.fields.iter().collect::<Vec<_>>()));
                    for _ in 0..2 {
                        let found = c.classify_memo(&mut memo, label, text);
                        let got =
                            found.map(|m| (m.id, m.class, m.fields.iter().collect::<Vec<_>>()));
                        assert_eq!(got, want, "round {round}: {label:?} {text:?}");
                    }
                    hits += usize::from(memo.slots.iter().any(|s| s.text == text.as_bytes()));
                }
            }
        }
        assert!(hits > 1000, "{hits} texts remembered");
    }

    #[test]
    fn a_memo_keeps_no_text_longer_than_its_bound() {
        // A memo lives as long as its thread: a client's long names must
        // not make it grow, and the answers stay those of classifying.
        let c = cat();
        let mut memo = ClassifyMemo::new();
        fn summary(m: Option<Match<'_>>) -> Option<(String, Vec<(Field, String)>)> {
            m.map(|m| {
                let fields = m.fields.iter().map(|(f, v)| (f, v.to_owned())).collect();
                (m.id.to_owned(), fields)
            })
        }
        let long = "x".repeat(MEMO_TEXT_MAX);
        let authorized =
            format!("connection authorized: user=a database=b application_name={long}");
        let short = "connection authorized: user=a database=b application_name=psql";
        for text in [authorized.as_str(), short] {
            for _ in 0..2 {
                assert_eq!(
                    summary(c.classify_memo(&mut memo, Label::Log, text)),
                    summary(c.classify(Label::Log, text)),
                );
            }
        }
        assert!(summary(c.classify(Label::Log, &authorized)).is_some());
        assert!(memo.slots.iter().all(|s| s.text.len() <= MEMO_TEXT_MAX));
        assert!(memo.slots.iter().any(|s| s.text == short.as_bytes()));

        let failed = fatal(r#"password authentication failed for user "a""#);
        let detail = format!("Role \"{long}\" does not exist.");
        assert_eq!(
            c.classify_detail_memo(&mut memo, &failed, &detail),
            c.classify_detail(&failed, &detail)
        );
        assert!(memo.details.is_empty());
    }

    #[test]
    fn a_memo_is_not_shared_between_catalogs() {
        let src = |text: &str| {
            format!(
                "[[message]]\nid = \"x.one\"\nlevel = \"LOG\"\nsqlstate = \"00000\"\n\
                 text = '{text}'\nevent = \"protocol\"\nversions = \"18\"\n\
                 samples = ['{text}']\nsample_source = \"format-string\"\n"
            )
        };
        let a = Catalog::from_sources(&[("a.toml", &src("it happened"))]).unwrap();
        let b = Catalog::from_sources(&[("b.toml", &src("it happened again"))]).unwrap();
        let mut memo = ClassifyMemo::new();
        let id = |m: Option<Match<'_>>| m.map(|m| m.id.to_owned());
        assert_eq!(
            id(a.classify_memo(&mut memo, Label::Log, "it happened")),
            Some("x.one".into())
        );
        assert_eq!(
            id(b.classify_memo(&mut memo, Label::Log, "it happened")),
            None
        );
        assert_eq!(
            id(a.classify_memo(&mut memo, Label::Log, "it happened")),
            Some("x.one".into())
        );
    }

    #[test]
    fn texts_with_a_port_or_a_session_time_are_not_remembered() {
        let c = cat();
        let mut memo = ClassifyMemo::new();
        let texts = [
            "connection received: host=10.0.1.7 port=43210",
            "disconnection: session time: 0:00:00.016 user=app database=app host=10.0.1.7 port=43210",
        ];
        for text in texts {
            assert!(
                c.classify_memo(&mut memo, Label::Log, text).is_some(),
                "{text}"
            );
            assert!(
                !memo.slots.iter().any(|s| s.text == text.as_bytes()),
                "{text}"
            );
        }
        let repeated = "connection authorized: user=app database=app application_name=psql";
        assert!(c.classify_memo(&mut memo, Label::Log, repeated).is_some());
        assert!(memo.slots.iter().any(|s| s.text == repeated.as_bytes()));
    }

    #[test]
    fn templates_without_a_leading_literal() {
        // Every shipped template starts with literal text, which keeps the
        // two-byte prefilter effective …
        for def in cat().messages() {
            assert!(
                def.template.leading_literal().len() >= 2,
                "{} starts with a placeholder",
                def.id
            );
        }
        // … but a grammar file may still start with a placeholder.
        let src = r#"
[[message]]
id = "x.any"
level = "LOG"
sqlstate = "00000"
text = '{reason} happened'
event = "protocol"
versions = "18"
samples = ['xyz happened']
sample_source = "format-string"

[[message]]
id = "x.lit"
level = "LOG"
sqlstate = "00000"
text = 'it happened[ twice]'
event = "protocol"
versions = "18"
samples = ['it happened twice']
sample_source = "format-string"
"#;
        let c = Catalog::from_sources(&[("t.toml", src)]).unwrap();
        // The literal template is tried first (longest leading literal) and
        // claims the shared text.
        let first = c.classify(Label::Log, "it happened").map(|m| m.id);
        assert_eq!(first, Some("x.lit"));
        assert_eq!(
            c.classify(Label::Log, "xyz happened").map(|m| m.id),
            Some("x.any")
        );
        assert_eq!(
            c.classify(Label::Log, "z happened")
                .unwrap()
                .get(Field::Reason),
            Some("z")
        );
        assert!(c.classify(Label::Log, "h").is_none());
    }

    /// A small deterministic generator (no dev-dependency needed).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_input_never_panics() {
        let c = cat();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let pieces: Vec<&str> = c
            .messages()
            .iter()
            .flat_map(|d| d.samples.iter().map(|s| &**s))
            .collect();
        let atoms = [
            " ",
            "\"",
            "=",
            "(",
            ")",
            ",",
            ":",
            "[",
            "]",
            "{",
            "}",
            "\n",
            "é",
            "日本",
            "\u{0}",
            "SSL",
            " port=",
            " user=",
            " database=",
            "1",
            "99999999999999999999",
        ];
        let labels = [
            Label::Log,
            Label::Fatal,
            Label::Error,
            Label::Warning,
            Label::Detail,
        ];
        for _ in 0..20_000 {
            let mut s = String::new();
            if rng.below(2) == 0 {
                let p = pieces[rng.below(pieces.len())];
                let cut = rng.below(p.len() + 1);
                s.push_str(p.get(..cut).unwrap_or(p));
            }
            for _ in 0..rng.below(12) {
                s.push_str(atoms[rng.below(atoms.len())]);
            }
            if rng.below(3) == 0 {
                let p = pieces[rng.below(pieces.len())];
                s.push_str(p);
            }
            for label in labels {
                if let Some(x) = c.classify(label, &s) {
                    for (_, v) in x.fields.iter() {
                        assert!(s.contains(v));
                    }
                    let _ = c.classify_detail(&x, &s);
                }
            }
        }
    }

    #[test]
    fn hostile_application_name_is_fast_and_correct() {
        let mut app = String::new();
        for _ in 0..400 {
            app.push_str(" SSL enabled (protocol=TLSv1.3, cipher=X, bits=1, compression=on)");
        }
        let text = format!(
            "connection authorized: user=u database=d application_name=a{app} GSS (authenticated=maybe"
        );
        let start = std::time::Instant::now();
        let x = log(&text);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(x.get(Field::User), Some("u"));
        assert!(
            x.get(Field::ApplicationName)
                .is_some_and(|a| a.ends_with("maybe"))
        );
    }

    #[test]
    fn fields_table_matches_names() {
        assert_eq!(Field::ALL.len(), Field::NAMES.len());
        for (f, n) in Field::ALL.iter().zip(Field::NAMES) {
            assert_eq!(f.as_str(), *n);
            assert_eq!(Field::from_name(n), Some(*f));
        }
        assert!(Field::ALL.len() < 256);
    }

    #[test]
    fn builtin_sources_are_all_embedded() {
        let names: Vec<&str> = Catalog::builtin_sources().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"grammars/details.toml"), "{names:?}");
        for topic in [
            "lifecycle",
            "auth",
            "hba",
            "after_auth",
            "startup",
            "tls",
            "termination",
            "pam",
            "ldap",
            "radius",
            "cert",
            "ident",
            "scram",
            "oauth",
        ] {
            let want = format!("grammars/messages/{topic}.toml");
            assert!(
                names.contains(&want.as_str()),
                "{want} missing from {names:?}"
            );
        }
    }
}
