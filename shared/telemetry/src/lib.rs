//! Logging and tracing for every Outpost process: `tracing` to stderr, OTLP trace export
//! when a collector is configured, and the W3C `traceparent` that carries a trace from an API
//! call across the agent link into the agent's work.
#![warn(missing_docs)]

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use std::collections::HashMap;

use opentelemetry::{propagation::TextMapPropagator, trace::TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `[telemetry]` of a process's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Log filter in `tracing` syntax. Default `info`.
    pub log_filter: String,
    /// `text` or `json`. Default `text`.
    pub log_format: LogFormat,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`; unset means no trace export.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".into(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber for `service` (the name traces carry). Call once, from
    /// `main`, inside the tokio runtime.
    pub fn init(service: &'static str, config: &TelemetryConfig) -> anyhow::Result<Self> {
        let filter =
            EnvFilter::try_new(&config.log_filter).context("parsing telemetry.log_filter")?;
        let fmt = match config.log_format {
            // Colour only for a person at a terminal: escape codes in files and log
            // collectors break searching them (" WARN " would never match).
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
        };
        let provider = match &config.otlp_endpoint {
            Some(endpoint) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()
                    .context("building the OTLP exporter")?;
                let resource = opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build();
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(resource)
                        .build(),
                )
            }
            None => None,
        };
        let otel = provider
            .as_ref()
            .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(otel)
            .try_init()
            .context("installing the log subscriber")?;
        Ok(Self { provider })
    }

    /// Flushes buffered spans. Runs the flush on a blocking thread: the SDK's flush blocks.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// The W3C `traceparent` of the current span, or an empty string when it is not part of an
/// exported trace.
pub fn current_traceparent() -> String {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return String::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

/// Makes `span` a child of the remote span named by `traceparent` (from the other side of the
/// agent link). An empty or malformed value leaves the span as it is.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}
