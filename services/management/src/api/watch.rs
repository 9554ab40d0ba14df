//! Server-streaming watches: the current state, then the state after every change, until
//! it is final. A change is noticed through the store's change notices for the resource's
//! datacenter (every lifecycle step sends one, on every instance sharing the database), with
//! a periodic re-read as a safety net, so a watch neither polls hard nor misses the end.

use std::{pin::Pin, time::Duration};

use futures::{Stream, future::BoxFuture};
use outpost_store::{DatacenterChange, Store};
use tokio::sync::broadcast::{self, error::RecvError};
use tonic::Status;

use crate::error::ApiError;

/// A watch stream as tonic serves it.
pub type WatchStream<M> = Pin<Box<dyn Stream<Item = Result<M, Status>> + Send + 'static>>;

/// How often a watcher re-reads without a change notice (a notice can be lost when a
/// database connection drops).
const RECHECK: Duration = Duration::from_secs(5);

/// `first`, then every different answer of `read` after a change in `datacenter`, until one
/// is final (`is_final`), the reader fails (its error ends the stream) or the client goes.
/// `changes` must be subscribed before `first` was read, so no change falls in between.
pub fn watch<M>(
    store: Store,
    changes: broadcast::Receiver<DatacenterChange>,
    datacenter: String,
    first: M,
    read: impl Fn(Store) -> BoxFuture<'static, Result<M, ApiError>> + Send + Sync + 'static,
    is_final: fn(&M) -> bool,
) -> WatchStream<M>
where
    M: prost::Message + Send + 'static,
{
    struct State<M, R> {
        store: Store,
        changes: broadcast::Receiver<DatacenterChange>,
        datacenter: String,
        next: Option<M>,
        last: Vec<u8>,
        done: bool,
        read: R,
        is_final: fn(&M) -> bool,
    }
    let state = State {
        store,
        changes,
        datacenter,
        next: Some(first),
        last: Vec::new(),
        done: false,
        read,
        is_final,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            if let Some(m) = s.next.take() {
                let encoded = m.encode_to_vec();
                if encoded != s.last {
                    s.last = encoded;
                    s.done = (s.is_final)(&m);
                    return Some((Ok(m), s));
                }
            }
            let go_on = tokio::time::timeout(RECHECK, async {
                loop {
                    match s.changes.recv().await {
                        Ok(DatacenterChange::One { datacenter, .. })
                            if datacenter != s.datacenter => {}
                        Err(RecvError::Closed) => return false,
                        _ => return true,
                    }
                }
            })
            .await
            .unwrap_or(true);
            if !go_on {
                return None;
            }
            match (s.read)(s.store.clone()).await {
                Ok(m) => s.next = Some(m),
                Err(e) => {
                    s.done = true;
                    return Some((Err(Status::from(e)), s));
                }
            }
        }
    }))
}
