//! The store's test suite. Every test runs twice, on a fresh SQLite file and on a fresh
//! PostgreSQL database (`store_test!`), so both backends are held to the same behaviour.

use outpost_domain::{
    ApiTokenName, DatacenterName, EnvironmentName, ProjectName, RoleBindingName, ServiceName,
    Shape, TeamName, TenantName, Timestamp, UserName,
    authz::Role,
    resources::{Member, ServiceSpec, Source},
};

use crate::{PageRequest, Store, StoreError, prelude::*};

macro_rules! store_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _dir) = crate::testing::fresh_sqlite().await;
                super::$name(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::testing::fresh_postgres().await).await;
            }
        }
    };
}

const ACTOR: &str = "users/test";

fn page(limit: u32) -> PageRequest {
    PageRequest { after: None, limit }
}

fn spec(image: &str) -> ServiceSpec {
    ServiceSpec {
        source: Source::Image(image.into()),
        shape: Some(Shape::Flx),
        replicas: 1,
        ..Default::default()
    }
}

/// A tenant `t`, a datacenter `dc1` and project `tenants/t/projects/p`.
async fn seed(store: &Store, tenant: &str) -> ProjectName {
    let mut tx = store.begin().await.unwrap();
    tx.tenant_create(&TenantName::new(tenant), "T", ACTOR)
        .await
        .unwrap();
    let dc = DatacenterName {
        datacenter: "dc1".into(),
    };
    if tx.datacenter_get(&dc).await.is_err() {
        tx.datacenter_create(&dc, "DC 1", "fra", ACTOR)
            .await
            .unwrap();
    }
    let project = ProjectName {
        tenant: tenant.into(),
        project: "p".into(),
    };
    tx.project_create(&project, "P", &dc, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    project
}

fn env_of(project: &ProjectName, env: &str) -> EnvironmentName {
    EnvironmentName {
        tenant: project.tenant.clone(),
        project: project.project.clone(),
        environment: env.into(),
    }
}

fn svc_of(project: &ProjectName, env: &str, svc: &str) -> ServiceName {
    ServiceName {
        tenant: project.tenant.clone(),
        project: project.project.clone(),
        environment: env.into(),
        service: svc.into(),
    }
}

async fn creating_a_project_creates_three_environments(store: Store) {
    let project = seed(&store, "t").await;
    let mut r = store.reader().await.unwrap();
    let envs = r.environment_list(&project, &page(10)).await.unwrap();
    let names: Vec<_> = envs
        .items
        .iter()
        .map(|e| e.name.environment.as_str())
        .collect();
    assert_eq!(names, ["development", "production", "staging"]);
    assert!(envs.items.iter().all(|e| e.datacenter.datacenter == "dc1"));
    let events = r.event_list(&project.to_string(), &page(10)).await.unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].reason, "Created");
}
store_test!(creating_a_project_creates_three_environments);

async fn names_are_unique_per_scope(store: Store) {
    let project = seed(&store, "t").await;
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .project_create(
            &project,
            "again",
            &DatacenterName {
                datacenter: "dc1".into(),
            },
            ACTOR,
        )
        .await;
    assert!(
        matches!(err, Err(StoreError::AlreadyExists { .. })),
        "{err:?}"
    );
    drop(tx);
    // The same project name in another tenant is a different project.
    seed(&store, "u").await;
}
store_test!(names_are_unique_per_scope);

async fn stale_versions_are_refused(store: Store) {
    let project = seed(&store, "t").await;
    let dc = DatacenterName {
        datacenter: "dc1".into(),
    };
    let mut tx = store.begin().await.unwrap();
    let p = tx
        .project_update(&project, 1, "P2", &dc, ACTOR)
        .await
        .unwrap();
    assert_eq!(p.meta.version, 2);
    let err = tx.project_update(&project, 1, "P3", &dc, ACTOR).await;
    assert!(matches!(err, Err(StoreError::StaleEtag { .. })), "{err:?}");
    let err = tx.project_delete(&project, Some(1), false, ACTOR).await;
    assert!(matches!(err, Err(StoreError::StaleEtag { .. })), "{err:?}");
    tx.commit().await.unwrap();
}
store_test!(stale_versions_are_refused);

