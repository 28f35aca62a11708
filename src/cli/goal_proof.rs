//! `omk goal proof`: the goal's proof as text, JSON or Markdown.

use std::path::Path;

use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// The proof as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown ready to paste as a pull-request body.
    #[arg(long)]
    markdown: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let (state, _) = super::load_state(&goal)?;
    if args.json {
        super::print_json(&state)?;
    } else if args.markdown {
        let repo = crate::git::Repo::discover(dir)?;
        // Fetch-and-verify is offered only where the proof was pushed.
        let pushed_to = state
            .delivery
            .as_ref()
            .filter(|d| d.proof_ref.is_some())
            .and_then(|d| d.remote.as_deref());
        print!("{}", crate::proof::markdown(&state, Some(&repo), pushed_to));
    } else {
        print!("{}", crate::proof::text(&state));
    }
    Ok(0)
}
