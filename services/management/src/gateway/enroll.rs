//! `EnrollmentService`: join token + CSR → client certificate.

use std::{sync::Arc, time::Duration};

use outpost_proto::{agent::v1 as pb, convert::timestamp};
use outpost_store::Store;
use tonic::{Request, Response, Status};

use super::Authority;
use crate::error::ErrorChain;

/// Implements `EnrollmentService`.
#[derive(Debug, Clone)]
pub struct EnrollmentApi {
    /// The store.
    pub store: Store,
    /// The CA.
    pub authority: Arc<Authority>,
    /// Lifetime of issued certificates.
    pub certificate_ttl: Duration,
}

/// Longest join token or CSR accepted, to bound work on hostile input.
const MAX_FIELD_BYTES: usize = 16 * 1024;

#[tonic::async_trait]
impl pb::enrollment_service_server::EnrollmentService for EnrollmentApi {
    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let r = req.into_inner();
        if r.join_token.len() > MAX_FIELD_BYTES || r.csr_pem.len() > MAX_FIELD_BYTES {
            return Err(Status::invalid_argument(
                "join_token and csr_pem must each be at most 16 KiB",
            ));
        }
        let refused = || {
            Status::unauthenticated(
                "the join token is unknown, used or expired; ask an admin for a new one",
            )
        };
        let hash = outpost_ca::join_token_hash(r.join_token.trim());
        let mut tx = self.store.begin().await.map_err(internal)?;
        let Some(dc) = tx
            .join_token_consume(&hash, outpost_domain::Timestamp::now())
            .await
            .map_err(internal)?
        else {
            return Err(refused());
        };
        // Signed inside the transaction: a bad CSR rolls the token's use back, so the
        // operator can retry with the same token.
        let issued = self
            .authority
            .sign(&r.csr_pem, &dc, self.certificate_ttl)
            .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?;
        let not_after = outpost_domain::Timestamp(millis(issued.not_after));
        let version: String = r.agent_version.chars().take(64).collect();
        tx.agent_enroll(&dc, &issued.serial, not_after, &version)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        tracing::info!(dc = %dc, serial = %issued.serial, "agent enrolled");
        Ok(Response::new(pb::EnrollResponse {
            certificate_pem: issued.cert_pem,
            ca_certificate_pem: self.authority.ca().cert_pem().to_owned(),
            datacenter: dc.to_string(),
            expire_time: Some(timestamp(not_after)),
        }))
    }
}

/// Milliseconds since the epoch of a system time.
pub(crate) fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Logs a store failure where it is handled and answers without details.
pub(crate) fn internal(e: outpost_store::StoreError) -> Status {
    tracing::error!(error = %ErrorChain(&e), "store call failed in the agent gateway");
    Status::internal("internal error")
}
