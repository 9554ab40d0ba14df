//! PATCH bodies other than server-side apply: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and strategic merge patch. The strategic form is approximated: lists of
//! objects that all carry a `name` (containers, env, ports, volumes) merge by name and honour
//! `$patch: delete`; other lists replace, and `$setElementOrder`/`$retainKeys` directives are
//! ignored. That covers what `kubectl set image`, `label`, `annotate` and `rollout restart`
//! send.

use serde_json::Value;

use crate::error::ApiError;
use crate::fields;

/// The patch formats, chosen by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Apply,
    Merge,
    Json,
    Strategic,
}

impl PatchKind {
    /// The format named by a `Content-Type` header; 415 for anything else.
    pub(crate) fn from_content_type(content_type: &str) -> Result<PatchKind, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchKind::Apply),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            _ => Err(ApiError::UnsupportedMediaType {
                accepted: "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            }),
        }
    }
}

/// Parses a request body as JSON; 400 on anything else (YAML is not accepted).
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

fn named_items(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|v| fields::get_str(v, &["name"]).is_some())
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    let t = fields::object_mut(target);
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        match (t.get_mut(k), v) {
            (_, Value::Null) => {
                t.remove(k);
            }
            (Some(Value::Array(existing)), Value::Array(items))
                if named_items(items) && named_items(existing) =>
            {
                for item in items {
                    let name = fields::get_str(item, &["name"]);
                    let pos = existing
                        .iter()
                        .position(|e| fields::get_str(e, &["name"]) == name);
                    let delete = fields::get_str(item, &["$patch"]) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            existing.remove(i);
                        }
                        (Some(i), false) => strategic_merge(&mut existing[i], item),
                        (None, false) => existing.push(item.clone()),
                        (None, true) => {}
                    }
                }
            }
            (Some(existing), Value::Object(_)) if existing.is_object() => {
                strategic_merge(existing, v)
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Applies a non-apply patch to `current`. Errors: 400 for a malformed body, 422 for a JSON
/// patch whose operations do not apply.
pub(crate) fn patch(kind: PatchKind, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut doc, &parse_json(body)?),
        PatchKind::Strategic => {
            let p = parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(&mut doc, &p);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("the JSON patch is malformed: {e}")))?;
            json_patch::patch(&mut doc, &ops)
                .map_err(|e| ApiError::BadRequest(format!("the JSON patch does not apply: {e}")))?;
        }
        PatchKind::Apply => {
            return Err(ApiError::UnsupportedMediaType {
                accepted: "application/apply-patch+yaml",
            });
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let cur = json!({"spec": {"containers": [
            {"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "s:1"}
        ]}});
        let patch = br#"{"spec":{"containers":[{"name":"app","image":"a:2"},{"name":"side","$patch":"delete"}]}}"#;
        let out = super::patch(PatchKind::Strategic, &cur, patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "app", "image": "a:2", "ports": [{"containerPort": 80}]}])
        );
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        let cur = json!({"a": 1});
        for (kind, body) in [
            (PatchKind::Merge, &b"{"[..]),
            (PatchKind::Json, b"{\"op\":\"add\"}"),
            (
                PatchKind::Json,
                b"[{\"op\":\"remove\",\"path\":\"/missing\"}]",
            ),
            (PatchKind::Strategic, b"[1]"),
        ] {
            assert!(
                matches!(super::patch(kind, &cur, body), Err(ApiError::BadRequest(_))),
                "{kind:?}"
            );
        }
    }
}
