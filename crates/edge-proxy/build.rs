//! Compiles the gRPC contract (`proto/strata/registry/v1/registry.proto` at the workspace root)
//! into a client: the edge only calls the registry. `protox` parses the proto in pure Rust, so
//! building needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let proto = root.join("strata/registry/v1/registry.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&root])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        // Zip chunks go from the wire to the disk tier without a copy.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
