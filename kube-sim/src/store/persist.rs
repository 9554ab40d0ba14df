//! The state file: the whole store as one JSON document, replaced atomically (write to a
//! temporary file, fsync, rename, fsync the directory) so a crash leaves either the old or
//! the new state, never a torn one.
//!
//! Format: `{"format":1,"resourceVersion":N,"seq":N,"objects":[...]}`. Each object carries
//! its `apiVersion`, `kind` and metadata, from which its key is rebuilt on load.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Key, Store};
use crate::fields;
use crate::resource::Resource;

const FORMAT: u32 = 1;

/// Reading or writing the state file failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The state file exists but could not be read.
    #[error("reading state file {path}")]
    Read {
        /// The state file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not a state document this version understands.
    #[error("decoding state file {path}")]
    Decode {
        /// The state file.
        path: PathBuf,
        /// The JSON failure.
        #[source]
        source: serde_json::Error,
    },
    /// The state file decoded but holds something impossible.
    #[error("state file {path} is invalid: {reason}")]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing the new state failed; the previous state file is intact.
    #[error("writing state file {path}")]
    Write {
        /// The state file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// The state document; `O` is `Value` when reading and `&Value` when writing.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot<O> {
    format: u32,
    resource_version: u64,
    seq: u64,
    objects: Vec<O>,
}

/// Loads the store from `path`; `Ok(None)` if the file does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Option<Store>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let snap: Snapshot<Value> =
        serde_json::from_slice(&bytes).map_err(|source| PersistError::Decode {
            path: path.to_owned(),
            source,
        })?;
    let invalid = |reason: String| PersistError::Invalid {
        path: path.to_owned(),
        reason,
    };
    if snap.format != FORMAT {
        return Err(invalid(format!("unknown format {}", snap.format)));
    }
    let mut objects = BTreeMap::new();
    for obj in snap.objects {
        let api_version = fields::get_str(&obj, &["apiVersion"]).unwrap_or_default();
        let kind = fields::get_str(&obj, &["kind"]).unwrap_or_default();
        let resource = Resource::from_type(api_version, kind)
            .ok_or_else(|| invalid(format!("unknown object type {api_version}/{kind}")))?;
        let name = fields::meta(&obj, "name");
        if name.is_empty() {
            return Err(invalid(format!("a {kind} has no name")));
        }
        let key = Key::new(resource, fields::meta(&obj, "namespace"), name);
        objects.insert(key, Arc::new(obj));
    }
    Ok(Some(Store::with_objects(
        snap.resource_version,
        snap.seq,
        objects,
    )))
}

/// Serializes the store; cheap enough to call under the store lock, so the file write can
/// happen outside it.
pub(crate) fn encode(store: &Store) -> Vec<u8> {
    let snap = Snapshot {
        format: FORMAT,
        resource_version: store.rv(),
        seq: store.seq(),
        objects: store.all().map(|o| &**o).collect::<Vec<&Value>>(),
    };
    serde_json::to_vec(&snap).expect("JSON values with string keys always serialize")
}

/// Atomically replaces the file at `path` with `bytes`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let err = |source| PersistError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}
