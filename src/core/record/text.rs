//! How a value is spelled in logrus text: bare when every character is in
//! logrus's bare set, else quoted like Go's `strconv.Quote`; numbers,
//! addresses and instants written digit by digit (a log line's hot path).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{go_float, Value};

/// A field's text form: numbers and booleans are always bare (no quoting
/// needed, so no check), strings follow [`push_text_value`]. No copy of the
/// value is made on the way.
fn push_text_field(out: &mut String, value: &Value<'_>) {
    match value {
        Value::Str(s) => push_text_value(out, s),
        Value::Int(i) => {
            if *i < 0 {
                out.push('-');
            }
            push_u64(out, i.unsigned_abs());
        }
        Value::UInt(u) => push_u64(out, *u),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // `-Inf`, `1e-05`, `+Inf`: all bare characters, but go through the rule anyway.
        Value::Float(x) => push_text_value(out, &go_float(*x)),
        // Always has spaces: quoted, and has nothing else to escape.
        Value::Time(t) => {
            out.push('"');
            t.push_go_string(out);
            out.push('"');
        }
        Value::Ip(IpAddr::V4(ip)) => push_ipv4(out, *ip),
        // `ip:port` has a `:`, so logrus quotes it; nothing in it needs escaping.
        Value::Addr(SocketAddr::V4(a)) => {
            out.push('"');
            push_ipv4(out, *a.ip());
            out.push(':');
            push_u64(out, u64::from(a.port()));
            out.push('"');
        }
        // IPv6 spellings contain `:`, so they are quoted; rare enough to
        // go through the general path.
        Value::Ip(_) | Value::Addr(_) => push_text_value(out, &value.to_text()),
    }
}

pub(super) fn push_text_pair(out: &mut String, key: &str, value: &Value<'_>) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    push_text_field(out, value);
}

/// `n` in decimal, without going through `fmt`.
fn push_u64(out: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default());
}

fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u64(out, u64::from(*octet));
    }
}

/// The characters logrus prints bare: `A-Za-z0-9-._/@^+`.
const BARE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'/' | b'@' | b'^' | b'+');
        c += 1;
    }
    table
};

/// logrus's rule: bare if every char is in `A-Za-z0-9-._/@^+` (or empty), else Go `%q`.
pub(super) fn push_text_value(out: &mut String, value: &str) {
    // All the bare characters are ASCII, so a byte test decides.
    let bare = value.bytes().all(|c| BARE[usize::from(c)]);
    if bare {
        out.push_str(value);
    } else {
        push_go_quoted(out, value);
    }
}

/// Go's `strconv.Quote`, with a conservative notion of printable.
fn push_go_quoted(out: &mut String, value: &str) {
    out.push('"');
    // Printable ASCII other than `"` and `\\` is copied as it is: take the
    // longest such prefix in one go (most values are all of it).
    let plain = value
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b) || b == b'"' || b == b'\\')
        .unwrap_or(value.len());
    let (head, rest) = value.split_at(plain);
    out.push_str(head);
    for c in rest.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !is_printable(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Not printable: C0/C1 controls, separators other than ASCII space, and
/// format characters that reorder or hide text (bidi overrides, zero-width).
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || matches!(u, 0xA0 | 0xAD | 0x1680 | 0x180E | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x206F | 0x3000 | 0xFEFF | 0xFFF9..=0xFFFB)
        || (0xE000..=0xF8FF).contains(&u)
        || (0xF0000..).contains(&u))
}
