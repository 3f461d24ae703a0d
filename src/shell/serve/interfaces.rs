//! The host's own addresses for the self-connection check: every address
//! of every local interface (getifaddrs, through `if-addrs`), read at start
//! and again every [`REFRESH`], so an address added later (a floating IP,
//! a new VPN link) is refused on our ports too. The core decides; this
//! module only supplies the list.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::core::record::Level;
use crate::shell::observe::logging::{self, emit};
use crate::shell::serve::state::Shared;

/// How often the interface addresses are read again.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Every address of every local interface, IPv4 and IPv6, without repeats.
pub fn enumerate() -> Result<Vec<IpAddr>, String> {
    let interfaces = if_addrs::get_if_addrs().map_err(|e| e.to_string())?;
    let mut out: Vec<IpAddr> = Vec::with_capacity(interfaces.len());
    for ip in interfaces.iter().map(if_addrs::Interface::ip) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// Read the addresses into `shared` now; on failure keep what it had and
/// log why (a shorter list would weaken the check).
pub fn update(shared: &Shared) {
    match enumerate() {
        Ok(list) => shared.set_local_addresses(list),
        Err(e) => emit(
            &logging::line(Level::Warning, "could not list local interface addresses")
                .with("error", e),
        ),
    }
}

/// Keep `shared`'s list current for the life of the process.
pub async fn keep_current(shared: Arc<Shared>) {
    loop {
        crate::shell::runtime::sleep(REFRESH).await;
        update(&shared);
    }
}
