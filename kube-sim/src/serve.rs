//! Serving the simulator on a socket (the local installation, kubectl tests): the serve
//! loop over an already-bound listener, the ready file, and a kubeconfig pointing at the
//! server.

use std::io;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::Sim;

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

/// Serves `sim` on `listener` until `stop` completes, then ends open watches and log streams,
/// gives in-flight requests at most `drain` to finish, and saves the state. The one serving
/// lifecycle of the `outpost-kube-sim` binary and the local installation.
pub async fn serve_until(
    sim: Sim,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> anyhow::Result<()> {
    let signal_sim = sim.clone();
    let graceful = async move {
        stop.await;
        tracing::info!("kube-sim shutting down; draining");
        // Ends open watches and log streams, so the drain below can complete.
        if let Err(e) = signal_sim.shutdown().await {
            tracing::error!(error = %outpost_process::ErrorChain(&e), "saving state at shutdown failed");
        }
    };
    let server = serve(listener, sim.router(), graceful);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("serving")?,
        () = async { sim.shutdown_requested().await; tokio::time::sleep(drain).await } => {
            tracing::warn!("drain deadline passed; exiting with requests in flight");
        }
    }
    sim.shutdown().await.context("saving state")?;
    Ok(())
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
