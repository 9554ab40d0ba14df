//! Row types as stored, and their conversion to domain resources. Decoding a row never
//! panics: anything unexpected becomes [`StoreError::Corrupt`].

use outpost_domain::{
    DatacenterName, ServiceName, Timestamp,
    deployment::ServiceStatus,
    resources::{Meta, ServiceRollout, ServiceSpec},
};
use sqlx::FromRow;

use crate::{Result, StoreError};

#[derive(FromRow)]
pub(crate) struct MetaRow {
    pub uid: String,
    pub create_time: i64,
    pub update_time: i64,
    pub version: i64,
}

impl From<MetaRow> for Meta {
    fn from(r: MetaRow) -> Self {
        Meta {
            uid: r.uid,
            create_time: Timestamp(r.create_time),
            update_time: Timestamp(r.update_time),
            version: r.version,
        }
    }
}

/// A service's lifecycle columns.
#[derive(FromRow)]
pub(crate) struct RolloutRow {
    pub status: String,
    pub status_message: String,
    pub generation: i64,
    pub live_deployment: i64,
    pub current_deployment: i64,
    pub stopped: i64,
    pub restart_time: i64,
}

impl RolloutRow {
    pub fn decode(self, service: &ServiceName) -> Result<ServiceRollout> {
        Ok(ServiceRollout {
            status: ServiceStatus::parse(&self.status)
                .ok_or_else(|| corrupt(format!("status of service {service}")))?,
            message: self.status_message,
            generation: self.generation,
            live_deployment: self.live_deployment,
            current_deployment: self.current_deployment,
            stopped: self.stopped != 0,
            restart_time: Timestamp(self.restart_time),
        })
    }
}

pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

pub(crate) fn datacenter_ref(name: &str) -> DatacenterName {
    DatacenterName {
        datacenter: name.to_owned(),
    }
}

pub(crate) fn decode_spec(json: &str, service: &str) -> Result<ServiceSpec> {
    serde_json::from_str(json).map_err(|_| corrupt(format!("spec of service {service}")))
}

pub(crate) fn encode_spec(spec: &ServiceSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|_| corrupt("service spec"))
}

/// Turns "no row changed" into a stale-etag error: the row existed when read (the caller
/// checked) but its version moved on in between.
pub(crate) fn expect_one_row(
    result: sqlx::any::AnyQueryResult,
    kind: &'static str,
    name: impl std::fmt::Display,
) -> Result<()> {
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::StaleEtag {
            kind,
            name: name.to_string(),
        })
    }
}

/// Checks a caller-supplied version (from an etag) against the stored one.
pub(crate) fn check_version(
    expected: Option<i64>,
    actual: i64,
    kind: &'static str,
    name: impl std::fmt::Display,
) -> Result<()> {
    match expected {
        Some(v) if v != actual => Err(StoreError::StaleEtag {
            kind,
            name: name.to_string(),
        }),
        _ => Ok(()),
    }
}
