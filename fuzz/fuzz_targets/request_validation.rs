//! Feeds arbitrary bytes to the checks the management server runs on a decoded request, and
//! asserts what an accepted value guarantees to the code behind validation (the store, the
//! agent, Kubernetes object names), not merely that nothing panics.
//!
//! The bytes are decoded as `CreateServiceRequest`, `UpdateTeamRequest` and
//! `CreateUserRequest` (each that decodes is checked the way its handler checks it), and read
//! as lossy UTF-8 for the resource-name parsers.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use outpost_domain::{
    ApiTokenName, EnvironmentName, NameError, ResourceName, ServiceName, TeamName, TenantName,
    Timestamp, UserName,
    names::is_dns_label,
    resources::{Meta, Service, ServiceSpec, Source},
    validate::{self, Violations},
};
use outpost_proto::management::v1 as pb;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = pb::CreateServiceRequest::decode(data) {
        create_service(&r);
    }
    if let Ok(r) = pb::UpdateTeamRequest::decode(data) {
        update_team(&r);
    }
    if let Ok(r) = pb::CreateUserRequest::decode(data) {
        create_user(&r);
    }
    raw_names(&String::from_utf8_lossy(data));
});

// === requests ===

/// What `ServiceApi::create_service` checks.
fn create_service(r: &pb::CreateServiceRequest) {
    let parent = parsed(&r.parent, EnvironmentName::parse);
    let Some(service) = r.service.as_ref() else {
        return;
    };
    let spec = ServiceSpec::from(service);
    let mut v = Violations::default();
    validate::resource_id(&mut v, "service_id", &r.service_id);
    validate::service_spec(&mut v, "service", &spec);
    assert_deterministic(&v, |again| {
        validate::resource_id(again, "service_id", &r.service_id);
        validate::service_spec(again, "service", &spec);
    });
    assert_fields_under(&v, &["service_id", "service."]);
    let id_ok = !v.0.iter().any(|f| f.field == "service_id");
    assert_eq!(id_ok, is_dns_label(&r.service_id), "{:?}", r.service_id);

    // Domain → wire → domain is lossless for every spec that came from the wire, valid or not:
    // a stored spec reads back as the caller sent it.
    let wire = pb::Service::from(Service {
        name: ServiceName::parse("tenants/t/projects/p/environments/e/services/s")
            .expect("literal name is valid"),
        spec: spec.clone(),
        meta: Meta {
            uid: String::new(),
            create_time: Timestamp(0),
            update_time: Timestamp(0),
            version: 1,
        },
    });
    assert_eq!(ServiceSpec::from(&wire), spec);

    if id_ok && v.is_empty() {
        accepted_spec(&spec);
        if let Some(parent) = parent {
            let name = ServiceName {
                tenant: parent.tenant,
                project: parent.project,
                environment: parent.environment,
                service: r.service_id.clone(),
            };
            parsed(&name.to_string(), ServiceName::parse)
                .expect("a name built from a valid parent and id parses");
        }
    }
}

/// What `TeamApi::update_team` checks (with a `members` and `display_name` mask).
fn update_team(r: &pb::UpdateTeamRequest) {
    let Some(team) = r.team.as_ref() else {
        return;
    };
    let mut v = Violations::default();
    validate::display_name(&mut v, "team.display_name", &team.display_name);
    display_name_verdict(&v, "team.display_name", &team.display_name);
    for m in &team.members {
        parsed(m, UserName::parse);
    }
    let Some(name) = parsed(&team.name, TeamName::parse) else {
        return;
    };
    let mut v = Violations::default();
    validate::team_members(&mut v, "team.members", &name.tenant, &team.members);
    assert_deterministic(&v, |again| {
        validate::team_members(again, "team.members", &name.tenant, &team.members);
    });
    assert_fields_under(&v, &["team.members"]);
    if !v.is_empty() {
        return;
    }
    assert!(team.members.len() <= validate::MAX_TEAM_MEMBERS);
    let mut seen = HashSet::new();
    for m in &team.members {
        let user = UserName::parse(m).expect("accepted member parses");
        assert_eq!(user.tenant.as_deref(), Some(name.tenant.as_str()), "{m:?}");
        assert!(seen.insert(user), "accepted duplicate member {m:?}");
    }
}

