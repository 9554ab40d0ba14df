//! Serving the simulator on a socket (the local installation, kubectl tests): the serve
//! loop over an already-bound listener, the ready file, and a kubeconfig pointing at the
//! server.

use std::io;
use std::path::Path;

use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// for in-flight requests (end open watches first, e.g. with [`crate::Sim::shutdown`]).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A kubeconfig (YAML) with one context, `outpost-sim`, for the server at `url`
/// (e.g. `http://127.0.0.1:8443`), default namespace `default`, no credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: outpost-sim
  cluster:
    server: {url}
contexts:
- name: outpost-sim
  context:
    cluster: outpost-sim
    user: outpost-sim
    namespace: default
current-context: outpost-sim
users:
- name: outpost-sim
  user: {{}}
"
    )
}

/// Writes `contents` to `path` atomically (temporary file, then rename), so a reader
/// polling for the file never sees it half-written.
pub fn write_ready_file(path: &Path, contents: &str) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
