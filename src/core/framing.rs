//! Body framing as a sans-I/O state machine: the chunked decoder the shell
//! feeds bytes into, and the canonical chunk encoding it forwards with.

use std::fmt;
use std::ops::Range;

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
    Todo,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed chunked body")
    }
}

impl std::error::Error for FramingError {}

/// Decodes `Transfer-Encoding: chunked`; extensions and trailers are read and dropped.
#[derive(Clone, Debug, Default)]
pub struct ChunkedDecoder {}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {}
    }

    /// Consume what can be consumed from `input`. Call again with the rest.
    pub fn decode(&mut self, _input: &[u8]) -> Result<Decoded, FramingError> {
        todo!("helper: chunked decoder")
    }
}

/// Append the canonical chunk header for `len` bytes (`len` must be > 0).
pub fn encode_chunk_header(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}

/// The last chunk with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
