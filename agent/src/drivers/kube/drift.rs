//! Drift: a field the agent sets, changed in the cluster behind its back (`kubectl scale`,
//! `kubectl set image`, `kubectl edit`). Found by comparing each owned object the pass has
//! listed anyway with the manifest the agent would apply: no extra request, whatever the
//! scale. Repaired by applying that manifest again (server-side apply with `force`, which
//! takes back the fields another manager took).
//!
//! The rule: every field the agent sets is the agent's and is restored; what it does not set
//! (labels and annotations others add, an env var or a container added by someone else,
//! status) is left alone, and a list whose entries have names (containers, env vars, ports)
//! is compared entry by entry by name, so an addition is not drift.

use serde_json::Value;

/// Every field `desired` sets that `live` does not hold the same, as paths
/// (`spec.template.spec.containers[app].image`); empty when every one is there.
pub fn differences(desired: &Value, live: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect(desired, live, String::new(), &mut found);
    found
}

fn collect(desired: &Value, live: &Value, path: String, found: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (key, value) in d {
                match l.get(key) {
                    Some(there) => collect(value, there, join(key), found),
                    None if value.is_null() => {}
                    None => found.push(join(key)),
                }
            }
        }
        (Value::Array(d), Value::Array(l)) if named(d) => {
            for entry in d {
                let entry_path = format!("{path}[{}]", entry["name"].as_str().unwrap_or_default());
                match l.iter().find(|e| e["name"] == entry["name"]) {
                    Some(there) => collect(entry, there, entry_path, found),
                    None => found.push(entry_path),
                }
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (i, (d, l)) in d.iter().zip(l).enumerate() {
                collect(d, l, format!("{path}[{i}]"), found);
            }
        }
        _ if desired == live => {}
        _ => found.push(path),
    }
}

/// A list whose every entry has a name: Kubernetes merges such lists by name.
fn named(entries: &[Value]) -> bool {
    !entries.is_empty() && entries.iter().all(|e| e["name"].is_string())
}

/// What changed, for a person: `image`, `replica count`, `environment variable KEY`,
/// `environment variables`, or the field's path; several joined with `and`.
pub fn describe(paths: &[String]) -> String {
    let mut names: Vec<String> = Vec::new();
    for path in paths {
        let name = if path.ends_with(".image") {
            "image".to_owned()
        } else if path == "spec.replicas" {
            "replica count".to_owned()
        } else if path.ends_with(".env") {
            "environment variables".to_owned()
        } else if let Some((name, _)) = path
            .split(".env[")
            .nth(1)
            .and_then(|rest| rest.split_once(']'))
        {
            format!("environment variable {name}")
        } else {
            format!("field {path}")
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(" and ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str, replicas: i64, env: Value) -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/managed-by": "outpost-agent"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "image": image, "env": env}
            ]}}}
        })
    }

    #[test]
    fn each_change_to_a_field_the_agent_sets_is_found_and_named() {
        let desired = deployment("web:1", 2, json!([{"name": "MODE", "value": "prod"}]));
        assert!(differences(&desired, &desired).is_empty());
        let cases = [
            (
                deployment("evil:1", 2, json!([{"name": "MODE", "value": "prod"}])),
                "image",
            ),
            (
                deployment("web:1", 0, json!([{"name": "MODE", "value": "prod"}])),
                "replica count",
            ),
            (
                deployment("web:1", 2, json!([{"name": "MODE", "value": "debug"}])),
                "environment variable MODE",
            ),
            (
                deployment("web:1", 2, json!([])),
                "environment variable MODE",
            ),
        ];
        for (live, what) in cases {
            let paths = differences(&desired, &live);
            assert_eq!(describe(&paths), what, "{paths:?}");
        }
        let both = deployment("evil:1", 0, json!([{"name": "MODE", "value": "prod"}]));
        assert_eq!(
            describe(&differences(&desired, &both)),
            "replica count and image"
        );
    }

    #[test]
    fn what_others_add_and_the_cluster_defaults_are_left_alone() {
        let desired = deployment("web:1", 2, json!([{"name": "MODE", "value": "prod"}]));
        let mut live = deployment(
            "web:1",
            2,
            json!([{"name": "EXTRA", "value": "x"}, {"name": "MODE", "value": "prod"}]),
        );
        live["metadata"]["labels"]["team"] = "payments".into();
        live["metadata"]["resourceVersion"] = "42".into();
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            "IfNotPresent".into();
        live["status"] = json!({"readyReplicas": 2});
        assert_eq!(differences(&desired, &live), Vec::<String>::new());
    }
}
