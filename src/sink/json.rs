//! A small JSON writer for the hot JSON Lines outputs (sessions, events).
//!
//! It writes straight into a byte buffer what `serde_json` would write for
//! the same values, byte for byte: strings escaped the same way (`\"`,
//! `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other controls as `\u00xx` in
//! lowercase hex; `/`, DEL and non-ASCII as they are), integers in decimal,
//! no whitespace. Field names are trusted (static ASCII identifiers) and
//! written as given. The serde wire types stay the schema and the test
//! oracle; this only skips serde's per-field machinery and `core::fmt`.

use crate::event::Provenance;
use crate::time::{format_rfc3339_ms, rfc3339_ms_bytes};

/// The bytes a JSON string must escape: `"`, `\` and controls below 0x20.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// A word with `byte` in every lane.
const fn lanes(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// Eight bytes as a little-endian word (the first byte is the lowest).
fn word(bytes: &[u8]) -> u64 {
    let mut lane = [0; 8];
    lane.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(lane)
}

/// The high bit of each byte of `word` that may need an escape. Zero
/// exactly when none does, and the lowest set bit marks the first byte
/// that does (the classic "has a byte less than n" and "has a zero byte"
/// bit tricks: a borrow can only flag bytes above a true match; bytes of
/// 0x80 and above never match).
fn escape_mask(word: u64) -> u64 {
    let high = lanes(0x80);
    let below_space = word.wrapping_sub(lanes(0x20)) & !word;
    let quote = word ^ lanes(b'"');
    let backslash = word ^ lanes(b'\\');
    let has_quote = quote.wrapping_sub(lanes(1)) & !quote;
    let has_backslash = backslash.wrapping_sub(lanes(1)) & !backslash;
    (below_space | has_quote | has_backslash) & high
}

/// The length of the longest prefix of `bytes` with nothing to escape,
/// checked eight bytes at a time.
fn clean_prefix(bytes: &[u8]) -> usize {
    let first = |at: usize, mask: u64| at + mask.trailing_zeros() as usize / 8;
    if bytes.len() < 8 {
        return clean_prefix_short(bytes);
    }
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mask = escape_mask(word(chunk));
        if mask != 0 {
            return first(at, mask);
        }
        at += 8;
    }
    if at == bytes.len() {
        return at;
    }
    // The last eight bytes, overlapping clean ones already checked.
    let start = bytes.len() - 8;
    let mask = escape_mask(word(&bytes[start..]));
    if mask == 0 {
        bytes.len()
    } else {
        first(start, mask)
    }
}

/// [`clean_prefix`] of a text shorter than eight bytes (most names, ports
/// and methods): from four bytes on, one word made of two overlapping
/// four-byte reads tells a clean text at once; the byte loop finds where
/// the first escape is otherwise.
fn clean_prefix_short(bytes: &[u8]) -> usize {
    let len = bytes.len();
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let word =
            u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << 32;
        if escape_mask(word) == 0 {
            return len;
        }
    }
    bytes.iter().position(|&b| needs_escape(b)).unwrap_or(len)
}

/// Appends the escaped contents of a JSON string (no quotes). Most texts
/// need no escape: that case is inlined where strings are written, the
/// rest is a call.
#[inline]
pub fn escape_into(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let clean = clean_prefix(bytes);
    out.extend_from_slice(&bytes[..clean]);
    if clean < bytes.len() {
        escape_from(out, &bytes[clean..]);
    }
}

