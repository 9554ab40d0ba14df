//! Behaviour of the API beyond authorization: optimistic concurrency, idempotent retries,
//! cascades, events, validation details, tokens and paging.

use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{authz::seed_two_tenants, harness::TestServer};

const SERVICE: &str = "tenants/a/projects/p/environments/production/services/s";

async fn seeded() -> TestServer {
    let server = TestServer::start().await;
    seed_two_tenants(&server).await;
    server
}

fn code<T>(r: &Result<T, tonic::Status>) -> Code {
    r.as_ref().map_or_else(tonic::Status::code, |_| Code::Ok)
}

#[tokio::test]
async fn stale_etag_is_rejected_with_aborted() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let current = server
        .call(
            admin,
            "ServiceService/GetService",
            &json!({"name": SERVICE}).to_string(),
        )
        .await
        .unwrap();
    let etag = current["etag"].as_str().unwrap().to_owned();
    let update = |etag: &str, replicas: i32| {
        json!({"service": {"name": SERVICE, "etag": etag, "replicas": replicas}, "update_mask": "replicas"}).to_string()
    };
    let updated = server
        .call(admin, "ServiceService/UpdateService", &update(&etag, 3))
        .await
        .unwrap();
    assert_eq!(updated["replicas"], 3);
    assert_ne!(updated["etag"], etag.as_str());
    for stale in [etag.as_str(), "v999", "garbage"] {
        let err = server
            .call(admin, "ServiceService/UpdateService", &update(stale, 4))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted, "{stale}: {err:?}");
        let err = server
            .call(
                admin,
                "ServiceService/DeleteService",
                &json!({"name": SERVICE, "etag": stale}).to_string(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted);
    }
    let now = server
        .call(
            admin,
            "ServiceService/GetService",
            &json!({"name": SERVICE}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(now["replicas"], 3, "refused updates changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_returns_the_first_result_and_creates_nothing_twice() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let create = |id: &str| {
        json!({
            "parent": "tenants/a/projects/p/environments/staging",
            "service_id": id,
            "request_id": "9b2f6c1e-retry-1",
            "service": {"image": "nginx", "shape": "SHAPE_FLX", "replicas": 1}
        })
        .to_string()
    };
    let first = server
        .call(admin, "ServiceService/CreateService", &create("web"))
        .await
        .unwrap();
    let again = server
        .call(admin, "ServiceService/CreateService", &create("web"))
        .await
        .unwrap();
    assert_eq!(first, again, "the retry returns the first answer");
    // Even a retry whose body differs gets the first answer and creates nothing.
    let other = server
        .call(admin, "ServiceService/CreateService", &create("other"))
        .await
        .unwrap();
    assert_eq!(first, other);
    let list = server
        .call(
            admin,
            "ServiceService/ListServices",
            r#"{"parent":"tenants/a/projects/p/environments/staging"}"#,
        )
        .await
        .unwrap();
    assert_eq!(list["services"].as_array().map(Vec::len), Some(1));
    // The same key for another method is a client error.
    let err = server
        .call(
            admin,
            "ProjectService/DeleteProject",
            r#"{"name":"tenants/a/projects/p","request_id":"9b2f6c1e-retry-1"}"#,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Concurrent duplicates of a create with a server-chosen name: one binding, one answer.
    let request = json!({
        "parent": "tenants/a",
        "request_id": "concurrent-1",
        "role_binding": {"member": "tenants/a/users/target", "role": "ROLE_VIEWER"}
    })
    .to_string();
    let calls =
        (0..8).map(|_| server.call(admin, "RoleBindingService/CreateRoleBinding", &request));
    let answers: Vec<Value> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let bindings = server
        .call(
            admin,
            "RoleBindingService/ListRoleBindings",
            r#"{"parent":"tenants/a"}"#,
        )
        .await
        .unwrap();
    let for_target = bindings["roleBindings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["member"] == "tenants/a/users/target")
        .count();
    assert_eq!(for_target, 1);
}

#[tokio::test]
async fn deleting_what_still_has_services_needs_cascade() {
    let server = seeded().await;
    let admin = &server.admin_token;
    for (method, name) in [
        (
            "EnvironmentService/DeleteEnvironment",
            "tenants/a/projects/p/environments/production",
        ),
        ("ProjectService/DeleteProject", "tenants/a/projects/p"),
        ("TenantService/DeleteTenant", "tenants/a"),
    ] {
        let err = server
            .call(admin, method, &json!({"name": name}).to_string())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{method}");
        assert!(err.message().contains("cascade"), "{}", err.message());
        let failure = err
            .get_details_precondition_failure()
            .expect("PreconditionFailure detail");
        assert_eq!(failure.violations[0].subject, name);
    }
    assert_eq!(
        code(
            &server
                .call(
                    admin,
                    "ServiceService/GetService",
                    &json!({"name": SERVICE}).to_string()
                )
                .await
        ),
        Code::Ok
    );
    server
        .call(
            admin,
            "ProjectService/DeleteProject",
            r#"{"name":"tenants/a/projects/p","cascade":true}"#,
        )
        .await
        .unwrap();
    let gone = server
        .call(
            admin,
            "ServiceService/GetService",
            &json!({"name": SERVICE}).to_string(),
        )
        .await;
    assert_eq!(code(&gone), Code::NotFound);
    let env = server
        .call(
            admin,
            "EnvironmentService/GetEnvironment",
            r#"{"name":"tenants/a/projects/p/environments/production"}"#,
        )
        .await;
    assert_eq!(code(&env), Code::NotFound);
}

#[tokio::test]
async fn projects_start_with_three_environments_whose_datacenter_can_move() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let envs = server
        .call(
            admin,
            "EnvironmentService/ListEnvironments",
            r#"{"parent":"tenants/a/projects/p"}"#,
        )
        .await
        .unwrap();
    let names: Vec<_> = envs["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["development", "production", "staging"]
            .map(|e| format!("tenants/a/projects/p/environments/{e}"))
    );
    assert!(
        envs["environments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["datacenter"] == "datacenters/dc1")
    );
    server
        .call(
            admin,
            "DatacenterService/CreateDatacenter",
            r#"{"datacenter_id":"dc2","datacenter":{}}"#,
        )
        .await
        .unwrap();
    let moved = server
        .call(
            admin,
            "EnvironmentService/UpdateEnvironment",
            r#"{"environment":{"name":"tenants/a/projects/p/environments/staging","datacenter":"datacenters/dc2"},"update_mask":"datacenter"}"#,
        )
        .await
        .unwrap();
    assert_eq!(moved["datacenter"], "datacenters/dc2");
    let missing = server
        .call(
            admin,
            "EnvironmentService/UpdateEnvironment",
            r#"{"environment":{"name":"tenants/a/projects/p/environments/staging","datacenter":"datacenters/nowhere"},"update_mask":"datacenter"}"#,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn invalid_services_name_every_bad_field() {
    let server = seeded().await;
    let request = json!({
        "parent": "tenants/a/projects/p/environments/production",
        "service_id": "Bad_Name",
        "service": {
            "image": "UPPER/Case:tag!",
            "shape": "SHAPE_UNSPECIFIED",
            "replicas": -3,
            "env": [{"name": "OK"}, {"name": "OK"}, {"name": "9lives"}],
            "ports": [{"container_port": 0}, {"container_port": 70000}],
            "health_check_path": "../admin"
        }
    });
    let err = server
        .call(
            &server.admin_token,
            "ServiceService/CreateService",
            &request.to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let bad = err.get_details_bad_request().expect("BadRequest detail");
    let fields: Vec<_> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "service_id",
            "service.image",
            "service.shape",
            "service.replicas",
            "service.env[1].name",
            "service.env[2].name",
            "service.ports[0].container_port",
            "service.ports[1].container_port",
            "service.health_check_path"
        ]
    );
    let unknown_mask = server
        .call(
            &server.admin_token,
            "ServiceService/UpdateService",
            &json!({"service": {"name": SERVICE}, "update_mask": "uid"}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        unknown_mask
            .get_details_bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "update_mask"
    );
}

#[tokio::test]
async fn every_change_is_an_event_on_its_resource() {
    let server = seeded().await;
    let admin = &server.admin_token;
    server
        .call(
            admin,
            "ServiceService/UpdateService",
            &json!({"service": {"name": SERVICE, "replicas": 5}, "update_mask": "replicas"})
                .to_string(),
        )
        .await
        .unwrap();
    let events = server
        .call(
            admin,
            "EventService/ListEvents",
            &json!({"parent": SERVICE}).to_string(),
        )
        .await
        .unwrap();
    let reasons: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["Updated", "Created"], "newest first");
    let message = events["events"][0]["message"].as_str().unwrap();
    assert_eq!(message, "Service updated by users/admin.");
}

#[tokio::test]
async fn tokens_work_until_revoked_or_expired_and_are_never_shown_again() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let viewer = server
        .user_with_role("a", "vera", Some("ROLE_VIEWER"))
        .await;
    let get = r#"{"name":"tenants/a/projects/p"}"#;
    assert_eq!(
        code(&server.call(&viewer, "ProjectService/GetProject", get).await),
        Code::Ok
    );
    for bad in ["", "opt_not-a-real-token", "Basic abc"] {
        assert_eq!(
            code(&server.call(bad, "ProjectService/GetProject", get).await),
            Code::Unauthenticated,
            "{bad}"
        );
    }

    // Users manage their own tokens without any admin role.
    let own = server
        .call(
            &viewer,
            "ApiTokenService/CreateApiToken",
            r#"{"parent":"tenants/a/users/vera","request_id":"tok-1","ttl":"120s"}"#,
        )
        .await
        .unwrap();
    let secret = own["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("opt_"));
    let replay = server
        .call(
            &viewer,
            "ApiTokenService/CreateApiToken",
            r#"{"parent":"tenants/a/users/vera","request_id":"tok-1","ttl":"120s"}"#,
        )
        .await
        .unwrap();
    assert_eq!(replay["apiToken"], own["apiToken"]);
    assert!(
        replay.get("token").is_none_or(|t| t == ""),
        "a retry never returns the secret again"
    );
    let listed = server
        .call(
            admin,
            "ApiTokenService/ListApiTokens",
            r#"{"parent":"tenants/a/users/vera"}"#,
        )
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "listing never shows a token"
    );

    let name = own["apiToken"]["name"].as_str().unwrap();
    server
        .call(
            &viewer,
            "ApiTokenService/RevokeApiToken",
            &json!({"name": name}).to_string(),
        )
        .await
        .unwrap();
    let after = server.call(&secret, "ProjectService/GetProject", get).await;
    assert_eq!(
        code(&after),
        Code::Unauthenticated,
        "revocation applies to the very next call"
    );

    // TTL bounds.
    for ttl in ["1s", "-5s", "99999999999s"] {
        let err = server
            .call(
                admin,
                "ApiTokenService/CreateApiToken",
                &json!({"parent": "tenants/a/users/vera", "ttl": ttl}).to_string(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{ttl}");
    }

    // Deleting a user takes its tokens with it.
    server
        .call(
            admin,
            "UserService/DeleteUser",
            r#"{"name":"tenants/a/users/vera"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        code(&server.call(&viewer, "ProjectService/GetProject", get).await),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let server = seeded().await;
    let token = server
        .user_with_role("a", "hash-check", Some("ROLE_VIEWER"))
        .await;
    let db = std::fs::read_dir(server.data_dir()).unwrap();
    for file in db {
        let path = file.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("outpost.db")
        {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&token),
            "a token reached the database files in clear"
        );
        assert!(!text.contains(&server.admin_token[4..]));
    }
}

#[tokio::test]
async fn only_owners_grant_or_remove_ownership() {
    let server = seeded().await;
    let admin_a = server.user_with_role("a", "ada", Some("ROLE_ADMIN")).await;
    let owner_a = server.user_with_role("a", "olga", Some("ROLE_OWNER")).await;
    let grant = r#"{"parent":"tenants/a","role_binding":{"member":"tenants/a/users/target","role":"ROLE_OWNER"}}"#;
    let denied = server
        .call(&admin_a, "RoleBindingService/CreateRoleBinding", grant)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let granted = server
        .call(&owner_a, "RoleBindingService/CreateRoleBinding", grant)
        .await
        .unwrap();
    let name = granted["name"].as_str().unwrap();
    let remove = json!({"name": name}).to_string();
    assert_eq!(
        server
            .call(&admin_a, "RoleBindingService/DeleteRoleBinding", &remove)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    server
        .call(&owner_a, "RoleBindingService/DeleteRoleBinding", &remove)
        .await
        .unwrap();
    // A member from another tenant cannot be granted anything.
    let foreign = r#"{"parent":"tenants/a","role_binding":{"member":"tenants/b/users/target","role":"ROLE_VIEWER"}}"#;
    assert_eq!(
        server
            .call(&owner_a, "RoleBindingService/CreateRoleBinding", foreign)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn pages_walk_a_list_and_tokens_are_bound_to_their_query() {
    let server = seeded().await;
    let admin = &server.admin_token;
    for i in 0..7 {
        server
            .call(admin, "ProjectService/CreateProject", &json!({"parent": "tenants/a", "project_id": format!("q{i}"), "project": {"default_datacenter": "datacenters/dc1"}}).to_string())
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page = server
            .call(
                admin,
                "ProjectService/ListProjects",
                &json!({"parent": "tenants/a", "page_size": 3, "page_token": token}).to_string(),
            )
            .await
            .unwrap();
        names.extend(
            page["projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned()),
        );
        token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            break;
        }
        let foreign = server
            .call(
                admin,
                "ProjectService/ListProjects",
                &json!({"parent": "tenants/b", "page_token": token}).to_string(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            foreign.code(),
            Code::InvalidArgument,
            "a token from tenants/a does not page tenants/b"
        );
    }
    assert_eq!(names.len(), 8);
    for bad in [
        json!({"parent": "tenants/a", "page_size": -1}),
        json!({"parent": "tenants/a", "page_token": "%%%"}),
    ] {
        assert_eq!(
            server
                .call(admin, "ProjectService/ListProjects", &bad.to_string())
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
    }
}

/// A crafted token with the right parent but a key no list hands out is the caller's
/// mistake, answered as such (not an internal error, and not logged as one).
#[tokio::test]
async fn a_crafted_page_token_is_invalid_argument_not_internal() {
    use base64::Engine as _;
    let server = seeded().await;
    let crafted =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{SERVICE}\nnot-a-number"));
    let err = server
        .call(
            &server.admin_token,
            "DeploymentService/ListDeployments",
            &json!({"parent": SERVICE, "page_token": crafted}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let bad = err.get_details_bad_request().expect("BadRequest detail");
    assert_eq!(bad.field_violations[0].field, "page_token");
}

#[tokio::test]
async fn secret_values_are_never_returned_stored_in_clear_or_put_in_events() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let value = "sup3r-s3cret-value-4711";
    let set =
        json!({"name": SERVICE, "secret": "DB_PASSWORD", "value": value, "request_id": "secret-1"})
            .to_string();
    let mut answers = vec![
        server
            .call(admin, "ServiceService/SetServiceSecret", &set)
            .await
            .unwrap(),
        // A retry with the same request id answers from storage: that must not hold it either.
        server
            .call(admin, "ServiceService/SetServiceSecret", &set)
            .await
            .unwrap(),
    ];
    for (method, request) in [
        ("ServiceService/GetService", json!({"name": SERVICE})),
        (
            "ServiceService/ListServiceSecrets",
            json!({"name": SERVICE}),
        ),
        ("EventService/ListEvents", json!({"parent": SERVICE})),
        (
            "AuditService/ListAuditRecords",
            json!({"parent": "tenants/a"}),
        ),
    ] {
        answers.push(
            server
                .call(admin, method, &request.to_string())
                .await
                .unwrap(),
        );
    }
    assert_eq!(answers[2 + 1]["secrets"][0]["name"], "DB_PASSWORD");
    for answer in &answers {
        assert!(
            !answer.to_string().contains(value),
            "secret value in {answer}"
        );
    }
    for file in std::fs::read_dir(server.data_dir()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(value),
            "a secret value reached a data file in clear"
        );
    }
    // A secret may not shadow a plain env var, and bad names name the field.
    server
        .call(admin, "ServiceService/UpdateService", &json!({"service": {"name": SERVICE, "env": [{"name": "MODE", "value": "x"}]}, "update_mask": "env"}).to_string())
        .await
        .unwrap();
    for (secret, field) in [("MODE", "secret"), ("1BAD", "secret")] {
        let err = server
            .call(
                admin,
                "ServiceService/SetServiceSecret",
                &json!({"name": SERVICE, "secret": secret, "value": "v"}).to_string(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{secret}");
        let details = err.get_details_bad_request().expect("field details");
        assert_eq!(details.field_violations[0].field, field);
    }
}

#[tokio::test]
async fn lifecycle_actions_not_allowed_now_say_why_naming_the_status() {
    let server = seeded().await;
    let admin = &server.admin_token;
    for method in [
        "ServiceService/StopService",
        "ServiceService/RestartService",
        "DeploymentService/RedeployService",
    ] {
        let err = server
            .call(admin, method, &json!({"name": SERVICE}).to_string())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{method}");
        assert!(
            err.message().contains("NOT_DEPLOYED"),
            "{method}: {}",
            err.message()
        );
    }
    let deployed = server
        .call(
            admin,
            "DeploymentService/DeployService",
            &json!({"name": SERVICE}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(deployed["status"], "DEPLOYMENT_STATUS_DEPLOYING");
    assert_eq!(deployed["image"], "nginx");
    let name = deployed["name"].as_str().unwrap().to_owned();
    assert_eq!(name, format!("{SERVICE}/deployments/1"));
    let canceled = server
        .call(
            admin,
            "DeploymentService/CancelDeployment",
            &json!({"name": name}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        canceled["status"], "DEPLOYMENT_STATUS_CANCELED",
        "nothing was live: canceled at once"
    );
    let again = server
        .call(
            admin,
            "DeploymentService/CancelDeployment",
            &json!({"name": name}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("CANCELED"), "{}", again.message());
    // Rolling back to another service's deployment, or to one that does not exist.
    let other = "tenants/a/projects/p/environments/staging/services/s/deployments/1";
    let err = server
        .call(
            admin,
            "DeploymentService/RollbackService",
            &json!({"name": SERVICE, "deployment": other}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = server
        .call(
            admin,
            "DeploymentService/RollbackService",
            &json!({"name": SERVICE, "deployment": format!("{SERVICE}/deployments/9")}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let events = server
        .call(
            admin,
            "EventService/ListEvents",
            &json!({"parent": SERVICE}).to_string(),
        )
        .await
        .unwrap();
    let reasons: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"DeploymentCreated") && reasons.contains(&"DeploymentCanceled"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn managed_services_validate_against_their_provider_and_never_show_secrets() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let env = "tenants/a/projects/p/environments/production";
    let create = |config: Value, secrets: Value, provider: &str| {
        json!({"parent": env, "managed_service_id": "db",
               "managed_service": {"provider": provider, "config": config}, "secrets": secrets})
        .to_string()
    };
    let good = json!({"version": "16", "storage_gib": 10, "shape": "FLX", "database": "shop", "user": "shop"});
    let password = json!({"password": "correct-horse-battery-staple"});
    // Bad config: every bad field named, under the request's field.
    let err = server
        .call(admin, "ManagedServiceService/CreateManagedService", &create(json!({"version": "9", "storage_gib": 0, "shape": "FLX", "database": "shop", "user": "shop"}), password.clone(), "providers/postgresql"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = err
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert!(
        fields.contains(&"managed_service.config.version".to_owned())
            && fields.contains(&"managed_service.config.storage_gib".to_owned()),
        "{fields:?}"
    );
    // An unknown provider, and a too-short secret (not quoted back).
    let err = server
        .call(
            admin,
            "ManagedServiceService/CreateManagedService",
            &create(good.clone(), password.clone(), "providers/oracle"),
        )
        .await
        .unwrap_err();
    assert!(
        err.message().contains("provider")
            || format!("{:?}", err.get_details_bad_request()).contains("managed_service.provider"),
        "{err:?}"
    );
    let err = server
        .call(
            admin,
            "ManagedServiceService/CreateManagedService",
            &create(
                good.clone(),
                json!({"password": "tiny-pw"}),
                "providers/postgresql",
            ),
        )
        .await
        .unwrap_err();
    assert!(
        !format!("{err:?}").contains("tiny-pw"),
        "a secret was quoted back: {err:?}"
    );
    // Created; the secret appears nowhere, not even in the data files.
    let created = server
        .call(
            admin,
            "ManagedServiceService/CreateManagedService",
            &create(good.clone(), password.clone(), "providers/postgresql"),
        )
        .await
        .unwrap();
    assert_eq!(created["state"], "MANAGED_SERVICE_STATE_CREATING");
    let name = created["name"].as_str().unwrap().to_owned();
    let events = server
        .call(
            admin,
            "EventService/ListEvents",
            &json!({"parent": name}).to_string(),
        )
        .await
        .unwrap();
    for answer in [&created, &events] {
        assert!(!answer.to_string().contains("correct-horse"), "{answer}");
    }
    for file in std::fs::read_dir(server.data_dir()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("correct-horse"),
            "a secret reached a data file in clear"
        );
    }
    // An update touching an immutable field or shrinking an increase-only one is refused
    // naming the field.
    let mut shrunk = good.clone();
    shrunk["storage_gib"] = json!(5);
    shrunk["version"] = json!("15");
    let err = server
        .call(
            admin,
            "ManagedServiceService/UpdateManagedService",
            &json!({"managed_service": {"name": name, "config": shrunk}}).to_string(),
        )
        .await
        .unwrap_err();
    let fields: Vec<String> = err
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|f| f.field)
        .collect();
    assert_eq!(
        fields,
        [
            "managed_service.config.storage_gib",
            "managed_service.config.version"
        ]
    );
    // Deletion needs the id typed as confirmation.
    let err = server
        .call(
            admin,
            "ManagedServiceService/DeleteManagedService",
            &json!({"name": name, "confirm": "yes"}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("confirm")
            || format!("{:?}", err.get_details_bad_request()).contains("confirm")
    );
    let deleting = server
        .call(
            admin,
            "ManagedServiceService/DeleteManagedService",
            &json!({"name": name, "confirm": "db"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(deleting["state"], "MANAGED_SERVICE_STATE_DELETING");
    // Buckets cannot pause; the refusal says so.
    let bucket = server
        .call(admin, "ManagedServiceService/CreateManagedService", &json!({"parent": env, "managed_service_id": "files",
            "managed_service": {"provider": "providers/bucket", "config": {"quota_gib": 1}}, "secrets": {"secret_key": "0123456789abcdef0123"}}).to_string())
        .await
        .unwrap();
    let err = server
        .call(
            admin,
            "ManagedServiceService/PauseManagedService",
            &json!({"name": bucket["name"]}).to_string(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

/// An empty page never hides a parent that does not exist: every list under a parent answers
/// NOT_FOUND for a missing one, and an empty page for one that exists but holds nothing.
#[tokio::test]
async fn every_list_under_a_missing_parent_is_not_found() {
    let server = seeded().await;
    let admin = &server.admin_token;
    let env = "tenants/a/projects/p/environments/production";
    let lists = [
        ("ProjectService/ListProjects", "tenants/nobody".to_owned()),
        ("TeamService/ListTeams", "tenants/nobody".to_owned()),
        (
            "RoleBindingService/ListRoleBindings",
            "tenants/nobody".to_owned(),
        ),
        (
            "EnvironmentService/ListEnvironments",
            "tenants/a/projects/nothing".to_owned(),
        ),
        (
            "ServiceService/ListServices",
            "tenants/a/projects/p/environments/nowhere".to_owned(),
        ),
        (
            "ManagedServiceService/ListManagedServices",
            "tenants/a/projects/p/environments/nowhere".to_owned(),
        ),
        (
            "ManagedServiceService/ListDeletedManagedServices",
            "tenants/a/projects/p/environments/nowhere".to_owned(),
        ),
        (
            "DeploymentService/ListDeployments",
            format!("{env}/services/nothing"),
        ),
        (
            "ApiTokenService/ListApiTokens",
            "tenants/a/users/nobody".to_owned(),
        ),
    ];
    for (method, parent) in lists {
        let answer = server
            .call(admin, method, &json!({ "parent": parent }).to_string())
            .await;
        assert_eq!(code(&answer), Code::NotFound, "{method} under {parent}");
    }
    let empty = server
        .call(
            admin,
            "ManagedServiceService/ListManagedServices",
            &json!({ "parent": env }).to_string(),
        )
        .await
        .expect("an existing parent with nothing in it");
    assert!(
        empty
            .get("managedServices")
            .is_none_or(|m| m.as_array().is_some_and(Vec::is_empty)),
        "{empty}"
    );
}
