//! The shell's HTTP/1 body framing: the chunked decoder and the
//! Content-Length countdown, fed the way a socket delivers bytes.
//!
//! Input layout: one byte seeding where the stream is split, then the
//! chunked stream (see `ChunkedInput`).
//!
//! Invariants:
//! - fed whole, fed in fuzzed pieces and fed byte by byte, the decoder gives
//!   the same body, the same end and the same number of bytes consumed, or
//!   the same error;
//! - nothing after the terminating chunk is consumed, and once done it stays done;
//! - re-encoding the decoded body (one chunk, or one chunk per data range
//!   the decoder returned) and decoding again gives the same body;
//! - Content-Length hands out exactly `min(length, arrived)` bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smokescreen::core::framing::{
    encode_chunk_header, ChunkedDecoder, ContentLength, FramingError, LAST_CHUNK,
};
use smokescreen_fuzz::{pieces, ChunkedInput};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    body: Vec<u8>,
    /// The data ranges as the decoder returned them, as lengths.
    ranges: Vec<usize>,
    done: bool,
    consumed: usize,
}

/// Feed `stream` in pieces of the given sizes, as the shell does: keep what
/// was not consumed and decode again when more arrives.
fn feed(stream: &[u8], sizes: &[usize]) -> Result<Outcome, FramingError> {
    let mut dec = ChunkedDecoder::new();
    let mut out = Outcome {
        body: Vec::new(),
        ranges: Vec::new(),
        done: false,
        consumed: 0,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0;
    for &size in sizes {
        pending.extend_from_slice(&stream[at..at + size]);
        at += size;
        loop {
            let d = dec.decode(&pending)?;
            assert!(d.consumed <= pending.len(), "consumed more than given");
            if let Some(r) = d.data {
                assert!(
                    r.start <= r.end && r.end == d.consumed,
                    "data range {r:?} not at the end"
                );
                assert!(!r.is_empty(), "empty data range");
                out.body.extend_from_slice(&pending[r.clone()]);
                out.ranges.push(r.len());
            }
            pending.drain(..d.consumed);
            out.consumed += d.consumed;
            if d.done {
                assert!(dec.is_done());
                out.done = true;
                break;
            }
            if d.consumed == 0 {
                break;
            }
        }
        if out.done {
            break;
        }
    }
    if out.done {
        // Done is final: nothing more is consumed.
        let again = dec
            .decode(b"0\r\n\r\n")
            .expect("done decoder accepts more input");
        assert_eq!((again.consumed, again.data, again.done), (0, None, true));
    }
    Ok(out)
}

/// `body` re-encoded with one chunk per entry of `ranges`.
fn encode(body: &[u8], ranges: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for &len in ranges {
        encode_chunk_header(len, &mut out);
        out.extend_from_slice(&body[at..at + len]);
        out.extend_from_slice(b"\r\n");
        at += len;
    }
    out.extend_from_slice(LAST_CHUNK);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = ChunkedInput::parse(data) else {
        return;
    };
    let stream = input.stream;

    let whole = feed(stream, &[stream.len()]);
    let split = feed(stream, &pieces(input.seed, stream.len()));
    let bytewise = feed(stream, &pieces(0, stream.len()));
    // Ranges may be cut differently; everything else must agree.
    let strip = |r: &Result<Outcome, FramingError>| {
        r.as_ref()
            .map(|o| (o.body.clone(), o.done, o.consumed))
            .map_err(Clone::clone)
    };
    assert_eq!(strip(&split), strip(&whole), "split feeding disagrees");
    assert_eq!(
        strip(&bytewise),
        strip(&whole),
        "byte-wise feeding disagrees"
    );

    if let Ok(out) = &whole {
        assert!(out.consumed <= stream.len());
        if out.done {
            assert!(stream[..out.consumed].ends_with(b"\r\n"));
            // Appending bytes after the end changes nothing.
            let mut longer = stream.to_vec();
            longer.extend_from_slice(b"5\r\nhello\r\n");
            let more = feed(&longer, &[longer.len()]).expect("same prefix decodes");
            assert_eq!(more, *out);

            // Canonical re-encodings decode to the same body.
            let mut ranges = vec![out.body.len()];
            ranges.retain(|&n| n > 0);
            for ranges in [ranges, out.ranges.clone()] {
                let encoded = encode(&out.body, &ranges);
                let back = feed(&encoded, &[encoded.len()]).expect("re-encoding decodes");
                assert!(back.done);
                assert_eq!(back.body, out.body);
                assert_eq!(back.consumed, encoded.len());
            }
        } else {
            // Not done: every byte was consumed (or is part of an unfinished line).
            assert!(out.consumed <= stream.len());
        }
    }

    // Content-Length over the same arrival pattern.
    let len = u64::from(input.seed) * 3;
    let mut cl = ContentLength::new(len);
    let mut taken = 0u64;
    for size in pieces(input.seed, stream.len()) {
        let before = cl.remaining();
        let t = cl.take(size);
        assert!(t <= size);
        assert_eq!(cl.remaining(), before - t as u64);
        taken += t as u64;
    }
    assert_eq!(taken, len.min(stream.len() as u64));
    assert_eq!(cl.is_done(), cl.remaining() == 0);
});
