//! Managed buckets: each one a bucket owned by its own RGW user (whose secret key the tenant
//! chose), with a quota and optional versioning, in the datacenter's Ceph. RGW is not level
//! triggered like Kubernetes, so a bucket is converged once per generation: every call is
//! idempotent, and a generation that failed half-way is simply done again.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use outpost_domain::{desired::ManagedWorkload, managed::Observation, provider::BucketRun};
use serde_json::{Map, Value, json};

use crate::drivers::ceph::{
    Ceph, CephError, CephErrorKind, Quota, QuotaTarget, S3Keys, SecretKey, Versioning,
};

/// What the agent says when a bucket is asked of a datacenter without object storage.
pub const NO_OBJECT_STORAGE: &str = "this datacenter has no object storage: its agent runs without a Ceph object gateway \
     (give it --rgw-endpoint, --rgw-access-key and --rgw-secret-key)";

/// The RGW user owning a managed bucket: from the service's uid, so a service deleted and
/// created again under the same name never shares a user with its predecessor.
pub fn user_id(m: &ManagedWorkload) -> String {
    format!("outpost-{}", m.uid)
}

/// The bucket user's access key: 20 characters, like AWS's, unique because it comes from
/// the uid. An identifier, not a secret: it is shown in the details.
pub fn access_key(m: &ManagedWorkload) -> String {
    let hex: String = m
        .uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(17)
        .collect();
    format!("OPB{hex}")
}

/// Since when each managed service's operation (at its generation) has made no headway, so
/// that one stuck in the datacenter fails with a reason instead of hanging forever.
#[derive(Debug)]
pub struct Stalls {
    limit: Duration,
    since: HashMap<(String, i64), Instant>,
}

impl Stalls {
    /// Operations fail after `limit` without headway.
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            since: HashMap::new(),
        }
    }

    /// Records that the operation of `service` at `generation` is still under way; the
    /// reason to fail it once it has been so for longer than the limit.
    pub fn overdue(&mut self, service: &str, generation: i64, doing: &str) -> Option<String> {
        let since = *self
            .since
            .entry((service.to_owned(), generation))
            .or_insert_with(Instant::now);
        (since.elapsed() >= self.limit).then(|| {
            format!(
                "{doing}, and no headway in {} s (the agent's progress deadline)",
                self.limit.as_secs()
            )
        })
    }

    /// Forgets the operation: it ended.
    pub fn done(&mut self, service: &str, generation: i64) {
        self.since.remove(&(service.to_owned(), generation));
    }

    /// Forgets every operation `wanted` no longer asks for (superseded generations,
    /// services gone from the desired state).
    pub fn keep_only(&mut self, wanted: impl Fn(&str, i64) -> bool) {
        self.since
            .retain(|(service, generation), _| wanted(service, *generation));
    }
}

/// Carries out managed buckets.
pub struct Buckets {
    ceph: Option<Ceph>,
    /// When each bucket (by service) was last compared with Ceph.
    checked: std::sync::Mutex<HashMap<String, Instant>>,
}

/// What converging a bucket found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What the agent saw.
    pub observation: Observation,
    /// For a person.
    pub message: String,
    /// What clients need (endpoint, bucket, access key) once it is ready.
    pub details: Map<String, Value>,
}

impl Buckets {
    /// Buckets in `ceph` (none when the datacenter has no object storage).
    pub fn new(ceph: Option<Ceph>) -> Self {
        Self {
            ceph,
            checked: std::sync::Mutex::default(),
        }
    }

    /// Restores what someone changed in Ceph behind the agent's back (a quota, versioning,
    /// the user's keys or bucket limit) of ready bucket `m`, comparing at most every `every`:
    /// what was changed and is restored; empty if nothing was, or it was not compared now.
    /// Errors: Ceph's, comparing or restoring.
    pub async fn repair(
        &self,
        m: &ManagedWorkload,
        run: &BucketRun,
        every: Duration,
    ) -> Result<Vec<&'static str>, CephError> {
        let Some(ceph) = &self.ceph else {
            return Ok(vec![]);
        };
        let key = m.service.to_string();
        {
            let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
            if checked.get(&key).is_some_and(|at| at.elapsed() < every) {
                return Ok(vec![]);
            }
            checked.insert(key, Instant::now());
        }
        let changed = drifted(ceph, m, run).await?;
        if !changed.is_empty() {
            apply(ceph, m, run).await?;
        }
        Ok(changed)
    }

    /// Forgets the buckets `wanted` no longer asks for.
    pub fn keep_only(&self, wanted: impl Fn(&str) -> bool) {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|service, _| wanted(service));
    }

    /// Makes Ceph hold what `m` (whose run is `run`) asks at its generation, or removes it
    /// all when it is being deleted. An unreachable Ceph is progress still to make: retried
    /// until `stalls` gives up on it.
    pub async fn converge(&self, m: &ManagedWorkload, run: &BucketRun) -> Outcome {
        let Some(ceph) = &self.ceph else {
            return outcome(
                Observation::Failed(NO_OBJECT_STORAGE.into()),
                NO_OBJECT_STORAGE,
            );
        };
        let result = if m.deleting {
            remove(ceph, m).await.map(|()| {
                outcome(
                    Observation::Gone,
                    "the bucket, every object in it and its user are removed",
                )
            })
        } else {
            apply(ceph, m, run).await.map(|details| Outcome {
                observation: Observation::Ready,
                message: format!("bucket {} ready", m.name),
                details,
            })
        };
        match result {
            Ok(done) => done,
            Err(e) if e.kind() == CephErrorKind::Unreachable => {
                outcome(Observation::Progressing, &e.to_string())
            }
            Err(e) => {
                let why = e.to_string();
                outcome(Observation::Failed(why.clone()), &why)
            }
        }
    }
}

