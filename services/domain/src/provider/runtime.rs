//! How a provider's services run, as data: templates over a service's config and secrets
//! (`${config.version}`, `${secrets.password}`) that render to a concrete [`Run`] the agent
//! carries out. The agent knows two kinds of run, a stateful container and a Ceph bucket;
//! which image, ports, variables and volume a provider uses is in its definition, so an
//! operator's provider runs without a new agent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Shape, resources::EnvVar};

/// A definition's `runtime`: one of the kinds the agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RuntimeTemplate {
    /// One container in a StatefulSet, with a Service and optionally a volume.
    Stateful(StatefulTemplate),
    /// A bucket, owned by its own user, in the datacenter's Ceph object gateway.
    Bucket(BucketTemplate),
}

/// A stateful container. Every string may hold `${config.field}` references; only
/// `secret_env` may reference `${secrets.field}`, so a secret can never reach a plain
/// variable, an argument or the details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatefulTemplate {
    /// Container image.
    pub image: String,
    /// The port it serves, also the Service's.
    pub port: u16,
    /// Its shape (`FLX`, `MAX`, `PWR`).
    pub shape: String,
    /// Volume size in GiB; renders empty for no volume.
    #[serde(default)]
    pub storage_gib: String,
    /// Where the volume is mounted.
    #[serde(default)]
    pub data_path: String,
    /// Plain environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables read from the service's Kubernetes Secret.
    #[serde(default)]
    pub secret_env: BTreeMap<String, String>,
    /// Container arguments (Kubernetes expands `$(VAR)` from the environment).
    #[serde(default)]
    pub args: Vec<String>,
    /// Details reported besides `host` and `port`.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketTemplate {
    /// Quota in GiB.
    pub quota_gib: String,
    /// `true` to keep every version of every object.
    #[serde(default)]
    pub versioning: String,
    /// The S3 secret key of the bucket's user (the only place a secret may go).
    pub secret_key: String,
}

/// What a service runs, rendered from its provider's template, config and secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// A stateful container.
    Stateful(StatefulRun),
    /// A bucket.
    Bucket(BucketRun),
}

/// A rendered stateful container. Its `Debug` names the secrets but never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct StatefulRun {
    /// Container image.
    pub image: String,
    /// The port it serves.
    pub port: u16,
    /// CPU in millicores.
    pub cpu_millis: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Volume size in GiB; `None` for no volume.
    pub storage_gib: Option<u32>,
    /// Where the volume is mounted.
    pub data_path: String,
    /// Plain environment variables.
    pub env: Vec<EnvVar>,
    /// Secret environment variables.
    pub secrets: Vec<EnvVar>,
    /// Container arguments.
    pub args: Vec<String>,
}

/// A rendered bucket. Its `Debug` never shows the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct BucketRun {
    /// Quota in bytes.
    pub quota_bytes: u64,
    /// Keep every version of every object.
    pub versioning: bool,
    /// The user's S3 secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for StatefulRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret_names: Vec<&str> = self.secrets.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("StatefulRun")
            .field("image", &self.image)
            .field("port", &self.port)
            .field("cpu_millis", &self.cpu_millis)
            .field("memory_mib", &self.memory_mib)
            .field("storage_gib", &self.storage_gib)
            .field("data_path", &self.data_path)
            .field("env", &self.env)
            .field("secrets", &secret_names)
            .field("args", &self.args)
            .finish()
    }
}

impl std::fmt::Debug for BucketRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketRun")
            .field("quota_bytes", &self.quota_bytes)
            .field("versioning", &self.versioning)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

/// A rendered run with the details it reports besides what only the datacenter knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What to run.
    pub run: Run,
    /// Details known from the config (`database`, `user`, …).
    pub details: serde_json::Map<String, Value>,
}

const GIB: f64 = (1u64 << 30) as f64;

