//! What each lifecycle action does to a service (DESIGN §5), decided without I/O. The store
//! reads the service and the deployment concerned, asks a planner here, and writes the
//! [`Effects`] it returns in one transaction: the deployment's and the service's lifecycle
//! columns, the event in words, and whether the datacenter gets a new revision. The state
//! machines the planners follow are in [`crate::deployment`].

use serde::{Deserialize, Serialize};

use crate::{
    DeploymentName, ServiceName, Timestamp,
    deployment::{
        Completion, Decision, DeploymentEvent, DeploymentStatus, FailureReason, NotAllowed,
        NotCancelable, ServiceAction, ServiceStatus, WorkloadOutcome, check_cancel, decide,
        on_workload,
    },
    observed::{BuildOutcome, WorkloadStatus},
    resources::{Meta, Service, ServiceSpec, Source},
};

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Its name; the last segment is its number within the service.
    pub name: DeploymentName,
    /// The action that made it: deploy, redeploy, rollback or promote.
    pub kind: ServiceAction,
    /// The deployment a rollback or promotion copied; empty otherwise.
    pub origin: String,
    /// What it runs.
    pub spec: DeploymentSpec,
    /// Where it is in its lifecycle.
    pub status: DeploymentStatus,
    /// Why it failed, when it did.
    pub reason: Option<FailureReason>,
    /// What happened, for a person.
    pub message: String,
    /// The service generation it rolled out at; 0 until it started deploying.
    pub generation: i64,
    /// Every status it went through, oldest first, with when it entered it.
    pub history: Vec<(DeploymentStatus, Timestamp)>,
    /// Who made it.
    pub actor: String,
    /// When it reached a final status.
    pub end_time: Option<Timestamp>,
    /// Bookkeeping.
    pub meta: Meta,
}

/// What a deployment runs: the service's spec when it was made, and the image it runs (for
/// a source build, the one the build produced; empty until then).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// The service's configuration.
    pub service: ServiceSpec,
    /// The image to run.
    pub image: String,
}

/// A service without an image or a repository: nothing to deploy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {0} has no image to deploy")]
pub struct NothingToDeploy(pub ServiceName);

impl DeploymentSpec {
    /// What deploying `service` as it is configured now runs. A service built from a
    /// repository gets its image once the build in the datacenter pushed it.
    pub fn of(service: &Service) -> Result<Self, NothingToDeploy> {
        let image = match &service.spec.source {
            Source::Image(image) => image.clone(),
            Source::Git(_) => String::new(),
            Source::Unset => return Err(NothingToDeploy(service.name.clone())),
        };
        Ok(Self {
            service: service.spec.clone(),
            image,
        })
    }

    /// Whether running `other` instead of `self` changes what runs (the display name is
    /// not part of what runs).
    pub fn same_workload(&self, other: &Self) -> bool {
        let strip = |s: &Self| {
            let mut s = s.clone();
            s.service.display_name.clear();
            s
        };
        strip(self) == strip(other)
    }
}

/// What an action on a whole environment does to one of its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvironmentStep {
    /// Deploy this spec.
    Deploy(Box<DeploymentSpec>),
    /// Stop it.
    Stop,
    /// Restart its pods.
    Restart,
}

/// The steps of `action` (deploy, stop or restart) on every one of an environment's
/// `services`: deploy deploys each one's current configuration, and fails naming the first
/// that has nothing to deploy; stop and restart touch only what runs, and leave the rest as it
/// is. Other actions are about one deployment and have no environment-wide form.
pub fn environment_steps(
    services: &[Service],
    action: ServiceAction,
) -> Result<Vec<(ServiceName, EnvironmentStep)>, NothingToDeploy> {
    let mut steps = Vec::new();
    for service in services {
        let r = &service.rollout;
        let step = match action {
            ServiceAction::Deploy => {
                EnvironmentStep::Deploy(Box::new(DeploymentSpec::of(service)?))
            }
            _ if decide(r.status, r.live_deployment > 0, action).is_err() => continue,
            ServiceAction::Stop => EnvironmentStep::Stop,
            ServiceAction::Restart => EnvironmentStep::Restart,
            _ => continue,
        };
        steps.push((service.name.clone(), step));
    }
    Ok(steps)
}