/// What `UserApi::create_user` checks.
fn create_user(r: &pb::CreateUserRequest) {
    // An empty parent creates a platform user.
    let parent = if r.parent.is_empty() {
        Some(None)
    } else {
        parsed(&r.parent, TenantName::parse).map(Some)
    };
    let Some(user) = r.user.as_ref() else {
        return;
    };
    parsed(&user.name, UserName::parse);
    let mut v = Violations::default();
    validate::resource_id(&mut v, "user_id", &r.user_id);
    validate::display_name(&mut v, "user.display_name", &user.display_name);
    validate::email(&mut v, "user.email", &user.email);
    assert_fields_under(&v, &["user_id", "user.display_name", "user.email"]);
    assert_eq!(
        !v.0.iter().any(|f| f.field == "user_id"),
        is_dns_label(&r.user_id)
    );
    display_name_verdict(&v, "user.display_name", &user.display_name);
    if !v.0.iter().any(|f| f.field == "user.email") {
        accepted_email(&user.email);
    }
    if let (true, Some(tenant)) = (v.is_empty(), parent) {
        let name = UserName {
            tenant: tenant.map(|t| t.tenant),
            user: r.user_id.clone(),
        };
        let back = parsed(&name.to_string(), UserName::parse)
            .expect("a name built from a valid parent and id parses");
        assert_eq!(back, name);
    }
}

/// The raw bytes as a name, the way `GetX`/`DeleteX` and event listing parse one.
fn raw_names(s: &str) {
    let any = parsed(s, ResourceName::parse);
    let token = parsed(s, ApiTokenName::parse);
    let specific = [
        parsed(s, TenantName::parse).is_some(),
        parsed(s, UserName::parse).is_some(),
        parsed(s, TeamName::parse).is_some(),
        parsed(s, EnvironmentName::parse).is_some(),
        parsed(s, ServiceName::parse).is_some(),
    ];
    if specific.iter().any(|ok| *ok) {
        assert!(
            any.is_some(),
            "{s:?} parses as a specific name but not as a resource"
        );
    }
    if let Some(n) = &any {
        // The tenant a name reports is the one its text starts with, so tenant scoping
        // cannot disagree with the name that is stored.
        if let Some(t) = n.tenant() {
            let prefix = format!("tenants/{t}");
            assert!(
                s == prefix || s.starts_with(&format!("{prefix}/")),
                "{s:?} vs {t:?}"
            );
        }
        assert!(token.is_none(), "{s:?} is both a resource and a token name");
    }
    if let Some(t) = &token {
        assert!(is_dns_label(&t.api_token));
    }
}

// === invariants ===

