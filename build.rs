//! Compiles the Open Inference Protocol's gRPC service (proto/open_inference_grpc.proto) with
//! protox, a protobuf compiler in Rust: no protoc on the machine, nothing downloaded.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/open_inference_grpc.proto";
    println!("cargo:rerun-if-changed={proto}");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files([proto])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Server reflection answers from this descriptor set.
    std::fs::write(
        out.join("open_inference_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        // The client is for the tests and the load generator in examples/.
        .build_client(true)
        .bytes(".inference")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
