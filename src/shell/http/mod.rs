//! Plain-HTTP forwarding of absolute-form requests to the approved origin.

pub mod forward;
pub mod upstream_proxy;
