//! One line of a head at a time: the request line, the status line and a
//! field line, each checked strictly (RFC 9112 §3, §4, §5), and the token and
//! field-value byte classes they use.

use super::{HeadError, Version};

/// RFC 9110 tchar.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field value bytes: VCHAR, SP, HTAB and obs-text (non-ASCII is allowed, never decoded).
fn is_field_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

pub(super) fn check_field_line(line: &[u8]) -> Result<(), HeadError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HeadError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::MissingColon)?;
    let (name, value) = line.split_at(colon);
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Err(HeadError::SpaceBeforeColon);
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::InvalidHeaderName);
    }
    if !value.iter().skip(1).all(|&b| is_field_value_byte(b)) {
        return Err(HeadError::InvalidHeaderValue);
    }
    Ok(())
}

/// `method SP request-target SP HTTP-version`, single spaces.
pub(super) fn request_line(line: &[u8]) -> Result<(&str, &str, Version), HeadError> {
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let method = parts.first().copied().unwrap_or_default();
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::InvalidMethod);
    }
    let (target, version) = match parts.as_slice() {
        [_, target, version] => (*target, *version),
        // `GET /` with no version at all is an HTTP/0.9 request.
        [_, target] if !target.is_empty() => return Err(HeadError::UnsupportedVersion),
        _ => return Err(HeadError::MalformedRequestLine),
    };
    if target.is_empty() {
        return Err(HeadError::MalformedRequestLine);
    }
    // Raw UTF-8 is let through (Smokescreen turns such a host into punycode);
    // `core::target` refuses it anywhere but the host, and in the host any
    // Unicode space or control character.
    if !target.iter().all(|b| b.is_ascii_graphic() || !b.is_ascii()) {
        return Err(HeadError::InvalidTargetChar);
    }
    let version = parse_version(version)?;
    // The method is ASCII (checked above), so this conversion cannot fail.
    let method = std::str::from_utf8(method).map_err(|_| HeadError::InvalidMethod)?;
    let target = std::str::from_utf8(target).map_err(|_| HeadError::InvalidTargetChar)?;
    Ok((method, target, version))
}

fn parse_version(v: &[u8]) -> Result<Version, HeadError> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        _ => Err(HeadError::UnsupportedVersion),
    }
}

/// `HTTP-version SP 3DIGIT [SP reason]`. The space before an empty reason
/// may be missing: the reason is ignored anyway, so this guess is harmless.
pub(super) fn status_line(line: &[u8]) -> Result<(Version, u16, String), HeadError> {
    let (version, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (
            line.get(..sp).unwrap_or_default(),
            line.get(sp + 1..).unwrap_or_default(),
        ),
        None => return Err(HeadError::MalformedStatusLine),
    };
    if !version.starts_with(b"HTTP/") {
        return Err(HeadError::MalformedStatusLine);
    }
    let version = parse_version(version)?;
    let (code, reason) = match rest {
        [a, b, c] => ([*a, *b, *c], &[][..]),
        [a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(HeadError::InvalidStatus),
    };
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::InvalidStatus);
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(HeadError::InvalidStatus);
    }
    if !reason.iter().all(|&b| is_field_value_byte(b)) {
        return Err(HeadError::MalformedStatusLine);
    }
    Ok((
        version,
        status,
        String::from_utf8_lossy(reason).into_owned(),
    ))
}
