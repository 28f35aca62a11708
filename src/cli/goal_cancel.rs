//! `omk goal cancel`: stop a goal from another terminal.
//!
//! The process driving the goal gets SIGTERM, which it handles like Ctrl-C:
//! agents are cancelled, committed work is kept, the goal ends `cancelled`.
//! A goal whose controller died (before this, or of the signal before it
//! could handle it) is marked `cancelled` directly.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::state::{GoalState, GoalStatus};
use crate::store::events::{EventBody, EventLog};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// How long to wait for the goal to stop.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::words::parse_duration)]
    wait: Duration,
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let (before, _) = super::load_state(&goal)?;
    if before.status != GoalStatus::Running && goal.holder().is_none() {
        eprintln!(
            "omk: goal {} already ended {}; nothing to cancel",
            goal.id, before.status
        );
        return Ok(1);
    }
    if let Some(pid) = goal.holder() {
        // SAFETY: sending SIGTERM to the process that holds the goal's lock.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + args.wait;
        while goal.holder().is_some() {
            if Instant::now() > deadline {
                return Err(Error::StillRunning {
                    pid,
                    goal: goal.id.clone(),
                    wait: crate::words::human_duration(args.wait),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // No controller is left: one that died before it could record the
    // cancel (or long before) leaves the goal to be marked here.
    if super::load_state(&goal)?.0.status == GoalStatus::Running {
        let _lock = goal.lock()?;
        let (mut log, events) = EventLog::open(&goal.events())?;
        if GoalState::from_events(&events).status == GoalStatus::Running {
            log.append(EventBody::GoalFinished {
                status: GoalStatus::Cancelled,
                reason: Some("cancelled after its controller had stopped".into()),
            })?;
        }
    }
    let (state, _) = super::load_state(&goal)?;
    println!("goal {}: {}", goal.id, state.status);
    Ok(0)
}
