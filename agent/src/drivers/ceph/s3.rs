//! S3 calls signed with a user's own keys, so what they create belongs to that user: RGW has
//! no Admin Ops call that creates a bucket.

use std::time::Duration;

use http::Method;

use super::{
    Ceph, CephError, S3Keys,
    rgw::{Call, Payload, encode, xml_text},
};

/// Deadline of one S3 call. The first bucket of a fresh cluster takes a few seconds while RGW
/// creates its index and data pools.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A bucket's versioning state. Once enabled, S3 versioning can be suspended but never
/// turned off again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: one version per key.
    Unversioned,
    /// Every write keeps the previous version.
    Enabled,
    /// Was enabled; new writes replace the current version, old versions are kept.
    Suspended,
}

impl Ceph {
    /// Creates bucket `bucket` owned by the user of `keys`. Idempotent: the owner creating it
    /// again succeeds. [`CephError::BucketTaken`] when another user owns the name,
    /// [`CephError::QuotaExceeded`] when the user may have no more buckets.
    pub async fn bucket_create(&self, keys: &S3Keys, bucket: &str) -> Result<(), CephError> {
        let call = bucket_call(
            format!("create bucket {bucket}"),
            Method::PUT,
            bucket,
            None,
            Payload::Empty,
        );
        match self.rgw.send(keys, call).await {
            Ok(_) => Ok(()),
            // RGW (16.2) answers the owner 200; S3 outside us-east-1, and RGW set up to act
            // like it, answer this.
            Err(CephError::Rejected { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Turns versioning of `bucket` on, or suspends it (`enabled == false`), as its owner.
    /// Idempotent. Suspending a bucket that was never versioned leaves it
    /// [`Versioning::Suspended`], which behaves as unversioned.
    pub async fn bucket_versioning_set(
        &self,
        keys: &S3Keys,
        bucket: &str,
        enabled: bool,
    ) -> Result<(), CephError> {
        let status = if enabled { "Enabled" } else { "Suspended" };
        let body = format!(
            r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>{status}</Status></VersioningConfiguration>"#
        );
        let call = bucket_call(
            format!("set versioning of bucket {bucket} to {status}"),
            Method::PUT,
            bucket,
            Some("versioning"),
            Payload::Signed(body.as_bytes()),
        );
        self.rgw.send(keys, call).await?;
        Ok(())
    }

    /// The versioning state of `bucket`, read as its owner.
    pub async fn bucket_versioning_get(
        &self,
        keys: &S3Keys,
        bucket: &str,
    ) -> Result<Versioning, CephError> {
        let operation = format!("read versioning of bucket {bucket}");
        let call = bucket_call(
            operation.clone(),
            Method::GET,
            bucket,
            Some("versioning"),
            Payload::Empty,
        );
        let body = self.rgw.send(keys, call).await?;
        match xml_text(&body, "Status") {
            None => Ok(Versioning::Unversioned),
            Some("Enabled") => Ok(Versioning::Enabled),
            Some("Suspended") => Ok(Versioning::Suspended),
            Some(other) => Err(CephError::BadAnswer {
                operation,
                source: format!("unknown versioning status {other:?}").into(),
            }),
        }
    }
}

/// A path-style call on `/{bucket}`, with an optional sub-resource (`?versioning`).
fn bucket_call<'a>(
    operation: String,
    method: Method,
    bucket: &str,
    subresource: Option<&'static str>,
    payload: Payload<'a>,
) -> Call<'a> {
    Call {
        operation,
        method,
        path: format!("/{}", encode(bucket)),
        query: subresource
            .map(|s| (s, String::new()))
            .into_iter()
            .collect(),
        payload,
        timeout: CALL_TIMEOUT,
    }
}