/// [`escape_into`] from the first byte that needs an escape.
#[inline(never)]
fn escape_from(out: &mut Vec<u8>, mut rest: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    loop {
        let clean = clean_prefix(rest);
        out.extend_from_slice(&rest[..clean]);
        let Some((&b, tail)) = rest[clean..].split_first() else {
            return;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        rest = tail;
    }
}

/// Appends `text` as a JSON string.
pub fn string_into(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape_into(out, text);
    out.push(b'"');
}

/// Appends `n` in decimal.
pub fn uint_into(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a provenance as the JSON string of its `Display` form
/// (`"input:line"` or `"input:line#event_id"`).
pub fn provenance_into(out: &mut Vec<u8>, p: &Provenance) {
    out.push(b'"');
    escape_into(out, &p.input);
    provenance_tail_into(out, p);
}

/// What follows the input in [`provenance_into`]: `:line`, the event id,
/// the closing quote.
fn provenance_tail_into(out: &mut Vec<u8>, p: &Provenance) {
    out.push(b':');
    uint_into(out, p.line);
    if let Some(id) = &p.event_id {
        out.push(b'#');
        escape_into(out, id);
    }
    out.push(b'"');
}

/// A field name with its punctuation, `,"name":"`, put together at compile
/// time by `key!`: a field's key is then one copy, its leading comma
/// dropped for the first field and its trailing quote for a value that is
/// not a string. The text sits at the start of a fixed-size array, so
/// that the copy is a few register moves rather than a call to `memcpy`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    padded: [u8; KEY_BYTES],
    len: u8,
}

/// The longest [`Key`] text (a 27-byte field name).
const KEY_BYTES: usize = 32;

impl Key {
    /// Wraps `,"name":"`; use `key!`, which writes it from the name and
    /// checks it when the crate is compiled.
    pub const fn new(text: &'static str) -> Key {
        let b = text.as_bytes();
        let n = b.len();
        assert!(n >= 5 && b[0] == b',' && b[1] == b'"');
        assert!(b[n - 3] == b'"' && b[n - 2] == b':' && b[n - 1] == b'"');
        assert!(n <= KEY_BYTES, "field name too long for a Key");
        let mut padded = [0; KEY_BYTES];
        let mut i = 0;
        while i < n {
            padded[i] = b[i];
            i += 1;
        }
        Key {
            padded,
            len: n as u8,
        }
    }
}

/// The [`Key`] of a field name (a string literal, trusted: static ASCII),
/// made at compile time.
macro_rules! key {
    ($name:literal) => {
        const { $crate::sink::json::Key::new(concat!(",\"", $name, "\":\"")) }
    };
}
pub(crate) use key;

/// One JSON object being written into a buffer: fields in call order,
/// closed by [`Object::end`].
pub struct Object<'b> {
    out: &'b mut Vec<u8>,
    empty: bool,
}

