//! The grammar-file language: message templates, their compilation into
//! backtracking matchers, and the loading of `grammars/**/*.toml` entries.
//!
//! [`crate::message`] builds the catalog (dispatch, fields, DETAIL rules) on
//! top of this module; nothing here knows a PostgreSQL message.
//!
//! # Template language
//!
//! A template describes one message text (the `errmsg`, after `%` expansion):
//!
//! | syntax | meaning |
//! |---|---|
//! | `text` | literal text, matched byte for byte |
//! | `{name}` | any text, possibly empty, captured into the field `name` |
//! | `{name:int}` | one or more ASCII digits |
//! | `{name:dec}` | digits with an optional `.digits` fraction (`7.638`) |
//! | `{name:word}` | one or more bytes that are not ASCII whitespace |
//! | `{name:a\|b\|c}` | exactly one of the listed literals (`{encryption:SSL on\|SSL off}`) |
//! | `{_}`, `{_:int}`, … | the same, matched but not captured (a second number, say) |
//! | `[...]` | an optional group; groups nest |
//! | `\[` `\]` `\{` `\}` `\\` `\|` | the literal character (TOML literal strings, `'...'`, keep the backslash) |
//!
//! Backslash escapes were chosen over doubling (`[[`, `]]`) because a template
//! often closes two nested groups at once (`…[, bits={ssl_bits:int}])]`), which
//! doubling would make ambiguous.
//!
//! # Matching semantics
//!
//! The whole message must match. Placeholders are resolved by backtracking,
//! **shortest first**; an optional group is tried **present first**. So
//! `application_name=psql SSL enabled (…)` yields `application_name=psql` plus
//! the TLS fields: the earliest placeholder takes the shortest text that lets
//! the rest match. Typed placeholders and choice lists narrow the search.
//!
//! A placeholder of any-text kind must be followed by something that is not
//! another any-text placeholder (the split between them would be arbitrary);
//! compilation rejects such templates.
//!
//! # Grammar files
//!
//! `grammars/messages/*.toml` (by topic) and `grammars/details.toml` hold
//! `[[message]]` and `[[detail]]` tables; unknown keys are errors.
//!
//! `[[message]]`: `id` (unique, `event.what`), `level` (as printed: `"LOG"`,
//! `"FATAL"`, … or a list; FATAL and ERROR accept each other unless
//! `exact_level = true`), `sqlstate` (one or a list), `text` (the template),
//! `event` (an [`EventKind`](crate::event::EventKind) name), `class` (a
//! [`FailureClass`](crate::event::FailureClass) name; required for
//! `auth_failed` and `auth_note`), `versions` (`9.6-18`, `14-`, `10, 13-18`),
//! `samples` (at least one; each must classify as this message) and
//! `sample_source` (where the samples were seen; `format-string` when they
//! were instantiated from the format string by hand).
//!
//! `[[detail]]`: `id`, `text`, optional `class` (the refined class),
//! `applies_to` (message ids; none = all), `versions`, `samples`,
//! `sample_source`.
//!
//! Matching never allocates on ordinary input: a step budget bounds the plain
//! backtracking search, and only input that exhausts it (hostile text crafted
//! to repeat the template's separators) is re-run with a memo of failed
//! states, which keeps the worst case polynomial.

use std::fmt;

/// The most named placeholders one template may have.
pub const MAX_CAPTURES: usize = 16;

/// Steps the plain backtracking search may take before the memoised search
/// takes over.
const STEP_BUDGET: u32 = 20_000;

/// The most memo bits (states × positions) the fallback search allocates;
/// beyond this the input is declared not to match.
const MEMO_LIMIT_BITS: usize = 1 << 27;

/// What a placeholder accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Any text, possibly empty.
    Text,
    /// One or more ASCII digits.
    Int,
    /// Digits with an optional `.digits` fraction.
    Dec,
    /// One or more bytes that are not ASCII whitespace.
    Word,
    /// Exactly one of these literals (tried shortest first).
    Choice(Box<[Box<str>]>),
}

/// A 256-bit set of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn union(&mut self, other: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
    }

    fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|b| self.contains(*b))
    }
}

/// The bytes the rest of a template can start with: `set`, or anything
/// (`any`), and whether it can match at the very end of the input (`end`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct First {
    set: ByteSet,
    any: bool,
    end: bool,
}

