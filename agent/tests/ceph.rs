//! The Ceph driver against a real single-node Ceph (mon, mgr, OSD, RADOS Gateway) started
//! by `scripts/ceph`, which `scripts/test` runs. Objects are written and read with a second,
//! independent S3 client (`rusty-s3` presigned URLs), as a tenant's application would.
//!
//! Without `OUTPOST_TEST_CEPH_CONF` and `OUTPOST_TEST_RGW_*` every test fails and names
//! them: Ceph runs are never skipped silently.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use outpost_agent::drivers::ceph::{
    Ceph, CephConfig, CephError, CephErrorKind, Quota, QuotaTarget, S3Keys, SecretKey, Versioning,
};

const VARS: [&str; 4] = [
    "OUTPOST_TEST_CEPH_CONF",
    "OUTPOST_TEST_RGW_ENDPOINT",
    "OUTPOST_TEST_RGW_ACCESS_KEY",
    "OUTPOST_TEST_RGW_SECRET_KEY",
];

/// The configuration of the Ceph that `scripts/ceph` started.
fn config() -> CephConfig {
    let [conf, endpoint, access_key, secret_key] = VARS.map(|name| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: these tests need a real Ceph. Start one with \
                 `eval \"$(scripts/ceph)\"` (scripts/test does), which sets {}",
                VARS.join(", ")
            )
        })
    });
    CephConfig {
        rgw_endpoint: endpoint
            .parse()
            .expect("OUTPOST_TEST_RGW_ENDPOINT is a URI"),
        admin_access_key: access_key,
        admin_secret_key: SecretKey::new(secret_key),
        ceph_conf: Some(conf.into()),
    }
}