/// New lifecycle columns of deployment `number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentChange {
    /// Which deployment of the service.
    pub number: i64,
    /// Its new status.
    pub status: DeploymentStatus,
    /// Why it failed, when it did.
    pub reason: Option<FailureReason>,
    /// What happened, for a person.
    pub message: String,
    /// The service generation it rolls out at; 0 while it builds.
    pub generation: i64,
    /// What it runs from now on, when that changed (a build filled in its image).
    pub spec: Option<DeploymentSpec>,
}

/// New lifecycle columns of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutChange {
    /// What it is doing now, or how the last thing ended.
    pub status: ServiceStatus,
    /// Why, for a person.
    pub message: String,
    /// The generation its workload should run at.
    pub generation: i64,
    /// The deployment serving; 0 for none.
    pub live_deployment: i64,
    /// The deployment under way; 0 for none.
    pub current_deployment: i64,
    /// Whether it is scaled to zero from now on; `None` leaves that as it is.
    pub stopped: Option<bool>,
    /// Whether its pods are rolled (a new restart time).
    pub restart: bool,
}

/// An entry of the service's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Machine-readable, `CamelCase`.
    pub reason: String,
    /// For a person.
    pub message: String,
}

impl Event {
    fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Who learns of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// What should run changed: the datacenter gets a new revision (and watchers see it).
    Revision,
    /// Only the lifecycle moved: watchers are told; the agent has nothing new to apply.
    Watchers,
}

/// What one lifecycle step writes, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// The deployment concerned.
    pub deployment: Option<DeploymentChange>,
    /// A new generation for the deployment under way, unless it is still building (a
    /// secret change its rollout picks up).
    pub current_generation: Option<(i64, i64)>,
    /// The service.
    pub rollout: Option<RolloutChange>,
    /// The environment has run something: its datacenter is fixed from now on.
    pub environment_deployed: bool,
    /// The service's event log.
    pub event: Option<Event>,
    /// Who learns of it; `None` for a change nobody waits on (a queued deployment canceled).
    pub publish: Option<Publish>,
    /// Nothing is under way any more: the oldest queued deployment starts next.
    pub start_next: bool,
}

impl Effects {
    fn new(publish: Option<Publish>) -> Self {
        Self {
            deployment: None,
            current_generation: None,
            rollout: None,
            environment_deployed: false,
            event: None,
            publish,
            start_next: false,
        }
    }
}

/// What a deploy call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployPlan {
    /// The spec equals the live deployment's: nothing is created or restarted, and the
    /// event says so.
    Unchanged(Event),
    /// A new deployment is created with this event; it starts at once when `start`, and
    /// waits its turn otherwise.
    Create {
        /// The event announcing it.
        event: Event,
        /// Start it now (nothing else is under way).
        start: bool,
    },
}

/// What deploying `spec` to `service` as `action` does, by `actor`. `live` is the service's
/// live deployment when it has one; `number` the number a new deployment gets; `origin` names
/// the deployment a rollback or promotion copies.
pub fn plan_deploy(
    service: &Service,
    live: Option<&Deployment>,
    action: ServiceAction,
    spec: &DeploymentSpec,
    origin: &str,
    actor: &str,
    number: i64,
) -> Result<DeployPlan, NotAllowed> {
    let r = &service.rollout;
    let decision = decide(r.status, r.live_deployment > 0, action)?;
    let unchanged = live.filter(|live| live.spec.same_workload(spec));
    if let (Decision::StartDeployment, false, Some(live)) = (decision, r.stopped, unchanged) {
        return Ok(DeployPlan::Unchanged(Event::new(
            "NoChanges",
            format!(
                "Nothing to deploy: the spec equals deployment {}, which is live; nothing was restarted.",
                live.name.deployment
            ),
        )));
    }
    let what = match action {
        ServiceAction::Rollback => format!("rolling back to {origin}"),
        ServiceAction::Promote => format!("promoting {origin}"),
        _ => format!("{} {}", action.verb(), deployment_source(spec)),
    };
    Ok(if decision == Decision::QueueDeployment {
        DeployPlan::Create {
            event: Event::new(
                "DeploymentQueued",
                format!(
                    "Deployment {number} ({what}) by {actor} is queued: the service is {}; it starts when that finishes.",
                    r.status
                ),
            ),
            start: false,
        }
    } else {
        DeployPlan::Create {
            event: Event::new(
                "DeploymentCreated",
                format!("Deployment {number} ({what}) by {actor}."),
            ),
            start: true,
        }
    })
}