impl First {
    fn union(mut self, other: First) -> First {
        self.set.union(&other.set);
        self.any |= other.any;
        self.end |= other.end;
        self
    }
}

/// Where a placeholder may stop: just before a byte of `first`, or at the
/// end. `few` lists the bytes when there are at most three, so the scan can
/// use `memchr`.
#[derive(Debug, Clone, Copy)]
struct Stop {
    first: First,
    few: [u8; 3],
    nfew: u8,
    /// A typed placeholder (int, dec, word) may end before one of the
    /// bytes it accepts: only then is its run searched for stop bytes.
    inside: bool,
}

impl Stop {
    fn new(first: First) -> Stop {
        let mut few = [0; 3];
        let mut nfew = 0u8;
        if !first.any && first.set.len() <= 3 {
            for b in first.set.bytes() {
                few[usize::from(nfew)] = b;
                nfew += 1;
            }
        }
        Stop {
            first,
            few,
            nfew,
            inside: true,
        }
    }

    /// True when a placeholder may end at `e`.
    fn allows(&self, input: &[u8], e: usize) -> bool {
        match input.get(e) {
            None => self.first.end,
            Some(&b) => self.first.any || self.first.set.contains(b),
        }
    }

    /// The index in `hay` of the first byte a placeholder may end before
    /// (memchr when the stop set has at most three bytes).
    fn find_stop_byte(&self, hay: &[u8]) -> Option<usize> {
        match self.nfew {
            1 => memchr::memchr(self.few[0], hay),
            2 => memchr::memchr2(self.few[0], self.few[1], hay),
            3 => memchr::memchr3(self.few[0], self.few[1], self.few[2], hay),
            _ if self.first.set.len() == 0 => None,
            _ => hay.iter().position(|b| self.first.set.contains(*b)),
        }
    }

    /// The first position `>= from` where a placeholder of any text may end.
    fn next(&self, input: &[u8], from: usize) -> Option<usize> {
        if from > input.len() {
            return None;
        }
        if self.first.any {
            return Some(from);
        }
        match self.find_stop_byte(&input[from..]) {
            Some(i) => Some(from + i),
            None if self.first.end => Some(input.len()),
            None => None,
        }
    }

    /// The first position in `from..limit` (all inside `input`) before
    /// whose byte a placeholder may end.
    fn next_inside(&self, input: &[u8], from: usize, limit: usize) -> Option<usize> {
        if !self.inside || from >= limit {
            return None;
        }
        if self.first.any {
            return Some(from);
        }
        let hay = input.get(from..limit)?;
        self.find_stop_byte(hay).map(|i| from + i)
    }
}

#[derive(Debug, Clone)]
enum Inst {
    Lit(Box<str>),
    /// `slot` is the index of the field in the list given to
    /// [`Template::compile`]; `None` for `{_}`.
    Cap {
        slot: Option<u8>,
        kind: Kind,
        stop: Stop,
    },
    /// An optional group: try the next instruction, else continue at `skip`.
    Opt {
        skip: usize,
    },
    End,
}

/// One captured placeholder: the field slot and the byte range (inputs are
/// limited to `u32::MAX` bytes, see [`Template::matches`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capture {
    pub slot: u8,
    pub start: u32,
    pub end: u32,
}

impl Capture {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The captures of one match, stored inline (no allocation).
#[derive(Debug, Clone)]
pub struct Captures {
    len: usize,
    items: [Capture; MAX_CAPTURES],
}

impl Default for Captures {
    fn default() -> Self {
        Captures {
            len: 0,
            items: [Capture::default(); MAX_CAPTURES],
        }
    }
}

impl Captures {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn as_slice(&self) -> &[Capture] {
        &self.items[..self.len]
    }

    fn push(&mut self, c: Capture) {
        // Compilation caps the named placeholders per template at
        // MAX_CAPTURES and a path captures each at most once.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }
}

/// Why a template did not compile: a byte offset in the template text and a
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    prog: Box<[Inst]>,
    leading: Box<str>,
    slots: Box<[u8]>,
}

/// Parser state: the instructions so far and the open groups.
struct Parser<'t, 'f> {
    text: &'t str,
    fields: &'f [&'f str],
    prog: Vec<Inst>,
    lit: String,
    /// Instruction index of each open `Opt`, with the template offset of its `[`.
    open: Vec<(usize, usize)>,
    slots: Vec<u8>,
    /// Template offset of each placeholder instruction (for errors).
    offsets: Vec<(usize, usize)>,
}