fn ceph() -> Ceph {
    Ceph::new(config()).unwrap()
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// Keys a tenant would choose: the access key is RGW-style, the secret anything long.
fn tenant_keys() -> S3Keys {
    S3Keys {
        access_key: unique("AK").to_uppercase(),
        secret_key: SecretKey::new(format!("{}{}", unique("secret"), unique("x"))),
    }
}

/// An ordinary S3 client: presigned URLs from `rusty-s3`, sent over plain HTTP. It shares
/// nothing with the driver's signing.
struct S3Client {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl S3Client {
    fn new(bucket: &str, keys: &S3Keys) -> Self {
        let endpoint = config().rgw_endpoint.to_string();
        Self {
            bucket: rusty_s3::Bucket::new(
                endpoint.parse().unwrap(),
                rusty_s3::UrlStyle::Path,
                bucket.to_owned(),
                "us-east-1",
            )
            .unwrap(),
            credentials: rusty_s3::Credentials::new(
                keys.access_key.clone(),
                keys.secret_key.expose().to_owned(),
            ),
            http: Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// PUTs `body` as `key`; the status and body of RGW's answer.
    async fn put(&self, key: &str, body: Vec<u8>) -> (StatusCode, String) {
        use rusty_s3::S3Action as _;
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        self.send(http::Method::PUT, url.as_str(), body).await
    }

    async fn get(&self, key: &str) -> (StatusCode, String) {
        use rusty_s3::S3Action as _;
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(Duration::from_secs(60));
        self.send(http::Method::GET, url.as_str(), Vec::new()).await
    }

    async fn send(&self, method: http::Method, url: &str, body: Vec<u8>) -> (StatusCode, String) {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), self.http.request(request))
            .await
            .expect("RGW answers within 30 s")
            .unwrap();
        let status = answer.status();
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

#[tokio::test]
async fn a_tenants_bucket_lives_and_dies_with_its_user_and_keys() {
    let ceph = ceph();
    let uid = unique("tenant");
    let bucket = unique("bucket");
    let keys = tenant_keys();

    let user = ceph
        .user_create(&uid, "A tenant", Some(&keys))
        .await
        .unwrap();
    assert_eq!(user.uid, uid);
    assert!(
        user.keys.contains(&keys),
        "the tenant's keys are the user's"
    );
    let shown = format!("{user:?} {keys:?} {:?} {ceph:?}", config());
    assert!(!shown.contains(keys.secret_key.expose()), "{shown}");
    assert!(
        !shown.contains(config().admin_secret_key.expose()),
        "{shown}"
    );
    // Creating it again (a replayed desired state) changes nothing.
    let again = ceph
        .user_create(&uid, "A tenant", Some(&keys))
        .await
        .unwrap();
    assert_eq!(again, user);
    assert_eq!(ceph.user_get(&uid).await.unwrap(), Some(user));

    let quota = Quota {
        enabled: true,
        max_size_bytes: Some(1 << 20),
        max_objects: Some(3),
    };
    ceph.quota_set(QuotaTarget::User { uid: &uid }, quota)
        .await
        .unwrap();
    assert_eq!(
        ceph.quota_get(QuotaTarget::User { uid: &uid })
            .await
            .unwrap(),
        quota
    );

    ceph.bucket_create(&keys, &bucket).await.unwrap();
    ceph.bucket_create(&keys, &bucket).await.unwrap();
    let s3 = S3Client::new(&bucket, &keys);
    for key in ["a", "b", "c"] {
        assert_eq!(
            s3.put(key, key.repeat(1000).into_bytes()).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(s3.get("b").await, (StatusCode::OK, "b".repeat(1000)));
    let (status, body) = s3.put("d", b"one too many".to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("QuotaExceeded"), "{body}");

    let stats = ceph.bucket_stats(&bucket).await.unwrap();
    assert_eq!(
        (stats.bucket.as_str(), stats.owner.as_str()),
        (&*bucket, &*uid)
    );
    assert_eq!((stats.objects, stats.size_bytes), (3, 3000));
    assert!(stats.allocated_bytes >= stats.size_bytes);

    ceph.bucket_delete(&bucket).await.unwrap();
    ceph.bucket_delete(&bucket).await.unwrap();
    let gone = ceph.bucket_stats(&bucket).await.unwrap_err();
    assert_eq!(gone.kind(), CephErrorKind::NotFound, "{gone:#}");
    ceph.user_delete(&uid).await.unwrap();
    ceph.user_delete(&uid).await.unwrap();
    assert_eq!(ceph.user_get(&uid).await.unwrap(), None);

    // The tenant's keys died with the user, for S3 clients and the driver alike.
    let (status, body) = s3.get("a").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("InvalidAccessKeyId"), "{body}");
    let refused = ceph.bucket_create(&keys, &bucket).await.unwrap_err();
    assert_eq!(refused.kind(), CephErrorKind::AccessDenied, "{refused:#}");
}

#[tokio::test]
async fn a_single_buckets_size_quota_refuses_what_would_pass_it() {
    let ceph = ceph();
    let uid = unique("tenant");
    let bucket = unique("bucket");
    let user = ceph.user_create(&uid, "Quota", None).await.unwrap();
    let keys = user.keys.first().expect("RGW generated a key pair").clone();
    ceph.bucket_create(&keys, &bucket).await.unwrap();

    // The per-bucket quota goes as a JSON body (sent as UNSIGNED-PAYLOAD).
    let target = QuotaTarget::Bucket {
        uid: &uid,
        bucket: &bucket,
    };
    let quota = Quota {
        enabled: true,
        max_size_bytes: Some(64 << 10),
        max_objects: None,
    };
    ceph.quota_set(target, quota).await.unwrap();
    assert_eq!(ceph.quota_get(target).await.unwrap(), quota);

    let s3 = S3Client::new(&bucket, &keys);
    assert_eq!(s3.put("small", vec![1; 10 << 10]).await.0, StatusCode::OK);
    let (status, body) = s3.put("large", vec![2; 100 << 10]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("QuotaExceeded"), "{body}");

    ceph.user_delete(&uid).await.unwrap();
    let gone = ceph.bucket_stats(&bucket).await.unwrap_err();
    assert_eq!(
        gone.kind(),
        CephErrorKind::NotFound,
        "purging the user purged its bucket"
    );
}

#[tokio::test]
async fn a_versioned_bucket_is_deleted_with_every_version() {
    let ceph = ceph();
    let uid = unique("tenant");
    let bucket = unique("bucket");
    let keys = tenant_keys();
    ceph.user_create(&uid, "Versions", Some(&keys))
        .await
        .unwrap();
    ceph.bucket_create(&keys, &bucket).await.unwrap();
    assert_eq!(
        ceph.bucket_versioning_get(&keys, &bucket).await.unwrap(),
        Versioning::Unversioned
    );
    ceph.bucket_versioning_set(&keys, &bucket, true)
        .await
        .unwrap();
    assert_eq!(
        ceph.bucket_versioning_get(&keys, &bucket).await.unwrap(),
        Versioning::Enabled
    );

    let s3 = S3Client::new(&bucket, &keys);
    for version in ["one", "two", "three"] {
        assert_eq!(s3.put("key", version.into()).await.0, StatusCode::OK);
    }
    assert_eq!(s3.get("key").await, (StatusCode::OK, "three".to_owned()));
    assert_eq!(ceph.bucket_stats(&bucket).await.unwrap().objects, 3);

    ceph.bucket_versioning_set(&keys, &bucket, false)
        .await
        .unwrap();
    assert_eq!(
        ceph.bucket_versioning_get(&keys, &bucket).await.unwrap(),
        Versioning::Suspended
    );

    ceph.bucket_delete(&bucket).await.unwrap();
    // Another user can take the name: nothing of the bucket is left.
    let other = tenant_keys();
    let other_uid = unique("tenant");
    ceph.user_create(&other_uid, "Next", Some(&other))
        .await
        .unwrap();
    ceph.bucket_create(&other, &bucket).await.unwrap();
    assert_eq!(ceph.bucket_stats(&bucket).await.unwrap().objects, 0);

    ceph.user_delete(&uid).await.unwrap();
    ceph.user_delete(&other_uid).await.unwrap();
}

#[tokio::test]
async fn refusals_are_classified_for_people() {
    let ceph = ceph();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let bucket = unique("bucket");
    let alice_keys = tenant_keys();
    ceph.user_create(&alice, "Alice", Some(&alice_keys))
        .await
        .unwrap();
    ceph.bucket_create(&alice_keys, &bucket).await.unwrap();

    // Bob asks for Alice's access key, then for her bucket's name.
    let stolen = S3Keys {
        access_key: alice_keys.access_key.clone(),
        secret_key: SecretKey::new("bobs own secret"),
    };
    let taken = ceph
        .user_create(&bob, "Bob", Some(&stolen))
        .await
        .unwrap_err();
    assert!(matches!(taken, CephError::KeyTaken { .. }), "{taken:#}");
    assert!(
        taken.to_string().contains("choose another access key"),
        "{taken}"
    );
    let bob_keys = tenant_keys();
    ceph.user_create(&bob, "Bob", Some(&bob_keys))
        .await
        .unwrap();
    let taken = ceph.bucket_create(&bob_keys, &bucket).await.unwrap_err();
    assert!(matches!(taken, CephError::BucketTaken { .. }), "{taken:#}");
    assert_eq!(
        taken.to_string(),
        format!(
            "cannot create bucket {bucket}: the bucket name is taken by another user; choose another name"
        )
    );

    // A wrong secret, and a tenant's keys on the admin API.
    let wrong_secret = Ceph::new(CephConfig {
        admin_secret_key: SecretKey::new("not the secret"),
        ..config()
    })
    .unwrap();
    let denied = wrong_secret.user_get(&alice).await.unwrap_err();
    assert!(
        matches!(denied, CephError::AccessDenied { .. }),
        "{denied:#}"
    );
    let as_tenant = Ceph::new(CephConfig {
        admin_access_key: alice_keys.access_key.clone(),
        admin_secret_key: alice_keys.secret_key.clone(),
        ..config()
    })
    .unwrap();
    let denied = as_tenant.user_delete(&bob).await.unwrap_err();
    assert_eq!(denied.kind(), CephErrorKind::AccessDenied, "{denied:#}");
    assert!(ceph.user_get(&bob).await.unwrap().is_some(), "bob survived");

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = Ceph::new(CephConfig {
        rgw_endpoint: format!("http://127.0.0.1:{port}").parse().unwrap(),
        ..config()
    })
    .unwrap();
    let unreachable = nowhere.user_get(&alice).await.unwrap_err();
    assert_eq!(
        unreachable.kind(),
        CephErrorKind::Unreachable,
        "{unreachable:#}"
    );
    assert!(
        unreachable
            .to_string()
            .contains(&format!("127.0.0.1:{port}")),
        "{unreachable}"
    );

    ceph.user_delete(&alice).await.unwrap();
    ceph.user_delete(&bob).await.unwrap();
}

#[tokio::test]
async fn capacity_comes_from_the_manager_and_adds_up() {
    let capacity = ceph().capacity().await.unwrap();
    assert!(capacity.total_bytes > 0, "{capacity:?}");
    assert!(capacity.used_bytes > 0, "{capacity:?}");
    assert!(capacity.used_bytes <= capacity.total_bytes, "{capacity:?}");
    assert!(
        capacity.available_bytes <= capacity.total_bytes - capacity.used_bytes,
        "{capacity:?}"
    );

    let broken = Ceph::new(CephConfig {
        ceph_conf: Some("/nonexistent/ceph.conf".into()),
        ..config()
    })
    .unwrap();
    let failed = broken.capacity().await.unwrap_err();
    assert_eq!(failed.kind(), CephErrorKind::Config, "{failed:#}");
}

/// A managed bucket as the agent converges it: its keys can make no other bucket, and what
/// an operator changes in Ceph behind the agent's back is found and restored.
#[tokio::test]
async fn a_managed_buckets_keys_are_scoped_to_it_and_changes_in_ceph_are_restored() {
    use outpost_agent::buckets::{Buckets, access_key, user_id};
    use outpost_domain::{
        ManagedServiceName,
        desired::ManagedWorkload,
        managed::Observation,
        provider::{BucketRun, Run},
    };

    let ceph = ceph();
    let buckets = Buckets::new(Some(ceph.clone()));
    let secret = tenant_keys().secret_key.expose().to_owned();
    let run = BucketRun {
        quota_bytes: 1 << 20,
        versioning: true,
        secret_key: secret.clone(),
    };
    let mut m = ManagedWorkload {
        service: ManagedServiceName::parse(
            "tenants/t/projects/p/environments/e/managedServices/files",
        )
        .unwrap(),
        uid: unique("uid"),
        namespace: String::new(),
        name: unique("files"),
        generation: 1,
        run: Run::Bucket(run.clone()),
        paused: false,
        deleting: false,
        details: Default::default(),
    };
    let done = buckets.converge(&m, &run).await;
    assert_eq!(done.observation, Observation::Ready, "{}", done.message);
    let again = buckets.converge(&m, &run).await;
    assert_eq!(again.observation, Observation::Ready, "{}", again.message);

    // The tenant's keys reach their bucket and nothing else.
    let keys = S3Keys {
        access_key: access_key(&m),
        secret_key: SecretKey::new(secret),
    };
    let other = unique("other");
    let refused = ceph.bucket_create(&keys, &other).await.unwrap_err();
    assert_eq!(refused.kind(), CephErrorKind::AccessDenied, "{refused:#}");
    assert!(
        ceph.bucket_stats(&other).await.is_err(),
        "no bucket {other}"
    );
    let s3 = S3Client::new(&m.name, &keys);
    assert_eq!(s3.put("a", b"hello".to_vec()).await.0, StatusCode::OK);

    // An operator loosens it all directly in Ceph.
    let uid = user_id(&m);
    ceph.user_max_buckets_set(&uid, 1000).await.unwrap();
    let loose = Quota {
        enabled: false,
        max_size_bytes: None,
        max_objects: None,
    };
    ceph.quota_set(
        QuotaTarget::Bucket {
            uid: &uid,
            bucket: &m.name,
        },
        loose,
    )
    .await
    .unwrap();
    ceph.bucket_versioning_set(&keys, &m.name, false)
        .await
        .unwrap();
    let changed = buckets.repair(&m, &run, Duration::ZERO).await.unwrap();
    assert_eq!(changed, ["bucket limit", "quota", "versioning"]);
    assert_eq!(
        ceph.bucket_stats(&m.name)
            .await
            .unwrap()
            .quota
            .max_size_bytes,
        Some(1 << 20)
    );
    assert_eq!(
        ceph.bucket_versioning_get(&keys, &m.name).await.unwrap(),
        Versioning::Enabled
    );
    let refused = ceph.bucket_create(&keys, &other).await.unwrap_err();
    assert_eq!(refused.kind(), CephErrorKind::AccessDenied, "{refused:#}");
    assert!(
        buckets
            .repair(&m, &run, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "restored, nothing left to repair"
    );
    assert!(
        buckets
            .repair(&m, &run, Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty(),
        "not compared again so soon"
    );

    m.deleting = true;
    let gone = buckets.converge(&m, &run).await;
    assert_eq!(gone.observation, Observation::Gone, "{}", gone.message);
}
