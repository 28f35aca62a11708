//! Gates: shell commands that judge a tree.
//!
//! A gate passes when its command exits 0 before its timeout. Each result
//! records the tree it ran on, so a proof can show that the integration tree
//! it names is the one that was verified. A gate runs code the agents wrote,
//! so it runs in the same sandbox as they do ([`crate::sandbox`]): it writes
//! only its tree, its temp dir, the slot's build caches and what it is
//! allowed besides, and sees only the allowed part of omk's environment.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::process;

mod outcome;
pub use outcome::{GateOutcome, ReviewOutcome};

/// Which trees a gate judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateScope {
    /// Each slice's commit, in its worktree.
    Slice,
    /// The integration: each candidate, before the branch moves to it.
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
    /// What it may write besides its tree, temp dir and the slot's build
    /// caches (`writable`, `~/` expanded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<String>,
    /// Variables of omk's environment it may see besides the allowed ones (`env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// How many cores it keeps busy (`cpus`); absent: all of them, so it
    /// runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<usize>,
    /// Set for a review gate (`kind = "review"`): an agent judges the change
    /// instead of `command` ([`crate::review`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::verdict::ReviewSpec>,
    /// Hosts it may reach besides those `[sandbox] allow_hosts` names (`allow_hosts`).
    #[serde(
        default,
        skip_serializing_if = "crate::sandbox::egress::AllowList::is_empty"
    )]
    pub allow_hosts: crate::sandbox::egress::AllowList,
    /// The pull request check this gate reproduces (`ci`): when that check
    /// fails, the gate runs again on the pushed head and, if it fails there
    /// too, on the branch's merges to find the one that broke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
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
    /// How it ended; recorded in words (`exit 1`, `timed out`, `approved`).
    pub outcome: GateOutcome,
    /// Wall time.
    pub duration_ms: u64,
    /// The tree id it ran on.
    pub tree: String,
    /// Its combined stdout and stderr.
    pub log: PathBuf,
    /// Whether this result was reused from an earlier run on the same tree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// The goal whose run a cached result comes from (its `log` is that run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_goal: Option<String>,
    /// Whether the gate left its tree different from the one it ran on
    /// (such a result is not cached).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_tree: bool,
    /// The last lines of its log, when it failed (bounded, scrubbed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// A review gate's verdict, findings and the reviewer's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::verdict::Review>,
    /// The network it had, and the connections it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::sandbox::egress::NetworkRecord>,
    /// The key of each setup whose outputs it ran with, by setup name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub setups: std::collections::BTreeMap<String, String>,
}

impl GateResult {
    /// A gate that could not run on `tree`, and why: it failed.
    pub fn not_run(name: String, tree: String, outcome: GateOutcome) -> GateResult {
        GateResult {
            name,
            passed: false,
            exit_code: None,
            outcome,
            duration_ms: 0,
            tree,
            log: PathBuf::new(),
            cached: false,
            from_goal: None,
            changed_tree: false,
            excerpt: None,
            review: None,
            network: None,
            setups: Default::default(),
        }
    }
}

/// How much of a failed gate's log its result keeps.
const EXCERPT_LINES: usize = 20;
const EXCERPT_BYTES: usize = 2048;

/// Where the gates of one job run: the same for each of its gates.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The goal, named in the gates' environment (`OMK_GOAL_ID`).
    pub goal_id: String,
    /// The checkout the gates judge.
    pub dir: PathBuf,
    /// Their temp dir (`TMPDIR`), emptied before the job.
    pub tmp: PathBuf,
    /// The slot's build caches: variable and directory.
    pub caches: Vec<(String, String)>,
    /// Variables of omk's environment every agent and gate may see besides
    /// the allowed ones (`[sandbox] env`).
    pub env: Vec<String>,
    /// Directories every agent and gate may write besides (`[sandbox] writable`).
    pub writable: Vec<String>,
    /// Paths every agent and gate may read that the sandbox hides (`[sandbox] readable`).
    pub readable: Vec<String>,
    /// The network of every agent and gate (`[sandbox] network`, `allow_hosts`).
    pub network: crate::sandbox::NetworkSettings,
    /// The environment the gates' variables come from, when not omk's own
    /// (on a cluster worker: the driving omk's, sent with the job).
    pub inherit: Option<Vec<(String, String)>>,
    /// What the setups install before each gate, as their definitions
    /// say (`setup::SetupSpec::fingerprint`): part of what a result was
    /// judged with (their inputs are in the tree).
    pub installs: Vec<String>,
}

