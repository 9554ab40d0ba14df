//! Panic-free access to fields of stored JSON objects by path. `serde_json`'s `IndexMut`
//! panics on a non-object; objects here may come straight from a client, so every write of a
//! nested field goes through [`set`], which replaces a non-object parent instead.

use serde_json::{Map, Value};

/// The value at `path`, if every step is an object member.
pub(crate) fn get<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, seg| v.get(*seg))
}

/// The string at `path`, if present and a string.
pub(crate) fn get_str<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(obj, path).and_then(Value::as_str)
}

/// `metadata.<field>` as a string, or `""`.
pub(crate) fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    get_str(obj, &["metadata", field]).unwrap_or_default()
}

/// Sets `path` to `value`, creating (or replacing non-object) parents.
pub(crate) fn set(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *obj = value;
        return;
    };
    let mut cur = obj;
    for seg in parents {
        cur = object_mut(cur)
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    object_mut(cur).insert(last.to_string(), value);
}

/// Removes and returns the value at `path`.
pub(crate) fn remove(obj: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for seg in parents {
        cur = cur.get_mut(*seg)?;
    }
    cur.as_object_mut()?.remove(*last)
}

/// `v` as a mutable map, replacing it with an empty map if it is not one.
pub(crate) fn object_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("replaced with an object above")
}
