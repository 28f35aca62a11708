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
    let Some(s) = state.slice(slice) else {
        let ids: Vec<&str> = state.slices.iter().map(|s| s.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "goal {} has no slice `{slice}`; its slices: {}",
            goal.id,
            ids.join(", ")
        )));
    };
    let (Some(start), Some(commit)) = (&s.start_commit, &s.commit) else {
        return Err(Error::Usage(format!(
            "slice `{slice}` has no commit yet (it is {})",
            s.status
        )));
    };
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
