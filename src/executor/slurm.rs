//! Slice attempts as Slurm batch jobs.
//!
//! omk schedules nothing itself: each attempt is one `sbatch` job running
//! `omk worker <job dir>` (see [`super::worker`]), named
//! `omk-<goal>-<slice>-a<attempt>` — a name the event log already implies,
//! so a resumed goal can find its jobs — watched by the goal's one
//! [`Watcher`] (every job at once) and cancelled with `scancel` (SIGTERM
//! first, so the worker stops its agent). Nothing secret goes on the
//! command line or into the job's environment, which `scontrol` shows: the
//! agent's environment travels in the job directory, readable by its owner
//! only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use super::watch::Watcher;
use super::worker::{self, Job, JobDir};
use crate::git::Repo;
use crate::{Error, Result};

/// `[executor.slurm]` in `omk.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `--partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--cpus-per-task` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_slice: Option<u32>,
    /// `--mem`, as Slurm writes it (`4G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_per_slice: Option<String>,
    /// `--time`, as Slurm writes it (`1:00:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<String>,
    /// More `sbatch` arguments, each one word.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
    /// A directory every node sees, for the job directories (default: the
    /// goal's own log directories, which suits a cluster whose nodes share
    /// the driving machine's file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_dir: Option<PathBuf>,
    /// The `omk` binary on the nodes (default: this one's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omk: Option<PathBuf>,
}

/// The name of an attempt's job: chosen before submission, and implied by
/// the event log (the attempt's `slice_started`).
pub fn job_name(goal: &str, slice: &str, attempt: u32) -> String {
    format!("omk-{goal}-{slice}-a{attempt}")
}

/// Where a goal's jobs are handed over: `shared_dir/<goal>`, else the
/// goal's own log directory `logs`.
pub fn goal_dir(settings: &Settings, goal: &str, logs: &Path) -> PathBuf {
    match &settings.shared_dir {
        Some(shared) => shared.join(goal),
        None => logs.to_path_buf(),
    }
}

/// Where an attempt's job directory is, in its goal's directory `root`
/// (beside the attempt's logs, when that is the goal's log directory).
pub fn job_dir(root: &Path, slice: &str, attempt: u32) -> PathBuf {
    root.join(slice)
        .join(format!("attempt-{attempt}"))
        .join("job")
}

/// The bundle of the goal's base every job of the goal starts from, in
/// its goal's directory `root`: written once, so each job carries only
/// what came after the base.
pub fn base_bundle(root: &Path) -> PathBuf {
    root.join("base.bundle")
}

/// What became of an attempt's job.
pub struct Finished {
    /// The worker's report, when it wrote one that its signature binds to
    /// the attempt; `Err` says why a report there is not believed.
    pub report: Option<std::result::Result<worker::Report, String>>,
    /// The job's id and last state, for the record.
    pub job_id: String,
    pub state: String,
}

/// Submits `job` as a batch job, waits for it (cancelling it when `cancel`
/// fires), and returns what it left. The repository's objects for the
/// attempt's start go to the job as a bundle; the result comes back the
/// same way, into `refs/omk/<goal>/<slice>/attempt-<n>`.
pub async fn run(
    settings: &Settings,
    watcher: &Watcher,
    repo: &Repo,
    job: &Job,
    dir: &JobDir,
    cancel: &CancellationToken,
) -> Result<Finished> {
    let name = job_name(&job.goal_id, &job.slice, job.attempt);
    // An attempt a driver that died had submitted is taken up where it is,
    // by the job id it recorded, never by a name anyone can give a job:
    // its job still running (and the user's own) is waited for, its
    // finished job's report read.
    let recorded = std::fs::read_to_string(dir.id())
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let job_id = match recorded {
        Some(id) if active_own(&id).await => id,
        Some(id) if dir.report().exists() => {
            return Ok(Finished {
                report: read_report(dir),
                job_id: id,
                state: "COMPLETED".into(),
            })
        }
        _ => {
            // Bundling and sbatch block: off the async threads.
            let (settings, repo, job, dir) = (
                settings.clone(),
                repo.clone(),
                job.clone(),
                JobDir(dir.0.clone()),
            );
            crate::actors::blocking(move || {
                write_job(&repo, &job, &dir)?;
                let id = submit(&settings, &name, &dir)?;
                crate::files::write_atomic(&dir.id(), id.as_bytes())?;
                Ok(id)
            })
            .await?
        }
    };
    let state = {
        let ended = watcher.ended(&job_id, dir.report());
        tokio::pin!(ended);
        tokio::select! {
            how = &mut ended => how,
            _ = cancel.cancelled() => {
                // SIGTERM first: the worker stops its agent and reports.
                scancel(&job_id, Some("TERM")).await;
                tokio::select! {
                    how = &mut ended => how,
                    _ = tokio::time::sleep(CANCEL_GRACE) => {
                        scancel(&job_id, None).await;
                        ended.await
                    }
                }
            }
        }
    };
    Ok(Finished {
        report: read_report(dir),
        job_id,
        state,
    })
}

