//! The library's error type, rendered once at the edge (see `cli::main`).

use std::path::PathBuf;

/// Result with omk's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop an omk command, grouped by who can fix it.
///
/// [`Error::exit_code`] maps each group onto the contract's exit codes:
/// 2 for input the user can correct, 3 for infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),

    /// The plan file is malformed or describes an impossible plan.
    #[error("invalid plan {file}:\n{}", bullet_list(.errors))]
    Plan { file: String, errors: Vec<String> },

    /// `omk.toml` cannot be read or parsed.
    #[error("invalid config {}: {reason}", .file.display())]
    Config { file: PathBuf, reason: String },

    /// The directory is not inside a git repository.
    #[error("{} is not inside a git repository; run omk in one or pass -C DIR", .0.display())]
    NotARepository(PathBuf),

    /// The repository has no commit to start slices from.
    #[error("repository {} has no commits yet; commit once so slices have a base", .0.display())]
    NoCommits(PathBuf),

    /// A revision names no commit.
    #[error("`{rev}` does not name a commit in {}", .repo.display())]
    UnknownRev { rev: String, repo: PathBuf },

    /// A glob to shard a goal by is invalid or matches nothing.
    #[error("the shard glob `{glob}` {reason}")]
    Shard { glob: String, reason: String },

    /// No goal matches the id or prefix.
    #[error("no goal `{0}` in this repository; `omk goal list` shows its goals")]
    UnknownGoal(String),

    /// A goal id prefix matches several goals.
    /// A goal was to be made with an id that is taken.
    #[error("a goal `{0}` exists already; leave the id out and omk makes a new one")]
    GoalExists(String),

    #[error("goal id `{prefix}` is ambiguous; it matches {}", .matches.join(", "))]
    AmbiguousGoal {
        prefix: String,
        matches: Vec<String>,
    },

    /// Another process drives the goal.
    #[error("goal {goal} is being run by process {pid}; wait for it, or stop it with `omk goal cancel {goal}`")]
    Busy { goal: String, pid: String },

    /// The disk would fill up.
    #[error("not enough disk space: {0}")]
    Disk(String),

    /// A libgit2 operation failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),

    /// A `git` subprocess failed.
    #[error("`git {args}` failed: {stderr}")]
    GitCommand { args: String, stderr: String },

    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// One of omk's worktrees is not as omk left it, or omk was asked to
    /// move a ref it does not own.
    #[error("worktree: {0}")]
    Worktree(String),

    /// The program an agent spec runs is not installed.
    #[error("the agent `{spec}` runs `{program}`, which is not installed (not on PATH); {hint}")]
    AgentMissing {
        spec: String,
        program: String,
        hint: String,
    },

    /// The sandbox cannot confine agents and gates as asked.
    #[error("sandbox: {0}")]
    Sandbox(String),

    /// The cluster scheduler refused or lost an attempt's job.
    #[error("executor: {0}")]
    Executor(String),

    /// JSON could not be encoded or decoded.
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// The goal supervisor could not start, or stopped before the goal ended.
    #[error("the goal supervisor {0}")]
    Supervisor(String),

    /// An actor the caller needs has stopped.
    #[error("the {0} is gone")]
    ActorGone(&'static str),

    /// A task run off the async threads panicked or was cancelled.
    #[error("a worker task failed: {0}")]
    Task(String),

    /// An agent process cannot be talked to.
    #[error("agent: {0}")]
    AgentIo(String),

    /// A delivery cannot start: every reason, found before anything is pushed.
    #[error("cannot deliver:\n{}", bullet_list(&.0.iter().map(ToString::to_string).collect::<Vec<_>>()))]
    Deliver(Vec<crate::deliver::error::DeliverError>),

    /// A process asked to stop did not within the wait.
    #[error("process {pid} did not stop within {wait}; it still holds goal {goal}")]
    StillRunning {
        pid: i32,
        goal: String,
        wait: String,
    },
}

impl Error {
    /// Whether git failed because objects it had just written, or was
    /// given, are gone — or could not be written, their directory removed
    /// under it: a `git gc --prune=now` the user ran meanwhile (git's own
    /// commands race it alike). git and libgit2 say so only in words; a
    /// step that failed so is worth doing again.
    pub fn objects_vanished(&self) -> bool {
        let said = self.to_string();
        [
            "invalid object",
            "doesn't exist on the repository",
            "does not exist",
            "bad object",
            "unable to read",
            "object not found",
            "objects vanished",
            "nonexistent object",
            // gc removes emptied object directories under a writer.
            "unable to create temporary file",
            "unable to write file",
        ]
        .iter()
        .any(|m| said.contains(m))
    }

    /// Whether it failed for want of disk space (`ENOSPC`), which is the
    /// machine's to mend, not a slice's.
    pub fn disk_full(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(libc::ENOSPC)
                {
                    return true;
                }
            }
            source = e.source();
        }
        self.to_string().contains("No space left on device")
    }

    /// The process exit code for this error, per the contract.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Plan { .. }
            | Error::Config { .. }
            | Error::NotARepository(_)
            | Error::NoCommits(_)
            | Error::UnknownRev { .. }
            | Error::Shard { .. }
            | Error::UnknownGoal(_)
            | Error::GoalExists(_)
            | Error::AmbiguousGoal { .. }
            | Error::Busy { .. }
            | Error::Deliver(_) => 2,
            Error::Git(_)
            | Error::GitCommand { .. }
            | Error::Io { .. }
            | Error::Json { .. }
            | Error::Supervisor(_)
            | Error::ActorGone(_)
            | Error::Task(_)
            | Error::AgentIo(_)
            | Error::StillRunning { .. }
            | Error::Worktree(_)
            | Error::AgentMissing { .. }
            | Error::Sandbox(_)
            | Error::Executor(_)
            | Error::Disk(_) => 3,
        }
    }

    /// An [`Error::Json`] with a sentence saying what was being done.
    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Io`] with a sentence saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

fn bullet_list(items: &[String]) -> String {
    items
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Adds a sentence of context to I/O results.
pub trait IoContext<T> {
    /// Wraps the error as [`Error::Io`] with the context computed lazily.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
