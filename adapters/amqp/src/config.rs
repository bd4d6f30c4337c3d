//! What the adapter needs to know: the broker URL, the exchange, the terminal's
//! client id (which names its queues), prefetch, reconnect backoff and timeouts.

use std::time::Duration;

use lapin::uri::AMQPUri;
use spacepos_core::RedactedUrl;
use spacepos_core::endpoint::{EndpointError, EndpointKind, check_transport};
use spacepos_erp_wire::events::CONSUMED_EVENTS;
use url::Host;

/// The ERP's exchange when the configuration names none (contract section 7).
pub const DEFAULT_EXCHANGE: &str = "erp_event_bus";

/// How the adapter reaches the broker and which queues are this terminal's.
///
/// Build it with [`AmqpConfig::new`] (defaults for everything but the URL and
/// the client id), adjust the public fields, and hand it to
/// [`AmqpSubscriber::start`](crate::AmqpSubscriber::start) /
/// [`AmqpPublisher::start`](crate::AmqpPublisher::start), which
/// [`validate`](Self::validate) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// `amqps://user:password@host:5671/vhost` (plain `amqp` to a loopback
    /// address only). Logs and errors show it with the password as `***`.
    pub url: RedactedUrl,
    /// The ERP's direct exchange; default [`DEFAULT_EXCHANGE`].
    pub exchange: String,
    /// The terminal's client id: its queues are `spacepos.<client_id>` and
    /// `spacepos.<client_id>.dlq`.
    pub client_id: String,
    /// Most unacknowledged deliveries the broker sends this terminal at once
    /// (`basic.qos`); default 1000, two of the sync loop's batches of 500, so
    /// the next batch arrives while one is committed. (With 500 the broker
    /// stopped sending during every commit: consuming waited for the refill
    /// 23% of the time, and batches came short; see `BENCHMARKS.md`.)
    pub prefetch: u16,
    /// First delay before reconnecting after a failure (doubles up to
    /// [`reconnect_max`](Self::reconnect_max), with jitter); default 0.5 s.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts; default 30 s. A broker that
    /// refuses the terminal (credentials, permissions, topology) is retried at
    /// this interval.
    pub reconnect_max: Duration,
    /// Shown by the broker's management tools; `/subscriber` or `/publisher`
    /// is appended. Default `spacepos <client_id>`.
    pub connection_name: String,
    /// Bound on one [`publish`](spacepos_sync::EventPublisher::publish): waiting
    /// for a connection plus waiting for the broker's confirm; default 10 s.
    pub publish_timeout: Duration,
    /// Bound on one connection attempt (TCP, TLS, AMQP handshake); default 10 s.
    pub connect_timeout: Duration,
    /// AMQP heartbeat asked of the broker (the lower of both sides wins); a
    /// silent network loss is noticed after about two of them. Default 30 s.
    /// A `heartbeat=` in the URL's query takes precedence.
    pub heartbeat: Duration,
}

impl AmqpConfig {
    /// A configuration with the defaults documented on each field.
    pub fn new(url: RedactedUrl, client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        AmqpConfig {
            url,
            exchange: DEFAULT_EXCHANGE.to_owned(),
            connection_name: format!("spacepos {client_id}"),
            client_id,
            prefetch: 2000,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(30),
        }
    }

    /// The terminal's queues and bindings (contract section 7).
    pub fn topology(&self) -> Topology {
        Topology {
            exchange: self.exchange.clone(),
            queue: queue_name(&self.client_id),
            dead_letter_queue: dead_letter_queue_name(&self.client_id),
            bindings: CONSUMED_EVENTS.to_vec(),
        }
    }