impl Parser<'_, '_> {
    fn flush(&mut self) {
        if !self.lit.is_empty() {
            self.prog
                .push(Inst::Lit(std::mem::take(&mut self.lit).into_boxed_str()));
        }
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            offset,
            message: message.into(),
        }
    }

    fn parse(mut self) -> Result<Template, TemplateError> {
        let mut chars = self.text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('[' | ']' | '{' | '}' | '\\' | '|'))) => self.lit.push(e),
                    Some((_, e)) => {
                        return Err(self.err(at, format!("unknown escape `\\{e}`")));
                    }
                    None => return Err(self.err(at, "template ends with a lone `\\`")),
                },
                '[' => {
                    self.flush();
                    self.open.push((self.prog.len(), at));
                    self.prog.push(Inst::Opt { skip: 0 });
                }
                ']' => {
                    self.flush();
                    let Some((op, _)) = self.open.pop() else {
                        return Err(self.err(at, "`]` without a matching `[` (write `\\]`)"));
                    };
                    let end = self.prog.len();
                    self.prog[op] = Inst::Opt { skip: end };
                }
                '{' => {
                    self.flush();
                    let mut body = String::new();
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            '\\' => match chars.next() {
                                Some((_, e)) => {
                                    // Keep `\|` escaped so the choice split sees it.
                                    if e == '|' {
                                        body.push('\\');
                                    }
                                    body.push(e);
                                }
                                None => break,
                            },
                            '{' => {
                                return Err(self.err(at, "`{` inside a placeholder"));
                            }
                            c => body.push(c),
                        }
                    }
                    if !closed {
                        return Err(self.err(at, "unclosed `{` (write `\\{` for a literal brace)"));
                    }
                    self.placeholder(at, &body)?;
                }
                '}' => return Err(self.err(at, "`}` without a matching `{` (write `\\}`)")),
                c => self.lit.push(c),
            }
        }
        self.flush();
        if let Some(&(_, at)) = self.open.last() {
            return Err(self.err(at, "unclosed `[` (write `\\[` for a literal bracket)"));
        }
        self.prog.push(Inst::End);
        self.finish()
    }

    fn placeholder(&mut self, at: usize, body: &str) -> Result<(), TemplateError> {
        let (name, kind) = match body.split_once(':') {
            None => (body, Kind::Text),
            Some((name, spec)) => (name, parse_kind(spec).map_err(|m| self.err(at, m))?),
        };
        let slot = if name == "_" {
            None
        } else {
            let Some(i) = self.fields.iter().position(|f| *f == name) else {
                let hint = suggest(name, self.fields)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(self.err(at, format!("unknown field `{name}`{hint}")));
            };
            let slot = u8::try_from(i).map_err(|_| self.err(at, "too many fields"))?;
            if self.slots.contains(&slot) {
                return Err(self.err(at, format!("field `{name}` appears twice")));
            }
            if self.slots.len() == MAX_CAPTURES {
                return Err(self.err(at, format!("more than {MAX_CAPTURES} named placeholders")));
            }
            self.slots.push(slot);
            Some(slot)
        };
        self.offsets.push((self.prog.len(), at));
        self.prog.push(Inst::Cap {
            slot,
            kind,
            stop: Stop::new(First::default()),
        });
        Ok(())
    }

    /// Computes each placeholder's stop set and checks for ambiguous
    /// neighbours.
    fn finish(mut self) -> Result<Template, TemplateError> {
        let n = self.prog.len();
        let mut firsts = vec![First::default(); n + 1];
        // The program only jumps forward, so one backward pass suffices.
        for pc in (0..n).rev() {
            firsts[pc] = match &self.prog[pc] {
                Inst::Lit(s) => {
                    let mut set = ByteSet::default();
                    if let Some(&b) = s.as_bytes().first() {
                        set.insert(b);
                    }
                    First {
                        set,
                        any: false,
                        end: false,
                    }
                }
                Inst::End => First {
                    end: true,
                    ..First::default()
                },
                Inst::Opt { skip } => firsts[pc + 1].union(firsts[*skip]),
                Inst::Cap { kind, .. } => match kind {
                    Kind::Text => First {
                        any: true,
                        end: true,
                        ..First::default()
                    },
                    Kind::Int | Kind::Dec => {
                        let mut set = ByteSet::default();
                        for b in b'0'..=b'9' {
                            set.insert(b);
                        }
                        First {
                            set,
                            any: false,
                            end: false,
                        }
                    }
                    Kind::Word => {
                        let mut set = ByteSet::default();
                        for b in 0..=255u8 {
                            if !b.is_ascii_whitespace() {
                                set.insert(b);
                            }
                        }
                        First {
                            set,
                            any: false,
                            end: false,
                        }
                    }
                    Kind::Choice(alts) => {
                        let mut first = First::default();
                        for alt in alts.iter() {
                            match alt.as_bytes().first() {
                                Some(&b) => first.set.insert(b),
                                None => first = first.union(firsts[pc + 1]),
                            }
                        }
                        first
                    }
                },
            };
        }
        for pc in 0..n {
            let next = firsts[pc + 1];
            if let Inst::Cap { kind, stop, .. } = &mut self.prog[pc] {
                if *kind == Kind::Text && next.any {
                    let offset = self
                        .offsets
                        .iter()
                        .find(|(i, _)| *i == pc)
                        .map_or(0, |(_, at)| *at);
                    return Err(TemplateError {
                        offset,
                        message: "a `{field}` of any text is directly followed by another \
                                  placeholder of any text; put literal text between them"
                            .into(),
                    });
                }
                *stop = Stop::new(next);
                stop.inside = match kind {
                    Kind::Int | Kind::Dec => {
                        next.any || (b'0'..=b'9').any(|b| next.set.contains(b))
                    }
                    Kind::Word => {
                        next.any
                            || (0..=255u8).any(|b| !b.is_ascii_whitespace() && next.set.contains(b))
                    }
                    Kind::Text | Kind::Choice(_) => true,
                };
            }
        }
        let leading = match self.prog.first() {
            Some(Inst::Lit(s)) => s.clone(),
            _ => Box::from(""),
        };
        Ok(Template {
            prog: self.prog.into_boxed_slice(),
            leading,
            slots: self.slots.into_boxed_slice(),
        })
    }
}

