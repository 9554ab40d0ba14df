//! Malformed and hostile requests get Kubernetes `Status` errors (4xx), never a panic or a
//! 5xx, and leave the cluster unchanged.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use outpost_kube_sim::{Sim, SimConfig};
use serde_json::Value;
use tower::ServiceExt;

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"web:v1"}]}}}}"#;

#[tokio::test]
async fn malformed_requests_get_status_errors_and_change_nothing() {
    let sim = Sim::start(SimConfig::explicit()).unwrap();
    let cm = "/api/v1/namespaces/default/configmaps";
    let dep = "/apis/apps/v1/namespaces/default/deployments";
    let merge = "application/merge-patch+json";
    let apply = "application/apply-patch+yaml";
    let json = "application/json";
    let cases: Vec<(Method, String, &str, &str, u16)> = vec![
        (Method::GET, "/api/v2/pods".into(), json, "", 404),
        (Method::GET, "/apis/apps/v1/widgets".into(), json, "", 404),
        (
            Method::GET,
            "/api/v1/namespaces/default/pods/p/exec".into(),
            json,
            "",
            404,
        ),
        (Method::GET, "/nothing/here".into(), json, "", 404),
        (
            Method::GET,
            format!("{cm}?labelSelector=a%20in%20x"),
            json,
            "",
            400,
        ),
        (
            Method::GET,
            format!("{cm}?fieldSelector=metadata.name"),
            json,
            "",
            400,
        ),
        (Method::GET, format!("{cm}?limit=-1"), json, "", 400),
        (Method::GET, format!("{cm}?watch=maybe"), json, "", 400),
        (Method::GET, format!("{cm}?continue=zz"), json, "", 400),
        (
            Method::GET,
            format!("{cm}?watch=true&resourceVersion=abc"),
            json,
            "",
            400,
        ),
        (Method::POST, cm.into(), json, "{", 400),
        (Method::POST, cm.into(), json, "[1,2]", 400),
        (
            Method::POST,
            cm.into(),
            json,
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"}}"#,
            400,
        ),
        (
            Method::POST,
            cm.into(),
            json,
            r#"{"metadata":{"name":"x","namespace":"other"}}"#,
            400,
        ),
        (
            Method::POST,
            cm.into(),
            json,
            r#"{"metadata":{"name":"Not_Valid"}}"#,
            422,
        ),
        (Method::POST, cm.into(), json, r#"{"metadata":{}}"#, 422),
        (Method::POST, cm.into(), json, r#"{"metadata":"oops"}"#, 400),
        (
            Method::POST,
            cm.into(),
            json,
            r#"{"metadata":{"name":"x"},"data":[1]}"#,
            400,
        ),
        (
            Method::POST,
            dep.into(),
            json,
            r#"{"metadata":{"name":"web"},"spec":{"replicas":"three"}}"#,
            400,
        ),
        (
            Method::POST,
            dep.into(),
            json,
            r#"{"metadata":{"name":"web"},"spec":{"selector":{},"template":{"spec":{"containers":[]}}}}"#,
            422,
        ),
        (Method::POST, "/api/v1/pods".into(), json, "{}", 405),
        (
            Method::PUT,
            format!("{cm}/x"),
            json,
            r#"{"metadata":{"name":"x"}}"#,
            404,
        ),
        (
            Method::PATCH,
            format!("{cm}/x"),
            merge,
            r#"{"data":{}}"#,
            404,
        ),
        (Method::PATCH, format!("{cm}/x"), "text/plain", "{}", 415),
        (
            Method::PATCH,
            format!("{cm}/x?fieldManager=t"),
            apply,
            "not json",
            400,
        ),
        (
            Method::PATCH,
            format!("{cm}/x?fieldManager=t"),
            apply,
            r#"{"metadata":{"name":"x"}}"#,
            400,
        ),
        (
            Method::PATCH,
            format!("{cm}/x"),
            apply,
            r#"{"apiVersion":"v1","kind":"ConfigMap"}"#,
            400,
        ),
        (
            Method::PATCH,
            format!("{cm}/x?fieldManager=t"),
            apply,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}"#,
            400,
        ),
        (
            Method::PATCH,
            format!("{dep}/web?fieldManager=t&force=sure"),
            apply,
            DEPLOYMENT,
            400,
        ),
        (
            Method::PATCH,
            format!("{dep}/web/status?fieldManager=t"),
            apply,
            DEPLOYMENT,
            404,
        ),
        (Method::DELETE, format!("{cm}/x"), json, "", 404),
        (Method::DELETE, format!("{cm}/x"), json, "{bad", 400),
        (
            Method::DELETE,
            "/api/v1/namespaces/default".into(),
            json,
            "",
            403,
        ),
        (
            Method::DELETE,
            format!("{cm}?propagationPolicy=Sideways"),
            json,
            "",
            400,
        ),
        (
            Method::POST,
            format!("{cm}?dryRun=Some"),
            json,
            r#"{"metadata":{"name":"x"}}"#,
            400,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/default/pods/p/log".into(),
            json,
            "",
            404,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/default/pods/p/log".into(),
            json,
            "",
            405,
        ),
    ];
    let rv = sim.resource_version();
    for (method, uri, content_type, body, want) in cases {
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header("content-type", content_type)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = sim.router().oneshot(request).await.unwrap();
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let status: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {uri}: not JSON: {bytes:?}"));
        assert_eq!(code.as_u16(), want, "{method} {uri} {body}: {status}");
        assert_eq!(status["kind"], "Status", "{method} {uri}");
        assert_eq!(status["code"], want, "{method} {uri}");
        assert!(code != StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(
        sim.resource_version(),
        rv,
        "no malformed request changed anything"
    );
}
