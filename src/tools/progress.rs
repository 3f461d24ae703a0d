//! The progress line `suggest-acl` and `replay` draw on a terminal while
//! they read logs: bytes read (of the inputs' total when it is known), the
//! rate and, with a total, the time left; redrawn at most five times a
//! second, cleared at the end. Plain arithmetic: indicatif drew it before,
//! and its rate estimate calls `pow`, which alone linked libm into the
//! proxy's binary (~0.3 MiB resident at rest; `docs/performance.md`,
//! change 16).

use std::cell::Cell;
use std::io::{self, Read, Write as _};
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(200);
const BAR_WIDTH: u64 = 30;

/// A progress line on stderr, or nothing (`hidden`).
pub struct Progress {
    shown: bool,
    total: Option<u64>,
    start: Instant,
    done: Cell<u64>,
    next_draw: Cell<Instant>,
    drawn: Cell<bool>,
}

impl Progress {
    /// Draws nothing (stderr is not a terminal).
    pub fn hidden() -> Progress {
        Progress::new(false, None)
    }

    /// A line on stderr over `total` bytes (`None`: unknown, as for stdin).
    pub fn on_stderr(total: Option<u64>) -> Progress {
        Progress::new(true, total)
    }

    fn new(shown: bool, total: Option<u64>) -> Progress {
        let start = Instant::now();
        Progress {
            shown,
            total,
            start,
            done: Cell::new(0),
            next_draw: Cell::new(start + REDRAW),
            drawn: Cell::new(false),
        }
    }

    /// `inner`, counting what is read from it.
    pub fn wrap_read<R: Read>(&self, inner: R) -> Counted<'_, R> {
        Counted {
            inner,
            progress: self,
        }
    }

    fn advance(&self, n: usize) {
        if !self.shown {
            return;
        }
        self.done.set(self.done.get().saturating_add(n as u64));
        let now = Instant::now();
        if now >= self.next_draw.get() {
            self.next_draw.set(now + REDRAW);
            let text = line(self.done.get(), self.total, now - self.start);
            // A closed or full stderr only loses the progress line.
            let _ = write!(io::stderr().lock(), "\r{text}\x1b[K");
            self.drawn.set(true);
        }
    }

    /// Erase the line, if one was drawn.
    pub fn finish_and_clear(&self) {
        if self.drawn.get() {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}

/// A reader whose bytes move a [`Progress`].
pub struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n);
        Ok(n)
    }
}

/// `[#######.......] 12.0 MiB/40.0 MiB 6.0 MiB/s eta 5s`, or without a
/// total `12.0 MiB 6.0 MiB/s`.
fn line(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let rate_text = format!("{}/s", bytes(rate as u64));
    match total {
        Some(total) => {
            let filled = done
                .min(total)
                .saturating_mul(BAR_WIDTH)
                .checked_div(total)
                .unwrap_or(BAR_WIDTH);
            let bar: String = (0..BAR_WIDTH)
                .map(|i| if i < filled { '#' } else { '.' })
                .collect();
            // Whole seconds, rounded up, in integers (`f64::ceil` may be a
            // libm call).
            let eta = match u128::from(done) * 1000 {
                0 => "?".to_string(),
                per => {
                    let left = u128::from(total.saturating_sub(done)) * elapsed.as_millis();
                    format!("{}s", left.div_ceil(per))
                }
            };
            format!(
                "[{bar}] {}/{} {rate_text} eta {eta}",
                bytes(done),
                bytes(total)
            )
        }
        None => format!("{} {rate_text}", bytes(done)),
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"TiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_given_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn a_line_shows_the_share_done_the_rate_and_the_time_left() {
        let mib = 1024 * 1024;
        let text = line(12 * mib, Some(40 * mib), Duration::from_secs(2));
        assert_eq!(
            text,
            "[#########.....................] 12.0 MiB/40.0 MiB 6.0 MiB/s eta 5s"
        );
        assert_eq!(
            line(12 * mib, None, Duration::from_secs(2)),
            "12.0 MiB 6.0 MiB/s"
        );
        // Nothing read yet, an empty input, more read than the sizes said.
        assert!(line(0, Some(mib), Duration::ZERO).ends_with("0 B/s eta ?"));
        assert!(
            line(0, Some(0), Duration::from_secs(1)).starts_with(&format!("[{}]", "#".repeat(30)))
        );
        assert!(line(2 * mib, Some(mib), Duration::from_secs(1)).ends_with("eta 0s"));
    }

    #[test]
    fn a_hidden_line_counts_nothing_and_draws_nothing() {
        let p = Progress::hidden();
        let mut out = Vec::new();
        p.wrap_read(&b"abc"[..])
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"abc");
        assert_eq!(p.done.get(), 0);
        assert!(!p.drawn.get());
    }
}
