//! The deployment lifecycle (DESIGN §5) as pure state machines:
//!
//! * a **deployment** moves `QUEUED → BUILDING → DEPLOYING → DEPLOYED`, or ends in
//!   `BUILD_ERROR` / `DEPLOYMENT_ERROR` with a [`FailureReason`], or `CANCELING → CANCELED`;
//! * a **service** has a status that says what it is doing now (deploying, stopping,
//!   restarting) or how the last thing it did ended, and that status decides which actions
//!   are allowed ([`decide`]);
//! * what its agent reports about the workload ends the operation in progress
//!   ([`on_workload`]).
//!
//! What each action writes, in words and rows, is planned from these in the `lifecycle` module;
//! nothing here does I/O.

use std::fmt;

/// Where a deployment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeploymentStatus {
    /// Waiting for the deployment before it to finish.
    Queued,
    /// Its image is being built in the datacenter.
    Building,
    /// Rolling out.
    Deploying,
    /// Rolled out and healthy. (It stays `Deployed` when a later deployment replaces it;
    /// the service says which one is live.)
    Deployed,
    /// The build failed; nothing changed in the datacenter.
    BuildError,
    /// The rollout failed; the previous version kept serving.
    DeploymentError,
    /// Cancel requested: the service is being rolled back to its previous version.
    Canceling,
    /// Canceled.
    Canceled,
}

impl DeploymentStatus {
    /// Every status.
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Building,
        Self::Deploying,
        Self::Deployed,
        Self::BuildError,
        Self::DeploymentError,
        Self::Canceling,
        Self::Canceled,
    ];

    /// The wire and storage spelling, e.g. `DEPLOYMENT_ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Building => "BUILDING",
            Self::Deploying => "DEPLOYING",
            Self::Deployed => "DEPLOYED",
            Self::BuildError => "BUILD_ERROR",
            Self::DeploymentError => "DEPLOYMENT_ERROR",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further change will happen.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Deployed | Self::BuildError | Self::DeploymentError | Self::Canceled
        )
    }

    /// The status after `event`, or `None` when the event means nothing in this status (a
    /// late or repeated report), which leaves the deployment as it is.
    pub fn next(self, event: DeploymentEvent) -> Option<Self> {
        use DeploymentEvent as E;
        use DeploymentStatus as S;
        Some(match (self, event) {
            (S::Queued, E::Started { needs_build: true }) => S::Building,
            (S::Queued, E::Started { needs_build: false }) | (S::Building, E::Built) => {
                S::Deploying
            }
            (S::Building, E::BuildFailed) => S::BuildError,
            (S::Deploying, E::RolledOut) => S::Deployed,
            (S::Deploying, E::RolloutFailed) => S::DeploymentError,
            (S::Queued, E::CancelRequested { rollback: _ }) => S::Canceled,
            (S::Building | S::Deploying, E::CancelRequested { rollback: true }) => S::Canceling,
            (S::Building | S::Deploying, E::CancelRequested { rollback: false }) => S::Canceled,
            // Whatever the rollback to the previous version did, the cancel is done.
            (S::Canceling, E::RolledOut | E::RolloutFailed) => S::Canceled,
            _ => return None,
        })
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that moves a deployment along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentEvent {
    /// Its turn came; it builds first when its source is not an image.
    Started {
        /// The source must be built into an image first.
        needs_build: bool,
    },
    /// The build produced an image.
    Built,
    /// The build failed.
    BuildFailed,
    /// The workload is available at the deployment's generation.
    RolledOut,
    /// The workload failed at the deployment's generation.
    RolloutFailed,
    /// Someone canceled it.
    CancelRequested {
        /// A previous version exists to roll back to (otherwise the workload is simply
        /// removed and the cancel is immediate).
        rollback: bool,
    },
}

/// Why a build or rollout failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The source could not be built into an image.
    BuildFailed,
    /// The image could not be pulled.
    ImagePullFailed,
    /// The new version started but never passed its health check.
    HealthCheckFailed,
    /// The container ran out of memory.
    OutOfMemory,
    /// The container keeps crashing.
    CrashLoop,
    /// The rollout made no progress within its deadline.
    TimedOut,
}