impl Bench {
    /// The same bench in `slot`: its checkout, its temp dir and its build
    /// caches (`caches`, by name, as the pool gives them).
    pub fn in_slot(self, slot: PathBuf, caches: Vec<(String, String)>) -> Bench {
        Bench {
            tmp: slot.with_extension("tmp"),
            dir: slot,
            caches,
            ..self
        }
    }

    /// The names of the build caches it sets (`[pool] cache`).
    pub fn cache_names(&self) -> Vec<String> {
        self.caches.iter().map(|(name, _)| name.clone()).collect()
    }

    /// `vars` with the slot's build caches in place of what they say of
    /// the same names: what an agent or a gate in the slot sees.
    pub fn with_caches(&self, vars: Vec<(String, String)>) -> Vec<(String, String)> {
        vars.into_iter()
            .filter(|(k, _)| !self.caches.iter().any(|(c, _)| c == k))
            .chain(self.caches.iter().cloned())
            .collect()
    }

    /// The whole environment `gate` runs with.
    pub fn env(&self, gate: &GateSpec) -> Vec<(String, String)> {
        let names: Vec<String> = self.env.iter().chain(&gate.env).cloned().collect();
        self.with_caches(match &self.inherit {
            Some(vars) => crate::agent::gate_env_of(vars.iter().cloned(), &names),
            None => crate::agent::gate_env(&names),
        })
        .into_iter()
        .chain([
            ("OMK_GATE".to_string(), gate.name.clone()),
            ("OMK_GOAL_ID".to_string(), self.goal_id.clone()),
            ("TMPDIR".to_string(), self.tmp.display().to_string()),
        ])
        .collect()
    }

    /// The environment `gate` runs with, but for what names the goal and
    /// the slot's directories: the same gate judges the same tree alike in
    /// any goal and any slot.
    pub fn judged_env(&self, gate: &GateSpec) -> Vec<(String, String)> {
        let mut env = self.env(gate);
        env.retain(|(k, _)| {
            !["TMPDIR", "OMK_GOAL_ID"].contains(&k.as_str())
                && !self.caches.iter().any(|(c, _)| c == k)
        });
        env
    }

    /// Where `gate` may write.
    pub fn confinement(&self, gate: &GateSpec) -> crate::sandbox::Confinement {
        let extra: Vec<String> = self
            .writable
            .iter()
            .chain(&gate.writable)
            .cloned()
            .collect();
        crate::sandbox::Confinement::new(
            [self.dir.clone(), self.tmp.clone()]
                .into_iter()
                .chain(self.caches.iter().map(|(_, d)| PathBuf::from(d)))
                .chain(crate::sandbox::extra_dirs(&extra))
                .collect(),
        )
        .reading(crate::sandbox::readable_dirs(&self.readable))
        .running(&gate.command)
        .on(crate::sandbox::Network::of(
            &self.network,
            &gate.allow_hosts,
        ))
    }
}

/// Passing gate results kept per repository, so one tree is never verified
/// twice by the same gate. Failures are not kept: a flaky failure can be
/// retried.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Where results are kept; `None` when the cache is off (`--no-gate-cache`).
    dir: Option<PathBuf>,
}

/// A key over a list of fields, each length-prefixed so that no two lists
/// hash alike: the first 16 bytes of their SHA-256, in hex.
#[derive(Default)]
pub struct Key(sha2::Sha256);

