//! The managed-service lifecycle (DESIGN §5) as a pure state machine: `CREATING →
//! SYNCHRONIZED`; update → `UPDATING → SYNCHRONIZED`; pause → `PAUSING → PAUSED` (compute
//! released, volume kept); resume → `RESUMING → SYNCHRONIZED`; delete → `DELETING →
//! DELETED`; a failure in the datacenter → `ERROR` with a reason. Like services, what the
//! agent reports ends an operation only at the generation the operation started.

use std::fmt;

/// Where a managed service is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagedStatus {
    /// Being created in its datacenter.
    Creating,
    /// Running as configured.
    Synchronized,
    /// A config or secret change is being applied.
    Updating,
    /// Releasing compute, keeping data.
    Pausing,
    /// Compute released, data kept.
    Paused,
    /// Getting compute back, on the same data.
    Resuming,
    /// Compute and data being removed.
    Deleting,
    /// Gone; listed as recently deleted for a while, not recoverable.
    Deleted,
    /// The datacenter failed to do what was asked; the reason says why.
    Error,
}

impl ManagedStatus {
    /// Every status.
    pub const ALL: [Self; 9] = [
        Self::Creating,
        Self::Synchronized,
        Self::Updating,
        Self::Pausing,
        Self::Paused,
        Self::Resuming,
        Self::Deleting,
        Self::Deleted,
        Self::Error,
    ];

    /// The wire and storage spelling, e.g. `SYNCHRONIZED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Synchronized => "SYNCHRONIZED",
            Self::Updating => "UPDATING",
            Self::Pausing => "PAUSING",
            Self::Paused => "PAUSED",
            Self::Resuming => "RESUMING",
            Self::Deleting => "DELETING",
            Self::Deleted => "DELETED",
            Self::Error => "ERROR",
        }
    }

    /// Parses [`Self::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// An operation is under way in the datacenter.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Self::Creating | Self::Updating | Self::Pausing | Self::Resuming | Self::Deleting
        )
    }
}

impl fmt::Display for ManagedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person asks of a managed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagedAction {
    /// Change its config.
    Update,
    /// Release compute, keep data.
    Pause,
    /// Get compute back.
    Resume,
    /// Remove compute and data.
    Delete,
    /// Replace its secrets.
    ResetSecrets,
}

impl ManagedAction {
    /// Every action.
    pub const ALL: [Self; 5] = [
        Self::Update,
        Self::Pause,
        Self::Resume,
        Self::Delete,
        Self::ResetSecrets,
    ];

    fn verb(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Delete => "delete",
            Self::ResetSecrets => "reset the secrets of",
        }
    }
}

/// An action the status (or the provider) does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a managed service that is {status}: {hint}", action.verb())]
pub struct NotAllowed {
    /// The action asked for.
    pub action: ManagedAction,
    /// The status that forbids it.
    pub status: ManagedStatus,
    /// What to do instead.
    pub hint: &'static str,
}

/// The status `action` leads to from `status`, for a provider that can (`pausable`) or
/// cannot pause, or why it is not allowed.
pub fn decide(
    status: ManagedStatus,
    pausable: bool,
    action: ManagedAction,
) -> Result<ManagedStatus, NotAllowed> {
    use ManagedAction as A;
    use ManagedStatus as S;
    let refuse = |hint| {
        Err(NotAllowed {
            action,
            status,
            hint,
        })
    };
    match (action, status) {
        (_, S::Deleted) => refuse("it was deleted and cannot be recovered"),
        (A::Delete, S::Deleting) => refuse("it is being deleted already"),
        (A::Delete, _) => Ok(S::Deleting),
        (_, S::Deleting) => refuse("it is being deleted"),
        (A::Pause, _) if !pausable => refuse("its provider cannot pause"),
        (A::Pause, S::Synchronized) => Ok(S::Pausing),
        (A::Pause, S::Paused | S::Pausing) => refuse("it is paused already"),
        (A::Resume, S::Paused) => Ok(S::Resuming),
        (A::Resume, _) => refuse("only a paused service can be resumed"),
        // Secrets of a paused service are stored and applied when it resumes.
        (A::ResetSecrets, S::Paused) => Ok(S::Paused),
        (A::Update | A::ResetSecrets, S::Synchronized | S::Error) => Ok(S::Updating),
        (A::Update, S::Paused) => refuse("resume it first"),
        (_, _) => refuse("wait for the operation in progress to finish"),
    }
}

