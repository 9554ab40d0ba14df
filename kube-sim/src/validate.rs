//! Admission checks a real API server makes and a client can get wrong: the body decodes
//! as its kind (a type error is a 400, as a real server's decoder reports it), names and
//! labels are well-formed, workload selectors match their template labels, required fields
//! are present, and immutable fields stay unchanged (422 `Invalid` with field causes).
//!
//! Every stored object passes this check, so controllers can rely on typed decoding.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, PodSpec,
    PodTemplateSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_quantity::ParsedQuantity;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::fields;
use crate::resource::Resource;
use crate::selector::LabelSelectorExpr;

fn decode<T: DeserializeOwned>(obj: &Value) -> Result<T, ApiError> {
    serde_json::from_value(obj.clone())
        .map_err(|e| ApiError::BadRequest(format!("error decoding object: {e}")))
}

/// DNS-1123 label (`max` 63) or subdomain (`max` 253, dots allowed).
fn dns_name(name: &str, dots: bool) -> bool {
    let max = if dots { 253 } else { 63 };
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !name.is_empty()
        && name.len() <= max
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.'))
}

fn label_value_ok(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn label_key_ok(k: &str) -> bool {
    let (prefix, name) = k.rsplit_once('/').map_or((None, k), |(p, n)| (Some(p), n));
    prefix.is_none_or(|p| dns_name(p, true)) && !name.is_empty() && label_value_ok(name)
}

fn check_metadata(resource: Resource, obj: &Value, causes: &mut Vec<Cause>) {
    let name = fields::meta(obj, "name");
    let dots = !matches!(resource, Resource::Namespace | Resource::Service);
    if !dns_name(name, dots) {
        causes.push(Cause::invalid(
            "metadata.name",
            format!("{name:?}: a lowercase RFC 1123 {} must consist of lower case alphanumeric characters, '-'{}", if dots { "subdomain" } else { "label" }, if dots { " or '.'" } else { "" }),
        ));
    }
    if let Some(labels) = fields::get(obj, &["metadata", "labels"]).and_then(Value::as_object) {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default();
            if !label_key_ok(k) || !label_value_ok(v) {
                causes.push(Cause::invalid(
                    format!("metadata.labels[{k}]"),
                    format!("{v:?}: not a valid label"),
                ));
            }
        }
    }
}

fn check_pod_spec(spec: Option<&PodSpec>, path: &str, causes: &mut Vec<Cause>) {
    let Some(spec) = spec else {
        causes.push(Cause::required(path));
        return;
    };
    if spec.containers.is_empty() {
        causes.push(Cause::required(format!("{path}.containers")));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        if !dns_name(&c.name, false) {
            causes.push(Cause::invalid(
                format!("{path}.containers[{i}].name"),
                format!("{:?}", c.name),
            ));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("{path}.containers[{i}].image")));
        }
    }
}

/// A workload's selector must be non-empty and select its own template.
fn check_selector(selector: &LabelSelector, template: &PodTemplateSpec, causes: &mut Vec<Cause>) {
    let Some(expr) = LabelSelectorExpr::from_structured(selector) else {
        causes.push(Cause::invalid("spec.selector", "unknown operator"));
        return;
    };
    if expr.is_empty() {
        causes.push(Cause::required("spec.selector"));
        return;
    }
    let labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !expr.matches(&labels) {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        ));
    }
}

fn immutable<T: PartialEq>(new: &T, old: Option<&T>, field: &str, causes: &mut Vec<Cause>) {
    if old.is_some_and(|old| old != new) {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: "field is immutable".into(),
        });
    }
}

