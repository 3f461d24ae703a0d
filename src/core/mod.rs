//! The pure, I/O-free decision core.
//!
//! Everything here is deterministic: the same inputs give the same outputs.
//! Time (`now`), request ids and DNS answers are arguments. The `clippy.toml`
//! at the crate root disallows clocks, environment, files and sockets, and
//! only `shell` and `config` opt out, so a stray `Instant::now()` here fails lint.

pub mod acl;
pub mod addr;
pub mod auth;
pub mod decision;
pub mod dns;
pub mod forward;
pub mod framing;
pub mod head;
pub mod limits;
pub mod log_read;
pub mod lookup;
pub mod mitm;
pub mod proxy_protocol;
pub mod record;
pub mod reply;
pub mod suggest;
pub mod target;
pub mod time;
pub mod upstream;

/// The ACL used when no `--egress-acl-file` is given: the Fly.io example's.
pub const DEFAULT_ACL_YAML: &str = include_str!("../default-acl.yaml");
