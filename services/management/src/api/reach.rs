//! Every resource placed in a datacenter that cannot be reached says so: since when, and
//! that its change waits (the message replaces the one of an operation under way, which
//! would otherwise read as progress). Nothing fails or is deleted for it.

use futures::future::BoxFuture;
use outpost_domain::{DatacenterName, EnvironmentName, observed::Unreachable};
use outpost_proto::{convert::datacenter_unreachable, management::v1 as pb};
use outpost_store::{Store, prelude::*};

use crate::error::ApiError;

/// Whether `datacenter` cannot be reached now: its agent is not linked, or does not reach
/// its cluster.
pub(crate) async fn of_datacenter(
    store: &Store,
    datacenter: &DatacenterName,
) -> Result<Option<Unreachable>, ApiError> {
    let agent = store.agent_get(datacenter).await?;
    Ok(Unreachable::of(
        datacenter,
        agent.map(|a| a.reach),
        outpost_domain::Timestamp::now(),
    ))
}

/// [`of_datacenter`] for the datacenter `environment` is placed in.
pub(crate) async fn of_environment(
    store: &Store,
    environment: &EnvironmentName,
) -> Result<Option<Unreachable>, ApiError> {
    let datacenter = store
        .reader()
        .await?
        .environment_get(environment)
        .await?
        .datacenter;
    of_datacenter(store, &datacenter).await
}

/// A wire resource that is placed in a datacenter.
pub(crate) trait Placed {
    /// Where it says, for a person, what it is doing.
    fn message_mut(&mut self) -> &mut String;
    /// Where it says its datacenter cannot be reached.
    fn unreachable_mut(&mut self) -> &mut Option<pb::DatacenterUnreachable>;
}

macro_rules! placed {
    ($($wire:ty => $message:ident),* $(,)?) => {$(
        impl Placed for $wire {
            fn message_mut(&mut self) -> &mut String {
                &mut self.$message
            }
            fn unreachable_mut(&mut self) -> &mut Option<pb::DatacenterUnreachable> {
                &mut self.datacenter_unreachable
            }
        }
    )*};
}

placed!(
    pb::Service => state_message,
    pb::Deployment => message,
    pb::ManagedService => state_message,
);

/// A resource whose operation may be under way (and then waits for its datacenter).
pub(crate) trait Busy {
    /// An operation of it is under way.
    fn in_progress(&self) -> bool;
}

impl Busy for outpost_domain::resources::Service {
    fn in_progress(&self) -> bool {
        self.rollout.status.in_progress()
    }
}

impl Busy for outpost_domain::lifecycle::Deployment {
    fn in_progress(&self) -> bool {
        !self.status.is_final()
    }
}

impl Busy for outpost_domain::managed::ManagedService {
    fn in_progress(&self) -> bool {
        self.status.in_progress()
    }
}

/// `resource` on the wire, marked when its datacenter is `unreachable`.
pub(crate) fn wire<D: Busy, W: From<D> + Placed>(
    resource: D,
    unreachable: Option<&Unreachable>,
) -> W {
    let in_progress = resource.in_progress();
    let mut out = W::from(resource);
    mark(&mut out, unreachable, in_progress);
    out
}

/// A watch's read of a resource placed in `datacenter`: `fetch` it, then mark it as
/// [`wire`] does, so every message of the watch says whether its datacenter is reachable.
pub(crate) fn watched<D, W, F>(
    datacenter: DatacenterName,
    fetch: F,
) -> impl Fn(Store) -> BoxFuture<'static, Result<W, ApiError>> + Send + Sync + 'static
where
    D: Busy + Send + 'static,
    W: From<D> + Placed + Send + 'static,
    F: Fn(Store) -> BoxFuture<'static, Result<D, ApiError>> + Send + Sync + 'static,
{
    move |store| {
        let fetched = fetch(store.clone());
        let datacenter = datacenter.clone();
        Box::pin(async move {
            let resource = fetched.await?;
            let unreachable = of_datacenter(&store, &datacenter).await?;
            Ok(wire(resource, unreachable.as_ref()))
        })
    }
}

/// Marks `out` when its datacenter is `unreachable`; `in_progress` when an operation of it
/// is under way (and so waits).
pub(crate) fn mark(out: &mut impl Placed, unreachable: Option<&Unreachable>, in_progress: bool) {
    if let Some(u) = unreachable {
        let notice = datacenter_unreachable(u, in_progress);
        if in_progress {
            out.message_mut().clone_from(&notice.message);
        }
        *out.unreachable_mut() = Some(notice);
    }
}
