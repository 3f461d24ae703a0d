//! Body framing as a sans-I/O state machine: the chunked decoder the shell
//! feeds bytes into, and the canonical chunk encoding it forwards with.
//!
//! The decoder is strict for the same reason the head parser is: a proxy
//! that re-frames a body must never see a different chunk boundary than the
//! peer that produced it. Extensions and trailers are read, bounded and
//! dropped; the forwarded body is re-encoded canonically.

use std::fmt;
use std::ops::Range;

/// Longest chunk-size line (size, extensions) we read before refusing.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Largest trailer section (all trailer lines and the final CRLF).
pub const MAX_TRAILERS: usize = 16 * 1024;
/// Hex digits in a chunk size: 16 fill a `u64`.
const MAX_SIZE_DIGITS: u8 = 16;

/// One step of decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed by this step.
    pub consumed: usize,
    /// Body bytes found, as a range into the input given to this step.
    pub data: Option<Range<usize>>,
    /// The terminating chunk and trailers have been read.
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// No hex digit where a chunk size must be, or junk after it.
    InvalidChunkSize,
    /// More than 16 hex digits.
    ChunkSizeTooLarge,
    /// A control byte in a chunk extension.
    InvalidChunkExtension,
    /// Size line (with extensions) longer than [`MAX_CHUNK_LINE`].
    ChunkLineTooLong,
    /// A chunk-size line ending in bare LF, or CR not followed by LF.
    LineNotCrlf,
    /// Chunk data not followed by exactly CRLF.
    MissingDataCrlf,
    /// A trailer line that is not a valid field (or not CRLF-terminated).
    InvalidTrailer,
    /// Trailer section larger than [`MAX_TRAILERS`].
    TrailersTooLarge,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::InvalidChunkSize => "invalid chunk size",
            FramingError::ChunkSizeTooLarge => "chunk size too large",
            FramingError::InvalidChunkExtension => "invalid chunk extension",
            FramingError::ChunkLineTooLong => "chunk size line too long",
            FramingError::LineNotCrlf => "chunk size line not terminated by CRLF",
            FramingError::MissingDataCrlf => "chunk data not followed by CRLF",
            FramingError::InvalidTrailer => "invalid trailer field",
            FramingError::TrailersTooLarge => "trailer section too large",
        })
    }
}

impl std::error::Error for FramingError {}

/// Where the decoder is in the chunked grammar (RFC 9112 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size: only more whitespace or `;` may follow.
    SizeWs,
    /// Inside chunk extensions, up to CR.
    Ext,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// Start of a trailer line, or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    /// CR seen; `end` if it closes the empty line ending the message.
    TrailerLf {
        end: bool,
    },
    Done,
}

/// Decodes `Transfer-Encoding: chunked`; extensions and trailers are read and dropped.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk whose size line is being read.
    size: u64,
    /// Bytes of the current size line so far.
    line_len: usize,
    /// Bytes of the trailer section so far.
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            size: 0,
            line_len: 0,
            trailer_len: 0,
        }
    }
}

