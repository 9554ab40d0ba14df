//! The layer every RPC passes through: a tracing span per call (method, tenant, code,
//! latency), Prometheus metrics, and the audit record of every call that tries to change
//! something. Doing this here rather than in handlers means a new RPC cannot skip it.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use outpost_store::{NewAuditRecord, Store};
use tonic::{Code, transport::server::TcpConnectInfo};
use tower::{Layer, Service};
use tracing::{Instrument, field};

use crate::error::{ErrorChain, code_name};

/// What a handler learned about the call, for its audit record.
#[derive(Debug, Default)]
pub(crate) struct CallRecord {
    /// The full method path, `/package.Service/Method`.
    pub method: String,
    /// The authenticated caller; unset when authentication failed.
    pub actor: Option<String>,
    /// The tenant the call is audited in; `None` for the platform's log.
    pub tenant: Option<String>,
    /// The resource acted on.
    pub target: String,
    /// The request's idempotency key.
    pub request_id: String,
}

/// Shared between the layer and the handler through request extensions.
pub(crate) type CallSlot = Arc<Mutex<CallRecord>>;

/// Whether a full gRPC method path names a call that changes state (and so is audited):
/// Outpost's own methods other than Get*, List*, Watch*, Read* and Stream* (logs).
pub fn is_mutation(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/outpost.") else {
        return false;
    };
    let method = rest.rsplit('/').next().unwrap_or_default();
    !["Get", "List", "Watch", "Read", "Stream"]
        .iter()
        .any(|p| method.starts_with(p))
}

/// Wraps the gRPC routes; see the module docs.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    store: Store,
}

impl RpcLayer {
    /// A layer that writes audit records to `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            store: self.store.clone(),
        }
    }
}

/// See [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    store: Store,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let peer = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let slot = CallSlot::new(std::sync::Mutex::new(CallRecord {
            method: path.clone(),
            ..CallRecord::default()
        }));
        req.extensions_mut().insert(slot.clone());
        let span = tracing::info_span!(
            "rpc",
            rpc = %path,
            peer = %peer,
            tenant = field::Empty,
            code = field::Empty,
            latency_ms = field::Empty,
        );
        // A caller that traces passes its trace on; the call, and everything it causes in
        // the datacenters, continues it.
        if let Some(parent) = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
        {
            outpost_telemetry::continue_trace(&span, parent);
        }
        let start = Instant::now();
        let future = span.in_scope(|| self.inner.call(req));
        let store = self.store.clone();
        Box::pin(async move {
            let result = future.instrument(span.clone()).await;
            let code = match &result {
                Ok(response) => response_code(response.headers()),
                Err(_) => Code::Internal,
            };
            let elapsed = start.elapsed();
            span.record("code", code_name(code));
            span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
            tracing::debug!(parent: &span, "rpc finished");
            metrics::counter!("outpost_rpc_requests_total", "rpc" => path.clone(), "code" => code_name(code))
                .increment(1);
            metrics::histogram!("outpost_rpc_duration_seconds", "rpc" => path.clone())
                .record(elapsed.as_secs_f64());
            if is_mutation(&path) {
                audit(&store, &slot, path, peer, code)
                    .instrument(span)
                    .await;
            }
            result
        })
    }
}

/// The gRPC status of a response, as far as its headers tell: an error is sent as a
/// trailers-only response with `grpc-status` in the headers; a unary success has none there.
fn response_code(headers: &http::HeaderMap) -> Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

async fn audit(store: &Store, slot: &CallSlot, method: String, peer: String, code: Code) {
    let record = {
        let call = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Unauthenticated calls have no "who"; they are counted in metrics, not audited, so
        // that anonymous clients cannot flood the audit log.
        let Some(actor) = call.actor.clone() else {
            return;
        };
        NewAuditRecord {
            tenant: call.tenant.clone(),
            actor,
            method,
            target: call.target.clone(),
            result: code_name(code).to_owned(),
            peer,
            request_id: call.request_id.clone(),
        }
    };
    if let Err(e) = store.audit_record_add(&record).await {
        tracing::error!(error = %ErrorChain(&e), "writing an audit record failed");
    }
}
