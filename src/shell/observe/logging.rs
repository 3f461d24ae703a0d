//! The log sink: renders core `LogLine`s in the configured format and writes
//! one line at a time to stderr (as logrus does). Also the `log` facade, so
//! messages from anywhere in the process share the format.
//!
//! A closed stderr never panics the proxy (femme does; see docs/dependencies.md).

use std::sync::OnceLock;

use crate::core::record::{Format, Level, LogLine};
use crate::core::time::Timestamp;

struct Sink {
    format: Format,
    min: Level,
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    static RENDERED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Install the sink (first call wins) and the `log` facade.
pub fn init(format: Format, filter: log::LevelFilter) {
    let min = match filter {
        log::LevelFilter::Trace | log::LevelFilter::Debug => Level::Debug,
        log::LevelFilter::Info => Level::Info,
        log::LevelFilter::Warn => Level::Warning,
        log::LevelFilter::Error | log::LevelFilter::Off => Level::Error,
    };
    if SINK.set(Sink { format, min }).is_ok() {
        // Fails only if another logger was installed first; ours is then unused.
        let _ = log::set_logger(&FACADE);
        log::set_max_level(filter);
    }
}

/// Wall-clock now (the shell owns the clock; the core only formats).
pub fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp::new(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => Timestamp::new(0, 0),
    }
}

/// Write one line if its level is enabled.
pub fn emit(line: &LogLine<'_>) {
    let (format, min) = match SINK.get() {
        Some(s) => (s.format, s.min),
        None => (Format::Text, Level::Info),
    };
    if line.level < min {
        return;
    }
    // Rendered into one reused buffer per thread (no allocation per line).
    // Whole lines only, so concurrent lines never interleave; on a worker
    // they are written once per turn of its loop. Errors (closed pipe) are
    // ignored rather than crashing the proxy.
    RENDERED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut text) => {
            text.clear();
            line.render_into(format, &mut text);
            text.push('\n');
            crate::shell::runtime::write_log(text.as_bytes());
            if text.capacity() > 64 * 1024 {
                *text = String::new();
            }
        }
        // Only if rendering itself logged (it does not): a fresh buffer.
        Err(_) => {
            let mut text = line.render(format);
            text.push('\n');
            crate::shell::runtime::write_log(text.as_bytes());
        }
    });
}

/// An operational line with no fields.
pub fn line(level: Level, msg: impl Into<std::borrow::Cow<'static, str>>) -> LogLine<'static> {
    LogLine::new(now(), level, msg)
}

struct Facade;
static FACADE: Facade = Facade;

impl log::Log for Facade {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        emit(&LogLine::new(now(), level, record.args().to_string()));
    }

    fn flush(&self) {}
}