    /// Check the TLS rule and the names; the error says what to change.
    pub fn validate(&self) -> Result<(), AmqpConfigError> {
        check_transport(self.url.expose(), EndpointKind::Amqp).map_err(|source| {
            AmqpConfigError::Transport {
                url: self.url.redacted(),
                source,
            }
        })?;
        let invalid =
            |field: &'static str, problem: String| Err(AmqpConfigError::Invalid { field, problem });
        if self.client_id.is_empty() {
            return invalid(
                "client_id",
                "is empty: the terminal is not onboarded".into(),
            );
        }
        // Queue names are at most 255 bytes; `spacepos.` + `.dlq` take 13.
        if self.client_id.len() > 200
            || self
                .client_id
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return invalid(
                "client_id",
                "must be at most 200 bytes without spaces or control characters (it names the terminal's queues)"
                    .into(),
            );
        }
        if self.exchange.is_empty()
            || self.exchange.len() > 255
            || self.exchange.starts_with("amq.")
        {
            return invalid(
                "exchange",
                format!(
                    "{:?} cannot be declared: use a name of 1 to 255 bytes not starting with `amq.` (default {DEFAULT_EXCHANGE:?})",
                    self.exchange
                ),
            );
        }
        if self.prefetch == 0 {
            return invalid(
                "prefetch",
                "must be at least 1 (0 would mean unlimited)".into(),
            );
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return invalid(
                "reconnect_min",
                format!(
                    "must be above zero and at most reconnect_max ({:?}), not {:?}",
                    self.reconnect_max, self.reconnect_min
                ),
            );
        }
        for (field, value) in [
            ("publish_timeout", self.publish_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return invalid(field, "must be above zero".into());
            }
        }
        if self.heartbeat.as_secs() > u64::from(u16::MAX) {
            return invalid("heartbeat", "must be at most 65535 s".into());
        }
        Ok(())
    }

    /// `host:port` of the broker, for errors and logs (never the password).
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.url)
    }

    /// The URI lapin connects with, heartbeat and connect timeout applied.
    pub(crate) fn amqp_uri(&self) -> Result<AMQPUri, AmqpConfigError> {
        amqp_uri(&self.url, Some(self.heartbeat), self.connect_timeout)
    }
}

/// The terminal's part of the broker's topology (contract section 7). Both
/// queues are durable classic queues (the broker's default type: no
/// `x-queue-type` argument, so a queue the ERP's operators declared the same
/// way is accepted as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Direct, durable.
    pub exchange: String,
    /// `spacepos.<clientId>`, durable, with `x-dead-letter-exchange` = `""`
    /// and `x-dead-letter-routing-key` = the dead-letter queue's name.
    pub queue: String,
    /// `spacepos.<clientId>.dlq`, durable, no arguments.
    pub dead_letter_queue: String,
    /// The routing keys that bind [`queue`](Self::queue) to the exchange: the
    /// names of the events a terminal consumes.
    pub bindings: Vec<&'static str>,
}

/// `spacepos.<client_id>`: the terminal's queue.
pub fn queue_name(client_id: &str) -> String {
    format!("spacepos.{client_id}")
}

/// `spacepos.<client_id>.dlq`: where the terminal's poison messages go.
pub fn dead_letter_queue_name(client_id: &str) -> String {
    format!("spacepos.{client_id}.dlq")
}

/// Why a configuration cannot be used. Never shows a password.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AmqpConfigError {
    #[error("the broker URL {url} is not allowed: {source}")]
    Transport {
        url: String,
        #[source]
        source: EndpointError,
    },
    #[error("the broker URL {url} is not a usable AMQP URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("AMQP setting `{field}` {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

pub(crate) fn endpoint_of(url: &RedactedUrl) -> String {
    let url = url.expose();
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "amqps" { 5671 } else { 5672 });
    match url.host() {
        Some(Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
        Some(host) => format!("{host}:{port}"),
        None => format!("(no host):{port}"),
    }
}

