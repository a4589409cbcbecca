//! Timestamps as PostgreSQL prints them, parsed without allocation into
//! milliseconds since the Unix epoch (UTC).
//!
//! Handles `%t` (`2026-11-28 14:51:17 UTC`), `%m` (`… 14:57:21.812 UTC`),
//! numeric zones (`+03`, `-0530`, `+05:30`), the common zone abbreviations,
//! `%n` epochs (`1764341841.812`) and the ISO forms of wrappers
//! (`2026-11-28T14:51:17.123Z`).

use std::cell::Cell;

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u32)?;
    }
    Some(v)
}

/// Parses `YYYY-MM-DD?HH:MM:SS[.fff]` (separator space or `T`) and returns
/// (milliseconds as if UTC, bytes consumed).
pub fn parse_datetime_prefix(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < 19 {
        return None;
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b' ' && b[10] != b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let (millis, used) = parse_fraction(b)?;
    let days = days_from_civil(year, month, day);
    let ms =
        ((days * 24 + hour as i64) * 60 + minute as i64) * 60_000 + second as i64 * 1000 + millis;
    Some((ms, used))
}

/// The optional fraction after the 19 bytes `YYYY-MM-DD?HH:MM:SS` of `b`:
/// (milliseconds, offset just past it). Finer digits than milliseconds are
/// truncated; a `.` or `,` without digits fails.
fn parse_fraction(b: &[u8]) -> Option<(i64, usize)> {
    if !matches!(b.get(19), Some(b'.' | b',')) {
        return Some((0, 19));
    }
    let frac_start = 20;
    let mut end = frac_start;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    if end == frac_start {
        return None;
    }
    let mut millis = 0i64;
    let mut scale = 100;
    for &c in &b[frac_start..end.min(frac_start + 3)] {
        millis += (c - b'0') as i64 * scale;
        scale /= 10;
    }
    Some((millis, end))
}

/// Offset in minutes east of UTC for a zone as `log_timezone` prints it.
pub fn zone_offset_minutes(zone: &[u8]) -> Option<i64> {
    match zone {
        b"UTC" | b"GMT" | b"Z" | b"UCT" | b"Zulu" | b"Etc/UTC" | b"WET" => return Some(0),
        _ => {}
    }
    // Abbreviations PostgreSQL prints for common log_timezone settings
    // (tzdata). Zones without an abbreviation print numerically (+07).
    let fixed: Option<i64> = match zone {
        b"BST" | b"CET" | b"WEST" | b"WAT" | b"MET" => Some(60),
        b"CEST" | b"EET" | b"SAST" | b"CAT" | b"MEST" => Some(120),
        b"EEST" | b"MSK" | b"EAT" | b"IDT" => Some(180),
        b"IST" => Some(330),
        b"PKT" => Some(300),
        b"NPT" => Some(345),
        b"WIB" | b"ICT" => Some(420),
        b"AWST" | b"HKT" | b"SGT" | b"PHT" | b"WITA" => Some(480),
        b"JST" | b"KST" | b"WIT" => Some(540),
        b"ACST" => Some(570),
        b"AEST" | b"ChST" => Some(600),
        b"ACDT" => Some(630),
        b"AEDT" => Some(660),
        b"NZST" => Some(720),
        b"NZDT" => Some(780),
        b"NST" => Some(-210),
        b"NDT" => Some(-150),
        b"ADT" => Some(-180),
        b"AST" | b"EDT" => Some(-240),
        b"EST" | b"CDT" => Some(-300),
        b"CST" | b"MDT" => Some(-360),
        b"MST" | b"PDT" => Some(-420),
        b"PST" | b"AKDT" => Some(-480),
        b"AKST" | b"HDT" => Some(-540),
        b"HST" => Some(-600),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    // Numeric: +HH, -HH, +HHMM, +HH:MM
    let (sign, rest) = match zone.first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(&rest[..2])?, digits(&rest[2..])?),
        5 if rest[2] == b':' => (digits(&rest[..2])?, digits(&rest[3..])?),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h as i64 * 60 + m as i64))
}

