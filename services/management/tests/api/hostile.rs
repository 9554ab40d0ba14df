//! Hostile input to every RPC: each field of each request, in turn, replaced by huge,
//! deceptive, traversing, injecting, out-of-range or other-tenant values. The server must
//! answer every one with a deliberate code (never INTERNAL or a dropped call), refuse the
//! huge ones, and store nothing when it refuses.

use serde_json::Value;
use tonic::Code;

use crate::{
    authz::seed_two_tenants,
    cases::{cases, first_name, render},
    harness::TestServer,
};

fn hostile_strings() -> Vec<String> {
    vec![
        String::new(),
        "a".repeat(300),
        "a".repeat(1_500_000),
        "../../../etc/passwd".into(),
        "tenants/../tenants/b".into(),
        "tenants/a/projects/p/../../../b".into(),
        "tenants/a\u{202e}".into(),
        "ｔｅｎａｎｔｓ/a".into(),
        "tenants/a/\u{200b}p".into(),
        "\u{0}".into(),
        "'; DROP TABLE services; --".into(),
        "%2e%2e%2f".into(),
        "😀👨‍👩‍👧".into(),
        "v999".into(),
    ]
}

const HOSTILE_NUMBERS: [i64; 4] = [-1, i32::MIN as i64, i32::MAX as i64, 99];

/// Codes a deliberate refusal may have. Anything else means the server failed. No agent
/// runs in these tests, so calls that need one answer UNAVAILABLE.
const DELIBERATE: [Code; 10] = [
    Code::Ok,
    Code::Unavailable,
    Code::InvalidArgument,
    Code::NotFound,
    Code::PermissionDenied,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::AlreadyExists,
    Code::OutOfRange,
    Code::ResourceExhausted,
];

/// JSON pointers of every string and number in `value`.
fn leaves(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| leaves(v, format!("{at}/{k}"), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(v, format!("{at}/{i}"), out)),
        Value::String(_) | Value::Number(_) => out.push(at),
        Value::Bool(_) | Value::Null => {}
    }
}

/// A hostile variant of a request.
struct Variant {
    /// Which field got which value, for failure messages.
    what: String,
    request: Value,
    /// Far beyond every field limit: must never be accepted by a mutation.
    huge: bool,
    /// Plays tricks with tenant names: also tried by a tenant admin.
    about_tenants: bool,
}

/// Every hostile variant of one request.
fn variants(request: &Value) -> Vec<Variant> {
    let mut pointers = Vec::new();
    leaves(request, String::new(), &mut pointers);
    let mut out = Vec::new();
    for pointer in pointers {
        let original = request.pointer(&pointer).cloned().unwrap_or_default();
        let mut values: Vec<Value> = hostile_strings().into_iter().map(Value::from).collect();
        values.extend(HOSTILE_NUMBERS.map(Value::from));
        if let Some(s) = original.as_str().filter(|s| s.contains("tenants/a")) {
            values.push(Value::from(s.replace("tenants/a", "tenants/b")));
        }
        for v in values {
            let mut mutated = request.clone();
            if let Some(slot) = mutated.pointer_mut(&pointer) {
                *slot = v.clone();
            }
            let shown: String = v.to_string().chars().take(40).collect();
            let text = v.as_str().unwrap_or_default();
            out.push(Variant {
                what: format!("{pointer} = {shown}"),
                request: mutated,
                huge: text.len() > 100_000,
                about_tenants: text.contains("tenants/") || text.contains("ｔｅｎａｎｔｓ"),
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_in_every_field_of_every_rpc_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    seed_two_tenants(&server).await;
    let admin = server.admin_token.clone();
    let tenant_admin = server
        .user_with_role("a", "mallory", Some("ROLE_ADMIN"))
        .await;
    let fingerprints = outpost_store::testing::Fingerprints::of(&server.store).await;
    let mut failures = Vec::new();
    let mut unique = 0;
    let mut calls = 0;
    for case in cases() {
        let base: Value = serde_json::from_str(&render(case.request, "a", "{U}", "{S}"))
            .expect("template is JSON");
        for variant in variants(&base) {
            let callers = if variant.about_tenants {
                vec![&admin, &tenant_admin]
            } else {
                vec![&admin]
            };
            for caller in callers {
                unique += 1;
                let u = format!("h{unique}");
                let mut setup_name = String::new();
                for (method, json) in case.setup {
                    let answer = server
                        .call(&admin, method, &render(json, "a", &u, ""))
                        .await
                        .expect("setup");
                    setup_name = first_name(&answer).unwrap_or_default();
                }
                let request = render(&variant.request.to_string(), "a", &u, &setup_name);
                let Some(message) = server.message(case.method, &request) else {
                    continue; // Not expressible on the wire (e.g. text in a number field).
                };
                let before = fingerprints.take(&server.store).await;
                let result = server
                    .call_message(caller, &crate::harness::method(case.method), message)
                    .await;
                calls += 1;
                let code = result
                    .as_ref()
                    .map_or_else(tonic::Status::code, |_| Code::Ok);
                let who = format!("{} with {}", case.method, variant.what);
                if !DELIBERATE.contains(&code) {
                    failures.push(format!(
                        "{who}: answered {code:?}: {:?}",
                        result.as_ref().err().map(|e| e.message())
                    ));
                } else if code != Code::Ok && fingerprints.take(&server.store).await != before {
                    failures.push(format!("{who}: refused with {code:?} but stored something"));
                } else if code == Code::Ok
                    && variant.huge
                    && outpost_management::rpc::is_mutation(&format!(
                        "/outpost.management.v1.{}",
                        case.method
                    ))
                {
                    failures.push(format!("{who}: accepted a huge value"));
                }
            }
        }
    }
    assert!(calls > 1000, "only {calls} hostile calls were made");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Beyond the message size limit the call is refused before any handler runs, and the
    // server keeps serving.
    let huge = serde_json::json!({"tenant_id": "big", "tenant": {"display_name": "x".repeat(5 * 1024 * 1024)}}).to_string();
    let err = server
        .call(&admin, "TenantService/CreateTenant", &huge)
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{err:?}"
    );
    server
        .call(&admin, "TenantService/GetTenant", r#"{"name":"tenants/a"}"#)
        .await
        .expect("still serving");
}
