//! The `baton` binary's library half: how the services are wired into one process. The command
//! line (`main.rs`) and the tests both start servers through [`server::start`].

mod bootstrap;
mod node;
mod parts;
pub mod server;
pub mod tls;