/// Whether a job that ended in `state` was stopped by the scheduler or its
/// node (scancel, preemption, its time limit, a node or memory failure)
/// rather than ending by itself: whatever its agent did then says nothing
/// about the slice's work.
pub fn stopped_by_scheduler(state: &str) -> bool {
    [
        "CANCELLED",
        "PREEMPTED",
        "NODE_FAIL",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
    ]
    .iter()
    .any(|s| state.starts_with(s))
}

/// The worker's report in `dir`, if it wrote one: believed only when it
/// carries the worker's signature under the key of the job omk wrote.
fn read_report(dir: &JobDir) -> Option<std::result::Result<worker::Report, String>> {
    let bytes = std::fs::read(dir.report()).ok()?;
    let key = std::fs::read(dir.job())
        .ok()
        .and_then(|j| serde_json::from_slice::<Job>(&j).ok())
        .map(|j| j.report_key)
        .unwrap_or_default();
    let mac = std::fs::read_to_string(dir.report_mac()).unwrap_or_default();
    if !worker::verify(&key, &bytes, &mac) {
        return Some(Err(format!(
            "its report {} does not carry the worker's signature: it was written or changed by something else",
            dir.report().display()
        )));
    }
    Some(serde_json::from_slice(&bytes).map_err(|e| format!("its report cannot be read: {e}")))
}

/// Whether job `id` is pending or running, and the user's own.
async fn active_own(id: &str) -> bool {
    let out = tokio::process::Command::new("squeue")
        .args(["--me", "-h", "-o", "%i", "-j", id])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    out.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == id)
    })
}

/// How often `cancel_goal` reads whether a cancelled job is gone.
const POLL: Duration = Duration::from_millis(250);
/// How long a cancelled job has to stop on SIGTERM before it is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Writes the job directory: the job (owner-only: it holds the agent's
/// environment) and the commits it starts from.
fn write_job(repo: &Repo, job: &Job, dir: &JobDir) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0)
        .and_then(|_| std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| Error::io(format!("creating {}", dir.0.display()), e))?;
    let bytes = serde_json::to_vec_pretty(job).map_err(|e| Error::json("writing a job", e))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.job())
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .map_err(|e| Error::io(format!("writing {}", dir.job().display()), e))?;
    let branch = format!("refs/heads/{}", job.branch);
    if !job.base_bundle.exists() {
        // Whichever job comes first writes it (the branch holds the base);
        // one written at the same time by another is as good.
        let tmp =
            job.base_bundle
                .with_extension(format!("{}.{}.tmp", job.slice, std::process::id()));
        repo.bundle_create(&tmp, &[&branch])?;
        std::fs::rename(&tmp, &job.base_bundle)
            .map_err(|e| Error::io(format!("writing {}", job.base_bundle.display()), e))?;
    }
    // Only what the attempt starts from beyond the base, if anything.
    if job.work_from != job.base_commit {
        repo.bundle_create(&dir.input(), &[&branch, &format!("^{}", job.base_commit)])?;
    }
    Ok(())
}

