//! Finding the end of an HTTP/1 head, validating each line as soon as it
//! is complete, resumably: a [`HeadScanner`] given the same growing buffer
//! again examines only the bytes it has not seen, so a head trickled in one
//! byte per read costs linear work, not quadratic (`core::head` builds the
//! parsed head once the scan is complete).

use super::line::{check_field_line, request_line, status_line};
use super::{HeadError, HeadLimits};

/// Which start line a head begins with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
}

/// Where the parts of a complete, pre-validated head are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Start of the start line (after ignored leading empty lines).
    pub start: usize,
    /// Index of the CR ending the start line.
    pub start_line_end: usize,
    /// Number of field lines.
    pub fields: usize,
    /// Through the final CRLF CRLF.
    pub head_len: usize,
}

/// The scan's state between reads.
#[derive(Clone, Debug)]
pub(crate) struct HeadScanner {
    kind: Kind,
    /// Start of the start line once the leading empty lines are past.
    start: usize,
    leading_done: bool,
    /// Next byte to examine.
    pos: usize,
    line_start: usize,
    start_line_end: Option<usize>,
    fields: usize,
    prev: Option<u8>,
    examined: usize,
}

impl HeadScanner {
    pub(crate) fn new(kind: Kind) -> HeadScanner {
        HeadScanner {
            kind,
            start: 0,
            leading_done: false,
            pos: 0,
            line_start: 0,
            start_line_end: None,
            fields: 0,
            prev: None,
            examined: 0,
        }
    }

    /// Bytes examined over every call so far.
    pub(crate) fn examined(&self) -> usize {
        self.examined
    }

    /// Walk the bytes not yet seen, refusing the first violation.
    /// `Ok(None)`: no end of head yet. `buf` must extend the buffer given
    /// before (the result is then the same as scanning it whole).
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<Option<Scan>, HeadError> {
        if !self.leading_done && !self.skip_leading_empty_lines(buf, limits)? {
            return Ok(None);
        }
        let max = limits.max_head_bytes;
        let mut i = self.pos;
        while i < buf.len() {
            if self.prev == Some(b'\r') {
                // A CR must be followed by LF.
                self.examined += 1;
                if buf.get(i) != Some(&b'\n') {
                    return Err(HeadError::BareCr);
                }
                if i >= max {
                    return Err(HeadError::HeadTooLarge);
                }
                if let Some(scan) = self.line_ended(buf, i, limits)? {
                    return Ok(Some(scan));
                }
                self.prev = Some(b'\n');
                i += 1;
                continue;
            }
            // Every byte up to the next CR, LF or NUL is plain: jump there
            // (SIMD search) instead of testing each one.
            let rest = buf.get(i..).unwrap_or_default();
            let next = memchr::memchr3(b'\r', b'\n', 0, rest).map(|k| i + k);
            let stop = next.unwrap_or(buf.len());
            if stop > i {
                if max < stop {
                    // The first plain byte at or past the limit.
                    self.examined += max.max(i) - i + 1;
                    return Err(HeadError::HeadTooLarge);
                }
                self.examined += stop - i;
                self.prev = buf.get(stop - 1).copied();
            }
            let Some(j) = next else {
                break;
            };
            self.examined += 1;
            if j >= max {
                return Err(HeadError::HeadTooLarge);
            }
            match buf.get(j) {
                Some(0) => return Err(HeadError::Nul),
                // Not after a CR: that case is handled at the loop's top.
                Some(b'\n') => return Err(HeadError::BareLf),
                _ => self.prev = Some(b'\r'),
            }
            i = j + 1;
        }
        self.pos = buf.len();
        // Reached only without an end of head, e.g. after a flood of empty lines.
        if buf.len() > limits.max_head_bytes {
            return Err(HeadError::HeadTooLarge);
        }
        Ok(None)
    }

