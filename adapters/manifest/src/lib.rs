//! The one-shot loopback server of the manifest Tauri's updater reads.
//!
//! [`LoopbackManifestServer`] implements
//! [`ManifestServer`] with a raw tokio
//! `TcpListener` on `127.0.0.1:0` (no HTTP framework: hyper and axum are
//! reserved to the fake ERP by the dependency rule). Each manifest gets its
//! own listener and an unguessable path (`/manifest/<uuid>.json`); the first
//! `GET` of that path is answered `200` with the JSON, every other request
//! (a second `GET`, another path, another method) `404`; each connection is
//! closed after its answer. The listener closes `linger` after the manifest
//! was served, or `wait_first` after it was offered if nobody asked.
//! Request bodies are never read and nothing of a request is logged but its
//! method and whether it was served.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use spacepos_updates::{ManifestError, ManifestServer, ServedManifest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use uuid::Uuid;

/// Longest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves each manifest once on a fresh loopback port.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackManifestServer {
    wait_first: Duration,
    linger: Duration,
}

impl Default for LoopbackManifestServer {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopbackManifestServer {
    /// Waits up to 10 minutes for the updater, then keeps answering `404` for 30 s.
    pub fn new() -> Self {
        LoopbackManifestServer {
            wait_first: Duration::from_secs(600),
            linger: Duration::from_secs(30),
        }
    }

    /// How long the listener waits for the first request, and how long it
    /// stays up (answering `404`) after the manifest was served.
    pub fn with_timeouts(mut self, wait_first: Duration, linger: Duration) -> Self {
        self.wait_first = wait_first;
        self.linger = linger;
        self
    }
}

#[async_trait]
impl ManifestServer for LoopbackManifestServer {
    async fn serve_once(&self, json: Vec<u8>) -> Result<ServedManifest, ManifestError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ManifestError::Backend(Box::new(e)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ManifestError::Backend(Box::new(e)))?;
        let path = format!("/manifest/{}.json", Uuid::new_v4().simple());
        let url = format!("http://{addr}{path}");
        tokio::spawn(serve(
            listener,
            Arc::new(Offer {
                path,
                json,
                served: AtomicBool::new(false),
            }),
            self.wait_first,
            self.linger,
        ));
        Ok(ServedManifest { url })
    }
}

#[derive(Debug)]
struct Offer {
    path: String,
    json: Vec<u8>,
    served: AtomicBool,
}

async fn serve(listener: TcpListener, offer: Arc<Offer>, wait_first: Duration, linger: Duration) {
    let mut deadline = Instant::now() + wait_first;
    let mut extended = false;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        // Answer connections one at a time, in order, so "first GET" is well defined.
        if let Err(e) = answer(stream, &offer).await {
            tracing::debug!(error = %e, "a manifest request failed");
        }
        if !extended && offer.served.load(Ordering::SeqCst) {
            deadline = Instant::now() + linger;
            extended = true;
        }
    }
    tracing::debug!(
        served = offer.served.load(Ordering::SeqCst),
        "manifest server closed"
    );
}

async fn answer(mut stream: TcpStream, offer: &Offer) -> io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = target.split('?').next().unwrap_or_default();
    let first = method == "GET" && path == offer.path && !offer.served.swap(true, Ordering::SeqCst);
    let response = if first {
        tracing::info!("served the update manifest to the updater");
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            offer.json.len()
        )
        .into_bytes();
        r.extend_from_slice(&offer.json);
        r
    } else {
        let body = br#"{"error":"not_found","message":"no manifest here"}"#;
        let mut r = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// Read up to the end of the request head (`\r\n\r\n`), at most [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> (u16, String) {
        let rest = url.strip_prefix("http://").unwrap();
        let (addr, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    }

    #[tokio::test]
    async fn first_get_is_served_then_404() {
        let served = LoopbackManifestServer::new()
            .serve_once(br#"{"version":"1.5.0"}"#.to_vec())
            .await
            .unwrap();
        assert!(
            served.url.starts_with("http://127.0.0.1:"),
            "{}",
            served.url
        );
        let other = served.url.replace("/manifest/", "/manifest/x");
        assert_eq!(get(&other).await.0, 404, "another path does not consume it");
        assert_eq!(
            get(&served.url).await,
            (200, r#"{"version":"1.5.0"}"#.into())
        );
        assert_eq!(get(&served.url).await.0, 404);
        assert_eq!(get(&served.url).await.0, 404);
    }

    #[tokio::test]
    async fn the_listener_closes_after_the_linger_time() {
        let served = LoopbackManifestServer::new()
            .with_timeouts(Duration::from_secs(5), Duration::from_millis(50))
            .serve_once(b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(get(&served.url).await.0, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let addr = served
            .url
            .strip_prefix("http://")
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        assert!(TcpStream::connect(addr).await.is_err(), "closed");
    }
}
