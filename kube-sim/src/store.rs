//! The object store: every object the simulated cluster holds, the cluster-wide
//! resourceVersion counter and the watch hub. Objects are kept as JSON (`serde_json::Value`),
//! exactly as a client sent them plus server-set fields, so unknown fields round-trip like on
//! a real server.
//!
//! Durable (when a state path is configured, see [`persist`]): the objects, the
//! resourceVersion counter and the name-suffix sequence. Derived or volatile: the watch
//! history (a watch from a pre-restart resourceVersion gets `410 Expired`, and kube-rs
//! relists) and the subscribers.
//!
//! This module only stores and notifies; the API semantics of a write (generation, defaults,
//! validation, cascading delete) live in [`write`].

pub(crate) mod persist;
pub(crate) mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::fields;
use crate::resource::Resource;
use crate::watch::{Change, ChangeKind, WatchHub};

/// Where an object lives: resource type, namespace (empty for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub resource: Resource,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub(crate) fn new(resource: Resource, namespace: &str, name: &str) -> Key {
        Key {
            resource,
            namespace: if resource.namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

/// The stored objects, the resourceVersion counter and the watch hub.
pub(crate) struct Store {
    objects: BTreeMap<Key, Arc<Value>>,
    /// The objects each object controls, by its uid: controllers find theirs without
    /// scanning every object of the kind.
    controlled: HashMap<String, BTreeSet<Key>>,
    rv: u64,
    seq: u64,
    hub: WatchHub,
}

/// Counts only: objects include Secrets, which must never reach a log.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.objects.len())
            .field("rv", &self.rv)
            .field("hub", &self.hub)
            .finish()
    }
}

impl Store {
    /// A store holding `objects`, whose latest change was `rv`.
    pub(crate) fn with_objects(rv: u64, seq: u64, objects: BTreeMap<Key, Arc<Value>>) -> Store {
        let mut controlled: HashMap<String, BTreeSet<Key>> = HashMap::new();
        for (key, obj) in &objects {
            if let Some(owner) = controller_uid(obj) {
                controlled
                    .entry(owner.to_owned())
                    .or_default()
                    .insert(key.clone());
            }
        }
        Store {
            objects,
            controlled,
            rv,
            seq,
            hub: WatchHub::new(rv),
        }
    }

    /// The cluster-wide resourceVersion: the version of the latest change.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The next value of a persistent sequence, used for generated name suffixes and
    /// cluster IPs (deterministic across runs, unlike random suffixes).
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn hub_mut(&mut self) -> &mut WatchHub {
        &mut self.hub
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Arc<Value>> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or (with `None`) all, ordered by
    /// namespace and name.
    pub(crate) fn list<'a>(
        &'a self,
        resource: Resource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let start = Key {
            resource,
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(k, _)| {
            k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// The objects of `resource` whose controlling owner has uid `owner`.
    pub(crate) fn controlled_by<'a>(
        &'a self,
        owner: &str,
        resource: Resource,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        self.controlled
            .get(owner)
            .into_iter()
            .flatten()
            .filter(move |k| k.resource == resource)
            .filter_map(|k| Some((k, self.objects.get(k)?)))
    }

    /// Keeps [`Store::controlled_by`]'s index in step with a change of `key` from `old`
    /// to `new`.
    fn index(&mut self, key: &Key, old: Option<&Value>, new: Option<&Value>) {
        let (was, is) = (old.and_then(controller_uid), new.and_then(controller_uid));
        if was == is {
            return;
        }
        if let Some(was) = was
            && let Some(keys) = self.controlled.get_mut(was)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.controlled.remove(was);
            }
        }
        if let Some(is) = is {
            self.controlled
                .entry(is.to_owned())
                .or_default()
                .insert(key.clone());
        }
    }

    /// Every stored object (for persistence).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Value>> {
        self.objects.values()
    }

    /// Stores `obj` under `key` with a new resourceVersion and notifies watchers. The caller
    /// has checked that the object actually changed.
    pub(crate) fn put(&mut self, key: Key, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        fields::set(
            &mut obj,
            &["metadata", "resourceVersion"],
            self.rv.to_string().into(),
        );
        let new = Arc::new(obj);
        let old = self.objects.insert(key.clone(), new.clone());
        self.index(&key, old.as_deref(), Some(&new));
        let kind = if old.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.hub.publish(Change {
            rv: self.rv,
            resource: key.resource,
            namespace: key.namespace,
            kind,
            old,
            new: new.clone(),
        });
        new
    }

    /// Removes the object under `key`, notifying watchers; returns its final state (with the
    /// deletion's resourceVersion).
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        self.index(key, Some(&old), None);
        self.rv += 1;
        let mut last = (*old).clone();
        fields::set(
            &mut last,
            &["metadata", "resourceVersion"],
            self.rv.to_string().into(),
        );
        let last = Arc::new(last);
        self.hub.publish(Change {
            rv: self.rv,
            resource: key.resource,
            namespace: key.namespace.clone(),
            kind: ChangeKind::Deleted,
            old: Some(old),
            new: last.clone(),
        });
        Some(last)
    }
}

/// The uid of an object's controlling owner.
pub(crate) fn controller_uid(obj: &Value) -> Option<&str> {
    fields::get(obj, &["metadata", "ownerReferences"])?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| fields::get_str(r, &["uid"]))
}