/// A claim's spec is fixed once created, but for its storage request, which may only grow
/// (volume expansion), and the volume it is bound to, set once; as on a real server.
fn check_claim_update(
    new: &PersistentVolumeClaimSpec,
    old: &PersistentVolumeClaimSpec,
    causes: &mut Vec<Cause>,
) {
    let storage = |s: &PersistentVolumeClaimSpec| {
        s.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .and_then(|q| ParsedQuantity::try_from(q).ok())
    };
    let fixed = |s: &PersistentVolumeClaimSpec| PersistentVolumeClaimSpec {
        resources: None,
        volume_name: old.volume_name.clone().or_else(|| new.volume_name.clone()),
        ..s.clone()
    };
    if fixed(new) != fixed(old) {
        causes.push(Cause {
            reason: "FieldValueForbidden",
            field: "spec".into(),
            message: "Forbidden: spec is immutable after creation except resources.requests".into(),
        });
    }
    if let (Some(new), Some(old)) = (storage(new), storage(old))
        && new < old
    {
        causes.push(Cause {
            reason: "FieldValueForbidden",
            field: "spec.resources.requests.storage".into(),
            message: "Forbidden: field can not be less than previous value".into(),
        });
    }
}

fn check_typed(
    resource: Resource,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) -> Result<(), ApiError> {
    match resource {
        Resource::Deployment => {
            let d: Deployment = decode(obj)?;
            let o: Option<Deployment> = old.map(decode).transpose()?;
            let spec = d.spec.unwrap_or_default();
            check_selector(&spec.selector, &spec.template, causes);
            check_pod_spec(spec.template.spec.as_ref(), "spec.template.spec", causes);
            let old_selector = o.and_then(|o| o.spec).map(|s| s.selector);
            immutable(
                &spec.selector,
                old_selector.as_ref(),
                "spec.selector",
                causes,
            );
        }
        Resource::ReplicaSet => {
            let r: ReplicaSet = decode(obj)?;
            if let Some(spec) = &r.spec
                && let Some(t) = &spec.template
            {
                check_selector(&spec.selector, t, causes);
                check_pod_spec(t.spec.as_ref(), "spec.template.spec", causes);
            }
        }
        Resource::StatefulSet => {
            let s: StatefulSet = decode(obj)?;
            let o: Option<StatefulSet> = old.map(decode).transpose()?;
            let spec = s.spec.unwrap_or_default();
            check_selector(&spec.selector, &spec.template, causes);
            check_pod_spec(spec.template.spec.as_ref(), "spec.template.spec", causes);
            let old_spec = o.and_then(|o| o.spec);
            immutable(
                &spec.selector,
                old_spec.as_ref().map(|o| &o.selector),
                "spec.selector",
                causes,
            );
            immutable(
                &spec.volume_claim_templates,
                old_spec.as_ref().map(|o| &o.volume_claim_templates),
                "spec.volumeClaimTemplates",
                causes,
            );
        }
        Resource::Job => {
            let j: Job = decode(obj)?;
            let o: Option<Job> = old.map(decode).transpose()?;
            let spec = j.spec.unwrap_or_default();
            check_pod_spec(spec.template.spec.as_ref(), "spec.template.spec", causes);
            let policy = spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref());
            if !matches!(policy, Some("Never" | "OnFailure")) {
                causes.push(Cause {
                    reason: "FieldValueNotSupported",
                    field: "spec.template.spec.restartPolicy".into(),
                    message: format!(
                        "Unsupported value: {policy:?}: supported values: \"OnFailure\", \"Never\""
                    ),
                });
            }
            let old_spec = o.and_then(|o| o.spec);
            immutable(
                &spec.selector,
                old_spec.as_ref().map(|o| &o.selector),
                "spec.selector",
                causes,
            );
            immutable(
                &spec.template,
                old_spec.as_ref().map(|o| &o.template),
                "spec.template",
                causes,
            );
        }
        Resource::Pod => {
            let p: Pod = decode(obj)?;
            check_pod_spec(p.spec.as_ref(), "spec", causes);
        }
        Resource::Service => {
            let s: Service = decode(obj)?;
            for (i, p) in s
                .spec
                .iter()
                .flat_map(|s| s.ports.iter().flatten())
                .enumerate()
            {
                if !(1..=65535).contains(&p.port) {
                    causes.push(Cause::invalid(
                        format!("spec.ports[{i}].port"),
                        p.port.to_string(),
                    ));
                }
            }
        }
        Resource::Secret => {
            decode::<Secret>(obj)?;
        }
        Resource::ConfigMap => {
            decode::<ConfigMap>(obj)?;
        }
        Resource::ServiceAccount => {
            decode::<ServiceAccount>(obj)?;
        }
        Resource::ClusterRole => {
            decode::<ClusterRole>(obj)?;
        }
        Resource::ClusterRoleBinding => {
            decode::<ClusterRoleBinding>(obj)?;
        }
        Resource::Role => {
            decode::<Role>(obj)?;
        }
        Resource::RoleBinding => {
            decode::<RoleBinding>(obj)?;
        }
        Resource::PersistentVolumeClaim => {
            let p: PersistentVolumeClaim = decode(obj)?;
            let o: Option<PersistentVolumeClaim> = old.map(decode).transpose()?;
            let spec = p.spec.unwrap_or_default();
            if let Some(old_spec) = o.and_then(|o| o.spec) {
                check_claim_update(&spec, &old_spec, causes);
            }
            if spec.access_modes.as_ref().is_none_or(Vec::is_empty) {
                causes.push(Cause::required("spec.accessModes"));
            }
            if !spec
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key("storage"))
            {
                causes.push(Cause::required("spec.resources[storage]"));
            }
        }
        Resource::Namespace => {
            decode::<Namespace>(obj)?;
        }
        Resource::Node => {
            decode::<k8s_openapi::api::core::v1::Node>(obj)?;
        }
        Resource::Event => {
            decode::<Event>(obj)?;
        }
    }
    Ok(())
}

