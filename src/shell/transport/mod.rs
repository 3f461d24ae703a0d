//! Moving bytes: sockets and their readiness, cancel-safe reads and writes,
//! the buffer pool, `splice(2)`, and the CONNECT tunnel pump.

pub mod budget;
pub mod endpoint;
pub mod io;
pub mod net;
pub mod pool;
pub mod splice;
pub mod tunnel;