impl FailureReason {
    /// Every reason.
    pub const ALL: [Self; 6] = [
        Self::BuildFailed,
        Self::ImagePullFailed,
        Self::HealthCheckFailed,
        Self::OutOfMemory,
        Self::CrashLoop,
        Self::TimedOut,
    ];

    /// The wire and storage spelling, e.g. `IMAGE_PULL_FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuildFailed => "BUILD_FAILED",
            Self::ImagePullFailed => "IMAGE_PULL_FAILED",
            Self::HealthCheckFailed => "HEALTH_CHECK_FAILED",
            Self::OutOfMemory => "OUT_OF_MEMORY",
            Self::CrashLoop => "CRASH_LOOP",
            Self::TimedOut => "TIMED_OUT",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// What it means, for a person.
    pub fn explain(self) -> &'static str {
        match self {
            Self::BuildFailed => "the build failed",
            Self::ImagePullFailed => "the image could not be pulled",
            Self::HealthCheckFailed => "the new version never passed its health check",
            Self::OutOfMemory => "the container ran out of memory",
            Self::CrashLoop => "the container keeps crashing",
            Self::TimedOut => "the rollout made no progress within its deadline",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a service is doing, or how the last thing it did ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceStatus {
    /// Created, never deployed.
    NotDeployed,
    /// Its newest deployment waits for another to finish.
    Queued,
    /// Its deployment is building.
    Building,
    /// Its deployment is rolling out.
    Deploying,
    /// Its last deployment rolled out.
    Deployed,
    /// Its last deployment's build failed.
    BuildError,
    /// Its last deployment's rollout failed.
    DeploymentError,
    /// Its deployment is being canceled.
    Canceling,
    /// Its last deployment was canceled.
    Canceled,
    /// Scaling to zero.
    Stopping,
    /// Scaled to zero; storage kept.
    Stopped,
    /// Rolling restart in progress.
    Restarting,
    /// Restarted.
    Restarted,
    /// The restart failed.
    RestartError,
}

impl ServiceStatus {
    /// Every status.
    pub const ALL: [Self; 14] = [
        Self::NotDeployed,
        Self::Queued,
        Self::Building,
        Self::Deploying,
        Self::Deployed,
        Self::BuildError,
        Self::DeploymentError,
        Self::Canceling,
        Self::Canceled,
        Self::Stopping,
        Self::Stopped,
        Self::Restarting,
        Self::Restarted,
        Self::RestartError,
    ];

    /// The wire and storage spelling, e.g. `NOT_DEPLOYED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotDeployed => "NOT_DEPLOYED",
            Self::Queued => "QUEUED",
            Self::Building => "BUILDING",
            Self::Deploying => "DEPLOYING",
            Self::Deployed => "DEPLOYED",
            Self::BuildError => "BUILD_ERROR",
            Self::DeploymentError => "DEPLOYMENT_ERROR",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Restarting => "RESTARTING",
            Self::Restarted => "RESTARTED",
            Self::RestartError => "RESTART_ERROR",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// An operation is under way.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Self::Queued
                | Self::Building
                | Self::Deploying
                | Self::Canceling
                | Self::Stopping
                | Self::Restarting
        )
    }

