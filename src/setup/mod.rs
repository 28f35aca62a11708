//! Slot setup (`[[setup]]`): what installs a repository's dependencies,
//! run once per inputs rather than in every gate.
//!
//! A setup's result — its `outputs`, untracked paths of a slot such as
//! `node_modules` or `.venv` — is good for a tree as long as the setup's
//! [`key`] is the same: its command, what its `inputs` (a lockfile, a
//! manifest) hold in that tree, and the environment it sees. Nothing an
//! agent leaves in an output is ever adopted: outputs come from the setup
//! command, run on a recorded tree.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::gate::{Bench, GateOutcome, GateResult, GateScope, GateSpec};

pub use crate::pool::Store;

pub mod downloads;

/// A configured setup step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupSpec {
    /// Its name, as events and logs call it.
    pub name: String,
    /// The command, run by `sh -c` in the slot, confined like a gate.
    pub command: String,
    /// Repository paths whose content decides whether its outputs are
    /// still good (`package-lock.json`).
    pub inputs: Vec<String>,
    /// Untracked paths of the slot it produces, kept between its runs
    /// (`node_modules`).
    pub outputs: Vec<String>,
    /// Hosts it may reach besides `[sandbox] allow_hosts` (the package index).
    #[serde(
        default,
        skip_serializing_if = "crate::sandbox::egress::AllowList::is_empty"
    )]
    pub allow_hosts: crate::sandbox::egress::AllowList,
    /// How long it may run.
    #[serde(with = "crate::gate::duration_ms")]
    pub timeout: Duration,
}

/// How long a setup may run when `timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The key of `spec`'s outputs for a tree: its command and outputs, each
/// input's object id in that tree (`None`: absent) and the environment
/// `env` it runs with. Equal keys, equal outputs — as far as the inputs
/// decide them.
pub fn key(
    spec: &SetupSpec,
    inputs: &[(String, Option<String>)],
    env: &[(String, String)],
) -> String {
    let mut key = crate::gate::Key::default();
    let mut field = |bytes: &[u8]| key.field(bytes);
    field(spec.name.as_bytes());
    field(spec.command.as_bytes());
    for o in &spec.outputs {
        field(o.as_bytes());
    }
    for (path, id) in inputs {
        field(path.as_bytes());
        field(id.as_deref().unwrap_or("-").as_bytes());
    }
    let mut env = env.to_vec();
    env.sort();
    for (k, v) in &env {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    for h in spec.allow_hosts.names() {
        field(h.as_bytes());
    }
    key.hex()
}

/// How a slot came to hold a setup's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// The setup ran in the slot; its outputs are kept for every slot after.
    Ran,
    /// Copied from what a run for the same key kept.
    Seeded,
}

/// A setup made ready in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readied {
    pub name: String,
    pub key: String,
    /// The slot whose outputs were readied.
    pub slot: PathBuf,
    pub how: How,
    pub duration_ms: u64,
}

/// A goal's setups, where their outputs and download caches are kept,
/// and the tree whose runs may add to those caches.
#[derive(Debug, Clone)]
pub struct Setups {
    pub specs: Vec<SetupSpec>,
    pub store: Store,
    /// The setups' download caches (`$OMK_SETUP_CACHE`), one per setup.
    pub downloads: Store,
    /// The goal's base tree: only a run on it keeps what it downloaded.
    pub base_tree: String,
}

impl SetupSpec {
    /// What the setup is, in one line: part of a gate result's cache key.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(&(
            &self.name,
            &self.command,
            &self.outputs,
            self.allow_hosts.names(),
        ))
        .unwrap_or_default()
    }

    /// The setup as a gate runs: confined in the slot, its network, its
    /// timeout, its log and excerpt.
    pub fn as_gate(&self) -> GateSpec {
        GateSpec {
            name: self.name.clone(),
            command: self.command.clone(),
            timeout: self.timeout,
            scope: GateScope::Both,
            writable: vec![],
            env: vec![],
            cpus: None,
            review: None,
            allow_hosts: self.allow_hosts.clone(),
            ci: None,
        }
    }
}

