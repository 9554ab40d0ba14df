//! Server-side defaulting, as a real API server does on every write: a client that reads
//! back what it applied sees the defaulted fields (replicas, strategy, pod spec defaults,
//! cluster IPs), just as against a real cluster. Defaults only fill absent fields, so
//! re-applying the same object is a no-op.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::fields;
use crate::resource::Resource;
use crate::store::Store;

/// Sets `path` to `value` unless something is already there.
fn or_set(obj: &mut Value, path: &[&str], value: Value) {
    if fields::get(obj, path).is_none_or(Value::is_null) {
        fields::set(obj, path, value);
    }
}

/// `IfNotPresent` for a pinned image, `Always` for `:latest` or an untagged one.
fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match last.split_once(':') {
            Some((_, "latest")) | None => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

fn containers(spec: &mut Value, list: &str) {
    let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) else {
        return;
    };
    for c in items.iter_mut().filter(|c| c.is_object()) {
        let policy = pull_policy(fields::get_str(c, &["image"]).unwrap_or_default());
        or_set(c, &["imagePullPolicy"], policy.into());
        or_set(
            c,
            &["terminationMessagePath"],
            "/dev/termination-log".into(),
        );
        or_set(c, &["terminationMessagePolicy"], "File".into());
        or_set(c, &["resources"], json!({}));
        if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter(|p| p.is_object()) {
                or_set(p, &["protocol"], "TCP".into());
            }
        }
    }
}

/// Pod spec defaults; `restart_policy` is `None` where the field is required (Job templates).
fn pod_spec(spec: &mut Value, restart_policy: Option<&str>) {
    if !spec.is_object() {
        return;
    }
    if let Some(policy) = restart_policy {
        or_set(spec, &["restartPolicy"], policy.into());
    }
    or_set(spec, &["terminationGracePeriodSeconds"], json!(30));
    or_set(spec, &["dnsPolicy"], "ClusterFirst".into());
    or_set(spec, &["schedulerName"], "default-scheduler".into());
    or_set(spec, &["securityContext"], json!({}));
    containers(spec, "containers");
    containers(spec, "initContainers");
}

fn template_spec(obj: &mut Value, restart_policy: Option<&str>) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        pod_spec(spec, restart_policy);
    }
}

fn service(store: &mut Store, obj: &mut Value, old: Option<&Value>) {
    or_set(obj, &["spec", "type"], "ClusterIP".into());
    let external_name = fields::get_str(obj, &["spec", "type"]) == Some("ExternalName");
    // The cluster IP is immutable: an update that omits it keeps the allocated one.
    if let Some(ip) = old.and_then(|o| fields::get_str(o, &["spec", "clusterIP"])) {
        let ip = ip.to_string();
        or_set(obj, &["spec", "clusterIP"], ip.into());
    } else if !external_name
        && fields::get_str(obj, &["spec", "clusterIP"]).is_none_or(str::is_empty)
    {
        let n = store.next_seq();
        let ip = format!("10.96.{}.{}", (n / 250) % 256, n % 250 + 1);
        fields::set(obj, &["spec", "clusterIP"], ip.into());
    }
    if !external_name {
        let ip = fields::get_str(obj, &["spec", "clusterIP"])
            .unwrap_or_default()
            .to_string();
        or_set(obj, &["spec", "clusterIPs"], json!([ip]));
        or_set(obj, &["spec", "ipFamilies"], json!(["IPv4"]));
        or_set(obj, &["spec", "ipFamilyPolicy"], "SingleStack".into());
        or_set(obj, &["spec", "internalTrafficPolicy"], "Cluster".into());
    }
    or_set(obj, &["spec", "sessionAffinity"], "None".into());
    if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter(|p| p.is_object()) {
            or_set(p, &["protocol"], "TCP".into());
            if let Some(port) = p.get("port").cloned() {
                or_set(p, &["targetPort"], port);
            }
        }
    }
    or_set(obj, &["status", "loadBalancer"], json!({}));
}

