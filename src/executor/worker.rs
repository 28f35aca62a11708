//! `omk worker`: one attempt of one slice, on a cluster node.
//!
//! The coordinator leaves a job directory on storage the node shares: the
//! job (`job.json`, readable by its owner only: it holds the environment
//! the agent may see) and the commits the attempt starts from
//! (`in.bundle`). The worker makes a scratch repository of its own on the
//! node, checks the start out as a worktree of it, runs the agent there
//! under the same sandbox as a local attempt, commits what it left, and
//! writes the commit back as `result.bundle` with its report
//! (`report.json`). It writes nothing else the coordinator reads: the
//! coordinator checks the commit as it checks a local one, and records
//! every event itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::agent::{self, AgentSpec, Task};
use crate::git::Repo;
use crate::{Error, Result};

/// A new key for signing one attempt's report, in hex.
pub fn new_report_key() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The HMAC-SHA256 of `bytes` under the hex `key`, in hex.
pub fn sign(key: &str, bytes: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(bytes);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `mac` is the signature of `bytes` under `key`, compared in
/// constant time.
pub fn verify(key: &str, bytes: &[u8], mac: &str) -> bool {
    use hmac::Mac;
    let Some(tag) = (0..mac.trim().len() / 2)
        .map(|i| u8::from_str_radix(mac.trim().get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    m.update(bytes);
    !key.is_empty() && m.verify_slice(&tag).is_ok()
}

/// One attempt, as the coordinator hands it to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub goal_id: String,
    pub slice: String,
    pub attempt: u32,
    /// The `--agent` spec.
    pub agent: String,
    pub prompt: String,
    pub write_scope: Vec<String>,
    /// The slice's branch, as the bundle carries it.
    pub branch: String,
    /// What the attempt is judged against.
    pub start_commit: String,
    /// Where its worktree starts (the start, or a failed attempt's commit).
    pub work_from: String,
    /// The goal's base commit, and the bundle that carries it; `in.bundle`
    /// carries what `work_from` adds to it, when anything.
    pub base_commit: String,
    pub base_bundle: PathBuf,
    pub commit_message: String,
    pub timeout_ms: u64,
    pub inactivity_ms: u64,
    /// The approval policy's deny list.
    pub deny: Vec<String>,
    /// Directories the agent may write besides its tree and temp dir.
    pub writable: Vec<String>,
    /// Paths the agent and gates may read that the sandbox hides.
    #[serde(default)]
    pub readable: Vec<String>,
    /// The agent's network (its model's hosts included), and the gates'.
    #[serde(default)]
    pub agent_network: crate::sandbox::NetworkSettings,
    #[serde(default)]
    pub network: crate::sandbox::NetworkSettings,
    /// The environment the agent may see.
    pub env: Vec<(String, String)>,
    /// What the next attempt is told, when this one follows a failure.
    pub feedback: Option<String>,
    pub resume_session: Option<String>,
    /// The slice gates, run here on the commit (none: they run where the
    /// goal is driven).
    #[serde(default)]
    pub gates: Vec<crate::gate::GateSpec>,
    /// The variables gates may see (`[sandbox] env`), and the driving
    /// omk's environment they come from.
    #[serde(default)]
    pub gate_env_names: Vec<String>,
    #[serde(default)]
    pub gate_env: Vec<(String, String)>,
    /// The goal's setups (`[[setup]]`): run here, before the agent and
    /// before each gate, from a store of this job's own.
    #[serde(default)]
    pub setups: Vec<crate::setup::SetupSpec>,
    /// The key the worker signs its report with (hex): only the worker
    /// process reads it, never its agent, so a report the agent wrote or
    /// changed does not verify.
    #[serde(default)]
    pub report_key: String,
}

/// What a worker found: the agent's report and, when it changed
/// something, the commit it made (in `result.bundle`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub agent: agent::Report,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit's tree, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// The gates' results on that tree, in order up to the first failure;
    /// `None` when none ran here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<crate::gate::GateResult>>,
    /// Where it ran (the node's host name).
    pub node: String,
}

/// The files of a job directory.
pub struct JobDir(pub PathBuf);

impl JobDir {
    pub fn job(&self) -> PathBuf {
        self.0.join("job.json")
    }
    pub fn input(&self) -> PathBuf {
        self.0.join("in.bundle")
    }
    pub fn result(&self) -> PathBuf {
        self.0.join("result.bundle")
    }
    pub fn report(&self) -> PathBuf {
        self.0.join("report.json")
    }
    pub fn agent_log(&self) -> PathBuf {
        self.0.join("agent.log")
    }
    /// The id of the job the attempt was submitted as.
    pub fn id(&self) -> PathBuf {
        self.0.join("job.id")
    }
    /// The worker's signature of `report.json` (see [`sign`]).
    pub fn report_mac(&self) -> PathBuf {
        self.0.join("report.mac")
    }
    /// What the scheduler captured of the worker's own output.
    pub fn output(&self) -> PathBuf {
        self.0.join("worker.out")
    }
}

/// Where the bundles' branches are fetched to.
const INCOMING: &str = "refs/omk-in";

/// Runs the job in `dir` and writes its report there. SIGTERM (what the
/// scheduler sends a cancelled job) cancels the agent first.
pub async fn run(dir: &Path) -> Result<()> {
    let dir = JobDir(dir.to_path_buf());
    // The job's directory holds what only the worker may read.
    crate::sandbox::view::hide(&dir.0);
    let text = std::fs::read(dir.job())
        .map_err(|e| Error::io(format!("reading {}", dir.job().display()), e))?;
    let job: Job = serde_json::from_slice(&text).map_err(|e| Error::json("reading the job", e))?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                term.recv().await;
                cancel.cancel();
            }
        });
    }
    let scratch = std::env::temp_dir().join(format!(
        "omk-worker-{}-{}-a{}-{}",
        job.goal_id,
        job.slice,
        job.attempt,
        std::process::id()
    ));
    let result = attempt(&job, &dir, &scratch, &cancel).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = result?;
    let bytes =
        serde_json::to_vec_pretty(&report).map_err(|e| Error::json("writing the report", e))?;
    // The signature first: the report's arrival says the job is done.
    crate::files::write_atomic(&dir.report_mac(), sign(&job.report_key, &bytes).as_bytes())?;
    crate::files::write_atomic(&dir.report(), &bytes)
}

