//! `omk goal retry`: fresh attempts for an ended goal's slices that did not
//! merge, then on to the end again.

use std::path::Path;

use crate::error::Result;
use crate::report::Reporter;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// The slices to retry [default: every one that did not merge].
    slices: Vec<String>,
    /// Attempts each retried slice gets from now on [default: the goal's own limit].
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
    let reporter = Reporter::new(!args.no_progress);
    let finished = crate::run::retry_goal(
        dir,
        &args.goal.id,
        &args.slices,
        args.max_attempts,
        args.budget.into(),
        reporter,
    )
    .await?;
    if finished.already_ended {
        eprintln!(
            "omk: goal {} is already {}; nothing to retry",
            finished.goal.id, finished.state.status
        );
    }
    super::print_finished(&finished, args.json)
}
