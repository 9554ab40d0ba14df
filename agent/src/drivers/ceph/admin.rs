//! RGW Admin Ops, signed with the admin keys: users and their keys, quotas, bucket stats and
//! bucket removal. Every mutation is idempotent: repeating it converges on the same state.

use std::time::Duration;

use http::Method;
use serde::Deserialize;

use super::{
    Ceph, CephError, S3Keys, SecretKey,
    rgw::{Call, Payload, encode},
};

/// Deadline of an ordinary Admin Ops call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Deadline of a call that removes data (a user's or a bucket's objects), which RGW does
/// object by object before it answers. Past it RGW carries on; repeating the call finishes.
const PURGE_TIMEOUT: Duration = Duration::from_secs(600);

/// An RGW user as Admin Ops reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgwUser {
    /// The user id.
    pub uid: String,
    /// Its display name.
    pub display_name: String,
    /// Its S3 keys.
    pub keys: Vec<S3Keys>,
    /// How many buckets it may own: 0 for no limit, negative for none beyond those it has.
    pub max_buckets: i64,
}

/// A quota. RGW checks it on every write: a PUT that would pass it fails with
/// `QuotaExceeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    /// Whether RGW enforces it.
    pub enabled: bool,
    /// Most bytes stored; `None` is unlimited.
    pub max_size_bytes: Option<u64>,
    /// Most objects; `None` is unlimited.
    pub max_objects: Option<u64>,
}

/// What a quota applies to.
#[derive(Debug, Clone, Copy)]
pub enum QuotaTarget<'a> {
    /// Everything the user stores, across its buckets.
    User {
        /// The user id.
        uid: &'a str,
    },
    /// Each of the user's buckets (that has no quota of its own), separately.
    EachBucketOf {
        /// The user id.
        uid: &'a str,
    },
    /// One bucket.
    Bucket {
        /// The bucket's owner.
        uid: &'a str,
        /// The bucket.
        bucket: &'a str,
    },
}

/// A bucket's owner, usage and quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStats {
    /// The bucket.
    pub bucket: String,
    /// The user id owning it.
    pub owner: String,
    /// Bytes stored (the objects' sizes, all versions and unfinished uploads included).
    pub size_bytes: u64,
    /// Bytes allocated for them (sizes rounded up to RGW's allocation unit).
    pub allocated_bytes: u64,
    /// Objects stored, counted as `size_bytes` is.
    pub objects: u64,
    /// The bucket's own quota.
    pub quota: Quota,
}

impl Ceph {
    /// Creates user `uid` with `keys`, or with a key pair RGW generates when `keys` is
    /// `None`. Idempotent: if the user exists, `keys` are set on it (a changed secret
    /// replaces the old one) and the user is returned. [`CephError::KeyTaken`] when the
    /// access key is another user's.
    pub async fn user_create(
        &self,
        uid: &str,
        display_name: &str,
        keys: Option<&S3Keys>,
    ) -> Result<RgwUser, CephError> {
        let mut query = vec![
            ("uid", uid.to_owned()),
            ("display-name", display_name.to_owned()),
            ("format", "json".to_owned()),
        ];
        if let Some(keys) = keys {
            query.push(("access-key", keys.access_key.clone()));
            query.push(("secret-key", keys.secret_key.expose().to_owned()));
        }
        let operation = format!("create user {uid}");
        match self.admin(Method::PUT, "user", query, operation).await {
            Ok(body) => parse_user(&body, format!("create user {uid}")),
            Err(CephError::Rejected { code, .. }) if code == "UserAlreadyExists" => {
                if let Some(keys) = keys {
                    self.user_key_set(uid, keys).await?;
                }
                self.user_get(uid)
                    .await?
                    .ok_or_else(|| CephError::NotFound {
                        operation: format!("create user {uid}"),
                        code: "NoSuchUser".to_owned(),
                    })
            }
            Err(e) => Err(e),
        }
    }

