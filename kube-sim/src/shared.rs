//! The state the router, the controllers and the stepping task share: the object store, the
//! clock, persistence and the record of what requests needed. The simulator handle owns
//! one; the HTTP layer reads and writes through it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::controller;
use crate::store::Store;
use crate::store::persist::{self, PersistError};
use crate::store::write::WriteOpts;

/// What one controller step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Object changes (creations, updates, deletions) the step made; `0` means the cluster
    /// is settled at the current simulated time.
    pub changes: u64,
}

/// State shared by the router, the controllers and the stepping task.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<Store>,
    pub clock: SimClock,
    state_path: Option<PathBuf>,
    /// Serializes state-file writes and remembers the last persisted resourceVersion.
    persisted: Mutex<u64>,
    /// Serializes controller steps (timed task vs explicit callers).
    stepping: Mutex<()>,
    /// Cancelled at shutdown: ends watch and log streams and the stepping task.
    pub cancel: CancellationToken,
    /// Every kind of request served so far, as an authorizer sees it.
    requests: Mutex<BTreeSet<Access>>,
}

/// A request as Kubernetes' authorizer (RBAC) sees it: what a role must grant for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: &'static str,
    /// API group; empty for the core group.
    pub group: &'static str,
    /// The resource's plural, with its subresource after a slash: `pods/log`.
    pub resource: String,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the store torn (writes are whole-object
    // replacements), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Shares `store`; `restored` says it was loaded from `state_path`, so it is already
    /// persisted as it is.
    pub(crate) fn new(
        store: Store,
        clock: SimClock,
        state_path: Option<PathBuf>,
        restored: bool,
    ) -> Self {
        Self {
            persisted: Mutex::new(if restored { store.rv() } else { 0 }),
            store: Mutex::new(store),
            clock,
            state_path,
            stepping: Mutex::new(()),
            cancel: CancellationToken::new(),
            requests: Mutex::default(),
        }
    }

    /// Locks the store. Never hold the guard across an `.await`.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        relock(&self.store)
    }

    /// Every kind of request served so far.
    pub(crate) fn requests(&self) -> BTreeSet<Access> {
        relock(&self.requests).clone()
    }

    /// Records that a request needing `access` was served.
    pub(crate) fn record(&self, access: Access) {
        relock(&self.requests).insert(access);
    }

    /// Options for a write happening now.
    pub(crate) fn write_opts(&self, dry_run: bool) -> WriteOpts {
        WriteOpts {
            now: self.clock.now(),
            dry_run,
        }
    }

    /// Writes the state file if anything changed since the last write. A no-op without a
    /// state path.
    pub(crate) fn persist(&self) -> Result<(), PersistError> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        let mut persisted = relock(&self.persisted);
        let (rv, bytes) = {
            let store = self.store();
            if store.rv() == *persisted {
                return Ok(());
            }
            (store.rv(), persist::encode(&store))
        };
        persist::write_atomically(path, &bytes)?;
        *persisted = rv;
        Ok(())
    }

    /// Runs every controller once at the current simulated time, then persists.
    pub(crate) fn step(&self) -> Result<StepReport, PersistError> {
        let _one_at_a_time = relock(&self.stepping);
        let now = self.clock.now();
        let changes = {
            let mut store = self.store();
            let before = store.rv();
            controller::step(&mut store, now);
            store.rv() - before
        };
        self.persist()?;
        Ok(StepReport { changes })
    }
}
