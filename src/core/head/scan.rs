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
        let from = self.pos;
        for (i, &b) in buf.iter().enumerate().skip(from) {
            self.examined += 1;
            // A CR must be followed by LF (checked when the next byte is here).
            if self.prev == Some(b'\r') && b != b'\n' {
                return Err(HeadError::BareCr);
            }
            if i >= limits.max_head_bytes {
                return Err(HeadError::HeadTooLarge);
            }
            match b {
                0 => return Err(HeadError::Nul),
                b'\n' => {
                    if self.prev != Some(b'\r') {
                        return Err(HeadError::BareLf);
                    }
                    if let Some(scan) = self.line_ended(buf, i, limits)? {
                        return Ok(Some(scan));
                    }
                }
                _ => {}
            }
            self.prev = Some(b);
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
