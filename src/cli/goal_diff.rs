//! `omk goal diff`: what a slice changed, as `git diff` shows it.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The goal (`latest`, an id or a unique prefix; default: latest) and the slice.
    #[arg(value_name = "[ID] SLICE", num_args = 1..=2, required = true)]
    names: Vec<String>,
    /// Only the changed files and line counts.
    #[arg(long)]
    stat: bool,
    /// That attempt's commit instead of the last one (attempts stay local).
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (id, slice) = match args.names.as_slice() {
        [slice] => ("latest", slice.as_str()),
        [id, slice] => (id.as_str(), slice.as_str()),
        _ => {
            return Err(Error::Usage(
                "name the slice: omk goal diff [ID] SLICE".into(),
            ))
        }
    };
    let repo = crate::git::Repo::discover(dir)?;
    let (_, goal) = super::find_goal(dir, id)?;
    let (state, _) = super::load_state(&goal)?;
    // The integration: everything the goal merged, against its base.
    let (start, commit) = if slice == crate::plan::INTEGRATION {
        (state.base_commit.clone(), state.integration.commit.clone())
    } else {
        let s = super::slice_of(&state, slice)?;
        let commit = match args.attempt {
            None => s.commit.clone(),
            Some(n) => match s.attempt_history.iter().find(|a| a.attempt == n) {
                Some(a) => a.commit.clone(),
                None => {
                    return Err(Error::Usage(format!(
                        "slice `{slice}` has {} that ended (asked for attempt {n})",
                        crate::words::count(s.attempt_history.len(), "attempt")
                    )))
                }
            },
        };
        match (&s.start_commit, commit) {
            (Some(start), Some(commit)) => (start.clone(), commit),
            _ => {
                return Err(Error::Usage(format!(
                    "slice `{slice}` has no commit {}(it is {})",
                    args.attempt
                        .map(|n| format!("for attempt {n} "))
                        .unwrap_or_else(|| "yet ".into()),
                    s.status
                )))
            }
        }
    };
    let (start, commit) = (&start, &commit);
    // git itself, not git2: its diff is what engineers read, with their
    // colours, pager and diff settings, on a terminal or into a pipe.
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(&repo.root).arg("diff");
    if args.stat {
        cmd.arg("--stat");
    }
    let status = cmd
        .arg(start)
        .arg(commit)
        .arg("--")
        .status()
        .context(|| "running git diff".to_string())?;
    Ok(if status.success() { 0 } else { 1 })
}