impl<'b> Object<'b> {
    /// Opens an object at the end of `out`.
    pub fn begin(out: &'b mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes `"name":` (after a comma unless first), and the opening
    /// quote of a string value when `string`.
    #[inline]
    fn put_key(&mut self, key: Key, string: bool) {
        let to = usize::from(key.len) - usize::from(!string);
        if self.empty {
            self.empty = false;
            self.out.extend_from_slice(&key.padded[1..to]);
        } else {
            // The whole array (a fixed-size copy), then the length cut back.
            let at = self.out.len();
            self.out.extend_from_slice(&key.padded);
            self.out.truncate(at + to);
        }
    }

    /// Writes `"name":` (after a comma unless first) and lends the buffer
    /// for the value.
    #[inline]
    pub fn key(&mut self, key: Key) -> &mut Vec<u8> {
        self.put_key(key, false);
        self.out
    }

    /// A string field.
    #[inline]
    pub fn str(&mut self, key: Key, value: &str) {
        self.put_key(key, true);
        escape_into(self.out, value);
        self.out.push(b'"');
    }

    /// A string field, omitted when `None`.
    #[inline]
    pub fn opt_str(&mut self, key: Key, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// An unsigned integer field.
    #[inline]
    pub fn uint(&mut self, key: Key, value: u64) {
        uint_into(self.key(key), value);
    }

    /// An unsigned integer field, omitted when `None`.
    #[inline]
    pub fn opt_uint(&mut self, key: Key, value: Option<u64>) {
        if let Some(v) = value {
            self.uint(key, v);
        }
    }

    /// `"name":true`, omitted when false.
    #[inline]
    pub fn flag(&mut self, key: Key, value: bool) {
        if value {
            self.key(key).extend_from_slice(b"true");
        }
    }

    /// A time as RFC 3339 UTC with milliseconds (what
    /// [`format_rfc3339_ms`] writes); omitted when `None`, and also when
    /// the time cannot be shown if `skip_unshowable` (else it is `""`).
    pub fn time(&mut self, key: Key, ms: Option<i64>, skip_unshowable: bool) {
        let Some(ms) = ms else { return };
        match rfc3339_ms_bytes(ms) {
            Some(text) => {
                self.put_key(key, true);
                self.out.extend_from_slice(&text);
                self.out.push(b'"');
            }
            None => {
                let text = format_rfc3339_ms(ms);
                if !(skip_unshowable && text.is_empty()) {
                    self.str(key, &text);
                }
            }
        }
    }

    /// An array of strings, omitted when empty if `skip_empty`.
    pub fn str_array<'s>(
        &mut self,
        key: Key,
        items: impl ExactSizeIterator<Item = &'s str>,
        skip_empty: bool,
    ) {
        if skip_empty && items.len() == 0 {
            return;
        }
        let out = self.key(key);
        out.push(b'[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string_into(out, item);
        }
        out.push(b']');
    }

    /// An array of provenances as strings, omitted when empty if
    /// `skip_empty`.
    pub fn provenances(&mut self, key: Key, items: &[Provenance], skip_empty: bool) {
        if skip_empty && items.is_empty() {
            return;
        }
        let out = self.key(key);
        out.push(b'[');
        // The escaped input of the previous item, reused while the items
        // share it (a session's records mostly come from one input).
        let mut last: Option<(crate::name::Name, std::ops::Range<usize>)> = None;
        for (i, p) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            let start = out.len();
            match &last {
                Some((input, escaped)) if *input == p.input => {
                    out.extend_from_within(escaped.clone());
                }
                _ => {
                    escape_into(out, &p.input);
                    last = Some((p.input, start..out.len()));
                }
            }
            provenance_tail_into(out, p);
        }
        out.push(b']');
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn escaped(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        string_into(&mut out, text);
        out
    }

    fn serde(text: &str) -> Vec<u8> {
        serde_json::to_vec(text).unwrap_or_default()
    }

    #[test]
    fn escapes_like_serde_json() {
        let mut every_byte = String::new();
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{2028}'])
        {
            every_byte.push(c);
        }
        for text in [
            "",
            "plain",
            "\"",
            "\\",
            "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{7f}k/l",
            "exactly8",
            "exactly8\"",
            "\"exactly8",
            "1234567\n",
            "123456789abcdef\"",
            "123456789abcde\"f",
            "123456789\"",
            "12345678\u{1}",
            "ab\"",
            "abc\"",
            "ab\"d",
            "\u{1}bcdefg",
            "abcdef\\",
            "abc\"efg",
            "1234567",
            "é\"",
            "héllo wörld — 😀 \u{1b}[31m",
            &every_byte,
        ] {
            assert_eq!(escaped(text), serde(text), "{text:?}");
        }
    }

    #[test]
    fn word_check_matches_byte_check() {
        for b in 0u8..=255 {
            for at in 0..8 {
                let mut bytes = *b"abcdefgh";
                bytes[at] = b;
                let mask = escape_mask(u64::from_le_bytes(bytes));
                assert_eq!(mask != 0, needs_escape(b), "{b:#x} at {at}");
                if mask != 0 {
                    assert_eq!(mask.trailing_zeros() as usize / 8, at);
                }
            }
        }
    }

    #[test]
    fn integers_like_serde_json() {
        let edges = [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            65_535,
            4_294_967_295,
            u64::MAX,
        ];
        for n in edges.into_iter().chain(0..10_000) {
            let mut out = Vec::new();
            uint_into(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap_or_default());
        }
    }

    #[test]
    fn provenance_like_display() {
        for p in [
            Provenance {
                input: crate::name::Name::new("logs/pg.log"),
                line: 42,
                event_id: None,
            },
            Provenance {
                input: crate::name::Name::new("grp/\"stream\"\\x\n"),
                line: 0,
                event_id: Some(Arc::from("3816\u{1}7")),
            },
        ] {
            let mut out = Vec::new();
            provenance_into(&mut out, &p);
            assert_eq!(out, serde(&p.to_string()));
        }
    }

    #[test]
    fn provenance_arrays_like_serde_json() {
        // Items sharing an input (escaped once, then copied), and a change
        // of input between.
        let odd = Name::new("grp/\"stream\"\\x\n");
        let plain = Name::new("logs/pg.log");
        let at = |input: &Name, line, id: Option<&str>| Provenance {
            input: *input,
            line,
            event_id: id.map(Arc::from),
        };
        let items = [
            at(&odd, 1, None),
            at(&odd, 2, Some("37\u{1}")),
            at(&plain, 3, None),
            at(&Name::new("logs/pg.log"), 4, None),
            at(&odd, 5, None),
            at(&odd, 6, None),
        ];
        for n in 0..=items.len() {
            let mut out = Vec::new();
            let mut o = Object::begin(&mut out);
            o.provenances(key!("evidence"), &items[..n], false);
            o.end();
            let texts: Vec<String> = items[..n].iter().map(|p| p.to_string()).collect();
            let expected = serde_json::json!({ "evidence": texts }).to_string();
            assert_eq!(String::from_utf8_lossy(&out), expected, "{n} items");
        }
    }

    #[test]
    fn times_like_format_rfc3339_ms() {
        for ms in [
            0,
            1_764_341_841_812,
            -1,
            253_402_300_799_999,
            253_402_300_800_000,
        ] {
            let mut out = Vec::new();
            let mut o = Object::begin(&mut out);
            o.time(key!("t"), Some(ms), false);
            o.end();
            let expected = format!(
                "{{\"t\":{}}}",
                String::from_utf8_lossy(&serde(&format_rfc3339_ms(ms)))
            );
            assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }

    proptest! {
        #[test]
        fn any_string_escapes_like_serde_json(text in "(\\PC|[\\x00-\\x1f\"\\\\\\x7f/])*") {
            prop_assert_eq!(escaped(&text), serde(&text));
        }
    }
}