    /// User `uid`, or `None` if there is none.
    pub async fn user_get(&self, uid: &str) -> Result<Option<RgwUser>, CephError> {
        let query = vec![("uid", uid.to_owned()), ("format", "json".to_owned())];
        let operation = format!("read user {uid}");
        match self
            .admin(Method::GET, "user", query, operation.clone())
            .await
        {
            Ok(body) => parse_user(&body, operation).map(Some),
            Err(CephError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets S3 key `keys.access_key` of user `uid` to `keys.secret_key`, adding it if the
    /// user lacks it; the user's other keys stay. Idempotent. [`CephError::KeyTaken`] when
    /// the access key is another user's.
    pub async fn user_key_set(&self, uid: &str, keys: &S3Keys) -> Result<(), CephError> {
        let query = vec![
            ("key", String::new()),
            ("uid", uid.to_owned()),
            ("key-type", "s3".to_owned()),
            ("access-key", keys.access_key.clone()),
            ("secret-key", keys.secret_key.expose().to_owned()),
            ("format", "json".to_owned()),
        ];
        let operation = format!("set a key of user {uid}");
        self.admin(Method::PUT, "user", query, operation).await?;
        Ok(())
    }

    /// Sets how many buckets user `uid` may own: 0 for no limit, a negative number for none
    /// beyond those it has (it can create no bucket). Idempotent.
    pub async fn user_max_buckets_set(&self, uid: &str, max: i64) -> Result<(), CephError> {
        let query = vec![
            ("uid", uid.to_owned()),
            ("max-buckets", max.to_string()),
            ("format", "json".to_owned()),
        ];
        let operation = format!("limit the buckets of user {uid}");
        self.admin(Method::POST, "user", query, operation).await?;
        Ok(())
    }

    /// Deletes user `uid` with its buckets and all their objects; its keys stop working at
    /// once. Idempotent: a missing user is already deleted. Large data may outlast
    /// [`PURGE_TIMEOUT`] (an `Unreachable` error); repeating the call finishes it.
    pub async fn user_delete(&self, uid: &str) -> Result<(), CephError> {
        let query = vec![
            ("uid", uid.to_owned()),
            ("purge-data", "true".to_owned()),
            ("format", "json".to_owned()),
        ];
        let call = Call {
            operation: format!("delete user {uid}"),
            method: Method::DELETE,
            path: "/admin/user".to_owned(),
            query,
            payload: Payload::Empty,
            timeout: PURGE_TIMEOUT,
        };
        absent_is_done(self.rgw.send(&self.admin, call).await)
    }

    /// Sets the quota on `target`. Idempotent.
    pub async fn quota_set(&self, target: QuotaTarget<'_>, quota: Quota) -> Result<(), CephError> {
        let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let operation = format!("set the quota of {target}");
        match target {
            QuotaTarget::User { uid } | QuotaTarget::EachBucketOf { uid } => {
                let query = vec![
                    ("quota", String::new()),
                    ("uid", uid.to_owned()),
                    ("quota-type", target.quota_type().to_owned()),
                    ("enabled", quota.enabled.to_string()),
                    ("max-size", limit(quota.max_size_bytes).to_string()),
                    ("max-objects", limit(quota.max_objects).to_string()),
                ];
                self.admin(Method::PUT, "user", query, operation).await?;
            }
            // A single bucket's quota is only settable with a JSON body.
            QuotaTarget::Bucket { uid, bucket } => {
                let body = serde_json::json!({
                    "enabled": quota.enabled,
                    "max_size": limit(quota.max_size_bytes),
                    "max_objects": limit(quota.max_objects),
                })
                .to_string();
                let call = Call {
                    operation,
                    method: Method::PUT,
                    path: "/admin/bucket".to_owned(),
                    query: vec![
                        ("quota", String::new()),
                        ("uid", uid.to_owned()),
                        ("bucket", bucket.to_owned()),
                    ],
                    payload: Payload::Unsigned(body.as_bytes()),
                    timeout: CALL_TIMEOUT,
                };
                self.rgw.send(&self.admin, call).await?;
            }
        }
        Ok(())
    }

    /// The quota on `target`.
    pub async fn quota_get(&self, target: QuotaTarget<'_>) -> Result<Quota, CephError> {
        let operation = format!("read the quota of {target}");
        match target {
            QuotaTarget::User { uid } | QuotaTarget::EachBucketOf { uid } => {
                let query = vec![
                    ("quota", String::new()),
                    ("uid", uid.to_owned()),
                    ("quota-type", target.quota_type().to_owned()),
                    ("format", "json".to_owned()),
                ];
                let body = self
                    .admin(Method::GET, "user", query, operation.clone())
                    .await?;
                parse::<QuotaJson>(&body, operation).map(Quota::from)
            }
            QuotaTarget::Bucket { bucket, .. } => Ok(self.bucket_stats(bucket).await?.quota),
        }
    }

    /// Bucket `bucket`'s owner, usage and quota. [`CephError::NotFound`] if there is none.
    pub async fn bucket_stats(&self, bucket: &str) -> Result<BucketStats, CephError> {
        let query = vec![
            ("bucket", bucket.to_owned()),
            ("stats", "true".to_owned()),
            ("format", "json".to_owned()),
        ];
        let operation = format!("read the stats of bucket {bucket}");
        let body = self
            .admin(Method::GET, "bucket", query, operation.clone())
            .await?;
        let stats: BucketJson = parse(&body, operation)?;
        let usage = stats.usage.values();
        Ok(BucketStats {
            size_bytes: usage.clone().map(|u| u.size).sum(),
            allocated_bytes: usage.clone().map(|u| u.size_actual).sum(),
            objects: usage.map(|u| u.num_objects).sum(),
            bucket: stats.bucket,
            owner: stats.owner,
            quota: stats.bucket_quota.into(),
        })
    }

    /// Deletes bucket `bucket` with all its objects, every version and unfinished upload,
    /// whoever owns it. Idempotent: a missing bucket is already deleted. RGW frees the
    /// tails of large objects later, in its garbage collection.
    pub async fn bucket_delete(&self, bucket: &str) -> Result<(), CephError> {
        let call = Call {
            operation: format!("delete bucket {bucket}"),
            method: Method::DELETE,
            path: "/admin/bucket".to_owned(),
            query: vec![
                ("bucket", bucket.to_owned()),
                ("purge-objects", "true".to_owned()),
                ("format", "json".to_owned()),
            ],
            payload: Payload::Empty,
            timeout: PURGE_TIMEOUT,
        };
        absent_is_done(self.rgw.send(&self.admin, call).await)
    }

    /// One bodiless Admin Ops call on `/admin/{resource}` under the ordinary deadline.
    async fn admin(
        &self,
        method: Method,
        resource: &str,
        query: Vec<(&'static str, String)>,
        operation: String,
    ) -> Result<bytes::Bytes, CephError> {
        let call = Call {
            operation,
            method,
            path: format!("/admin/{}", encode(resource)),
            query,
            payload: Payload::Empty,
            timeout: CALL_TIMEOUT,
        };
        self.rgw.send(&self.admin, call).await
    }
}

impl QuotaTarget<'_> {
    fn quota_type(&self) -> &'static str {
        match self {
            Self::User { .. } => "user",
            Self::EachBucketOf { .. } | Self::Bucket { .. } => "bucket",
        }
    }
}

impl std::fmt::Display for QuotaTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User { uid } => write!(f, "user {uid}"),
            Self::EachBucketOf { uid } => write!(f, "each bucket of user {uid}"),
            Self::Bucket { bucket, .. } => write!(f, "bucket {bucket}"),
        }
    }
}

