//! The connection supervisor shared by the subscriber and the publisher: one
//! background task per handle that connects, sets up its channel (the role's
//! `open`), serves until the connection or channel is lost, and reconnects
//! with backoff. Each successful (re)connection is a new *generation*.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use spacepos_sync::BusError;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep, timeout, timeout_at};
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::{AmqpConfig, AmqpConfigError};
use crate::error::{classify, detail, is_refused};

/// Where a subscriber's or publisher's connection stands, for status screens.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkStatus {
    /// Not connected yet, or reconnecting after a loss; `last_error` says why
    /// the connection was lost or the last attempt failed.
    Connecting { last_error: Option<BusError> },
    /// Connected; `generation` counts connections since the start (it is the
    /// `connection` of the [`DeliveryTag`](spacepos_sync::DeliveryTag)s handed out now).
    Connected { generation: u64 },
    /// The broker refused the terminal (credentials, permissions, virtual host,
    /// topology). The adapter still retries, at the longest backoff.
    Refused(BusError),
    /// [`close`](crate::AmqpSubscriber::close)d or dropped.
    Closed,
}

pub(crate) enum LinkState<S> {
    Connecting { last_error: Option<BusError> },
    Up { generation: u64, session: Arc<S> },
    Refused(BusError),
    Closed,
}

impl<S> Clone for LinkState<S> {
    fn clone(&self) -> Self {
        match self {
            LinkState::Connecting { last_error } => LinkState::Connecting {
                last_error: last_error.clone(),
            },
            LinkState::Up {
                generation,
                session,
            } => LinkState::Up {
                generation: *generation,
                session: Arc::clone(session),
            },
            LinkState::Refused(e) => LinkState::Refused(e.clone()),
            LinkState::Closed => LinkState::Closed,
        }
    }
}

/// What a subscriber or a publisher does on a fresh connection.
pub(crate) trait Role: Send + Sync + 'static {
    /// What the handle uses while connected (the channel, the ack bookkeeping).
    type Session: Send + Sync + 'static;
    /// What only the supervisor needs while serving (the consumer stream).
    type Driver: Send + 'static;
    /// `subscriber` or `publisher`: logs and the connection name.
    const NAME: &'static str;

    /// Open the channel and declare what this role needs.
    fn open<'a>(
        &'a self,
        connection: &'a Connection,
        config: &'a AmqpConfig,
        generation: u64,
    ) -> impl Future<Output = lapin::Result<(Self::Session, Self::Driver)>> + Send + 'a;

    /// The session's channel, watched for closure.
    fn channel(session: &Self::Session) -> &Channel;

    /// Serve until the session is unusable; returns why.
    fn serve<'a>(
        &'a self,
        session: &'a Arc<Self::Session>,
        driver: Self::Driver,
    ) -> impl Future<Output = String> + Send + 'a;
}

pub(crate) struct Link<S> {
    pub(crate) config: AmqpConfig,
    /// `host:port`, for errors and logs.
    pub(crate) host: String,
    state: watch::Sender<LinkState<S>>,
    kick: Notify,
}

impl<S> std::fmt::Debug for Link<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.state.borrow() {
            LinkState::Connecting { .. } => "connecting".to_owned(),
            LinkState::Up { generation, .. } => format!("connected (generation {generation})"),
            LinkState::Refused(_) => "refused".to_owned(),
            LinkState::Closed => "closed".to_owned(),
        };
        f.debug_struct("Link")
            .field("url", &self.config.url)
            .field("exchange", &self.config.exchange)
            .field("client_id", &self.config.client_id)
            .field("state", &state)
            .finish()
    }
}

