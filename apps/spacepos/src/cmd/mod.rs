//! One module per command. Commands are thin: they build what the domain
//! services need from the [`spacepos_node::Node`], call them, and print.

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
pub(crate) fn print_json(
    value: &impl serde::Serialize,
) -> Result<(), spacepos_node::error::NodeError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        spacepos_node::error::NodeError::new(
            spacepos_node::error::Kind::Internal,
            format!("cannot encode JSON: {e}"),
        )
    })?;
    println!("{text}");
    Ok(())
}
