//! Compiles the gRPC contract (`proto/strata/registry/v1/registry.proto` at the workspace root)
//! into Rust. `protox` parses the proto in pure Rust, so building needs no system `protoc`;
//! `tonic-prost-build` turns its file descriptor set into messages, a server and a client
//! (the client serves edges and the tests; the registry's gRPC front end implements the server).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest.join("../../proto");
    let proto = root.join("strata/registry/v1/registry.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // `bytes` fields as `bytes::Bytes`: zip chunks move from storage to the wire (and from
        // the wire into the upload spool) without a copy.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
