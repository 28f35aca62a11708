//! `omk goal clean`: remove what goals created — slice branches, and the
//! pool's idle worktree slots — and nothing else. The integration branch
//! stays unless asked.

use std::path::Path;

use crate::error::{Error, Result};
use crate::git::{conventions, Repo};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `latest`, a goal id, or a unique prefix.
    #[arg(default_value = "latest", conflicts_with = "all")]
    id: String,
    /// Clean every goal of this repository.
    #[arg(long)]
    all: bool,
    /// Also delete the integration branch (and the squashed delivery's).
    #[arg(long)]
    integration: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let ids = if args.all {
        store.goal_ids()?
    } else {
        vec![store.find_goal(&args.id)?.id]
    };
    let mut freed = 0;
    for id in ids {
        let goal = store.find_goal(&id)?;
        let lock = goal.lock().map_err(|e| match e {
            Error::Busy { pid, .. } => Error::Busy {
                goal: id.clone(),
                pid,
            },
            other => other,
        })?;
        let mut deleted = Vec::new();
        for branch in repo.branches_under(&conventions::goal_prefix(&id))? {
            let result = conventions::is_result_branch(&branch);
            if (!result || args.integration) && repo.delete_branch(&branch)? {
                deleted.push(branch);
            }
        }
        drop(lock);
        let _ = std::fs::remove_file(goal.lock_path());
        println!(
            "goal {id}: removed {} branch{}",
            deleted.len(),
            if deleted.len() == 1 { "" } else { "es" }
        );
    }
    // Worktrees of planning runs a killed omk left behind.
    if args.all {
        for worktree in store.stray_planning_worktrees() {
            freed += crate::machine::disk_usage(&worktree);
            repo.remove_worktree(&worktree)?;
            println!("removed the stray planning worktree {}", worktree.display());
        }
    }
    // Worktree slots no goal is using are rebuilt when needed.
    let pool = crate::pool::Pool::new(store.pool_dir());
    let idle = pool.idle_slots();
    for slot in &idle {
        freed += crate::machine::disk_usage(slot);
        pool.remove_slot(&repo, slot)?;
    }
    // What slots are seeded from is kept again when next needed: the warm
    // build state by the next base check, a setup's outputs by its next
    // run, its download cache by the next base's run.
    let mut removed = |(n, bytes): (usize, u64), what: String| {
        freed += bytes;
        if n > 0 {
            println!("removed {what} ({})", crate::words::human_bytes(bytes));
        }
    };
    removed(
        pool.clear_warm(),
        "the warm build state new slots start from".into(),
    );
    let (n, bytes) = pool.setup_store().clear_idle();
    let keys = crate::words::count(n, "setup key");
    removed((n, bytes), format!("the outputs of {keys}"));
    let (n, bytes) = pool.downloads().clear_idle();
    let setups = crate::words::count(n, "setup");
    let caches = if n == 1 { "cache" } else { "caches" };
    removed((n, bytes), format!("the download {caches} of {setups}"));
    if !idle.is_empty() {
        println!(
            "removed {} idle worktree slot{}",
            idle.len(),
            if idle.len() == 1 { "" } else { "s" }
        );
    }
    // What a `--sparse` run made git turn on goes once nothing needs it.
    let mark = store.root().join(crate::run::WORKTREE_CONFIG_MARK);
    if mark.exists() && repo.drop_worktree_config(pool.dir())? {
        let _ = std::fs::remove_file(&mark);
        println!("unset extensions.worktreeConfig, which --sparse had turned on");
    }
    println!("freed {}", crate::words::human_bytes(freed));
    Ok(0)
}
