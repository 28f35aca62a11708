//! `omk.toml`: gates and run settings, or what omk detects when it is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::gate::{GateScope, GateSpec};
use crate::words::parse_duration;
use file::parse_size;

pub use crate::store::limits::Price;

mod detect;
mod file;
mod gates;
mod read;
mod setups;
#[cfg(test)]
mod tests;

/// The config file's name, at the repository root.
pub const FILE_NAME: &str = "omk.toml";

/// The default per-gate timeout.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(600);
/// The default per-slice agent timeout.
pub const DEFAULT_SLICE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The default inactivity timeout of an agent.
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The default number of attempts a slice gets: its first and every retry
/// after a failed gate, a refused commit or a conflict.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The settings a run uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every gate, per-slice and integration.
    pub gates: Vec<GateSpec>,
    /// What installs the dependencies in a slot, once per inputs (`[[setup]]`).
    pub setups: Vec<crate::setup::SetupSpec>,
    /// Where the gates came from, for the run's opening lines.
    pub gates_source: GatesSource,
    /// How long one agent attempt may run.
    pub slice_timeout: Duration,
    /// How many attempts a slice gets before a conflict is final.
    pub max_attempts: u32,
    /// How long an agent may stay silent before it is stopped.
    pub inactivity_timeout: Duration,
    /// How much of an agent's or gate's output its log keeps (`[run] log_limit`).
    pub log_limit: u64,
    /// Command fragments the approval policy denies (`[policy] deny`).
    pub deny: Vec<String>,
    /// The price of the model the agents use, when known.
    pub price: Option<Price>,
    /// Extra directories agents may write (`[sandbox] writable`, `~/` expanded).
    pub sandbox_writable: Vec<String>,
    /// Extra environment variables agents may see (`[sandbox] env`).
    pub sandbox_env: Vec<String>,
    /// Paths agents and gates may read that the sandbox hides otherwise
    /// (`[sandbox] readable`, `~/` expanded).
    pub sandbox_readable: Vec<String>,
    /// The network of agents and gates (`[sandbox] network`, `allow_hosts`).
    pub network: crate::sandbox::NetworkSettings,
    /// Variables naming a build cache kept per worktree slot (`[pool] cache`).
    pub slot_cache: Vec<String>,
    /// Untracked paths a slot keeps when it is recycled (`[pool] keep`).
    pub slot_keep: Vec<String>,
    /// The most the worktree pool may take on disk (`[pool] max_disk`).
    pub pool_max_disk: Option<u64>,
    /// How many cores the gates may keep busy together (`[run] gate_cpus`).
    pub gate_cpus: Option<usize>,
    /// Directories every sparse slot materializes (`[sparse] include`).
    pub sparse_include: Vec<String>,
    /// Who the commits slices contribute are by (`[commit] author`,
    /// `Name <email>`); absent: the repository's `user.name`/`user.email`.
    pub commit_author: Option<String>,
    /// Where slice attempts run (`[executor]`).
    pub executor: crate::executor::Executor,
}

/// Where the gates of a run came from.
#[derive(Debug, Clone, PartialEq)]
pub enum GatesSource {
    /// `[[gate]]` entries in `omk.toml`.
    Configured(PathBuf),
    /// Detected from a build file at the repository root.
    Detected(&'static str),
    /// Neither.
    None,
}

impl Config {
    /// Reads `omk.toml` from the directory `root`, or detects gates when
    /// there is none.
    pub fn load(root: &Path) -> Result<Config> {
        Self::parse(root.join(FILE_NAME), |name| {
            std::fs::read_to_string(root.join(name)).ok()
        })
    }

    /// Reads `omk.toml` as `commit` has it — a run's settings are the base
    /// commit's, whatever the checkout holds — or detects gates from the
    /// files `commit` has.
    pub fn at_commit(repo: &crate::git::Repo, commit: &str) -> Result<Config> {
        let short = crate::words::short(commit);
        let path = PathBuf::from(format!(
            "{} (at {short})",
            repo.root.join(FILE_NAME).display()
        ));
        Self::parse(path, |name| repo.file_at(commit, name).ok().flatten())
    }

    /// The untracked paths a slot keeps when it is recycled: `[pool] keep`
    /// and every setup's outputs.
    pub fn kept(&self) -> Vec<String> {
        let mut kept = self.slot_keep.clone();
        for o in self.setups.iter().flat_map(|s| &s.outputs) {
            if !kept.contains(o) {
                kept.push(o.clone());
            }
        }
        kept
    }

    /// The gates that judge each slice.
    pub fn slice_gates(&self) -> impl Iterator<Item = &GateSpec> {
        self.gates.iter().filter(|g| g.scope.judges_slices())
    }

    /// The gates that judge the integrated tree.
    pub fn integration_gates(&self) -> impl Iterator<Item = &GateSpec> {
        self.gates.iter().filter(|g| g.scope.judges_integration())
    }
}
