//! Kubernetes manifests in tests: a YAML stream parsed into typed k8s-openapi objects, so a
//! misspelled field or an unknown kind fails the test that reads it.

use k8s_openapi::{
    Resource,
    api::{
        apps::v1::{Deployment, StatefulSet},
        core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
};
use serde::{Deserialize as _, Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::{path::Path, process::Command};

/// `value` as the typed object `T`: it must decode, and nothing may be lost on the way back
/// (a misspelled or misplaced field would be).
fn check<T: Resource + DeserializeOwned + Serialize>(value: &Value) -> Result<(), String> {
    let object: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    // The typed form may add what its type implies (an embedded claim's `kind`), but must
    // keep everything the document says.
    if !kept(value, &back) {
        return Err(format!(
            "fields lost decoding as {}: {value}\nbecame {back}",
            T::KIND
        ));
    }
    Ok(())
}

/// Whether everything `original` says is in `decoded`, the same.
fn kept(original: &Value, decoded: &Value) -> bool {
    match (original, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, v)| b.get(k).is_some_and(|w| kept(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| kept(v, w))
        }
        _ => original == decoded,
    }
}

/// Every document of the YAML stream `yaml`, each checked as the typed object of its
/// `apiVersion` and `kind`; an error names the document and what is wrong with it.
pub fn typed_objects(yaml: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| format!("document {i}: {e}"))?;
        if value.is_null() {
            continue;
        }
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or_default();
        let checked = match (api_version, kind) {
            (Namespace::API_VERSION, Namespace::KIND) => check::<Namespace>(&value),
            (ServiceAccount::API_VERSION, ServiceAccount::KIND) => check::<ServiceAccount>(&value),
            (ConfigMap::API_VERSION, ConfigMap::KIND) => check::<ConfigMap>(&value),
            (Secret::API_VERSION, Secret::KIND) => check::<Secret>(&value),
            (Service::API_VERSION, Service::KIND) => check::<Service>(&value),
            (PersistentVolumeClaim::API_VERSION, PersistentVolumeClaim::KIND) => {
                check::<PersistentVolumeClaim>(&value)
            }
            (Deployment::API_VERSION, Deployment::KIND) => check::<Deployment>(&value),
            (StatefulSet::API_VERSION, StatefulSet::KIND) => check::<StatefulSet>(&value),
            (ClusterRole::API_VERSION, ClusterRole::KIND) => check::<ClusterRole>(&value),
            (ClusterRoleBinding::API_VERSION, ClusterRoleBinding::KIND) => {
                check::<ClusterRoleBinding>(&value)
            }
            _ => Err(format!(
                "{api_version} {kind} is not a kind these tests know"
            )),
        };
        checked.map_err(|e| format!("document {i} ({kind}): {e}"))?;
        objects.push(value);
    }
    Ok(objects)
}

/// Runs the real kubectl against a cluster and returns its output.
pub fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "10s"])
        .args(args)
        .env("HOME", home)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_field_or_an_unknown_kind_is_refused() {
        let good = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: v\n";
        assert_eq!(typed_objects(good).map(|o| o.len()), Ok(2));
        let typo = "apiVersion: v1\nkind: Namespace\nmetadata:\n  nmae: a\n";
        assert!(typed_objects(typo).is_err_and(|e| e.contains("fields lost")));
        let unknown = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n";
        assert!(typed_objects(unknown).is_err_and(|e| e.contains("not a kind")));
    }
}
