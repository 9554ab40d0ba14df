//! Managed-service providers as data (DESIGN §5): each one a definition (JSON) with JSON
//! Schemas for its config, its secrets and the details it reports back, per-field update
//! rules and capabilities. The built-in ones ship in `providers/`; an operator adds more by
//! dropping files in a directory. Validation turns schema errors into field violations, so
//! a bad config is refused like any other bad field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Violations;

mod runtime;

pub use runtime::{
    BucketRun, BucketTemplate, Rendered, Run, RuntimeTemplate, StatefulRun, StatefulTemplate,
};

/// What kind of service a provider offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// A database.
    Database,
    /// A cache.
    Cache,
    /// Object storage.
    ObjectStorage,
}

impl Category {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "DATABASE",
            Self::Cache => "CACHE",
            Self::ObjectStorage => "OBJECT_STORAGE",
        }
    }
}

/// What a provider needs from the datacenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Needs {
    /// Only Kubernetes.
    Nothing,
    /// Block volumes (Ceph RBD through the CSI storage class).
    BlockStorage,
    /// The Ceph object gateway.
    ObjectStorage,
}

/// How a config field may change after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateRule {
    /// Any new value.
    Editable,
    /// Never.
    Immutable,
    /// Only to a larger number.
    IncreaseOnly,
}

/// What a provider's services can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Can be paused (compute released, data kept) and resumed.
    pub pausable: bool,
    /// Can be backed up.
    pub backups: bool,
}

/// A provider definition, as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Unique name, a DNS label: `postgresql`.
    pub name: String,
    /// Version of the definition.
    pub version: String,
    /// For people.
    pub display_name: String,
    /// Its kind.
    pub category: Category,
    /// What it is, for people.
    pub description: String,
    /// What the datacenter must offer.
    pub needs: Needs,
    /// What its services can do.
    pub capabilities: Capabilities,
    /// JSON Schema of the config.
    pub config_schema: Value,
    /// JSON Schema of the secrets (given once, never shown again).
    pub secrets_schema: Value,
    /// JSON Schema of the details a running service reports (host, port, …).
    pub details_schema: Value,
    /// How each config field may change; fields not named are editable.
    #[serde(default)]
    pub update_rules: BTreeMap<String, UpdateRule>,
    /// How its services run in a datacenter.
    pub runtime: RuntimeTemplate,
}

/// A definition with its schemas compiled.
pub struct Provider {
    /// The definition.
    pub definition: Definition,
    config: jsonschema::Validator,
    secrets: jsonschema::Validator,
    images: Vec<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.definition.name)
            .finish_non_exhaustive()
    }
}

/// A definition that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("provider definition {source_name}: {problem}")]
pub struct DefinitionError {
    /// Where it came from (a file name).
    pub source_name: String,
    /// What is wrong.
    pub problem: String,
}

