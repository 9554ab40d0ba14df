//! What every Outpost binary does the same way, in one place: how it stops on a signal, the
//! exit code for a bad command line or configuration, how it writes a file another process
//! polls for, and how an error is printed with its causes.

use std::{io::Write as _, path::Path};

/// The exit code for a bad command line or configuration (`EX_USAGE` of sysexits.h), so a
/// supervisor can tell "fix the input" from a failure worth restarting for.
pub const EXIT_USAGE: u8 = 64;

/// SIGINT and SIGTERM, the two signals that stop an Outpost process.
#[derive(Debug)]
pub struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; from now on those signals no longer kill the process but
    /// wait for [`StopSignals::recv`]. Needs a Tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM. If the handlers cannot be installed it never
/// resolves, and those signals keep their default action: they end the process.
pub async fn stop_signal() {
    match StopSignals::install() {
        Ok(mut signals) => signals.recv().await,
        Err(_) => std::future::pending().await,
    }
}

/// Writes `contents` to `path` atomically: into a new file beside it, flushed to disk, then
/// renamed over it, so a reader polling for the file never sees it half-written and a crash
/// never leaves it truncated. `private` makes it readable by its owner only (mode 0600);
/// otherwise it is 0644.
pub fn write_atomically(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    if !private {
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Displays an error with its whole `source` chain, `outer: inner: innermost`: the one way
/// Outpost prints an error, in logs and in messages.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading the state")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_is_printed_with_every_cause() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(ErrorChain(&e).to_string(), "reading the state: disk full");
    }

    #[test]
    fn a_file_is_replaced_whole_with_the_mode_asked_for() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ready.json");
        write_atomically(&path, b"{\"a\":1}", false).expect("written");
        write_atomically(&path, b"{}", true).expect("replaced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write_atomically(&path, b"{}", false).expect("replaced");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            1,
            "no temporary file left behind"
        );
    }
}