fn parse_kind(spec: &str) -> Result<Kind, String> {
    Ok(match spec {
        "int" => Kind::Int,
        "dec" => Kind::Dec,
        "word" => Kind::Word,
        "text" => Kind::Text,
        s if s.contains('|') => {
            let mut alts: Vec<Box<str>> = Vec::new();
            let mut cur = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => cur.extend(chars.next()),
                    '|' => alts.push(std::mem::take(&mut cur).into_boxed_str()),
                    c => cur.push(c),
                }
            }
            alts.push(cur.into_boxed_str());
            // Shortest first, keeping the written order among equals.
            alts.sort_by_key(|a| a.len());
            Kind::Choice(alts.into_boxed_slice())
        }
        other => {
            return Err(format!(
                "unknown placeholder type `{other}` (int, dec, word, text, or a|b choices)"
            ));
        }
    })
}

/// The closest name within edit distance 2, for "did you mean" hints.
pub fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The search ran out of steps (only in the unmemoised mode).
struct Exhausted;

struct Run<'p, 'i> {
    prog: &'p [Inst],
    input: &'i [u8],
    text: &'i str,
    caps: &'i mut Captures,
    steps: u32,
    /// Failed (pc, pos) states, in the fallback mode.
    memo: Option<Vec<u64>>,
}

impl Run<'_, '_> {
    fn tick(&mut self) -> Result<(), Exhausted> {
        self.steps = self.steps.saturating_add(1);
        if self.memo.is_none() && self.steps > STEP_BUDGET {
            return Err(Exhausted);
        }
        Ok(())
    }

    fn bit(&self, pc: usize, pos: usize) -> usize {
        pc * (self.input.len() + 1) + pos
    }

    fn failed(&self, pc: usize, pos: usize) -> bool {
        match &self.memo {
            Some(m) => {
                let b = self.bit(pc, pos);
                m[b / 64] & (1 << (b % 64)) != 0
            }
            None => false,
        }
    }

    fn mark_failed(&mut self, pc: usize, pos: usize) {
        let b = self.bit(pc, pos);
        if let Some(m) = &mut self.memo {
            m[b / 64] |= 1 << (b % 64);
        }
    }

