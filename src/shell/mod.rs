//! The async-std network shell: it accepts connections, moves bytes and asks
//! the core what to do. No policy decision is made here.

pub mod connection;
pub mod forward;
pub mod io;
pub mod listener;
pub mod logging;
pub mod resolve;
pub mod signals;
pub mod state;
pub mod tunnel;

pub use listener::run;
