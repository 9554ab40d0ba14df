//! Server-side printing: the `meta.k8s.io/v1 Table` that `kubectl get` asks for (`Accept:
//! …;as=Table;…`), so `kubectl get pods` shows READY/STATUS/RESTARTS like on a real cluster
//! instead of only NAME and AGE. The columns follow kubectl's built-in printers; priority-1
//! columns appear with `-o wide`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::clock::{parse_time, seconds_between};
use crate::fields;
use crate::resource::Resource;

/// Whether the client asked for a Table (`kubectl get`).
pub(crate) fn wanted(accept: &str) -> bool {
    accept.split(',').any(|media| {
        media.contains("as=Table") && media.contains("g=meta.k8s.io") && media.contains("v=v1")
    })
}

/// `duration.HumanDuration`: `45s`, `3m20s`, `5h`, `2d4h`, ...
fn human(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    match secs {
        s if s < 0 => "0s".into(),
        s if s < 120 => format!("{s}s"),
        _ if m < 10 => with(m, "m", secs % 60, "s"),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => with(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 => with(d, "d", h % 24, "h"),
        _ if d < 730 => format!("{d}d"),
        _ => with(d / 365, "y", d % 365, "d"),
    }
}

fn age(obj: &Value, now: Timestamp) -> String {
    parse_time(fields::get_str(obj, &["metadata", "creationTimestamp"]))
        .map_or_else(|| "<unknown>".into(), |t| human(seconds_between(t, now)))
}

fn typed<T: DeserializeOwned + Default>(obj: &Value) -> T {
    serde_json::from_value(obj.clone()).unwrap_or_default()
}

fn or_none(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

fn pod_status(p: &Pod) -> String {
    if p.metadata.deletion_timestamp.is_some() {
        return "Terminating".into();
    }
    let status = p.status.clone().unwrap_or_default();
    let mut reason = status
        .reason
        .clone()
        .or(status.phase.clone())
        .unwrap_or_default();
    for cs in status.container_statuses.iter().flatten() {
        let state = cs.state.clone().unwrap_or_default();
        if let Some(r) = state
            .waiting
            .and_then(|w| w.reason)
            .filter(|r| !r.is_empty())
        {
            reason = r;
        } else if let Some(r) = state.terminated.and_then(|t| t.reason) {
            reason = r;
        }
    }
    reason
}

/// Column definitions (name, type, priority) and cells of one object.
fn columns(resource: Resource) -> Vec<(&'static str, &'static str, u8)> {
    let mut cols = match resource {
        Resource::Namespace | Resource::Node => vec![("Status", "string", 0)],
        Resource::ServiceAccount
        | Resource::ClusterRole
        | Resource::ClusterRoleBinding
        | Resource::Role
        | Resource::RoleBinding => vec![],
        Resource::Pod => vec![
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "integer", 0),
        ],
        Resource::Deployment => vec![
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
        ],
        Resource::ReplicaSet => vec![
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
        ],
        Resource::StatefulSet => vec![("Ready", "string", 0)],
        Resource::Job => vec![("Status", "string", 0), ("Completions", "string", 0)],
        Resource::Service => vec![
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
        ],
        Resource::PersistentVolumeClaim => vec![
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
        ],
        Resource::ConfigMap => vec![("Data", "integer", 0)],
        Resource::Secret => vec![("Type", "string", 0), ("Data", "integer", 0)],
        Resource::Event => vec![
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
    };
    if resource == Resource::Event {
        // Events lead with when they were last seen; the name is a wide column.
        cols.insert(0, ("Last Seen", "string", 0));
        cols.push(("Name", "string", 1));
        return cols;
    }
    cols.insert(0, ("Name", "string", 0));
    cols.push(("Age", "string", 0));
    if resource == Resource::Pod {
        cols.extend([("IP", "string", 1), ("Node", "string", 1)]);
    }
    cols
}

fn cells(resource: Resource, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(fields::meta(obj, "name"));
    let mut row = match resource {
        Resource::Namespace => vec![json!(
            fields::get_str(obj, &["status", "phase"]).unwrap_or_default()
        )],
        Resource::Node => vec![json!("Ready")],
        Resource::ServiceAccount
        | Resource::ClusterRole
        | Resource::ClusterRoleBinding
        | Resource::Role
        | Resource::RoleBinding => vec![],
        Resource::Pod => {
            let p: Pod = typed(obj);
            let statuses = p
                .status
                .clone()
                .unwrap_or_default()
                .container_statuses
                .unwrap_or_default();
            let total = p.spec.as_ref().map_or(0, |s| s.containers.len());
            let ready = statuses.iter().filter(|c| c.ready).count();
            let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
            vec![
                json!(format!("{ready}/{total}")),
                json!(pod_status(&p)),
                json!(restarts),
            ]
        }
        Resource::Deployment => {
            let d: Deployment = typed(obj);
            let s = d.status.unwrap_or_default();
            let want = d.spec.and_then(|s| s.replicas).unwrap_or(0);
            vec![
                json!(format!("{}/{want}", s.ready_replicas.unwrap_or(0))),
                json!(s.updated_replicas.unwrap_or(0)),
                json!(s.available_replicas.unwrap_or(0)),
            ]
        }
        Resource::ReplicaSet => {
            let r: ReplicaSet = typed(obj);
            let s = r.status.unwrap_or_default();
            vec![
                json!(r.spec.and_then(|s| s.replicas).unwrap_or(0)),
                json!(s.replicas),
                json!(s.ready_replicas.unwrap_or(0)),
            ]
        }
        Resource::StatefulSet => {
            let s: StatefulSet = typed(obj);
            let want = s.spec.and_then(|s| s.replicas).unwrap_or(0);
            vec![json!(format!(
                "{}/{want}",
                s.status.and_then(|s| s.ready_replicas).unwrap_or(0)
            ))]
        }
        Resource::Job => {
            let j: Job = typed(obj);
            let s = j.status.unwrap_or_default();
            let done = |t: &str| {
                s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == t && c.status == "True")
            };
            let state = if done("Complete") {
                "Complete"
            } else if done("Failed") {
                "Failed"
            } else {
                "Running"
            };
            let want = j.spec.and_then(|s| s.completions).unwrap_or(1);
            vec![
                json!(state),
                json!(format!("{}/{want}", s.succeeded.unwrap_or(0))),
            ]
        }
        Resource::Service => {
            let s: Service = typed(obj);
            let spec = s.spec.unwrap_or_default();
            let ports: Vec<String> = spec
                .ports
                .iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.port,
                        p.protocol.clone().unwrap_or_else(|| "TCP".into())
                    )
                })
                .collect();
            vec![
                json!(spec.type_.unwrap_or_default()),
                json!(or_none(spec.cluster_ip)),
                json!("<none>"),
                json!(or_none(Some(ports.join(",")))),
            ]
        }
        Resource::PersistentVolumeClaim => {
            let p: PersistentVolumeClaim = typed(obj);
            let spec = p.spec.unwrap_or_default();
            let status = p.status.unwrap_or_default();
            let capacity = status
                .capacity
                .and_then(|c| c.get("storage").map(|q| q.0.clone()));
            let modes: Vec<&str> = status
                .access_modes
                .iter()
                .flatten()
                .map(|m| match m.as_str() {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    _ => "RWOP",
                })
                .collect();
            vec![
                json!(status.phase.unwrap_or_default()),
                json!(spec.volume_name.unwrap_or_default()),
                json!(capacity.unwrap_or_default()),
                json!(modes.join(",")),
                json!(or_none(spec.storage_class_name)),
            ]
        }
        Resource::ConfigMap | Resource::Secret => {
            let data = ["data", "binaryData"]
                .iter()
                .filter_map(|f| fields::get(obj, &[f]).and_then(Value::as_object))
                .map(serde_json::Map::len)
                .sum::<usize>();
            let mut row = vec![json!(data)];
            if resource == Resource::Secret {
                row.insert(
                    0,
                    json!(fields::get_str(obj, &["type"]).unwrap_or("Opaque")),
                );
            }
            row
        }
        Resource::Event => {
            let e: Event = typed(obj);
            let o = e.involved_object;
            let object = format!(
                "{}/{}",
                o.kind.unwrap_or_default().to_lowercase(),
                o.name.unwrap_or_default()
            );
            vec![
                json!(e.type_.unwrap_or_default()),
                json!(e.reason.unwrap_or_default()),
                json!(object),
                json!(e.message.unwrap_or_default()),
            ]
        }
    };
    if resource == Resource::Event {
        let seen = parse_time(fields::get_str(obj, &["lastTimestamp"]))
            .map_or_else(|| age(obj, now), |t| human(seconds_between(t, now)));
        row.insert(0, json!(seen));
        row.push(name);
        return row;
    }
    row.insert(0, name);
    row.push(json!(age(obj, now)));
    if resource == Resource::Pod {
        row.push(json!(or_none(
            fields::get_str(obj, &["status", "podIP"]).map(str::to_string)
        )));
        row.push(json!(or_none(
            fields::get_str(obj, &["spec", "nodeName"]).map(str::to_string)
        )));
    }
    row
}

/// A Table of `items` (as `kubectl get` prints them), each row carrying the object's
/// metadata so kubectl can add the NAMESPACE column and labels.
pub(crate) fn table(
    resource: Resource,
    items: &[&Value],
    list_meta: Value,
    now: Timestamp,
) -> Value {
    let columns: Vec<Value> = columns(resource)
        .into_iter()
        .map(|(name, ty, priority)| {
            let format = if name == "Name" { "name" } else { "" };
            json!({ "name": name, "type": ty, "format": format, "description": "", "priority": priority })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            json!({
                "cells": cells(resource, obj, now),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": fields::get(obj, &["metadata"]).cloned().unwrap_or_default(),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_like_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
            (800 * 86400, "2y70d"),
        ] {
            assert_eq!(human(secs), want, "{secs}");
        }
    }

    #[test]
    fn kubectl_get_accept_header_asks_for_a_table() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(wanted(kubectl));
        assert!(!wanted("application/json"));
    }
}
