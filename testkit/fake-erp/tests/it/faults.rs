//! Fault switches, each kind over real connections, and pause / resume.

use std::time::{Duration, Instant};

use spacepos_core::ComponentId;
use spacepos_erp_wire::rest::{OperationStatus, OperationsRequest};
use spacepos_fake_erp::{
    FakeErp, FakeErpConfig, FakeErpError, FaultKind, FaultRule, ReleaseSpec, Route,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{
    Device, demo, error_of, raw_exchange, raw_exchange_for, raw_request, split_head,
};
use crate::operations::{sale, submit};

#[tokio::test]
async fn status_unauthorized_and_retry_after_answer_without_doing_the_work() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let batch: Vec<_> = (0..3).map(sale).collect();
    let post = || {
        device
            .post("/api/pos/operations")
            .json(&OperationsRequest {
                operations: batch.clone(),
            })
            .send()
    };

    erp.add_fault(FaultRule::times(
        Route::Operations,
        FaultKind::Status(503),
        2,
    ));
    assert_eq!(
        error_of(post().await.unwrap()).await,
        (503, "service_unavailable".into())
    );
    assert_eq!(
        error_of(post().await.unwrap()).await,
        (503, "service_unavailable".into())
    );
    assert_eq!(erp.accepted_count(), 0);

    erp.add_fault(FaultRule::once(
        Route::Operations,
        FaultKind::RetryAfter {
            status: 429,
            seconds: 7,
        },
    ));
    let resp = post().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(error_of(resp).await, (429, "too_many_requests".into()));

    erp.add_fault(FaultRule::once(
        Route::Operations,
        FaultKind::RetryAfter {
            status: 503,
            seconds: 2,
        },
    ));
    let resp = post().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(resp.status(), 503);

    erp.add_fault(FaultRule::once(Route::Operations, FaultKind::Unauthorized));
    assert_eq!(
        error_of(post().await.unwrap()).await,
        (401, "invalid_client".into())
    );
    erp.add_fault(FaultRule::once(Route::Operations, FaultKind::Status(500)));
    assert_eq!(
        error_of(post().await.unwrap()).await,
        (500, "internal_error".into())
    );
    assert_eq!(erp.accepted_count(), 0);

    // The rules are used up: the next call works.
    assert!(erp.faults().is_empty());
    let ok = post().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(erp.accepted_count(), 3);

    let faults: Vec<Option<String>> = erp
        .requests_to(Route::Operations)
        .into_iter()
        .map(|r| r.fault)
        .collect();
    assert_eq!(faults[0].as_deref(), Some("status(503)"));
    assert_eq!(faults[2].as_deref(), Some("retryAfter(429, 7s)"));
    assert_eq!(faults.last().unwrap(), &None);
}

#[tokio::test]
async fn rules_match_their_route_or_any_and_count_down() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    erp.add_fault(FaultRule::times(Route::Any, FaultKind::Status(502), 2));
    erp.add_fault(FaultRule::always(Route::Jwks, FaultKind::Status(504)));
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        502
    );
    assert_eq!(
        device
            .get("/api/pos/terminals/me")
            .send()
            .await
            .unwrap()
            .status(),
        502
    );
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..3 {
        assert_eq!(
            device
                .get("/api/pos/auth/jwks")
                .send()
                .await
                .unwrap()
                .status(),
            504
        );
    }
    assert_eq!(erp.faults().len(), 1);
    erp.clear_faults();
    assert_eq!(
        device
            .get("/api/pos/auth/jwks")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn delay_answers_normally_after_waiting() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    erp.add_fault(FaultRule::once(
        Route::Datasets,
        FaultKind::Delay(Duration::from_millis(400)),
    ));
    let started = Instant::now();
    let resp = device.get("/api/pos/datasets").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn drop_closes_the_connection_without_an_answer_or_the_work() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let body = serde_json::to_string(&OperationsRequest {
        operations: vec![sale(1)],
    })
    .unwrap();
    erp.add_fault(FaultRule::once(Route::Operations, FaultKind::Drop));
    let (answer, closed) = raw_exchange(
        erp.addr(),
        &raw_request(&device, "POST", "/api/pos/operations", &body),
    )
    .await;
    assert!(closed, "the server closed the connection");
    assert!(
        answer.is_empty(),
        "not a byte of answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(erp.accepted_count(), 0);
    let rec = erp.requests_to(Route::Operations);
    assert_eq!(
        (rec[0].status, rec[0].fault.as_deref()),
        (None, Some("drop"))
    );

    // Through an HTTP client: an error, not a status.
    erp.add_fault(FaultRule::once(Route::Datasets, FaultKind::Drop));
    let err = device.get("/api/pos/datasets").send().await.unwrap_err();
    assert!(err.status().is_none(), "{err}");
    // The server itself is fine.
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_drop_does_the_work_then_closes_the_connection() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let batch: Vec<_> = (0..5).map(sale).collect();
    let body = serde_json::to_string(&OperationsRequest {
        operations: batch.clone(),
    })
    .unwrap();
    erp.add_fault(FaultRule::once(Route::Operations, FaultKind::ApplyThenDrop));
    let (answer, closed) = raw_exchange(
        erp.addr(),
        &raw_request(&device, "POST", "/api/pos/operations", &body),
    )
    .await;
    assert!(closed && answer.is_empty(), "closed without an answer");
    assert_eq!(erp.accepted_count(), 5, "the work was done");
    // The terminal's retry of the same batch: all duplicates.
    let retry = submit(&device, &batch).await;
    assert!(
        retry
            .results
            .iter()
            .all(|r| r.status == OperationStatus::Duplicate)
    );
    assert_eq!(erp.accepted_count(), 5);

    // Onboarding too: the code is consumed although the answer never came.
    let code = erp.issue_onboarding_code(12, 9);
    erp.add_fault(FaultRule::once(Route::Onboard, FaultKind::ApplyThenDrop));
    let onboard = serde_json::json!({"onboardingCode": code, "hostname": "h", "os": "o", "arch": "a", "appVersion": "1"})
        .to_string();
    let (answer, closed) = raw_exchange(
        erp.addr(),
        &raw_request(&device, "POST", "/api/pos/terminals/onboard", &onboard),
    )
    .await;
    assert!(closed && answer.is_empty());
    let again = device
        .client
        .post(format!("{}/api/pos/terminals/onboard", erp.base_url()))
        .body(onboard)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (409, "onboarding_code_used".into()));
}

