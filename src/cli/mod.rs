//! The `omk` command line: one file per command, over the library.

mod demo;
mod doctor;
mod goal_cancel;
mod goal_clean;
mod goal_deliver;
mod goal_diff;
mod goal_land;
mod goal_list;
mod goal_logs;
mod goal_plan;
mod goal_proof;
mod goal_replay;
mod goal_report;
mod goal_resume;
mod goal_retry;
mod goal_run;
mod goal_status;
mod goal_verify;
mod goal_watch;
mod mcp;
mod pager;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::git::Repo;
use crate::state::GoalState;
use crate::store::{events, GoalDir, Store};

/// omk: one engineering goal, many agents, one merged and verified branch.
#[derive(Debug, Parser)]
#[command(name = "omk", version, about, propagate_version = true)]
pub struct Cli {
    /// Run as if omk was started in DIR (like `git -C`).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Plan, run and inspect goals.
    #[command(subcommand)]
    Goal(GoalCommand),
    /// Run a self-contained demonstration on a scratch repository.
    Demo(demo::Args),
    /// Check git, the state directory and the agents omk can use.
    Doctor(doctor::Args),
    /// Serve omk's goal tools over MCP (stdio) to an agent: goal_plan,
    /// goal_run, goal_status, goal_events, goal_logs, goal_diff, goal_proof,
    /// goal_cancel, goal_retry, goal_deliver, goal_list.
    Mcp(mcp::Args),
    /// Run one slice attempt on a cluster node (started by the scheduler).
    #[command(hide = true)]
    Worker(worker::Args),
}

#[derive(Debug, Subcommand)]
enum GoalCommand {
    /// Run a goal: slices in worktrees, gates, integration, proof.
    Run(Box<goal_run::Args>),
    /// Make a plan and run nothing: review or edit it, then `goal run --plan`.
    Plan(goal_plan::Args),
    /// Show a goal's state.
    Status(goal_status::Args),
    /// List this repository's goals.
    List(goal_list::Args),
    /// Show a goal's proof.
    Proof(goal_proof::Args),
    /// Show a goal's event timeline, or verify its log and integration.
    Replay(goal_replay::Args),
    /// Finish a goal whose run was interrupted, without redoing committed work.
    Resume(goal_resume::Args),
    /// Give an ended goal's slices that did not merge fresh attempts, then finish it.
    Retry(goal_retry::Args),
    /// Cancel a running goal; committed work is kept and `resume` can go on.
    Cancel(goal_cancel::Args),
    /// Remove the worktrees and branches a goal created.
    Clean(goal_clean::Args),
    /// Deliver a finished goal: to its branch, the base branch, a remote, or a pull request.
    Deliver(goal_deliver::Args),
    /// Follow a goal's pull request until its checks pass and it may merge, then merge it.
    Land(goal_land::Args),
    /// Check a goal's proof, pushed as refs/omk/proofs/<id> or local, on any clone.
    Verify(goal_verify::Args),
    /// Print a slice's log (by default its last attempt's failing gate, else its agent).
    Logs(goal_logs::Args),
    /// Show what a slice changed, as git diff does.
    Diff(goal_diff::Args),
    /// Follow a goal another process drives, until it ends; exits with its exit code.
    Watch(goal_watch::Args),
    /// Write the goal's timeline and proof as one self-contained HTML page.
    Report(goal_report::Args),
}

/// Which goal a command is about.
#[derive(Debug, clap::Args)]
struct GoalRef {
    /// `latest`, a goal id, or a unique prefix.
    #[arg(default_value = "latest")]
    id: String,
}

/// The goal-wide budgets of `run`, and what `resume` and `retry` raise them to.
#[derive(Debug, clap::Args)]
struct BudgetArgs {
    /// Stop starting work after this much wall-clock time, e.g. 2h.
    #[arg(long, value_name = "DURATION", value_parser = crate::words::parse_duration)]
    budget_time: Option<std::time::Duration>,
    /// Stop after the agents spent this many tokens (input + output).
    #[arg(long, value_name = "TOKENS")]
    budget_tokens: Option<u64>,
    /// Stop after the agents spent this many US dollars ([[price]] in omk.toml).
    #[arg(long, value_name = "USD")]
    budget_usd: Option<f64>,
}