/// Parses a `%t`/`%m` timestamp followed by a space and a zone word.
/// Returns (UTC milliseconds, bytes consumed). An unknown zone word fails.
pub fn parse_pg_timestamp(b: &[u8]) -> Option<(i64, usize)> {
    let (local_ms, used) = parse_datetime_prefix(b)?;
    if b.get(used) != Some(&b' ') {
        return None;
    }
    let zone_start = used + 1;
    let end = zone_end(b, zone_start);
    let offset = zone_offset_minutes(&b[zone_start..end])?;
    Some((local_ms - offset * 60_000, end))
}

/// Where the zone word of a `%t`/`%m` timestamp that starts at `zone_start`
/// ends: a numeric zone (`+HH`, `-HHMM`, `+HH:MM`) or letters, `/` and `_`.
fn zone_end(b: &[u8], zone_start: usize) -> usize {
    let mut end = zone_start;
    match b.get(zone_start) {
        // Numeric zone: +HH, -HHMM, +HH:MM
        Some(b'+' | b'-') => {
            end += 1;
            while end < b.len() && b[end].is_ascii_digit() && end - zone_start < 5 {
                end += 1;
            }
            if end - zone_start == 3
                && b.get(end) == Some(&b':')
                && b.get(end + 1).is_some_and(u8::is_ascii_digit)
                && b.get(end + 2).is_some_and(u8::is_ascii_digit)
            {
                end += 3;
            }
        }
        _ => {
            while end < b.len() && is_zone_letter(b[end]) {
                end += 1;
            }
        }
    }
    end
}

/// A byte of a lettered zone word (`UTC`, `Etc/UTC`, `America/Los_Angeles`).
fn is_zone_letter(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'/' || c == b'_'
}

/// Longest zone word [`TimestampCache`] remembers (`Etc/UTC`, `+05:30`).
const CACHED_ZONE: usize = 8;

/// Remembers the last `%t`/`%m` timestamp parsed, to the second: log lines
/// come in time order, so consecutive lines almost always share their
/// `YYYY-MM-DD HH:MM:SS` and zone, and then only the fraction is parsed.
/// Gives exactly what [`parse_pg_timestamp`] gives. One per thread or
/// parser: it is plain mutable state, without locking.
#[derive(Debug, Clone, Default)]
pub struct TimestampCache {
    /// The date and time to the second, as printed.
    second: [u8; 19],
    /// The zone word, as printed (`zone_len` bytes of it).
    zone: [u8; CACHED_ZONE],
    zone_len: usize,
    /// UTC milliseconds of `second` in `zone` (fraction zero).
    base_ms: i64,
    /// False until a timestamp was remembered.
    filled: bool,
}

impl TimestampCache {
    /// An empty cache (usable in `const` and `thread_local!` initialisers).
    pub const fn new() -> TimestampCache {
        TimestampCache {
            second: [0; 19],
            zone: [0; CACHED_ZONE],
            zone_len: 0,
            base_ms: 0,
            filled: false,
        }
    }

    /// [`parse_pg_timestamp`], answered from the remembered second when the
    /// first 19 bytes and the zone word are the same.
    pub fn parse_pg_timestamp(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        // Fixed-size arrays compare in place (a slice compare calls memcmp).
        if self.filled
            && b.get(..19).and_then(|s| <[u8; 19]>::try_from(s).ok()) == Some(self.second)
        {
            // The same 19 bytes passed validation before: only the fraction
            // and the zone word can differ.
            let (millis, used) = parse_fraction(b)?;
            if b.get(used) != Some(&b' ') {
                return None;
            }
            let zone_start = used + 1;
            let zone = &self.zone[..self.zone_len];
            // A lettered zone (`UTC`) followed by a byte that cannot go on
            // a zone word ends where `zone_end` would end it: no scan.
            let end = zone_start + zone.len();
            if zone.first().is_some_and(u8::is_ascii_alphabetic)
                && b.get(zone_start..end) == Some(zone)
                && !b.get(end).is_some_and(|&c| is_zone_letter(c))
            {
                return Some((self.base_ms + millis, end));
            }
            let end = zone_end(b, zone_start);
            if b[zone_start..end] == *zone {
                return Some((self.base_ms + millis, end));
            }
        }
        let (ms, used) = parse_pg_timestamp(b)?;
        let (millis, fraction_end) = parse_fraction(b)?;
        let zone = &b[fraction_end + 1..used];
        if zone.len() <= CACHED_ZONE {
            self.second.copy_from_slice(&b[..19]);
            self.zone[..zone.len()].copy_from_slice(zone);
            self.zone_len = zone.len();
            self.base_ms = ms - millis;
            self.filled = true;
        }
        Some((ms, used))
    }
}

