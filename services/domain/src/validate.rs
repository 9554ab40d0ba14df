//! Input validation. Each check appends [`FieldViolation`]s naming the offending field by its
//! path in the request (`service.env[2].name`), so one answer lists every problem at once.

use std::collections::HashSet;

use crate::{
    names::is_dns_label,
    resources::{GitSource, Port, ServiceSpec, Source},
};

/// One bad field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, e.g. `service.ports[0].container_port`.
    pub field: String,
    /// What is wrong, for a person to read.
    pub description: String,
}

/// A list of violations collected while checking one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    /// Records that `field` is bad because of `description`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, otherwise the violations.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Most replicas a service may ask for.
pub const MAX_REPLICAS: i64 = 100;
/// Most environment variables per service.
pub const MAX_ENV_VARS: usize = 200;
/// Longest environment variable name.
pub const MAX_ENV_NAME_LEN: usize = 255;
/// Longest environment variable value, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;
/// Most ports per service.
pub const MAX_PORTS: usize = 20;
/// Longest image reference.
pub const MAX_IMAGE_LEN: usize = 512;
/// Longest health-check path.
pub const MAX_HEALTH_PATH_LEN: usize = 1024;
/// Longest git URL.
pub const MAX_GIT_URL_LEN: usize = 2048;
/// Most members of a team.
pub const MAX_TEAM_MEMBERS: usize = 1000;

/// Characters that render invisibly or reorder text: accepted nowhere a person reads a name,
/// because they let one string masquerade as another. Covers every Unicode `Bidi_Control`
/// character, including U+061C ARABIC LETTER MARK outside the General Punctuation block.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A resource id (the last segment of a new name) must be a DNS label.
pub fn resource_id(v: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        v.add(field, "is required");
    } else if !is_dns_label(id) {
        v.add(
            field,
            "must be a DNS label: 1 to 63 lowercase letters, digits or '-', starting with a letter and not ending with '-'",
        );
    }
}

/// Display names: optional, at most 100 characters, nothing invisible or direction-changing.
pub fn display_name(v: &mut Violations, field: &str, s: &str) {
    if s.chars().count() > MAX_DISPLAY_NAME_CHARS {
        v.add(
            field,
            format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
        );
    }
    if s.chars().any(is_deceptive) {
        v.add(
            field,
            "must not contain control, zero-width or bidirectional-override characters",
        );
    }
}

