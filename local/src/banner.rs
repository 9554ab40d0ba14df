//! What the operator sees once everything is up: endpoints, the datacenter, the admin token
//! (shown once, at the first start) and commands to paste; and the same as JSON for the
//! ready file.

use std::{io::Write as _, path::Path};

use outpost_proto::management::v1::{self as pb, agent_status::State};

use crate::ceph::{Absent, Offer, PACKAGES};

/// Everything that is up, and where.
pub struct Ready<'a> {
    pub data_dir: &'a Path,
    pub api: &'a str,
    pub gateway: &'a str,
    pub metrics: &'a str,
    pub kube_url: &'a str,
    pub kubeconfig: &'a Path,
    pub token_file: &'a Path,
    /// Only at the first start.
    pub bootstrap_token: Option<&'a str>,
    pub datacenter: &'a pb::Datacenter,
    pub object_storage: &'a Offer,
}

impl Ready<'_> {
    /// The ready file: the endpoints and paths, never the token itself.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "api": self.api,
            "gateway": self.gateway,
            "metrics": self.metrics,
            "kubernetes": self.kube_url,
            "kubeconfig": self.kubeconfig,
            "admin_token_file": self.token_file,
            "datacenter": self.datacenter.name,
            "rgw_endpoint": self.object_storage.endpoint(),
            "data_dir": self.data_dir,
        })
    }

    /// The text printed to stdout.
    pub fn text(&self) -> String {
        let dc = self.datacenter;
        let agent = dc.agent.clone().unwrap_or_default();
        let state = match agent.state() {
            State::Connected => "connected",
            State::Disconnected => "disconnected",
            State::NotEnrolled => "no agent enrolled",
            State::Unspecified => "unknown",
        };
        let token = match self.bootstrap_token {
            Some(token) => format!(
                "Admin token (shown once; also saved to {}):\n  {token}",
                self.token_file.display()
            ),
            None => format!("Admin token: in {}", self.token_file.display()),
        };
        let token_file = quote(self.token_file);
        let kubeconfig = quote(self.kubeconfig);
        format!(
            "\nOutpost is running; Ctrl-C stops it. Its data, kept across restarts: {data}\n\n\
             \x20 API (gRPC, plaintext)   {api}\n\
             \x20 Agent gateway (mTLS)    {gateway}\n\
             \x20 Metrics                 http://{metrics}/metrics\n\
             \x20 Kubernetes (simulated)  {kube}, kubeconfig {kubeconfig}\n\
             \x20 Datacenter              {name} \"{display}\": {state}, agent {version}\n\
             {object_storage}\n\n\
             {token}\n\n\
             Try:\n\
             \x20 grpcurl -plaintext -H \"authorization: Bearer $(cat {token_file})\" {api} outpost.management.v1.DatacenterService/ListDatacenters\n\
             \x20 kubectl --kubeconfig {kubeconfig} get namespaces\n\n",
            data = self.data_dir.display(),
            api = self.api,
            gateway = self.gateway,
            metrics = self.metrics,
            kube = self.kube_url,
            name = dc.name,
            display = dc.display_name,
            version = agent.agent_version,
            object_storage = object_storage(self.object_storage),
        )
    }
}

/// The object storage line, and how to add it when there is none.
fn object_storage(offer: &Offer) -> String {
    const LINE: &str = "  Object storage (S3)     ";
    let (why, restart) = match offer {
        Offer::Given { endpoint } => {
            return format!("{LINE}Ceph RADOS Gateway {endpoint} (--rgw-endpoint)");
        }
        Offer::Own { endpoint, dir } => {
            return format!(
                "{LINE}Ceph RADOS Gateway {endpoint}, single-node, run by outpost-local; its data: {}",
                dir.display()
            );
        }
        Offer::Without(Absent::Disabled) => {
            ("--no-ceph".to_owned(), "start again without --no-ceph")
        }
        Offer::Without(Absent::NotInstalled(missing)) => (
            format!("Ceph is not installed: no {}", missing.join(", ")),
            "start again",
        ),
    };
    format!(
        "{LINE}none ({why}): buckets are refused.\n\
         \x20   To add it, install Debian's Ceph packages (apt-get install {PACKAGES};\n\
         \x20   in a checkout of Outpost, scripts/setup does it) and {restart}, or pass a Ceph of your\n\
         \x20   own with --rgw-endpoint, --rgw-access-key and --rgw-secret-key (and --ceph-conf for its\n\
         \x20   capacity)."
    )
}

/// Prints the banner to stdout in one write, so it is never interleaved with log lines.
pub fn print(ready: &Ready<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(ready.text().as_bytes())?;
    out.flush()
}

/// `path` quoted for a POSIX shell.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(quote(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(quote(Path::new("/it's")), r"'/it'\''s'");
    }

    #[test]
    fn the_token_is_printed_only_when_new_and_never_written_to_the_ready_file() {
        let dc = pb::Datacenter {
            name: "datacenters/local".into(),
            ..Default::default()
        };
        let mut ready = Ready {
            data_dir: Path::new("/d"),
            api: "127.0.0.1:7070",
            gateway: "127.0.0.1:7443",
            metrics: "127.0.0.1:9470",
            kube_url: "http://127.0.0.1:7643",
            kubeconfig: Path::new("/d/kubeconfig"),
            token_file: Path::new("/d/management/admin-token"),
            bootstrap_token: Some("secret-token"),
            datacenter: &dc,
            object_storage: &Offer::Without(Absent::Disabled),
        };
        assert!(ready.text().contains("secret-token"));
        assert!(!ready.json().to_string().contains("secret-token"));
        ready.bootstrap_token = None;
        assert!(!ready.text().contains("secret-token"));
        assert!(ready.text().contains("$(cat '/d/management/admin-token')"));
    }

    #[test]
    fn without_object_storage_the_banner_says_how_to_add_it() {
        let missing = Offer::Without(Absent::NotInstalled(vec!["radosgw".into()]));
        let text = object_storage(&missing);
        assert!(
            text.contains("none (Ceph is not installed: no radosgw)"),
            "{text}"
        );
        assert!(
            text.contains(PACKAGES) && text.contains("--rgw-endpoint"),
            "{text}"
        );
        let own = Offer::Own {
            endpoint: "http://127.0.0.1:7480/".into(),
            dir: "/d/ceph".into(),
        };
        assert!(object_storage(&own).contains("http://127.0.0.1:7480/"));
    }
}