/// Makes `spec`'s outputs in `bench`'s slot, which holds tree `tree`
/// (whose `inputs` have the given object ids), those of its key: seeded
/// from `setups`' store, or made by running the setup there — one slot at
/// a time per key, with a copy of its download cache — and kept. A setup
/// that fails is its failed result (logged to `log`); one that could not
/// run, or whose outputs could not be moved, a result that judged nothing.
pub async fn ensure(
    spec: &SetupSpec,
    setups: &Setups,
    bench: &Bench,
    tree: &str,
    inputs: Vec<(String, Option<String>)>,
    log: PathBuf,
    cancel: &CancellationToken,
) -> Result<Readied, GateResult> {
    let gate = spec.as_gate();
    let key = key(spec, &inputs, &bench.judged_env(&gate));
    let started = std::time::Instant::now();
    let not_run = |why: String| {
        GateResult::not_run(
            spec.name.clone(),
            tree.to_string(),
            GateOutcome::CouldNotRun(why),
        )
    };
    let (store, dir, outputs) = (&setups.store, &bench.dir, &spec.outputs);
    let lock = off({
        let (store, key) = (store.clone(), key.clone());
        move || store.lock(&key)
    })
    .await
    .map_err(not_run)?;
    let how = if store.has(&key) {
        step(store, &key, dir, outputs, Step::Seed)
            .await
            .map_err(|e| not_run(format!("seeding its outputs: {e}")))?;
        How::Seeded
    } else {
        step(store, &key, dir, outputs, Step::Clear)
            .await
            .map_err(not_run)?;
        let result = run(spec, setups, bench, tree, log, cancel)
            .await
            .map_err(not_run)?;
        if !result.passed {
            return Err(result);
        }
        step(store, &key, dir, outputs, Step::Keep)
            .await
            .map_err(|e| not_run(format!("keeping its outputs: {e}")))?;
        How::Ran
    };
    drop(lock);
    Ok(Readied {
        name: spec.name.clone(),
        key,
        slot: bench.dir.clone(),
        how,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Runs setup `spec` in `bench`'s slot holding `tree`, with a copy of its
/// download cache as `$OMK_SETUP_CACHE`; what a passing run on the base
/// tree fetched is kept for the runs after, any other run's copy just goes.
async fn run(
    spec: &SetupSpec,
    setups: &Setups,
    bench: &Bench,
    tree: &str,
    log: PathBuf,
    cancel: &CancellationToken,
) -> Result<GateResult, String> {
    let lent = off({
        let (store, name, tmp) = (
            setups.downloads.clone(),
            spec.name.clone(),
            bench.tmp.clone(),
        );
        move || downloads::Lent::copy(&store, &name, &tmp)
    })
    .await
    .map_err(|e| format!("copying its download cache: {e}"))?;
    let mut with_cache = bench.clone();
    with_cache
        .caches
        .push((downloads::VAR.into(), lent.dir().display().to_string()));
    let result = crate::gate::run(&spec.as_gate(), &with_cache, tree, log, cancel).await;
    let keep = matches!(&result, Ok(r) if r.passed) && tree == setups.base_tree;
    let kept = off(move || {
        let kept = if keep { lent.keep() } else { Ok(()) };
        drop(lent);
        kept
    })
    .await;
    if let Err(e) = kept {
        tracing::warn!(setup = %spec.name, error = %e, "could not keep the download cache");
    }
    result.map_err(|e| e.to_string())
}

/// [`ensure`] for every setup of `setups`, in order, in `bench`'s slot
/// holding `commit` (whose tree is `tree`), each setup's log in `log_dir`;
/// each one readied is passed to `readied`. Returns the key of each by
/// setup name, or the result of the setup that failed or could not run.
#[allow(clippy::too_many_arguments)]
pub async fn ensure_all(
    setups: &Setups,
    repo: &crate::git::Repo,
    bench: &Bench,
    commit: &str,
    tree: &str,
    log_dir: &std::path::Path,
    cancel: &CancellationToken,
    readied: impl Fn(Readied),
) -> Result<std::collections::BTreeMap<String, String>, GateResult> {
    let mut keys = std::collections::BTreeMap::new();
    for spec in &setups.specs {
        let inputs = off({
            let (repo, commit, paths) = (repo.clone(), commit.to_string(), spec.inputs.clone());
            move || {
                paths
                    .into_iter()
                    .map(|p| repo.entry_id(&commit, &p).map(|id| (p, id)))
                    .collect::<crate::Result<Vec<_>>>()
            }
        })
        .await
        .map_err(|e| {
            let why = GateOutcome::CouldNotRun(format!("reading its inputs: {e}"));
            GateResult::not_run(spec.name.clone(), tree.to_string(), why)
        })?;
        let log = log_dir.join(format!("setup-{}.log", spec.name));
        let done = ensure(spec, setups, bench, tree, inputs, log, cancel).await?;
        keys.insert(done.name.clone(), done.key.clone());
        readied(done);
    }
    Ok(keys)
}

/// The result of gate `gate` whose setup ended as `failed`: the setup's
/// outcome and log, said to be the setup's.
pub fn failed_gate(gate: &GateSpec, mut failed: GateResult) -> GateResult {
    let setup = std::mem::replace(&mut failed.name, gate.name.clone());
    let said = match failed.outcome.judged() {
        true => format!(
            "setup `{setup}` failed ({}), so the gate did not run",
            failed.outcome
        ),
        false => format!("setup `{setup}` could not run: {}", failed.outcome),
    };
    failed.excerpt = Some(match failed.excerpt.take() {
        Some(tail) => format!("{said}:\n{tail}"),
        None => said,
    });
    failed
}

/// What [`ensure`] does with a slot's outputs.
#[derive(Debug, Clone, Copy)]
enum Step {
    Clear,
    Seed,
    Keep,
}

/// Does `step` to `outputs` in `dir` for `key`, off the runtime.
async fn step(
    store: &Store,
    key: &str,
    dir: &std::path::Path,
    outputs: &[String],
    step: Step,
) -> Result<(), String> {
    let (store, key, dir, outputs) = (
        store.clone(),
        key.to_string(),
        dir.to_path_buf(),
        outputs.to_vec(),
    );
    off(move || match step {
        Step::Clear => Store::clear(&dir, &outputs),
        Step::Seed => store.seed(&key, &dir, &outputs),
        Step::Keep => store.keep(&key, &dir, &outputs),
    })
    .await
}

/// Runs blocking filesystem work off the runtime; its error in words.
async fn off<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// What is wrong with a path of a setup's `inputs` or `outputs`, if
/// anything: it must lie inside the repository, and an output must not be
/// git's own.
pub fn path_problem(path: &str, output: bool) -> Option<String> {
    let p = std::path::Path::new(path);
    if path.trim().is_empty() {
        return Some("an empty path".into());
    }
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Some(format!("`{path}` is not a path inside the repository"));
    }
    if output
        && p.components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git" || c.as_os_str() == ".")
    {
        return Some(format!("`{path}` is not an untracked path of the slot"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SetupSpec {
        SetupSpec {
            name: "deps".into(),
            command: "npm ci".into(),
            inputs: vec!["package-lock.json".into()],
            outputs: vec!["node_modules".into()],
            allow_hosts: Default::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn the_key_changes_with_the_inputs_the_command_and_the_environment_only() {
        let lock = |id: &str| vec![("package-lock.json".to_string(), Some(id.to_string()))];
        let env = vec![("PATH".to_string(), "/usr/bin".to_string())];
        let base = key(&spec(), &lock("a1"), &env);
        assert_eq!(base, key(&spec(), &lock("a1"), &env), "stable");
        assert_ne!(
            base,
            key(&spec(), &lock("b2"), &env),
            "the lockfile changed"
        );
        let absent = vec![("package-lock.json".to_string(), None)];
        assert_ne!(base, key(&spec(), &absent, &env), "the lockfile is gone");
        let mut other = spec();
        other.command = "npm install".into();
        assert_ne!(base, key(&other, &lock("a1"), &env), "another command");
        let env2 = vec![("PATH".to_string(), "/opt/bin".to_string())];
        assert_ne!(
            base,
            key(&spec(), &lock("a1"), &env2),
            "another environment"
        );
        // The order the environment comes in does not matter.
        let two = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string()),
        ];
        let swapped: Vec<_> = two.iter().rev().cloned().collect();
        assert_eq!(
            key(&spec(), &lock("a1"), &two),
            key(&spec(), &lock("a1"), &swapped)
        );
    }

    #[test]
    fn inputs_and_outputs_lie_inside_the_repository() {
        assert_eq!(path_problem("package-lock.json", false), None);
        assert_eq!(path_problem("web/node_modules", true), None);
        for bad in ["/etc/passwd", "../x", "a/../../b", ""] {
            assert!(path_problem(bad, false).is_some(), "{bad}");
        }
        assert!(path_problem(".git/hooks", true).is_some());
        assert!(path_problem(".", true).is_some());
    }
}
