//! API errors and their one mapping to HTTP: every failure the HTTP layer returns is an
//! [`ApiError`], rendered as a real `meta/v1 Status` body with the code and `reason` a real
//! API server would use, so kube-rs and kubectl classify it the same way (`get_opt` → `None`
//! on 404, `AlreadyExists`, `Conflict`, `Invalid` with causes).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resource::Resource;

/// One field-level reason an object is invalid (a `StatusCause`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// JSON path of the field, e.g. `spec.selector`.
    pub field: String,
    pub message: String,
}

impl Cause {
    pub(crate) fn required(field: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}", message.into()),
        }
    }
}

/// A failed API request. `Display` is the `Status.message` the client sees; nothing internal
/// (paths, I/O errors) goes into it: [`ApiError::Internal`] hides its detail, which the HTTP
/// layer logs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: Resource, name: String },
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: Resource, name: String },
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        resource: Resource,
        name: String,
        message: String,
    },
    /// A server-side apply that would take fields owned by another manager (without `force`).
    #[error("Apply failed with {} conflict(s): {}", fields.len(), fields.join(", "))]
    ApplyConflict {
        resource: Resource,
        name: String,
        fields: Vec<String>,
    },
    #[error("{} \"{name}\" is invalid: {}", kind_group(*resource), causes_text(causes))]
    Invalid {
        resource: Resource,
        name: String,
        causes: Vec<Cause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// A body in a media type the simulator does not decode (YAML, protobuf, CBOR):
    /// client-go then retries with JSON.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType { accepted: &'static str },
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    #[error("an error on the server has prevented the request from succeeding")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn kind_group(resource: Resource) -> String {
    let i = resource.info();
    if i.group.is_empty() {
        i.kind.to_string()
    } else {
        format!("{}.{}", i.kind, i.group)
    }
}

fn causes_text(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    match parts.len() {
        1 => parts.concat(),
        _ => format!("[{}]", parts.join(", ")),
    }
}

impl ApiError {
    /// The one table of HTTP status codes and `Status.reason` values.
    fn code_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::AlreadyExists { .. } => (StatusCode::CONFLICT, "AlreadyExists"),
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => {
                (StatusCode::CONFLICT, "Conflict")
            }
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::Expired { .. } => (StatusCode::GONE, "Expired"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    fn details(&self) -> Option<Value> {
        let (resource, name) = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. }
            | ApiError::ApplyConflict { resource, name, .. }
            | ApiError::Invalid { resource, name, .. } => (*resource, name),
            _ => return None,
        };
        let i = resource.info();
        let mut details = json!({ "name": name, "group": i.group, "kind": i.plural });
        match self {
            ApiError::Invalid { causes, .. } => {
                details["kind"] = json!(i.kind);
                details["causes"] = causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                    .collect();
            }
            ApiError::ApplyConflict { fields, .. } => {
                details["causes"] = fields
                    .iter()
                    .map(|f| json!({ "reason": "FieldManagerConflict", "message": "conflict", "field": f }))
                    .collect();
            }
            _ => {}
        }
        Some(details)
    }

    /// The `Status` object for this error, as sent in a response body or a watch `ERROR` event.
    pub(crate) fn status(&self) -> Value {
        let (code, reason) = self.code_and_reason();
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "code": code.as_u16(),
        });
        if let Some(details) = self.details() {
            status["details"] = details;
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, _) = self.code_and_reason();
        if let ApiError::Internal(source) = &self {
            tracing::error!(error = %source, "request failed");
        }
        let body = self.status().to_string();
        (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