/// Parses `s`; a name that parses is path-safe and prints back to exactly `s`, and a refusal
/// quotes at most a short prefix of the input.
fn parsed<T: std::fmt::Display>(s: &str, parse: fn(&str) -> Result<T, NameError>) -> Option<T> {
    match parse(s) {
        Ok(name) => {
            assert_eq!(name.to_string(), s, "name does not round-trip");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/'),
                "{s:?}"
            );
            assert!(
                s.split('/')
                    .all(|seg| !seg.is_empty() && seg != ".." && seg != "."),
                "{s:?}"
            );
            Some(name)
        }
        Err(e) => {
            assert!(e.value.chars().count() <= 80, "error quotes {:?}", e.value);
            assert!(s.starts_with(&e.value));
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

/// What the store, the agent and Kubernetes may rely on for a spec that passed validation.
fn accepted_spec(spec: &ServiceSpec) {
    assert!(
        (1..=validate::MAX_REPLICAS).contains(&spec.replicas),
        "replicas {}",
        spec.replicas
    );
    assert!(spec.shape.is_some());
    assert!(spec.display_name.chars().count() <= validate::MAX_DISPLAY_NAME_CHARS);
    assert!(!spec.display_name.chars().any(is_deceptive));
    match &spec.source {
        Source::Unset => panic!("accepted a spec without a source"),
        Source::Image(image) => {
            assert!(!image.is_empty() && image.len() <= validate::MAX_IMAGE_LEN);
            assert!(!image.chars().any(|c| c.is_whitespace() || is_deceptive(c)));
        }
        Source::Git(git) => {
            assert!(!git.url.is_empty() && git.url.len() <= validate::MAX_GIT_URL_LEN);
            assert!(
                !git.url
                    .chars()
                    .any(|c| c.is_whitespace() || is_deceptive(c))
            );
            assert!(!git.git_ref.starts_with('-') && !git.git_ref.contains(".."));
            assert!(!git.dockerfile_path.starts_with('/'));
            assert!(!git.dockerfile_path.split('/').any(|seg| seg == ".."));
        }
    }
    assert!(spec.env.len() <= validate::MAX_ENV_VARS);
    let mut env_names = HashSet::new();
    for var in &spec.env {
        let name = var.name.as_bytes();
        assert!(!name.is_empty(), "accepted an empty env var name");
        assert!(name.len() <= validate::MAX_ENV_NAME_LEN);
        assert!(!name[0].is_ascii_digit());
        assert!(name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'));
        assert!(
            env_names.insert(&var.name),
            "duplicate env var {}",
            var.name
        );
        assert!(var.value.len() <= validate::MAX_ENV_VALUE_BYTES);
        assert!(!var.value.contains('\0'));
    }
    assert!(spec.ports.len() <= validate::MAX_PORTS);
    let mut numbers = HashSet::new();
    let mut port_names = HashSet::new();
    for port in &spec.ports {
        assert!(u16::try_from(port.container_port).is_ok_and(|p| p != 0));
        assert!(numbers.insert((port.container_port, port.protocol)));
        if !port.name.is_empty() {
            assert!(port.name.len() <= 15 && is_dns_label(&port.name));
            assert!(port_names.insert(&port.name));
        }
    }
    let path = &spec.health_check_path;
    if !path.is_empty() {
        assert!(path.starts_with('/') && path.len() <= validate::MAX_HEALTH_PATH_LEN);
        assert!(path.is_ascii() && !path.bytes().any(|b| b.is_ascii_whitespace()));
        let before_query = path.split('?').next().unwrap_or_default();
        assert!(!before_query.split('/').any(|seg| seg == ".."), "{path:?}");
    }
}

/// A display name is refused exactly when it is too long or holds a character that hides or
/// reorders text.
fn display_name_verdict(v: &Violations, field: &str, s: &str) {
    let refused = v.0.iter().any(|f| f.field == field);
    let bad = s.chars().count() > validate::MAX_DISPLAY_NAME_CHARS || s.chars().any(is_deceptive);
    assert_eq!(refused, bad, "{s:?}");
}

fn accepted_email(s: &str) {
    if s.is_empty() {
        return;
    }
    assert!(
        s.len() <= 254 && s.bytes().all(|b| b.is_ascii_graphic()),
        "{s:?}"
    );
    let (local, domain) = s.split_once('@').expect("accepted e-mail has an '@'");
    assert!(!local.is_empty() && !domain.contains('@'), "{s:?}");
    assert!(domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
}

/// Characters that must never reach a place a person reads: controls, zero-width characters,
/// and every character with the Unicode `Bidi_Control` property (PropList.txt), which is
/// what "direction-changing" means. Spelled out independently of the domain's own list.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Validation is a pure function of its input.
fn assert_deterministic(v: &Violations, run: impl FnOnce(&mut Violations)) {
    let mut again = Violations::default();
    run(&mut again);
    assert_eq!(&again, v);
}

/// Every violation names a field of the request it was raised for, and says what is wrong.
fn assert_fields_under(v: &Violations, prefixes: &[&str]) {
    for f in &v.0 {
        assert!(
            prefixes.iter().any(|p| f.field.starts_with(p)),
            "violation on unexpected field {:?}",
            f.field
        );
        assert!(!f.description.is_empty());
    }
}