/// RFC 9110 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// VCHAR, SP, HTAB, obs-text.
fn is_text(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The final chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume what can be consumed from `input`. Call again with the rest.
    ///
    /// Each call returns at most one data range, ending at `consumed`; the
    /// caller loops until all input is consumed or a call consumes nothing
    /// (`consumed: 0, data: None, done: false` means "need more input").
    /// After `done`, nothing more is consumed: what follows belongs to the
    /// next message.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, FramingError> {
        let mut i = 0;
        loop {
            match self.state {
                State::Done => {
                    return Ok(Decoded {
                        consumed: i,
                        data: None,
                        done: true,
                    })
                }
                State::Data { remaining } => {
                    let available = input.len().saturating_sub(i);
                    if available == 0 {
                        return Ok(Decoded {
                            consumed: i,
                            data: None,
                            done: false,
                        });
                    }
                    let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(Decoded {
                        consumed: i + take,
                        data: Some(i..i + take),
                        done: false,
                    });
                }
                _ => {}
            }
            let Some(&b) = input.get(i) else {
                return Ok(Decoded {
                    consumed: i,
                    data: None,
                    done: false,
                });
            };
            i += 1;
            self.step(b)?;
        }
    }

    /// Advance over one framing byte (never called in `Data` or `Done`).
    fn step(&mut self, b: u8) -> Result<(), FramingError> {
        match self.state {
            // The bound is on the line's content; its CR does not count.
            State::Size { .. } | State::SizeWs | State::Ext if b != b'\r' => {
                self.line_len += 1;
                if self.line_len > MAX_CHUNK_LINE {
                    return Err(FramingError::ChunkLineTooLong);
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf { .. } => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILERS {
                    return Err(FramingError::TrailersTooLarge);
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (State::Size { value, digits }, _) if b.is_ascii_hexdigit() => {
                if digits >= MAX_SIZE_DIGITS {
                    return Err(FramingError::ChunkSizeTooLarge);
                }
                let d = u64::from(char::from(b).to_digit(16).unwrap_or(0));
                State::Size {
                    value: (value << 4) | d,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => return Err(FramingError::InvalidChunkSize),
            (State::Size { value, .. }, b';') => {
                self.size = value;
                State::Ext
            }
            (State::Size { value, .. }, b' ' | b'\t') => {
                self.size = value;
                State::SizeWs
            }
            (State::Size { value, .. }, b'\r') => {
                self.size = value;
                State::SizeLf
            }
            (State::Size { .. } | State::SizeWs | State::Ext, b'\n') => {
                return Err(FramingError::LineNotCrlf)
            }
            (State::Size { .. }, _) => return Err(FramingError::InvalidChunkSize),
            (State::SizeWs, b' ' | b'\t') => State::SizeWs,
            (State::SizeWs, b';') => State::Ext,
            (State::SizeWs, _) => return Err(FramingError::InvalidChunkSize),
            (State::Ext, b'\r') => State::SizeLf,
            (State::Ext, _) if is_text(b) => State::Ext,
            (State::Ext, _) => return Err(FramingError::InvalidChunkExtension),
            (State::SizeLf, b'\n') if self.size == 0 => State::TrailerStart,
            (State::SizeLf, b'\n') => State::Data {
                remaining: self.size,
            },
            (State::SizeLf, _) => return Err(FramingError::LineNotCrlf),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.line_len = 0;
                State::Size {
                    value: 0,
                    digits: 0,
                }
            }
            (State::DataCr | State::DataLf, _) => return Err(FramingError::MissingDataCrlf),
            (State::TrailerStart, b'\r') => State::TrailerLf { end: true },
            (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerValue, b'\r') => State::TrailerLf { end: false },
            (State::TrailerValue, _) if is_text(b) => State::TrailerValue,
            (State::TrailerLf { end: true }, b'\n') => State::Done,
            (State::TrailerLf { end: false }, b'\n') => State::TrailerStart,
            (
                State::TrailerStart
                | State::TrailerName
                | State::TrailerValue
                | State::TrailerLf { .. },
                _,
            ) => return Err(FramingError::InvalidTrailer),
            // `decode` handles these states itself and never steps in them.
            (State::Data { .. } | State::Done, _) => self.state,
        };
        Ok(())
    }
}

/// Counts down a `Content-Length` body as bytes arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentLength {
    remaining: u64,
}

impl ContentLength {
    pub fn new(len: u64) -> Self {
        ContentLength { remaining: len }
    }

    /// Body bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// How many of `available` arriving bytes belong to the body; the rest
    /// belong to the next message.
    pub fn take(&mut self, available: usize) -> usize {
        let take = usize::try_from(self.remaining).map_or(available, |r| r.min(available));
        self.remaining -= take as u64;
        take
    }

    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

/// Append the canonical chunk header for `len` bytes (`len` must be > 0).
pub fn encode_chunk_header(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}

/// The last chunk with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in pieces of `step` bytes, collecting the body.
    fn feed(input: &[u8], step: usize) -> Result<(Vec<u8>, bool, usize), FramingError> {
        let mut dec = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut used = 0;
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                let d = dec.decode(&pending)?;
                if let Some(r) = d.data {
                    body.extend_from_slice(&pending[r]);
                }
                pending.drain(..d.consumed);
                used += d.consumed;
                if d.done || d.consumed == 0 {
                    break;
                }
            }
        }
        Ok((body, dec.is_done(), used))
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, done, used) = feed(input, step).unwrap();
            assert_eq!(body, b"hello world", "step {step}");
            assert!(done);
            assert_eq!(used, input.len() - 4);
        }
    }

    #[test]
    fn content_length_counts_down() {
        let mut cl = ContentLength::new(5);
        assert_eq!(cl.take(3), 3);
        assert_eq!(cl.take(10), 2);
        assert!(cl.is_done());
        assert_eq!(cl.take(4), 0);
    }

    #[test]
    fn size_line_and_trailers_are_bounded() {
        let mut line = b"5;".to_vec();
        line.resize(MAX_CHUNK_LINE, b'x');
        let mut ok = line.clone();
        ok.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(
            feed(&ok, 1000).map(|(b, done, _)| (b, done)),
            Ok((b"hello".to_vec(), true))
        );
        line.push(b'x');
        assert_eq!(feed(&line, 1000), Err(FramingError::ChunkLineTooLong));

        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS {
            trailers.extend_from_slice(
                b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        trailers.extend_from_slice(b"\r\n");
        assert_eq!(feed(&trailers, 333), Err(FramingError::TrailersTooLarge));
    }

    #[test]
    fn nothing_is_consumed_after_done() {
        let mut dec = ChunkedDecoder::new();
        assert_eq!(
            dec.decode(b"0\r\n\r\nXY"),
            Ok(Decoded {
                consumed: 5,
                data: None,
                done: true
            })
        );
        assert_eq!(
            dec.decode(b"XY"),
            Ok(Decoded {
                consumed: 0,
                data: None,
                done: true
            })
        );
    }

    #[test]
    fn encoder_output_decodes() {
        let mut wire = Vec::new();
        encode_chunk_header(300, &mut wire);
        assert_eq!(wire, b"12c\r\n");
        wire.extend_from_slice(&[7u8; 300]);
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(LAST_CHUNK);
        assert_eq!(
            feed(&wire, 17).map(|(b, done, used)| (b.len(), done, used)),
            Ok((300, true, wire.len()))
        );
    }

    #[test]
    fn seventeen_digits_overflow() {
        assert_eq!(
            feed(b"00000000000000001\r\n", 100),
            Err(FramingError::ChunkSizeTooLarge)
        );
        assert!(feed(b"ffffffffffffffff\r\n", 100).is_ok());
    }
}
