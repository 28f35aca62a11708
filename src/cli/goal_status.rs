//! `omk goal status`: where a goal stands.

use std::path::Path;

use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Print the state as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let (state, _) = super::load_state(&goal)?;
    if args.json {
        super::print_json(&state)?;
    } else {
        print!("{}", crate::proof::text(&state));
        // The log says running; whether anything still runs it is the lock's.
        if state.status == crate::state::GoalStatus::Running && goal.holder().is_none() {
            println!(
                "driver: none — the process that ran this goal stopped before it finished; `omk goal resume {}` goes on",
                goal.id
            );
        }
        if let Some(plan) = &state.settings.plan {
            println!(
                "plan: {} ({})",
                goal.plan().display(),
                crate::words::count(plan.slices.len(), "slice")
            );
        }
        // Agents hold a slot while they run, gate jobs while theirs run.
        let (agents, gates) = (
            state.settings.concurrency,
            state.settings.limits.gate_concurrency,
        );
        println!(
            "slots: at most {} at once ({} and {})",
            agents + gates,
            crate::words::count(agents, "agent"),
            crate::words::count(gates, "gate job"),
        );
        println!("events: {}", goal.events().display());
    }
    Ok(0)
}