    fn go(&mut self, mut pc: usize, mut pos: usize) -> Result<bool, Exhausted> {
        let prog = self.prog;
        loop {
            match &prog[pc] {
                Inst::Lit(s) => {
                    if self.input[pos..].starts_with(s.as_bytes()) {
                        pos += s.len();
                        pc += 1;
                    } else {
                        return Ok(false);
                    }
                }
                Inst::End => return Ok(pos == self.input.len()),
                Inst::Opt { skip } => {
                    if self.failed(pc, pos) {
                        return Ok(false);
                    }
                    self.tick()?;
                    let mark = self.caps.len;
                    if self.go(pc + 1, pos)? {
                        return Ok(true);
                    }
                    self.caps.len = mark;
                    let ok = self.go(*skip, pos)?;
                    if !ok {
                        self.mark_failed(pc, pos);
                    }
                    return Ok(ok);
                }
                Inst::Cap { slot, kind, stop } => {
                    if self.failed(pc, pos) {
                        return Ok(false);
                    }
                    let ok = self.cap(pc, pos, *slot, kind, stop)?;
                    if !ok {
                        self.mark_failed(pc, pos);
                    }
                    return Ok(ok);
                }
            }
        }
    }

    /// Tries every end of the placeholder at `pc`, shortest first.
    fn cap(
        &mut self,
        pc: usize,
        pos: usize,
        slot: Option<u8>,
        kind: &Kind,
        stop: &Stop,
    ) -> Result<bool, Exhausted> {
        let input = self.input;
        match kind {
            Kind::Text => {
                let mut from = pos;
                while let Some(e) = stop.next(input, from) {
                    if self.try_end(pc, pos, e, slot)? {
                        return Ok(true);
                    }
                    from = e + 1;
                }
                Ok(false)
            }
            Kind::Int | Kind::Word => {
                let accept = |b: &u8| match kind {
                    Kind::Int => b.is_ascii_digit(),
                    _ => !b.is_ascii_whitespace(),
                };
                let last = pos + input[pos..].iter().take_while(|b| accept(b)).count();
                self.try_run(pc, pos, pos + 1, last, slot, stop)
            }
            Kind::Dec => {
                let digits = |from: usize| {
                    input[from..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count()
                };
                let whole = pos + digits(pos);
                if self.try_run(pc, pos, pos + 1, whole, slot, stop)? {
                    return Ok(true);
                }
                if whole > pos && input.get(whole) == Some(&b'.') {
                    let fraction = whole + 1;
                    let last = fraction + digits(fraction);
                    return self.try_run(pc, pos, fraction + 1, last, slot, stop);
                }
                Ok(false)
            }
            Kind::Choice(alts) => {
                for alt in alts.iter() {
                    if input[pos..].starts_with(alt.as_bytes())
                        && self.try_end(pc, pos, pos + alt.len(), slot)?
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// Tries, shortest first, the ends `from..=last` of the typed
    /// placeholder at `pc` (which started at `start`) that its stop allows:
    /// `last` is where the run of bytes the placeholder accepts ends, so
    /// only the stop bytes inside the run and the run's end are candidates.
    fn try_run(
        &mut self,
        pc: usize,
        start: usize,
        from: usize,
        last: usize,
        slot: Option<u8>,
        stop: &Stop,
    ) -> Result<bool, Exhausted> {
        if from > last {
            return Ok(false);
        }
        let mut e = from;
        while let Some(hit) = stop.next_inside(self.input, e, last) {
            if self.try_end(pc, start, hit, slot)? {
                return Ok(true);
            }
            e = hit + 1;
        }
        if stop.allows(self.input, last) {
            return self.try_end(pc, start, last, slot);
        }
        Ok(false)
    }

    fn try_end(
        &mut self,
        pc: usize,
        start: usize,
        end: usize,
        slot: Option<u8>,
    ) -> Result<bool, Exhausted> {
        if !self.text.is_char_boundary(end) {
            return Ok(false);
        }
        self.tick()?;
        let mark = self.caps.len;
        if let Some(slot) = slot {
            // `matches` rejects inputs longer than u32::MAX.
            self.caps.push(Capture {
                slot,
                start: start as u32,
                end: end as u32,
            });
        }
        if self.go(pc + 1, end)? {
            return Ok(true);
        }
        self.caps.len = mark;
        Ok(false)
    }
}

impl Template {
    /// Compiles `text`; placeholder names must be in `fields`, and a
    /// capture's `slot` is the name's index there.
    pub fn compile(text: &str, fields: &[&str]) -> Result<Template, TemplateError> {
        Parser {
            text,
            fields,
            prog: Vec::new(),
            lit: String::new(),
            open: Vec::new(),
            slots: Vec::new(),
            offsets: Vec::new(),
        }
        .parse()
    }

    /// The literal text every match starts with (empty when the template
    /// starts with a placeholder or an optional group).
    pub fn leading_literal(&self) -> &str {
        &self.leading
    }

    /// The field slots of the named placeholders, in template order.
    pub fn slots(&self) -> &[u8] {
        &self.slots
    }

    /// Matches the whole of `input`; on success `caps` holds the captures.
    /// Inputs longer than `u32::MAX` bytes never match.
    pub fn matches(&self, input: &str, caps: &mut Captures) -> bool {
        self.run(input, caps, 0, 0)
    }

    /// [`Template::matches`] for an input the caller has already seen start
    /// with [`Template::leading_literal`] (the catalog's dispatch does): the
    /// literal is not compared again. An input shorter than the literal
    /// never matches.
    pub fn matches_after_leading(&self, input: &str, caps: &mut Captures) -> bool {
        debug_assert!(input.starts_with(&*self.leading));
        if self.leading.is_empty() {
            self.run(input, caps, 0, 0)
        } else if input.len() < self.leading.len() {
            caps.clear();
            false
        } else {
            // The program starts with the leading literal's instruction.
            self.run(input, caps, 1, self.leading.len())
        }
    }

    /// Runs the program from instruction `pc` at byte `pos` of `input`.
    fn run(&self, input: &str, caps: &mut Captures, pc: usize, pos: usize) -> bool {
        caps.clear();
        if u32::try_from(input.len()).is_err() {
            return false;
        }
        let mut run = Run {
            prog: &self.prog,
            input: input.as_bytes(),
            text: input,
            caps,
            steps: 0,
            memo: None,
        };
        match run.go(pc, pos) {
            Ok(ok) => ok,
            Err(Exhausted) => {
                let bits = self
                    .prog
                    .len()
                    .checked_mul(input.len() + 1)
                    .filter(|b| *b <= MEMO_LIMIT_BITS);
                let Some(bits) = bits else { return false };
                run.caps.clear();
                run.memo = Some(vec![0; bits.div_ceil(64)]);
                run.steps = 0;
                matches!(run.go(pc, pos), Ok(true))
            }
        }
    }
}

/// A loading error: the file, the entry (message id, or `detail #n`) when
/// known, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarError {
    pub file: String,
    pub id: Option<String>,
    pub message: String,
}

impl GrammarError {
    pub fn new(file: &str, id: Option<&str>, message: impl Into<String>) -> Self {
        GrammarError {
            file: file.to_owned(),
            id: id.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for GrammarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}: {}: {}", self.file, id, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for GrammarError {}

/// A string or a list of strings in a grammar file (`level`, `sqlstate`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A `[[message]]` entry as written.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub id: String,
    pub level: OneOrMany,
    /// FATAL/ERROR templates accept either label unless this is set (for
    /// texts that are also ordinary statement ERRORs, e.g. `role "x" does
    /// not exist`).
    #[serde(default)]
    pub exact_level: bool,
    pub sqlstate: OneOrMany,
    pub text: String,
    pub event: String,
    pub class: Option<String>,
    pub versions: String,
    pub samples: Vec<String>,
    pub sample_source: Option<String>,
}

/// A `[[detail]]` entry as written.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetail {
    pub id: Option<String>,
    pub text: String,
    pub class: Option<String>,
    #[serde(default)]
    pub applies_to: Vec<String>,
    pub versions: Option<String>,
    pub samples: Vec<String>,
    pub sample_source: Option<String>,
}

/// The entries of one grammar file, in file order.
#[derive(Debug, Clone, Default)]
pub struct RawFile {
    pub messages: Vec<RawMessage>,
    pub details: Vec<RawDetail>,
}

/// Parses one grammar file. Errors name the file and, for an entry that does
/// not fit the schema, its id (or `message #n` / `detail #n`).
pub fn parse_file(file: &str, text: &str) -> Result<RawFile, GrammarError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| GrammarError::new(file, None, e.to_string()))?;
    let mut out = RawFile::default();
    for (key, value) in table {
        let what = match key.as_str() {
            "message" | "detail" => key.as_str(),
            other => {
                return Err(GrammarError::new(
                    file,
                    None,
                    format!("unknown top-level key `{other}` (expected [[message]] or [[detail]])"),
                ));
            }
        };
        let toml::Value::Array(entries) = value else {
            return Err(GrammarError::new(
                file,
                None,
                format!("`{what}` must be an array of tables ([[{what}]])"),
            ));
        };
        for (n, entry) in entries.into_iter().enumerate() {
            let label = entry
                .get("id")
                .and_then(|v| v.as_str())
                .map(|id| format!("{what} \"{id}\""))
                .unwrap_or_else(|| format!("{what} #{}", n + 1));
            let bad = |e: toml::de::Error| {
                GrammarError::new(file, Some(&label), e.message().trim().to_owned())
            };
            if what == "message" {
                out.messages.push(entry.try_into().map_err(bad)?);
            } else {
                out.details.push(entry.try_into().map_err(bad)?);
            }
        }
    }
    Ok(out)
}

/// Checks a `versions` value: comma-separated `A`, `A-B` or `A-` items where
/// each version is `9.6` or a major from 10 on, and ranges go upwards.
pub fn check_versions(s: &str) -> Result<(), String> {
    fn version(v: &str) -> Option<(u32, u32)> {
        match v.split_once('.') {
            Some((maj, min)) => Some((maj.parse().ok()?, min.parse().ok()?)),
            None => Some((v.parse().ok()?, 0)),
        }
    }
    if s.trim().is_empty() {
        return Err("empty `versions`".into());
    }
    for item in s.split(',') {
        let item = item.trim();
        let (lo, hi) = match item.split_once('-') {
            Some((lo, "")) => (lo, None),
            Some((lo, hi)) => (lo, Some(hi)),
            None => (item, Some(item)),
        };
        let bad = || format!("bad version range `{item}` (write e.g. `9.6-18`, `14-`, `12`)");
        let lo = version(lo.trim()).ok_or_else(bad)?;
        if let Some(hi) = hi {
            let hi = version(hi.trim()).ok_or_else(bad)?;
            if hi < lo {
                return Err(bad());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["user", "database", "app", "proto", "cipher", "bits", "n"];

    fn get<'a>(t: &Template, input: &'a str) -> Option<Vec<(&'static str, &'a str)>> {
        let mut caps = Captures::default();
        t.matches(input, &mut caps).then(|| {
            caps.as_slice()
                .iter()
                .map(|c| (FIELDS[usize::from(c.slot)], &input[c.range()]))
                .collect()
        })
    }

    fn t(text: &str) -> Template {
        Template::compile(text, FIELDS).unwrap()
    }

    #[test]
    fn literals_and_whole_match() {
        let tpl = t("incomplete startup packet");
        assert_eq!(get(&tpl, "incomplete startup packet"), Some(vec![]));
        assert_eq!(get(&tpl, "incomplete startup packet!"), None);
        assert_eq!(get(&tpl, "incomplete"), None);
        assert_eq!(tpl.leading_literal(), "incomplete startup packet");
    }

    #[test]
    fn shortest_first_with_optional_groups() {
        let tpl = t(
            "a: user={user} database={database}[ app={app}][ SSL (p={proto}, c={cipher}[, bits={bits:int}])]",
        );
        assert_eq!(
            get(
                &tpl,
                "a: user=x y database=d app=psql SSL (p=T, c=C, bits=256)"
            ),
            Some(vec![
                ("user", "x y"),
                ("database", "d"),
                ("app", "psql"),
                ("proto", "T"),
                ("cipher", "C"),
                ("bits", "256")
            ])
        );
        assert_eq!(
            get(&tpl, "a: user=u database=d SSL (p=T, c=C)"),
            Some(vec![
                ("user", "u"),
                ("database", "d"),
                ("proto", "T"),
                ("cipher", "C")
            ])
        );
        assert_eq!(
            get(&tpl, "a: user= database="),
            Some(vec![("user", ""), ("database", "")])
        );
    }

    #[test]
    fn typed_and_anonymous_placeholders() {
        let tpl = t("proto {n:int}.{_:int}: x[ {proto:dec} ms]");
        assert_eq!(get(&tpl, "proto 1234.5679: x"), Some(vec![("n", "1234")]));
        assert_eq!(get(&tpl, "proto 12a.1: x"), None);
        assert_eq!(
            get(&tpl, "proto 1.2: x 7.638 ms"),
            Some(vec![("n", "1"), ("proto", "7.638")])
        );
        let choice = t("db \"{database}\", {proto:SSL on|SSL off|no encryption}");
        // The choice list forces the backtracking past a forged suffix.
        assert_eq!(
            get(&choice, "db \"x\", SSL on\", no encryption"),
            Some(vec![
                ("database", "x\", SSL on"),
                ("proto", "no encryption")
            ])
        );
        let word = t("m={proto:word} ({cipher}:{n:int})");
        assert_eq!(
            get(&word, "m=scram-sha-256 (/a:b/pg_hba.conf:6)"),
            Some(vec![
                ("proto", "scram-sha-256"),
                ("cipher", "/a:b/pg_hba.conf"),
                ("n", "6")
            ])
        );
    }

    #[test]
    fn typed_placeholders_stop_inside_their_run() {
        // The stop byte is one the placeholder accepts: the shortest end
        // before it that lets the rest match wins.
        let int = t("a={n:int}5 b");
        assert_eq!(get(&int, "a=1255 b"), Some(vec![("n", "125")]));
        assert_eq!(get(&int, "a=5 b"), None);
        let word = t("k={proto:word},x");
        assert_eq!(get(&word, "k=a,b,x"), Some(vec![("proto", "a,b")]));
        let dec = t("{proto:dec}0 ms");
        assert_eq!(get(&dec, "1.50 ms"), Some(vec![("proto", "1.5")]));
        assert_eq!(get(&dec, "100 ms"), Some(vec![("proto", "10")]));
        // A stop byte the placeholder never accepts: only the run's end.
        let port = t("p={n:int}[ x]");
        assert_eq!(get(&port, "p=5432"), Some(vec![("n", "5432")]));
        assert_eq!(get(&port, "p=5432 x"), Some(vec![("n", "5432")]));
        assert_eq!(get(&port, "p=54 32"), None);
    }

    #[test]
    fn matching_after_the_leading_literal_agrees() {
        let tpl = t("a: user={user}[ app={app}]");
        let mut caps = Captures::default();
        for input in [
            "a: user=x app=y",
            "a: user=",
            "a: user=x app=",
            "a: user=x y",
        ] {
            let plain = get(&tpl, input);
            let fast = tpl
                .matches_after_leading(input, &mut caps)
                .then(|| caps.as_slice().len());
            assert_eq!(plain.as_ref().map(Vec::len), fast, "{input}");
        }
    }

    #[test]
    fn escapes() {
        let tpl = t(r"host=\[local\] \{x\} a\\b\|");
        assert_eq!(get(&tpl, r"host=[local] {x} a\b|"), Some(vec![]));
    }

    #[test]
    fn compile_errors() {
        let err = |s: &str| Template::compile(s, FIELDS).unwrap_err().message;
        assert!(
            err("x {usr}").contains("did you mean `user`"),
            "{}",
            err("x {usr}")
        );
        assert!(err("x [y").contains("unclosed `[`"));
        assert!(err("x y]").contains("without a matching `[`"));
        assert!(err("x {user").contains("unclosed `{`"));
        assert!(err("x }").contains("without a matching `{`"));
        assert!(err("{user}{database}").contains("directly followed"));
        assert!(err("{user}[{database}]").contains("directly followed"));
        assert!(err("{user} {user}").contains("appears twice"));
        assert!(err("{n:float}").contains("unknown placeholder type"));
        assert!(err(r"\q").contains("unknown escape"));
    }

    #[test]
    fn hostile_input_falls_back_to_memo() {
        let tpl = t("a={user} b={database} c={app} d={proto} e={cipher} f={bits:int}");
        let mut s = String::from("a=");
        for _ in 0..300 {
            s.push_str(" b= c= d= e=");
        }
        // No `f=`: the plain search would be exponential.
        let mut caps = Captures::default();
        assert!(!tpl.matches(&s, &mut caps));
        s.push_str(" f=1");
        assert!(tpl.matches(&s, &mut caps));
        assert_eq!(caps.as_slice()[0].start, 2u32);
    }

    #[test]
    fn versions() {
        for ok in ["9.6-18", "14-18", "18", "10, 13-18", "14-"] {
            assert_eq!(check_versions(ok), Ok(()), "{ok}");
        }
        for bad in ["", "x", "18-14", "9.6–18"] {
            assert!(check_versions(bad).is_err(), "{bad}");
        }
    }
}