/// Parses `%n`: `seconds.millis` since the epoch.
pub fn parse_epoch(b: &[u8]) -> Option<(i64, usize)> {
    let mut end = 0;
    while end < b.len() && b[end].is_ascii_digit() {
        end += 1;
    }
    let secs = std::str::from_utf8(&b[..end]).ok()?.parse::<i64>().ok()?;
    if b.get(end) != Some(&b'.') || b.len() < end + 4 {
        return None;
    }
    let ms = digits(&b[end + 1..end + 4])? as i64;
    Some((secs * 1000 + ms, end + 4))
}

/// Parses an ISO-8601 UTC timestamp with `Z` (`2026-11-28T14:51:17.123Z`).
pub fn parse_iso_utc(b: &[u8]) -> Option<(i64, usize)> {
    let (ms, used) = parse_datetime_prefix(b)?;
    if b.get(10) != Some(&b'T') || b.get(used) != Some(&b'Z') {
        return None;
    }
    Some((ms, used + 1))
}

/// Civil date (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 with milliseconds, UTC: `2026-11-28T14:51:17.123Z`. Written by
/// hand (no allocation besides the result): it runs once per event.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_rfc3339_ms(&mut out, ms);
    out
}

/// Appends the RFC 3339 form of `ms` to `out` (nothing for a time chrono
/// cannot show).
pub fn write_rfc3339_ms(out: &mut String, ms: i64) {
    match rfc3339_ms_bytes(ms) {
        // Only ASCII digits and separators were written.
        Some(text) => out.push_str(std::str::from_utf8(&text).unwrap_or_default()),
        None => {
            // Outside what four digits can say: let chrono write it.
            let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000) as u32);
            if let Some(dt) = chrono::DateTime::from_timestamp(secs, millis * 1_000_000) {
                out.push_str(&dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            }
        }
    }
}