/// Checks `obj` (after defaulting) as a write of `resource`; `old` is the stored object on
/// an update. Errors: 400 `BadRequest` if it does not decode, 422 `Invalid` with causes.
pub(crate) fn object(resource: Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    check_metadata(resource, obj, &mut causes);
    check_typed(resource, obj, old, &mut causes)?;
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            resource,
            name: fields::meta(obj, "name").to_string(),
            causes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(dns_name("web-1", false));
        assert!(dns_name("a.b", true));
        assert!(!dns_name("a.b", false));
        assert!(!dns_name("Web", true));
        assert!(!dns_name("-web", true));
        assert!(!dns_name("", true));
        assert!(!dns_name(&"a".repeat(64), false));
    }

    #[test]
    fn label_keys_may_have_a_dns_prefix() {
        assert!(label_key_ok("app.kubernetes.io/name"));
        assert!(label_key_ok("app"));
        assert!(!label_key_ok("/app"));
        assert!(!label_key_ok("a/b/c"));
        assert!(label_value_ok(""));
        assert!(!label_value_ok("-x"));
    }

    #[test]
    fn a_claim_may_only_grow_and_bind() {
        let claim = |storage: &str, class: &str, volume: Option<&str>| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "ns"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": class,
                    "volumeName": volume,
                    "resources": {"requests": {"storage": storage}},
                },
            })
        };
        let pvc = Resource::PersistentVolumeClaim;
        let old = claim("1Gi", "rbd", None);
        assert!(object(pvc, &claim("1Gi", "rbd", Some("pvc-1")), Some(&old)).is_ok());
        assert!(object(pvc, &claim("2048Mi", "rbd", None), Some(&old)).is_ok());
        for (changed, field) in [
            (
                claim("512Mi", "rbd", None),
                "spec.resources.requests.storage",
            ),
            (claim("1Gi", "fast", None), "spec"),
        ] {
            let Err(ApiError::Invalid { causes, .. }) = object(pvc, &changed, Some(&old)) else {
                panic!("{changed} accepted");
            };
            assert_eq!(causes[0].field, field);
        }
    }
}
