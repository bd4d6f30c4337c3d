//! `spacepos login` and `spacepos logout`.

use std::io::{BufRead, IsTerminal};

use spacepos_core::Secret;

use crate::cli::LoginArgs;
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

pub(crate) async fn run(node: &Node, args: LoginArgs) -> Result<(), NodeError> {
    let pin = read_pin(&args.staff)?;
    let session = spacepos_node::staff::login(node, &args.staff, &pin).await?;
    println!(
        "Logged in: {} (session valid until {})",
        session.store_staff_id,
        session.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}

pub(crate) async fn logout(node: &Node) -> Result<(), NodeError> {
    spacepos_node::staff::logout(node).await?;
    println!("Logged out.");
    Ok(())
}

/// The PIN from stdin: prompted without echo on a terminal, one line otherwise.
fn read_pin(staff: &str) -> Result<Secret, NodeError> {
    let pin = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("PIN for staff {staff}: "))
            .map_err(|e| NodeError::new(Kind::Usage, format!("cannot read the PIN: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            NodeError::new(Kind::Usage, format!("cannot read the PIN from stdin: {e}"))
        })?;
        line
    };
    let pin = pin.trim_end_matches(['\r', '\n']).to_owned();
    if pin.is_empty() {
        return Err(NodeError::new(
            Kind::Usage,
            "no PIN given: type it at the prompt, or pipe it on stdin",
        ));
    }
    Ok(Secret::new(pin))
}
