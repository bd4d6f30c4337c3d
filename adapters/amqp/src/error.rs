//! lapin's errors, classified into the port's [`BusError`].

use lapin::ErrorKind;
use spacepos_sync::BusError;

/// What a failed connection attempt or topology declaration means for the
/// terminal: try again later, or stop until someone fixes something.
pub(crate) fn classify(error: &lapin::Error, host: &str, doing: &str) -> BusError {
    let host = host.to_owned();
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let code = amqp.get_id();
            let text = amqp.get_message().as_str();
            let hint = match code {
                403 => Some(
                    "check the user name and password in the broker URL and the account's permissions on the \
                     exchange and the terminal's queues",
                ),
                530 => Some(
                    "check that the virtual host in the broker URL exists and that this user may use it",
                ),
                406 => Some(
                    "the broker holds an exchange or queue of this name with other settings than contract section 7 \
                     asks for; an operator must fix or delete it",
                ),
                _ => None,
            };
            match hint {
                Some(hint) => BusError::Refused {
                    host,
                    detail: format!("{doing}: {text} ({code}); {hint}"),
                },
                None => BusError::Unavailable {
                    host,
                    detail: format!("{doing}: {text} ({code})"),
                },
            }
        }
        ErrorKind::AuthProviderError(_) | ErrorKind::InvalidProtocolVersion(_) => {
            BusError::Refused {
                host,
                detail: format!("{doing}: {error}"),
            }
        }
        _ => BusError::Unavailable {
            host,
            detail: format!("{doing}: {error}"),
        },
    }
}

pub(crate) fn is_refused(error: &BusError) -> bool {
    matches!(error, BusError::Refused { .. })
}

pub(crate) fn detail(error: &BusError) -> &str {
    match error {
        BusError::Unavailable { detail, .. }
        | BusError::NotConfirmed { detail, .. }
        | BusError::Refused { detail, .. } => detail,
    }
}
