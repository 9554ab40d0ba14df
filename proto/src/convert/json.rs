//! JSON values ↔ `google.protobuf.Struct`, for provider schemas and managed-service configs:
//! grpcurl users write plain JSON objects, and the domain validates them as JSON.

use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::Value as Json;

/// A JSON object as a Struct; anything else as an empty Struct.
pub fn to_struct(json: &Json) -> Struct {
    match to_value(json).kind {
        Some(Kind::StructValue(s)) => s,
        _ => Struct::default(),
    }
}

fn to_value(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// A Struct as a JSON object. Whole numbers become JSON integers (a Struct carries every
/// number as a double), so `"storage_gib": 10` validates against `"type": "integer"`.
pub fn from_struct(s: &Struct) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_value(v)))
            .collect(),
    )
}

fn from_value(v: &Value) -> Json {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => whole(*n)
            .map(Json::from)
            .or_else(|| serde_json::Number::from_f64(*n).map(Json::Number))
            .unwrap_or(Json::Null),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => from_struct(s),
    }
}

/// `n` as an integer when it is one exactly (and fits).
fn whole(n: f64) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53: beyond it doubles skip integers
    (n.fract() == 0.0 && n.abs() <= LIMIT).then_some(n as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_survives_a_struct_and_whole_numbers_stay_integers() {
        let j = json!({"a": 10, "b": 2.5, "c": [true, null, "x"], "d": {"e": -3}});
        assert_eq!(from_struct(&to_struct(&j)), j);
        assert_eq!(
            from_struct(&to_struct(&json!({"n": 1e300})))["n"],
            json!(1e300)
        );
    }
}
