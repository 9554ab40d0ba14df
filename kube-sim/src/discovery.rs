//! Discovery documents (`/version`, `/api`, `/apis`, `/apis/GROUP`, and the
//! `APIResourceList` of each group/version), built from the resource table. Plain (not
//! aggregated v2) discovery: kubectl asks for the aggregated form first and falls back to
//! these, and kube-rs reads them directly. `shortNames` make `kubectl get deploy` work.

use serde_json::{Value, json};

use crate::resource::Resource;

/// The Kubernetes version the simulator claims to be.
const MINOR: &str = "33";

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": MINOR,
        "gitVersion": format!("v1.{MINOR}.0-outpost-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions() -> Value {
    json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [] })
}

const GROUPS: [&str; 3] = ["apps", "batch", "rbac.authorization.k8s.io"];

fn group(name: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{name}/v1"), "version": "v1" });
    json!({ "name": name, "versions": [gv.clone()], "preferredVersion": gv })
}

/// `/apis`.
pub(crate) fn groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>(),
    })
}

/// `/apis/GROUP`, if the group is served.
pub(crate) fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = "APIGroup".into();
        g["apiVersion"] = "v1".into();
        g
    })
}

/// `/api/v1` or `/apis/GROUP/VERSION`, if served.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in Resource::in_group_version(group, version) {
        let i = r.info();
        let mut main = json!({
            "name": i.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": VERBS,
        });
        if !i.short_names.is_empty() {
            main["shortNames"] = json!(i.short_names);
        }
        if r.in_all() {
            main["categories"] = json!(["all"]);
        }
        resources.push(main);
        if i.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", i.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": i.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.scalable() {
            resources.push(json!({
                "name": format!("{}/scale", i.plural),
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r == Resource::Pod {
            resources.push(json!({
                "name": "pods/log",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
