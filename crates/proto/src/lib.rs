//! Generated protobuf messages and gRPC stubs for Baton's internal (`Tasks`) and runner (`Runner`)
//! protocols. Nothing but generated code lives here; the sources are in `proto/baton/v1/`.

/// Version 1 of the protocols.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("baton.v1");
}

/// The runner protocol version this build speaks. Minor additions keep the same number: both sides
/// ignore fields they do not know. A runner and a server agree on the lower of their two versions.
pub const RUNNER_PROTOCOL_VERSION: u32 = 1;

/// The encoded `FileDescriptorSet` of every Baton protocol, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/baton_descriptor.bin"));
