//! Compiles `outpost/**/*.proto` with a vendored `protoc`, so a fresh machine needs none.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=outpost");
    println!("cargo:rerun-if-env-changed=PROTOC");
    if env::var_os("PROTOC").is_none() {
        // SAFETY-free in practice: build scripts are single-threaded at this point.
        #[expect(
            unsafe_code,
            reason = "set_var is unsafe in edition 2024; build.rs is single-threaded"
        )]
        #[expect(
            clippy::disallowed_methods,
            reason = "prost-build finds protoc through PROTOC"
        )]
        unsafe {
            env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
        }
    }
    let mut protos = Vec::new();
    for dir in ["outpost/management/v1", "outpost/agent/v1"] {
        for entry in std::fs::read_dir(dir)? {
            protos.push(entry?.path());
        }
    }
    protos.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    protos.sort();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("outpost_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from(".")])?;
    Ok(())
}