/// Deleting what is already gone succeeds.
fn absent_is_done(result: Result<bytes::Bytes, CephError>) -> Result<(), CephError> {
    match result {
        Ok(_) | Err(CephError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], operation: String) -> Result<T, CephError> {
    serde_json::from_slice(body).map_err(|e| CephError::BadAnswer {
        operation,
        source: e.into(),
    })
}

fn parse_user(body: &[u8], operation: String) -> Result<RgwUser, CephError> {
    #[derive(Deserialize)]
    struct UserJson {
        user_id: String,
        display_name: String,
        #[serde(default)]
        keys: Vec<KeyJson>,
        max_buckets: i64,
    }
    #[derive(Deserialize)]
    struct KeyJson {
        access_key: String,
        secret_key: String,
    }
    let user: UserJson = parse(body, operation)?;
    Ok(RgwUser {
        uid: user.user_id,
        display_name: user.display_name,
        keys: user
            .keys
            .into_iter()
            .map(|k| S3Keys {
                access_key: k.access_key,
                secret_key: SecretKey::new(k.secret_key),
            })
            .collect(),
        max_buckets: user.max_buckets,
    })
}

/// RGW's quota document; a negative limit means none.
#[derive(Deserialize)]
struct QuotaJson {
    enabled: bool,
    max_size: i64,
    max_objects: i64,
}

impl From<QuotaJson> for Quota {
    fn from(q: QuotaJson) -> Self {
        Self {
            enabled: q.enabled,
            max_size_bytes: u64::try_from(q.max_size).ok(),
            max_objects: u64::try_from(q.max_objects).ok(),
        }
    }
}

#[derive(Deserialize)]
struct BucketJson {
    bucket: String,
    owner: String,
    /// Per category (`rgw.main` for objects, `rgw.multimeta` for unfinished uploads); empty
    /// for a bucket never written to.
    #[serde(default)]
    usage: std::collections::BTreeMap<String, UsageJson>,
    bucket_quota: QuotaJson,
}

#[derive(Deserialize)]
struct UsageJson {
    size: u64,
    size_actual: u64,
    num_objects: u64,
}
