//! Label and field selectors: the `labelSelector`/`fieldSelector` query syntax of list, watch
//! and delete-collection, and the structured `LabelSelector` of workload specs. Parsing is
//! total: malformed input is an error value (a 400 to the client), never a panic.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; all requirements must hold (an empty selector matches everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelectorExpr(Vec<LabelReq>);

/// Splits on commas that are not inside parentheses (`a in (x,y),b=c`).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 316
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(key: &str, rest: &str, original: &str) -> Result<(String, Vec<String>), String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: {original:?}: expected (values)"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(|v| !valid_value(v)) {
        return Err(format!(
            "unable to parse requirement: {original:?}: invalid value"
        ));
    }
    Ok((key.to_string(), values))
}

fn parse_requirement(raw: &str) -> Result<LabelReq, String> {
    let req = raw.trim();
    let bad = || format!("unable to parse requirement: {req:?}");
    if let Some(key) = req.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(LabelReq::NotExists(key.to_string()))
        } else {
            Err(bad())
        };
    }
    for (op, ctor) in [
        ("!=", LabelReq::NotEquals as fn(String, String) -> LabelReq),
        ("==", LabelReq::Equals),
        ("=", LabelReq::Equals),
    ] {
        if let Some((k, v)) = req.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || !valid_value(v) {
                return Err(bad());
            }
            return Ok(ctor(k.to_string(), v.to_string()));
        }
    }
    if let Some((k, rest)) = req.split_once(" notin ") {
        let (k, vs) = parse_set(k.trim(), rest, req)?;
        return if valid_key(&k) {
            Ok(LabelReq::NotIn(k, vs))
        } else {
            Err(bad())
        };
    }
    if let Some((k, rest)) = req.split_once(" in ") {
        let (k, vs) = parse_set(k.trim(), rest, req)?;
        return if valid_key(&k) {
            Ok(LabelReq::In(k, vs))
        } else {
            Err(bad())
        };
    }
    if valid_key(req) {
        Ok(LabelReq::Exists(req.to_string()))
    } else {
        Err(bad())
    }
}

impl LabelSelectorExpr {
    /// Parses the query syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub(crate) fn parse(s: &str) -> Result<LabelSelectorExpr, String> {
        if s.trim().is_empty() {
            return Ok(LabelSelectorExpr::default());
        }
        split_top_level(s)
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelectorExpr)
    }

    /// Converts a structured `LabelSelector`; `None` if it uses an unknown operator.
    pub(crate) fn from_structured(sel: &LabelSelector) -> Option<LabelSelectorExpr> {
        let mut reqs: Vec<LabelReq> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| LabelReq::Equals(k.clone(), v.clone()))
            .collect();
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            reqs.push(match e.operator.as_str() {
                "In" => LabelReq::In(e.key.clone(), values),
                "NotIn" => LabelReq::NotIn(e.key.clone(), values),
                "Exists" => LabelReq::Exists(e.key.clone()),
                "DoesNotExist" => LabelReq::NotExists(e.key.clone()),
                _ => return None,
            });
        }
        Some(LabelSelectorExpr(reqs))
    }

    /// Whether the selector selects nothing-in-particular (matches every object).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelReq::Equals(k, v) => labels.get(k) == Some(v),
            LabelReq::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// Matches the labels of a stored object (`metadata.labels`).
    pub(crate) fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&object_labels(obj))
    }
}

/// The `metadata.labels` of a stored object (non-string values are ignored).
pub(crate) fn object_labels(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed field selector: `path=value` / `path==value` / `path!=value` terms over dotted
/// JSON paths (`metadata.name`, `involvedObject.kind`, `status.phase`). A missing field
/// compares as the empty string, as on a real server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelectorExpr(Vec<(String, bool, String)>);

impl FieldSelectorExpr {
    pub(crate) fn parse(s: &str) -> Result<FieldSelectorExpr, String> {
        if s.trim().is_empty() {
            return Ok(FieldSelectorExpr::default());
        }
        s.split(',')
            .map(|term| {
                let term = term.trim();
                let (path, eq, value) = if let Some((p, v)) = term.split_once("!=") {
                    (p, false, v)
                } else if let Some((p, v)) = term.split_once("==") {
                    (p, true, v)
                } else if let Some((p, v)) = term.split_once('=') {
                    (p, true, v)
                } else {
                    return Err(format!(
                        "invalid selector: '{term}'; can't understand '{term}'"
                    ));
                };
                let path = path.trim();
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(format!("invalid field selector: {term:?}"));
                }
                Ok((path.to_string(), eq, value.trim().to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(FieldSelectorExpr)
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let found = path
                .split('.')
                .try_fold(obj, |v, seg| v.get(seg))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (found == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let l = labels(&[("app", "web"), ("env", "prod"), ("tier", "front")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web,env=prod", true),
            ("app=web,env=dev", false),
            ("app!=web", false),
            ("missing!=x", true),
            ("env in (dev,prod)", true),
            ("env in (dev, qa)", false),
            ("env notin (dev,qa)", true),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier in (front,back),!canary", true),
        ];
        for (sel, want) in cases {
            let parsed = LabelSelectorExpr::parse(sel).unwrap();
            assert_eq!(parsed.matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn malformed_label_selectors_are_errors() {
        for sel in [
            "a in x", "=b", "a=b=c d", "a in (x", "!", "a b", ",", "a=(x)",
        ] {
            assert!(LabelSelectorExpr::parse(sel).is_err(), "{sel}");
        }
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let ev = json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Deployment", "name": "web"}});
        let cases = [
            ("metadata.name=e1", true),
            (
                "involvedObject.name=web,involvedObject.kind=Deployment",
                true,
            ),
            ("involvedObject.kind!=Deployment", false),
            ("involvedObject.uid=", true),
            ("involvedObject.uid=x", false),
        ];
        for (sel, want) in cases {
            assert_eq!(
                FieldSelectorExpr::parse(sel).unwrap().matches(&ev),
                want,
                "{sel}"
            );
        }
        for bad in ["metadata.name", "=x", "a..b=c"] {
            assert!(FieldSelectorExpr::parse(bad).is_err(), "{bad}");
        }
    }
}