impl From<BudgetArgs> for crate::run::Budget {
    fn from(b: BudgetArgs) -> Self {
        crate::run::Budget {
            time: b.budget_time,
            tokens: b.budget_tokens,
            usd: b.budget_usd,
        }
    }
}

/// A library error about a value the user gave by a flag, told in the
/// flag's name.
fn as_flags(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::UnknownRev { rev, repo } => crate::Error::Usage(format!(
            "--base `{rev}` does not name a commit in {}",
            repo.display()
        )),
        crate::Error::Shard { glob, reason } => {
            crate::Error::Usage(format!("--shard-by `{glob}` {reason}"))
        }
        crate::Error::Deliver(errors) => {
            use crate::deliver::DeliverError;
            let hint = |e: &DeliverError| match e {
                DeliverError::NoRemote(_) => format!("{e}, or pass --remote NAME"),
                DeliverError::NotReady { .. } => {
                    format!("{e}; pass --partial to deliver the slices that merged")
                }
                DeliverError::BaseNotBranch(_) => format!("{e}; pass --base BRANCH"),
                _ => e.to_string(),
            };
            let lines: Vec<String> = errors.iter().map(|e| format!("  - {}", hint(e))).collect();
            crate::Error::Usage(format!("cannot deliver:\n{}", lines.join("\n")))
        }
        e => e,
    }
}

