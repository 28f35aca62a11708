//! `omk goal list`: this repository's goals, oldest first.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::git::Repo;
use crate::state::GoalStatus;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    goal_id: String,
    status: GoalStatus,
    goal: String,
    slices: usize,
    merged: usize,
    started_at: String,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let store = Store::for_repo(&Repo::discover(dir)?)?;
    let mut rows = Vec::new();
    for id in store.goal_ids()? {
        let goal = store.find_goal(&id)?;
        let (state, _) = super::load_state(&goal)?;
        rows.push(Row {
            goal_id: id,
            status: state.status,
            goal: state.goal.clone(),
            slices: state.slices.len(),
            merged: state.integration.order.len(),
            started_at: state.started_at.clone(),
        });
    }
    if args.json {
        super::print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no goals in this repository yet; start one with `omk goal run`");
    } else {
        for r in rows {
            println!(
                "{}  {:<10} {}/{} merged  {}",
                r.goal_id,
                r.status.to_string(),
                r.merged,
                r.slices,
                r.goal
            );
        }
    }
    Ok(0)
}
