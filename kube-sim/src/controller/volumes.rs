//! The volume provisioner and binder: every `Pending` PersistentVolumeClaim is provisioned
//! and bound on the next step (`spec.volumeName: pvc-<uid>`, `status.phase: Bound`, capacity
//! as requested), whatever its storage class (the simulation has no storage to run out of).

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimStatus};
use serde_json::json;

use super::{Ctx, Involved};
use crate::fields;
use crate::resource::Resource;

pub(super) fn reconcile_all(ctx: &mut Ctx<'_>) {
    for (key, pvc) in ctx.list::<PersistentVolumeClaim>(Resource::PersistentVolumeClaim, None) {
        let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
        if pvc.metadata.deletion_timestamp.is_some() || phase == Some("Bound") {
            continue;
        }
        let spec = pvc.spec.clone().unwrap_or_default();
        let volume = format!("pvc-{}", pvc.metadata.uid.clone().unwrap_or_default());
        let status = PersistentVolumeClaimStatus {
            phase: Some("Bound".into()),
            access_modes: spec.access_modes.clone(),
            capacity: spec.resources.as_ref().and_then(|r| r.requests.clone()),
            ..Default::default()
        };
        let Ok(status) = serde_json::to_value(&status) else {
            continue;
        };
        ctx.update(&key, |obj| {
            fields::set(obj, &["spec", "volumeName"], volume.clone().into());
            fields::set(
                obj,
                &["metadata", "annotations", "pv.kubernetes.io/bind-completed"],
                json!("yes"),
            );
            fields::set(obj, &["status"], status);
        });
        let involved = Involved::new(
            Resource::PersistentVolumeClaim,
            &pvc.metadata,
            "sim-provisioner",
        );
        ctx.event(
            &involved,
            false,
            "ProvisioningSucceeded",
            &format!("Successfully provisioned volume {volume}"),
        );
    }
}
