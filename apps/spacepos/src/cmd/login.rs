//! `spacepos login` and `spacepos logout`.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Sessions, StaffSession};
use spacepos_core::{Secret, SystemClock};

use crate::cli::LoginArgs;
use crate::exit::{CliError, Kind};
use crate::node::Node;

pub(crate) async fn run(node: &Node, args: LoginArgs) -> Result<(), CliError> {
    let pin = read_pin(&args.staff)?;
    let session = login(node, &args.staff, &pin).await?;
    println!(
        "Logged in: {} (session valid until {})",
        session.store_staff_id,
        session.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}

pub(crate) async fn logout(node: &Node) -> Result<(), CliError> {
    sessions(node).await?.logout().await?;
    println!("Logged out.");
    Ok(())
}

/// Log `staff` in with `pin`; shared by `login` and `demo`.
pub(crate) async fn login(
    node: &Node,
    staff: &str,
    pin: &Secret,
) -> Result<StaffSession, CliError> {
    Ok(sessions(node).await?.login(staff, pin).await?)
}

pub(crate) async fn sessions(node: &Node) -> Result<Sessions, CliError> {
    let record = node.record().await?.ok_or_else(|| {
        CliError::new(
            Kind::NotOnboarded,
            "this terminal is not onboarded yet: run `spacepos onboard --code <CODE> --api <URL>`",
        )
    })?;
    let config = node.config(Some(&record))?;
    let client = node.device_client(&config, &record, None)?;
    Ok(Sessions::new(
        Arc::new(client),
        node.credentials.clone(),
        Arc::new(SystemClock),
        TokenExpectations::for_store(record.store_number),
    ))
}

/// The PIN from stdin: prompted without echo on a terminal, one line otherwise.
fn read_pin(staff: &str) -> Result<Secret, CliError> {
    let pin = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("PIN for staff {staff}: "))
            .map_err(|e| CliError::new(Kind::Usage, format!("cannot read the PIN: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            CliError::new(Kind::Usage, format!("cannot read the PIN from stdin: {e}"))
        })?;
        line
    };
    let pin = pin.trim_end_matches(['\r', '\n']).to_owned();
    if pin.is_empty() {
        return Err(CliError::new(
            Kind::Usage,
            "no PIN given: type it at the prompt, or pipe it on stdin",
        ));
    }
    Ok(Secret::new(pin))
}
