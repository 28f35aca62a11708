//! Gates: shell commands that judge a tree.
//!
//! A gate passes when its command exits 0 before its timeout. Each result
//! records the tree it ran on, so a proof can show that the integration tree
//! it names is the one that was verified.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::process;

/// Which trees a gate judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateScope {
    /// Each slice's commit, in its worktree.
    Slice,
    /// The integrated tree, once all slices are merged.
    Integration,
    /// Both.
    #[default]
    Both,
}

impl GateScope {
    /// Whether gates of this scope judge slices.
    pub fn judges_slices(self) -> bool {
        matches!(self, GateScope::Slice | GateScope::Both)
    }

    /// Whether gates of this scope judge the integration.
    pub fn judges_integration(self) -> bool {
        matches!(self, GateScope::Integration | GateScope::Both)
    }
}

/// A configured or detected gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSpec {
    /// Its name, as plans refer to it.
    pub name: String,
    /// The command, run by `sh -c` in the tree it judges.
    pub command: String,
    /// How long it may run.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Which trees it judges.
    pub scope: GateScope,
}

/// The outcome of one gate on one tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate's name.
    pub name: String,
    /// Whether it exited 0 in time.
    pub passed: bool,
    /// Its exit code, `null` when it was killed.
    pub exit_code: Option<i32>,
    /// How it ended, in words (`exit 1`, `timed out`).
    pub outcome: String,
    /// Wall time.
    pub duration_ms: u64,
    /// The tree id it ran on.
    pub tree: String,
    /// Its combined stdout and stderr.
    pub log: PathBuf,
    /// Whether this result was reused from an earlier run on the same tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// Passing gate results kept per repository, so one tree is never verified
/// twice by the same gate. Failures are not kept: a flaky failure can be
/// retried.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir`.
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    fn path(&self, gate: &GateSpec, tree: &str) -> PathBuf {
        let key = crate::util::fnv1a64(format!("{}\0{}", gate.name, gate.command).as_bytes());
        self.dir.join(format!("{tree}-{key:016x}.json"))
    }

    /// A passing result of `gate` on `tree`, if one was kept.
    pub fn get(&self, gate: &GateSpec, tree: &str) -> Option<GateResult> {
        let bytes = std::fs::read(self.path(gate, tree)).ok()?;
        let mut result: GateResult = serde_json::from_slice(&bytes).ok()?;
        (result.passed && result.tree == tree).then(|| {
            result.cached = true;
            result
        })
    }

    /// Keeps a passing result.
    pub fn put(&self, gate: &GateSpec, result: &GateResult) {
        if result.passed {
            if let Ok(bytes) = serde_json::to_vec(result) {
                let _ = crate::util::write_atomic(&self.path(gate, &result.tree), &bytes);
            }
        }
    }
}

/// Runs one gate in `dir`, whose checked-out tree is `tree`, with `env`
/// (the slot's build caches) set besides the `OMK_*` variables.
pub async fn run(
    gate: &GateSpec,
    goal_id: &str,
    dir: &Path,
    tree: &str,
    env: &[(String, String)],
    log: PathBuf,
    cancel: &CancellationToken,
) -> Result<GateResult> {
    let spec = process::Spec {
        command: gate.command.clone(),
        cwd: dir.to_path_buf(),
        env: [
            ("OMK_GATE".to_string(), gate.name.clone()),
            ("OMK_GOAL_ID".to_string(), goal_id.to_string()),
        ]
        .into_iter()
        .chain(env.iter().cloned())
        .collect(),
        log: log.clone(),
        timeout: gate.timeout,
    };
    let (exit, took) = process::run(&spec, cancel).await?;
    crate::redact::redact_file(&log)?;
    Ok(GateResult {
        name: gate.name.clone(),
        passed: exit.success(),
        exit_code: exit.code(),
        outcome: exit.to_string(),
        duration_ms: took.as_millis() as u64,
        tree: tree.to_string(),
        log,
        cached: false,
    })
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