    /// The service status while a deployment in `status` is its current one.
    pub fn of_deployment(status: DeploymentStatus) -> Self {
        match status {
            DeploymentStatus::Queued => Self::Queued,
            DeploymentStatus::Building => Self::Building,
            DeploymentStatus::Deploying => Self::Deploying,
            DeploymentStatus::Deployed => Self::Deployed,
            DeploymentStatus::BuildError => Self::BuildError,
            DeploymentStatus::DeploymentError => Self::DeploymentError,
            DeploymentStatus::Canceling => Self::Canceling,
            DeploymentStatus::Canceled => Self::Canceled,
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person asks a service to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceAction {
    /// Deploy its current configuration (the first time, or another version).
    Deploy,
    /// Deploy its current configuration again; without differences nothing restarts.
    Redeploy,
    /// Scale to zero, keeping storage.
    Stop,
    /// Rolling restart without a configuration change.
    Restart,
    /// Deploy an earlier deployment's spec again.
    Rollback,
    /// Receive the exact spec of a deployment from another environment.
    Promote,
}

impl ServiceAction {
    /// Every action.
    pub const ALL: [Self; 6] = [
        Self::Deploy,
        Self::Redeploy,
        Self::Stop,
        Self::Restart,
        Self::Rollback,
        Self::Promote,
    ];

    /// The action in words, for errors.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Redeploy => "redeploy",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Rollback => "roll back",
            Self::Promote => "promote into",
        }
    }
}

impl ServiceAction {
    /// The wire and storage spelling of a deployment's kind, e.g. `ROLLBACK`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "DEPLOY",
            Self::Redeploy => "REDEPLOY",
            Self::Stop => "STOP",
            Self::Restart => "RESTART",
            Self::Rollback => "ROLLBACK",
            Self::Promote => "PROMOTE",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What an allowed action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start a new deployment now.
    StartDeployment,
    /// Create a deployment that waits for the one in progress.
    QueueDeployment,
    /// Scale the workload to zero.
    Stop,
    /// Roll the workload's pods.
    Restart,
}

/// An action the service's status does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a service that is {status}: {hint}", action.verb())]
pub struct NotAllowed {
    /// The action asked for.
    pub action: ServiceAction,
    /// The status that forbids it.
    pub status: ServiceStatus,
    /// What to do instead.
    pub hint: &'static str,
}

/// Whether `action` is allowed for a service in `status`, and what it does. `live` says
/// whether a deployed version exists (running, or stopped and resumable); stop and restart
/// need one, redeploy only needs an earlier deploy (even one that failed).
pub fn decide(
    status: ServiceStatus,
    live: bool,
    action: ServiceAction,
) -> Result<Decision, NotAllowed> {
    use ServiceAction as A;
    use ServiceStatus as S;
    let refuse = |hint| {
        Err(NotAllowed {
            action,
            status,
            hint,
        })
    };
    let deploy = || {
        Ok(if status.in_progress() {
            Decision::QueueDeployment
        } else {
            Decision::StartDeployment
        })
    };
    match action {
        A::Deploy | A::Rollback | A::Promote => deploy(),
        A::Redeploy if status == S::NotDeployed => {
            refuse("it has never been deployed; deploy it first")
        }
        A::Redeploy => deploy(),
        A::Stop | A::Restart if status.in_progress() => {
            refuse("wait for the operation in progress to finish, or cancel its deployment")
        }
        A::Stop | A::Restart if status == S::Stopped => match action {
            A::Stop => refuse("it is already stopped"),
            _ => refuse("redeploy it to start it again"),
        },
        A::Stop | A::Restart if !live => refuse("nothing of it is running; deploy it first"),
        A::Stop => Ok(Decision::Stop),
        A::Restart => Ok(Decision::Restart),
    }
}

/// An environment's status, derived from its services' (DESIGN §5): an operation under way
/// wins (the earliest stage first), then any error, then stopped, then deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvironmentStatus {
    /// No services.
    Empty,
    /// No service was ever deployed.
    NotDeployed,
    /// A service's deployment waits.
    Queued,
    /// A service is building.
    Building,
    /// A service is rolling out.
    Deploying,
    /// A service is being canceled.
    Canceling,
    /// A service is restarting.
    Restarting,
    /// A service is stopping.
    Stopping,
    /// A service's last operation failed.
    Error,
    /// Nothing runs: every service is stopped or never deployed.
    Stopped,
    /// Every deployed service runs.
    Deployed,
}

