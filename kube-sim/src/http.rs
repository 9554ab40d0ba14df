//! The HTTP surface: an axum `Router` speaking the Kubernetes REST API. Handlers are thin:
//! parse the path and parameters ([`target`]), call one verb in [`crate::api`], encode the
//! result or the error `Status`. Streaming responses (watch, log follow) are in [`stream`].

mod stream;
mod target;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{self, PatchRequest};
use crate::discovery;
use crate::error::ApiError;
use crate::logs;
use crate::patch::PatchKind;
use crate::resource::Resource;
use crate::scale;
use crate::shared::{Access, Shared};
use crate::store::Key;
use crate::store::write::{DeleteOpts, Part, Propagation};
use crate::table;
use target::{Params, Sub, Target};

/// The router for one simulated cluster.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { json(StatusCode::OK, &discovery::version()) }),
        )
        .route(
            "/api",
            get(|| async { json(StatusCode::OK, &discovery::core_versions()) }),
        )
        .route(
            "/apis",
            get(|| async { json(StatusCode::OK, &discovery::groups()) }),
        )
        .route("/api/{*rest}", any(core))
        .route("/apis/{*rest}", any(grouped))
        .fallback(|| async { ApiError::NoRoute.into_response() })
        .layer(middleware::from_fn(log_request))
        .with_state(shared)
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "kube api request");
    response
}

fn json(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn core(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dispatch(&shared, true, &method, &uri, &headers, &body)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn grouped(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dispatch(&shared, false, &method, &uri, &headers, &body)
        .unwrap_or_else(IntoResponse::into_response)
}

/// `DeleteOptions`, as kube-rs and kubectl send them in a DELETE body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    propagation_policy: Option<String>,
    orphan_dependents: Option<bool>,
    preconditions: Option<Preconditions>,
    dry_run: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_opts(shared: &Shared, params: &Params, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let parsed: DeleteBody = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    let policy = params
        .propagation_policy()
        .or(parsed.propagation_policy.as_deref());
    let propagation = match (policy, parsed.orphan_dependents) {
        (Some("Orphan"), _) | (None, Some(true)) => Propagation::Orphan,
        (Some("Foreground"), _) => Propagation::Foreground,
        (Some("Background") | None, _) => Propagation::Background,
        (Some(other), _) => {
            return Err(ApiError::BadRequest(format!(
                "unsupported propagationPolicy {other:?}"
            )));
        }
    };
    let dry_run = params.dry_run()? || parsed.dry_run.is_some_and(|d| d.iter().any(|v| v == "All"));
    let pre = parsed.preconditions.unwrap_or_default();
    Ok(DeleteOpts {
        write: shared.write_opts(dry_run),
        propagation,
        uid: pre.uid,
        resource_version: pre.resource_version,
    })
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Bodies of POST and PUT must be JSON (protobuf and CBOR clients fall back to JSON on 415).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match content_type(headers) {
        "" | "application/json" | "*/*" => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType {
            accepted: "application/json",
        }),
    }
}

/// One request: its path, parameters, headers and body.
struct Req<'a> {
    method: Method,
    params: Params,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

fn ok(v: &impl std::borrow::Borrow<Value>) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, v.borrow()))
}

fn dispatch(
    shared: &Arc<Shared>,
    core: bool,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let prefix = if core { "/api/" } else { "/apis/" };
    let rest = uri.path().strip_prefix(prefix).ok_or(ApiError::NoRoute)?;
    let target = Target::parse(core, rest)?;
    let req = Req {
        method: method.clone(),
        params: Params::from_uri(uri)?,
        headers,
        body,
    };
    if matches!(req.method, Method::POST | Method::PUT) {
        require_json(headers)?;
    }
    for access in accesses(&target, &req)? {
        shared.record(access);
    }
    match target {
        Target::Group(group) if req.method == Method::GET => {
            ok(&discovery::api_group(&group).ok_or(ApiError::NoRoute)?)
        }
        Target::ResourceList { group, version } if req.method == Method::GET => {
            ok(&discovery::resource_list(&group, &version).ok_or(ApiError::NoRoute)?)
        }
        Target::Collection {
            resource,
            namespace,
        } => collection(shared, resource, namespace, &req),
        Target::Object {
            resource,
            namespace,
            name,
            sub,
        } => object(shared, &Key::new(resource, &namespace, &name), sub, &req),
        Target::Group(_) | Target::ResourceList { .. } => Err(ApiError::MethodNotAllowed),
    }
}

/// What a request needs from an authorizer, as Kubernetes names it: a verb on a resource.
/// A server-side apply may create its object, for which the API server also checks
/// `create`; it is counted always, so a role tested against these grants both.
fn accesses(target: &Target, req: &Req<'_>) -> Result<Vec<Access>, ApiError> {
    let (resource, sub) = match target {
        Target::Collection { resource, .. } => (*resource, None),
        Target::Object { resource, sub, .. } => (*resource, *sub),
        Target::Group(_) | Target::ResourceList { .. } => return Ok(vec![]),
    };
    let is_object = matches!(target, Target::Object { .. });
    let verbs: &[&'static str] = match (&req.method, is_object) {
        (&Method::GET, false) if req.params.watch()? => &["watch"],
        (&Method::GET, false) => &["list"],
        (&Method::GET, true) => &["get"],
        (&Method::POST, _) => &["create"],
        (&Method::PUT, _) => &["update"],
        (&Method::PATCH, _) if matches!(patch_kind(req.headers), Ok(PatchKind::Apply)) => {
            &["patch", "create"]
        }
        (&Method::PATCH, _) => &["patch"],
        (&Method::DELETE, false) => &["deletecollection"],
        (&Method::DELETE, true) => &["delete"],
        _ => &[],
    };
    let info = resource.info();
    let name = match sub {
        None => info.plural.to_owned(),
        Some(Sub::Status) => format!("{}/status", info.plural),
        Some(Sub::Log) => format!("{}/log", info.plural),
        Some(Sub::Scale) => format!("{}/scale", info.plural),
    };
    Ok(verbs
        .iter()
        .map(|verb| Access {
            verb,
            group: info.group,
            resource: name.clone(),
        })
        .collect())
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
}