pub(crate) fn amqp_uri(
    url: &RedactedUrl,
    heartbeat: Option<Duration>,
    connect_timeout: Duration,
) -> Result<AMQPUri, AmqpConfigError> {
    let exposed = url.expose();
    let mut uri: AMQPUri =
        exposed
            .as_str()
            .parse()
            .map_err(|reason: String| AmqpConfigError::InvalidUrl {
                url: url.redacted(),
                // amq-protocol-uri echoes the whole input in one message: never show it.
                reason: if reason.contains(exposed.as_str()) {
                    "it cannot be a broker address".to_owned()
                } else {
                    reason
                },
            })?;
    // amq-protocol-uri only reads domain names (an IPv6 literal would become "localhost").
    if let Some(Host::Ipv6(ip)) = exposed.host() {
        uri.authority.host = ip.to_string();
    }
    if uri.query.heartbeat.is_none()
        && let Some(h) = heartbeat
    {
        uri.query.heartbeat = Some(u16::try_from(h.as_secs()).unwrap_or(u16::MAX));
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout =
            Some(u64::try_from(connect_timeout.as_millis()).unwrap_or(u64::MAX));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> AmqpConfig {
        AmqpConfig::new(RedactedUrl::parse(url).expect("url"), "pos-12-3")
    }

    #[test]
    fn names_follow_the_contract() {
        let t = config("amqp://guest:guest@127.0.0.1:5672/%2f").topology();
        assert_eq!(t.exchange, "erp_event_bus");
        assert_eq!(t.queue, "spacepos.pos-12-3");
        assert_eq!(t.dead_letter_queue, "spacepos.pos-12-3.dlq");
        assert_eq!(t.bindings, CONSUMED_EVENTS.to_vec());
    }

    #[test]
    fn plain_amqp_to_a_remote_host_is_refused_without_the_password() {
        let err = config("amqp://pos:hunter2@mq.example.com:5672/pos")
            .validate()
            .expect_err("plain amqp to a remote host");
        let text = err.to_string();
        assert!(text.contains("mq.example.com"), "{text}");
        assert!(text.contains("amqps"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            config("amqps://pos:pw@mq.example.com:5671/pos")
                .validate()
                .is_ok()
        );
        assert!(
            config("amqp://guest:guest@127.0.0.1:5672/%2f")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let mut c = config("amqp://guest:guest@127.0.0.1:5672/%2f");
        c.prefetch = 0;
        assert!(
            c.validate()
                .expect_err("prefetch 0")
                .to_string()
                .contains("prefetch")
        );
        let mut c = config("amqp://guest:guest@127.0.0.1:5672/%2f");
        c.client_id = String::new();
        assert!(
            c.validate()
                .expect_err("empty id")
                .to_string()
                .contains("client_id")
        );
        let mut c = config("amqp://guest:guest@127.0.0.1:5672/%2f");
        c.reconnect_min = Duration::from_secs(60);
        assert!(
            c.validate()
                .expect_err("min > max")
                .to_string()
                .contains("reconnect_min")
        );
        let mut c = config("amqp://guest:guest@127.0.0.1:5672/%2f");
        c.exchange = "amq.direct".into();
        assert!(
            c.validate()
                .expect_err("amq.")
                .to_string()
                .contains("exchange")
        );
    }

    #[test]
    fn uri_keeps_credentials_vhost_and_ipv6_hosts() {
        let c = config("amqp://u%40x:p%2Fw@[::1]:5673/pos%2Ftill");
        let uri = c.amqp_uri().expect("uri");
        assert_eq!(uri.authority.host, "::1");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.authority.userinfo.username, "u@x");
        assert_eq!(uri.authority.userinfo.password, "p/w");
        assert_eq!(uri.vhost, "pos/till");
        assert_eq!(uri.query.heartbeat, Some(30));
        assert_eq!(c.endpoint(), "[::1]:5673");
        let c = config("amqps://u:p@mq.example.com/pos?heartbeat=5");
        assert_eq!(c.amqp_uri().expect("uri").query.heartbeat, Some(5));
        assert_eq!(c.endpoint(), "mq.example.com:5671");
        assert_eq!(
            config("amqp://guest:guest@127.0.0.1/%2f")
                .amqp_uri()
                .expect("uri")
                .vhost,
            "/"
        );
    }
}