impl EnvironmentStatus {
    /// The wire spelling, e.g. `DEPLOYING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "EMPTY",
            Self::NotDeployed => "NOT_DEPLOYED",
            Self::Queued => "QUEUED",
            Self::Building => "BUILDING",
            Self::Deploying => "DEPLOYING",
            Self::Canceling => "CANCELING",
            Self::Restarting => "RESTARTING",
            Self::Stopping => "STOPPING",
            Self::Error => "ERROR",
            Self::Stopped => "STOPPED",
            Self::Deployed => "DEPLOYED",
        }
    }

    /// Every status.
    pub const ALL: [Self; 11] = [
        Self::Empty,
        Self::NotDeployed,
        Self::Queued,
        Self::Building,
        Self::Deploying,
        Self::Canceling,
        Self::Restarting,
        Self::Stopping,
        Self::Error,
        Self::Stopped,
        Self::Deployed,
    ];

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Derived from the statuses of an environment's services.
    pub fn of(services: &[ServiceStatus]) -> Self {
        use ServiceStatus as S;
        const UNDER_WAY: [(S, EnvironmentStatus); 6] = [
            (S::Queued, EnvironmentStatus::Queued),
            (S::Building, EnvironmentStatus::Building),
            (S::Deploying, EnvironmentStatus::Deploying),
            (S::Canceling, EnvironmentStatus::Canceling),
            (S::Restarting, EnvironmentStatus::Restarting),
            (S::Stopping, EnvironmentStatus::Stopping),
        ];
        if services.is_empty() {
            return Self::Empty;
        }
        if let Some((_, status)) = UNDER_WAY.iter().find(|(s, _)| services.contains(s)) {
            return *status;
        }
        if services
            .iter()
            .any(|s| matches!(s, S::BuildError | S::DeploymentError | S::RestartError))
        {
            return Self::Error;
        }
        if services.iter().all(|s| *s == S::NotDeployed) {
            return Self::NotDeployed;
        }
        if services
            .iter()
            .all(|s| matches!(s, S::Stopped | S::NotDeployed))
        {
            return Self::Stopped;
        }
        Self::Deployed
    }

    /// No operation is under way in the environment.
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            Self::Queued
                | Self::Building
                | Self::Deploying
                | Self::Canceling
                | Self::Restarting
                | Self::Stopping
        )
    }
}

/// A deployment that cannot be canceled in its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot cancel a deployment that is {0}: only QUEUED, BUILDING and DEPLOYING deployments can be canceled"
)]
pub struct NotCancelable(pub DeploymentStatus);

/// Whether a deployment in `status` can be canceled.
pub fn check_cancel(status: DeploymentStatus) -> Result<(), NotCancelable> {
    match status {
        DeploymentStatus::Queued | DeploymentStatus::Building | DeploymentStatus::Deploying => {
            Ok(())
        }
        other => Err(NotCancelable(other)),
    }
}

/// The last thing an agent said about a workload, as far as the lifecycle cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadOutcome {
    /// Every replica of the generation is ready (for a stopped service: none left).
    Available,
    /// The generation cannot roll out.
    Failed(FailureReason),
    /// Still moving.
    Progressing,
}

/// How a report ends the operation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The current deployment's event, and the service status after it.
    Deployment(DeploymentEvent, ServiceStatus),
    /// A stop or restart ended with this status.
    Service(ServiceStatus),
}

/// What a report of the workload at `reported_generation` means for a service in `status`
/// whose current operation runs at `generation`. Reports of other generations (older ones
/// still arriving, or the rollback after a failure) and progress reports end nothing.
pub fn on_workload(
    status: ServiceStatus,
    generation: i64,
    reported_generation: i64,
    outcome: &WorkloadOutcome,
) -> Option<Completion> {
    use ServiceStatus as S;
    if reported_generation != generation {
        return None;
    }
    let failed = matches!(outcome, WorkloadOutcome::Failed(_));
    if matches!(outcome, WorkloadOutcome::Progressing) {
        return None;
    }
    Some(match status {
        S::Deploying if failed => {
            Completion::Deployment(DeploymentEvent::RolloutFailed, S::DeploymentError)
        }
        S::Deploying => Completion::Deployment(DeploymentEvent::RolledOut, S::Deployed),
        S::Canceling => Completion::Deployment(
            if failed {
                DeploymentEvent::RolloutFailed
            } else {
                DeploymentEvent::RolledOut
            },
            S::Canceled,
        ),
        // Scaling to zero cannot fail for a reason that matters: no pod is left to fail.
        S::Stopping if !failed => Completion::Service(S::Stopped),
        S::Restarting if failed => Completion::Service(S::RestartError),
        S::Restarting => Completion::Service(S::Restarted),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
