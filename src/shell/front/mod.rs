//! The front door: what a client connection is before HTTP starts (an
//! optional PROXY protocol header, an optional TLS handshake).

pub mod proxy_header;
pub mod stream;
pub mod tls;