/// An optional e-mail address: `local@domain`, at most 254 characters, printable ASCII.
pub fn email(v: &mut Violations, field: &str, s: &str) {
    if s.is_empty() {
        return;
    }
    let ok = s.len() <= 254
        && s.bytes().all(|b| b.is_ascii_graphic())
        && matches!(s.split_once('@'), Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    if !ok {
        v.add(field, "must be an e-mail address like name@example.com");
    }
}

/// Checks everything a caller gives for a service; `prefix` is the field path of the
/// service in the request (`service`).
pub fn service_spec(v: &mut Violations, prefix: &str, spec: &ServiceSpec) {
    display_name(v, &format!("{prefix}.display_name"), &spec.display_name);
    match &spec.source {
        Source::Unset => v.add(format!("{prefix}.image"), "is required: set image or git"),
        Source::Image(image) => image_reference(v, &format!("{prefix}.image"), image),
        Source::Git(git) => git_source(v, &format!("{prefix}.git"), git),
    }
    if spec.shape.is_none() {
        v.add(
            format!("{prefix}.shape"),
            "is required: one of SHAPE_FLX, SHAPE_MAX, SHAPE_PWR",
        );
    }
    if !(1..=MAX_REPLICAS).contains(&spec.replicas) {
        v.add(
            format!("{prefix}.replicas"),
            format!("must be between 1 and {MAX_REPLICAS}"),
        );
    }
    env_vars(v, prefix, spec);
    ports(v, prefix, &spec.ports);
    health_check_path(
        v,
        &format!("{prefix}.health_check_path"),
        &spec.health_check_path,
    );
}

/// A container image reference in the OCI distribution grammar.
pub fn image_reference(v: &mut Violations, field: &str, image: &str) {
    if image.is_empty() {
        v.add(field, "is required");
    } else if image.len() > MAX_IMAGE_LEN {
        v.add(field, format!("must be at most {MAX_IMAGE_LEN} characters"));
    } else if let Err(e) = image.parse::<oci_spec::distribution::Reference>() {
        v.add(
            field,
            format!("is not a valid image reference ({e}); expected e.g. registry.example.com/team/app:1.2.3"),
        );
    }
}

fn git_source(v: &mut Violations, field: &str, git: &GitSource) {
    let url = &git.url;
    let scheme_ok = url.starts_with("https://")
        || url.starts_with("ssh://")
        || (url.starts_with("git@") && url.contains(':'));
    if url.is_empty() {
        v.add(format!("{field}.url"), "is required");
    } else if url.len() > MAX_GIT_URL_LEN
        || !scheme_ok
        || url.chars().any(|c| c.is_whitespace() || is_deceptive(c))
    {
        v.add(
            format!("{field}.url"),
            format!("must be an https://, ssh:// or git@host:path URL of at most {MAX_GIT_URL_LEN} characters"),
        );
    }
    let r = &git.git_ref;
    if r.len() > 255
        || r.contains("..")
        || r.starts_with('-')
        || r.chars()
            .any(|c| c.is_whitespace() || is_deceptive(c) || "~^:?*[\\".contains(c))
    {
        v.add(
            format!("{field}.ref"),
            "must be a valid branch, tag or commit name",
        );
    }
    relative_path(v, &format!("{field}.dockerfile_path"), &git.dockerfile_path);
}

/// A path inside a repository: relative, no `..` segments.
fn relative_path(v: &mut Violations, field: &str, path: &str) {
    if path.len() > 255
        || path.starts_with('/')
        || path.split('/').any(|seg| seg == "..")
        || path.chars().any(|c| c == '\\' || is_deceptive(c))
    {
        v.add(
            field,
            "must be a relative path inside the repository without '..'",
        );
    }
}

fn env_vars(v: &mut Violations, prefix: &str, spec: &ServiceSpec) {
    if spec.env.len() > MAX_ENV_VARS {
        v.add(
            format!("{prefix}.env"),
            format!("must have at most {MAX_ENV_VARS} entries"),
        );
        return;
    }
    let mut seen = HashSet::new();
    for (i, var) in spec.env.iter().enumerate() {
        let field = format!("{prefix}.env[{i}].name");
        if env_name(v, &field, &var.name) && !seen.insert(var.name.as_str()) {
            v.add(&field, format!("{} is given more than once", var.name));
        }
        env_value(v, &format!("{prefix}.env[{i}].value"), &var.value);
    }
}

/// An environment variable's name; true when valid.
fn env_name(v: &mut Violations, field: &str, name: &str) -> bool {
    let ok = is_c_identifier(name);
    if !ok {
        v.add(
            field,
            format!("must be letters, digits and '_', not starting with a digit, at most {MAX_ENV_NAME_LEN} characters"),
        );
    }
    ok
}

fn env_value(v: &mut Violations, field: &str, value: &str) {
    if value.len() > MAX_ENV_VALUE_BYTES {
        v.add(field, "must be at most 32 KiB");
    } else if value.contains('\0') {
        v.add(field, "must not contain NUL characters");
    }
}

/// A secret: named like an environment variable (which it becomes), and not also one of
/// the service's plain `env` names (the container would see only one of them).
pub fn secret(v: &mut Violations, spec: &ServiceSpec, name: &str, value: &str) {
    if env_name(v, "secret", name) && spec.env.iter().any(|e| e.name == name) {
        v.add(
            "secret",
            format!("{name} is already a plain environment variable of the service; remove it from env first"),
        );
    }
    env_value(v, "value", value);
}

fn is_c_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ENV_NAME_LEN
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn ports(v: &mut Violations, prefix: &str, ports: &[Port]) {
    if ports.len() > MAX_PORTS {
        v.add(
            format!("{prefix}.ports"),
            format!("must have at most {MAX_PORTS} entries"),
        );
        return;
    }
    let mut numbers = HashSet::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let field = format!("{prefix}.ports[{i}].container_port");
        if !(1..=65535).contains(&port.container_port) {
            v.add(&field, "must be between 1 and 65535");
        } else if !numbers.insert((port.container_port, port.protocol)) {
            v.add(
                &field,
                format!("port {} is given more than once", port.container_port),
            );
        }
        if !port.name.is_empty() {
            let field = format!("{prefix}.ports[{i}].name");
            if port.name.len() > 15 || !is_dns_label(&port.name) {
                v.add(&field, "must be a DNS label of at most 15 characters");
            } else if !names.insert(port.name.as_str()) {
                v.add(&field, format!("{} is given more than once", port.name));
            }
        }
    }
}

/// An HTTP path (with optional query) for the readiness check; empty means none.
pub fn health_check_path(v: &mut Violations, field: &str, path: &str) {
    if path.is_empty() {
        return;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%?".contains(c);
    let path_part = path.split('?').next().unwrap_or_default();
    if !path.starts_with('/')
        || path.len() > MAX_HEALTH_PATH_LEN
        || !path.chars().all(allowed)
        || path_part.split('/').any(|seg| seg == "..")
    {
        v.add(
            field,
            format!("must be an absolute URL path like /healthz, at most {MAX_HEALTH_PATH_LEN} characters, without '..'"),
        );
    }
}

/// Checks team members: user names of `tenant`, at most 1000, no duplicates.
pub fn team_members(v: &mut Violations, field: &str, tenant: &str, members: &[String]) {
    if members.len() > MAX_TEAM_MEMBERS {
        v.add(
            field,
            format!("must have at most {MAX_TEAM_MEMBERS} entries"),
        );
        return;
    }
    let mut seen = HashSet::new();
    for (i, m) in members.iter().enumerate() {
        match crate::UserName::parse(m) {
            Ok(u) if u.tenant.as_deref() == Some(tenant) => {
                if !seen.insert(m.as_str()) {
                    v.add(format!("{field}[{i}]"), "is given more than once");
                }
            }
            _ => v.add(
                format!("{field}[{i}]"),
                format!("must be a user of this tenant: tenants/{tenant}/users/{{user}}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
