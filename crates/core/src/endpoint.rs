//! The TLS rule of contract section 1: `https` / `amqps` for every endpoint,
//! plain `http` / `amqp` only for loopback addresses (127.0.0.0/8 and ::1).

use std::net::IpAddr;

use url::{Host, Url};

/// What kind of endpoint a URL is for; decides the allowed schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// The ERP REST API: `https`, or `http` on loopback.
    Http,
    /// The RabbitMQ broker: `amqps`, or `amqp` on loopback.
    Amqp,
}

/// Why an endpoint URL is not allowed. The message says what to use instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("scheme `{scheme}` is not allowed here: use {allowed}")]
    Scheme {
        scheme: String,
        allowed: &'static str,
    },
    #[error(
        "plain `{scheme}` is only allowed to a loopback address (127.0.0.0/8 or ::1), not to {host}: \
         use `{secure}://{host}`"
    )]
    PlainToRemote {
        scheme: String,
        secure: &'static str,
        host: String,
    },
    #[error("the URL has no host")]
    NoHost,
}

/// Whether `host` is a loopback address literal. Names (even `localhost`) are not,
/// because a name may resolve anywhere. For schemes the URL standard does not
/// know (`amqp`), an IPv4 literal arrives as an opaque "domain" and is parsed here.
pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        Host::Domain(name) => name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

/// Check `url` against the TLS rule for `kind`.
pub fn check_transport(url: &Url, kind: EndpointKind) -> Result<(), EndpointError> {
    let (plain, secure, allowed) = match kind {
        EndpointKind::Http => ("http", "https", "`https` (or `http` to 127.0.0.1)"),
        EndpointKind::Amqp => ("amqp", "amqps", "`amqps` (or `amqp` to 127.0.0.1)"),
    };
    let scheme = url.scheme();
    let host = url.host().ok_or(EndpointError::NoHost)?;
    if scheme == secure {
        return Ok(());
    }
    if scheme != plain {
        return Err(EndpointError::Scheme {
            scheme: scheme.to_owned(),
            allowed,
        });
    }
    if is_loopback(&host) {
        Ok(())
    } else {
        Err(EndpointError::PlainToRemote {
            scheme: scheme.to_owned(),
            secure,
            host: host.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(u: &str, k: EndpointKind) -> Result<(), EndpointError> {
        check_transport(&Url::parse(u).unwrap(), k)
    }

    #[test]
    fn tls_rule() {
        use EndpointKind::*;
        assert!(check("https://erp.example.com", Http).is_ok());
        assert!(check("http://127.0.0.1:8080", Http).is_ok());
        assert!(check("http://127.3.2.1:8080", Http).is_ok());
        assert!(check("http://[::1]:8080", Http).is_ok());
        assert!(matches!(
            check("http://erp.example.com", Http),
            Err(EndpointError::PlainToRemote { .. })
        ));
        assert!(matches!(
            check("http://localhost:8080", Http),
            Err(EndpointError::PlainToRemote { .. })
        ));
        assert!(matches!(
            check("http://10.0.0.5", Http),
            Err(EndpointError::PlainToRemote { .. })
        ));
        assert!(matches!(
            check("ftp://erp", Http),
            Err(EndpointError::Scheme { .. })
        ));
        assert!(check("amqps://u:p@mq.example.com:5671/pos", Amqp).is_ok());
        assert!(check("amqp://guest:guest@127.0.0.1:5672/%2f", Amqp).is_ok());
        assert!(check("amqp://mq.example.com", Amqp).is_err());
        assert!(check("amqp://10.1.2.3:5672", Amqp).is_err());
        assert!(check("amqp://[::1]:5672", Amqp).is_ok());
        assert!(check("https://erp", Amqp).is_err());
    }

    #[test]
    fn message_says_what_to_do() {
        let e = check("http://erp.example.com/api", EndpointKind::Http).unwrap_err();
        assert!(
            e.to_string().contains("use `https://erp.example.com`"),
            "{e}"
        );
    }
}