/// List (or watch), create, delete-collection.
fn collection(
    shared: &Arc<Shared>,
    resource: Resource,
    namespace: Option<String>,
    req: &Req<'_>,
) -> Result<Response, ApiError> {
    let params = &req.params;
    match req.method {
        Method::GET => {
            let selectors = params.selectors()?;
            if params.watch()? {
                return stream::watch(shared.clone(), resource, namespace, selectors, params);
            }
            let page = params.page()?;
            let list = api::list(shared, resource, namespace.as_deref(), &selectors, &page)?;
            if !table::wanted(accept(req.headers)) {
                return ok(&list);
            }
            let items: Vec<&Value> = list["items"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            ok(&table::table(
                resource,
                &items,
                list["metadata"].clone(),
                shared.clock.now(),
            ))
        }
        Method::POST => {
            let namespace = match (resource.namespaced(), namespace) {
                (true, Some(ns)) => ns,
                (false, None) => String::new(),
                _ => return Err(ApiError::MethodNotAllowed),
            };
            let created = api::create(shared, resource, &namespace, req.body, params.dry_run()?)?;
            Ok(json(StatusCode::CREATED, &created))
        }
        Method::DELETE => {
            let opts = delete_opts(shared, params, req.body)?;
            let selectors = params.selectors()?;
            ok(&api::delete_collection(
                shared,
                resource,
                namespace.as_deref(),
                &selectors,
                &opts,
            )?)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    PatchKind::from_content_type(content_type(headers))
}

/// Get, replace, patch, delete of one object, its status, scale or log.
fn object(
    shared: &Arc<Shared>,
    key: &Key,
    sub: Option<Sub>,
    req: &Req<'_>,
) -> Result<Response, ApiError> {
    let params = &req.params;
    let part = if sub == Some(Sub::Status) {
        Part::Status
    } else {
        Part::Main
    };
    match (sub, &req.method) {
        (Some(Sub::Log), &Method::GET) => pod_log(shared, key, params),
        (Some(Sub::Scale), &Method::GET) => ok(&scale::get(shared, key)?),
        (Some(Sub::Scale), &Method::PUT) => ok(&scale::update(
            shared,
            key,
            None,
            req.body,
            params.dry_run()?,
        )?),
        (Some(Sub::Scale), &Method::PATCH) => {
            let kind = Some(patch_kind(req.headers)?);
            ok(&scale::update(
                shared,
                key,
                kind,
                req.body,
                params.dry_run()?,
            )?)
        }
        (Some(Sub::Log | Sub::Scale), _) => Err(ApiError::MethodNotAllowed),
        (None, &Method::GET) if table::wanted(accept(req.headers)) => {
            let obj = api::get(shared, key)?;
            let meta = serde_json::json!({ "resourceVersion": crate::fields::meta(&obj, "resourceVersion") });
            ok(&table::table(
                key.resource,
                &[&*obj],
                meta,
                shared.clock.now(),
            ))
        }
        (_, &Method::GET) => ok(&api::get(shared, key)?),
        (_, &Method::PUT) => ok(&api::replace(
            shared,
            key,
            part,
            req.body,
            params.dry_run()?,
        )?),
        (_, &Method::PATCH) => {
            let patch = PatchRequest {
                kind: patch_kind(req.headers)?,
                part,
                body: req.body,
                field_manager: params.field_manager(),
                force: params.force()?,
                dry_run: params.dry_run()?,
            };
            let (obj, created) = api::patch(shared, key, &patch)?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json(code, &obj))
        }
        (None, &Method::DELETE) => ok(&api::delete(
            shared,
            key,
            &delete_opts(shared, params, req.body)?,
        )?),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// `GET …/pods/NAME/log`, plain or followed.
fn pod_log(shared: &Arc<Shared>, key: &Key, params: &Params) -> Result<Response, ApiError> {
    let pod = api::get(shared, key)?;
    let container = logs::container_name(&pod, params.container())?;
    let since = params.since_seconds()?.map(|s| {
        let now = shared.clock.now();
        let ago = i64::try_from(s).unwrap_or(i64::MAX);
        now.saturating_sub(k8s_openapi::jiff::SignedDuration::from_secs(ago))
            .unwrap_or(now)
    });
    let timestamps = params.timestamps()?;
    if params.follow()? {
        return Ok(stream::follow_logs(
            shared.clone(),
            key.clone(),
            container,
            stream::LogFormat {
                since,
                tail: params.tail_lines()?,
                timestamps,
            },
        ));
    }
    let lines = logs::lines(&pod, &container, params.previous()?)?;
    Ok(logs::response(
        &logs::select(lines, since, params.tail_lines()?),
        timestamps,
    ))
}

/// A streaming body of newline-delimited chunks.
pub(crate) fn streaming(content_type: &'static str, body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
