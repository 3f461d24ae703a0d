//! Helpers shared by the fuzz targets and the seed generator, so both agree
//! on how a target's raw input bytes are laid out.

/// The `acl` target's input: `role \n host \n YAML`. Lines keep role and host
/// free of newlines (neither may contain one in a real request), and the
/// YAML after them is whatever the fuzzer made of the seed document.
pub struct AclInput<'a> {
    pub role: &'a str,
    pub host: &'a str,
    pub yaml: &'a str,
}

impl<'a> AclInput<'a> {
    pub fn parse(data: &'a [u8]) -> Option<AclInput<'a>> {
        let text = std::str::from_utf8(data).ok()?;
        let (role, rest) = text.split_once('\n')?;
        let (host, yaml) = rest.split_once('\n')?;
        Some(AclInput { role, host, yaml })
    }

    pub fn encode(role: &str, host: &str, yaml: &str) -> Vec<u8> {
        format!("{role}\n{host}\n{yaml}").into_bytes()
    }
}

/// The `chunked` target's input: one byte seeding the split points, then the
/// chunked stream itself. A seed file is `[0]` followed by a spec input.
pub struct ChunkedInput<'a> {
    pub seed: u8,
    pub stream: &'a [u8],
}

impl<'a> ChunkedInput<'a> {
    pub fn parse(data: &'a [u8]) -> Option<ChunkedInput<'a>> {
        let (&seed, stream) = data.split_first()?;
        Some(ChunkedInput { seed, stream })
    }

    pub fn encode(seed: u8, stream: &[u8]) -> Vec<u8> {
        let mut out = vec![seed];
        out.extend_from_slice(stream);
        out
    }
}

/// Deterministic piece sizes covering `len` bytes, derived from `seed`: the
/// way bytes might arrive from a socket. Seed 0 means one piece per byte.
pub fn pieces(seed: u8, len: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = len;
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    while left > 0 {
        let size = if seed == 0 {
            1
        } else {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            // Mostly small pieces (where boundaries fall inside tokens), sometimes big ones.
            let r = (state >> 16) as usize;
            if r.is_multiple_of(4) {
                1 + r % 64
            } else {
                1 + r % 7
            }
        };
        let size = size.min(left);
        out.push(size);
        left -= size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_input() {
        for seed in 0..=255u8 {
            for len in [0, 1, 5, 100] {
                let p = pieces(seed, len);
                assert_eq!(p.iter().sum::<usize>(), len);
                assert!(p.iter().all(|&n| n > 0));
            }
        }
    }

    #[test]
    fn acl_input_round_trips() {
        let data = AclInput::encode("r", "h.example", "version: v1\nservices: []\n");
        let input = AclInput::parse(&data).unwrap();
        assert_eq!(
            (input.role, input.host, input.yaml),
            ("r", "h.example", "version: v1\nservices: []\n")
        );
    }
}
