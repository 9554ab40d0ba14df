//! `Event` objects (core/v1) for notable transitions, recorded like client-go's event
//! recorder: a repeat of the same reason and message about the same object bumps `count`
//! and `lastTimestamp` instead of adding an object. Events expire an hour after they were
//! last seen, as with the API server's default event TTL.

use serde_json::json;

use super::{Ctx, Involved};
use crate::clock::{format_time, parse_time, seconds_between};
use crate::fields;
use crate::resource::Resource;
use crate::store::Key;

/// Event time-to-live, in seconds.
const TTL_SECS: i64 = 3600;

/// Whether an event with `reason` about the object with `uid` exists.
pub(crate) fn exists(ctx: &Ctx<'_>, namespace: &str, uid: &str, reason: &str) -> bool {
    ctx.store
        .list(Resource::Event, Some(namespace))
        .any(|(_, e)| {
            fields::get_str(e, &["involvedObject", "uid"]) == Some(uid)
                && fields::get_str(e, &["reason"]) == Some(reason)
        })
}

pub(super) fn record(
    ctx: &mut Ctx<'_>,
    involved: &Involved,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let now = format_time(ctx.now);
    let existing = ctx
        .store
        .list(Resource::Event, Some(&involved.namespace))
        .find(|(_, e)| {
            fields::get_str(e, &["involvedObject", "uid"]) == Some(involved.uid.as_str())
                && fields::get_str(e, &["reason"]) == Some(reason)
                && fields::get_str(e, &["message"]) == Some(message)
        })
        .map(|(k, _)| k.clone());
    if let Some(key) = existing {
        ctx.update(&key, |e| {
            let count = fields::get(e, &["count"])
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(1);
            fields::set(e, &["count"], json!(count + 1));
            fields::set(e, &["lastTimestamp"], now.clone().into());
        });
        return;
    }
    let seq = ctx.store.next_seq();
    let name = format!(
        "{}.{:016x}",
        involved.name,
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    );
    let event = json!({
        "metadata": { "name": name, "namespace": involved.namespace },
        "involvedObject": {
            "apiVersion": involved.resource.api_version(),
            "kind": involved.resource.kind(),
            "namespace": involved.namespace,
            "name": involved.name,
            "uid": involved.uid,
        },
        "reason": reason,
        "message": message,
        "type": if warning { "Warning" } else { "Normal" },
        "source": { "component": involved.component },
        "reportingComponent": involved.component,
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    ctx.create(Resource::Event, &involved.namespace, event);
}

/// Deletes events last seen more than the TTL ago.
pub(super) fn expire(ctx: &mut Ctx<'_>) {
    let now = ctx.now;
    let expired: Vec<Key> = ctx
        .store
        .list(Resource::Event, None)
        .filter(|(_, e)| {
            let seen = fields::get_str(e, &["lastTimestamp"])
                .or_else(|| fields::get_str(e, &["metadata", "creationTimestamp"]));
            parse_time(seen).is_some_and(|t| seconds_between(t, now) > TTL_SECS)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in expired {
        ctx.delete(&key);
    }
}
