//! Go-syntax durations (`300ms`, `1m30s`, `1.5h`), the spelling Smokescreen's
//! flags and config files use. Parsed by hand so every rule is ours and exact.

use std::fmt;
use std::time::Duration;

/// Why a duration did not parse. `Display` is the user-facing problem text;
/// the caller adds which flag or key held the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// Go allows `-` and `+`; a timeout is never negative, so we allow neither.
    Signed,
    /// A unit or `.` with no digits before or after it (`s`, `.s`).
    MissingNumber,
    /// Digits with no unit (`10`); only a bare `0` may omit it.
    MissingUnit,
    UnknownUnit(String),
    /// Above ~584 years (u64 nanoseconds).
    TooLarge,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: &str = "use ns, us, ms, s, m or h, e.g. 10s or 1m30s";
        match self {
            DurationError::Empty => write!(f, "empty duration ({UNITS})"),
            DurationError::Signed => f.write_str("a duration may not have a sign"),
            DurationError::MissingNumber => f.write_str("expected a number before each unit"),
            DurationError::MissingUnit => write!(f, "missing unit ({UNITS})"),
            DurationError::UnknownUnit(u) => write!(f, "unknown unit {u:?} ({UNITS})"),
            DurationError::TooLarge => f.write_str("duration is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Fraction digits kept per component; more cannot change a nanosecond count
/// except by rounding noise (Go is no more exact).
const MAX_FRACTION_DIGITS: u32 = 18;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 micro sign and U+03BC Greek mu, as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Parse a Go duration: one or more `<number><unit>` parts, where a number is
/// decimal digits with an optional fraction (`1.5`, `.5`, `1.`). `0` alone is
/// allowed. Fractions of a nanosecond are truncated.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with(['+', '-']) {
        return Err(DurationError::Signed);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < bytes.len() {
        let mut whole: u128 = 0;
        let whole_start = i;
        while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(d - b'0')))
                .filter(|w| *w <= u128::from(u64::MAX))
                .ok_or(DurationError::TooLarge)?;
            i += 1;
        }
        let has_whole = i > whole_start;
        let mut frac: u128 = 0;
        let mut frac_digits: u32 = 0;
        let mut has_frac = false;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                has_frac = true;
                if frac_digits < MAX_FRACTION_DIGITS {
                    frac = frac * 10 + u128::from(d - b'0');
                    frac_digits += 1;
                }
                i += 1;
            }
        }
        if !has_whole && !has_frac {
            return Err(DurationError::MissingNumber);
        }
        let unit_start = i;
        while bytes
            .get(i)
            .is_some_and(|b| !b.is_ascii_digit() && *b != b'.')
        {
            i += 1;
        }
        // Digits and '.' are ASCII, so both ends are char boundaries.
        let unit = s.get(unit_start..i).unwrap_or("");
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let per = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_string()))?;
        // whole <= u64::MAX and per < 2^42, frac < 10^18: no u128 overflow.
        let part = whole * per + frac * per / 10u128.pow(frac_digits);
        total = total.saturating_add(part);
        if total > u128::from(u64::MAX) {
            return Err(DurationError::TooLarge);
        }
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::TooLarge)
}

/// Render like Go's `Duration.String` (`0s`, `1.5ms`, `1h0m5s`), so defaults
/// print the way users type them and `parse_duration` reads them back exactly.
pub fn render_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    if n < NANOS_PER_SEC {
        let (unit, scale, width) = if n < 1_000 {
            ("ns", 1, 0)
        } else if n < 1_000_000 {
            ("\u{b5}s", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        return format!("{}{}{unit}", n / scale, fraction(n % scale, width));
    }
    let secs = n / NANOS_PER_SEC;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}{}s", fraction(n % NANOS_PER_SEC, 9)));
    out
}

/// `.5` for 500 of width 3; empty for zero.
fn fraction(value: u128, width: usize) -> String {
    if value == 0 || width == 0 {
        return String::new();
    }
    let digits = format!("{value:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_examples() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("300ms", ms(300)),
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            (".5s", ms(500)),
            ("1.s", Duration::from_secs(1)),
            ("5ns", Duration::from_nanos(5)),
            ("7us", Duration::from_micros(7)),
            ("7\u{b5}s", Duration::from_micros(7)),
            ("7\u{3bc}s", Duration::from_micros(7)),
            ("1h1h", Duration::from_secs(7200)),
            ("1.0000000000000000000001s", Duration::from_secs(1)),
            ("18446744073709551615ns", Duration::from_nanos(u64::MAX)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).as_ref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_input_with_the_reason() {
        let cases: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("10", DurationError::MissingUnit),
            ("00", DurationError::MissingUnit),
            ("1s5", DurationError::MissingUnit),
            ("s", DurationError::MissingNumber),
            (".s", DurationError::MissingNumber),
            ("-1s", DurationError::Signed),
            ("+1s", DurationError::Signed),
            ("10x", DurationError::UnknownUnit("x".into())),
            ("10 s", DurationError::UnknownUnit(" s".into())),
            ("1d", DurationError::UnknownUnit("d".into())),
            ("18446744073709551616ns", DurationError::TooLarge),
            ("6000000h", DurationError::TooLarge),
            ("99999999999999999999999h", DurationError::TooLarge),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).as_ref(), Err(want), "{text}");
        }
    }

    #[test]
    fn renders_like_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(5), "5ns"),
            (Duration::from_nanos(1_500), "1.5\u{b5}s"),
            (ms(300), "300ms"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(render_duration(*d), *want);
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(n in any::<u64>()) {
            let d = Duration::from_nanos(n);
            prop_assert_eq!(parse_duration(&render_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn never_panics_on_duration_like_text(s in "[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x|)([0-9.]{0,5}[a-z]{0,2}){0,3}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn parts_add_up(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000, milli in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{milli}ms");
            let want = Duration::from_secs(h * 3600 + m * 60 + s) + ms(milli);
            prop_assert_eq!(parse_duration(&text), Ok(want));
        }
    }
}
