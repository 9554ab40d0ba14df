use std::sync::Arc;

use futures::FutureExt as _;
use outpost_proto::agent::v1 as pb;

use super::*;

fn lines(id: u64, n: usize) -> pb::LogChunk {
    pb::LogChunk {
        id,
        pod: "web-1".into(),
        container: "app".into(),
        lines: (0..n)
            .map(|i| pb::LogLine {
                time: None,
                text: format!("line {i}"),
            })
            .collect(),
        end: None,
    }
}

fn end(id: u64, code: pb::LogEndCode, truncated: bool) -> pb::LogChunk {
    pb::LogChunk {
        id,
        end: Some(pb::LogEnd {
            code: code.into(),
            message: "no build pod for deployment 3".into(),
            truncated,
        }),
        ..Default::default()
    }
}

/// A relay with one link of `dc1` registered, and a request opened on it.
async fn opened(relay: &Arc<LogRelay>, link: &mut LinkLogs) -> (LogSubscription, u64) {
    let subscription = relay
        .open("dc1", pb::LogRequest::default())
        .await
        .expect("linked");
    match link.next_for_agent().await {
        (Out::LogRequest(request), _) => (subscription, request.id),
        other => panic!("expected a request, got {other:?}"),
    }
}

/// The id of the next cancel the link sends, if one is due now.
fn cancel_due(link: &mut LinkLogs) -> Option<u64> {
    match link.next_for_agent().now_or_never() {
        Some((Out::LogCancel(c), _)) => Some(c.id),
        None => None,
        Some(other) => panic!("expected a cancel, got {other:?}"),
    }
}

#[tokio::test]
async fn a_datacenter_without_a_link_here_is_not_linked() {
    let relay = Arc::new(LogRelay::default());
    let err = relay
        .open("dc1", pb::LogRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err, LogFailure::NotLinked("dc1".into()));
    assert!(
        err.to_string()
            .contains("not connected to this management instance")
    );
}

#[tokio::test]
async fn chunks_reach_the_caller_in_order_and_the_end_completes_it() {
    let relay = Arc::new(LogRelay::default());
    let mut link = LinkLogs::register(relay.clone(), "dc1");
    let (mut sub, id) = opened(&relay, &mut link).await;
    assert!(id > 0);
    assert_eq!(link.deliver(lines(id, 0)), None);
    assert_eq!(link.deliver(lines(id, 2)), None);
    let mut last = lines(id, 1);
    last.end = end(id, pb::LogEndCode::Complete, true).end;
    assert_eq!(link.deliver(last), None);
    assert_eq!(
        sub.next().await.expect("chunk").map(|c| c.lines.len()),
        Some(0)
    );
    assert_eq!(
        sub.next().await.expect("chunk").map(|c| c.lines.len()),
        Some(2)
    );
    let final_lines = sub.next().await.expect("chunk").expect("lines");
    assert_eq!(final_lines.lines.len(), 1);
    assert_eq!(sub.next().await, Ok(None));
    assert!(sub.truncated());
    assert_eq!(sub.next().await, Ok(None), "the end stays the end");
    // Late chunks of an ended request are dropped, not delivered or canceled.
    assert_eq!(link.deliver(lines(id, 1)), None);
}

#[tokio::test]
async fn an_agent_side_failure_is_the_callers_error() {
    let relay = Arc::new(LogRelay::default());
    let mut link = LinkLogs::register(relay.clone(), "dc1");
    for (code, expected) in [
        (
            pb::LogEndCode::NotFound,
            LogFailure::NotFound("no build pod for deployment 3".into()),
        ),
        (pb::LogEndCode::Exhausted, LogFailure::TooMany),
        (
            pb::LogEndCode::Unavailable,
            LogFailure::ClusterUnavailable("no build pod for deployment 3".into()),
        ),
    ] {
        let (mut sub, id) = opened(&relay, &mut link).await;
        link.deliver(end(id, code, false));
        assert_eq!(sub.next().await, Err(expected));
        assert_eq!(sub.next().await, Ok(None));
    }
}

#[tokio::test]
async fn a_slow_caller_loses_its_request_and_never_blocks_the_link() {
    let relay = Arc::new(LogRelay::default());
    let mut link = LinkLogs::register(relay.clone(), "dc1");
    let (mut sub, id) = opened(&relay, &mut link).await;
    for _ in 0..CHUNK_BUFFER {
        assert_eq!(link.deliver(lines(id, 1)), None);
    }
    // Nothing was read: the next chunk stops the request (cancel it at the agent) at once.
    assert_eq!(link.deliver(lines(id, 1)), Some(id));
    assert_eq!(link.deliver(lines(id, 1)), None, "canceled once");
    for _ in 0..CHUNK_BUFFER {
        assert!(sub.next().await.expect("buffered chunk").is_some());
    }
    assert_eq!(sub.next().await, Err(LogFailure::TooSlow));
}

#[tokio::test]
async fn a_caller_that_goes_away_is_canceled_at_the_agent() {
    let relay = Arc::new(LogRelay::default());
    let mut link = LinkLogs::register(relay.clone(), "dc1");
    let (sub, id) = opened(&relay, &mut link).await;
    assert_eq!(cancel_due(&mut link), None);
    drop(sub);
    assert_eq!(cancel_due(&mut link), Some(id));
    assert_eq!(link.deliver(lines(id, 1)), None, "forgotten");
    // A request that ended normally is not canceled when its caller then goes.
    let (mut sub, id) = opened(&relay, &mut link).await;
    link.deliver(end(id, pb::LogEndCode::Complete, false));
    assert_eq!(sub.next().await, Ok(None));
    drop(sub);
    assert_eq!(cancel_due(&mut link), None);
}

#[tokio::test]
async fn a_link_takes_a_bounded_number_of_requests() {
    let relay = Arc::new(LogRelay::default());
    let mut link = LinkLogs::register(relay.clone(), "dc1");
    let mut open = Vec::new();
    for _ in 0..MAX_OPEN_PER_LINK {
        open.push(opened(&relay, &mut link).await);
    }
    let mut refused = relay
        .open("dc1", pb::LogRequest::default())
        .await
        .expect("queued");
    assert_eq!(cancel_due(&mut link), None, "refused, not sent");
    assert_eq!(refused.next().await, Err(LogFailure::TooMany));
    // An answer that ends frees its slot.
    let (mut first, id) = open.remove(0);
    link.deliver(end(id, pb::LogEndCode::Complete, false));
    assert_eq!(first.next().await, Ok(None));
    let (_accepted, id) = opened(&relay, &mut link).await;
    assert!(id > 0);
}

#[tokio::test]
async fn a_link_that_ends_disconnects_its_callers_and_leaves_the_relay() {
    let relay = Arc::new(LogRelay::default());
    let mut old = LinkLogs::register(relay.clone(), "dc1");
    let (mut sub, _) = opened(&relay, &mut old).await;
    // The agent reconnects before the old link has closed: the new link takes requests,
    // and the old one leaving does not unregister it.
    let mut new = LinkLogs::register(relay.clone(), "dc1");
    drop(old);
    assert_eq!(sub.next().await, Err(LogFailure::Disconnected));
    let (_sub, id) = opened(&relay, &mut new).await;
    assert!(id > 0);
    drop(new);
    assert!(matches!(
        relay.open("dc1", pb::LogRequest::default()).await,
        Err(LogFailure::NotLinked(_))
    ));
}
