//! Wall-clock instants as plain values, and the two timestamp spellings the
//! canonical log lines use. The shell reads the clock; the core only formats.

use std::fmt::Write as _;

/// An instant as seconds and nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// `nanos` above 999,999,999 carry into `secs`.
    pub fn new(secs: i64, nanos: u32) -> Timestamp {
        let carry = i64::from(nanos / 1_000_000_000);
        Timestamp {
            secs: secs.saturating_add(carry),
            nanos: nanos % 1_000_000_000,
        }
    }

    pub fn secs(self) -> i64 {
        self.secs
    }

    pub fn nanos(self) -> u32 {
        self.nanos
    }

    /// Seconds from `earlier` to `self`, never negative (a clock step back reads 0).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        let whole = self.secs.saturating_sub(earlier.secs) as f64;
        let frac = (f64::from(self.nanos) - f64::from(earlier.nanos)) / 1e9;
        (whole + frac).max(0.0)
    }

    /// `2021-01-13T11:35:13Z`: logrus's default `time=` format (RFC 3339, seconds).
    pub fn rfc3339_seconds(self) -> String {
        let mut out = String::with_capacity(20);
        self.push_rfc3339_seconds(&mut out);
        out
    }

    /// [`rfc3339_seconds`](Self::rfc3339_seconds), appended to `out`
    /// (digits written directly: a log line's hot path).
    pub fn push_rfc3339_seconds(self, out: &mut String) {
        self.push_civil(out, 'T');
        out.push('Z');
    }

    /// `YYYY-MM-DD<sep>hh:mm:ss`.
    fn push_civil(self, out: &mut String, sep: char) {
        let (y, mo, d, h, mi, s) = self.civil();
        if (0..=9999).contains(&y) {
            push_digits(out, y as u32, 4);
        } else {
            let _ = write!(out, "{y:04}");
        }
        out.push('-');
        push_digits(out, mo, 2);
        out.push('-');
        push_digits(out, d, 2);
        out.push(sep);
        push_digits(out, h, 2);
        out.push(':');
        push_digits(out, mi, 2);
        out.push(':');
        push_digits(out, s, 2);
    }

    /// `2021-01-13T11:35:13.865538649Z`: RFC 3339 with nanoseconds, for JSON logs.
    pub fn rfc3339_nanos(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
            self.nanos
        )
    }

    /// `2021-01-13 11:35:13.865538649 +0000 UTC`: Go's `time.Time.String()`
    /// for a UTC time, as Smokescreen logs `start_time`. Trailing zeros of the
    /// fraction are dropped, and a whole second has no fraction at all.
    pub fn go_string(self) -> String {
        let mut out = String::with_capacity(40);
        self.push_go_string(&mut out);
        out
    }

    /// [`go_string`](Self::go_string), appended to `out`.
    pub fn push_go_string(self, out: &mut String) {
        self.push_civil(out, ' ');
        if self.nanos != 0 {
            let mut nanos = self.nanos;
            let mut width = 9;
            while nanos % 10 == 0 {
                nanos /= 10;
                width -= 1;
            }
            out.push('.');
            push_digits(out, nanos, width);
        }
        out.push_str(" +0000 UTC");
    }

    /// (year, month, day) in the proleptic Gregorian calendar (UTC).
    pub fn date(self) -> (i64, u32, u32) {
        let (y, m, d, ..) = self.civil();
        (y, m, d)
    }

    /// (year, month, day, hour, minute, second) in the proleptic Gregorian calendar.
    fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (h, mi, s) = (
            (rem / 3600) as u32,
            ((rem % 3600) / 60) as u32,
            (rem % 60) as u32,
        );
        // Days to civil date: Howard Hinnant's algorithm (public domain).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let mo = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(mo <= 2);
        (y, mo, d, h, mi, s)
    }
}

/// `n` in decimal, zero-padded to `width` digits (wider if it needs more).
fn push_digits(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut n = n;
    let mut i = buf.len();
    while n > 0 || buf.len() - i < width {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_fly_page_instants() {
        // 2021-01-13 11:35:13.865538649 UTC
        let t = Timestamp::new(1_610_537_713, 865_538_649);
        assert_eq!(t.rfc3339_seconds(), "2021-01-13T11:35:13Z");
        assert_eq!(t.go_string(), "2021-01-13 11:35:13.865538649 +0000 UTC");
        assert_eq!(t.rfc3339_nanos(), "2021-01-13T11:35:13.865538649Z");
    }

    proptest::proptest! {
        /// The digit writers say what `format!` said before them.
        #[test]
        fn spellings_match_the_formatted_reference(
            secs in -100_000_000_000i64..300_000_000_000, nanos in 0u32..1_000_000_000,
        ) {
            let t = Timestamp::new(secs, nanos);
            let (y, mo, d, h, mi, s) = t.civil();
            let mut go = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            if nanos != 0 {
                let frac = format!("{nanos:09}");
                go.push('.');
                go.push_str(frac.trim_end_matches('0'));
            }
            go.push_str(" +0000 UTC");
            proptest::prop_assert_eq!(t.go_string(), go);
            proptest::prop_assert_eq!(
                t.rfc3339_seconds(),
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            );
        }
    }

    #[test]
    fn go_string_trims_fraction_like_go() {
        assert_eq!(
            Timestamp::new(0, 0).go_string(),
            "1970-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            Timestamp::new(0, 500_000_000).go_string(),
            "1970-01-01 00:00:00.5 +0000 UTC"
        );
        assert_eq!(
            Timestamp::new(-1, 0).rfc3339_seconds(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            Timestamp::new(951_782_400, 0).rfc3339_seconds(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn seconds_since_is_never_negative() {
        let a = Timestamp::new(10, 900_000_000);
        let b = Timestamp::new(11, 100_000_000);
        assert!((b.seconds_since(a) - 0.2).abs() < 1e-9);
        assert_eq!(a.seconds_since(b), 0.0);
    }

    proptest::proptest! {
        #[test]
        fn civil_date_matches_day_count(days in -1_000_000i64..1_000_000, rem in 0i64..86_400) {
            let t = Timestamp::new(days * 86_400 + rem, 0);
            let s = t.rfc3339_seconds();
            // Round-trip through a naive day count from the printed date.
            let y: i64 = s[..s.len() - 16].parse().unwrap();
            let parts: Vec<u32> = s[s.len() - 15..s.len() - 10].split('-').map(|p| p.parse().unwrap()).collect();
            let (m, d) = (i64::from(parts[0]), i64::from(parts[1]));
            let yy = if m <= 2 { y - 1 } else { y };
            let era = yy.div_euclid(400);
            let yoe = yy - era * 400;
            let mp = if m > 2 { m - 3 } else { m + 9 };
            let doy = (153 * mp + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            proptest::prop_assert_eq!(era * 146_097 + doe - 719_468, days);
        }
    }
}