/// Starting queued `deployment` of `service`: it builds first when it has no image yet,
/// otherwise it rolls out at a new generation. `None` when it is not queued.
pub fn plan_start(service: &Service, deployment: &Deployment) -> Option<Effects> {
    let r = &service.rollout;
    let number = deployment.name.number();
    let needs_build = deployment.spec.image.is_empty();
    let status = deployment
        .status
        .next(DeploymentEvent::Started { needs_build })?;
    let generation = r.generation + 1;
    let message = if needs_build {
        "Building the image from source."
    } else {
        "Rolling out; the previous version keeps serving until the new one is healthy."
    };
    let mut effects = Effects::new(Some(Publish::Revision));
    effects.deployment = Some(DeploymentChange {
        number,
        status,
        reason: None,
        message: message.to_owned(),
        generation: if needs_build { 0 } else { generation },
        spec: None,
    });
    // A build leaves the workload as it is until there is an image (the agent learns of
    // the build from the new revision all the same).
    effects.rollout = Some(RolloutChange {
        status: ServiceStatus::of_deployment(status),
        message: format!("Deployment {number}: {message}"),
        generation: if needs_build {
            r.generation
        } else {
            generation
        },
        live_deployment: r.live_deployment,
        current_deployment: number,
        stopped: (!needs_build).then_some(false),
        restart: false,
    });
    effects.environment_deployed = true;
    Some(effects)
}

/// Stopping (scaling to zero, storage kept) or restarting `service`, by `actor`.
pub fn plan_operation(
    service: &Service,
    action: ServiceAction,
    actor: &str,
) -> Result<Effects, NotAllowed> {
    let r = &service.rollout;
    let decision = decide(r.status, r.live_deployment > 0, action)?;
    let (status, reason, message) = if decision == Decision::Stop {
        (
            ServiceStatus::Stopping,
            "Stopping",
            format!("Stopping (scaling to zero) by {actor}; storage is kept."),
        )
    } else {
        (
            ServiceStatus::Restarting,
            "Restarting",
            format!(
                "Rolling restart by {actor}: pods are replaced one by one, without a config change."
            ),
        )
    };
    let mut effects = Effects::new(Some(Publish::Revision));
    effects.rollout = Some(RolloutChange {
        status,
        message: message.clone(),
        generation: r.generation + 1,
        live_deployment: r.live_deployment,
        current_deployment: 0,
        stopped: (decision == Decision::Stop).then_some(true),
        restart: decision == Decision::Restart,
    });
    effects.event = Some(Event::new(reason, message));
    Ok(effects)
}

/// Canceling `deployment` of `service`, by `actor`. One under way rolls the service back to
/// its live version (`CANCELING` until that is done); without a live version the workload is
/// removed and the cancel is immediate. A queued one just ends.
pub fn plan_cancel(
    service: &Service,
    deployment: &Deployment,
    actor: &str,
) -> Result<Effects, NotCancelable> {
    check_cancel(deployment.status)?;
    let r = &service.rollout;
    let number = deployment.name.number();
    let status = deployment
        .status
        .next(DeploymentEvent::CancelRequested {
            rollback: r.live_deployment > 0,
        })
        .ok_or(NotCancelable(deployment.status))?;
    let message = match status {
        DeploymentStatus::Canceling => format!(
            "Canceled by {actor}; rolling back to deployment {}.",
            r.live_deployment
        ),
        _ => format!("Canceled by {actor}."),
    };
    let under_way = deployment.status != DeploymentStatus::Queued;
    let mut effects = Effects::new(under_way.then_some(Publish::Revision));
    effects.deployment = Some(DeploymentChange {
        number,
        status,
        reason: None,
        message: message.clone(),
        generation: deployment.generation,
        spec: None,
    });
    let said = format!("Deployment {number}: {message}");
    if under_way {
        let (service_status, current) = if status == DeploymentStatus::Canceling {
            (ServiceStatus::Canceling, number)
        } else {
            (ServiceStatus::Canceled, 0)
        };
        effects.rollout = Some(RolloutChange {
            status: service_status,
            message: said.clone(),
            generation: r.generation + 1,
            live_deployment: r.live_deployment,
            current_deployment: current,
            stopped: None,
            restart: false,
        });
        effects.start_next = current == 0;
    }
    effects.event = Some(Event::new("DeploymentCanceled", said));
    Ok(effects)
}

