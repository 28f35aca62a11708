//! `omk goal watch`: follow a goal that another process drives, from its
//! event log, with the view `goal run` shows, until it ends.
//!
//! The log is the only thing read: watching changes nothing, and any number
//! of terminals can watch one goal. It ends once the goal has finished and
//! its driver has let go of it (a delivery comes after `goal_finished`),
//! and exits as `goal run` would have. With `--json` it streams the events
//! instead, one JSON object per line, as `goal replay --json` prints them.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::{IoContext, Result};
use crate::report::Reporter;
use crate::state::{GoalState, GoalStatus};
use crate::store::events::Event;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Print plain lines instead of the live view.
    #[arg(long)]
    no_progress: bool,
    /// Stream the goal's events as JSON Lines (as `goal replay --json`
    /// prints them) instead of the view, until it ends.
    #[arg(long)]
    json: bool,
    /// Only the events after this sequence number (with `--json`, to go on
    /// where an earlier reader stopped).
    #[arg(long, value_name = "SEQ")]
    after: Option<u64>,
}

/// How often the log is read again.
const POLL: Duration = Duration::from_millis(100);

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let path = goal.events();
    // A goal just started in another terminal may not have its log yet.
    let mut waited = Duration::ZERO;
    while !path.exists() && waited < Duration::from_secs(5) {
        std::thread::sleep(POLL);
        waited += POLL;
    }
    let file = std::fs::File::open(&path).context(|| format!("opening {}", path.display()))?;
    let mut log = std::io::BufReader::new(file);
    let mut reporter = Reporter::new(!args.no_progress && !args.json);
    let mut out = std::io::stdout().lock();
    let mut state = GoalState::default();
    let mut partial = String::new();
    // Set once nothing drives the goal: one more read, then the end.
    let mut last_read = false;
    loop {
        // Whole lines only: the driver may be writing the next one.
        loop {
            let mut line = String::new();
            let n = log
                .read_line(&mut line)
                .context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                partial.push_str(&line);
                continue;
            }
            let whole = std::mem::take(&mut partial) + &line;
            if let Ok(event) = serde_json::from_str::<Event>(whole.trim_end()) {
                state.apply(&event);
                if args.after.is_some_and(|after| event.seq <= after) {
                    continue;
                }
                if args.json {
                    let line = serde_json::to_string(&event)
                        .map_err(|e| crate::Error::json("encoding event", e))?;
                    // A reader that went away (`| head`) ends the stream.
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return Ok(super::goal_exit_code(&state));
                    }
                } else {
                    reporter.event(&event, &state);
                }
            }
        }
        if last_read {
            break;
        }
        if goal.holder().is_none() {
            last_read = true;
            continue;
        }
        std::thread::sleep(POLL);
    }
    reporter.finish();
    if state.status == GoalStatus::Running {
        eprintln!(
            "omk: no process drives goal {} any more, and it has not finished; `omk goal resume {}` goes on",
            goal.id, goal.id
        );
        return Ok(1);
    }
    if !args.json {
        print!("{}", crate::proof::text(&state));
        println!("proof: {}", goal.proof().display());
    }
    Ok(super::goal_exit_code(&state))
}
