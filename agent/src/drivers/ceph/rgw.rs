//! The one way a request reaches the RADOS Gateway: built, signed with SigV4, sent under a
//! deadline, and its refusal classified. Admin Ops and S3 calls differ only in path and
//! payload.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    },
    sign::v4,
};
use bytes::Bytes;
use http::{Method, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{CephError, S3Keys, error::BoxError};

/// The SigV4 region. RGW takes any region in the credential scope as long as the signature
/// matches, and this is what S3 clients default to.
const REGION: &str = "us-east-1";

/// Answers larger than this are refused rather than buffered: RGW's JSON and XML answers to
/// the calls made here are a few KiB.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Bytes SigV4 leaves unencoded (RFC 3986 unreserved); everything else is `%XX`, so the
/// query we send is already in canonical form and RGW canonicalizes it the same way.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one path segment or query value the SigV4 way.
pub(super) fn encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// A request body and how its hash is signed.
#[derive(Clone, Copy)]
pub(super) enum Payload<'a> {
    /// No body.
    Empty,
    /// A body whose SHA-256 is signed (S3 calls).
    Signed(&'a [u8]),
    /// A body sent as `UNSIGNED-PAYLOAD`: RGW's Admin Ops answer a body with a real payload
    /// hash with 501 ("AWS4 completion for this operation NOT IMPLEMENTED").
    Unsigned(&'a [u8]),
}

/// One call: what it does (for errors), and the request.
pub(super) struct Call<'a> {
    /// A verb phrase for messages, e.g. `create bucket photos`.
    pub operation: String,
    pub method: Method,
    /// The already-encoded path, e.g. `/admin/user` or `/photos`.
    pub path: String,
    /// Query parameters, unencoded; an empty value is sent as `key=` (the canonical form).
    pub query: Vec<(&'static str, String)>,
    pub payload: Payload<'a>,
    pub timeout: Duration,
}

/// The RADOS Gateway's HTTP(S) client.
#[derive(Clone)]
pub(super) struct Rgw {
    endpoint: Uri,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Rgw {
    pub(super) fn new(endpoint: Uri) -> Result<Self, CephError> {
        let scheme_ok = matches!(endpoint.scheme_str(), Some("http" | "https"));
        let path_ok = matches!(endpoint.path(), "" | "/") && endpoint.query().is_none();
        if !scheme_ok || endpoint.host().is_none() || !path_ok {
            return Err(CephError::Config(format!(
                "the RGW endpoint must be http(s)://host[:port] with no path, not {endpoint}"
            )));
        }
        // The system's CA certificates for an https endpoint. An empty store is not an
        // error here: it only matters for https, where the handshake then says so.
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CephError::Config(format!("TLS for the RGW endpoint: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self { endpoint, http })
    }

    pub(super) fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// Sends `call` signed with `keys` and returns the body of its 2xx answer. Cancel-safe:
    /// dropping the future drops the request (RGW may still have done it).
    pub(super) async fn send(&self, keys: &S3Keys, call: Call<'_>) -> Result<Bytes, CephError> {
        let request = self
            .request(keys, &call)
            .map_err(|e| CephError::InvalidRequest {
                operation: call.operation.clone(),
                source: e,
            })?;
        let unreachable = |source| CephError::Unreachable {
            operation: call.operation.clone(),
            peer: format!("the RADOS Gateway at {}", self.endpoint),
            source,
        };
        let exchange = async {
            let answer = self.http.request(request).await?;
            let status = answer.status();
            let body = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, BoxError>((status, body))
        };
        let (status, body) = match tokio::time::timeout(call.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(unreachable(Some(e))),
            Err(_) => return Err(unreachable(None)),
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(CephError::from_rgw(
            call.operation,
            &keys.access_key,
            status,
            error_code(&body),
        ))
    }

    fn request(
        &self,
        keys: &S3Keys,
        call: &Call<'_>,
    ) -> Result<http::Request<Full<Bytes>>, BoxError> {
        let query = call
            .query
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let authority = self
            .endpoint
            .authority()
            .ok_or("the RGW endpoint has no host")?;
        let scheme = self.endpoint.scheme_str().unwrap_or("http");
        let uri = match query.as_str() {
            "" => format!("{scheme}://{authority}{}", call.path),
            query => format!("{scheme}://{authority}{}?{query}", call.path),
        };
        let (body, signable) = match call.payload {
            Payload::Empty => (Bytes::new(), SignableBody::Bytes(&[])),
            Payload::Signed(b) => (Bytes::copy_from_slice(b), SignableBody::Bytes(b)),
            Payload::Unsigned(b) => (Bytes::copy_from_slice(b), SignableBody::UnsignedPayload),
        };
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&uri)
            .body(Full::new(body))?;

        let identity = Credentials::new(
            keys.access_key.as_str(),
            keys.secret_key.expose(),
            None,
            None,
            "outpost-agent",
        )
        .into();
        let mut settings = SigningSettings::default();
        // RGW answers every request without this header with 403 SignatureDoesNotMatch.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        // S3 signs the path exactly as sent: encoded once, never normalized.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable = SignableRequest::new(
            call.method.as_str(),
            uri.as_str(),
            std::iter::empty(),
            signable,
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// RGW's error code from a refusal: `{"Code": …}` from Admin Ops asked for JSON, or
/// `<Error><Code>…</Code>` from S3. `None` for a body-less answer (e.g. to HEAD).
fn error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct JsonError {
        #[serde(rename = "Code")]
        code: String,
    }
    if let Ok(JsonError { code }) = serde_json::from_slice(body) {
        return Some(code);
    }
    xml_text(body, "Code").map(str::to_owned)
}

/// The text of the first `<tag>…</tag>` in `body`. Enough for S3's flat error and
/// versioning documents, whose values are plain words (no entities, no nesting).
pub(super) fn xml_text<'a>(body: &'a [u8], tag: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_json_and_xml() {
        let json = br#"{"Code":"NoSuchUser","RequestId":"tx1","HostId":"h"}"#;
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>QuotaExceeded</Code><BucketName>b</BucketName></Error>"#;
        assert_eq!(error_code(json).as_deref(), Some("NoSuchUser"));
        assert_eq!(error_code(xml).as_deref(), Some("QuotaExceeded"));
        assert_eq!(error_code(b""), None);
    }

    #[test]
    fn values_are_encoded_the_sigv4_way() {
        assert_eq!(encode("a b+c/d~e_f.g-h"), "a%20b%2Bc%2Fd~e_f.g-h");
    }

    #[test]
    fn a_bad_endpoint_is_refused() {
        for bad in ["ftp://rgw:80", "http://rgw:80/prefix", "http://rgw/?x=1"] {
            let uri: Uri = bad.parse().unwrap();
            assert!(matches!(Rgw::new(uri), Err(CephError::Config(_))), "{bad}");
        }
    }
}
