//! `omk goal land`: follow a goal's pull request until its checks pass and
//! the repository lets it merge, then merge it with the head omk verified.

use std::path::Path;
use std::time::Duration;

use crate::deliver::land::{LandOptions, Landed};
use crate::error::Result;
use crate::store::landing::MergeMethod;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Give up when it has not merged after this long.
    #[arg(long, default_value = "2h", value_parser = crate::words::parse_duration)]
    land_timeout: Duration,
    /// How often the checks are read (less often while nothing changes).
    #[arg(long, default_value = "15s", value_parser = crate::words::parse_duration)]
    land_poll: Duration,
    /// How to merge; default: squash when the repository allows it.
    #[arg(long, value_enum)]
    merge_method: Option<MergeMethod>,
    /// Print the proof as JSON at the end.
    #[arg(long)]
    json: bool,
    /// Plain log lines instead of a live display while slices repair what
    /// the pull request sent back.
    #[arg(long)]
    no_progress: bool,
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let options = LandOptions {
        timeout: args.land_timeout,
        poll: args.land_poll,
        method: args.merge_method,
    };
    let json = args.json;
    let show = |body: &crate::store::events::EventBody| {
        if !json {
            println!("{}", crate::report::describe(body));
        }
    };
    let (landed, state) = crate::run::land(dir, &goal.id, &options, !args.no_progress, show)
        .await
        .map_err(super::as_flags)?;
    if args.json {
        super::print_json(&state)?;
    }
    Ok(match landed {
        Landed::Merged(_) => 0,
        Landed::Stopped(_) | Landed::Asked { .. } => 1,
        Landed::Cancelled => 130,
    })
}
