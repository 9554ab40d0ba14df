//! The chunker's bounds as pure tests; answers end to end against the in-process simulated
//! cluster through a real `kube::Client`.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job};
use kube::api::{Api, Patch, PatchParams};
use outpost_domain::{
    desired::{Build, Workload},
    resources::GitSource,
};
use outpost_kube_sim::{Sim, SimConfig};

use super::*;
use crate::drivers::kube::{
    build::{self, BuildSettings},
    images::ImageSource,
    logs::MAX_LINE_BYTES,
    manifests,
};

fn line(text: &str) -> pb::LogLine {
    pb::LogLine {
        time: None,
        text: text.into(),
    }
}

fn texts<'a>(chunk: &'a Chunk<&str>) -> Vec<&'a str> {
    chunk.lines.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn a_chunk_holds_the_lines_of_one_source() {
    let mut c = Chunker::new(None);
    assert_eq!(c.push("a", line("1")), None);
    assert_eq!(c.push("a", line("2")), None);
    let full = c.push("b", line("3")).expect("a's chunk");
    assert_eq!((full.source, texts(&full)), ("a", vec!["1", "2"]));
    let rest = c.take().expect("b's chunk");
    assert_eq!((rest.source, texts(&rest)), ("b", vec!["3"]));
    assert_eq!(c.take(), None);
}

#[test]
fn a_chunk_is_bounded_in_lines_and_bytes() {
    let mut c = Chunker::new(None);
    let mut sent = Vec::new();
    for _ in 0..MAX_CHUNK_LINES * 2 + 1 {
        sent.extend(c.push("a", line("x")));
    }
    sent.extend(c.take());
    assert_eq!(
        sent.iter().map(|s| s.lines.len()).collect::<Vec<_>>(),
        [MAX_CHUNK_LINES, MAX_CHUNK_LINES, 1]
    );

    let big = "y".repeat(MAX_LINE_BYTES);
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.extend(c.push("a", line(&big)));
    }
    sent.extend(c.take());
    assert!(
        sent.iter()
            .all(|s| s.lines.iter().map(|l| l.text.len()).sum::<usize>() <= MAX_CHUNK_BYTES)
    );
    assert_eq!(sent.iter().map(|s| s.lines.len()).sum::<usize>(), 10);
    assert_eq!(sent[0].lines.len(), MAX_CHUNK_BYTES / MAX_LINE_BYTES);
}

#[test]
fn lines_past_the_limit_are_dropped() {
    let mut c = Chunker::new(Some(3));
    for text in ["1", "2"] {
        assert_eq!(c.push("a", line(text)), None);
        assert!(!c.limit_reached());
    }
    assert_eq!(c.push("a", line("3")), None);
    assert!(c.limit_reached());
    assert_eq!(c.push("b", line("4")), None, "dropped, and a's chunk kept");
    assert_eq!(texts(&c.take().expect("chunk")), ["1", "2", "3"]);
}

/// A cluster running workload `web` (two pods) and the build Job of its deployment 3, all
/// from the agent's own manifests, started, ready or complete.
async fn cluster() -> Sim {
    let sim = Sim::start(SimConfig::explicit()).expect("sim");
    let workload = Workload {
        namespace: "default".into(),
        ..crate::fixtures::workload("web")
    };
    let service = workload.service.clone();
    let apply = PatchParams::apply("test").force();
    Api::<Deployment>::namespaced(sim.client(), "default")
        .patch(
            "web",
            &apply,
            &Patch::Apply(manifests::deployment(
                &workload,
                Duration::from_secs(600),
                &ImageSource::default(),
            )),
        )
        .await
        .expect("deployment");
    let build = Build {
        service,
        deployment: 3,
        namespace: "default".into(),
        source: GitSource {
            url: "https://git.example.com/shop/web.git".into(),
            ..Default::default()
        },
    };
    Api::<Job>::namespaced(sim.client(), "default")
        .patch(
            &build.job_name(),
            &apply,
            &Patch::Apply(build::job(
                &build,
                &BuildSettings::default(),
                &ImageSource::default(),
            )),
        )
        .await
        .expect("build job");
    sim.settle().expect("settles");
    sim
}

fn request(id: u64) -> pb::LogRequest {
    pb::LogRequest {
        id,
        namespace: "default".into(),
        workload: "web".into(),
        timeout_ms: 10_000,
        ..Default::default()
    }
}

/// Every chunk of answer `id` up to and including its end (bounded: a test that hangs fails).
async fn answer_of(rx: &mut mpsc::Receiver<pb::AttachRequest>, id: u64) -> Vec<pb::LogChunk> {
    let mut chunks = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an answer within 10s")
            .expect("stream open");
        let Some(Out::LogChunk(chunk)) = message.kind else {
            panic!("not a log chunk: {message:?}");
        };
        assert_eq!(chunk.id, id);
        let last = chunk.end.is_some();
        chunks.push(chunk);
        if last {
            return chunks;
        }
    }
}

fn ending(chunks: &[pb::LogChunk]) -> pb::LogEnd {
    chunks.last().and_then(|c| c.end.clone()).expect("an end")
}

/// (pod, text) of every line.
fn lines(chunks: &[pb::LogChunk]) -> Vec<(String, String)> {
    chunks
        .iter()
        .flat_map(|c| c.lines.iter().map(|l| (c.pod.clone(), l.text.clone())))
        .collect()
}