    /// RFC 9112 §2.2: a server SHOULD ignore empty lines before the request
    /// line. `false`: the bytes so far are all (or end in the start of)
    /// empty lines; wait for more.
    fn skip_leading_empty_lines(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<bool, HeadError> {
        if self.kind == Kind::Request {
            while buf.get(self.start..self.start + 2) == Some(b"\r\n") {
                self.start += 2;
                self.examined += 2;
            }
            // The skipped lines count towards the limit too: otherwise a
            // client sending only CRLFs would grow the buffer without bound
            // (found by the request_head fuzz target).
            if self.start > limits.max_head_bytes {
                return Err(HeadError::HeadTooLarge);
            }
            let rest = buf.get(self.start..).unwrap_or_default();
            if rest.is_empty() || rest == b"\r" {
                return if buf.len() > limits.max_head_bytes {
                    Err(HeadError::HeadTooLarge)
                } else {
                    Ok(false)
                };
            }
        }
        self.leading_done = true;
        self.pos = self.start;
        self.line_start = self.start;
        Ok(true)
    }

    /// The LF at `i` ended a line: validate it; `Some` at the end of head.
    fn line_ended(
        &mut self,
        buf: &[u8],
        i: usize,
        limits: &HeadLimits,
    ) -> Result<Option<Scan>, HeadError> {
        let end = i - 1;
        let line = buf.get(self.line_start..end).unwrap_or_default();
        match self.start_line_end {
            None => {
                match self.kind {
                    Kind::Request => request_line(line).map(|_| ())?,
                    Kind::Response => status_line(line).map(|_| ())?,
                }
                self.start_line_end = Some(end);
            }
            Some(start_line_end) if line.is_empty() => {
                return Ok(Some(Scan {
                    start: self.start,
                    start_line_end,
                    fields: self.fields,
                    head_len: i + 1,
                }));
            }
            Some(_) => {
                check_field_line(line)?;
                self.fields += 1;
                if self.fields > limits.max_headers {
                    return Err(HeadError::TooManyHeaders);
                }
            }
        }
        self.line_start = i + 1;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time scan this module used before the SIMD jump: the
    /// reference the property below holds the scanner to.
    fn reference(
        scanner: &mut HeadScanner,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<Option<Scan>, HeadError> {
        if !scanner.leading_done && !scanner.skip_leading_empty_lines(buf, limits)? {
            return Ok(None);
        }
        let from = scanner.pos;
        for (i, &b) in buf.iter().enumerate().skip(from) {
            scanner.examined += 1;
            if scanner.prev == Some(b'\r') && b != b'\n' {
                return Err(HeadError::BareCr);
            }
            if i >= limits.max_head_bytes {
                return Err(HeadError::HeadTooLarge);
            }
            match b {
                0 => return Err(HeadError::Nul),
                b'\n' => {
                    if scanner.prev != Some(b'\r') {
                        return Err(HeadError::BareLf);
                    }
                    if let Some(scan) = scanner.line_ended(buf, i, limits)? {
                        return Ok(Some(scan));
                    }
                }
                _ => {}
            }
            scanner.prev = Some(b);
        }
        scanner.pos = buf.len();
        if buf.len() > limits.max_head_bytes {
            return Err(HeadError::HeadTooLarge);
        }
        Ok(None)
    }

    proptest! {
        /// Same verdict, same head, same bytes examined, for any bytes cut
        /// into any reads, under any limit.
        #[test]
        fn the_jumping_scan_matches_the_bytewise_one(
            text in "(\r\n){0,2}(GET|HTTP/1\\.1|CONNECT) [ -~]{0,12}( HTTP/1\\.[01]| 200 OK)?(\r?\n?[ -~\t\x00]{0,12}){0,5}(\r\n)?\r?\n?(\r\n)?",
            cuts in prop::collection::vec(1usize..9, 1..40),
            max_head_bytes in 1usize..90,
            response in any::<bool>(),
        ) {
            let kind = if response { Kind::Response } else { Kind::Request };
            let limits = HeadLimits { max_head_bytes, ..HeadLimits::default() };
            let bytes = text.as_bytes();
            let (mut fast, mut slow) = (HeadScanner::new(kind), HeadScanner::new(kind));
            let mut end = 0;
            for step in cuts.iter().cycle() {
                end = (end + step).min(bytes.len());
                let prefix = &bytes[..end];
                let a = fast.scan(prefix, &limits);
                let b = reference(&mut slow, prefix, &limits);
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(fast.examined(), slow.examined());
                if !matches!(a, Ok(None)) || end == bytes.len() {
                    break;
                }
            }
        }
    }
}