/// Runs the command line and renders any error once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `OMK_LOG=debug` (any tracing filter, e.g. `omk=debug`) shows what omk
    // decides and does, and why; `OMK_LOG_FORMAT=json` writes it as JSON
    // lines, for bug reports.
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(tracing::level_filters::LevelFilter::OFF.into())
        .with_env_var("OMK_LOG")
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match std::env::var("OMK_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().with_current_span(true).try_init(),
        _ => builder.try_init(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("omk: error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let dir = cli.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if cli.command.only_reads() {
        quiet_on_closed_pipe();
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Goal(GoalCommand::Run(a)) => goal_run::run(&dir, *a).await,
            Command::Goal(GoalCommand::Plan(a)) => goal_plan::run(&dir, a).await,
            Command::Goal(GoalCommand::Status(a)) => goal_status::run(&dir, a),
            Command::Goal(GoalCommand::List(a)) => goal_list::run(&dir, a),
            Command::Goal(GoalCommand::Proof(a)) => goal_proof::run(&dir, a),
            Command::Goal(GoalCommand::Replay(a)) => goal_replay::run(&dir, a),
            Command::Goal(GoalCommand::Resume(a)) => goal_resume::run(&dir, a).await,
            Command::Goal(GoalCommand::Retry(a)) => goal_retry::run(&dir, a).await,
            Command::Goal(GoalCommand::Cancel(a)) => goal_cancel::run(&dir, a).await,
            Command::Goal(GoalCommand::Clean(a)) => goal_clean::run(&dir, a),
            Command::Goal(GoalCommand::Deliver(a)) => goal_deliver::run(&dir, a),
            Command::Goal(GoalCommand::Land(a)) => goal_land::run(&dir, a).await,
            Command::Goal(GoalCommand::Verify(a)) => goal_verify::run(&dir, a),
            Command::Goal(GoalCommand::Logs(a)) => goal_logs::run(&dir, a),
            Command::Goal(GoalCommand::Diff(a)) => goal_diff::run(&dir, a),
            Command::Goal(GoalCommand::Watch(a)) => goal_watch::run(&dir, a),
            Command::Goal(GoalCommand::Report(a)) => goal_report::run(&dir, a),
            Command::Demo(a) => demo::run(a).await,
            Command::Doctor(a) => doctor::run(&dir, a),
            Command::Mcp(a) => mcp::run(&dir, a).await,
            Command::Worker(a) => worker::run(&dir, a).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("omk: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

impl Command {
    /// Whether the command only reads and prints, starting no agent, gate
    /// or git process that omk writes to.
    fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Doctor(_)
                | Command::Goal(
                    GoalCommand::Status(_)
                        | GoalCommand::List(_)
                        | GoalCommand::Proof(_)
                        | GoalCommand::Replay(_)
                        | GoalCommand::Verify(_)
                        | GoalCommand::Logs(_)
                        | GoalCommand::Diff(_)
                        | GoalCommand::Watch(_)
                        | GoalCommand::Report(_)
                )
        )
    }
}

/// Ends the process quietly, as git does, when what reads its output goes
/// away (`omk goal list | head`): the default action of SIGPIPE. Only for
/// commands that write to no pipe of their own, since Rust ignores SIGPIPE
/// so that a closed agent pipe is an error, not omk's death.
fn quiet_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// The exit code for a finished goal, per the contract: 0 when ready (and
/// delivered, when a delivery was asked for), 130 when cancelled (as a
/// cancelled command exits), 3 when omk could not go on (`failed`: an
/// infrastructure failure), 1 otherwise.
fn goal_exit_code(state: &GoalState) -> u8 {
    let undelivered = state.delivery.as_ref().is_some_and(|d| !d.delivered)
        || (state.settings.deliver == crate::state::Deliver::Land
            && state.landing.as_ref().is_none_or(|l| l.merged.is_none()));
    match state.status {
        crate::state::GoalStatus::Ready if undelivered => 1,
        crate::state::GoalStatus::Ready => 0,
        crate::state::GoalStatus::Cancelled => 130,
        crate::state::GoalStatus::Failed => 3,
        _ => 1,
    }
}

/// How a result is delivered, for `goal run` and `goal deliver`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Deliver one commit on top of the base with the integration tree (the merge history
    /// stays on the integration branch).
    #[arg(long)]
    squash: bool,
    /// Open the pull request as a draft.
    #[arg(long)]
    draft: bool,
    /// The remote to push to [default: the base branch's upstream remote, else origin].
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
}

impl DeliveryArgs {
    fn options(&self) -> crate::state::DeliverOptions {
        crate::state::DeliverOptions {
            squash: self.squash,
            draft: self.draft,
            remote: self.remote.clone(),
        }
    }

    /// The flags that mean nothing with this delivery, each said.
    fn check(&self, to: crate::state::Deliver) -> Vec<String> {
        let mut errors = Vec::new();
        if self.draft && !to.opens_pull_request() {
            errors.push(format!(
                "--draft is for pull requests; it means nothing with `{to}` (use `pr`)"
            ));
        }
        if self.remote.is_some() && !to.pushes() {
            errors.push(format!(
                "--remote is for `push` and `pr`; `{to}` pushes nothing"
            ));
        }
        errors
    }
}

/// Prints a finished goal (its proof as text or JSON) and returns its exit code.
fn print_finished(finished: &crate::run::Finished, json: bool) -> Result<u8> {
    if json {
        print_json(&finished.state)?;
    } else {
        print!("{}", crate::proof::text(&finished.state));
        println!("proof: {}", finished.goal.proof().display());
    }
    Ok(goal_exit_code(&finished.state))
}

/// Finds a goal of the repository at `dir`.
fn find_goal(dir: &Path, id: &str) -> Result<(Store, GoalDir)> {
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    Ok((store, goal))
}

/// A goal's state, rebuilt from its event log (pinned to the log's end, as
/// the supervisor pins the proofs it writes).
/// Slice `slice` of the goal in `state`, or an error naming its slices.
fn slice_of<'a>(state: &'a GoalState, slice: &str) -> Result<&'a crate::state::SliceState> {
    state.slice(slice).ok_or_else(|| {
        let ids: Vec<&str> = state.slices.iter().map(|s| s.id.as_str()).collect();
        crate::Error::Usage(format!(
            "goal {} has no slice `{slice}`; its slices: {} (or `{}`)",
            state.goal_id,
            ids.join(", "),
            crate::plan::INTEGRATION
        ))
    })
}

fn load_state(goal: &GoalDir) -> Result<(GoalState, Vec<events::Event>)> {
    let path = goal.events();
    let scan = events::Scan::of(&path)?;
    let pinned = match (scan.chain(), scan.hashes.last()) {
        (Ok(()), Some(hash)) => Some(crate::state::LogEnd {
            events: scan.hashes.len() as u64,
            hash: hash.clone(),
        }),
        _ => None,
    };
    let events = scan.into_events(&path)?;
    let mut state = GoalState::from_events(&events);
    state.log_end = pinned;
    Ok((state, events))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| crate::Error::json("encoding JSON", e))?;
    println!("{text}");
    Ok(())
}