impl Provider {
    /// Parses and checks a definition (from `source_name`, for errors): its schemas
    /// compile, its name is a DNS label, its update rules name config fields, and its
    /// image names only required config fields with an enum (so its images can be listed).
    pub fn parse(json: &str, source_name: &str) -> Result<Self, DefinitionError> {
        let fail = |problem: String| DefinitionError {
            source_name: source_name.to_owned(),
            problem,
        };
        let definition: Definition = serde_json::from_str(json).map_err(|e| fail(e.to_string()))?;
        if !crate::names::is_dns_label(&definition.name) {
            return Err(fail(format!(
                "name {:?} must be a DNS label (lowercase letters, digits, '-')",
                definition.name
            )));
        }
        let compile = |what: &str, schema: &Value| {
            jsonschema::validator_for(schema).map_err(|e| fail(format!("{what}: {e}")))
        };
        let config = compile("config_schema", &definition.config_schema)?;
        let secrets = compile("secrets_schema", &definition.secrets_schema)?;
        compile("details_schema", &definition.details_schema)?;
        let fields = definition.config_schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if let Some(unknown) = definition
            .update_rules
            .keys()
            .find(|k| !fields.contains_key(*k))
        {
            return Err(fail(format!(
                "update_rules names {unknown}, which is not a config field"
            )));
        }
        let secret_fields = definition.secrets_schema["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let config_fields: Vec<String> = fields.keys().cloned().collect();
        definition
            .runtime
            .check(&config_fields, &secret_fields)
            .map_err(fail)?;
        let images = definition
            .runtime
            .images(&definition.config_schema)
            .map_err(fail)?;
        Ok(Self {
            definition,
            config,
            secrets,
            images,
        })
    }

    /// Every image its services can run, as the definition writes it (`postgres:16`),
    /// sorted; empty when they run no container. [`Provider::render`] gives one of these
    /// for every config valid against the schema: a definition whose image could be
    /// anything else is refused by [`Provider::parse`].
    pub fn images(&self) -> &[String] {
        &self.images
    }

    /// What a service with `config` and `secrets` (valid against the schemas) runs; an
    /// error names what the definition got wrong.
    pub fn render(&self, config: &Value, secrets: &Value) -> Result<Rendered, String> {
        self.definition.runtime.render(config, secrets)
    }

    /// Adds a violation under `field` (e.g. `config`) for every way `config` breaks the
    /// schema, naming the exact field (`config.storage_gib`).
    pub fn check_config(&self, v: &mut Violations, field: &str, config: &Value) {
        schema_violations(&self.config, v, field, config);
    }

    /// The same for secrets. Messages never quote the secret values.
    pub fn check_secrets(&self, v: &mut Violations, field: &str, secrets: &Value) {
        for error in self.secrets.iter_errors(secrets) {
            let path = pointer_to_field(field, &error.instance_path().to_string());
            v.add(path, describe_without_value(&error));
        }
    }

    /// Adds a violation for every field `new` changes against its update rule from `old`.
    pub fn check_update(&self, v: &mut Violations, field: &str, old: &Value, new: &Value) {
        for (name, rule) in &self.definition.update_rules {
            let (before, after) = (&old[name], &new[name]);
            if before == after {
                continue;
            }
            match rule {
                UpdateRule::Editable => {}
                UpdateRule::Immutable => v.add(
                    format!("{field}.{name}"),
                    format!("is immutable: it stays {before}"),
                ),
                UpdateRule::IncreaseOnly => {
                    let grows = match (before.as_f64(), after.as_f64()) {
                        (Some(b), Some(a)) => a > b,
                        (None, _) => true,
                        (Some(_), None) => false,
                    };
                    if !grows {
                        v.add(
                            format!("{field}.{name}"),
                            format!("can only grow: it is {before}"),
                        );
                    }
                }
            }
        }
    }
}

fn schema_violations(
    validator: &jsonschema::Validator,
    v: &mut Violations,
    field: &str,
    value: &Value,
) {
    for error in validator.iter_errors(value) {
        let path = pointer_to_field(field, &error.instance_path().to_string());
        v.add(path, error.to_string());
    }
}

/// What a schema error says, without the offending value (which may be a secret).
fn describe_without_value(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match error.kind() {
        K::Required { property } => format!("{property} is required"),
        K::MinLength { limit } => format!("must be at least {limit} characters"),
        K::MaxLength { limit } => format!("must be at most {limit} characters"),
        K::Pattern { pattern } => format!("must match {pattern}"),
        K::Type { .. } => "has the wrong type".to_owned(),
        K::AdditionalProperties { unexpected } => {
            format!("unknown fields: {}", unexpected.join(", "))
        }
        _ => "is not valid".to_owned(),
    }
}

/// `config` + `/storage_gib` → `config.storage_gib`; `/items/0` → `.items[0]`.
fn pointer_to_field(field: &str, pointer: &str) -> String {
    let mut out = field.to_owned();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// The providers a management service offers, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

/// The built-in definitions, with the file name each came from.
const BUILT_IN: [(&str, &str); 3] = [
    (
        "postgresql.json",
        include_str!("../providers/postgresql.json"),
    ),
    ("bucket.json", include_str!("../providers/bucket.json")),
    ("redis.json", include_str!("../providers/redis.json")),
];

impl Catalog {
    /// The built-in providers, plus `extra` definitions (file name, text) an operator
    /// added; an extra one with a built-in's name replaces it.
    pub fn with(extra: &[(String, String)]) -> Result<Self, DefinitionError> {
        let mut catalog = Self::default();
        let built_in = BUILT_IN
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()));
        for (source, text) in built_in.chain(extra.iter().cloned()) {
            let provider = Provider::parse(&text, &source)?;
            catalog
                .providers
                .insert(provider.definition.name.clone(), provider);
        }
        Ok(catalog)
    }

    /// One provider.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// Every provider, by name.
    pub fn all(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

#[cfg(test)]
mod tests;
