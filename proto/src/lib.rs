//! vov's gRPC contract, package `vov.v1` (see `vov/v1/trainer.proto`, where every RPC
//! and field is documented). Generated code lives under [`pb`]; [`convert`] is the
//! one place where the typed trial of `vov-spec` meets its messages. This crate and
//! `vov-spec` are the only code the daemon and the client share.

pub mod convert;
pub mod taskdir;

/// Generated messages, the `Trainer` client and the `Trainer` server.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("vov.v1");
}

/// The encoded file descriptor set of `vov.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vov_v1_descriptor.bin"));

/// The fully qualified service name, for health checks.
pub const TRAINER_SERVICE: &str = "vov.v1.Trainer";
