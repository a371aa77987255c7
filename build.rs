//! Generates the gRPC messages, client and server of
//! `proto/config_drift/v1/runtime_config.proto` (§4) with protox, a pure-Rust
//! protobuf compiler: the build needs cargo alone, never `protoc`.

const PROTO: &str = "proto/config_drift/v1/runtime_config.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Only the proto drives the generated code: without this line cargo would rerun
    // the script whenever any file of the package changes.
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"])?;
    // The server half is for bots written in Rust (the tests' bots among them);
    // the agent itself only calls.
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
