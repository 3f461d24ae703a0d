//! smokescreen: an egress proxy that refuses to reach your private network.
//!
//! The crate has two halves:
//! - [`core`]: the pure decision core. Request heads, credentials, ACL, resolved
//!   addresses and time come in as plain values; decisions, replies and log
//!   records come out. It never touches a socket, file, clock or environment
//!   variable, and builds without the `shell` feature.
//! - `shell` (feature `shell`): the async-std network shell that moves bytes
//!   and asks the core what to do.
#![forbid(unsafe_code)]

pub mod core;

#[cfg(feature = "shell")]
pub mod config;
#[cfg(feature = "shell")]
pub mod shell;
#[cfg(feature = "shell")]
pub mod tools;