impl Key {
    /// Adds one field.
    pub fn field(&mut self, bytes: &[u8]) {
        use sha2::Digest;
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The key, in hex.
    pub fn hex(self) -> String {
        use sha2::Digest;
        let key = self.0.finalize();
        key[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Cache {
    /// The cache in `dir`.
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir: Some(dir) }
    }

    /// No cache: every gate runs, and nothing is kept.
    pub fn off() -> Cache {
        Cache { dir: None }
    }

    /// The file of `gate`'s result on `tree` run on `bench`: the key names
    /// everything but the timeout that could change the verdict — the
    /// command, the whole environment and what it may write — and the tree.
    fn path(&self, gate: &GateSpec, bench: &Bench, tree: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut key = Key::default();
        let mut field = |bytes: &[u8]| key.field(bytes);
        field(gate.name.as_bytes());
        field(gate.command.as_bytes());
        // A review is judged by its agent and instructions.
        if let Some(r) = &gate.review {
            field(r.agent.as_deref().unwrap_or_default().as_bytes());
            field(r.instructions.as_bytes());
            field(&r.max_tokens.unwrap_or(0).to_le_bytes());
        }
        let mut env = bench.judged_env(gate);
        env.sort();
        for (k, v) in &env {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        for w in bench.writable.iter().chain(&gate.writable) {
            field(w.as_bytes());
        }
        // What it could reach and read can change a verdict too.
        field(&[u8::from(bench.network.open)]);
        for h in bench
            .network
            .allow
            .names()
            .iter()
            .chain(&gate.allow_hosts.names())
        {
            field(h.as_bytes());
        }
        for r in &bench.readable {
            field(r.as_bytes());
        }
        for (name, _) in &bench.caches {
            field(name.as_bytes());
        }
        for i in &bench.installs {
            field(i.as_bytes());
        }
        Some(dir.join(format!("{tree}-{}.json", key.hex())))
    }

    /// A passing result of `gate` on `tree`, if one was kept.
    pub fn get(&self, gate: &GateSpec, bench: &Bench, tree: &str) -> Option<GateResult> {
        let bytes = std::fs::read(self.path(gate, bench, tree)?).ok()?;
        let mut result: GateResult = serde_json::from_slice(&bytes).ok()?;
        (result.passed && result.tree == tree).then(|| {
            result.cached = true;
            result
        })
    }

    /// Keeps a passing result whose tree was the same before and after the
    /// gate ran.
    pub fn put(&self, gate: &GateSpec, bench: &Bench, result: &GateResult) {
        let Some(path) = self.path(gate, bench, &result.tree) else {
            return;
        };
        if result.passed && !result.changed_tree && !result.cached {
            let mut kept = result.clone();
            kept.from_goal = Some(bench.goal_id.clone());
            if let Ok(bytes) = serde_json::to_vec(&kept) {
                let _ = crate::files::write_atomic(&path, &bytes);
            }
        }
    }
}

/// Runs one gate on `bench`, whose checked-out tree is `tree`, confined.
pub async fn run(
    gate: &GateSpec,
    bench: &Bench,
    tree: &str,
    log: PathBuf,
    cancel: &CancellationToken,
) -> Result<GateResult> {
    let spec = process::Spec {
        command: gate.command.clone(),
        cwd: bench.dir.clone(),
        env: bench.env(gate),
        confinement: bench.confinement(gate),
        log: log.clone(),
        timeout: gate.timeout,
    };
    let (exit, took) = process::run(&spec, cancel).await?;
    let network = spec.confinement.network_record();
    // A failure after refused connections, or a write the sandbox refused,
    // says so first: that is most likely why it failed.
    let excerpt = (!exit.success())
        .then(|| {
            let tail = crate::excerpt::of_log(&log, EXCERPT_LINES, EXCERPT_BYTES);
            let writes =
                crate::sandbox::denied::write_refused_hint(&tail, &spec.confinement.writable);
            match network
                .failure_hint()
                .into_iter()
                .chain(writes)
                .collect::<Vec<_>>()
            {
                hints if hints.is_empty() => tail,
                hints => format!("{}\n{tail}", hints.join("\n")),
            }
        })
        .filter(|t| !t.trim().is_empty());
    Ok(GateResult {
        excerpt,
        name: gate.name.clone(),
        passed: exit.success(),
        exit_code: exit.code(),
        outcome: GateOutcome::Ran(exit),
        duration_ms: took.as_millis() as u64,
        tree: tree.to_string(),
        log,
        cached: false,
        from_goal: None,
        changed_tree: false,
        review: None,
        network: Some(network),
        setups: Default::default(),
    })
}

pub(crate) mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
