//! `omk goal report`: the goal as one self-contained HTML page — a timeline
//! of every slice's waiting, agent, commit, gates and merge, and the
//! proof's table.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// Write the HTML report to FILE (`-`: standard output).
    #[arg(long, value_name = "FILE", required = true)]
    html: PathBuf,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    let (state, events) = super::load_state(&goal)?;
    let timeline = crate::report::timeline::timeline(&events, &state);
    let page = crate::report::html::html(&state, &timeline);
    if args.html.as_os_str() == "-" {
        std::io::stdout()
            .write_all(page.as_bytes())
            .context(|| "writing the report".to_string())?;
        return Ok(0);
    }
    crate::files::write_atomic(&args.html, page.as_bytes())?;
    eprintln!(
        "report of goal {} ({} rows): {}",
        goal.id,
        timeline.rows.len(),
        args.html.display()
    );
    Ok(0)
}
