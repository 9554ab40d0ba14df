//! Server-side apply. The applied configuration is merged into the live object; fields the
//! same field manager applied before and no longer applies are removed; other appliers'
//! fields are kept, and taking a field another applier owns with a different value is a
//! conflict unless `force` is set (then ownership moves).
//!
//! Fidelity is deliberately partial: field ownership is tracked per leaf, where maps are
//! descended and **lists are atomic leaves** (a real server merges `containers` by name);
//! ownership is recorded as real `metadata.managedFields` entries (`FieldsV1`), only for
//! `Apply` operations (PUT and merge-patch writers are not recorded as owners).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::fields;
use crate::resource::Resource;
use crate::store::write::Part;

/// A set of field paths; maps are descended, everything else (scalars, lists) is a leaf.
type FieldSet = BTreeSet<Vec<String>>;

/// Server-owned metadata that an applied configuration never takes ownership of.
const SERVER_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
];

fn collect_leaves(v: &Value, prefix: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        // An empty map owns nothing: it neither conflicts with nor removes other fields.
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(k.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// The fields an applied configuration sets, restricted to what `part` may write.
fn applied_fields(resource: Resource, applied: &Value, part: Part) -> FieldSet {
    let mut out = FieldSet::new();
    collect_leaves(applied, &mut Vec::new(), &mut out);
    out.retain(|p| {
        let top = p[0].as_str();
        let is_status = top == "status";
        let server_meta = top == "metadata"
            && p.get(1)
                .is_some_and(|f| SERVER_METADATA.contains(&f.as_str()));
        let type_meta = top == "apiVersion" || top == "kind";
        let allowed = match part {
            Part::Status => is_status,
            Part::Main => !(is_status && resource.info().status_subresource),
            Part::All => true,
        };
        allowed && !server_meta && !type_meta
    });
    out
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            cur = fields::object_mut(cur)
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// Reads a `FieldsV1` tree. Keys other than `f:` (list keys written by a real server, `.`)
/// make their parent a leaf, which is the coarser, safe reading.
fn from_fields_v1(v: &Value, prefix: &mut Vec<String>, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    let children: Vec<(&str, &Value)> = m
        .iter()
        .filter_map(|(k, c)| k.strip_prefix("f:").map(|k| (k, c)))
        .collect();
    if children.is_empty() || children.len() != m.len() {
        if !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        if children.is_empty() {
            return;
        }
    }
    for (k, child) in children {
        prefix.push(k.to_string());
        from_fields_v1(child, prefix, out);
        prefix.pop();
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn dotted(path: &[String]) -> String {
    format!(".{}", path.join("."))
}

/// Deep-merges `patch` into `target`: maps merge, everything else replaces, `null` removes.
pub(crate) fn merge_into(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    let t = fields::object_mut(target);
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else if let Some(existing) = t.get_mut(k).filter(|e| e.is_object() && v.is_object()) {
            merge_into(existing, v);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// One `managedFields` entry, with its field set decoded.
struct Entry {
    raw: Value,
    manager: String,
    is_apply: bool,
    subresource: String,
    set: FieldSet,
}

fn entries(current: &Value) -> Vec<Entry> {
    fields::get(current, &["metadata", "managedFields"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|raw| {
            let mut set = FieldSet::new();
            if let Some(f) = raw.get("fieldsV1") {
                from_fields_v1(f, &mut Vec::new(), &mut set);
            }
            Entry {
                manager: fields::get_str(raw, &["manager"])
                    .unwrap_or_default()
                    .to_string(),
                is_apply: fields::get_str(raw, &["operation"]) == Some("Apply"),
                subresource: fields::get_str(raw, &["subresource"])
                    .unwrap_or_default()
                    .to_string(),
                set,
                raw: raw.clone(),
            }
        })
        .collect()
}

/// A server-side apply request.
pub(crate) struct ApplyRequest<'a> {
    pub resource: Resource,
    pub name: &'a str,
    pub manager: &'a str,
    pub force: bool,
    pub part: Part,
    /// RFC 3339 time recorded in the manager's entry.
    pub time: String,
}

/// The object that results from applying `applied` to `current` (`None`: create). Errors: 400
/// for a body that is not an object or lacks `apiVersion`/`kind`; 409 on a field conflict
/// without `force`.
pub(crate) fn apply(
    req: &ApplyRequest<'_>,
    current: Option<&Value>,
    applied: &Value,
) -> Result<Value, ApiError> {
    if !applied.is_object() || fields::get(applied, &["metadata"]).is_some_and(|m| !m.is_object()) {
        return Err(ApiError::BadRequest(
            "the applied configuration is not a JSON object with object metadata".into(),
        ));
    }
    for field in ["apiVersion", "kind"] {
        if fields::get_str(applied, &[field]).is_none_or(str::is_empty) {
            return Err(ApiError::BadRequest(format!(
                "{field} must be set in an applied configuration"
            )));
        }
    }
    if req.manager.is_empty() {
        return Err(ApiError::BadRequest(
            "fieldManager is required for apply requests".into(),
        ));
    }
    let subresource = if req.part == Part::Status {
        "status"
    } else {
        ""
    };
    let new_set = applied_fields(req.resource, applied, req.part);
    let mut merged = current.cloned().unwrap_or_else(|| json!({}));
    let mut others = Vec::new();
    let mut previous = FieldSet::new();
    for e in current.map(entries).unwrap_or_default() {
        if e.is_apply && e.manager == req.manager && e.subresource == subresource {
            previous = e.set;
        } else {
            others.push(e);
        }
    }
    let mut conflicts = BTreeSet::new();
    for other in others.iter_mut().filter(|o| o.is_apply) {
        let taken: Vec<Vec<String>> = other
            .set
            .iter()
            .filter(|q| new_set.iter().any(|p| overlaps(p, q)))
            .cloned()
            .collect();
        for q in taken {
            let differs = fields::get(&merged, &q.iter().map(String::as_str).collect::<Vec<_>>())
                != fields::get(applied, &q.iter().map(String::as_str).collect::<Vec<_>>());
            if req.force {
                other.set.remove(&q);
            } else if differs {
                conflicts.insert(format!(
                    "conflict with \"{}\": {}",
                    other.manager,
                    dotted(&q)
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError::ApplyConflict {
            resource: req.resource,
            name: req.name.to_string(),
            fields: conflicts.into_iter().collect(),
        });
    }
    for gone in previous.difference(&new_set) {
        let owned_elsewhere = others
            .iter()
            .any(|o| o.set.iter().any(|q| overlaps(q, gone)));
        if !owned_elsewhere {
            fields::remove(
                &mut merged,
                &gone.iter().map(String::as_str).collect::<Vec<_>>(),
            );
        }
    }
    merge_into(&mut merged, applied);
    let mut managed: Vec<Value> = others
        .into_iter()
        .filter(|o| !o.is_apply || !o.set.is_empty())
        .map(|o| {
            let mut raw = o.raw;
            if o.is_apply {
                fields::set(&mut raw, &["fieldsV1"], to_fields_v1(&o.set));
            }
            raw
        })
        .collect();
    let mut entry = json!({
        "manager": req.manager,
        "operation": "Apply",
        "apiVersion": req.resource.api_version(),
        "time": req.time,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(&new_set),
    });
    if !subresource.is_empty() {
        fields::set(&mut entry, &["subresource"], subresource.into());
    }
    managed.push(entry);
    fields::set(
        &mut merged,
        &["metadata", "managedFields"],
        Value::Array(managed),
    );
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            resource: Resource::ConfigMap,
            name: "c",
            manager,
            force,
            part: Part::Main,
            time: "2025-01-01T00:00:00Z".into(),
        }
    }

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn fields_dropped_from_a_later_apply_are_removed() {
        let first = apply(&req("a", false), None, &cm(json!({"x": "1", "y": "2"}))).unwrap();
        let second = apply(&req("a", false), Some(&first), &cm(json!({"x": "1"}))).unwrap();
        assert_eq!(second["data"], json!({"x": "1"}));
    }

    #[test]
    fn another_managers_fields_survive_and_conflicts_need_force() {
        let a = apply(&req("a", false), None, &cm(json!({"x": "1"}))).unwrap();
        let b = apply(&req("b", false), Some(&a), &cm(json!({"y": "2"}))).unwrap();
        assert_eq!(b["data"], json!({"x": "1", "y": "2"}));
        let err = apply(&req("b", false), Some(&b), &cm(json!({"x": "9", "y": "2"}))).unwrap_err();
        assert!(matches!(err, ApiError::ApplyConflict { .. }), "{err}");
        let same_value = apply(&req("b", false), Some(&b), &cm(json!({"x": "1", "y": "2"})));
        assert!(same_value.is_ok());
        let forced = apply(&req("b", true), Some(&b), &cm(json!({"x": "9", "y": "2"}))).unwrap();
        assert_eq!(forced["data"]["x"], "9");
        // `a` lost ownership of data.x, so its next apply without x leaves it alone.
        let again = apply(&req("a", false), Some(&forced), &cm(json!({}))).unwrap();
        assert_eq!(again["data"]["x"], "9");
    }

    #[test]
    fn fields_v1_round_trips() {
        let set: FieldSet = [
            vec!["spec".to_string(), "replicas".to_string()],
            vec!["data".to_string()],
        ]
        .into_iter()
        .collect();
        let mut back = FieldSet::new();
        from_fields_v1(&to_fields_v1(&set), &mut Vec::new(), &mut back);
        assert_eq!(back, set);
    }
}
