//! `spacepos config show`.

use crate::cli::ConfigCommand;
use spacepos_node::Node;
use spacepos_node::error::NodeError;

pub(crate) async fn run(node: &Node, command: ConfigCommand) -> Result<(), NodeError> {
    let ConfigCommand::Show { json } = command;
    let record = node.record().await?;
    let (config, sources) = node.config_with_sources(record.as_ref())?;
    if json {
        return super::print_json(&spacepos_config::redacted_view(&config, &sources));
    }
    match node.config_file() {
        Some(f) => println!("# config file: {}", f.display()),
        None => println!("# config file: none"),
    }
    println!("# data directory: {}", node.data_dir.display());
    print!("{}", spacepos_config::redacted_text(&config, &sources));
    Ok(())
}
