use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// A string that must never reach a log, an error message or a screen.
///
/// `Debug` and `Display` print `***`; the value is reachable only through
/// [`Secret::expose`], so every place that sends or stores it is easy to find.
/// It serializes to its real value because the credential file must hold it;
/// code that shows configuration builds a redacted view instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value is sent or stored.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// A URL that may carry a password (an AMQP URL does: `amqps://user:pw@host/vhost`).
///
/// `Display` and `Debug` replace the password with `***`; [`RedactedUrl::expose`]
/// gives the real URL to the one place that connects with it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(Url);

impl RedactedUrl {
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    pub fn parse(text: &str) -> Result<Self, url::ParseError> {
        Url::parse(text).map(Self)
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The URL as it may be shown: password replaced by `***`.
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Only fails for cannot-be-a-base URLs, which have no password anyway.
            let _ = shown.set_password(Some("***"));
        }
        shown.to_string()
    }

    pub fn host_str(&self) -> Option<&str> {
        self.0.host_str()
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({})", self.redacted())
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for RedactedUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for RedactedUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // Never echo the input: it may hold a password.
        Url::parse(&text)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("not a valid URL ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "s3cr3t-value");
    }

    #[test]
    fn secret_serializes_to_its_value_for_storage() {
        let s = Secret::new("abc");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"abc\"");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn url_password_is_redacted() {
        let u = RedactedUrl::parse("amqps://pos-12-3:pw@mq.example.com:5671/pos").unwrap();
        assert_eq!(
            u.to_string(),
            "amqps://pos-12-3:***@mq.example.com:5671/pos"
        );
        assert!(!format!("{u:?}").contains(":pw@"));
        assert_eq!(u.expose().password(), Some("pw"));
    }

    #[test]
    fn bad_url_error_does_not_echo_input() {
        let err = serde_json::from_str::<RedactedUrl>("\"amqp://u:hunter2@[bad\"").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
