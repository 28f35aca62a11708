//! `omk.toml`: gates and run settings, or what omk detects when it is absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::gate::{GateScope, GateSpec};
use crate::util::parse_duration;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gate: Vec<GateEntry>,
    #[serde(default)]
    run: RunEntry,
    #[serde(default)]
    policy: PolicyEntry,
    #[serde(default)]
    price: Vec<Price>,
    #[serde(default)]
    sandbox: SandboxEntry,
    #[serde(default)]
    pool: PoolEntry,
    #[serde(default)]
    sparse: SparseEntry,
    #[serde(default)]
    executor: ExecutorEntry,
    #[serde(default)]
    commit: CommitEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitEntry {
    /// `Name <email>`.
    author: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutorEntry {
    /// `local` (the default) or `slurm`.
    kind: Option<String>,
    #[serde(default)]
    slurm: crate::executor::slurm::Settings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SparseEntry {
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    #[serde(default)]
    cache: Vec<String>,
    #[serde(default)]
    keep: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxEntry {
    #[serde(default)]
    writable: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    readable: Vec<String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    /// `isolated` (the default) or `open`.
    network: Option<String>,
}

/// What a model's tokens cost (`[[price]]` in `omk.toml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The model name the agent uses.
    pub model: String,
    /// US dollars per million input tokens.
    pub input_per_million: f64,
    /// US dollars per million output tokens.
    pub output_per_million: f64,
}

impl Price {
    /// The cost of a number of tokens.
    pub fn usd(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input_per_million + tokens_out as f64 * self.output_per_million)
            / 1e6
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateEntry {
    name: String,
    command: Option<String>,
    /// `command` (the default) or `review`.
    kind: Option<String>,
    /// A review's agent, as `--agent` names one (default: the goal's).
    agent: Option<String>,
    /// A review's instructions: a file of the repository, else the text.
    instructions: Option<String>,
    /// Shipped review instructions: `security`.
    preset: Option<String>,
    /// Tokens after which a review is stopped.
    max_tokens: Option<u64>,
    timeout: Option<String>,
    #[serde(default)]
    scope: GateScope,
    #[serde(default)]
    writable: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    cpus: Option<usize>,
    #[serde(default)]
    allow_hosts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunEntry {
    slice_timeout: Option<String>,
    inactivity_timeout: Option<String>,
    model: Option<String>,
    max_attempts: Option<u32>,
    log_limit: Option<String>,
    gate_cpus: Option<usize>,
}

/// A size such as `64MiB`, `512KiB`, `1GiB` or a number of bytes.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 64MiB, 512KiB or 1GiB"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" | "KB" => 10,
        "MiB" | "M" | "MB" => 20,
        "GiB" | "G" | "GB" => 30,
        _ => return Err(format!("`{text}`: unknown unit; use KiB, MiB or GiB")),
    };
    match n.checked_shl(shift).filter(|v| v >> shift == n) {
        Some(v) if v >= 1024 => Ok(v),
        Some(_) => Err(format!("`{text}` is too small; keep at least 1KiB")),
        None => Err(format!("`{text}` is too big")),
    }
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
        let short = crate::util::short(commit);
        let path = PathBuf::from(format!(
            "{} (at {short})",
            repo.root.join(FILE_NAME).display()
        ));
        Self::parse(path, |name| repo.file_at(commit, name).ok().flatten())
    }

    /// The review of a `kind = "review"` gate entry (named `at` in errors);
    /// `read` finds its instructions file.
    fn review(
        g: &GateEntry,
        at: &str,
        read: &impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<crate::review::ReviewSpec, String> {
        use crate::review::{Preset, ReviewSpec, GENERAL};
        if let Some(agent) = &g.agent {
            crate::agent::AgentSpec::parse(agent).map_err(|e| format!("{at}.agent: {e}"))?;
        }
        let preset = match g.preset.as_deref() {
            None => None,
            Some(name) => Some(Preset::parse(name).ok_or_else(|| {
                format!("{at}.preset: `{name}` is not a preset; the one there is: \"security\"")
            })?),
        };
        let own = match g.instructions.as_deref().map(str::trim) {
            Some("") => return Err(format!("{at}.instructions: empty")),
            // A file of the repository at the base, else the text itself.
            Some(text) => Some(read(text).unwrap_or_else(|| text.to_string())),
            None => None,
        };
        let instructions = match (preset, own) {
            (Some(p), Some(own)) => format!("{}\n\n{own}", p.instructions()),
            (Some(p), None) => p.instructions().to_string(),
            (None, Some(own)) => own,
            (None, None) => GENERAL.to_string(),
        };
        if g.max_tokens == Some(0) {
            return Err(format!("{at}.max_tokens: must be at least 1"));
        }
        Ok(ReviewSpec {
            agent: g.agent.clone(),
            instructions,
            preset,
            max_tokens: g.max_tokens,
        })
    }

    /// Parses `omk.toml` (shown as `path`) as `read` finds it, or detects.
    fn parse(path: PathBuf, read: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let Some(text) = read(FILE_NAME) else {
            return Ok(Self::detected(&read));
        };
        let bad = |reason: String| Error::Config {
            file: path.clone(),
            reason,
        };
        let file: File =
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        let mut gates = Vec::new();
        for (i, g) in file.gate.into_iter().enumerate() {
            let at = format!("gate[{i}] (`{}`)", g.name);
            if g.name.trim().is_empty() {
                return Err(bad(format!("{at}.name: empty")));
            }
            if gates.iter().any(|x: &GateSpec| x.name == g.name) {
                return Err(bad(format!("{at}.name: duplicate gate name")));
            }
            let timeout = match &g.timeout {
                Some(t) => parse_duration(t).map_err(|e| bad(format!("{at}.timeout: {e}")))?,
                None => DEFAULT_GATE_TIMEOUT,
            };
            let review = match g.kind.as_deref() {
                None | Some("command") => {
                    let reviews_only = [
                        ("agent", g.agent.is_some()),
                        ("instructions", g.instructions.is_some()),
                        ("preset", g.preset.is_some()),
                        ("max_tokens", g.max_tokens.is_some()),
                    ];
                    if let Some((field, _)) = reviews_only.iter().find(|(_, set)| *set) {
                        return Err(bad(format!(
                            "{at}.{field}: only a review gate takes it; add kind = \"review\""
                        )));
                    }
                    None
                }
                Some("review") => Some(Self::review(&g, &at, &read).map_err(bad)?),
                Some(other) => {
                    return Err(bad(format!(
                        "{at}.kind: `{other}` is not a kind of gate; use \"command\" or \"review\""
                    )))
                }
            };
            let command = match (&review, g.command) {
                (Some(_), Some(_)) => {
                    return Err(bad(format!(
                        "{at}.command: a review gate runs an agent, not a command; remove it"
                    )))
                }
                (Some(r), None) => format!(
                    "review by {}",
                    r.agent.as_deref().unwrap_or("the goal's agent")
                ),
                (None, Some(c)) if !c.trim().is_empty() => c,
                (None, _) => return Err(bad(format!("{at}.command: empty or missing"))),
            };
            let allow_hosts = crate::sandbox::egress::AllowList::parse(&g.allow_hosts)
                .map_err(|e| bad(format!("{at}.allow_hosts: {}", e.join("; "))))?;
            gates.push(GateSpec {
                allow_hosts,
                name: g.name,
                command,
                timeout,
                scope: g.scope,
                writable: g.writable,
                env: g.env,
                cpus: match g.cpus {
                    Some(0) => return Err(bad(format!("{at}.cpus: must be at least 1"))),
                    // A reviewer waits on its model, not on the cores.
                    None if review.is_some() => Some(1),
                    n => n,
                },
                review,
            });
        }
        let detected = Self::detected(&read);
        let (gates, gates_source) = if gates.is_empty() {
            (detected.gates, detected.gates_source)
        } else {
            (gates, GatesSource::Configured(path.clone()))
        };
        let slice_timeout = match file.run.slice_timeout {
            Some(t) => parse_duration(&t).map_err(|e| bad(format!("run.slice_timeout: {e}")))?,
            None => DEFAULT_SLICE_TIMEOUT,
        };
        let inactivity_timeout = match file.run.inactivity_timeout {
            Some(t) => {
                parse_duration(&t).map_err(|e| bad(format!("run.inactivity_timeout: {e}")))?
            }
            None => DEFAULT_INACTIVITY_TIMEOUT,
        };
        let max_attempts = file.run.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(bad("run.max_attempts: must be at least 1".into()));
        }
        let log_limit = match &file.run.log_limit {
            Some(t) => parse_size(t).map_err(|e| bad(format!("run.log_limit: {e}")))?,
            None => crate::capture::DEFAULT_LIMIT,
        };
        // The model is `[run] model`, else the Kimi CLI's `KIMI_MODEL_NAME`,
        // else the only model with a price.
        let model = file
            .run
            .model
            .or_else(|| std::env::var("KIMI_MODEL_NAME").ok());
        let price = match model {
            Some(m) => file.price.iter().find(|p| p.model == m).cloned(),
            None if file.price.len() == 1 => file.price.first().cloned(),
            None => None,
        };
        for dir in &file.sparse.include {
            if dir.starts_with('/')
                || dir
                    .split('/')
                    .any(|p| p == ".." || p.contains(['*', '?', '[']))
            {
                return Err(bad(format!(
                    "sparse.include: `{dir}` is not a directory of the repository (relative, no `..`, no globs, e.g. \"build\")"
                )));
            }
        }
        for name in &file.pool.cache {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
            if !valid {
                return Err(bad(format!(
                    "pool.cache: `{name}` is not an environment variable name (letters, digits and _, e.g. CARGO_TARGET_DIR)"
                )));
            }
        }
        for pattern in &file.pool.keep {
            if pattern.trim().is_empty()
                || pattern.starts_with('!')
                || pattern.split('/').any(|c| c == "..")
            {
                return Err(bad(format!(
                    "pool.keep: `{pattern}` is not a path pattern inside the worktree (e.g. \"target\" or \"**/__pycache__\")"
                )));
            }
        }
        Ok(Config {
            gates,
            gates_source,
            slice_timeout,
            max_attempts,
            inactivity_timeout,
            log_limit,
            deny: file.policy.deny,
            price,
            sandbox_writable: file.sandbox.writable,
            sandbox_env: file.sandbox.env,
            sandbox_readable: file.sandbox.readable,
            network: crate::sandbox::NetworkSettings {
                open: match file.sandbox.network.as_deref() {
                    None | Some("isolated") => false,
                    Some("open") => true,
                    Some(other) => {
                        return Err(bad(format!(
                            "sandbox.network: `{other}` is not a network; use \"isolated\" (the default: out only to allow_hosts) or \"open\" (omk's own network)"
                        )))
                    }
                },
                allow: crate::sandbox::egress::AllowList::parse(&file.sandbox.allow_hosts)
                    .map_err(|e| bad(format!("sandbox.allow_hosts: {}", e.join("; "))))?,
            },
            slot_cache: file.pool.cache,
            slot_keep: file.pool.keep,
            gate_cpus: match file.run.gate_cpus {
                Some(0) => return Err(bad("run.gate_cpus: must be at least 1".into())),
                n => n,
            },
            sparse_include: file.sparse.include,
            commit_author: match file.commit.author {
                Some(a) if crate::git::parse_author(&a).is_none() => {
                    return Err(bad(format!(
                        "commit.author: `{a}` is not `Name <email>` (e.g. \"Release Bot <bot@example.com>\")"
                    )))
                }
                a => a,
            },
            executor: match file.executor.kind.as_deref() {
                None | Some("local") => crate::executor::Executor::Local,
                Some("slurm") => crate::executor::Executor::Slurm(file.executor.slurm),
                Some(other) => {
                    return Err(bad(format!(
                        "executor.kind: `{other}` is not an executor; use \"local\" or \"slurm\""
                    )))
                }
            },
        })
    }

    fn detected(read: &impl Fn(&str) -> Option<String>) -> Config {
        let candidates: [(&str, &str); 5] = [
            ("Cargo.toml", "cargo test"),
            ("package.json", "npm test"),
            ("go.mod", "go test ./..."),
            ("pyproject.toml", "python3 -m pytest"),
            ("Makefile", "make test"),
        ];
        let found = candidates.iter().find(|(file, _)| match *file {
            // Only a Makefile with a `test` target counts.
            "Makefile" => read(file).is_some_and(|t| t.lines().any(|l| l.starts_with("test:"))),
            _ => read(file).is_some(),
        });
        let (gates, gates_source) = match found {
            Some((file, command)) => (
                vec![GateSpec {
                    allow_hosts: Default::default(),
                    name: "test".into(),
                    command: command.to_string(),
                    timeout: DEFAULT_GATE_TIMEOUT,
                    scope: GateScope::Both,
                    writable: vec![],
                    env: vec![],
                    // pytest runs on one core; the others spread over all
                    // (or cannot be told), so they run alone.
                    cpus: command.contains("pytest").then_some(1),
                    review: None,
                }],
                GatesSource::Detected(file),
            ),
            None => (vec![], GatesSource::None),
        };
        Config {
            gates,
            gates_source,
            slice_timeout: DEFAULT_SLICE_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            log_limit: crate::capture::DEFAULT_LIMIT,
            deny: vec![],
            price: None,
            sandbox_writable: vec![],
            sandbox_env: vec![],
            sandbox_readable: vec![],
            network: Default::default(),
            slot_cache: vec![],
            slot_keep: vec![],
            gate_cpus: None,
            executor: Default::default(),
            sparse_include: vec![],
            commit_author: None,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_gates_win_over_detection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[run]\nmax_attempts = 3\n[[gate]]\nname = \"lint\"\ncommand = \"true\"\ntimeout = \"5s\"\nscope = \"slice\"\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.gates.len(), 1);
        assert_eq!(c.gates[0].timeout, Duration::from_secs(5));
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.integration_gates().count(), 0);
    }

    #[test]
    fn prices_apply_to_the_chosen_model() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[run]\nmodel = \"k2\"\n[[price]]\nmodel = \"k1\"\ninput_per_million = 1.0\noutput_per_million = 1.0\n[[price]]\nmodel = \"k2\"\ninput_per_million = 0.5\noutput_per_million = 2.0\n",
        )
        .unwrap();
        let price = Config::load(dir.path()).unwrap().price.unwrap();
        assert_eq!(price.model, "k2");
        assert!((price.usd(1_000_000, 500_000) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn detection_uses_build_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().gates_source,
            GatesSource::None
        );
        std::fs::write(dir.path().join("go.mod"), "module x").unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.gates[0].command, "go test ./...");
    }

    #[test]
    fn bad_config_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        for (toml, field) in [
            (
                "[[gate]]\nname = \"t\"\ncommand = \"true\"\ntimeout = \"soon\"\n",
                "gate[0] (`t`).timeout",
            ),
            (
                "[pool]\ncache = [\"target dir\"]\n",
                "pool.cache: `target dir`",
            ),
            (
                "[sparse]\ninclude = [\"../up\"]\n",
                "sparse.include: `../up`",
            ),
        ] {
            std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn a_review_gate_reads_its_instructions_from_a_file_or_takes_the_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/review.md"), "Check the units.\n").unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[[gate]]\nname = \"test\"\ncommand = \"true\"\n\
             [[gate]]\nname = \"review\"\nkind = \"review\"\ninstructions = \"docs/review.md\"\n\
             [[gate]]\nname = \"security\"\nkind = \"review\"\npreset = \"security\"\ninstructions = \"No new crates.\"\nmax_tokens = 5000\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert!(c.gates[0].review.is_none());
        let review = c.gates[1].review.as_ref().unwrap();
        assert_eq!(review.instructions, "Check the units.\n");
        assert_eq!(review.agent, None, "the goal's agent, filled in by the run");
        assert_eq!(c.gates[1].cpus, Some(1), "a reviewer waits on its model");
        let security = c.gates[2].review.as_ref().unwrap();
        assert!(security.instructions.contains("secrets in code"));
        assert!(security.instructions.ends_with("No new crates."));
        assert_eq!(security.max_tokens, Some(5000));

        std::fs::write(
            dir.path().join(FILE_NAME),
            "[[gate]]\nname = \"t\"\ncommand = \"true\"\ninstructions = \"x\"\n",
        )
        .unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("gate[0] (`t`).instructions: only a review gate takes it"),
            "{err}"
        );
    }

    #[test]
    fn the_executor_is_local_unless_slurm_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "[run]\nmax_attempts = 2\n").unwrap();
        assert!(Config::load(dir.path()).unwrap().executor.is_local());
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[executor]\nkind = \"slurm\"\n[executor.slurm]\npartition = \"gpu\"\ncpus_per_slice = 4\nsbatch_args = [\"--qos=low\"]\n",
        )
        .unwrap();
        match Config::load(dir.path()).unwrap().executor {
            crate::executor::Executor::Slurm(s) => {
                assert_eq!(s.partition.as_deref(), Some("gpu"));
                assert_eq!(s.cpus_per_slice, Some(4));
                assert_eq!(s.sbatch_args, ["--qos=low"]);
            }
            other => panic!("{other:?}"),
        }
        for (toml, said) in [
            (
                "[executor]\nkind = \"k8s\"\n",
                "executor.kind: `k8s` is not an executor",
            ),
            ("[executor.slurm]\nqueue = \"x\"\n", "unknown field `queue`"),
        ] {
            std::fs::write(dir.path().join(FILE_NAME), toml).unwrap();
            let err = Config::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(said), "{err}");
        }
    }
}