impl<S: Send + Sync + 'static> Link<S> {
    pub(crate) fn state(&self) -> LinkState<S> {
        self.state.borrow().clone()
    }

    /// The live session and its generation, if connected.
    pub(crate) fn live(&self) -> Option<(u64, Arc<S>)> {
        match &*self.state.borrow() {
            LinkState::Up {
                generation,
                session,
            } => Some((*generation, Arc::clone(session))),
            _ => None,
        }
    }

    pub(crate) fn live_generation(&self) -> Option<u64> {
        match &*self.state.borrow() {
            LinkState::Up { generation, .. } => Some(*generation),
            _ => None,
        }
    }

    pub(crate) fn status(&self) -> LinkStatus {
        match &*self.state.borrow() {
            LinkState::Connecting { last_error } => LinkStatus::Connecting {
                last_error: last_error.clone(),
            },
            LinkState::Up { generation, .. } => LinkStatus::Connected {
                generation: *generation,
            },
            LinkState::Refused(e) => LinkStatus::Refused(e.clone()),
            LinkState::Closed => LinkStatus::Closed,
        }
    }

    /// Why the link is not usable now (for a caller that found it down).
    pub(crate) fn unavailable(&self, fallback: &str) -> BusError {
        match &*self.state.borrow() {
            LinkState::Connecting {
                last_error: Some(e),
            }
            | LinkState::Refused(e) => e.clone(),
            LinkState::Closed => BusError::Unavailable {
                host: self.host.clone(),
                detail: "this event bus handle was closed".into(),
            },
            _ => BusError::Unavailable {
                host: self.host.clone(),
                detail: fallback.to_owned(),
            },
        }
    }

    /// Ask the supervisor to check the connection now (a caller saw a failure).
    pub(crate) fn kick(&self) {
        self.kick.notify_one();
    }

    /// Wait for a session of a generation above `newer_than` until `deadline`.
    /// A refused or closed link fails at once.
    pub(crate) async fn wait_up(
        &self,
        newer_than: u64,
        deadline: Instant,
    ) -> Result<(u64, Arc<S>), BusError> {
        let mut rx = self.state.subscribe();
        loop {
            match &*rx.borrow_and_update() {
                LinkState::Up {
                    generation,
                    session,
                } if *generation > newer_than => {
                    return Ok((*generation, Arc::clone(session)));
                }
                LinkState::Refused(e) => return Err(e.clone()),
                LinkState::Closed => return Err(self.unavailable("")),
                _ => {}
            }
            match timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(self.unavailable("the connection supervisor stopped")),
                Err(_) => return Err(self.unavailable("not connected yet; still trying")),
            }
        }
    }

    pub(crate) async fn wait_closed(&self) {
        let mut rx = self.state.subscribe();
        // An error means the supervisor is gone, which is closed too.
        let _ = rx.wait_for(|s| matches!(s, LinkState::Closed)).await;
    }
}

/// Stops the supervisor when the handle is dropped (or closed).
#[derive(Debug)]
pub(crate) struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    pub(crate) fn signal(&self) {
        self.0.send_replace(true);
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.signal();
    }
}

/// A started supervisor: its link and what stops it.
pub(crate) type Started<S> = (Arc<Link<S>>, Shutdown);

/// Validate `config` and spawn the supervisor of `role` on the current Tokio runtime.
pub(crate) fn start<R: Role>(
    role: R,
    config: AmqpConfig,
) -> Result<Started<R::Session>, AmqpConfigError> {
    config.validate()?;
    let uri = config.amqp_uri()?;
    let link = Arc::new(Link {
        host: config.endpoint(),
        config,
        state: watch::Sender::new(LinkState::Connecting { last_error: None }),
        kick: Notify::new(),
    });
    let (tx, rx) = watch::channel(false);
    tokio::spawn(supervise(role, Arc::clone(&link), uri, rx));
    Ok((link, Shutdown(tx)))
}

type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// The next item of a stream (lapin's consumer and event streams are
/// `futures_core::Stream`s).
pub(crate) async fn next<T: Stream + Unpin + ?Sized>(stream: &mut T) -> Option<T::Item> {
    std::future::poll_fn(|cx: &mut Context<'_>| -> Poll<Option<T::Item>> {
        Pin::new(&mut *stream).poll_next(cx)
    })
    .await
}

