//! `omk mcp`: serve omk's goal tools over MCP on stdio, for the agent the
//! user already runs; `--print-config` prints how to configure that agent.

use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the MCP client configuration for this machine's omk and this
    /// repository (as `--mcp-config-file` of the Kimi CLI, Kimi Code and
    /// Claude Code read it), and exit.
    #[arg(long)]
    print_config: bool,
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    if args.print_config {
        let repo = crate::git::Repo::discover(dir)?;
        let exe = std::env::current_exe()
            .map_err(|e| Error::io("finding omk's own program".to_string(), e))?;
        super::print_json(&crate::mcp::client_config(&exe, &repo.root))?;
        return Ok(0);
    }
    crate::mcp::serve(dir).await?;
    Ok(0)
}
