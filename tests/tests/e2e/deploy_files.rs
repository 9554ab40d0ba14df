//! `deploy/kubernetes/` and `deploy/systemd/` do what their READMEs say. Every overlay, and
//! the site overlay the README shows, renders with the real `kubectl kustomize` into kinds the
//! cluster serves, applies server-side to a fresh simulated cluster, and takes a site's
//! registry mirror in every container. The real `outpost-management` starts from what a pod
//! would get (the ConfigMap's file and the pod's environment, with temp dirs standing in for
//! the mounts), on PostgreSQL for the shared-database model, and its probes leave no warning.
//! The systemd units pass `systemd-analyze verify` and keep their hardening score.

use std::{
    collections::BTreeMap,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use outpost_e2e::{
    Management, agent_variables, bin, cluster, kubectl, kubernetes::typed_objects, wait_for,
};
use serde_json::{Value, json};

const MODELS: [&str; 3] = ["air-gapped", "federated-shared-db", "federated-db-per-dc"];

/// The kinds (`apiVersion`, `kind`) these files may hold: the ones the simulated cluster has
/// always served, which a real one serves too.
const SERVED: [(&str, &str); 12] = [
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Event"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
];

/// The Secrets an overlay may read (name, key): the operator creates them as the README says,
/// since their values never belong in the repository.
const OPERATOR_SECRETS: [(&str, &str); 2] =
    [("outpost-database", "url"), ("outpost-ca-key", "ca.key")];

/// The container's probes, each a TCP connection to a named port.
const PROBES: [&str; 3] = ["startupProbe", "readinessProbe", "livenessProbe"];

/// The README's command for the sealing key, run here to make the stand-in Secret.
const KEY_COMMAND: &str = "openssl rand -base64 32";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_owned()
}

fn kubernetes() -> PathBuf {
    root().join("deploy/kubernetes")
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// === rendering ===

/// An overlay as the real kustomize in kubectl renders it: the YAML and the same objects,
/// each checked as its typed Kubernetes object.
struct Rendered {
    yaml: String,
    objects: Vec<Value>,
}

fn render(dir: &Path) -> Rendered {
    let home = tempfile::tempdir().expect("dir");
    let dir = dir.to_str().expect("UTF-8 path");
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        stderr(&out)
    );
    let yaml = String::from_utf8(out.stdout).expect("UTF-8");
    let objects = typed_objects(&yaml).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let documents = yaml.lines().filter(|l| *l == "---").count() + 1;
    assert_eq!(objects.len(), documents, "an object was lost:\n{yaml}");
    Rendered { yaml, objects }
}

/// `object`'s kind, when the cluster serves it; an error naming it otherwise.
fn served_kind(object: &Value) -> Result<&'static str, String> {
    let api = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    SERVED
        .iter()
        .find(|(a, k)| *a == api && *k == kind)
        .map(|(_, k)| *k)
        .ok_or_else(|| format!("{api} {kind} is not a kind the cluster serves"))
}

fn object_name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn only<'a>(mut found: impl Iterator<Item = &'a Value>, what: &str) -> &'a Value {
    let one = found.next().unwrap_or_else(|| panic!("no {what}"));
    assert!(found.next().is_none(), "more than one {what}");
    one
}

fn statefulset(objects: &[Value]) -> &Value {
    only(of_kind(objects, "StatefulSet"), "StatefulSet")
}

/// The management container, the pod's only one.
fn container(objects: &[Value]) -> &Value {
    only(
        array(&statefulset(objects)["spec"]["template"]["spec"]["containers"]).iter(),
        "container",
    )
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn config_map<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    only(
        of_kind(objects, "ConfigMap").filter(|c| object_name(c) == name),
        name,
    )
}

/// A `key = "value"` line of `section` in one of this repository's TOML files (flat keys and
/// string values are all they hold); `""` is the top level.
fn toml_string(toml: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in toml.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s.to_owned();
        } else if let Some((k, v)) = line.split_once('=')
            && current == section
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_owned());
        }
    }
    None
}

