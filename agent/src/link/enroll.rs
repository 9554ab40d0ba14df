//! Enrollment: a fresh key, a CSR and a join token in; a certificate naming the datacenter
//! out. The CA is pinned by fingerprint from the first byte exchanged.

use anyhow::Context as _;
use outpost_ca::{AgentKey, fingerprint_of_pem, pinned_client_config};
use outpost_proto::agent::v1 as pb;

use super::channel;
use crate::state::{Identity, LocalState};

/// Enrolls with the first of the gateways at `management` (`host:port` each) that answers,
/// and stores the result in `state`, remembering every address for the link.
pub async fn enroll(
    state: &LocalState,
    management: &[String],
    join_token: &str,
    ca_fingerprint: &str,
) -> anyhow::Result<Identity> {
    let key = AgentKey::generate().context("generating the agent key")?;
    let csr = key.csr_pem().context("making the CSR")?;
    let tls = pinned_client_config(ca_fingerprint, None, None)
        .context("the CA fingerprint is malformed")?;
    // Only an address that cannot be reached moves on to the next: a refusal is the
    // federation's answer, and the token is single-use.
    let mut unreachable = None;
    let mut channel = None;
    for address in management {
        match channel::connect(address, tls.clone()).await {
            Ok(c) => {
                channel = Some(c);
                break;
            }
            Err(e) => {
                tracing::warn!(management = %address, error = %outpost_process::ErrorChain(e.as_ref()), "gateway unreachable; trying the next");
                unreachable = Some(e);
            }
        }
    }
    let Some(channel) = channel else {
        return Err(unreachable.unwrap_or_else(|| anyhow::anyhow!("no management address")));
    };
    let answer = pb::enrollment_service_client::EnrollmentServiceClient::new(channel)
        .enroll(pb::EnrollRequest {
            join_token: join_token.to_owned(),
            csr_pem: csr,
            agent_version: crate::VERSION.into(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("enrollment refused: {}", s.message()))?
        .into_inner();
    let ca_fingerprint = ca_fingerprint.to_ascii_lowercase();
    if fingerprint_of_pem(&answer.ca_certificate_pem)? != ca_fingerprint {
        anyhow::bail!("the management side sent a CA that does not match the pinned fingerprint");
    }
    let identity = Identity {
        management: management.to_vec(),
        datacenter: answer.datacenter,
        ca_fingerprint,
    };
    state.save_enrollment(
        &identity,
        &key.to_pem(),
        &answer.certificate_pem,
        &answer.ca_certificate_pem,
    )?;
    tracing::info!(dc = %identity.datacenter, "enrolled");
    Ok(identity)
}