#[tokio::test]
async fn recent_lines_come_pod_by_pod_with_their_time_and_never_from_builds() {
    let sim = cluster().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut logs = LogRequests::new(PodLogs::new(sim.client()), tx);
    logs.start(pb::LogRequest {
        tail_lines: 2,
        ..request(1)
    });
    let chunks = answer_of(&mut rx, 1).await;
    assert!(
        chunks[0].lines.is_empty(),
        "the first chunk says the pods were found"
    );
    assert_eq!(ending(&chunks).code(), pb::LogEndCode::Complete);
    assert!(!ending(&chunks).truncated);
    let lines = lines(&chunks);
    let pods: Vec<&str> = lines.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pods.len(), 4, "two lines of each of two pods: {lines:?}");
    assert!(
        pods.windows(2).all(|w| w[0] <= w[1]),
        "pod by pod: {pods:?}"
    );
    assert!(
        pods.iter()
            .all(|p| p.starts_with("web-") && !p.starts_with("web-build-"))
    );
    assert!(
        lines.iter().any(|(_, text)| text.ends_with("INFO ready")),
        "{lines:?}"
    );
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.lines)
            .all(|l| l.time.is_some()),
        "every line has the time the cluster gave it"
    );
    assert!(
        chunks
            .iter()
            .filter(|c| !c.lines.is_empty())
            .all(|c| c.container == "app")
    );
}

#[tokio::test]
async fn a_build_is_read_from_its_pod_or_not_found() {
    let sim = cluster().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut logs = LogRequests::new(PodLogs::new(sim.client()), tx);
    logs.start(pb::LogRequest {
        build: 3,
        ..request(1)
    });
    let chunks = answer_of(&mut rx, 1).await;
    let lines = lines(&chunks);
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|(pod, _)| pod.starts_with("web-build-3-")),
        "{lines:?}"
    );
    assert!(
        chunks
            .iter()
            .filter(|c| !c.lines.is_empty())
            .all(|c| c.container == "build")
    );

    logs.start(pb::LogRequest {
        build: 4,
        ..request(2)
    });
    let end = ending(&answer_of(&mut rx, 2).await);
    assert_eq!(end.code(), pb::LogEndCode::NotFound);
    assert!(
        end.message.contains("no build pod for deployment 4"),
        "{}",
        end.message
    );
}

#[tokio::test]
async fn an_answer_stops_at_its_line_limit_and_since_its_window() {
    let sim = cluster().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut logs = LogRequests::new(PodLogs::new(sim.client()), tx);
    logs.start(pb::LogRequest {
        max_lines: 3,
        ..request(1)
    });
    let chunks = answer_of(&mut rx, 1).await;
    assert_eq!(lines(&chunks).len(), 3);
    assert!(ending(&chunks).truncated);

    // Every line was written at start; two minutes later, the last minute has none.
    sim.advance(Duration::from_secs(120));
    logs.start(pb::LogRequest {
        since_seconds: 60,
        ..request(2)
    });
    let chunks = answer_of(&mut rx, 2).await;
    assert!(lines(&chunks).is_empty(), "{chunks:?}");
    assert_eq!(ending(&chunks).code(), pb::LogEndCode::Complete);
}

#[tokio::test]
async fn a_followed_log_ends_at_its_timeout_or_silently_when_canceled() {
    let sim = cluster().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mut logs = LogRequests::new(PodLogs::new(sim.client()), tx);
    logs.start(pb::LogRequest {
        follow: true,
        timeout_ms: 300,
        ..request(1)
    });
    let chunks = answer_of(&mut rx, 1).await;
    assert_eq!(ending(&chunks).code(), pb::LogEndCode::Complete);
    assert_eq!(
        lines(&chunks).len(),
        6,
        "every line of both pods: {chunks:?}"
    );

    logs.start(pb::LogRequest {
        follow: true,
        timeout_ms: 60_000,
        ..request(2)
    });
    // The pods are found and their lines sent; the followed log then waits for more.
    let mut seen = 0;
    while seen < 6 {
        let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("lines within 10s")
            .expect("open");
        let Some(Out::LogChunk(chunk)) = message.kind else {
            panic!("{message:?}")
        };
        assert!(chunk.end.is_none());
        seen += chunk.lines.len();
    }
    logs.cancel(2);
    // The answer's task ends (its pod log streams closed with it), without an end chunk.
    tokio::time::timeout(Duration::from_secs(10), logs.tasks.join_next())
        .await
        .expect("the canceled answer stops")
        .expect("a task")
        .expect("not panicked");
    assert!(logs.running.is_empty());
    assert!(rx.try_recv().is_err(), "nothing after the cancel");
    // A cancel for an unknown or finished id changes nothing.
    logs.cancel(2);
    logs.cancel(99);
}

#[tokio::test]
async fn requests_beyond_the_limit_are_refused_and_repeats_ignored() {
    let sim = cluster().await;
    let (tx, mut rx) = mpsc::channel(1024);
    let mut logs = LogRequests::new(PodLogs::new(sim.client()), tx);
    let follow = |id| pb::LogRequest {
        follow: true,
        timeout_ms: 60_000,
        ..request(id)
    };
    for id in 1..=MAX_REQUESTS as u64 {
        logs.start(follow(id));
    }
    logs.start(follow(1));
    assert_eq!(logs.running.len(), MAX_REQUESTS, "a repeated id is ignored");
    let refused = MAX_REQUESTS as u64 + 1;
    logs.start(follow(refused));
    let end = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an answer within 10s")
            .expect("open");
        if let Some(Out::LogChunk(c)) = message.kind
            && c.id == refused
        {
            break c.end.expect("refused at once");
        }
    };
    assert_eq!(end.code(), pb::LogEndCode::Exhausted);
}
