//! Generated names and hashes, computed the way Kubernetes computes them: the
//! `pod-template-hash` / `controller-revision-hash` of a pod template (FNV-1a over a canonical
//! encoding, rendered in the "safe" alphabet without vowels) and the 5-character suffixes of
//! `generateName` and ReplicaSet/Job pods. Both are deterministic (suffixes come from the
//! store's persistent sequence), so explicit-stepping runs are reproducible.

use serde_json::Value;

/// Kubernetes' `rand.SafeEncodeString` alphabet: no vowels, no confusable characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// Writes `v` as JSON with object keys sorted, whatever map order serde_json was built with.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of a pod template, e.g. `5d7f8c9b6`: equal templates hash equal.
pub(crate) fn template_hash(template: &Value) -> String {
    let mut s = String::new();
    canonical(template, &mut s);
    safe_encode(&fnv1a_32(s.as_bytes()).to_string())
}

/// A 5-character name suffix for sequence number `n`.
pub(crate) fn suffix(n: u64) -> String {
    let mut h = fnv1a_32(&n.to_le_bytes()) as usize;
    (0..5)
        .map(|_| {
            let c = SAFE_ALPHABET[h % SAFE_ALPHABET.len()];
            h /= SAFE_ALPHABET.len();
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_hash_ignores_key_order_and_tracks_content() {
        let a = json!({"spec": {"containers": [{"name": "app", "image": "x:1"}]}, "metadata": {}});
        let b: Value = serde_json::from_str(
            r#"{"metadata": {}, "spec": {"containers": [{"image": "x:1", "name": "app"}]}}"#,
        )
        .unwrap();
        let c = json!({"spec": {"containers": [{"name": "app", "image": "x:2"}]}, "metadata": {}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(
            template_hash(&a)
                .bytes()
                .all(|ch| SAFE_ALPHABET.contains(&ch))
        );
    }

    #[test]
    fn suffixes_are_five_safe_characters_and_vary() {
        let all: std::collections::BTreeSet<String> = (0..200).map(suffix).collect();
        assert!(all.len() > 190);
        assert!(all.iter().all(|s| s.len() == 5));
    }
}