/// How a build's `outcome` ends the deployment it built, if that is `current`, the one under
/// way: with an image it rolls out; without, it ends `BUILD_ERROR` and the live version serves
/// on. `None` for a late or repeated report of a build that is no longer current.
pub fn plan_build(
    service: &Service,
    current: Option<&Deployment>,
    outcome: &BuildOutcome,
) -> Option<Effects> {
    let r = &service.rollout;
    if r.status != ServiceStatus::Building {
        return None;
    }
    let deployment = current.filter(|d| d.name.number() == outcome.deployment)?;
    let number = deployment.name.number();
    let mut effects = Effects::new(Some(Publish::Revision));
    let (deployment_change, rollout, reason) = match &outcome.image {
        Some(image) => {
            let generation = r.generation + 1;
            let mut spec = deployment.spec.clone();
            spec.image.clone_from(image);
            let message = format!(
                "Built {image}; rolling out, the previous version keeps serving until the new one is healthy."
            );
            (
                DeploymentChange {
                    number,
                    status: DeploymentStatus::Deploying,
                    reason: None,
                    message,
                    generation,
                    spec: Some(spec),
                },
                (ServiceStatus::Deploying, generation, number, Some(false)),
                "DeploymentBuilt",
            )
        }
        None => {
            let message = format!(
                "Failed: {} ({}); {}.",
                FailureReason::BuildFailed.explain(),
                outcome.message,
                previous_version(r.live_deployment)
            );
            // The build leaves the desired state, and the queue moves on.
            effects.start_next = true;
            (
                DeploymentChange {
                    number,
                    status: DeploymentStatus::BuildError,
                    reason: Some(FailureReason::BuildFailed),
                    message,
                    generation: 0,
                    spec: None,
                },
                (ServiceStatus::BuildError, r.generation, 0, None),
                "DeploymentBuildError",
            )
        }
    };
    let said = format!("Deployment {number}: {}", deployment_change.message);
    let (status, generation, current, stopped) = rollout;
    effects.rollout = Some(RolloutChange {
        status,
        message: said.clone(),
        generation,
        live_deployment: r.live_deployment,
        current_deployment: current,
        stopped,
        restart: false,
    });
    effects.deployment = Some(deployment_change);
    effects.event = Some(Event::new(reason, said));
    Some(effects)
}

