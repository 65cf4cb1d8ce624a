//! Baton's shared vocabulary: task states, error codes that map to both HTTP and gRPC, and the
//! token helpers every service uses. Nothing here does I/O.

pub mod code;
pub mod internal;
pub mod names;
pub mod sealed;
pub mod status;
pub mod token;

pub use code::{Coded, ErrorCode};
pub use status::TaskStatus;

/// The version of this build, reported by nodes and runners.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
