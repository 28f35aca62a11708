//! `omk goal deliver`: deliver a finished goal after the fact, as `goal run
//! --deliver` would have.

use std::path::Path;

use crate::error::Result;
use crate::state::Deliver;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Where the result goes.
    #[arg(long, value_enum)]
    to: Deliver,
    #[command(flatten)]
    delivery: super::DeliveryArgs,
    /// Deliver a goal that did not end ready: the slices that merged (the pull request says
    /// which are missing).
    #[arg(long)]
    partial: bool,
    /// Print the proof as JSON at the end.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let errors = args.delivery.check(args.to);
    if !errors.is_empty() {
        return Err(crate::Error::Usage(errors.join("\n")));
    }
    let repo = crate::git::Repo::discover(dir)?;
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let _lock = goal.lock()?;
    let (mut state, _) = super::load_state(&goal)?;
    if state.status == crate::state::GoalStatus::Running {
        return Err(crate::Error::Usage(format!(
            "goal {} has not ended; finish it with `omk goal resume {}` first",
            goal.id, goal.id
        )));
    }
    let request = crate::deliver::Request {
        to: args.to,
        options: args.delivery.options(),
        partial: args.partial,
    };
    let route = crate::deliver::prepare_for(&repo, &state, &request).map_err(super::as_flags)?;
    let delivery = crate::deliver::deliver(&repo, &goal, &mut state, &request, &route)?;
    if args.json {
        super::print_json(&state)?;
    } else {
        println!("{}", crate::proof::delivery_line(&delivery));
    }
    Ok(if delivery.delivered { 0 } else { 1 })
}
