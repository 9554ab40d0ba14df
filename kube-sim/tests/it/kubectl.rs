//! The real binary and the real kubectl: ready file, kubeconfig, timed stepping, kubectl
//! get/describe/create, drain on SIGTERM, and state kept across a process restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::process::{Child, Command};

use crate::support::{apply, condition, create_namespace, deployment, wait_for};

const KUBECTL: &str = "/usr/bin/kubectl";
const WAIT: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    url: String,
}

async fn start_server(dir: &Path, run: &str) -> Server {
    let ready = dir.join(format!("ready-{run}.json"));
    let log = std::fs::File::create(dir.join(format!("sim-{run}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_outpost-kube-sim"))
        .args(["--listen", "127.0.0.1:0", "--step-ms", "20"])
        .arg("--state")
        .arg(dir.join("state.json"))
        .arg("--ready-file")
        .arg(&ready)
        .arg("--kubeconfig-out")
        .arg(dir.join("kubeconfig"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = wait_for("the ready file", WAIT, || {
        let ready = ready.clone();
        async move {
            let text = std::fs::read_to_string(&ready).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["url"].as_str().map(str::to_string)
        }
    })
    .await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Server { child, url }
}

impl Server {
    /// Sends SIGTERM and waits (bounded) for a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("server still running").to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("server drained in time")
            .unwrap();
        assert!(status.success(), "server exited with {status}");
    }
}

async fn kubectl(home: &Path, args: &[&str]) -> String {
    assert!(
        Path::new(KUBECTL).exists(),
        "{KUBECTL} is required for this test (the kubectl package)"
    );
    let out = tokio::time::timeout(
        WAIT,
        Command::new(KUBECTL)
            .env_clear()
            .env("HOME", home)
            .env("KUBECONFIG", home.join("kubeconfig"))
            .env("PATH", "/usr/bin:/bin")
            .arg("--request-timeout=10s")
            .args(args)
            .output(),
    )
    .await
    .expect("kubectl finished in time")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn client_for(kubeconfig: PathBuf) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn kubectl_reads_the_cluster_served_by_the_binary_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let server = start_server(home, "1").await;
    let client = client_for(home.join("kubeconfig")).await;
    create_namespace(&client, "shop").await;
    let deploys: Api<Deployment> = Api::namespaced(client, "shop");
    apply(&deploys, &deployment("web", "web:v1", 2)).await;
    wait_for("the deployment to become available", WAIT, || {
        let deploys = deploys.clone();
        async move {
            let d = deploys.get("web").await.ok()?;
            (condition(&d, "Progressing")?.1 == "NewReplicaSetAvailable").then_some(())
        }
    })
    .await;

    let namespaces = kubectl(home, &["get", "namespaces"]).await;
    assert!(
        namespaces.contains("shop") && namespaces.contains("default"),
        "{namespaces}"
    );
    let all = kubectl(home, &["get", "deployments", "-A"]).await;
    assert!(all.contains("shop") && all.contains("web"), "{all}");
    // Server-side printing (Table): the columns of a real cluster.
    assert!(all.contains("READY") && all.contains("2/2"), "{all}");
    let short = kubectl(home, &["get", "deploy", "-n", "shop", "-o", "name"]).await;
    assert_eq!(short.trim(), "deployment.apps/web");
    let described = kubectl(home, &["describe", "deployment", "web", "-n", "shop"]).await;
    for want in [
        "Name:",
        "web",
        "Replicas:",
        "NewReplicaSetAvailable",
        "ScalingReplicaSet",
    ] {
        assert!(
            described.contains(want),
            "describe lacks {want:?}:\n{described}"
        );
    }
    // kubectl's typed `create namespace` sends protobuf, which the simulator does not decode
    // (415); manifests go through the dynamic client as JSON.
    let manifest = home.join("extra.json");
    std::fs::write(
        &manifest,
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"extra"}}"#,
    )
    .unwrap();
    kubectl(
        home,
        &[
            "create",
            "--validate=false",
            "-f",
            manifest.to_str().unwrap(),
        ],
    )
    .await;
    let pods = kubectl(home, &["get", "pods", "-n", "shop"]).await;
    assert!(
        pods.contains("web-") && pods.contains("Running") && pods.contains("1/1"),
        "{pods}"
    );
    server.stop().await;

    let server = start_server(home, "2").await;
    assert!(server.url.starts_with("http://"));
    let all = kubectl(home, &["get", "deployments", "-A"]).await;
    assert!(all.contains("web"), "after restart: {all}");
    let namespaces = kubectl(home, &["get", "namespaces"]).await;
    assert!(namespaces.contains("extra"), "after restart: {namespaces}");
    server.stop().await;
}

#[tokio::test]
async fn help_matches_the_snapshot_and_bad_flags_exit_64() {
    let help = Command::new(env!("CARGO_BIN_EXE_outpost-kube-sim"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(help.status.success());
    let actual = String::from_utf8(help.stdout).unwrap();
    let expected = include_str!("snapshots/help.txt");
    assert_eq!(
        actual, expected,
        "--help changed; review and update tests/it/snapshots/help.txt:\n{actual}"
    );
    for bad in [
        &["--step-ms", "0"][..],
        &["--listen", "not-an-address"],
        &["--unknown"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_outpost-kube-sim"))
            .args(bad)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad:?}");
    }
}