/// The RFC 3339 form of `ms` as ASCII bytes (`2026-11-28T14:51:17.123Z`),
/// for writers that fill byte buffers; `None` outside years 0 to 9999
/// (where [`write_rfc3339_ms`] lets chrono write it). The text of the last
/// second written is kept per thread: the times of a log's sessions and
/// events come in order, so most share it and only the milliseconds change.
#[inline]
pub fn rfc3339_ms_bytes(ms: i64) -> Option<[u8; 24]> {
    thread_local! {
        static LAST_SECOND: Cell<Option<(i64, [u8; 24])>> = const { Cell::new(None) };
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000) as u32;
    let mut buf = match LAST_SECOND.get() {
        Some((last, text)) if last == secs => text,
        _ => {
            let text = second_text(secs)?;
            LAST_SECOND.set(Some((secs, text)));
            text
        }
    };
    buf[20] = b'0' + (millis / 100) as u8;
    buf[21] = b'0' + (millis / 10 % 10) as u8;
    buf[22] = b'0' + (millis % 10) as u8;
    Some(buf)
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` for a second since the epoch; `None` outside
/// years 0 to 9999.
fn second_text(secs: i64) -> Option<[u8; 24]> {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400) as u32;
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_t_and_m() {
        let (ms, used) = parse_pg_timestamp(b"2019-09-29 10:08:45 UTC:10.0.1.7").unwrap();
        assert_eq!(used, 23);
        assert_eq!(format_rfc3339_ms(ms), "2019-09-29T10:08:45.000Z");
        let (ms, _) = parse_pg_timestamp(b"2026-11-28 14:57:21.812 UTC [1]").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T14:57:21.812Z");
    }

    #[test]
    fn numeric_zones_shift_to_utc() {
        let (ms, used) = parse_pg_timestamp(b"2026-11-28 14:57:21.812 +03 [1]").unwrap();
        assert_eq!(used, 27);
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T11:57:21.812Z");
        let (ms, _) = parse_pg_timestamp(b"2026-11-28 14:57:21 -0530 x").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T20:27:21.000Z");
        let (ms, _) = parse_pg_timestamp(b"2026-11-28 14:57:21 CET").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T13:57:21.000Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_pg_timestamp(b"2026-13-28 14:57:21 UTC").is_none());
        assert!(parse_pg_timestamp(b"2026-11-28 14:57:21 NOWHERE").is_none());
        assert!(parse_pg_timestamp(b"* Connected to rdsauthproxy").is_none());
        assert!(parse_pg_timestamp(b"").is_none());
    }

    #[test]
    fn cache_agrees_with_the_parser() {
        let inputs: &[&[u8]] = &[
            b"2026-11-28 14:51:17 UTC:10.0.1.7",
            b"2026-11-28 14:51:17 UTC:10.0.1.7(1):x",
            b"2026-11-28 14:51:17.5 UTC [1]",
            b"2026-11-28 14:51:17.123456 UTC [1]",
            b"2026-11-28 14:51:17, UTC",
            b"2026-11-28 14:51:17. UTC",
            b"2026-11-28 14:51:17 CET",
            b"2026-11-28 14:51:17 +03 [1]",
            b"2026-11-28 14:51:17 +03:30 [1]",
            b"2026-11-28 14:51:17 -0530",
            b"2026-11-28 14:51:17 NOWHERE",
            b"2026-11-28 14:51:17 UTCX",
            b"2026-11-28 14:51:17 Etc/UTC x",
            b"2026-11-28 14:51:17 America/Los_Angeles",
            b"2026-11-28 14:51:17UTC",
            b"2026-11-28 14:51:17",
            b"2026-11-28 14:51:17 ",
            b"2026-11-28 14:51:18 UTC",
            b"2026-11-28T14:51:17 UTC",
            b"2026-13-28 14:51:17 UTC",
            b"2026-11-28 14:51:17.812 UTC",
            b"2026-11-28 14:51",
            b"",
        ];
        let mut cache = TimestampCache::new();
        // Every order of pairs: a hit after any remembered stamp.
        for first in inputs {
            for then in inputs {
                for b in [first, then, then] {
                    assert_eq!(
                        cache.parse_pg_timestamp(b),
                        parse_pg_timestamp(b),
                        "{}",
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }
    }

    #[test]
    fn epoch_and_iso() {
        let (ms, used) = parse_epoch(b"1764341841.812 [1]").unwrap();
        assert_eq!((ms, used), (1_764_341_841_812, 14));
        let (ms, used) = parse_iso_utc(b"2026-11-28T14:51:17.123Z 2026").unwrap();
        assert_eq!(used, 24);
        assert_eq!(format_rfc3339_ms(ms), "2026-11-28T14:51:17.123Z");
    }

    #[test]
    fn the_cached_second_gives_what_a_fresh_one_gives() {
        let chrono_text = |ms: i64| {
            let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
            chrono::DateTime::from_timestamp(ms.div_euclid(1000), nanos)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        let t = 1_764_341_841_000i64;
        let day = 86_400_000;
        for ms in [
            t,
            t + 999,
            t + 1,
            t - 1,
            t - 1000,
            t + day,
            t + day + 7,
            -1,
            -1000,
            0,
            -999,
            t,
        ] {
            let text = rfc3339_ms_bytes(ms).unwrap();
            assert_eq!(std::str::from_utf8(&text).unwrap(), chrono_text(ms), "{ms}");
        }
        // Out of range, then in range again.
        assert_eq!(rfc3339_ms_bytes(253_402_300_800_000), None);
        let text = rfc3339_ms_bytes(t + 5).unwrap();
        assert_eq!(std::str::from_utf8(&text).unwrap(), chrono_text(t + 5));
    }

    #[test]
    fn formatting_agrees_with_chrono() {
        for ms in [
            0i64,
            1_764_341_841_812,
            951_782_400_000,
            4_102_444_799_999,
            -1,
            253_402_300_799_999,
        ] {
            let dt = chrono::DateTime::from_timestamp(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
            .unwrap();
            assert_eq!(
                format_rfc3339_ms(ms),
                dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "{ms}"
            );
        }
        let mut ms = 0i64;
        while ms < 4_102_444_800_000 {
            let dt = chrono::DateTime::from_timestamp(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
            .unwrap();
            assert_eq!(
                format_rfc3339_ms(ms),
                dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            ms += 86_399_123;
        }
    }
}