impl RuntimeTemplate {
    /// Checks that every reference names a field of the config or secrets schema, and that
    /// secrets are referenced only where they go into a secret.
    pub fn check(&self, config_fields: &[String], secret_fields: &[String]) -> Result<(), String> {
        let (plain, secret): (Vec<Located<'_>>, Vec<Located<'_>>) = match self {
            Self::Stateful(s) => {
                let mut plain = vec![
                    ("image".to_owned(), s.image.as_str()),
                    ("shape".to_owned(), s.shape.as_str()),
                    ("storage_gib".to_owned(), s.storage_gib.as_str()),
                    ("data_path".to_owned(), s.data_path.as_str()),
                ];
                plain.extend(s.env.iter().map(|(k, v)| (format!("env.{k}"), v.as_str())));
                plain.extend(s.args.iter().map(|a| ("args".to_owned(), a.as_str())));
                plain.extend(
                    s.details
                        .iter()
                        .map(|(k, v)| (format!("details.{k}"), v.as_str())),
                );
                let secret = s
                    .secret_env
                    .iter()
                    .map(|(k, v)| (format!("secret_env.{k}"), v.as_str()))
                    .collect();
                (plain, secret)
            }
            Self::Bucket(b) => (
                vec![
                    ("quota_gib".to_owned(), b.quota_gib.as_str()),
                    ("versioning".to_owned(), b.versioning.as_str()),
                ],
                vec![("secret_key".to_owned(), b.secret_key.as_str())],
            ),
        };
        for (at, template, allow_secrets) in plain
            .iter()
            .map(|(a, t)| (a, *t, false))
            .chain(secret.iter().map(|(a, t)| (a, *t, true)))
        {
            for reference in references(template) {
                let known = match reference.split_once('.') {
                    Some(("config", field)) => config_fields.iter().any(|f| f == field),
                    Some(("secrets", field)) if allow_secrets => {
                        secret_fields.iter().any(|f| f == field)
                    }
                    Some(("secrets", _)) => {
                        return Err(format!(
                            "runtime {at} references ${{{reference}}}: secrets may only go into secret_env or secret_key"
                        ));
                    }
                    _ => false,
                };
                if !known {
                    return Err(format!(
                        "runtime {at} references ${{{reference}}}, which is not a config or secrets field"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Renders the run for `config` and `secrets` (both valid against the provider's
    /// schemas); an error names what the definition got wrong.
    pub fn render(&self, config: &Value, secrets: &Value) -> Result<Rendered, String> {
        let values = Values { config, secrets };
        match self {
            Self::Stateful(s) => {
                let shape_text = values.text(&s.shape);
                let shape =
                    Shape::from_str_opt(&shape_text.to_ascii_lowercase()).ok_or_else(|| {
                        format!("runtime shape renders to {shape_text:?}, not a shape")
                    })?;
                let storage_text = values.text(&s.storage_gib);
                let storage_gib = if storage_text.is_empty() {
                    None
                } else {
                    Some(storage_text.parse::<u32>().map_err(|_| {
                        format!("runtime storage_gib renders to {storage_text:?}, not a number")
                    })?)
                };
                let vars = |map: &BTreeMap<String, String>| {
                    map.iter()
                        .map(|(name, t)| EnvVar {
                            name: name.clone(),
                            value: values.text(t),
                        })
                        .collect()
                };
                let details = s
                    .details
                    .iter()
                    .filter_map(|(k, t)| Some((k.clone(), values.value(t)?)))
                    .collect();
                Ok(Rendered {
                    run: Run::Stateful(StatefulRun {
                        image: values.text(&s.image),
                        port: s.port,
                        cpu_millis: shape.cpu_millis(),
                        memory_mib: shape.memory_mib(),
                        storage_gib,
                        data_path: values.text(&s.data_path),
                        env: vars(&s.env),
                        secrets: vars(&s.secret_env),
                        args: s.args.iter().map(|a| values.text(a)).collect(),
                    }),
                    details,
                })
            }
            Self::Bucket(b) => {
                let quota_text = values.text(&b.quota_gib);
                let quota_gib: f64 = quota_text
                    .parse()
                    .ok()
                    .filter(|q: &f64| q.is_finite() && *q > 0.0)
                    .ok_or_else(|| {
                        format!(
                            "runtime quota_gib renders to {quota_text:?}, not a positive number"
                        )
                    })?;
                Ok(Rendered {
                    run: Run::Bucket(BucketRun {
                        // Saturates at u64::MAX, far above any schema's maximum.
                        quota_bytes: (quota_gib * GIB).round() as u64,
                        versioning: values.text(&b.versioning) == "true",
                        secret_key: values.text(&b.secret_key),
                    }),
                    details: serde_json::Map::new(),
                })
            }
        }
    }
}

impl StatefulTemplate {
    /// Every image this template renders to: `image` over each value of the config fields
    /// it references, sorted. Each such field must be required and have an `enum`, so what
    /// a provider can run is a finite list that a site without internet can mirror.
    fn images(&self, config_schema: &Value) -> Result<Vec<String>, String> {
        let mut configs = vec![serde_json::Map::new()];
        for reference in references(&self.image) {
            let field = reference.strip_prefix("config.").ok_or_else(|| {
                format!("runtime image references ${{{reference}}}, which is not a config field")
            })?;
            let required = config_schema["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field));
            let values = config_schema["properties"][field]["enum"]
                .as_array()
                .filter(|values| required && !values.is_empty())
                .ok_or_else(|| {
                    format!(
                        "runtime image references ${{{reference}}}, which must be a required \
                         field with an enum: the images a provider runs are listed for mirrors"
                    )
                })?;
            configs = configs
                .iter()
                .flat_map(|config| {
                    values.iter().map(move |value| {
                        let mut config = config.clone();
                        config.insert(field.to_owned(), value.clone());
                        config
                    })
                })
                .collect();
        }
        let mut images = configs
            .into_iter()
            .map(|config| {
                let config = Value::Object(config);
                let image = Values {
                    config: &config,
                    secrets: &Value::Null,
                }
                .text(&self.image);
                match image.parse::<oci_spec::distribution::Reference>() {
                    Ok(_) => Ok(image),
                    Err(e) => Err(format!(
                        "runtime image renders to {image:?}, which is not an image reference ({e})"
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        images.sort();
        images.dedup();
        Ok(images)
    }
}

impl RuntimeTemplate {
    /// Every image the services of this runtime can run (none for a bucket), for the
    /// `config_schema` the definition declares; see [`Provider::images`](super::Provider::images).
    pub fn images(&self, config_schema: &Value) -> Result<Vec<String>, String> {
        match self {
            Self::Stateful(s) => s.images(config_schema),
            Self::Bucket(_) => Ok(Vec::new()),
        }
    }
}

/// A template with where it is in the definition, for errors.
type Located<'a> = (String, &'a str);

/// The `${…}` references in `template`.
fn references(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

struct Values<'a> {
    config: &'a Value,
    secrets: &'a Value,
}

impl Values<'_> {
    fn lookup(&self, reference: &str) -> Option<&Value> {
        let (source, field) = reference.split_once('.')?;
        let value = match source {
            "config" => self.config.get(field),
            "secrets" => self.secrets.get(field),
            _ => None,
        }?;
        (!value.is_null()).then_some(value)
    }

    /// A template that is one reference keeps the value's JSON type (a port stays a
    /// number); anything else renders as text. `None` for one reference to an absent field.
    fn value(&self, template: &str) -> Option<Value> {
        let whole = template
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .filter(|t| !t.contains('}'));
        match whole {
            Some(reference) => self.lookup(reference).cloned(),
            None => Some(Value::String(self.text(template))),
        }
    }

    /// The template with each reference replaced by its value (absent ones by nothing).
    fn text(&self, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            out.push_str(&rest[..start]);
            match self.lookup(&after[..end]) {
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => {}
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}