/// What the agent observed, at a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Running as configured, and ready.
    Ready,
    /// Compute released, data kept.
    Paused,
    /// Compute and data gone.
    Gone,
    /// The datacenter could not do it; why, for a person.
    Failed(String),
    /// Still working.
    Progressing,
}

/// The status a report of the agent at `reported_generation` leads to for a service in
/// `status` at `generation`; `None` when it ends nothing (older generations, progress, or a
/// report that does not fit the operation).
pub fn on_report(
    status: ManagedStatus,
    generation: i64,
    reported_generation: i64,
    observation: &Observation,
) -> Option<ManagedStatus> {
    use ManagedStatus as S;
    use Observation as O;
    if reported_generation != generation || !status.in_progress() {
        return None;
    }
    match (status, observation) {
        (_, O::Progressing) => None,
        (_, O::Failed(_)) => Some(S::Error),
        (S::Creating | S::Updating | S::Resuming, O::Ready) => Some(S::Synchronized),
        (S::Pausing, O::Paused) => Some(S::Paused),
        (S::Deleting, O::Gone) => Some(S::Deleted),
        _ => None,
    }
}

/// A managed service.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedService {
    /// Its name.
    pub name: crate::ManagedServiceName,
    /// Its provider's name (`postgresql`).
    pub provider: String,
    /// For people.
    pub display_name: String,
    /// Its config, valid against the provider's schema.
    pub config: serde_json::Value,
    /// Where it is in its lifecycle.
    pub status: ManagedStatus,
    /// Why, for a person.
    pub message: String,
    /// Bumped with every change of what should run.
    pub generation: i64,
    /// What the agent reported (host, port, endpoint, …); never secrets.
    pub details: serde_json::Value,
    /// When it was deleted, for a deleted one.
    pub delete_time: Option<crate::Timestamp>,
    /// Bookkeeping.
    pub meta: crate::resources::Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    use ManagedAction as A;
    use ManagedStatus as S;

    #[test]
    fn every_action_in_every_status() {
        for status in S::ALL {
            for pausable in [false, true] {
                for action in A::ALL {
                    let expected = match (action, status) {
                        (_, S::Deleted) | (A::Delete, S::Deleting) => None,
                        (A::Delete, _) => Some(S::Deleting),
                        (_, S::Deleting) => None,
                        (A::Pause, S::Synchronized) if pausable => Some(S::Pausing),
                        (A::Pause, _) => None,
                        (A::Resume, S::Paused) => Some(S::Resuming),
                        (A::Resume, _) => None,
                        (A::ResetSecrets, S::Paused) => Some(S::Paused),
                        (A::Update | A::ResetSecrets, S::Synchronized | S::Error) => {
                            Some(S::Updating)
                        }
                        _ => None,
                    };
                    match decide(status, pausable, action) {
                        Ok(next) => assert_eq!(Some(next), expected, "{status} {action:?}"),
                        Err(e) => {
                            assert_eq!(expected, None, "{status} {action:?}");
                            assert!(e.to_string().contains(status.as_str()), "{e}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reports_end_only_the_operation_at_their_generation() {
        let failed = Observation::Failed("quota refused".into());
        assert_eq!(
            on_report(S::Creating, 2, 2, &Observation::Ready),
            Some(S::Synchronized)
        );
        assert_eq!(
            on_report(S::Creating, 2, 1, &Observation::Ready),
            None,
            "older"
        );
        assert_eq!(
            on_report(S::Creating, 2, 2, &Observation::Progressing),
            None
        );
        assert_eq!(
            on_report(S::Pausing, 3, 3, &Observation::Paused),
            Some(S::Paused)
        );
        assert_eq!(on_report(S::Pausing, 3, 3, &Observation::Ready), None);
        assert_eq!(
            on_report(S::Deleting, 4, 4, &Observation::Gone),
            Some(S::Deleted)
        );
        assert_eq!(on_report(S::Updating, 4, 4, &failed), Some(S::Error));
        for settled in S::ALL.into_iter().filter(|s| !s.in_progress()) {
            for o in [
                Observation::Ready,
                Observation::Paused,
                Observation::Gone,
                failed.clone(),
            ] {
                assert_eq!(on_report(settled, 1, 1, &o), None, "{settled} {o:?}");
            }
        }
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }
}
