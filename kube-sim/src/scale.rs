//! The `scale` subresource (`autoscaling/v1 Scale`) of Deployments, ReplicaSets and
//! StatefulSets, as `kubectl scale` uses it: reading reports the desired and current
//! replicas and the selector; writing changes only `spec.replicas` of the parent, through
//! the ordinary update path (so generation and resourceVersion move as for any spec change).

use serde_json::{Value, json};

use crate::api;
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::patch::{self, PatchKind};
use crate::shared::Shared;
use crate::store::Key;
use crate::store::write::Part;

/// `matchLabels` as a selector string (`a=b,c=d`); expressions are not rendered.
fn selector(obj: &Value) -> String {
    fields::get(obj, &["spec", "selector", "matchLabels"])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn to_scale(obj: &Value) -> Value {
    let meta = |f: &str| fields::meta(obj, f);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": { "replicas": fields::get(obj, &["spec", "replicas"]).cloned().unwrap_or(json!(0)) },
        "status": {
            "replicas": fields::get(obj, &["status", "replicas"]).cloned().unwrap_or(json!(0)),
            "selector": selector(obj),
        },
    })
}

/// GET of the scale. Errors: 404.
pub(crate) fn get(shared: &Shared, key: &Key) -> Result<Value, ApiError> {
    Ok(to_scale(&*api::get(shared, key)?))
}

/// PUT (`kind: None`) or PATCH of the scale. Errors: 404, 409 on a stale resourceVersion,
/// 400 for a malformed body, 422 for replicas that are not a non-negative integer.
pub(crate) fn update(
    shared: &Shared,
    key: &Key,
    kind: Option<PatchKind>,
    body: &[u8],
    dry_run: bool,
) -> Result<Value, ApiError> {
    let opts = shared.write_opts(dry_run);
    let updated = shared
        .store()
        .object_update(key, Part::Main, false, opts, |cur| {
            let scale = match kind {
                None => patch::parse_json(body)?,
                Some(kind) => patch::patch(kind, &to_scale(cur), body)?,
            };
            let replicas = fields::get(&scale, &["spec", "replicas"])
                .and_then(Value::as_i64)
                .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
                .ok_or_else(|| ApiError::Invalid {
                    resource: key.resource,
                    name: key.name.clone(),
                    causes: vec![Cause::invalid(
                        "spec.replicas",
                        "must be a non-negative integer",
                    )],
                })?;
            let mut new = cur.clone();
            fields::set(&mut new, &["spec", "replicas"], json!(replicas));
            let rv = fields::meta(&scale, "resourceVersion");
            if !rv.is_empty() {
                fields::set(&mut new, &["metadata", "resourceVersion"], rv.into());
            }
            Ok(new)
        })?;
    shared
        .persist()
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(to_scale(&updated))
}
