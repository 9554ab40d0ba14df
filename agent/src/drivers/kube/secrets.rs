//! Drift of Secrets. The agent writes Secrets but may not read them: its role grants no
//! `get`, `list` or `watch` on secrets, for the cluster's other secrets are none of its
//! business. So it cannot compare a Secret with what it applies, as it does its other
//! objects. Instead it applies each again every so often and compares the resourceVersion
//! the API server answers with the one its own previous apply left: an apply that changes
//! nothing keeps the version, so a new one means someone changed the Secret in between.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Secret;

/// A Secret of `namespace` by `name`.
type SecretKey = (String, String);

/// The version each Secret was at when the agent last applied it, and when that was.
#[derive(Debug, Default)]
pub struct Applied {
    versions: Mutex<BTreeMap<SecretKey, (String, Instant)>>,
}

impl Applied {
    /// Remembers that the agent's apply left Secret `name` at `version`; returns the version
    /// it was at after the agent's previous apply, if one is remembered.
    pub fn record(&self, namespace: &str, name: &str, version: String) -> Option<String> {
        self.lock()
            .insert(
                (namespace.to_owned(), name.to_owned()),
                (version, Instant::now()),
            )
            .map(|(previous, _)| previous)
    }

    /// Forgets a Secret the agent deleted.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock().remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Whether the Secret has not been applied for `every`, or not since the agent started.
    pub fn due(&self, namespace: &str, name: &str, every: Duration) -> bool {
        self.lock()
            .get(&(namespace.to_owned(), name.to_owned()))
            .is_none_or(|(_, at)| at.elapsed() >= every)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SecretKey, (String, Instant)>> {
        // The map stays whole if a holder panicked: every change is one insert or remove.
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A Secret due to be applied again.
#[derive(Clone)]
pub struct Due {
    /// Its namespace.
    pub namespace: String,
    /// The Outpost resource it belongs to, for the event.
    pub resource: String,
    /// What the agent applies.
    pub secret: Secret,
}

/// Names only: a Secret's values must never reach a log.
impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Due")
            .field("namespace", &self.namespace)
            .field("name", &self.secret.metadata.name)
            .field("resource", &self.resource)
            .finish()
    }
}

/// The event's words for Secret `name`, restored after someone changed it.
pub fn restored(name: &str) -> String {
    format!("Secret {name}: changed outside Outpost; its values restored.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_due_until_applied_and_again_once_its_time_is_up() {
        let applied = Applied::default();
        assert!(applied.due("ns", "web-secrets", Duration::from_secs(30)));
        assert_eq!(applied.record("ns", "web-secrets", "7".into()), None);
        assert!(!applied.due("ns", "web-secrets", Duration::from_secs(30)));
        assert!(applied.due("ns", "web-secrets", Duration::ZERO));
        assert_eq!(
            applied.record("ns", "web-secrets", "9".into()).as_deref(),
            Some("7")
        );
        applied.forget("ns", "web-secrets");
        assert!(applied.due("ns", "web-secrets", Duration::from_secs(30)));
    }
}
