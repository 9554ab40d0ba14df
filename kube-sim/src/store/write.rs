//! What a write means, shared by the HTTP handlers and the controllers (one code path, so a
//! controller's write obeys the same rules as a client's): server-set metadata (`uid`,
//! `creationTimestamp`, `generation`, `resourceVersion`), the status/spec split of
//! subresources, defaults and validation, optimistic concurrency on `resourceVersion`, no-op
//! detection (an unchanged object keeps its resourceVersion), finalizers, and cascading
//! deletion through `ownerReferences`.
//!
//! Deletion is immediate (no graceful termination): dependents are removed in the same
//! operation, for both `Foreground` and `Background` propagation; `Orphan` strips the owner
//! reference instead.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{Key, Store};
use crate::clock::format_time;
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::resource::Resource;
use crate::{defaults, validate};

/// Which parts of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: everything except `.status` (for kinds with a status subresource).
    Main,
    /// The `status` subresource: only `.status`.
    Status,
    /// A controller's write: everything.
    All,
}

/// Options common to every write.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteOpts {
    pub now: Timestamp,
    /// `dryRun=All`: run every check, store nothing.
    pub dry_run: bool,
}

/// How a delete treats the object's dependents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// A delete request.
#[derive(Clone, Debug)]
pub(crate) struct DeleteOpts {
    pub write: WriteOpts,
    pub propagation: Propagation,
    /// Preconditions: the delete fails with a conflict unless these match.
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// Namespaces a real cluster refuses to delete.
const PROTECTED_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Sets `apiVersion`/`kind`, or rejects a body of another type.
fn check_type(resource: Resource, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest(
            "the request body is not a JSON object".into(),
        ));
    }
    if fields::get(obj, &["metadata"]).is_some_and(|m| !m.is_object()) {
        return Err(ApiError::BadRequest(
            "metadata must be a JSON object".into(),
        ));
    }
    for (field, want) in [
        ("apiVersion", resource.api_version()),
        ("kind", resource.kind()),
    ] {
        match fields::get_str(obj, &[field]) {
            None | Some("") => fields::set(obj, &[field], want.into()),
            Some(got) if got == want => {}
            Some(got) => {
                return Err(ApiError::BadRequest(format!(
                    "the {field} of the object ({got}) does not match the {field} of the requested resource ({want})"
                )));
            }
        }
    }
    Ok(())
}

/// Sets or checks `metadata.<field>` against the value from the URL.
fn check_meta(obj: &mut Value, field: &str, want: &str) -> Result<(), ApiError> {
    match fields::get_str(obj, &["metadata", field]) {
        None | Some("") => {
            if !want.is_empty() {
                fields::set(obj, &["metadata", field], want.into());
            }
            Ok(())
        }
        Some(got) if got == want => Ok(()),
        Some(got) => Err(ApiError::BadRequest(format!(
            "the {field} of the object ({got}) does not match the {field} on the request ({want})"
        ))),
    }
}

/// Everything but `metadata` and `status`: a change here bumps `metadata.generation`.
fn spec_differs(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        fields::remove(&mut v, &["metadata"]);
        fields::remove(&mut v, &["status"]);
        v
    };
    strip(a) != strip(b)
}

fn meta_generation(obj: &Value) -> i64 {
    fields::get(obj, &["metadata", "generation"])
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
    fields::get(obj, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| fields::get_str(r, &["uid"]))
}

