//! The verbs of the Kubernetes API over the store: get, list, create, replace, patch
//! (including server-side apply), delete and delete-collection. Each takes the store lock for
//! one synchronous operation and persists the result before returning, so a successful
//! response means the change is durable (when a state path is configured).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::apply::{self, ApplyRequest};
use crate::clock::format_time;
use crate::error::ApiError;
use crate::fields;
use crate::patch::{self, PatchKind};
use crate::resource::Resource;
use crate::selector::{FieldSelectorExpr, LabelSelectorExpr};
use crate::shared::Shared;
use crate::store::Key;
use crate::store::write::{DeleteOpts, Part};

/// Label and field selectors of a list, watch or delete-collection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelectorExpr,
    pub fields: FieldSelectorExpr,
}

impl Selectors {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }
}

/// Paging of a list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub limit: Option<usize>,
    /// The `continue` token of the previous page.
    pub after: Option<String>,
}

fn persisted<T>(shared: &Shared, result: T) -> Result<T, ApiError> {
    shared
        .persist()
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(result)
}

fn continue_token(key: &Key) -> String {
    format!("{}/{}", key.namespace, key.name)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::BadRequest("the provided continue parameter is invalid".into());
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ns, name) = text.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

/// GET of one object. Errors: 404.
pub(crate) fn get(shared: &Shared, key: &Key) -> Result<Arc<Value>, ApiError> {
    shared
        .store()
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            resource: key.resource,
            name: key.name.clone(),
        })
}

/// A `…List` of the objects that match, ordered by namespace and name, with
/// `metadata.resourceVersion` set to the cluster's version (the point to watch from).
pub(crate) fn list(
    shared: &Shared,
    resource: Resource,
    namespace: Option<&str>,
    selectors: &Selectors,
    page: &Page,
) -> Result<Value, ApiError> {
    let after = page.after.as_deref().map(decode_continue).transpose()?;
    let store = shared.store();
    let mut items: Vec<(&Key, &Arc<Value>)> = Vec::new();
    let mut more = false;
    let candidates = store
        .list(resource, namespace)
        .filter(|(k, _)| {
            after
                .as_ref()
                .is_none_or(|(ns, name)| (&k.namespace, &k.name) > (ns, name))
        })
        .filter(|(_, obj)| selectors.matches(obj));
    for item in candidates {
        if page.limit.is_some_and(|limit| items.len() >= limit) {
            more = true;
            break;
        }
        items.push(item);
    }
    let mut metadata = json!({ "resourceVersion": store.rv().to_string() });
    if more && let Some((last, _)) = items.last() {
        metadata["continue"] = continue_token(last).into();
    }
    Ok(json!({
        "kind": format!("{}List", resource.kind()),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items.into_iter().map(|(_, o)| &**o).collect::<Vec<&Value>>(),
    }))
}

/// POST. Errors: see [`crate::store::Store::object_create`].
pub(crate) fn create(
    shared: &Shared,
    resource: Resource,
    namespace: &str,
    body: &[u8],
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let obj = patch::parse_json(body)?;
    let opts = shared.write_opts(dry_run);
    let created = shared
        .store()
        .object_create(resource, namespace, obj, Part::Main, opts)?;
    persisted(shared, created)
}

/// PUT of the object or its status. Errors: 404, 409 on a stale resourceVersion, 400, 422.
pub(crate) fn replace(
    shared: &Shared,
    key: &Key,
    part: Part,
    body: &[u8],
    dry_run: bool,
) -> Result<Arc<Value>, ApiError> {
    let obj = patch::parse_json(body)?;
    let opts = shared.write_opts(dry_run);
    let replaced = shared
        .store()
        .object_update(key, part, true, opts, |_| Ok(obj))?;
    persisted(shared, replaced)
}

/// A PATCH request.
#[derive(Debug)]
pub(crate) struct PatchRequest<'a> {
    pub kind: PatchKind,
    pub part: Part,
    pub body: &'a [u8],
    pub field_manager: &'a str,
    pub force: bool,
    pub dry_run: bool,
}

/// PATCH; server-side apply creates an absent object (the `bool` is `true` then). Errors:
/// 404 (non-apply on an absent object), 409 (stale resourceVersion, apply conflict), 400,
/// 415, 422.
pub(crate) fn patch(
    shared: &Shared,
    key: &Key,
    req: &PatchRequest<'_>,
) -> Result<(Arc<Value>, bool), ApiError> {
    let opts = shared.write_opts(req.dry_run);
    let mut store = shared.store();
    let result = if req.kind == PatchKind::Apply {
        let applied = patch::parse_json(req.body)?;
        let apply_req = ApplyRequest {
            resource: key.resource,
            name: &key.name,
            manager: req.field_manager,
            force: req.force,
            part: req.part,
            time: format_time(opts.now),
        };
        if store.get(key).is_some() {
            let updated = store.object_update(key, req.part, false, opts, |cur| {
                apply::apply(&apply_req, Some(cur), &applied)
            })?;
            (updated, false)
        } else {
            if req.part == Part::Status {
                return Err(ApiError::NotFound {
                    resource: key.resource,
                    name: key.name.clone(),
                });
            }
            let mut obj = apply::apply(&apply_req, None, &applied)?;
            match fields::get_str(&obj, &["metadata", "name"]) {
                Some(name) if !name.is_empty() && name != key.name => {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({name}) does not match the name on the URL ({})",
                        key.name
                    )));
                }
                _ => fields::set(&mut obj, &["metadata", "name"], key.name.clone().into()),
            }
            let created =
                store.object_create(key.resource, &key.namespace, obj, Part::Main, opts)?;
            (created, true)
        }
    } else {
        let updated = store.object_update(key, req.part, false, opts, |cur| {
            patch::patch(req.kind, cur, req.body)
        })?;
        (updated, false)
    };
    drop(store);
    persisted(shared, result)
}

/// DELETE of one object. Errors: see [`crate::store::Store::object_delete`].
pub(crate) fn delete(
    shared: &Shared,
    key: &Key,
    opts: &DeleteOpts,
) -> Result<Arc<Value>, ApiError> {
    let deleted = shared.store().object_delete(key, opts)?;
    persisted(shared, deleted)
}

/// DELETE of a collection: every matching object, as one list of the deleted objects.
pub(crate) fn delete_collection(
    shared: &Shared,
    resource: Resource,
    namespace: Option<&str>,
    selectors: &Selectors,
    opts: &DeleteOpts,
) -> Result<Value, ApiError> {
    let mut store = shared.store();
    let keys: Vec<Key> = store
        .list(resource, namespace)
        .filter(|(_, obj)| selectors.matches(obj))
        .map(|(k, _)| k.clone())
        .collect();
    let mut deleted = Vec::new();
    for key in keys {
        match store.object_delete(&key, opts) {
            Ok(obj) => deleted.push(obj),
            // Already removed by an earlier cascade in this same request.
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let rv = store.rv();
    drop(store);
    persisted(
        shared,
        json!({
            "kind": format!("{}List", resource.kind()),
            "apiVersion": resource.api_version(),
            "metadata": { "resourceVersion": rv.to_string() },
            "items": deleted.iter().map(|o| &**o).collect::<Vec<&Value>>(),
        }),
    )
}
