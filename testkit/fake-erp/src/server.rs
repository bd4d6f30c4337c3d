//! The HTTP server: our own accept loop (so that a connection can be closed
//! without an answer), the request wrapper that records, injects faults and
//! authenticates devices, and pause / resume on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use tracing::debug;

use crate::api;
use crate::body::{AfterLimit, LimitedBody};
use crate::error::FakeErpError;
use crate::faults::{FaultKind, Route};
use crate::state::ErpState;
use crate::util::{error, lock};

/// Largest request body accepted (a batch of 500 large operations fits easily).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The per-connection kill switch and peer, given to handlers as a request extension.
#[derive(Debug, Clone)]
pub(crate) struct ConnCtx {
    kill: Arc<Notify>,
    pub(crate) peer: SocketAddr,
}

impl ConnCtx {
    /// Closes this request's TCP connection (the answer in progress is never sent).
    pub(crate) fn kill(&self) {
        self.kill.notify_one();
    }
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Whether the server listens, and how to stop it.
#[derive(Debug, Default)]
pub(crate) struct ServerCtl {
    running: Option<Running>,
    shut_down: bool,
}

impl ServerCtl {
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub(crate) fn stop_now(&mut self) {
        self.shut_down = true;
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
        }
    }
}

/// A listener on `addr` with `SO_REUSEADDR`, so that a paused server gets its port back.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, FakeErpError> {
    let err = |source| FakeErpError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

impl ErpState {
    /// Starts serving on `listener`.
    pub(crate) fn launch(self: &Arc<Self>, listener: TcpListener) {
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(Arc::clone(self), listener, stop_rx));
        lock(&self.server).running = Some(Running { stop, task });
    }

    /// Stops listening and closes every open connection; state is kept.
    pub(crate) async fn pause(&self) {
        let _transition = self.transition.lock().await;
        let running = lock(&self.server).running.take();
        if let Some(r) = running {
            let _ = r.stop.send(());
            let _ = r.task.await;
            debug!(addr = %self.addr, "fake ERP paused");
        }
    }

    /// Listens again on the same address.
    pub(crate) async fn resume(self: &Arc<Self>) -> Result<(), FakeErpError> {
        let _transition = self.transition.lock().await;
        {
            let ctl = lock(&self.server);
            if ctl.shut_down {
                return Err(FakeErpError::ShutDown);
            }
            if ctl.running.is_some() {
                return Ok(());
            }
        }
        let mut attempt = 0;
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if attempt >= 50 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.launch(listener);
        debug!(addr = %self.addr, "fake ERP resumed");
        Ok(())
    }

    pub(crate) async fn shutdown(&self) {
        lock(&self.server).shut_down = true;
        self.pause().await;
    }
}

async fn accept_loop(state: Arc<ErpState>, listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    let router = api::router(Arc::clone(&state));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(Arc::clone(&state), router.clone(), stream, peer));
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve_connection(
    state: Arc<ErpState>,
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let kill = Arc::new(Notify::new());
    let ctx = ConnCtx {
        kill: Arc::clone(&kill),
        peer,
    };
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (state, router, ctx) = (Arc::clone(&state), router.clone(), ctx.clone());
        async move { Ok::<_, Infallible>(handle(state, router, ctx, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        biased;
        _ = kill.notified() => debug!(%peer, "connection closed by an injected fault"),
        result = connection => {
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

fn is_admin(path: &str) -> bool {
    path == "/__admin" || path.starts_with("/__admin/")
}

async fn call(router: Router, req: Request<Body>) -> Response {
    match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

pub(crate) fn invalid_client() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "X-Client-Id / X-Client-Secret are missing, unknown or revoked: re-onboarding needed",
    )
}

fn status_code_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "invalid_client",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        422 => "invalid_request",
        429 => "too_many_requests",
        500 => "internal_error",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ => "injected_fault",
    }
}

fn status_fault(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::UNAUTHORIZED {
        return invalid_client();
    }
    error(
        status,
        status_code_name(status),
        format!("injected fault: HTTP {}", status.as_u16()),
    )
}

/// Authenticates (except onboarding) and runs the router.
async fn dispatch(
    state: &ErpState,
    router: Router,
    ctx: &ConnCtx,
    route: Option<Route>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let mut req = Request::from_parts(parts, Body::from(body));
    if route != Some(Route::Onboard) {
        let auth = lock(&state.terminals).authenticate(req.headers());
        match auth {
            Some(a) => {
                req.extensions_mut().insert(a);
            }
            None => return invalid_client(),
        }
    }
    req.extensions_mut().insert(ctx.clone());
    call(router, req).await
}

/// Every request goes through here: admin requests straight to the router,
/// contract requests recorded, then faulted or authenticated and answered.
/// Logs method, path and status only: never a header value, a query or a body.
async fn handle(
    state: Arc<ErpState>,
    router: Router,
    ctx: ConnCtx,
    req: Request<Incoming>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if is_admin(&path) {
        let response = if ctx.peer.ip().is_loopback() {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ctx);
            call(router, req).await
        } else {
            error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the admin API answers loopback clients only",
            )
        };
        debug!(%method, %path, status = response.status().as_u16(), "fake ERP admin request");
        return response;
    }

    let route = Route::classify(&path);
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let seq = lock(&state.recorder).record(&parts, &[], route);
            let response = error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body could not be read or exceeds {MAX_BODY_BYTES} bytes"),
            );
            lock(&state.recorder).set_status(seq, response.status().as_u16());
            debug!(%method, %path, status = response.status().as_u16(), "fake ERP request");
            return response;
        }
    };
    let seq = lock(&state.recorder).record(&parts, &body, route);
    let fault = lock(&state.faults).take(route);
    if let Some(f) = &fault {
        lock(&state.recorder).set_fault(seq, f.label());
    }

    let response = match fault {
        None => dispatch(&state, router, &ctx, route, parts, body).await,
        Some(FaultKind::Status(code)) => status_fault(code),
        Some(FaultKind::Unauthorized) => invalid_client(),
        Some(FaultKind::RetryAfter { status, seconds }) => {
            let mut r = status_fault(status);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            r
        }
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            dispatch(&state, router, &ctx, route, parts, body).await
        }
        Some(FaultKind::Drop) => {
            debug!(%method, %path, "fake ERP request dropped by an injected fault");
            ctx.kill();
            return std::future::pending().await;
        }
        Some(FaultKind::ApplyThenDrop) => {
            let applied = dispatch(&state, router, &ctx, route, parts, body).await;
            debug!(%method, %path, status = applied.status().as_u16(), "fake ERP request applied, then dropped by an injected fault");
            ctx.kill();
            return std::future::pending().await;
        }
        Some(FaultKind::CutBody { after_bytes }) => {
            dispatch(&state, router, &ctx, route, parts, body)
                .await
                .map(|b| Body::new(LimitedBody::new(b, after_bytes, AfterLimit::Cut)))
        }
        Some(FaultKind::StallBody { after_bytes }) => {
            dispatch(&state, router, &ctx, route, parts, body)
                .await
                .map(|b| Body::new(LimitedBody::new(b, after_bytes, AfterLimit::Stall)))
        }
    };
    let status = response.status().as_u16();
    lock(&state.recorder).set_status(seq, status);
    debug!(%method, %path, status, "fake ERP request");
    response
}
