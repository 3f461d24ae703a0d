//! Streaming log input for `suggest-acl` and `replay`: files, `-` or nothing
//! for stdin, `.gz` (recognised by its magic bytes), read line by line into
//! one reused buffer, so memory does not grow with the log. A progress bar
//! is drawn only when stderr is a terminal.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Read};
use std::path::{Path, PathBuf};

use crate::tools::progress::Progress;
use flate2::read::MultiGzDecoder;

use crate::core::log_read::{read_decision, LogEntry, LoggedDecision};
use crate::tools::ToolError;

/// Lines seen, by kind; foreign and malformed lines are skipped, never fatal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineCounts {
    pub decisions: u64,
    pub foreign: u64,
    pub malformed: u64,
}

impl fmt::Display for LineCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} decisions read; skipped {} other lines and {} malformed decision lines",
            self.decisions, self.foreign, self.malformed
        )
    }
}

/// `1 request`, `2 requests`.
pub fn requests(n: u64) -> String {
    format!("{n} request{}", if n == 1 { "" } else { "s" })
}

/// Read buffer: large reads keep the per-line cost down.
const READ_BUFFER: usize = 256 * 1024;

/// Call `each` for every decision line of `inputs` (stdin when empty).
pub fn for_each_decision(
    inputs: &[PathBuf],
    mut each: impl FnMut(&LoggedDecision<'_>),
) -> Result<LineCounts, ToolError> {
    let mut counts = LineCounts::default();
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let bar = progress(inputs);
    for path in inputs {
        let err = |problem: io::Error| ToolError::Log {
            path: path.display().to_string(),
            problem: problem.to_string(),
        };
        let raw: Box<dyn Read + '_> = if path == Path::new("-") {
            Box::new(bar.wrap_read(io::stdin().lock()))
        } else {
            Box::new(bar.wrap_read(File::open(path).map_err(err)?))
        };
        let mut reader = BufReader::with_capacity(READ_BUFFER, raw);
        let gzip = reader.fill_buf().map_err(err)?.starts_with(&[0x1f, 0x8b]);
        if gzip {
            let decoded = MultiGzDecoder::new(reader);
            read_lines(
                &mut BufReader::with_capacity(READ_BUFFER, decoded),
                &mut counts,
                &mut each,
            )
            .map_err(err)?;
        } else {
            read_lines(&mut reader, &mut counts, &mut each).map_err(err)?;
        }
    }
    bar.finish_and_clear();
    Ok(counts)
}

fn read_lines(
    reader: &mut impl BufRead,
    counts: &mut LineCounts,
    each: &mut impl FnMut(&LoggedDecision<'_>),
) -> io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let entry = match std::str::from_utf8(text) {
            Ok(text) => read_decision(text),
            Err(_) => LogEntry::Malformed,
        };
        match entry {
            LogEntry::Decision(d) => {
                counts.decisions += 1;
                each(&d);
            }
            LogEntry::Foreign => counts.foreign += 1,
            LogEntry::Malformed => counts.malformed += 1,
        }
    }
}

/// A byte-count line over the input files' total size, or a hidden one
/// when stderr is not a terminal (piped, CI); without a total for stdin.
fn progress(inputs: &[PathBuf]) -> Progress {
    if !io::stderr().is_terminal() {
        return Progress::hidden();
    }
    let total: Option<u64> = inputs
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .sum();
    Progress::on_stderr(total)
}