impl Store {
    /// Creates an object (POST, or server-side apply of an absent object). Errors: 400 for a
    /// body of the wrong type or namespace, 404 if its namespace does not exist, 409
    /// `AlreadyExists`, 422 `Invalid`.
    pub(crate) fn object_create(
        &mut self,
        resource: Resource,
        namespace: &str,
        mut obj: Value,
        part: Part,
        opts: WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        check_type(resource, &mut obj)?;
        if resource.namespaced() {
            check_meta(&mut obj, "namespace", namespace)?;
        } else {
            fields::remove(&mut obj, &["metadata", "namespace"]);
        }
        if fields::meta(&obj, "name").is_empty() {
            let prefix = fields::meta(&obj, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::Invalid {
                    resource,
                    name: String::new(),
                    causes: vec![Cause::required("metadata.name")],
                });
            }
            let name = format!("{prefix}{}", crate::naming::suffix(self.next_seq()));
            fields::set(&mut obj, &["metadata", "name"], name.into());
        }
        let name = fields::meta(&obj, "name").to_string();
        if resource.namespaced()
            && self
                .get(&Key::new(Resource::Namespace, "", namespace))
                .is_none()
        {
            return Err(ApiError::NotFound {
                resource: Resource::Namespace,
                name: namespace.to_string(),
            });
        }
        let key = Key::new(resource, namespace, &name);
        if self.get(&key).is_some() {
            return Err(ApiError::AlreadyExists { resource, name });
        }
        for field in ["resourceVersion", "deletionTimestamp", "selfLink"] {
            fields::remove(&mut obj, &["metadata", field]);
        }
        let uid = uuid::Uuid::new_v4().to_string();
        fields::set(&mut obj, &["metadata", "uid"], uid.into());
        fields::set(
            &mut obj,
            &["metadata", "creationTimestamp"],
            format_time(opts.now).into(),
        );
        fields::set(&mut obj, &["metadata", "generation"], json!(1));
        if part == Part::Main && resource.info().status_subresource {
            fields::remove(&mut obj, &["status"]);
        }
        defaults::apply(self, resource, &mut obj, None);
        validate::object(resource, &obj, None)?;
        if opts.dry_run {
            return Ok(Arc::new(obj));
        }
        Ok(self.put(key, obj))
    }

    /// Updates an object with `change(current)` (PUT, PATCH, apply, or a controller's write).
    /// `require_rv` (PUT) makes a missing `metadata.resourceVersion` invalid; a present but
    /// stale one is a 409 `Conflict` in every case. An update that changes nothing is not
    /// stored and keeps the resourceVersion. Errors: 404, 409, 400, 422.
    pub(crate) fn object_update(
        &mut self,
        key: &Key,
        part: Part,
        require_rv: bool,
        opts: WriteOpts,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let resource = key.resource;
        let old = self.get(key).cloned().ok_or_else(|| ApiError::NotFound {
            resource,
            name: key.name.clone(),
        })?;
        let mut new = change(&old)?;
        check_type(resource, &mut new)?;
        check_meta(&mut new, "name", &key.name)?;
        if resource.namespaced() {
            check_meta(&mut new, "namespace", &key.namespace)?;
        } else {
            fields::remove(&mut new, &["metadata", "namespace"]);
        }
        let current_rv = fields::meta(&old, "resourceVersion");
        match fields::get_str(&new, &["metadata", "resourceVersion"]) {
            Some(rv) if !rv.is_empty() && rv != current_rv => {
                return Err(ApiError::Conflict {
                    resource,
                    name: key.name.clone(),
                    message: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
            None | Some("") if require_rv => {
                return Err(ApiError::Invalid {
                    resource,
                    name: key.name.clone(),
                    causes: vec![Cause::invalid(
                        "metadata.resourceVersion",
                        "0x0: must be specified for an update",
                    )],
                });
            }
            _ => {}
        }
        let new = match part {
            Part::Status => {
                let mut merged = (*old).clone();
                match fields::get(&new, &["status"]) {
                    Some(status) => fields::set(&mut merged, &["status"], status.clone()),
                    None => {
                        fields::remove(&mut merged, &["status"]);
                    }
                }
                merged
            }
            Part::Main | Part::All => {
                for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
                    match fields::get(&old, &["metadata", field]) {
                        Some(v) => fields::set(&mut new, &["metadata", field], v.clone()),
                        None => {
                            fields::remove(&mut new, &["metadata", field]);
                        }
                    }
                }
                // A body without managedFields keeps the recorded ones (as on a real server).
                if fields::get(&new, &["metadata", "managedFields"]).is_none()
                    && let Some(managed) = fields::get(&old, &["metadata", "managedFields"])
                {
                    fields::set(&mut new, &["metadata", "managedFields"], managed.clone());
                }
                if part == Part::Main && resource.info().status_subresource {
                    match fields::get(&old, &["status"]) {
                        Some(status) => fields::set(&mut new, &["status"], status.clone()),
                        None => {
                            fields::remove(&mut new, &["status"]);
                        }
                    }
                }
                new
            }
        };
        let mut new = new;
        defaults::apply(self, resource, &mut new, Some(&old));
        validate::object(resource, &new, Some(&old))?;
        let generation = meta_generation(&old) + i64::from(spec_differs(&old, &new));
        fields::set(&mut new, &["metadata", "generation"], json!(generation));
        fields::set(
            &mut new,
            &["metadata", "resourceVersion"],
            current_rv.into(),
        );
        if new == *old {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        let finalized = fields::get(&new, &["metadata", "deletionTimestamp"]).is_some()
            && fields::get(&new, &["metadata", "finalizers"])
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let stored = self.put(key.clone(), new);
        if finalized {
            self.remove_with_dependents(key, Propagation::Background);
        }
        Ok(stored)
    }

    /// Deletes an object. With finalizers present it only gains a `deletionTimestamp` (the
    /// object goes when its last finalizer is removed). Errors: 404, 409 on a failed
    /// precondition, 403 for the namespaces a cluster protects.
    pub(crate) fn object_delete(
        &mut self,
        key: &Key,
        opts: &DeleteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let resource = key.resource;
        let current = self.get(key).cloned().ok_or_else(|| ApiError::NotFound {
            resource,
            name: key.name.clone(),
        })?;
        let precondition = |field: &str, want: &Option<String>| -> Result<(), ApiError> {
            match want {
                Some(want) if want != fields::meta(&current, field) => Err(ApiError::Conflict {
                    resource,
                    name: key.name.clone(),
                    message: format!(
                        "Precondition failed: {field} in precondition: {want}, {field} in object meta: {}",
                        fields::meta(&current, field)
                    ),
                }),
                _ => Ok(()),
            }
        };
        precondition("uid", &opts.uid)?;
        precondition("resourceVersion", &opts.resource_version)?;
        if resource == Resource::Namespace && PROTECTED_NAMESPACES.contains(&key.name.as_str()) {
            return Err(ApiError::Forbidden(format!(
                "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                key.name
            )));
        }
        if opts.write.dry_run {
            return Ok(current);
        }
        let has_finalizers = fields::get(&current, &["metadata", "finalizers"])
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if fields::get(&current, &["metadata", "deletionTimestamp"]).is_some() {
                return Ok(current);
            }
            let mut marked = (*current).clone();
            fields::set(
                &mut marked,
                &["metadata", "deletionTimestamp"],
                format_time(opts.write.now).into(),
            );
            return Ok(self.put(key.clone(), marked));
        }
        self.remove_with_dependents(key, opts.propagation)
            .ok_or_else(|| ApiError::NotFound {
                resource,
                name: key.name.clone(),
            })
    }

    /// Removes `key` and, unless orphaning, everything that it owns (transitively) or, for a
    /// namespace, contains. Returns the removed object's final state.
    fn remove_with_dependents(
        &mut self,
        key: &Key,
        propagation: Propagation,
    ) -> Option<Arc<Value>> {
        let removed = self.remove(key)?;
        let uid = fields::meta(&removed, "uid").to_string();
        let contained: Vec<Key> = if key.resource == Resource::Namespace {
            Resource::ALL
                .into_iter()
                .filter(|r| r.namespaced())
                .flat_map(|r| self.list(r, Some(&key.name)).map(|(k, _)| k.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let dependents: Vec<Key> = Resource::ALL
            .into_iter()
            .filter(|r| r.namespaced())
            .flat_map(|r| self.list(r, Some(&key.namespace)))
            .filter(|(_, obj)| owner_uids(obj).any(|u| u == uid))
            .map(|(k, _)| k.clone())
            .collect();
        for dep in contained {
            self.remove_with_dependents(&dep, Propagation::Background);
        }
        for dep in dependents {
            if propagation == Propagation::Orphan {
                let Some(obj) = self.get(&dep) else { continue };
                let mut obj = (**obj).clone();
                if let Some(refs) =
                    fields::get(&obj, &["metadata", "ownerReferences"]).and_then(Value::as_array)
                {
                    let kept: Vec<Value> = refs
                        .iter()
                        .filter(|r| fields::get_str(r, &["uid"]) != Some(uid.as_str()))
                        .cloned()
                        .collect();
                    fields::set(
                        &mut obj,
                        &["metadata", "ownerReferences"],
                        Value::Array(kept),
                    );
                }
                self.put(dep, obj);
            } else {
                self.remove_with_dependents(&dep, propagation);
            }
        }
        Some(removed)
    }
}