fn outcome(observation: Observation, message: &str) -> Outcome {
    Outcome {
        observation,
        message: message.to_owned(),
        details: Map::new(),
    }
}

/// The user with the tenant's keys, the bucket, its quota and its versioning.
async fn apply(
    ceph: &Ceph,
    m: &ManagedWorkload,
    run: &BucketRun,
) -> Result<Map<String, Value>, CephError> {
    let user = user_id(m);
    let keys = S3Keys {
        access_key: access_key(m),
        secret_key: SecretKey::new(run.secret_key.clone()),
    };
    ceph.user_create(&user, &m.service.to_string(), Some(&keys))
        .await?;
    // Read as its owner: absent, or someone else's, it is to be created.
    let current = match ceph.bucket_versioning_get(&keys, &m.name).await {
        Ok(versioning) => versioning,
        Err(e)
            if matches!(
                e.kind(),
                CephErrorKind::NotFound | CephErrorKind::AccessDenied
            ) =>
        {
            // Its one bucket, made with its own keys (a name someone else holds is refused
            // here, saying so).
            ceph.user_max_buckets_set(&user, 1).await?;
            ceph.bucket_create(&keys, &m.name).await?;
            Versioning::Unversioned
        }
        Err(e) => return Err(e),
    };
    // Then none more: the tenant's keys can make no bucket Outpost does not track.
    ceph.user_max_buckets_set(&user, NO_MORE_BUCKETS).await?;
    let quota = quota_of(run);
    ceph.quota_set(
        QuotaTarget::Bucket {
            uid: &user,
            bucket: &m.name,
        },
        quota,
    )
    .await?;
    // And on the user too, so the quota bounds whatever its keys can write.
    ceph.quota_set(QuotaTarget::User { uid: &user }, quota)
        .await?;
    // Versioning once enabled can only be suspended; a never-versioned bucket stays so.
    if run.versioning != (current == Versioning::Enabled)
        && (run.versioning || current != Versioning::Unversioned)
    {
        ceph.bucket_versioning_set(&keys, &m.name, run.versioning)
            .await?;
    }
    let mut details = m.details.clone();
    details.insert(
        "endpoint".into(),
        json!(ceph.endpoint().to_string().trim_end_matches('/')),
    );
    details.insert("bucket".into(), json!(m.name));
    details.insert("access_key".into(), json!(keys.access_key));
    Ok(details)
}

/// RGW's `max-buckets` for a user that may create no bucket (beyond those it owns).
const NO_MORE_BUCKETS: i64 = -1;

fn quota_of(run: &BucketRun) -> Quota {
    Quota {
        enabled: true,
        max_size_bytes: Some(run.quota_bytes),
        max_objects: None,
    }
}

/// The bucket's settings that differ in Ceph from what `run` asks, named for a person
/// (`quota`, `versioning`, …): what someone changed there behind the agent's back.
async fn drifted(
    ceph: &Ceph,
    m: &ManagedWorkload,
    run: &BucketRun,
) -> Result<Vec<&'static str>, CephError> {
    let user = user_id(m);
    let keys = S3Keys {
        access_key: access_key(m),
        secret_key: SecretKey::new(run.secret_key.clone()),
    };
    let mut changed = Vec::new();
    let Some(owner) = ceph.user_get(&user).await? else {
        return Ok(vec!["user"]);
    };
    if !owner.keys.contains(&keys) {
        changed.push("keys");
    }
    if owner.max_buckets != NO_MORE_BUCKETS {
        changed.push("bucket limit");
    }
    let wanted = quota_of(run);
    match ceph.bucket_stats(&m.name).await {
        Ok(stats) if stats.owner == user && stats.quota == wanted => {}
        Ok(stats) if stats.owner == user => changed.push("quota"),
        Ok(_) => changed.push("owner"),
        Err(e) if e.kind() == CephErrorKind::NotFound => return Ok(vec!["bucket"]),
        Err(e) => return Err(e),
    }
    if ceph.quota_get(QuotaTarget::User { uid: &user }).await? != wanted {
        changed.push("user quota");
    }
    let versioned = ceph.bucket_versioning_get(&keys, &m.name).await? == Versioning::Enabled;
    if versioned != run.versioning {
        changed.push("versioning");
    }
    Ok(changed)
}

/// The bucket with every object and version, then its user.
async fn remove(ceph: &Ceph, m: &ManagedWorkload) -> Result<(), CephError> {
    ceph.bucket_delete(&m.name).await?;
    ceph.user_delete(&user_id(m)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_without_headway_fails_after_the_limit_and_only_then() {
        let mut patient = Stalls::new(Duration::from_secs(3600));
        assert_eq!(patient.overdue("db", 1, "waiting for its volume"), None);
        let mut impatient = Stalls::new(Duration::ZERO);
        let why = impatient
            .overdue("db", 1, "waiting for its volume")
            .expect("overdue");
        assert!(why.starts_with("waiting for its volume"), "{why}");
        // Each generation has its own clock; superseded and finished ones are forgotten.
        patient.overdue("db", 2, "applying");
        patient.keep_only(|_, generation| generation == 2);
        patient.done("db", 2);
        assert!(patient.since.is_empty());
    }
}
