//! Compiles `proto/` with protox (pure Rust), so building needs no system `protoc`,
//! and writes the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files: Vec<PathBuf> = fs::read_dir("proto/roster/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let mut files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    let fds = protox::compile(&files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("roster_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // RPCs not written yet answer UNIMPLEMENTED through the default stubs.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
