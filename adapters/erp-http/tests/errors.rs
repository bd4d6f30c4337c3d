//! Contract section 1 error mapping, against the fake ERP's fault switches.

#![allow(clippy::unwrap_used)] // test code

use std::time::{Duration, Instant};

use spacepos_auth::{OnboardError, OnboardingApi, OnboardingRequest};
use spacepos_core::{ClientInfo, ComponentId, Product, RemoteError, TerminalIdentity};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, FaultKind, FaultRule, Route};
use url::Url;

fn info() -> ClientInfo {
    ClientInfo {
        product: Product::SpacePos,
        version: "0.1.0".into(),
        os_name: "Linux".into(),
        os_version: "6.1".into(),
        arch: "x86_64".into(),
        hostname: "T".into(),
    }
}

async fn onboarded_client(erp: &FakeErp, request_timeout: Duration) -> ErpHttpClient {
    let creds = erp.register_terminal(12, 3);
    let identity = TerminalIdentity {
        client_id: creds.client_id.clone(),
        store_number: 12,
        terminal_number: 3,
    };
    let mut config = ErpHttpConfig::new(Url::parse(erp.base_url()).unwrap(), info())
        .with_device(creds, identity);
    config.request_timeout = request_timeout;
    ErpHttpClient::new(config).unwrap()
}

async fn settings(client: &ErpHttpClient) -> Result<(), RemoteError> {
    client.terminal_settings().await.map(|_| ())
}

#[tokio::test]
async fn retry_after_on_429_and_503_is_reported_with_its_delay() {
    let erp = FakeErp::start(FakeErpConfig::default()).await.unwrap();
    let client = onboarded_client(&erp, Duration::from_secs(30)).await;
    for status in [429, 503] {
        erp.add_fault(FaultRule::once(
            Route::TerminalsMe,
            FaultKind::RetryAfter { status, seconds: 7 },
        ));
        match settings(&client).await {
            Err(RemoteError::RetryAfter {
                status: s,
                retry_after,
                ..
            }) => {
                assert_eq!(s, status);
                assert_eq!(retry_after, Duration::from_secs(7));
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    assert!(
        settings(&client).await.is_ok(),
        "the fault was for one request only"
    );
}

#[tokio::test]
async fn server_errors_are_retryable_and_401_needs_reonboarding() {
    let erp = FakeErp::start(FakeErpConfig::default()).await.unwrap();
    let client = onboarded_client(&erp, Duration::from_secs(30)).await;
    for status in [500, 502, 503] {
        erp.add_fault(FaultRule::once(
            Route::TerminalsMe,
            FaultKind::Status(status),
        ));
        let e = settings(&client).await.unwrap_err();
        assert!(
            matches!(e, RemoteError::Server { status: s, .. } if s == status),
            "{e:?}"
        );
        assert!(e.is_retryable());
        assert!(
            e.to_string().contains(&erp.addr().port().to_string()),
            "names the host: {e}"
        );
    }
    erp.add_fault(FaultRule::once(Route::TerminalsMe, FaultKind::Unauthorized));
    let e = settings(&client).await.unwrap_err();
    assert!(e.needs_reonboarding(), "{e:?}");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_dropped_connection_is_unreachable() {
    let erp = FakeErp::start(FakeErpConfig::default()).await.unwrap();
    let client = onboarded_client(&erp, Duration::from_millis(500)).await;
    erp.add_fault(FaultRule::once(
        Route::TerminalsMe,
        FaultKind::Delay(Duration::from_secs(3)),
    ));
    let started = Instant::now();
    let e = settings(&client).await.unwrap_err();
    assert!(matches!(e, RemoteError::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up after the request timeout"
    );

    erp.add_fault(FaultRule::once(Route::TerminalsMe, FaultKind::Drop));
    let e = settings(&client).await.unwrap_err();
    assert!(matches!(e, RemoteError::Unreachable { .. }), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_names_the_host() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ErpHttpClient::new(ErpHttpConfig::new(
        Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        info(),
    ))
    .unwrap();
    let request = OnboardingRequest {
        code: "X".into(),
        client: info(),
        components: vec![ComponentId::SpacePos],
    };
    match client.onboard(&request).await {
        Err(OnboardError::Remote(e @ RemoteError::Unreachable { .. })) => {
            let text = e.to_string();
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            assert!(text.to_lowercase().contains("refused"), "{text}");
            assert!(
                !text.contains("/api/pos"),
                "no URL path in the message: {text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn redirects_are_not_followed_so_the_secret_stays_with_the_erp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    // The "ERP" answers every request with a redirect to a second server ...
    let thief = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_port = thief.local_addr().unwrap().port();
    let erp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let erp_port = erp.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = erp.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = socket.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{thief_port}/steal\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    // ... which must never be contacted.
    let contacted = tokio::spawn(async move { thief.accept().await.is_ok() });

    let creds = spacepos_core::DeviceCredentials {
        client_id: "trm_1".into(),
        client_secret: spacepos_core::Secret::new("s3cr3t"),
    };
    let identity = TerminalIdentity {
        client_id: "trm_1".into(),
        store_number: 12,
        terminal_number: 3,
    };
    let config = ErpHttpConfig::new(
        Url::parse(&format!("http://127.0.0.1:{erp_port}")).unwrap(),
        info(),
    )
    .with_device(creds, identity);
    let client = ErpHttpClient::new(config).unwrap();
    let e = settings(&client).await.unwrap_err();
    assert!(
        matches!(e, RemoteError::Rejected { status: 307, .. }),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !contacted.is_finished(),
        "the redirect target was contacted"
    );
    contacted.abort();
}
