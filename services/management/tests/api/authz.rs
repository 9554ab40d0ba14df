//! The role × tenant × method matrix: every role of tenant `a` against every RPC, aimed at
//! its own tenant and at tenant `b`. Own-tenant calls succeed exactly when the role suffices
//! (otherwise PERMISSION_DENIED); calls at `b` answer NOT_FOUND and change nothing.

use std::collections::BTreeSet;

use outpost_management::rpc::is_mutation;
use tonic::Code;

use crate::{
    cases::{Need, Scope, cases, first_name, render},
    harness::{TestServer, management_methods},
};

const CALLERS: [(&str, Option<(&str, Need)>); 5] = [
    ("owner", Some(("ROLE_OWNER", Need::Owner))),
    ("admin", Some(("ROLE_ADMIN", Need::Admin))),
    ("developer", Some(("ROLE_DEVELOPER", Need::Developer))),
    ("viewer", Some(("ROLE_VIEWER", Need::Viewer))),
    ("norole", None),
];

fn allowed(held: Option<Need>, need: Need) -> bool {
    match need {
        Need::Anyone => true,
        Need::PlatformAdmin => false,
        _ => held.is_some_and(|h| h >= need),
    }
}

/// Fixtures in both tenants: project `p` (with its environments), service `s` in
/// production, and a user `target` with no role.
pub async fn seed_two_tenants(server: &TestServer) {
    let admin = &server.admin_token;
    server
        .call(
            admin,
            "DatacenterService/CreateDatacenter",
            r#"{"datacenter_id":"dc1","datacenter":{"display_name":"DC 1"}}"#,
        )
        .await
        .expect("datacenter");
    for t in ["a", "b"] {
        for (method, json) in [
            (
                "TenantService/CreateTenant",
                r#"{"tenant_id":"{T}","tenant":{}}"#,
            ),
            (
                "ProjectService/CreateProject",
                r#"{"parent":"tenants/{T}","project_id":"p","project":{"default_datacenter":"datacenters/dc1"}}"#,
            ),
            (
                "ServiceService/CreateService",
                r#"{"parent":"tenants/{T}/projects/p/environments/production","service_id":"s","service":{"image":"nginx","shape":"SHAPE_MAX","replicas":2}}"#,
            ),
            (
                "UserService/CreateUser",
                r#"{"parent":"tenants/{T}","user_id":"target","user":{}}"#,
            ),
        ] {
            server
                .call(admin, method, &render(json, t, "", ""))
                .await
                .unwrap_or_else(|e| panic!("{method}: {e}"));
        }
    }
}

#[test]
fn every_rpc_has_a_case() {
    let table: BTreeSet<String> = cases().iter().map(|c| c.method.to_owned()).collect();
    let rpcs: BTreeSet<String> = management_methods().into_iter().collect();
    let missing: Vec<_> = rpcs.difference(&table).collect();
    let stale: Vec<_> = table.difference(&rpcs).collect();
    assert!(
        missing.is_empty(),
        "RPCs without an authorization case in cases.rs: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "cases for RPCs that no longer exist: {stale:?}"
    );
    assert_eq!(table.len(), cases().len(), "one case per RPC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_its_rights_and_nothing_of_another_tenant() {
    let server = TestServer::start().await;
    seed_two_tenants(&server).await;
    let admin = server.admin_token.clone();
    let mut callers = Vec::new();
    for (user, role) in CALLERS {
        let token = server.user_with_role("a", user, role.map(|r| r.0)).await;
        callers.push((user, role.map(|r| r.1), token));
    }

    let mut failures = Vec::new();
    let mut unique = 0;
    for case in cases() {
        let targets: &[&str] = if case.scope == Scope::Tenant {
            &["a", "b"]
        } else {
            &["a"]
        };
        for (user, held, token) in &callers {
            for target in targets {
                unique += 1;
                let u = unique.to_string();
                let mut setup_name = String::new();
                for (method, json) in case.setup {
                    let answer = server
                        .call(&admin, method, &render(json, target, &u, ""))
                        .await
                        .unwrap_or_else(|e| panic!("setup {method} for {}: {e}", case.method));
                    setup_name = first_name(&answer).unwrap_or_default();
                }
                let probe = async |_: ()| match case.probe {
                    Some((m, json)) => Some(
                        server
                            .call(&admin, m, &render(json, target, &u, &setup_name))
                            .await
                            .map_err(|s| s.code()),
                    ),
                    None => None,
                };
                let before = probe(()).await;
                let request = render(case.request, target, &u, &setup_name);
                let result = server.call(token, case.method, &request).await;
                let got = result
                    .as_ref()
                    .map_or_else(tonic::Status::code, |_| Code::Ok);
                let expected = if case.scope == Scope::Tenant && *target == "b" {
                    Code::NotFound
                } else if allowed(*held, case.need) {
                    case.allowed
                } else {
                    Code::PermissionDenied
                };
                let who = format!("{user}@a → {} on tenant {target}", case.method);
                if got != expected {
                    failures.push(format!(
                        "{who}: expected {expected:?}, got {got:?} ({:?})",
                        result.err().map(|s| s.message().to_owned())
                    ));
                    continue;
                }
                if expected != Code::Ok && probe(()).await != before {
                    failures.push(format!("{who}: refused, yet the probed state changed"));
                }
                if case.method == "TenantService/ListTenants"
                    && let Ok(answer) = &result
                {
                    let names: Vec<_> = answer["tenants"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["name"].as_str())
                        .collect();
                    if names != ["tenants/a"] {
                        failures.push(format!(
                            "{who}: listed {names:?}, expected only its own tenant"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} authorization failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every mutating RPC left an audit record in tenant a's log, allowed and refused ones
    // alike, and nothing tenant a did is in tenant b's log.
    let audited = |tenant: &str| {
        let server = &server;
        let admin = admin.clone();
        let parent = format!("tenants/{tenant}");
        async move {
            let mut records = Vec::new();
            let mut token = String::new();
            for _ in 0..100 {
                let page = server
                    .call(&admin, "AuditService/ListAuditRecords", &serde_json::json!({"parent": parent, "page_size": 1000, "page_token": token}).to_string())
                    .await
                    .expect("list audit records");
                records.extend(page["auditRecords"].as_array().cloned().unwrap_or_default());
                token = page["nextPageToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if token.is_empty() {
                    break;
                }
            }
            records
        }
    };
    let a_log = audited("a").await;
    let seen: BTreeSet<(String, String)> = a_log
        .iter()
        .filter(|r| {
            r["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("tenants/a/"))
        })
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for method in management_methods() {
        let path = format!("/outpost.management.v1.{method}");
        if is_mutation(&path) {
            assert!(
                seen.iter().any(|(m, _)| *m == path),
                "no audit record for {path}"
            );
            assert!(
                seen.iter().any(|(m, r)| *m == path && r != "OK"),
                "no audit record of a refused {path}"
            );
        } else {
            assert!(
                !seen.iter().any(|(m, _)| *m == path),
                "reads are not audited, but {path} was"
            );
        }
    }
    let b_log = audited("b").await;
    assert!(
        b_log.iter().all(|r| !r["actor"]
            .as_str()
            .unwrap_or_default()
            .starts_with("tenants/a/")),
        "tenant a's probes of tenant b must not appear in tenant b's audit log"
    );
    assert!(a_log.iter().all(|r| {
        r["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    }));
}
