//! One module per command. Commands are thin: they build what the domain
//! services need from the [`crate::node::Node`], call them, and print.

pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod erp_sim;
pub(crate) mod login;
pub(crate) mod onboard;
pub(crate) mod ops;
pub(crate) mod run;
pub(crate) mod seed;
pub(crate) mod status;
pub(crate) mod updates;

/// Print `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), crate::exit::CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        crate::exit::CliError::new(
            crate::exit::Kind::Internal,
            format!("cannot encode JSON: {e}"),
        )
    })?;
    println!("{text}");
    Ok(())
}
