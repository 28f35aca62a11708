//! `omk goal land`: follow a goal's pull request until its checks pass and
//! the repository lets it merge, then merge it with the head omk verified.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::deliver::land::{land, LandOptions, Landed};
use crate::error::{Error, Result};
use crate::store::events::EventBody;
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
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    let repo = crate::git::Repo::discover(dir)?;
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let _lock = goal.lock()?;
    let (mut state, _) = super::load_state(&goal)?;
    let Some(delivery) = state.delivery.clone().filter(|d| d.pull_request.is_some()) else {
        return Err(Error::Usage(format!(
            "goal {} has no pull request to land; open one with `omk goal deliver {} --to pr`",
            goal.id, goal.id
        )));
    };
    let remote = delivery.remote.unwrap_or_else(|| "origin".into());
    let url = repo
        .remote_url(&remote)?
        .ok_or_else(|| Error::Usage(format!("the repository has no remote `{remote}` any more")))?;
    let github = crate::deliver::GitHub::find(|v| std::env::var(v).ok(), &remote, &url)
        .map_err(|errors| super::as_flags(Error::Deliver(errors)))?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let options = LandOptions {
        timeout: args.land_timeout,
        poll: args.land_poll,
        method: args.merge_method,
    };
    let following = state.clone();
    let json = args.json;
    let landed = land(&github, &following, &options, &cancel, |step| {
        let body = EventBody::Landing(step);
        if !json {
            println!("{}", crate::report::describe(&body));
        }
        crate::deliver::record(&goal, &mut state, body)
    })
    .await?;
    if args.json {
        super::print_json(&state)?;
    }
    Ok(match landed {
        Landed::Merged(_) => 0,
        Landed::Stopped(_) => 1,
        Landed::Cancelled => 130,
    })
}
