//! Why a dial failed, in Smokescreen's words: the `type` tag of its
//! `cn.atpt.connect.err` metric (statsd and Prometheus alike).

use std::io;

/// The cause of a failed connection attempt to a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    Timeout,
    Refused,
    Reset,
    Aborted,
    Unknown,
}

impl ConnectFailure {
    /// Every cause, so each labelled counter exists (at 0) from the start.
    pub const ALL: [ConnectFailure; 5] = [
        ConnectFailure::Timeout,
        ConnectFailure::Refused,
        ConnectFailure::Reset,
        ConnectFailure::Aborted,
        ConnectFailure::Unknown,
    ];

    /// Classify a dial error the way Smokescreen's `ReportConnError` does.
    pub fn of(err: &io::Error) -> ConnectFailure {
        match err.kind() {
            io::ErrorKind::TimedOut => ConnectFailure::Timeout,
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::ConnectionReset => ConnectFailure::Reset,
            io::ErrorKind::ConnectionAborted => ConnectFailure::Aborted,
            _ => ConnectFailure::Unknown,
        }
    }

    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Timeout => "timeout",
            ConnectFailure::Refused => "refused",
            ConnectFailure::Reset => "reset",
            ConnectFailure::Aborted => "aborted",
            ConnectFailure::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_smokescreens_types() {
        for (kind, want) in [
            (io::ErrorKind::TimedOut, "timeout"),
            (io::ErrorKind::ConnectionRefused, "refused"),
            (io::ErrorKind::ConnectionReset, "reset"),
            (io::ErrorKind::ConnectionAborted, "aborted"),
            (io::ErrorKind::HostUnreachable, "unknown"),
        ] {
            assert_eq!(ConnectFailure::of(&io::Error::from(kind)).as_str(), want);
        }
    }
}