#[tokio::test]
async fn cut_body_sends_headers_and_the_first_bytes_then_closes_and_range_resumes() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let release = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_size(200_000))
        .unwrap();
    let path = release.url.strip_prefix(erp.base_url()).unwrap().to_owned();

    erp.add_fault(FaultRule::once(
        Route::Artifact,
        FaultKind::CutBody {
            after_bytes: 70_000,
        },
    ));
    let (raw, closed) = raw_exchange(erp.addr(), &raw_request(&device, "GET", &path, "")).await;
    assert!(closed);
    let (head, first) = split_head(&raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 200000"),
        "{head}"
    );
    assert_eq!(first.len(), 70_000, "exactly the first bytes");

    // Resume where the cut happened.
    let resp = device
        .get(&path)
        .header("Range", format!("bytes={}-", first.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    let rest = resp.bytes().await.unwrap();
    let mut whole = first;
    whole.extend_from_slice(&rest);
    let direct = device
        .get(&path)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(whole, direct.to_vec());

    // An HTTP client sees a body error.
    erp.add_fault(FaultRule::once(
        Route::Artifact,
        FaultKind::CutBody { after_bytes: 10 },
    ));
    let resp = device.get(&path).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(200_000));
    assert!(resp.bytes().await.is_err());

    // Zero bytes: only the head.
    erp.add_fault(FaultRule::once(
        Route::Snapshot,
        FaultKind::CutBody { after_bytes: 0 },
    ));
    let (raw, closed) = raw_exchange(
        erp.addr(),
        &raw_request(&device, "GET", "/api/pos/datasets/products/snapshot", ""),
    )
    .await;
    let (head, body) = split_head(&raw);
    assert!(
        closed && head.starts_with("HTTP/1.1 200") && body.is_empty(),
        "{head}"
    );
}

#[tokio::test]
async fn stall_body_keeps_the_connection_open_and_silent() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let release = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_size(50_000))
        .unwrap();
    let path = release.url.strip_prefix(erp.base_url()).unwrap().to_owned();
    erp.add_fault(FaultRule::once(
        Route::Artifact,
        FaultKind::StallBody { after_bytes: 1_000 },
    ));
    let (raw, closed) = raw_exchange_for(
        erp.addr(),
        &raw_request(&device, "GET", &path, ""),
        Duration::from_millis(800),
    )
    .await;
    assert!(!closed, "still open");
    let (head, body) = split_head(&raw);
    assert!(head.starts_with("HTTP/1.1 200"));
    assert_eq!(body.len(), 1_000);
}

#[tokio::test]
async fn pause_makes_the_erp_unreachable_and_resume_brings_it_back_on_the_same_port() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let addr = erp.addr();
    submit(&device, &[sale(1)]).await;

    // A kept-alive connection is closed by the pause too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(&raw_request(&device, "GET", "/api/pos/datasets", ""))
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    assert!(idle.read(&mut buf).await.unwrap() > 0);

    erp.pause().await;
    assert!(erp.is_paused());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "connection refused while paused"
    );
    let err = device.get("/api/pos/datasets").send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the open connection was closed");

    erp.resume().await.unwrap();
    assert!(!erp.is_paused());
    assert_eq!(erp.addr(), addr);
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(erp.accepted_count(), 1, "state survived the pause");
    // Twice in a row is harmless.
    erp.resume().await.unwrap();
    erp.pause().await;
    erp.pause().await;
    erp.resume().await.unwrap();
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    erp.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    assert!(matches!(erp.resume().await, Err(FakeErpError::ShutDown)));
}

#[test]
fn works_on_a_current_thread_runtime_and_stops_when_dropped() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let erp = FakeErp::start(FakeErpConfig::default()).await.unwrap();
        let device = Device::register(&erp, 12, 1);
        assert_eq!(
            device
                .get("/api/pos/datasets")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let addr = erp.addr();
        drop(erp);
        // The accept loop notices on its next poll.
        let mut refused = false;
        for _ in 0..50 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the last handle's drop closed the port");
    });
}