/// `sbatch`s the worker for the job in `dir`; returns the job id.
fn submit(settings: &Settings, name: &str, dir: &JobDir) -> Result<String> {
    let omk = match &settings.omk {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| Error::io("finding omk's own binary", e))?,
    };
    let script = dir.0.join("job.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} worker {}\n",
            shell_quote(&omk.to_string_lossy()),
            shell_quote(&dir.0.to_string_lossy())
        ),
    )
    .map_err(|e| Error::io(format!("writing {}", script.display()), e))?;
    let mut cmd = std::process::Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--job-name={name}"))
        .arg(format!("--output={}", dir.output().display()))
        .arg(format!("--chdir={}", dir.0.display()))
        // Only what the worker needs to find git and a temp dir; the
        // agent's environment is in the job file.
        .arg("--export=PATH,HOME,LANG,TMPDIR")
        .arg(format!(
            "--cpus-per-task={}",
            settings.cpus_per_slice.unwrap_or(1)
        ));
    for (flag, value) in [
        ("--partition", &settings.partition),
        ("--account", &settings.account),
        ("--mem", &settings.mem_per_slice),
        ("--time", &settings.time_limit),
    ] {
        if let Some(v) = value {
            cmd.arg(format!("{flag}={v}"));
        }
    }
    cmd.args(&settings.sbatch_args).arg(&script);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("running sbatch (is Slurm installed and on PATH?)", e))?;
    if !out.status.success() {
        return Err(Error::Executor(format!(
            "sbatch refused job {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let id = String::from_utf8_lossy(&out.stdout);
    let id = id.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(Error::Executor(format!("sbatch gave job {name} no id")));
    }
    Ok(id)
}

/// Cancels the jobs of the goal whose job directories are under `root`
/// that Slurm still has: the ids omk recorded at submission, the user's
/// own; waits until they are gone; returns how many there were.
pub async fn cancel_goal(root: &Path) -> usize {
    let mut ids = Vec::new();
    for slice in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for attempt in std::fs::read_dir(slice.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = JobDir(attempt.path().join("job"));
            if let Ok(id) = std::fs::read_to_string(dir.id()) {
                ids.push(id.trim().to_string());
            }
        }
    }
    let mut cancelled = 0;
    for id in ids.iter().filter(|id| !id.is_empty()) {
        if !active_own(id).await {
            continue;
        }
        cancelled += 1;
        scancel(id, None).await;
        for _ in 0..120 {
            if !active_own(id).await {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    cancelled
}

/// `scancel`s job `id`, with `signal` (else the default: kill).
pub async fn scancel(id: &str, signal: Option<&str>) {
    let mut cmd = tokio::process::Command::new("scancel");
    if let Some(s) = signal {
        cmd.arg("--full").arg(format!("--signal={s}"));
    }
    let _ = cmd
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

/// Whether `--executor slurm` can work here, in a line for `omk doctor`:
/// the commands on `PATH`, what the controller says of its nodes, and
/// whether the configured shared directory (`settings`) can hold jobs.
pub fn describe(settings: Option<&Settings>) -> String {
    let mut line = commands();
    if let Some(dir) = settings.and_then(|s| s.shared_dir.as_ref()) {
        let probe = dir.join(format!(".omk-doctor-{}", std::process::id()));
        let writable = std::fs::create_dir_all(dir).is_ok() && std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        line += &match writable {
            true => format!("; shared_dir {} is writable", dir.display()),
            false => format!(
                "; shared_dir {} is NOT writable here: jobs cannot be handed to the nodes",
                dir.display()
            ),
        };
    }
    line
}

/// The Slurm commands, and what the controller says.
fn commands() -> String {
    let missing: Vec<&str> = ["sbatch", "scontrol", "scancel", "sinfo"]
        .into_iter()
        .filter(|p| !crate::agent::find_program(p))
        .collect();
    if !missing.is_empty() {
        return format!(
            "{} not on PATH (needed only for --executor slurm)",
            missing.join(", ")
        );
    }
    let out = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%P %a %D %t"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let parts = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    match w.as_slice() {
                        [p, a, n, t] => format!("partition {p} {a}, {n} node(s) {t}"),
                        _ => l.to_string(),
                    }
                })
                .collect::<Vec<_>>();
            format!("the controller answers: {}", parts.join("; "))
        }
        Ok(o) => format!(
            "the commands are here, but the controller does not answer: {}",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("sinfo failed")
        ),
        Err(e) => format!("sinfo could not run: {e}"),
    }
}

/// `text` as one word for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job directory as the driver writes it (`job.json` with its key),
    /// with a report the worker signed.
    fn signed(dir: &Path) -> (JobDir, Vec<u8>) {
        let dir = JobDir(dir.to_path_buf());
        std::fs::create_dir_all(&dir.0).unwrap();
        let key = worker::new_report_key();
        let job = serde_json::json!({
            "goal_id": "g", "slice": "s", "attempt": 1, "agent": "exec:true", "prompt": "p",
            "write_scope": ["**"], "branch": "b", "start_commit": "c", "work_from": "c",
            "base_commit": "c", "base_bundle": "/x", "commit_message": "m", "timeout_ms": 1,
            "inactivity_ms": 1, "deny": [], "writable": [], "env": [], "feedback": null,
            "resume_session": null, "report_key": key,
        });
        std::fs::write(dir.job(), job.to_string()).unwrap();
        let report = serde_json::json!({
            "agent": {"spec": "exec:true", "exit": "ok", "exit_code": 0, "tokens_in": null,
                      "tokens_out": null, "usd": null, "session_id": null, "duration_ms": 1,
                      "log": "/x"},
            "commit": null, "tree": null, "gates": null, "node": "n",
        });
        let bytes = serde_json::to_vec_pretty(&report).unwrap();
        std::fs::write(dir.report_mac(), worker::sign(&key, &bytes)).unwrap();
        std::fs::write(dir.report(), &bytes).unwrap();
        (dir, bytes)
    }

    #[test]
    fn only_a_report_the_worker_signed_is_believed() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, bytes) = signed(tmp.path());
        assert!(matches!(read_report(&dir), Some(Ok(_))));
        // Rewritten after the worker wrote it: gates said to have passed.
        let forged = String::from_utf8(bytes)
            .unwrap()
            .replace("\"n\"", "\"forged\"");
        std::fs::write(dir.report(), forged).unwrap();
        let why = read_report(&dir).unwrap().unwrap_err();
        assert!(
            why.contains("does not carry the worker's signature"),
            "{why}"
        );
        // No signature at all.
        std::fs::remove_file(dir.report_mac()).unwrap();
        assert!(matches!(read_report(&dir), Some(Err(_))));
    }
}
