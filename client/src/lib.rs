//! A client of one or more Outpost management endpoints, shared by the console and the CLI.
//!
//! A federation with a database per datacenter has one management endpoint per datacenter,
//! and a datacenter's metadata never leaves it: one view over all of them is a fan-out. This
//! crate owns the endpoints (address, TLS, credentials) and the fan-out: every endpoint is
//! asked at once, each with its own deadline, and the answer carries every endpoint's result
//! — what it answered, what it refused, or why it could not be reached — so one unreachable
//! datacenter never fails the whole view. It builds requests only; what they mean is the
//! API's (`outpost.management.v1`, through `outpost-proto`).

#![warn(missing_docs)]

use std::{fmt, future::Future, time::Duration};

use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

pub use outpost_proto::management::v1 as pb;

/// How to reach one management endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// Its name for people and in results, e.g. the datacenter it serves (`fra1`).
    pub name: String,
    /// `host:port` of its API.
    pub address: String,
    /// Plaintext or TLS.
    pub tls: Tls,
    /// The bearer token calls carry; `None` calls unauthenticated (health, reflection).
    pub token: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Transport security of an endpoint.
#[derive(Clone)]
pub enum Tls {
    /// Plaintext: only for an API on loopback (or behind a proxy that terminates TLS).
    Plaintext,
    /// TLS, trusting `ca_pem` alone (the operator's CA, or the internal CA's `ca.crt`).
    Verified {
        /// PEM of the CA(s) to trust.
        ca_pem: String,
        /// `(cert_pem, key_pem)` when the endpoint asks for client certificates.
        client_identity: Option<(String, String)>,
    },
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plaintext => f.write_str("Plaintext"),
            Self::Verified {
                client_identity, ..
            } => f
                .debug_struct("Verified")
                .field("client_certificate", &client_identity.is_some())
                .finish(),
        }
    }
}

/// Why a set of endpoints was refused; each names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No endpoint was given.
    #[error("no management endpoint given")]
    NoEndpoints,
    /// Called outside a Tokio runtime, which the connections run on.
    #[error("endpoints are prepared inside a Tokio runtime")]
    NoRuntime,
    /// Two endpoints share a name, so results could not be told apart.
    #[error("two endpoints are named {0}")]
    DuplicateName(String),
    /// The address is not `host:port`.
    #[error("endpoint {endpoint}: address `{address}` is not host:port")]
    BadAddress {
        /// The endpoint's name.
        endpoint: String,
        /// What was given.
        address: String,
    },
    /// The token cannot go in a header (it holds a character outside visible ASCII).
    #[error("endpoint {endpoint}: the token holds characters a header cannot carry")]
    BadToken {
        /// The endpoint's name.
        endpoint: String,
    },
    /// The TLS settings were refused.
    #[error("endpoint {endpoint}: its TLS settings")]
    Tls {
        /// The endpoint's name.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// One endpoint, ready to call: its channel connects on first use and again after a
/// failure, so a datacenter that comes back is simply answered again.
#[derive(Clone)]
pub struct Connection {
    name: String,
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
    deadline: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel, for any generated client (`pb::…_client::…Client::new(conn.channel())`).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `message` as a request carrying this endpoint's credentials and deadline.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.deadline);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }
}

/// What one endpoint made of a fanned-out call.
#[derive(Debug)]
pub enum Outcome<T> {
    /// It answered.
    Answered(T),
    /// It answered with an error of its own (not found, permission denied, …).
    Refused(Status),
    /// It could not be reached, or did not answer within the deadline; why, for a person.
    Unreachable(String),
}

/// Every endpoint's outcome, in the order the endpoints were given.
#[derive(Debug)]
pub struct FanOut<T> {
    /// `(endpoint name, outcome)`.
    pub results: Vec<(String, Outcome<T>)>,
}

impl<T> FanOut<T> {
    /// The answers, with the name of the endpoint that gave each.
    pub fn answered(&self) -> impl Iterator<Item = (&str, &T)> {
        self.results.iter().filter_map(|(name, o)| match o {
            Outcome::Answered(t) => Some((name.as_str(), t)),
            _ => None,
        })
    }

    /// The endpoints that could not be reached, each with the reason.
    pub fn unreachable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.results.iter().filter_map(|(name, o)| match o {
            Outcome::Unreachable(why) => Some((name.as_str(), why.as_str())),
            _ => None,
        })
    }

    /// The endpoints that refused, each with its status.
    pub fn refused(&self) -> impl Iterator<Item = (&str, &Status)> {
        self.results.iter().filter_map(|(name, o)| match o {
            Outcome::Refused(s) => Some((name.as_str(), s)),
            _ => None,
        })
    }
}

