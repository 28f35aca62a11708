//! Agents: the processes that do a slice's work in its worktree.
//!
//! [`AgentSpec`] is what `--agent` names; [`run`] runs one attempt of one
//! slice and returns a [`Report`]. While it runs, a backend streams
//! [`Update`]s (its session id, token usage, every approval decision); the
//! slice actor records them as events. Every backend runs its agent as the
//! leader of its own process group, answers permission requests with the
//! slice's [`policy::Policy`], and stops through [`watch`]: on the goal's
//! cancel token, at the attempt's wall-clock timeout, or when the agent has
//! been silent for the inactivity timeout.

mod acp;
mod exec;
mod kimi;
mod outcome;
pub mod policy;
mod print;
mod wire;

use kimi::{retryable_text, start_kimi, step_tokens};
use outcome::report;
pub use outcome::{AgentExit, Report, Stop};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Which agent runs in each slice (`--agent SPEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSpec {
    /// `exec:<command>`: a shell command; exit 0 means it finished.
    Exec {
        /// The command, run by `sh -c` in the worktree.
        command: String,
    },
    /// `kimi` (`kimi acp`) or `acp:<command>`: an Agent Client Protocol agent.
    Acp {
        /// The command line that starts the agent.
        command: String,
        /// Whether this is the `kimi` default rather than `acp:…`.
        kimi: bool,
    },
    /// `kimi-wire`: the Python Kimi CLI's `--wire` JSON-RPC mode.
    KimiWire,
    /// `kimi-print`: `kimi --print --output-format stream-json`.
    KimiPrint,
}

/// The Kimi CLI binary: `$OMK_KIMI_BIN`, else `kimi` on `PATH`.
pub fn kimi_bin() -> String {
    std::env::var("OMK_KIMI_BIN")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "kimi".into())
}

impl AgentSpec {
    /// The network this agent's processes get under `settings`: the Kimi
    /// backends reach their model's hosts besides.
    pub fn network(&self, settings: &crate::sandbox::NetworkSettings) -> crate::sandbox::Network {
        crate::sandbox::Network::of(settings, &self.model_hosts())
    }

    /// The hosts this agent reaches for its model: a Kimi backend's
    /// configured endpoints; none for other agents, which name their own
    /// with `[sandbox] allow_hosts`.
    pub fn model_hosts(&self) -> crate::sandbox::egress::AllowList {
        match self.is_kimi() {
            true => kimi::model_hosts(),
            false => Default::default(),
        }
    }

    /// Whether this runs a Kimi CLI.
    pub fn is_kimi(&self) -> bool {
        matches!(
            self,
            AgentSpec::Acp { kimi: true, .. } | AgentSpec::KimiWire | AgentSpec::KimiPrint
        )
    }

    /// Parses an `--agent` value.
    pub fn parse(spec: &str) -> Result<AgentSpec> {
        let need = |what: &str| {
            Error::Usage(format!(
                "the agent spec `{what}` needs a command, e.g. `{what}./my-agent`"
            ))
        };
        if let Some(command) = spec.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(need("exec:"));
            }
            return Ok(AgentSpec::Exec {
                command: command.into(),
            });
        }
        if let Some(command) = spec.strip_prefix("acp:") {
            if command.trim().is_empty() {
                return Err(need("acp:"));
            }
            return Ok(AgentSpec::Acp {
                command: command.into(),
                kimi: false,
            });
        }
        match spec {
            "kimi" => Ok(AgentSpec::Acp {
                command: format!("{} acp", shell_quote(&kimi_bin())),
                kimi: true,
            }),
            "kimi-wire" => Ok(AgentSpec::KimiWire),
            "kimi-print" => Ok(AgentSpec::KimiPrint),
            other => Err(Error::Usage(format!(
                "--agent `{other}` is not an agent spec; use kimi, kimi-wire, kimi-print, acp:<command> or exec:<command>"
            ))),
        }
    }
}

impl AgentSpec {
    /// Fails when the program this spec runs cannot be found, before
    /// anything is made for it. An `exec:` command is the shell's to find.
    pub fn check_installed(&self) -> Result<()> {
        let program = match self {
            // The program an `exec:` command starts with, when it plainly
            // names one (not a builtin, an assignment or other shell syntax).
            AgentSpec::Exec { command } => match exec_program(command) {
                Some(program) => program,
                None => return Ok(()),
            },
            AgentSpec::Acp {
                kimi: false,
                command,
            } => acp::shell_words(command)?
                .into_iter()
                .next()
                .unwrap_or_default(),
            _ => kimi_bin(),
        };
        if find_program(&program) {
            return Ok(());
        }
        let hint = match self {
            AgentSpec::Exec { .. } => {
                "install it, or give its path; the command runs with `sh -c` in each slice's worktree".into()
            }
            AgentSpec::Acp { kimi: false, .. } => {
                "install it, or choose another agent (exec:<command> runs any command)".into()
            }
            _ => "install a Kimi CLI (`pip install kimi-cli`, or `npm install -g @moonshot-ai/kimi-code`), \
                  point OMK_KIMI_BIN at one, or choose another agent (exec:<command> runs any command)"
                .to_string(),
        };
        Err(Error::AgentMissing {
            spec: self.to_string(),
            program,
            hint,
        })
    }
}

/// Whether `program` names an executable file: a path, or a name on `PATH`.
/// The program an `exec:` command runs first, when its first word plainly
/// names one: not a shell keyword or builtin, an assignment, or syntax.
fn exec_program(command: &str) -> Option<String> {
    const SHELL: &[&str] = &[
        "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
        "in", "function", "select", "time", "!", "{", "}", "[", "[[", "cd", "echo", "exec", "exit",
        "export", "eval", "set", "unset", "true", "false", "test", "printf", "read", "return",
        "shift", "trap", "ulimit", "umask", "wait", "command", "type", ".", ":", "source", "alias",
        "local", "readonly", "builtin", "let", "declare", "pwd", "kill", "sleep",
    ];
    let first = command.split_whitespace().next()?;
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+'));
    (plain && !SHELL.contains(&first)).then(|| first.to_string())
}

pub(crate) fn find_program(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
        .unwrap_or(false)
}

impl std::fmt::Display for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentSpec::Exec { command } => write!(f, "exec:{command}"),
            AgentSpec::Acp { kimi: true, .. } => f.write_str("kimi"),
            AgentSpec::Acp { command, .. } => write!(f, "acp:{command}"),
            AgentSpec::KimiWire => f.write_str("kimi-wire"),
            AgentSpec::KimiPrint => f.write_str("kimi-print"),
        }
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// One attempt of one slice, as an agent sees it.
#[derive(Debug, Clone)]
pub struct Task {
    /// The goal's id.
    pub goal_id: String,
    /// The slice's id.
    pub slice_id: String,
    /// The full prompt.
    pub prompt: String,
    /// The worktree the agent works in (absolute).
    pub worktree: PathBuf,
    /// The slice's write scope.
    pub write_scope: Vec<String>,
    /// 1 for the first try.
    pub attempt: u32,
    /// Where the agent's output or transcript is captured.
    pub log: PathBuf,
    /// How long the attempt may take.
    pub timeout: Duration,
    /// How long the agent may stay silent.
    pub inactivity: Duration,
    /// What the agent may do unasked.
    pub policy: policy::Policy,
    /// Where an `exec:` agent's stdout goes, when its answer is wanted (planning).
    pub answer: Option<PathBuf>,
    /// Whether this is a planning run (`OMK_PLANNING=1`).
    pub planning: bool,
    /// The variables of omk's environment the agent may see (see [`allowed_env`]).
    pub inherit: Vec<(String, String)>,
    /// Where the agent may write besides nothing (its worktree and temp dir
    /// among them).
    pub confinement: crate::sandbox::Confinement,
    /// The agent's private temp directory (`TMPDIR`).
    pub tmp: PathBuf,
    /// What went wrong in the last attempt (`OMK_FEEDBACK`), from the second on.
    pub feedback: Option<PathBuf>,
    /// The session of an interrupted attempt, for backends that can resume
    /// one (`kimi-wire`, `kimi-print`); others start afresh.
    pub resume_session: Option<String>,
}

/// The part of omk's environment agents may see, plus the names in `extra`
/// (see [`crate::sandbox::env`]).
pub fn allowed_env(extra: &[String]) -> Vec<(String, String)> {
    crate::sandbox::env::for_agent(std::env::vars(), extra)
}

/// The part of omk's environment gates may see, plus the names in `extra`:
/// the agents' allow-list without the backends' keys.
pub fn gate_env(extra: &[String]) -> Vec<(String, String)> {
    gate_env_of(std::env::vars(), extra)
}

/// [`gate_env`] of the environment `vars` instead of omk's own (a cluster
/// worker's gates see the driving omk's).
pub fn gate_env_of(
    vars: impl Iterator<Item = (String, String)>,
    extra: &[String],
) -> Vec<(String, String)> {
    crate::sandbox::env::for_gate(vars, extra)
}

impl Task {
    /// A command that runs `program` for this task, in its sandbox; `line`
    /// is the command as the user gave it, whose programs stay readable.
    pub fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        line: &str,
    ) -> Result<tokio::process::Command> {
        self.confinement.clone().running(line).command(program)
    }

    /// The `OMK_*` variables every agent process gets (see the contract).
    pub fn env(&self) -> Vec<(String, String)> {
        let own = [
            ("OMK_GOAL_ID", self.goal_id.clone()),
            ("OMK_SLICE_ID", self.slice_id.clone()),
            ("OMK_PROMPT", self.prompt.clone()),
            ("OMK_WORKTREE", self.worktree.display().to_string()),
            ("OMK_WRITE_SCOPE", self.write_scope.join("\n")),
            ("OMK_ATTEMPT", self.attempt.to_string()),
            ("TMPDIR", self.tmp.display().to_string()),
        ];
        let planning = self.planning.then(|| ("OMK_PLANNING", "1".to_string()));
        let feedback = self
            .feedback
            .as_ref()
            .map(|p| ("OMK_FEEDBACK", p.display().to_string()));
        self.inherit
            .iter()
            .cloned()
            .chain(
                own.into_iter()
                    .chain(planning)
                    .chain(feedback)
                    .map(|(k, v)| (k.to_string(), v)),
            )
            .collect()
    }
}

/// Something a running agent reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// The agent's own session id, for resuming it.
    Session {
        /// The id.
        id: String,
    },
    /// Tokens spent so far in this attempt (cumulative).
    Usage {
        /// Input tokens.
        tokens_in: u64,
        /// Output tokens, when the backend reports them.
        tokens_out: Option<u64>,
    },
    /// A permission request and how the policy answered it.
    Approval {
        /// What the agent asked for.
        request: policy::Request,
        /// The answer and the rule behind it.
        decision: policy::Decision,
    },
}

/// Runs one attempt of `task` with the agent `spec`.
pub async fn run(
    spec: &AgentSpec,
    task: &Task,
    updates: UnboundedSender<Update>,
    cancel: &CancellationToken,
) -> Result<Report> {
    let started = Instant::now();
    let mut report = match spec {
        AgentSpec::Exec { command } => exec::run(command, task, cancel).await?,
        AgentSpec::Acp { command, .. } => acp::run(command, task, updates, cancel).await?,
        AgentSpec::KimiWire => wire::run(task, updates, cancel).await?,
        AgentSpec::KimiPrint => print::run(task, updates, cancel).await?,
    };
    report.spec = spec.to_string();
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.log = task.log.clone();
    report.network = Some(task.confinement.network_record());
    Ok(report)
}

/// Spawns an agent for `task`, with only the environment it may see and
/// its private temp directory; `command` comes from [`Task::command`], so it
/// runs in the task's sandbox.
pub(crate) fn spawn(
    mut command: tokio::process::Command,
    task: &Task,
    what: &str,
) -> Result<crate::process::Group> {
    use crate::error::IoContext;
    std::fs::create_dir_all(&task.tmp).context(|| format!("creating {}", task.tmp.display()))?;
    command.env_clear();
    crate::process::Group::spawn(command, &task.worktree, &task.env(), what)
}

/// When the agent last showed a sign of life.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Mutex<Instant>>);

impl Activity {
    /// Starts counting now.
    pub fn new() -> Activity {
        Activity(Arc::new(Mutex::new(Instant::now())))
    }

    /// Records a sign of life.
    pub fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }

    fn idle(&self) -> Duration {
        self.0.lock().map(|t| t.elapsed()).unwrap_or_default()
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// Resolves when the attempt must stop: cancelled, out of time, or silent too long.
pub async fn watch(task: &Task, activity: &Activity, cancel: &CancellationToken) -> Stop {
    let deadline = Instant::now() + task.timeout;
    let tick = Duration::from_millis(100)
        .min(task.inactivity / 4)
        .max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Stop::Cancelled,
            _ = tokio::time::sleep(tick) => {}
        }
        if Instant::now() >= deadline {
            return Stop::TimedOut;
        }
        if activity.idle() >= task.inactivity {
            return Stop::Inactive;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_agent_exit_reads_back_as_the_text_it_writes() {
        for exit in [
            AgentExit::Ok,
            AgentExit::Exited(3),
            AgentExit::Killed(9),
            AgentExit::TimedOut,
            AgentExit::Inactive,
            AgentExit::Cancelled,
            AgentExit::error("the turn ended with refusal"),
        ] {
            let json = serde_json::to_string(&exit).unwrap();
            assert_eq!(
                serde_json::from_str::<AgentExit>(&json).unwrap(),
                exit,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&AgentExit::Exited(3)).unwrap(),
            "\"exit 3\""
        );
        assert_eq!(
            "something new".parse::<AgentExit>().unwrap(),
            AgentExit::error("something new")
        );
    }

    use super::*;

    #[test]
    fn specs_parse_or_say_what_is_accepted() {
        assert_eq!(
            AgentSpec::parse("exec:./a.sh --fast").unwrap().to_string(),
            "exec:./a.sh --fast"
        );
        assert_eq!(
            AgentSpec::parse("acp:my-agent --stdio")
                .unwrap()
                .to_string(),
            "acp:my-agent --stdio"
        );
        assert_eq!(AgentSpec::parse("kimi").unwrap().to_string(), "kimi");
        assert_eq!(AgentSpec::parse("kimi-wire").unwrap(), AgentSpec::KimiWire);
        assert_eq!(
            AgentSpec::parse("kimi-print").unwrap(),
            AgentSpec::KimiPrint
        );
        assert!(AgentSpec::parse("exec:")
            .unwrap_err()
            .to_string()
            .contains("needs a command"));
        assert!(AgentSpec::parse("acp: ")
            .unwrap_err()
            .to_string()
            .contains("needs a command"));
        let err = AgentSpec::parse("claude").unwrap_err();
        assert!(err.to_string().contains("exec:<command>"));
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn uuids_look_like_uuids() {
        let u = super::kimi::new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, super::kimi::new_uuid());
    }
}