/// How `report` ends the operation under way on `service`, if it ends one (see
/// [`on_workload`]); `current` is the deployment under way, when there is one. The queue
/// moves on after it.
pub fn plan_report(
    service: &Service,
    current: Option<&Deployment>,
    report: &WorkloadStatus,
) -> Option<Effects> {
    let r = &service.rollout;
    let outcome = report.outcome();
    let failure = match outcome {
        WorkloadOutcome::Failed(reason) => Some(reason),
        _ => None,
    };
    let mut effects = match on_workload(r.status, r.generation, report.generation, &outcome)? {
        Completion::Deployment(event, service_status) => {
            let deployment = current.filter(|d| d.name.number() == r.current_deployment)?;
            let number = deployment.name.number();
            let status = deployment.status.next(event)?;
            let (message, live, generation, reason) = match status {
                DeploymentStatus::Deployed => (
                    format!("Deployed: {}.", report.message),
                    number,
                    r.generation,
                    None,
                ),
                DeploymentStatus::DeploymentError => {
                    let why = failure.unwrap_or(FailureReason::TimedOut);
                    (
                        format!(
                            "Failed: {} ({}); the rollout was aborted and {}.",
                            why.explain(),
                            report.message,
                            previous_version(r.live_deployment)
                        ),
                        r.live_deployment,
                        // Back to the live spec, at a new generation.
                        r.generation + 1,
                        Some(why),
                    )
                }
                _ => (
                    format!(
                        "Canceled; deployment {} is serving again.",
                        r.live_deployment
                    ),
                    r.live_deployment,
                    r.generation,
                    None,
                ),
            };
            let said = format!("Deployment {number}: {message}");
            let mut effects = Effects::new(Some(if generation != r.generation {
                Publish::Revision
            } else {
                Publish::Watchers
            }));
            effects.deployment = Some(DeploymentChange {
                number,
                status,
                reason,
                message,
                generation: deployment.generation,
                spec: None,
            });
            effects.rollout = Some(RolloutChange {
                status: service_status,
                message: said.clone(),
                generation,
                live_deployment: live,
                current_deployment: 0,
                stopped: None,
                restart: false,
            });
            effects.event = Some(Event::new(
                format!("Deployment{}", camel(status.as_str())),
                said,
            ));
            effects
        }
        Completion::Service(status) => {
            let message = match (status, failure) {
                (ServiceStatus::Stopped, _) => "Stopped; storage is kept.".to_owned(),
                (ServiceStatus::Restarted, _) => format!("Restarted: {}.", report.message),
                (_, why) => format!(
                    "Restart failed: {} ({}); the pods that were ready keep serving.",
                    why.unwrap_or(FailureReason::TimedOut).explain(),
                    report.message
                ),
            };
            let mut effects = Effects::new(Some(Publish::Watchers));
            effects.rollout = Some(RolloutChange {
                status,
                message: message.clone(),
                generation: r.generation,
                live_deployment: r.live_deployment,
                current_deployment: 0,
                stopped: None,
                restart: false,
            });
            effects.event = Some(Event::new(camel(status.as_str()), message));
            effects
        }
    };
    effects.start_next = true;
    Some(effects)
}

/// After a secret of `service` changed (`what` says how): a running service restarts (pods
/// read secrets at start); one under way picks the change up in its rollout; one not running
/// gets it when it runs.
pub fn plan_secret_change(service: &Service, what: &str) -> Effects {
    let r = &service.rollout;
    let mut effects = Effects::new(Some(Publish::Revision));
    let running = r.live_deployment > 0 && !r.stopped && !r.status.in_progress();
    let message = if running {
        let message = format!("{what}; rolling restart so the pods see it.");
        effects.rollout = Some(RolloutChange {
            status: ServiceStatus::Restarting,
            message: message.clone(),
            generation: r.generation + 1,
            live_deployment: r.live_deployment,
            current_deployment: 0,
            stopped: None,
            restart: true,
        });
        message
    } else if r.status.in_progress() {
        // The rollout under way applies it: bump the generation it waits for.
        effects.rollout = Some(RolloutChange {
            status: r.status,
            message: r.message.clone(),
            generation: r.generation + 1,
            live_deployment: r.live_deployment,
            current_deployment: r.current_deployment,
            stopped: None,
            restart: true,
        });
        effects.current_generation =
            (r.current_deployment > 0).then_some((r.current_deployment, r.generation + 1));
        format!("{what}; the {} under way applies it.", r.status)
    } else {
        format!("{what}; it applies when the service next runs.")
    };
    effects.event = Some(Event::new("SecretChanged", message));
    effects
}

/// What now serves instead of a version that failed, in words.
fn previous_version(live_deployment: i64) -> String {
    if live_deployment > 0 {
        format!("deployment {live_deployment} keeps serving")
    } else {
        "nothing was serving before".to_owned()
    }
}

/// `DEPLOYMENT_ERROR` → `DeploymentError`, for event reasons.
fn camel(upper_snake: &str) -> String {
    upper_snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_string() + &c.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        })
        .collect()
}

/// The source of a deployment, in words.
fn deployment_source(spec: &DeploymentSpec) -> String {
    match &spec.service.source {
        Source::Git(g) => format!("git {}", g.url),
        Source::Image(image) => image.clone(),
        Source::Unset => "nothing".to_owned(),
    }
}

#[cfg(test)]
mod tests;