async fn shutdown_signalled(rx: &mut watch::Receiver<bool>) {
    // The sender lives in the handle: gone means shut down too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// An outage: from the first failure to the next successful connection.
struct Outage {
    since: Instant,
    attempts: u32,
    /// Whether the last line logged was about a refusal (a change logs again).
    logged_refused: Option<bool>,
}

async fn supervise<R: Role>(
    role: R,
    link: Arc<Link<R::Session>>,
    uri: AMQPUri,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &link.config;
    let url = config.url.redacted();
    let host = link.host.as_str();
    let role_name = R::NAME;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    let mut generation = 0u64;
    let mut outage: Option<Outage> = None;
    let mut ever_connected = false;

    loop {
        let attempt = tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            attempt = open_session(&role, &link, uri.clone(), generation + 1) => attempt,
        };
        let delay = match attempt {
            Ok((connection, session, driver, events)) => {
                generation += 1;
                match outage.take() {
                    Some(o) if ever_connected => info!(
                        host, %url, role = role_name, generation,
                        down_for = ?o.since.elapsed(), failed_attempts = o.attempts,
                        "reconnected to the event bus"
                    ),
                    Some(o) => info!(
                        host, %url, role = role_name,
                        after = ?o.since.elapsed(), failed_attempts = o.attempts,
                        "connected to the event bus"
                    ),
                    None => info!(host, %url, role = role_name, "connected to the event bus"),
                }
                ever_connected = true;
                let session = Arc::new(session);
                link.state.send_replace(LinkState::Up {
                    generation,
                    session: Arc::clone(&session),
                });
                let started = Instant::now();
                let ended = tokio::select! {
                    biased;
                    () = shutdown_signalled(&mut shutdown) => None,
                    reason = role.serve(&session, driver) => Some(reason),
                    reason = watch_connection(&connection, R::channel(&session), events, &link.kick, host, role_name) => Some(reason),
                };
                let reason = match ended {
                    Some(reason) if !*shutdown.borrow() => reason,
                    _ => {
                        close(&connection, "shutting down").await;
                        break;
                    }
                };
                link.state.send_replace(LinkState::Connecting {
                    last_error: Some(BusError::Unavailable {
                        host: host.to_owned(),
                        detail: format!("connection lost: {reason}"),
                    }),
                });
                close(&connection, "reconnecting").await;
                drop(session);
                warn!(
                    host, %url, role = role_name, generation, %reason,
                    "lost the connection to the event bus; reconnecting with backoff (one line per outage)"
                );
                outage = Some(Outage {
                    since: Instant::now(),
                    attempts: 0,
                    logged_refused: Some(false),
                });
                // A connection that lived long ends an episode; a flapping one keeps backing off.
                if started.elapsed() >= config.reconnect_max {
                    backoff.reset();
                }
                backoff.next_delay()
            }
            Err(error) => {
                let refused = is_refused(&error);
                let o = outage.get_or_insert(Outage {
                    since: Instant::now(),
                    attempts: 0,
                    logged_refused: None,
                });
                o.attempts += 1;
                if o.logged_refused != Some(refused) {
                    o.logged_refused = Some(refused);
                    if refused {
                        warn!(
                            host, %url, role = role_name, detail = detail(&error),
                            retry_every = ?config.reconnect_max,
                            "the event bus refused this terminal; retrying slowly (one line until this changes)"
                        );
                    } else {
                        warn!(
                            host, %url, role = role_name, detail = detail(&error),
                            "cannot reach the event bus; retrying with backoff (one line per outage)"
                        );
                    }
                }
                let delay = if refused {
                    backoff.max_delay()
                } else {
                    backoff.next_delay()
                };
                link.state.send_replace(if refused {
                    LinkState::Refused(error)
                } else {
                    LinkState::Connecting {
                        last_error: Some(error),
                    }
                });
                delay
            }
        };
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            () = sleep(delay) => {}
        }
    }
    link.state.send_replace(LinkState::Closed);
}

type Opened<R> = (
    Connection,
    <R as Role>::Session,
    <R as Role>::Driver,
    Events,
);

async fn open_session<R: Role>(
    role: &R,
    link: &Link<R::Session>,
    uri: AMQPUri,
    generation: u64,
) -> Result<Opened<R>, BusError> {
    let config = &link.config;
    let host = link.host.as_str();
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("{}/{}", config.connection_name, R::NAME).into());
    let connection = match timeout(
        config.connect_timeout,
        Connection::connect_uri(uri, properties),
    )
    .await
    {
        Err(_) => {
            return Err(BusError::Unavailable {
                host: host.to_owned(),
                detail: format!("connecting: no answer within {:?}", config.connect_timeout),
            });
        }
        Ok(Err(e)) => return Err(classify(&e, host, "connecting")),
        Ok(Ok(connection)) => connection,
    };
    // Listen before anything can fail: lapin only queues events for existing listeners.
    let events: Events = Box::pin(connection.events_listener());
    let doing = match R::NAME {
        "subscriber" => "declaring the terminal's exchange, queues and bindings",
        _ => "declaring the exchange",
    };
    match timeout(
        config.connect_timeout,
        role.open(&connection, config, generation),
    )
    .await
    {
        Ok(Ok((session, driver))) => Ok((connection, session, driver, events)),
        Ok(Err(e)) => {
            close(&connection, "setup failed").await;
            Err(classify(&e, host, doing))
        }
        Err(_) => {
            close(&connection, "setup timed out").await;
            Err(BusError::Unavailable {
                host: host.to_owned(),
                detail: format!("{doing}: no answer within {:?}", config.connect_timeout),
            })
        }
    }
}

/// Completes when the connection or the session's channel is no longer usable.
async fn watch_connection(
    connection: &Connection,
    channel: &Channel,
    mut events: Events,
    kick: &Notify,
    host: &str,
    role: &str,
) -> String {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut events_open = true;
    loop {
        tokio::select! {
            event = next(&mut events), if events_open => match event {
                Some(Event::Error(e)) => return e.to_string(),
                Some(Event::ConnectionBlocked(reason)) => warn!(
                    host, role, %reason,
                    "the broker blocked this connection (resource alarm): publishing waits until it unblocks"
                ),
                Some(Event::ConnectionUnblocked) => info!(host, role, "the broker unblocked this connection"),
                Some(_) => {}
                None => events_open = false,
            },
            _ = tick.tick() => {}
            () = kick.notified() => {}
        }
        if !connection.status().connected() {
            return "the connection closed".into();
        }
        if !channel.status().connected() {
            return "the channel closed".into();
        }
    }
}

/// Close a connection, without waiting long for a broker that may be gone.
async fn close(connection: &Connection, why: &str) {
    if connection.status().connected() {
        let _ = timeout(Duration::from_secs(2), connection.close(200, why.into())).await;
    }
}