async fn deleting_a_project_with_services_needs_cascade(store: Store) {
    let project = seed(&store, "t").await;
    let mut tx = store.begin().await.unwrap();
    tx.service_create(&svc_of(&project, "staging", "api"), &spec("nginx:1"), ACTOR)
        .await
        .unwrap();
    let err = tx.project_delete(&project, None, false, ACTOR).await;
    assert!(matches!(err, Err(StoreError::InUse { .. })), "{err:?}");
    let err = tx
        .environment_delete(&env_of(&project, "staging"), None, false, ACTOR)
        .await;
    assert!(matches!(err, Err(StoreError::InUse { .. })), "{err:?}");
    tx.project_delete(&project, None, true, ACTOR)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(matches!(
        r.project_get(&project).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        r.service_get(&svc_of(&project, "staging", "api")).await,
        Err(StoreError::NotFound { .. })
    ));
    // History outlives the resource.
    assert_eq!(
        r.event_list(&project.to_string(), &page(10))
            .await
            .unwrap()
            .items[0]
            .reason,
        "Deleted"
    );
}
store_test!(deleting_a_project_with_services_needs_cascade);

async fn rollback_leaves_nothing_behind(store: Store) {
    let project = seed(&store, "t").await;
    let name = svc_of(&project, "production", "api");
    {
        let mut tx = store.begin().await.unwrap();
        tx.service_create(&name, &spec("nginx:1"), ACTOR)
            .await
            .unwrap();
        // Dropped without commit.
    }
    let mut r = store.reader().await.unwrap();
    assert!(matches!(
        r.service_get(&name).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        r.event_list(&name.to_string(), &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
store_test!(rollback_leaves_nothing_behind);

async fn environment_placement_is_fixed_after_first_deploy(store: Store) {
    let project = seed(&store, "t").await;
    let env = env_of(&project, "production");
    let dc2 = DatacenterName {
        datacenter: "dc2".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.datacenter_create(&dc2, "DC 2", "ams", ACTOR)
        .await
        .unwrap();
    let moved = tx
        .environment_update(&env, 1, "", &dc2, ACTOR)
        .await
        .unwrap();
    assert_eq!(moved.datacenter, dc2);
    tx.environment_mark_deployed(&env, Timestamp(1))
        .await
        .unwrap();
    let err = tx
        .environment_update(
            &env,
            moved.meta.version,
            "",
            &DatacenterName {
                datacenter: "dc1".into(),
            },
            ACTOR,
        )
        .await;
    assert!(matches!(err, Err(StoreError::InUse { .. })), "{err:?}");
    // A datacenter in use cannot be removed.
    let err = tx.datacenter_delete(&dc2, None, ACTOR).await;
    assert!(matches!(err, Err(StoreError::InUse { .. })), "{err:?}");
    tx.commit().await.unwrap();
}
store_test!(environment_placement_is_fixed_after_first_deploy);

async fn pages_cover_every_item_once(store: Store) {
    let project = seed(&store, "t").await;
    let env = env_of(&project, "development");
    let mut tx = store.begin().await.unwrap();
    for i in 0..23 {
        tx.service_create(
            &svc_of(&project, "development", &format!("s{i:02}")),
            &spec("nginx"),
            ACTOR,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let mut r = store.reader().await.unwrap();
    let mut seen = Vec::new();
    let mut req = page(5);
    for _ in 0..10 {
        let p = r.service_list(&env, &req).await.unwrap();
        seen.extend(p.items.into_iter().map(|s| s.name.service));
        match p.next_after {
            Some(after) => req.after = Some(after),
            None => break,
        }
    }
    let want: Vec<String> = (0..23).map(|i| format!("s{i:02}")).collect();
    assert_eq!(seen, want);
}
store_test!(pages_cover_every_item_once);

async fn tokens_resolve_to_principals_with_their_highest_role(store: Store) {
    seed(&store, "t").await;
    let alice = UserName {
        tenant: Some("t".into()),
        user: "alice".into(),
    };
    let team = TeamName {
        tenant: "t".into(),
        team: "ops".into(),
    };
    let token = ApiTokenName {
        user: alice.clone(),
        api_token: "tok1".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.user_create(&alice, "Alice", "", ACTOR).await.unwrap();
    tx.api_token_create(&token, "", "hash-1", Timestamp(i64::MAX), ACTOR)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let p = store
        .principal_for_token("hash-1", Timestamp(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.user.clone(), p.role), (alice.clone(), None));

    let mut tx = store.begin().await.unwrap();
    let rb = |n: &str| RoleBindingName {
        tenant: "t".into(),
        role_binding: n.into(),
    };
    tx.role_binding_create(
        &rb("rb1"),
        &Member::User(alice.clone()),
        Role::Viewer,
        ACTOR,
    )
    .await
    .unwrap();
    tx.team_create(&team, "Ops", std::slice::from_ref(&alice), ACTOR)
        .await
        .unwrap();
    tx.role_binding_create(&rb("rb2"), &Member::Team(team.clone()), Role::Admin, ACTOR)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let p = store
        .principal_for_token("hash-1", Timestamp(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.role, Some(Role::Admin));

    // Expired and revoked tokens authenticate nothing.
    assert!(
        store
            .principal_for_token("hash-1", Timestamp(i64::MAX))
            .await
            .unwrap()
            .is_none()
    );
    let mut tx = store.begin().await.unwrap();
    tx.api_token_revoke(&token, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        store
            .principal_for_token("hash-1", Timestamp(0))
            .await
            .unwrap()
            .is_none()
    );

    // Deleting the team drops its grant; deleting the user drops everything of theirs.
    let mut tx = store.begin().await.unwrap();
    tx.team_delete(&team, None, ACTOR).await.unwrap();
    tx.user_delete(&alice, None, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(
        r.role_binding_list(&TenantName::new("t"), &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
store_test!(tokens_resolve_to_principals_with_their_highest_role);

async fn one_tenants_names_never_reach_anothers_rows(store: Store) {
    let a = seed(&store, "a").await;
    let b = seed(&store, "b").await;
    let mut tx = store.begin().await.unwrap();
    tx.service_create(
        &svc_of(&b, "production", "secret-svc"),
        &spec("nginx"),
        ACTOR,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut r = store.reader().await.unwrap();
    // Same project, environment and service ids, tenant a: nothing.
    assert!(matches!(
        r.service_get(&svc_of(&a, "production", "secret-svc")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        r.service_list(&env_of(&a, "production"), &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
store_test!(one_tenants_names_never_reach_anothers_rows);

async fn tenant_delete_refuses_then_cascades(store: Store) {
    let project = seed(&store, "t").await;
    let tenant = TenantName::new("t");
    let mut tx = store.begin().await.unwrap();
    tx.service_create(
        &svc_of(&project, "production", "api"),
        &spec("nginx"),
        ACTOR,
    )
    .await
    .unwrap();
    let err = tx.tenant_delete(&tenant, None, false, ACTOR).await;
    assert!(matches!(err, Err(StoreError::InUse { .. })), "{err:?}");
    tx.tenant_delete(&tenant, None, true, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(r.tenant_list(&page(10)).await.unwrap().items.is_empty());
}
store_test!(tenant_delete_refuses_then_cascades);

async fn idempotency_keys_are_per_principal_and_unique(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.idempotency_put("users/a", "req-1", "/m", b"first")
        .await
        .unwrap();
    tx.idempotency_put("users/b", "req-1", "/m", b"other")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .idempotency_put("users/a", "req-1", "/m", b"second")
        .await;
    assert!(err.as_ref().is_err_and(StoreError::is_conflict), "{err:?}");
    drop(tx);
    let mut r = store.reader().await.unwrap();
    let answer = r
        .idempotency_get("users/a", "req-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.response, b"first");
}
store_test!(idempotency_keys_are_per_principal_and_unique);

/// Many writers racing to create the same names: each name ends up created exactly once,
/// every loser gets a clean AlreadyExists, and nothing is half-written.
async fn concurrent_writers_neither_corrupt_nor_duplicate(store: Store) {
    let project = seed(&store, "t").await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = store.clone();
        let project = project.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = 0;
            for i in 0..10 {
                let name = svc_of(&project, "production", &format!("s{i}"));
                let mut tx = store.begin().await.unwrap();
                match tx
                    .service_create(&name, &spec(&format!("img:{worker}")), ACTOR)
                    .await
                {
                    Ok(_) => match tx.commit().await {
                        Ok(()) => won += 1,
                        Err(e) => panic!("commit failed: {e:?}"),
                    },
                    Err(StoreError::AlreadyExists { .. }) => {}
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
            }
            won
        }));
    }
    let wins: i32 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(wins, 10);
    let mut r = store.reader().await.unwrap();
    let services = r
        .service_list(&env_of(&project, "production"), &page(100))
        .await
        .unwrap();
    assert_eq!(services.items.len(), 10);
    for s in &services.items {
        assert_eq!(
            r.event_list(&s.name.to_string(), &page(10))
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }

    // Racing updates on one row: versions advance one at a time, no update is lost.
    let name = svc_of(&project, "production", "s0");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut applied = 0;
            for _ in 0..10 {
                let mut tx = store.begin().await.unwrap();
                let cur = tx.service_get(&name).await.unwrap();
                let mut s = cur.spec.clone();
                s.replicas += 1;
                match tx.service_update(&name, cur.meta.version, &s, ACTOR).await {
                    Ok(_) => {
                        tx.commit().await.unwrap();
                        applied += 1;
                    }
                    Err(StoreError::StaleEtag { .. }) => {}
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
            }
            applied
        }));
    }
    let applied: i64 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let cur = r.service_get(&name).await.unwrap();
    assert_eq!(cur.spec.replicas, 1 + applied);
    assert_eq!(cur.meta.version, 1 + applied);
}
store_test!(concurrent_writers_neither_corrupt_nor_duplicate);

async fn next_change(
    rx: &mut tokio::sync::broadcast::Receiver<crate::DatacenterChange>,
) -> crate::DatacenterChange {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a change notice within 10s")
        .expect("channel open")
}

async fn changes_bump_revisions_and_notify_subscribers(store: Store) {
    let mut rx = store.subscribe();
    let project = seed(&store, "t").await;
    let after_seed = store.datacenter_revision("dc1").await.unwrap();
    assert_eq!(after_seed, 3, "one bump per environment created");
    assert_eq!(
        next_change(&mut rx).await,
        crate::DatacenterChange::One {
            datacenter: "dc1".into(),
            traceparent: String::new()
        }
    );
    // Changes that do not alter what runs (a display name) leave the revision alone.
    let mut tx = store.begin().await.unwrap();
    tx.project_update(
        &project,
        1,
        "renamed",
        &DatacenterName {
            datacenter: "dc1".into(),
        },
        ACTOR,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.datacenter_revision("dc1").await.unwrap(), 3);
    let mut tx = store.begin().await.unwrap();
    tx.service_create(
        &svc_of(&project, "production", "api"),
        &spec("nginx"),
        ACTOR,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.datacenter_revision("dc1").await.unwrap(), 4);
    assert_eq!(
        next_change(&mut rx).await,
        crate::DatacenterChange::One {
            datacenter: "dc1".into(),
            traceparent: String::new()
        }
    );
    // Moving an environment bumps both datacenters.
    let dc2 = DatacenterName {
        datacenter: "dc2".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.datacenter_create(&dc2, "", "", ACTOR).await.unwrap();
    tx.environment_update(&env_of(&project, "staging"), 1, "", &dc2, ACTOR)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.datacenter_revision("dc1").await.unwrap(), 5);
    assert_eq!(store.datacenter_revision("dc2").await.unwrap(), 1);
    let inputs = store
        .desired_inputs(&DatacenterName {
            datacenter: "dc1".into(),
        })
        .await
        .unwrap();
    assert_eq!(inputs.revision, 5);
    assert_eq!(inputs.environments.len(), 2);
    assert!(
        inputs.targets.is_empty(),
        "a service never deployed runs nothing"
    );
    // A rolled-back change notifies nobody and bumps nothing.
    {
        let mut tx = store.begin().await.unwrap();
        tx.service_create(
            &svc_of(&project, "production", "web"),
            &spec("nginx"),
            ACTOR,
        )
        .await
        .unwrap();
    }
    assert_eq!(store.datacenter_revision("dc1").await.unwrap(), 5);
}
store_test!(changes_bump_revisions_and_notify_subscribers);

async fn join_tokens_are_single_use_and_expire(store: Store) {
    seed(&store, "t").await;
    let dc = DatacenterName {
        datacenter: "dc1".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.join_token_create(&dc, "h1", Timestamp(1_000), ACTOR)
        .await
        .unwrap();
    tx.join_token_create(&dc, "h2", Timestamp(1_000), ACTOR)
        .await
        .unwrap();
    assert_eq!(
        tx.join_token_consume("h1", Timestamp(500)).await.unwrap(),
        Some(dc.clone())
    );
    assert_eq!(
        tx.join_token_consume("h1", Timestamp(501)).await.unwrap(),
        None,
        "used"
    );
    assert_eq!(
        tx.join_token_consume("h2", Timestamp(1_000)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        tx.join_token_consume("nope", Timestamp(0)).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
}
store_test!(join_tokens_are_single_use_and_expire);

async fn reports_apply_once_and_only_within_the_agents_datacenter(store: Store) {
    let project = seed(&store, "t").await;
    let dc1 = DatacenterName {
        datacenter: "dc1".into(),
    };
    let dc2 = DatacenterName {
        datacenter: "dc2".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.datacenter_create(&dc2, "", "", ACTOR).await.unwrap();
    tx.service_create(
        &svc_of(&project, "production", "api"),
        &spec("nginx"),
        ACTOR,
    )
    .await
    .unwrap();
    tx.agent_enroll(&dc1, "serial-1", Timestamp(i64::MAX), "v1")
        .await
        .unwrap();
    tx.agent_enroll(&dc2, "serial-2", Timestamp(i64::MAX), "v1")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let status = |ready: i64| {
        outpost_domain::observed::AgentReport::Status(outpost_domain::observed::WorkloadStatus {
            service: svc_of(&project, "production", "api"),
            revision: 4,
            observed_generation: 1,
            ready_replicas: ready,
            updated_replicas: ready,
            desired_replicas: 1,
            phase: outpost_domain::observed::WorkloadPhase::Available,
            message: String::new(),
            generation: 0,
            reason: None,
            report_time: Timestamp(5),
        })
    };
    // The other datacenter's agent cannot write this service's status.
    assert_eq!(
        store
            .agent_apply_reports("dc2", &[(1, status(9))])
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .workload_status_get(&svc_of(&project, "production", "api"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .agent_apply_reports("dc1", &[(1, status(1)), (2, status(2))])
            .await
            .unwrap(),
        2
    );
    // A resend of sequence 2 with different content is a duplicate and changes nothing.
    assert_eq!(
        store
            .agent_apply_reports("dc1", &[(2, status(7))])
            .await
            .unwrap(),
        2
    );
    let got = store
        .workload_status_get(&svc_of(&project, "production", "api"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.status.ready_replicas, 2);
    assert!(
        !got.current,
        "the agent never linked, so the report is not current"
    );
    // An event on an environment (its namespace repaired) is kept only from its own agent.
    let environment = svc_of(&project, "production", "api").environment_name();
    let repaired = |message: &str| outpost_domain::observed::AgentReport::Event {
        resource: environment.to_string(),
        reason: "DriftRepaired".into(),
        message: message.into(),
    };
    store
        .agent_apply_reports("dc2", &[(2, repaired("from elsewhere"))])
        .await
        .unwrap();
    store
        .agent_apply_reports("dc1", &[(3, repaired("Namespace ns: restored."))])
        .await
        .unwrap();
    let events = store
        .reader()
        .await
        .unwrap()
        .event_list(&environment.to_string(), &page(10))
        .await
        .unwrap();
    let messages: Vec<&str> = events.items.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"Namespace ns: restored."),
        "{messages:?}"
    );
    assert!(!messages.contains(&"from elsewhere"), "{messages:?}");
    // Revocation removes the agent and lists its serial for the CRL.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.agent_revoke(&dc1, ACTOR).await.unwrap());
    tx.commit().await.unwrap();
    assert!(store.agent_get(&dc1).await.unwrap().is_none());
    let revoked: Vec<String> = store
        .revoked_serials()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(revoked, ["serial-1"]);
}
store_test!(reports_apply_once_and_only_within_the_agents_datacenter);

async fn the_first_certificate_authority_stays(store: Store) {
    let first = crate::SealedAuthority {
        cert_pem: "A".into(),
        sealed_key: vec![1],
    };
    let second = crate::SealedAuthority {
        cert_pem: "B".into(),
        sealed_key: vec![2],
    };
    assert_eq!(store.authority_get_or_create(&first).await.unwrap(), first);
    assert_eq!(store.authority_get_or_create(&second).await.unwrap(), first);
}
store_test!(the_first_certificate_authority_stays);

/// The lifecycle through the store: deploy, a report completing it, a failed rollout
/// reverting to the live version, a queued deploy starting when the one before ends, a
/// cancel, stop, restart, and "nothing to deploy".
async fn deployments_follow_the_lifecycle(store: Store) {
    use outpost_domain::{
        deployment::{DeploymentStatus, FailureReason, ServiceAction, ServiceStatus},
        lifecycle::DeploymentSpec,
        observed::{AgentReport, WorkloadPhase, WorkloadStatus},
    };
    let project = seed(&store, "t").await;
    let web = svc_of(&project, "production", "web");
    let dc1 = DatacenterName {
        datacenter: "dc1".into(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.service_create(&web, &spec("web:1"), ACTOR)
        .await
        .unwrap();
    tx.agent_enroll(&dc1, "serial-1", Timestamp(i64::MAX), "v1")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let deploy_spec = |image: &str| DeploymentSpec {
        service: spec(image),
        image: image.into(),
    };
    let deploy = async |image: &str, action: ServiceAction| {
        let mut tx = store.begin().await.unwrap();
        let out = tx
            .service_deploy(&web, action, deploy_spec(image), "", ACTOR)
            .await;
        tx.commit().await.unwrap();
        out
    };
    let sequence = std::sync::atomic::AtomicU64::new(0);
    let report = async |phase: WorkloadPhase, reason: Option<FailureReason>| {
        let generation = store
            .reader()
            .await
            .unwrap()
            .service_get(&web)
            .await
            .unwrap()
            .rollout
            .generation;
        let seq = sequence.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let status = WorkloadStatus {
            service: web.clone(),
            revision: 1,
            generation,
            observed_generation: generation,
            ready_replicas: 1,
            updated_replicas: 1,
            desired_replicas: 1,
            phase,
            message: "1 of 1 replicas ready".into(),
            reason,
            report_time: Timestamp(5),
        };
        store
            .agent_apply_reports("dc1", &[(seq, AgentReport::Status(status))])
            .await
            .unwrap();
    };
    let service = async || {
        store
            .reader()
            .await
            .unwrap()
            .service_get(&web)
            .await
            .unwrap()
    };
    let target_image = async || {
        let inputs = store.desired_inputs(&dc1).await.unwrap();
        inputs.targets.first().map(|t| t.spec.image.clone())
    };

    // Redeploying what never ran is refused, naming the status.
    let refused = deploy("web:1", ServiceAction::Redeploy).await.unwrap_err();
    assert!(refused.to_string().contains("NOT_DEPLOYED"), "{refused}");

    let first = deploy("web:1", ServiceAction::Deploy).await.unwrap();
    assert_eq!(first.deployment.status, DeploymentStatus::Deploying);
    assert_eq!(service().await.rollout.status, ServiceStatus::Deploying);
    assert_eq!(target_image().await.as_deref(), Some("web:1"));
    report(WorkloadPhase::Progressing, None).await;
    assert_eq!(service().await.rollout.status, ServiceStatus::Deploying);
    report(WorkloadPhase::Available, None).await;
    let s = service().await;
    assert_eq!(
        (s.rollout.status, s.rollout.live_deployment),
        (ServiceStatus::Deployed, 1)
    );

    // The same spec again: nothing deployed, nothing restarted.
    let same = deploy("web:1", ServiceAction::Redeploy).await.unwrap();
    assert!(!same.changed);
    assert_eq!(same.deployment.name.deployment, "1");

    // A broken version fails, and the live one is what runs again.
    let broken = deploy("web:2-fail-pull", ServiceAction::Deploy)
        .await
        .unwrap();
    assert_eq!(target_image().await.as_deref(), Some("web:2-fail-pull"));
    let generation_before = service().await.rollout.generation;
    report(WorkloadPhase::Failed, Some(FailureReason::ImagePullFailed)).await;
    let failed = store
        .reader()
        .await
        .unwrap()
        .deployment_get(&broken.deployment.name)
        .await
        .unwrap();
    assert_eq!(failed.status, DeploymentStatus::DeploymentError);
    assert_eq!(
        failed.history.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [
            DeploymentStatus::Queued,
            DeploymentStatus::Deploying,
            DeploymentStatus::DeploymentError
        ],
        "every status it went through"
    );
    assert_eq!(failed.reason, Some(FailureReason::ImagePullFailed));
    assert!(
        failed.message.contains("deployment 1 keeps serving"),
        "{}",
        failed.message
    );
    let s = service().await;
    assert_eq!(s.rollout.status, ServiceStatus::DeploymentError);
    assert_eq!(
        s.rollout.generation,
        generation_before + 1,
        "reverted at a new generation"
    );
    assert_eq!(target_image().await.as_deref(), Some("web:1"));
    // A late report for the failed generation changes nothing.
    let repeat = store
        .agent_apply_reports(
            "dc1",
            &[(
                99,
                AgentReport::Status(WorkloadStatus {
                    service: web.clone(),
                    revision: 1,
                    generation: generation_before,
                    observed_generation: 0,
                    ready_replicas: 0,
                    updated_replicas: 0,
                    desired_replicas: 1,
                    phase: WorkloadPhase::Available,
                    message: String::new(),
                    reason: None,
                    report_time: Timestamp(6),
                }),
            )],
        )
        .await;
    assert!(repeat.is_ok());
    assert_eq!(
        service().await.rollout.status,
        ServiceStatus::DeploymentError
    );
    sequence.store(99, std::sync::atomic::Ordering::SeqCst);

    // A deploy during a deploy is queued, and starts when the first one ends.
    let v3 = deploy("web:3", ServiceAction::Deploy).await.unwrap();
    let v4 = deploy("web:4", ServiceAction::Deploy).await.unwrap();
    assert_eq!(v4.deployment.status, DeploymentStatus::Queued);
    report(WorkloadPhase::Available, None).await;
    let reader_get = async |d: &outpost_domain::DeploymentName| {
        store
            .reader()
            .await
            .unwrap()
            .deployment_get(d)
            .await
            .unwrap()
    };
    assert_eq!(
        reader_get(&v3.deployment.name).await.status,
        DeploymentStatus::Deployed
    );
    assert_eq!(
        reader_get(&v4.deployment.name).await.status,
        DeploymentStatus::Deploying
    );
    assert_eq!(target_image().await.as_deref(), Some("web:4"));

    // Cancel while deploying: back to the live version (3), then CANCELED.
    let mut tx = store.begin().await.unwrap();
    let canceling = tx
        .deployment_cancel(&v4.deployment.name, ACTOR)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(canceling.status, DeploymentStatus::Canceling);
    assert_eq!(target_image().await.as_deref(), Some("web:3"));
    report(WorkloadPhase::Available, None).await;
    assert_eq!(
        reader_get(&v4.deployment.name).await.status,
        DeploymentStatus::Canceled
    );
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .deployment_cancel(&v4.deployment.name, ACTOR)
        .await
        .unwrap_err();
    drop(tx);
    assert!(again.to_string().contains("CANCELED"), "{again}");

    // Stop, then restart refused while stopped; redeploy starts it again.
    let mut tx = store.begin().await.unwrap();
    tx.service_stop(&web, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.desired_inputs(&dc1).await.unwrap().targets[0].stopped);
    report(WorkloadPhase::Available, None).await;
    assert_eq!(service().await.rollout.status, ServiceStatus::Stopped);
    let mut tx = store.begin().await.unwrap();
    let err = tx.service_restart(&web, ACTOR).await.unwrap_err();
    drop(tx);
    assert!(err.to_string().contains("STOPPED"), "{err}");
    let resumed = deploy("web:3", ServiceAction::Redeploy).await.unwrap();
    assert!(resumed.changed, "a stopped service starts again");
    report(WorkloadPhase::Available, None).await;
    let s = service().await;
    assert_eq!(
        (s.rollout.status, s.rollout.stopped),
        (ServiceStatus::Deployed, false)
    );

    // Restart: a new restart time at a new generation.
    let mut tx = store.begin().await.unwrap();
    let restarting = tx.service_restart(&web, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(restarting.rollout.status, ServiceStatus::Restarting);
    assert!(store.desired_inputs(&dc1).await.unwrap().targets[0].restart_time > 0);
    report(WorkloadPhase::Available, None).await;
    assert_eq!(service().await.rollout.status, ServiceStatus::Restarted);

    // History is kept, newest first.
    let all = store
        .reader()
        .await
        .unwrap()
        .deployment_list(&web, &page(50))
        .await
        .unwrap();
    let numbers: Vec<&str> = all
        .items
        .iter()
        .map(|d| d.name.deployment.as_str())
        .collect();
    assert_eq!(numbers, ["5", "4", "3", "2", "1"]);
}
store_test!(deployments_follow_the_lifecycle);

/// Secrets are stored sealed as given, listed by name only, and restart a running service.
async fn secrets_are_listed_by_name_and_restart_the_service(store: Store) {
    use outpost_domain::{
        deployment::{ServiceAction, ServiceStatus},
        lifecycle::DeploymentSpec,
    };
    let project = seed(&store, "t").await;
    let web = svc_of(&project, "production", "web");
    let mut tx = store.begin().await.unwrap();
    tx.service_create(&web, &spec("web:1"), ACTOR)
        .await
        .unwrap();
    let set = tx
        .secret_set(&web, "TOKEN", b"sealed-bytes", ACTOR)
        .await
        .unwrap();
    assert_eq!(
        set.rollout.status,
        ServiceStatus::NotDeployed,
        "nothing runs, nothing restarts"
    );
    tx.service_deploy(
        &web,
        ServiceAction::Deploy,
        DeploymentSpec {
            service: spec("web:1"),
            image: "web:1".into(),
        },
        "",
        ACTOR,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let names = store
        .reader()
        .await
        .unwrap()
        .secret_names(&web)
        .await
        .unwrap();
    assert_eq!(
        names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["TOKEN"]
    );
    let inputs = store
        .desired_inputs(&DatacenterName {
            datacenter: "dc1".into(),
        })
        .await
        .unwrap();
    assert_eq!(inputs.sealed_secrets.len(), 1);
    assert_eq!(inputs.sealed_secrets[0].sealed, b"sealed-bytes");
    let mut tx = store.begin().await.unwrap();
    let missing = tx.secret_delete(&web, "NOPE", ACTOR).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }));
    tx.secret_delete(&web, "TOKEN", ACTOR).await.unwrap();
    tx.commit().await.unwrap();
    // Deleting the service takes its deployments and secrets with it.
    let mut tx = store.begin().await.unwrap();
    tx.secret_set(&web, "TOKEN", b"x", ACTOR).await.unwrap();
    tx.service_delete(&web, None, ACTOR).await.unwrap();
    tx.commit().await.unwrap();
}
store_test!(secrets_are_listed_by_name_and_restart_the_service);

/// Managed services: created CREATING, unique names among the live ones, transitions only
/// where the lifecycle allows them (naming the status), deletion cascades with the project.
async fn managed_services_follow_their_lifecycle(store: Store) {
    use outpost_domain::{
        ManagedServiceName,
        managed::{ManagedAction, ManagedStatus},
    };
    let project = seed(&store, "t").await;
    let name = ManagedServiceName {
        tenant: project.tenant.clone(),
        project: project.project.clone(),
        environment: "production".into(),
        managed_service: "db".into(),
    };
    let config = serde_json::json!({"version": "16", "storage_gib": 10});
    let new = crate::NewManaged {
        provider: "postgresql",
        display_name: "DB",
        config: &config,
        sealed_secrets: b"sealed",
    };
    let mut tx = store.begin().await.unwrap();
    let created = tx.managed_create(&name, new.clone(), ACTOR).await.unwrap();
    assert_eq!(
        (created.status, created.generation),
        (ManagedStatus::Creating, 1)
    );
    tx.commit().await.unwrap();
    // (A failed statement ends a PostgreSQL transaction, so the duplicate gets its own.)
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .managed_create(&name, new.clone(), ACTOR)
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::AlreadyExists { .. }),
        "{again:?}"
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let refused = tx
        .managed_update(&name, None, &config, ACTOR)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("CREATING"), "{refused}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let deleting = tx
        .managed_act(&name, ManagedAction::Delete, true, None, ACTOR)
        .await
        .unwrap();
    assert_eq!(
        (deleting.status, deleting.generation),
        (ManagedStatus::Deleting, 2)
    );
    tx.commit().await.unwrap();
    let listed = store
        .reader()
        .await
        .unwrap()
        .managed_list(&name.environment_name(), false, &page(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        store
            .reader()
            .await
            .unwrap()
            .managed_sealed_secrets(&name)
            .await
            .unwrap(),
        b"sealed"
    );
    // Even a cascade leaves a managed service's data alone: it is deleted on its own.
    let mut tx = store.begin().await.unwrap();
    let refused = tx
        .project_delete(&project, None, true, ACTOR)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::InUse { detail, .. } if detail.contains("managed services")),
        "{refused:?}"
    );
    let refused = tx
        .tenant_delete(&TenantName::new(&project.tenant), None, true, ACTOR)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::InUse { .. }), "{refused:?}");
}
store_test!(managed_services_follow_their_lifecycle);

store_test!(the_fingerprint_covers_every_table_and_sees_a_change);
/// Every table the migrations create has a digest (but the audit trail), and a write shows.
async fn the_fingerprint_covers_every_table_and_sees_a_change(store: Store) {
    let fingerprints = crate::testing::Fingerprints::of(&store).await;
    let before = fingerprints.take(&store).await;
    let covered: Vec<&String> = before.keys().collect();
    let migrator = sqlx::migrate!("./migrations");
    let mut created: Vec<String> = migrator
        .iter()
        .flat_map(|m| m.sql.as_str().split("CREATE TABLE ").skip(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .filter(|name| name != "audit_records")
        .collect();
    created.sort();
    assert_eq!(covered, created.iter().collect::<Vec<_>>());
    seed(&store, "a").await;
    assert_ne!(fingerprints.take(&store).await, before);
}