/// Moves `stringData` into base64 `data`, as a real server does on write.
fn secret(obj: &mut Value) {
    or_set(obj, &["type"], "Opaque".into());
    let Some(Value::Object(string_data)) = fields::remove(obj, &["stringData"]) else {
        return;
    };
    let mut data = fields::get(obj, &["data"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    for (k, v) in string_data {
        let text = v.as_str().unwrap_or_default();
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        data.insert(k, encoded.into());
    }
    fields::set(obj, &["data"], Value::Object(data));
}

/// A Job's generated selector and template labels (when `manualSelector` is not set).
fn job_selector(obj: &mut Value) {
    if fields::get(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true) {
        return;
    }
    let uid = fields::meta(obj, "uid").to_string();
    let name = fields::meta(obj, "name").to_string();
    or_set(
        obj,
        &["spec", "selector"],
        json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": uid } }),
    );
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("job-name", &name),
    ] {
        or_set(
            obj,
            &["spec", "template", "metadata", "labels", k],
            v.clone().into(),
        );
    }
}

/// Fills defaulted fields of `obj`; `old` is the stored object on an update.
pub(crate) fn apply(store: &mut Store, resource: Resource, obj: &mut Value, old: Option<&Value>) {
    match resource {
        Resource::Namespace => {
            let name = fields::meta(obj, "name").to_string();
            or_set(
                obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                name.into(),
            );
            or_set(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            or_set(obj, &["status", "phase"], "Active".into());
        }
        Resource::Pod => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec, Some("Always"));
            }
            or_set(obj, &["status", "phase"], "Pending".into());
            or_set(obj, &["status", "qosClass"], "BestEffort".into());
        }
        Resource::Deployment => {
            or_set(obj, &["spec", "replicas"], json!(1));
            or_set(obj, &["spec", "strategy", "type"], "RollingUpdate".into());
            if fields::get_str(obj, &["spec", "strategy", "type"]) == Some("RollingUpdate") {
                or_set(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    "25%".into(),
                );
                or_set(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    "25%".into(),
                );
            }
            or_set(obj, &["spec", "revisionHistoryLimit"], json!(10));
            or_set(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            template_spec(obj, Some("Always"));
        }
        Resource::ReplicaSet => {
            or_set(obj, &["spec", "replicas"], json!(1));
            template_spec(obj, Some("Always"));
        }
        Resource::StatefulSet => {
            or_set(obj, &["spec", "replicas"], json!(1));
            or_set(obj, &["spec", "podManagementPolicy"], "OrderedReady".into());
            or_set(
                obj,
                &["spec", "updateStrategy", "type"],
                "RollingUpdate".into(),
            );
            if fields::get_str(obj, &["spec", "updateStrategy", "type"]) == Some("RollingUpdate") {
                or_set(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                    json!(0),
                );
            }
            or_set(obj, &["spec", "revisionHistoryLimit"], json!(10));
            for when in ["whenDeleted", "whenScaled"] {
                or_set(
                    obj,
                    &["spec", "persistentVolumeClaimRetentionPolicy", when],
                    "Retain".into(),
                );
            }
            template_spec(obj, Some("Always"));
        }
        Resource::Job => {
            or_set(obj, &["spec", "parallelism"], json!(1));
            or_set(obj, &["spec", "completions"], json!(1));
            or_set(obj, &["spec", "backoffLimit"], json!(6));
            or_set(obj, &["spec", "completionMode"], "NonIndexed".into());
            or_set(obj, &["spec", "suspend"], json!(false));
            job_selector(obj);
            template_spec(obj, None);
        }
        Resource::Service => service(store, obj, old),
        Resource::Secret => secret(obj),
        Resource::PersistentVolumeClaim => {
            or_set(obj, &["spec", "volumeMode"], "Filesystem".into());
            or_set(obj, &["status", "phase"], "Pending".into());
        }
        Resource::ConfigMap
        | Resource::Event
        | Resource::Node
        | Resource::ServiceAccount
        | Resource::ClusterRole
        | Resource::ClusterRoleBinding
        | Resource::Role
        | Resource::RoleBinding => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }
}