async fn attempt(
    job: &Job,
    dir: &JobDir,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<Report> {
    let spec = AgentSpec::parse(&job.agent)?;
    let (tree, tmp) = (scratch.join("tree"), scratch.join("tmp"));
    // The repository's own directory is outside the tree the agent may
    // write, as a local slot's is.
    let repo = Repo::init(&scratch.join("repo"))?;
    repo.fetch_bundle(&job.base_bundle, &format!("refs/heads/*:{INCOMING}/base/*"))?;
    if dir.input().exists() {
        repo.fetch_bundle(
            &dir.input(),
            &format!("refs/heads/{}:{INCOMING}/start", job.branch),
        )?;
    }
    repo.prepare_worktree(&tree, Some(&job.branch), &job.work_from, None, &[])?;
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    let feedback = match &job.feedback {
        Some(text) => {
            let path = scratch.join("feedback.md");
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            Some(path)
        }
        None => None,
    };
    let task = Task {
        goal_id: job.goal_id.clone(),
        slice_id: job.slice.clone(),
        prompt: job.prompt.clone(),
        worktree: tree.clone(),
        write_scope: job.write_scope.clone(),
        attempt: job.attempt,
        log: dir.agent_log(),
        timeout: Duration::from_millis(job.timeout_ms),
        inactivity: Duration::from_millis(job.inactivity_ms),
        policy: agent::policy::Policy::new(&tree, &job.deny),
        answer: None,
        planning: false,
        inherit: with_job(&job.env),
        confinement: crate::sandbox::Confinement::new(
            [tree.clone(), tmp.clone()]
                .into_iter()
                .chain(crate::sandbox::writable_dirs(spec.is_kimi(), &job.writable))
                .collect(),
        )
        .reading(crate::sandbox::readable_dirs(&job.readable))
        .reading(feedback.clone())
        .on(crate::sandbox::Network::of(
            &job.agent_network,
            &Default::default(),
        )),
        tmp,
        feedback,
        resume_session: job.resume_session.clone(),
    };
    let bench = gate_bench(job, &tree, scratch);
    let setups = (!job.setups.is_empty()).then(|| crate::setup::Setups {
        specs: job.setups.clone(),
        store: crate::setup::Store::new(scratch.join("setup")),
        downloads: crate::setup::Store::new(scratch.join("downloads")),
        // Nothing outlives the job: no run keeps what it downloaded.
        base_tree: String::new(),
    });
    if let Some(setups) = &setups {
        // The agent starts with the dependencies, as it does in a slot; a
        // setup that fails is for its gates to say.
        let from = repo.tree_of(&job.work_from)?;
        let ready = crate::setup::ensure_all(
            setups,
            &repo,
            &bench,
            &job.work_from,
            &from,
            &dir.0,
            cancel,
            |_| {},
        )
        .await;
        if let Err(failed) = ready {
            tracing::warn!(setup = %failed.name, outcome = %failed.outcome, "setup failed before the agent");
        }
    }
    let (updates, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let report = agent::run(&spec, &task, updates, cancel).await?;
    let _ = drain.await;
    let node = hostname();
    let mut done = Report {
        agent: report,
        commit: None,
        tree: None,
        gates: None,
        node,
    };
    if !done.agent.ok() {
        return Ok(done);
    }
    let committed =
        repo.commit_worktree(&tree, &job.branch, &job.start_commit, &job.commit_message)?;
    let Some(committed) = committed else {
        return Ok(done);
    };
    let not_before = format!("^{}", job.work_from);
    let branch = format!("refs/heads/{}", job.branch);
    repo.bundle_create(&dir.result(), &[&branch, &not_before])?;
    if !job.gates.is_empty() {
        let gated = gates(&repo, job, dir, &bench, setups.as_ref(), &committed, cancel).await?;
        done.gates = Some(gated);
    }
    done.commit = Some(committed.commit);
    done.tree = Some(committed.tree);
    Ok(done)
}

/// What the job's gates (and setups) see and may write in `tree`.
fn gate_bench(job: &Job, tree: &Path, scratch: &Path) -> crate::gate::Bench {
    crate::gate::Bench {
        goal_id: job.goal_id.clone(),
        dir: tree.to_path_buf(),
        tmp: scratch.join("gate-tmp"),
        caches: vec![],
        env: job
            .gate_env_names
            .iter()
            .cloned()
            .chain(["OMK_JOB".to_string()])
            .collect(),
        writable: job.writable.clone(),
        readable: job.readable.clone(),
        network: job.network.clone(),
        inherit: Some(with_job(&job.gate_env)),
        installs: job.setups.iter().map(|s| s.fingerprint()).collect(),
    }
}

/// Runs the job's gates on `committed`, each on exactly its tree (the
/// checkout is reset to it and checked first, and again after a gate that
/// changed it) with the setups' outputs made afresh, in order up to the
/// first failure.
async fn gates(
    repo: &Repo,
    job: &Job,
    dir: &JobDir,
    bench: &crate::gate::Bench,
    setups: Option<&crate::setup::Setups>,
    committed: &crate::git::Committed,
    cancel: &CancellationToken,
) -> Result<Vec<crate::gate::GateResult>> {
    let reset = || -> Result<bool> {
        repo.prepare_worktree(&bench.dir, None, &committed.commit, None, &[])?;
        let _ = std::fs::remove_dir_all(&bench.tmp);
        std::fs::create_dir_all(&bench.tmp)
            .map_err(|e| Error::io(format!("creating {}", bench.tmp.display()), e))?;
        Ok(files_tree(repo, &bench.dir)? == committed.tree)
    };
    let mut results = Vec::new();
    let mut ready = false;
    for spec in &job.gates {
        if !ready && !reset()? {
            return Err(Error::Worktree(format!(
                "the checkout of {} does not hold its tree",
                committed.commit
            )));
        }
        let mut keys = std::collections::BTreeMap::new();
        if let Some(setups) = setups {
            let (commit, tree) = (&committed.commit, &committed.tree);
            match crate::setup::ensure_all(
                setups,
                repo,
                bench,
                commit,
                tree,
                &dir.0,
                cancel,
                |_| {},
            )
            .await
            {
                Ok(made) => keys = made,
                Err(failed) => {
                    results.push(crate::setup::failed_gate(spec, failed));
                    break;
                }
            }
        }
        let log = dir.0.join(format!("gate-{}.log", spec.name));
        let mut result = crate::gate::run(spec, bench, &committed.tree, log, cancel).await?;
        result.setups = keys;
        ready = files_tree(repo, &bench.dir)? == committed.tree;
        result.changed_tree = !ready;
        let passed = result.passed;
        results.push(result);
        if !passed {
            break;
        }
    }
    Ok(results)
}

/// The tree the files of the worktree at `dir` make.
fn files_tree(repo: &Repo, dir: &Path) -> Result<String> {
    repo.slot(dir)?
        .ok_or_else(|| Error::Worktree(format!("{} is no worktree of the job's", dir.display())))?
        .files_tree()
}

/// `env` with `OMK_JOB`, the job the worker runs in, which marks its
/// agent's and gates' processes as a cluster job's: a driver resumed on
/// the same machine leaves them to their worker.
fn with_job(env: &[(String, String)]) -> Vec<(String, String)> {
    let id = std::env::var("SLURM_JOB_ID").unwrap_or_else(|_| std::process::id().to_string());
    env.iter()
        .filter(|(k, _)| k != "OMK_JOB")
        .cloned()
        .chain([("OMK_JOB".to_string(), id)])
        .collect()
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
