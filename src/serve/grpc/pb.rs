//! The code generated from `proto/open_inference_grpc.proto` by build.rs.

#![allow(missing_docs, dead_code, clippy::all, clippy::pedantic)]

tonic::include_proto!("inference");

/// The proto's descriptor set, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/open_inference_descriptor.bin"));