/// A set of management endpoints, called one at a time or all at once.
#[derive(Debug, Clone)]
pub struct Endpoints {
    connections: Vec<Connection>,
    deadline: Duration,
}

impl Endpoints {
    /// Prepares `endpoints`, each call bounded by `deadline` (connecting included). Nothing
    /// is dialed yet. Must run inside a Tokio runtime. Errors name the endpoint whose
    /// settings are wrong.
    pub fn new(endpoints: Vec<Endpoint>, deadline: Duration) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::NoRuntime);
        }
        let mut connections: Vec<Connection> = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            if connections.iter().any(|c| c.name == endpoint.name) {
                return Err(ClientError::DuplicateName(endpoint.name));
            }
            connections.push(connect(endpoint, deadline)?);
        }
        Ok(Self {
            connections,
            deadline,
        })
    }

    /// Every endpoint, in the order given.
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The endpoint named `name`.
    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// Calls every endpoint at once with `call` and waits at most the deadline for each:
    /// never fails as a whole.
    pub async fn fan_out<T, F, Fut>(&self, call: F) -> FanOut<T>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let calls = self.connections.iter().map(|connection| {
            let answer = call(connection.clone());
            async move {
                let outcome = match tokio::time::timeout(self.deadline, answer).await {
                    Ok(Ok(answer)) => Outcome::Answered(answer),
                    Ok(Err(status)) => classify(status),
                    Err(_) => {
                        Outcome::Unreachable(format!("no answer within {}", seconds(self.deadline)))
                    }
                };
                (connection.name.clone(), outcome)
            }
        });
        FanOut {
            results: futures::future::join_all(calls).await,
        }
    }
}

fn connect(endpoint: Endpoint, deadline: Duration) -> Result<Connection, ClientError> {
    let Endpoint {
        name,
        address,
        tls,
        token,
    } = endpoint;
    let bad_address = || ClientError::BadAddress {
        endpoint: name.clone(),
        address: address.clone(),
    };
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => return Err(bad_address()),
    }
    let scheme = match tls {
        Tls::Plaintext => "http",
        Tls::Verified { .. } => "https",
    };
    let mut builder = Channel::from_shared(format!("{scheme}://{address}"))
        .map_err(|_| bad_address())?
        .connect_timeout(deadline)
        .timeout(deadline)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(false);
    if let Tls::Verified {
        ca_pem,
        client_identity,
    } = tls
    {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
        if let Some((cert, key)) = client_identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        builder = builder
            .tls_config(config)
            .map_err(|source| ClientError::Tls {
                endpoint: name.clone(),
                source,
            })?;
    }
    let authorization = token
        .map(|t| format!("Bearer {t}").parse::<MetadataValue<Ascii>>())
        .transpose()
        .map_err(|_| ClientError::BadToken {
            endpoint: name.clone(),
        })?;
    Ok(Connection {
        name,
        channel: builder.connect_lazy(),
        authorization,
        deadline,
    })
}

/// An endpoint that could not be reached, whose connection broke, or that ran out of time
/// is unreachable; any other error is its answer.
fn classify<T>(status: Status) -> Outcome<T> {
    // A connection that breaks mid-call surfaces as Unknown or Cancelled with the transport
    // error as its source, not as Unavailable.
    let broke =
        std::error::Error::source(&status).is_some_and(|e| e.is::<tonic::transport::Error>());
    let timed_out = status.code() == Code::Cancelled && status.message().contains("Timeout");
    if broke || timed_out || matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) {
        Outcome::Unreachable(reason(&status))
    } else {
        Outcome::Refused(status)
    }
}

/// The status's message and the chain of errors under it, for a person.
fn reason(status: &Status) -> String {
    let mut parts = vec![if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_owned()
    }];
    let mut next = std::error::Error::source(status);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