fn management_toml(objects: &[Value]) -> String {
    let volume = array(&statefulset(objects)["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == "config")
        .expect("the config volume");
    let map = config_map(
        objects,
        volume["configMap"]["name"].as_str().unwrap_or_default(),
    );
    map["data"]["management.toml"]
        .as_str()
        .expect("management.toml")
        .to_owned()
}

/// The port number `listen` in `section` of the TOML names.
fn listen_port(toml: &str, section: &str) -> u64 {
    let listen =
        toml_string(toml, section, "listen").unwrap_or_else(|| panic!("[{section}] listen"));
    let (_, port) = listen.rsplit_once(':').expect("host:port");
    port.parse().expect("a port number")
}

/// A README's block between `<!-- NAME:start -->` and `<!-- NAME:end -->`: its fence's text.
fn readme_block(markdown: &str, name: &str) -> String {
    let section = markdown
        .split(&format!("<!-- {name}:start -->"))
        .nth(1)
        .and_then(|s| s.split(&format!("<!-- {name}:end -->")).next())
        .unwrap_or_else(|| panic!("no {name} block"));
    let fenced: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    fenced.join("\n") + "\n"
}

/// The README's site overlay on `model`, in a temp dir beside a link to this `deploy/`.
fn site_overlay(model: &str) -> tempfile::TempDir {
    let readme = text(&kubernetes().join("README.md"));
    let dir = tempfile::tempdir().expect("dir");
    std::os::unix::fs::symlink(root().join("deploy"), dir.path().join("deploy")).expect("link");
    let site = dir.path().join("site");
    std::fs::create_dir(&site).expect("dir");
    let kustomization = readme_block(&readme, "site-kustomization");
    assert!(
        kustomization.contains("overlays/air-gapped"),
        "{kustomization}"
    );
    let kustomization = kustomization.replace("overlays/air-gapped", &format!("overlays/{model}"));
    std::fs::write(site.join("kustomization.yaml"), kustomization).expect("write");
    std::fs::write(site.join("names.env"), readme_block(&readme, "site-names")).expect("write");
    dir
}

fn every_image(objects: &[Value]) -> Vec<String> {
    let spec = &statefulset(objects)["spec"]["template"]["spec"];
    array(&spec["containers"])
        .iter()
        .chain(array(&spec["initContainers"]))
        .map(|c| c["image"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// === the Kubernetes files ===

/// Served kinds only, exactly the objects the base makes, each labelled and in `outpost`, the
/// image the release's.
fn assert_kinds_labels_and_image(model: &str, objects: &[Value]) {
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| served_kind(o).unwrap_or_else(|e| panic!("{model}: {e}")))
        .collect();
    kinds.sort_unstable();
    let expected = [
        "ConfigMap",
        "ConfigMap",
        "Namespace",
        "Service",
        "Service",
        "StatefulSet",
    ];
    assert_eq!(kinds, expected, "{model}");
    for object in objects {
        let what = format!("{model}: {}", object_name(object));
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/part-of"], "outpost",
            "{what}"
        );
        if object["kind"] != "Namespace" {
            assert_eq!(object["metadata"]["namespace"], "outpost", "{what}");
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        every_image(objects),
        [format!("outpost/management:{version}")],
        "{model}"
    );
}

/// The container's ports are the ones the configuration listens on, and the probes and
/// Services name them; each Service selects the pods.
fn assert_ports_fit(model: &str, objects: &[Value]) {
    let container = container(objects);
    let ports: BTreeMap<&str, u64> = array(&container["ports"])
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["containerPort"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let toml = management_toml(objects);
    for section in ["api", "gateway", "metrics"] {
        assert_eq!(
            ports.get(section),
            Some(&listen_port(&toml, section)),
            "{model}: {section}"
        );
    }
    for probe in PROBES {
        let port = container[probe]["tcpSocket"]["port"]
            .as_str()
            .unwrap_or_default();
        assert!(ports.contains_key(port), "{model}: {probe} on {port}");
    }
    let pod_labels = &statefulset(objects)["spec"]["template"]["metadata"]["labels"];
    for service in of_kind(objects, "Service") {
        let what = format!("{model}: {}", object_name(service));
        for port in array(&service["spec"]["ports"]) {
            let target = port["targetPort"].as_str().unwrap_or_default();
            assert!(ports.contains_key(target), "{what} targets {target}");
        }
        for (k, v) in service["spec"]["selector"].as_object().expect("a selector") {
            assert_eq!(&pod_labels[k], v, "{what}");
        }
    }
}

/// Every mount has its volume; the claim is the configured data_dir, the config volume holds
/// the `--config` file, and every path in the file is on a mount (the root file system is
/// read-only).
fn assert_mounts_fit(model: &str, objects: &[Value]) {
    let sts = statefulset(objects);
    let container = container(objects);
    let toml = management_toml(objects);
    let claims: Vec<&str> = array(&sts["spec"]["volumeClaimTemplates"])
        .iter()
        .map(object_name)
        .collect();
    let volumes = array(&sts["spec"]["template"]["spec"]["volumes"]);
    let mounts = array(&container["volumeMounts"]);
    for mount in mounts {
        let volume = mount["name"].as_str().unwrap_or_default();
        let path = mount["mountPath"].as_str().unwrap_or_default();
        assert!(
            claims.contains(&volume) || volumes.iter().any(|v| v["name"] == volume),
            "{model}: no volume {volume}"
        );
        if claims.contains(&volume) {
            assert_eq!(
                toml_string(&toml, "", "data_dir").as_deref(),
                Some(path),
                "{model}"
            );
        }
        if volume == "config" {
            let config = format!("{path}/management.toml");
            assert_eq!(container["args"], json!(["--config", config]), "{model}");
        }
    }
    for line in toml.lines() {
        if let Some((key, value)) = line.split_once(" = \"/") {
            let path = format!("/{}", value.trim_end_matches('"'));
            assert!(
                mounts
                    .iter()
                    .any(|m| m["mountPath"].as_str().is_some_and(|p| path.starts_with(p))),
                "{model}: {key} = {path} is on no mount"
            );
        }
    }
}

/// Every ConfigMap is used by the pod under its hashed name (kustomize rewrote the
/// reference), and every Secret the pod reads is one the README has the operator create.
fn assert_references_resolve(model: &str, objects: &[Value], readme: &str) {
    let pod = &statefulset(objects)["spec"]["template"];
    let pod_text = pod.to_string();
    for map in of_kind(objects, "ConfigMap") {
        let map = object_name(map);
        assert!(
            pod_text.contains(&format!("\"{map}\"")),
            "{model}: {map} unused"
        );
    }
    let secrets = array(&container(objects)["env"])
        .iter()
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
        .chain(
            array(&pod["spec"]["volumes"])
                .iter()
                .filter_map(|v| v["secret"]["secretName"].as_str()),
        );
    for secret in secrets {
        assert!(
            OPERATOR_SECRETS.iter().any(|(s, _)| *s == secret),
            "{model}: Secret {secret}"
        );
        assert!(
            readme.contains(&format!("create secret generic {secret}")),
            "the README does not say to create {secret}"
        );
    }
}

#[test]
fn every_overlay_renders_into_served_kinds_that_fit_together() {
    let readme = text(&kubernetes().join("README.md"));
    for model in MODELS {
        let objects = render(&kubernetes().join("overlays").join(model)).objects;
        assert_kinds_labels_and_image(model, &objects);
        assert_ports_fit(model, &objects);
        assert_mounts_fit(model, &objects);
        assert_references_resolve(model, &objects, &readme);
    }
    assert!(
        readme.contains(KEY_COMMAND),
        "the README makes the key with {KEY_COMMAND}"
    );
    // The kind check refuses any other.
    for kind in [
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}),
        json!({"apiVersion": "apps/v1beta1", "kind": "StatefulSet"}),
    ] {
        assert!(served_kind(&kind).is_err(), "{kind}");
    }
}

#[test]
fn every_overlay_applies_server_side_to_a_fresh_cluster() {
    for model in MODELS {
        let Rendered { yaml, objects } = render(&kubernetes().join("overlays").join(model));
        let (sim, kubeconfig) = cluster();
        let home = tempfile::tempdir().expect("dir");
        let file = home.path().join("rendered.yaml");
        std::fs::write(&file, &yaml).expect("write");
        let file = file.to_str().expect("UTF-8 path");
        // The simulator serves no OpenAPI document for kubectl's client-side validation; its
        // admission decodes every object as its kind instead, refusing what does not decode.
        kubectl(
            &kubeconfig,
            home.path(),
            &["apply", "--server-side", "--validate=false", "-f", file],
        );
        for object in &objects {
            let kind = object["kind"].as_str().unwrap_or_default();
            let mut args = vec!["get", kind, object_name(object), "-o", "json"];
            if let Some(namespace) = object["metadata"]["namespace"].as_str() {
                args.extend(["-n", namespace]);
            }
            let found: Value =
                serde_json::from_str(&kubectl(&kubeconfig, home.path(), &args)).expect("JSON");
            assert_eq!(
                found["metadata"]["name"], object["metadata"]["name"],
                "{model}"
            );
            // The cluster may add labels of its own (a namespace's name); ours are all there.
            for (key, value) in object["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flatten()
            {
                assert_eq!(
                    &found["metadata"]["labels"][key],
                    value,
                    "{model}: {}",
                    object_name(object)
                );
            }
        }
        // The cluster's StatefulSet controller takes the claim template: a volume per replica.
        let replicas = statefulset(&objects)["spec"]["replicas"]
            .as_u64()
            .expect("replicas");
        let mut claims = String::new();
        wait_for(
            &format!("{model}: a claim per replica"),
            Duration::from_secs(20),
            || {
                claims = kubectl(
                    &kubeconfig,
                    home.path(),
                    &["get", "pvc", "-n", "outpost", "-o", "name"],
                );
                (0..replicas).all(|i| claims.contains(&format!("data-outpost-management-{i}")))
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {claims}"));
        sim.stop(&[]).expect("sim stops");
    }
}

#[test]
fn the_readme_site_overlay_puts_the_mirror_in_every_container() {
    let readme = text(&kubernetes().join("README.md"));
    let site = readme_block(&readme, "site-kustomization");
    let field = |key: &str| {
        site.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("no {key} in {site}"))
    };
    let mirrored = format!("{}:{}", field("newName"), field("newTag"));
    for model in MODELS {
        let plain = render(&kubernetes().join("overlays").join(model));
        let dir = site_overlay(model);
        let Rendered { objects, .. } = render(&dir.path().join("site"));
        assert_ne!(
            every_image(&plain.objects),
            every_image(&objects),
            "{model}"
        );
        assert!(
            every_image(&objects).iter().all(|i| *i == mirrored),
            "{model}: {:?}",
            every_image(&objects)
        );
        let service = only(
            of_kind(&objects, "Service").filter(|s| object_name(s) == "outpost-management"),
            "Service",
        );
        assert_eq!(service["spec"]["type"], "LoadBalancer", "{model}");
        // The site's names replace the overlay's, in the ConfigMap the pod reads.
        let names = array(&container(&objects)["envFrom"])
            .iter()
            .find_map(|e| e["configMapRef"]["name"].as_str())
            .expect("names from a ConfigMap");
        let data = &config_map(&objects, names)["data"];
        let names_env = readme_block(&readme, "site-names");
        assert_eq!(
            data.as_object().map(|d| d.len()),
            Some(names_env.lines().count())
        );
        for (key, value) in names_env.lines().filter_map(|l| l.split_once('=')) {
            assert_eq!(data[key], value, "{model}: {key}");
        }
    }
}

/// The README's way to put one datacenter's instance in a namespace of its own (a lab with
/// several in one cluster) moves every object, the Namespace included.
#[test]
fn the_readme_site_overlay_moves_to_a_namespace_of_its_own() {
    let dir = site_overlay("federated-db-per-dc");
    let kustomization = dir.path().join("site/kustomization.yaml");
    let lab = format!("{}namespace: outpost-fra1\n", text(&kustomization));
    std::fs::write(&kustomization, lab).expect("write");
    let Rendered { objects, .. } = render(&dir.path().join("site"));
    for object in &objects {
        let namespace = match object["kind"].as_str() {
            Some("Namespace") => &object["metadata"]["name"],
            _ => &object["metadata"]["namespace"],
        };
        assert_eq!(namespace, "outpost-fra1", "{}", object_name(object));
    }
}

// === the management service, configured as a pod would be ===

/// The value of Secret `name`'s `key` for these tests: a fresh database on the test
/// PostgreSQL, or a sealing key made with the README's command.
fn stand_in_secret(name: &str, key: &str) -> String {
    match (name, key) {
        ("outpost-database", "url") => tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(outpost_store::testing::fresh_postgres_url()),
        ("outpost-ca-key", "ca.key") => {
            let out = Command::new("bash")
                .args(["-c", KEY_COMMAND])
                .output()
                .expect("openssl");
            assert!(out.status.success(), "{KEY_COMMAND}: {}", stderr(&out));
            String::from_utf8(out.stdout).expect("base64")
        }
        _ => panic!("{name}/{key} is not a Secret the README has the operator create"),
    }
}

/// Where a pod's volumes are mounted (`mountPath`) and the temp dir standing in for each,
/// holding what the mount would: a ConfigMap's files, a Secret's stand-in, or nothing for an
/// `emptyDir`. The claim has none: the harness puts the data dir in each instance's own dir.
fn stand_in_mounts(objects: &[Value], dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let volumes = array(&statefulset(objects)["spec"]["template"]["spec"]["volumes"]);
    let mut mounts = Vec::new();
    for mount in array(&container(objects)["volumeMounts"]) {
        let volume_name = mount["name"].as_str().unwrap_or_default();
        let Some(volume) = volumes.iter().find(|v| v["name"] == volume_name) else {
            continue;
        };
        let local = dir.join(volume_name);
        std::fs::create_dir(&local)?;
        if let Some(map) = volume["configMap"]["name"].as_str() {
            for (file, content) in config_map(objects, map)["data"]
                .as_object()
                .into_iter()
                .flatten()
            {
                std::fs::write(local.join(file), content.as_str().unwrap_or_default())?;
            }
        } else if let Some(secret) = volume["secret"]["secretName"].as_str() {
            for (_, key) in OPERATOR_SECRETS.iter().filter(|(s, _)| *s == secret) {
                std::fs::write(local.join(key), stand_in_secret(secret, key))?;
            }
        } else if !volume["emptyDir"].is_object() {
            anyhow::bail!("volume {volume_name} is of a type this test cannot stand in for");
        }
        mounts.push((
            mount["mountPath"].as_str().unwrap_or_default().to_owned(),
            local,
        ));
    }
    Ok(mounts)
}

/// `value` with a mounted path turned into its stand-in's; `None` for an absolute path off
/// every mount, which would be on the pod's read-only root file system (and here, on this
/// machine's).
fn remap(mounts: &[(String, PathBuf)], value: &str) -> Option<String> {
    for (path, local) in mounts {
        if let Some(rest) = value.strip_prefix(path.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return Some(format!("{}{rest}", local.display()));
        }
    }
    (!value.starts_with('/')).then(|| value.to_owned())
}

/// The container's environment as the kubelet builds it: `envFrom` first, then `env`, which
/// wins; Secrets from their stand-ins, paths remapped to the mounts' stand-ins.
fn pod_env(
    objects: &[Value],
    mounts: &[(String, PathBuf)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let container = container(objects);
    let mut env = BTreeMap::new();
    for from in array(&container["envFrom"]) {
        let map = from["configMapRef"]["name"].as_str().unwrap_or_default();
        for (k, v) in config_map(objects, map)["data"]
            .as_object()
            .into_iter()
            .flatten()
        {
            env.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
    }
    for var in array(&container["env"]) {
        let value = if let Some(v) = var["value"].as_str() {
            remap(mounts, v).ok_or_else(|| anyhow::anyhow!("{v} is on no mount"))?
        } else if let Some(secret) = var["valueFrom"]["secretKeyRef"].as_object() {
            stand_in_secret(
                secret["name"].as_str().unwrap_or_default(),
                secret["key"].as_str().unwrap_or_default(),
            )
        } else {
            anyhow::bail!("{var}: a kind of variable this test cannot stand in for");
        };
        env.insert(var["name"].as_str().unwrap_or_default().to_owned(), value);
    }
    Ok(env)
}

/// Starts `outpost-management` once per replica as the pods of `objects` would run it: the
/// container's `--config` and environment, then `extra`. The instances share the Secrets'
/// stand-ins, as the pods share the Secrets.
fn start_like_the_pods(
    objects: &[Value],
    extra: &[(&str, &str)],
) -> anyhow::Result<(Vec<Management>, tempfile::TempDir)> {
    let mounts_dir = tempfile::tempdir()?;
    let mounts = stand_in_mounts(objects, mounts_dir.path())?;
    let env = pod_env(objects, &mounts)?;
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let args = array(&container(objects)["args"]);
    anyhow::ensure!(args.len() == 2 && args[0] == "--config", "args {args:?}");
    let config = remap(&mounts, args[1].as_str().unwrap_or_default())
        .ok_or_else(|| anyhow::anyhow!("--config {} is on no mount", args[1]))?;
    let replicas = statefulset(objects)["spec"]["replicas"]
        .as_u64()
        .unwrap_or(1);
    let instances = (0..replicas)
        .map(|_| Management::start_from(Path::new(&config), &env))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((instances, mounts_dir))
}

/// Starts the instances `objects` describe, makes the TCP connections of every probe, and
/// stops them: each must have logged no warning or error.
fn pods_start_and_take_their_probes(objects: &[Value]) {
    let (instances, _mounts) =
        start_like_the_pods(objects, &[]).expect("the management service starts");
    let toml = management_toml(objects);
    let container = container(objects);
    let probed: Vec<&str> = PROBES
        .iter()
        .map(|p| {
            container[p]["tcpSocket"]["port"]
                .as_str()
                .expect("a TCP probe")
        })
        .collect();
    for server in instances {
        for port in &probed {
            let number = array(&container["ports"])
                .iter()
                .find(|p| p["name"] == *port)
                .and_then(|p| p["containerPort"].as_u64());
            let listener = ["api", "gateway"]
                .into_iter()
                .find(|s| Some(listen_port(&toml, s)) == number)
                .unwrap_or_else(|| panic!("probe port {port} is neither the API nor the gateway"));
            let address = if listener == "api" {
                &server.api
            } else {
                &server.gateway
            };
            drop(TcpStream::connect(address.as_str()).expect("the probed port accepts"));
        }
        // Kubelet closes before any TLS: the service notes it at DEBUG, and nothing louder.
        wait_for("every probe seen", Duration::from_secs(10), || {
            server.log().matches("TLS handshake refused").count() >= probed.len()
        })
        .unwrap_or_else(|e| panic!("{e}:\n{}", server.log()));
        server.stop(&[]).expect("a clean stop, no warning");
    }
}

#[test]
fn the_air_gapped_pod_configuration_starts_the_service() {
    pods_start_and_take_their_probes(&render(&kubernetes().join("overlays/air-gapped")).objects);
}

#[test]
fn the_database_per_datacenter_pod_configuration_starts_the_service() {
    pods_start_and_take_their_probes(
        &render(&kubernetes().join("overlays/federated-db-per-dc")).objects,
    );
}

/// Both replicas on one PostgreSQL with one sealing key (OUTPOST_TEST_POSTGRES_URL; the test
/// fails naming it when unset, as every PostgreSQL test here does).
#[test]
fn the_shared_database_pod_configuration_starts_both_replicas_on_postgres() {
    let objects = render(&kubernetes().join("overlays/federated-shared-db")).objects;
    assert_eq!(statefulset(&objects)["spec"]["replicas"], 2);
    pods_start_and_take_their_probes(&objects);
}

#[test]
fn the_readme_site_overlay_configuration_starts_the_service() {
    let dir = site_overlay("air-gapped");
    pods_start_and_take_their_probes(&render(&dir.path().join("site")).objects);
}

/// The start above would catch a bad file: an unknown key, or the names left out, stops it
/// with exit 64 naming the key.
#[test]
fn a_bad_pod_configuration_stops_the_start_naming_the_key() {
    let objects = render(&kubernetes().join("overlays/air-gapped")).objects;
    let start = |change: &dyn Fn(&mut Vec<Value>), extra: &[(&str, &str)]| {
        let mut objects = objects.clone();
        change(&mut objects);
        match start_like_the_pods(&objects, extra) {
            Ok(_) => panic!("started"),
            Err(e) => format!("{e:#}"),
        }
    };
    let unknown = start(
        &|objects| {
            let map = objects
                .iter_mut()
                .find(|o| o["data"]["management.toml"].is_string())
                .expect("the config");
            let toml = map["data"]["management.toml"].as_str().unwrap_or_default();
            map["data"]["management.toml"] =
                format!("data_dri = \"/var/lib/outpost\"\n{toml}").into();
        },
        &[],
    );
    assert!(
        unknown.contains("status: 64") && unknown.contains("data_dri"),
        "{unknown}"
    );
    // Only a non-loopback API needs TLS, and the harness listens on loopback: a documentation
    // address (RFC 5737) stands in for the pod's, one no machine here has, so a start that
    // got past the check fails to bind it instead (exit 1), which is the control.
    let off_loopback = [("OUTPOST_API__LISTEN", "192.0.2.1:7070")];
    let nameless = start(
        &|objects| {
            let sts = objects
                .iter_mut()
                .find(|o| o["kind"] == "StatefulSet")
                .expect("StatefulSet");
            sts["spec"]["template"]["spec"]["containers"][0]["envFrom"] = json!([]);
        },
        &off_loopback,
    );
    assert!(
        nameless.contains("status: 64") && nameless.contains("api.tls"),
        "{nameless}"
    );
    let named = start(&|_| {}, &off_loopback);
    assert!(
        named.contains("status: 1") && named.contains("binding the API listener"),
        "{named}"
    );
}

// === systemd ===

const UNITS: [(&str, &str); 2] = [
    ("outpost-management", "outpost-management.service"),
    ("outpost-agent", "outpost-agent.service"),
];

fn systemd() -> PathBuf {
    root().join("deploy/systemd")
}

/// `systemd-analyze verify` on `unit` (a file's text named `file`), with what it says.
fn verify(file: &str, unit: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join(file);
    std::fs::write(&path, unit).expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    // verify exits 0 on an unknown key or a bad value and only prints them: what it says
    // about this file is what fails it.
    let said: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains(file))
        .map(str::to_owned)
        .collect();
    (out.status.success() && said.is_empty(), said.join("\n"))
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    for (binary, file) in UNITS {
        let unit = text(&systemd().join(file));
        // The units name the documented install path; verify refuses a binary that is not
        // there, and this machine has it only where cargo built it. Only that path changes.
        let installed = format!("ExecStart=/usr/local/bin/{binary}");
        assert_eq!(
            unit.matches(&installed).count(),
            1,
            "{file} runs {installed}"
        );
        let built = format!("ExecStart={}", bin(binary).display());
        let (ok, said) = verify(file, &unit.replace(&installed, &built));
        assert!(ok, "{file}:\n{said}");
        // What the check is for: a typo in a setting, or the binary missing.
        let (ok, said) = verify(
            file,
            &unit
                .replace(&installed, &built)
                .replace("ProtectHome=yes", "ProtectHome=yess"),
        );
        assert!(!ok && said.contains("yess"), "{said}");
        let (ok, _) = verify(file, &unit);
        let installed_here = Path::new(&format!("/usr/local/bin/{binary}")).exists();
        assert!(!ok || installed_here, "verify passed without the binary");
    }
}

#[test]
fn the_systemd_units_keep_their_hardening() {
    // The exposure each unit scores today, times ten (systemd's scale): dropping any one of
    // its hardening settings raises it, so a weaker unit fails here until this says why.
    for (file, threshold) in [
        ("outpost-management.service", "12"),
        ("outpost-agent.service", "14"),
    ] {
        let path = systemd().join(file);
        let out = Command::new("systemd-analyze")
            .args([
                "security",
                "--offline=yes",
                &format!("--threshold={threshold}"),
            ])
            .arg(&path)
            .output()
            .expect("systemd-analyze runs");
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        let unit = text(&path);
        for line in [
            "Restart=on-failure",
            "CapabilityBoundingSet=\n",
            "After=network-online.target",
        ] {
            assert!(unit.contains(line), "{file} lacks {line}");
        }
        assert!(
            unit.contains("StateDirectory=") && unit.contains("User="),
            "{file}"
        );
    }
    let weaker =
        text(&systemd().join("outpost-management.service")).replace("NoNewPrivileges=yes\n", "");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("outpost-management.service");
    std::fs::write(&path, weaker).expect("write");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=12"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    assert!(
        !out.status.success(),
        "a unit without NoNewPrivileges= passed"
    );
}

#[test]
fn the_agent_environment_file_names_only_variables_the_agent_reads() {
    let known = agent_variables();
    let knows = |name: &str| known.iter().any(|k| k == name);
    assert!(
        knows("OUTPOST_AGENT_KUBECONFIG") && !knows("OUTPOST_AGENT_KUBECONFG"),
        "{known:?}"
    );
    let env = text(&systemd().join("outpost-agent.env"));
    let unit = text(&systemd().join("outpost-agent.service"));
    let named: Vec<&str> = env
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .chain(unit.lines().filter_map(|l| l.strip_prefix("Environment=")))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| k.starts_with("OUTPOST_"))
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for name in named {
        assert!(
            knows(name),
            "{name} is not read by outpost-agent: {known:?}"
        );
    }
}
