//! `omk goal resume`: finish an interrupted goal.

use std::path::Path;

use crate::error::Result;
use crate::report::Reporter;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Attempts per slice from now on, counting those already made.
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    #[command(flatten)]
    budget: super::BudgetArgs,
    /// Print the proof as JSON at the end.
    #[arg(long)]
    json: bool,
    /// Plain log lines instead of a live display.
    #[arg(long)]
    no_progress: bool,
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    if args.max_attempts == Some(0) {
        return Err(crate::Error::Usage(
            "--max-attempts must be at least 1".into(),
        ));
    }
    let budget: crate::run::Budget = args.budget.into();
    let finished = crate::run::resume_goal(
        dir,
        &args.goal.id,
        budget.raised(args.max_attempts),
        Reporter::new(!args.no_progress),
    )
    .await?;
    if finished.already_ended {
        eprintln!(
            "omk: goal {} already ended {}; nothing to resume",
            finished.goal.id, finished.state.status
        );
    }
    super::print_finished(&finished, args.json)
}
