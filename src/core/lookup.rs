//! Why a name did not resolve, whichever resolver was asked, rendered once
//! in Go's words (`lookup NAME[ on SERVER]: no such host`), which is what
//! Smokescreen's logs and 502 bodies show.

use std::fmt;
use std::net::SocketAddr;

use crate::core::dns::DnsError;

/// A failed lookup of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupError {
    pub name: String,
    /// The DNS server that answered (or failed to), when one was asked directly.
    pub server: Option<SocketAddr>,
    pub cause: LookupCause,
}

/// What went wrong, in the classes a caller can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupCause {
    /// The name does not exist (NXDOMAIN, or no address records).
    NoSuchHost,
    /// The server failed (SERVFAIL, REFUSED, a temporary failure), or no
    /// server could be reached.
    ServerMisbehaving,
    /// No answer within the DNS timeout.
    Timeout,
    /// Anything else, described by the resolver.
    Other(String),
}

impl LookupError {
    pub fn new(name: &str, server: Option<SocketAddr>, cause: LookupCause) -> LookupError {
        LookupError {
            name: name.to_string(),
            server,
            cause,
        }
    }
}

impl fmt::Display for LookupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupCause::NoSuchHost => "no such host",
            LookupCause::ServerMisbehaving => "server misbehaving",
            LookupCause::Timeout => "i/o timeout",
            LookupCause::Other(text) => text,
        })
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lookup {}", self.name)?;
        if let Some(server) = self.server {
            write!(f, " on {server}")?;
        }
        write!(f, ": {}", self.cause)
    }
}

impl std::error::Error for LookupError {}

impl From<&DnsError> for LookupCause {
    /// Go's resolver reports every failing response code but NXDOMAIN as
    /// "server misbehaving".
    fn from(e: &DnsError) -> LookupCause {
        match e {
            DnsError::NoSuchHost => LookupCause::NoSuchHost,
            DnsError::ServerFailure | DnsError::Rcode(_) => LookupCause::ServerMisbehaving,
            other => LookupCause::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_gos() {
        let server: SocketAddr = "10.0.0.53:53".parse().unwrap();
        let cases = [
            (None, LookupCause::NoSuchHost, "lookup fly.io: no such host"),
            (
                Some(server),
                LookupCause::ServerMisbehaving,
                "lookup fly.io on 10.0.0.53:53: server misbehaving",
            ),
            (
                Some(server),
                LookupCause::Timeout,
                "lookup fly.io on 10.0.0.53:53: i/o timeout",
            ),
        ];
        for (server, cause, text) in cases {
            assert_eq!(LookupError::new("fly.io", server, cause).to_string(), text);
        }
        assert_eq!(
            LookupCause::from(&DnsError::Rcode("REFUSED".into())),
            LookupCause::ServerMisbehaving
        );
    }
}
