//! Running a goal: validate everything, create the goal, start the supervisor.
//!
//! Nothing is created until every input has been checked, so bad input
//! leaves no trace (exit 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ractor::Actor;

mod checks;
mod detach;
mod interrupts;
mod landing;
mod planning;
mod resume;
mod started;

pub use checks::check_sandbox;
use checks::*;
pub use detach::{detach, Detached};
pub use landing::land;
use planning::obtain_plan;
pub use planning::plan_goal;
pub use resume::{resume_goal, retry_goal};

use crate::actors::supervisor::Start;
use crate::actors::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::agent::AgentSpec;
use crate::config::{Config, GatesSource};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::Plan;
use crate::report::Reporter;
use crate::state::{Deliver, DeliverOptions, GoalState, GoalStatus, Limits, SliceStatus};
use crate::store::events::{EventBody, EventLog, Raised};
use crate::store::{GoalDir, GoalLock, Store};

/// What `omk goal run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A directory inside the repository (`-C`).
    pub dir: PathBuf,
    /// The goal text.
    pub goal: String,
    /// `--slices`: how many slices at most.
    pub slices: Option<usize>,
    /// `--plan`.
    pub plan: Option<PathBuf>,
    /// `--shard-by`: split the paths matching this glob into N shards.
    pub shard_by: Option<String>,
    /// `--agent`.
    pub agent: String,
    /// `--base`.
    pub base: String,
    /// `--concurrency`; default `min(N, 16)`.
    pub concurrency: Option<usize>,
    /// `--gate-concurrency`.
    /// `--gate-concurrency`: the most gate jobs at once; default as many as
    /// the cores let.
    pub gate_concurrency: Option<usize>,
    /// `--gate-cpus`; default from `omk.toml`, else the machine's cores.
    pub gate_cpus: Option<usize>,
    /// `--deliver`.
    pub deliver: Deliver,
    /// `--squash`, `--draft`, `--remote`.
    pub deliver_options: DeliverOptions,
    /// `--allow-no-gates`.
    pub allow_no_gates: bool,
    /// `--slice-timeout`; default from `omk.toml`.
    pub slice_timeout: Option<Duration>,
    /// `--max-attempts`; default from `omk.toml`.
    pub max_attempts: Option<u32>,
    /// `--inactivity-timeout`; default from `omk.toml`.
    pub inactivity_timeout: Option<Duration>,
    /// `--budget-time`, `--budget-tokens`, `--budget-usd`.
    pub budget: Budget,
    /// `--require-sandbox`: refuse to run agents and gates that cannot be
    /// fully confined (Landlock and namespaces).
    pub require_sandbox: bool,
    /// `--sparse`: slices whose write scope fits a cone get sparse worktrees.
    pub sparse: bool,
    /// `--executor`: where attempts run, instead of `[executor] kind`.
    pub executor: Option<ExecutorKind>,
    /// Run the slice gates on the base before any agent starts (off with
    /// `--no-base-check`).
    pub base_check: bool,
    /// Reuse passing gate results by tree (off with `--no-gate-cache`).
    pub gate_cache: bool,
    /// Hosts agents and gates may reach besides `[sandbox] allow_hosts`
    /// (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// The id to give the goal (a detached run's, chosen by the process
    /// that started it); a new one when absent.
    pub goal_id: Option<String>,
}

/// Goal-wide limits the supervisor enforces (not the agents).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Wall-clock time for the whole goal.
    pub time: Option<Duration>,
    /// Input plus output tokens over all agents.
    pub tokens: Option<u64>,
    /// US dollars over all agents.
    pub usd: Option<f64>,
}

impl Budget {
    /// The budgets given, and `max_attempts`, as limits a resumed goal raises.
    pub fn raised(&self, max_attempts: Option<u32>) -> Raised {
        Raised {
            max_attempts,
            budget_time_ms: self.time.map(|d| d.as_millis() as u64),
            budget_tokens: self.tokens,
            budget_usd: self.usd,
        }
    }
}

/// A goal that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// Its final state, which is also its proof.
    pub state: GoalState,
    /// Its files.
    pub goal: GoalDir,
    /// Whether it had already ended, so nothing ran.
    pub already_ended: bool,
}

/// Runs a goal to its end.
pub async fn run_goal(opts: RunOptions, reporter: Reporter) -> Result<Finished> {
    validate(&opts)?;
    let agent = AgentSpec::parse(&opts.agent)?;
    agent.check_installed()?;
    let repo = Repo::discover(&opts.dir)?;
    let base_commit = repo.resolve_commit(&opts.base)?;
    check_branch_namespace(&repo)?;
    let base_ref = repo.branch_of(&opts.base)?;
    let delivery = crate::deliver::Request {
        to: opts.deliver,
        options: opts.deliver_options.clone(),
        partial: false,
    };
    if delivery.is_needed() {
        crate::deliver::prepare(&repo, base_ref.as_deref(), &delivery)?;
    }
    let config = Config::at_commit(&repo, &base_commit)?;
    check_keep(&repo, &config)?;
    check_reviewers(&config)?;
    let store = Store::for_repo(&repo)?;
    let network = network_settings(&config, &opts.allow_hosts)?;
    check_sandbox(opts.require_sandbox, &reporter)?;
    network_notice(&network, &reporter);
    crate::capture::set_limit(config.log_limit);
    let plan = obtain_plan(
        &opts,
        &repo,
        &store,
        &config,
        &agent,
        &base_commit,
        &reporter,
    )
    .await?;
    settings_notices(&opts, &repo, &config, &base_commit, &reporter)?;

    let concurrency = opts.concurrency.unwrap_or(plan.slices.len().clamp(1, 16));
    // One slot per slice running at once, and one for the integration gates.
    let integration_slot = usize::from(config.integration_gates().next().is_some());
    check_disk(
        &repo,
        &store,
        &base_commit,
        concurrency.min(plan.slices.len()) + integration_slot,
    )?;
    let goal = match &opts.goal_id {
        Some(id) => store.create_goal_as(id)?,
        None => store.create_goal()?,
    };
    let lock = lock_to_drive(&goal)?;
    let plan_json =
        serde_json::to_vec_pretty(&plan).map_err(|e| Error::json("encoding plan", e))?;
    crate::files::write_atomic(&goal.plan(), &plan_json)?;
    let integration_branch = crate::git::conventions::integration_branch(&goal.id);
    repo.create_ref(
        &format!("refs/heads/{integration_branch}"),
        &base_commit,
        "omk: start goal",
    )?;
    if opts.sparse {
        sparse_notice(&repo, &store, &plan, &config.sparse_include, &reporter);
    }
    let started = started::goal_started(started::Starting {
        opts: &opts,
        config: &config,
        agent: &agent,
        goal_id: &goal.id,
        base_tree: repo.tree_of(&base_commit)?,
        repository: repo.root.clone(),
        base_commit,
        base_ref,
        integration_branch,
        plan,
        concurrency,
        network,
    });
    drive(
        repo,
        store,
        goal,
        Start::New(started),
        agent,
        reporter,
        lock,
    )
    .await
}

/// Delivers a goal that ended `ready` as it was asked to when it started.
fn deliver_ready(repo: &Repo, goal: &GoalDir, state: GoalState) -> Result<GoalState> {
    let request = crate::deliver::Request {
        to: state.settings.deliver,
        options: state.settings.deliver_options.clone(),
        partial: false,
    };
    deliver_as(repo, goal, state, &request)
}

/// Delivers a goal that ended `ready` as `request` asks. A delivery that
/// cannot start now (the token is gone) is recorded as not delivered, with
/// the reason; the goal stays `ready`.
fn deliver_as(
    repo: &Repo,
    goal: &GoalDir,
    mut state: GoalState,
    request: &crate::deliver::Request,
) -> Result<GoalState> {
    if state.status != GoalStatus::Ready || !request.is_needed() {
        return Ok(state);
    }
    match crate::deliver::prepare_for(repo, &state, request) {
        Ok(route) => {
            crate::deliver::deliver(repo, goal, &mut state, request, &route)?;
        }
        Err(e) => crate::deliver::refused(goal, &mut state, request, &e)?,
    }
    Ok(state)
}

/// Runs the supervisor to the goal's end, delivers it as asked (landing
/// its pull request with `--deliver land`), then removes the goal's
/// worktrees unless asked to keep them.
async fn drive(
    repo: Repo,
    store: Store,
    goal: GoalDir,
    start: Start,
    agent: AgentSpec,
    reporter: Reporter,
    lock: GoalLock,
) -> Result<Finished> {
    let live = reporter.is_live();
    let state = supervise(&repo, &store, &goal, start, agent, reporter).await?;
    let mut state = deliver_ready(&repo, &goal, state)?;
    let opened = state
        .delivery
        .as_ref()
        .is_some_and(|d| d.delivered && d.pull_request.is_some());
    if state.settings.deliver == Deliver::Land && opened {
        let options = crate::deliver::land::LandOptions::default();
        landing::land_locked(&repo, &store, &goal, &mut state, &options, live, |body| {
            eprintln!("omk: {}", crate::report::describe(body));
        })
        .await?;
    }
    drop(lock);
    Ok(Finished {
        state,
        goal,
        already_ended: false,
    })
}

/// Takes `goal`'s lock to drive it, listening for SIGINT and SIGTERM first
/// so that neither can kill this process before the supervisor handles it.
fn lock_to_drive(goal: &GoalDir) -> Result<GoalLock> {
    interrupts::listen();
    goal.lock()
}

/// Runs the supervisor to the goal's end, turning SIGINT and SIGTERM into a
/// cancel (a second one exits at once). The caller holds the goal's lock.
async fn supervise(
    repo: &Repo,
    store: &Store,
    goal: &GoalDir,
    start: Start,
    agent: AgentSpec,
    reporter: Reporter,
) -> Result<GoalState> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let args = SupervisorArgs {
        repo: repo.clone(),
        store: store.clone(),
        goal: goal.clone(),
        start,
        agent,
        reporter,
        done,
    };
    let (supervisor, handle) = Actor::spawn(None, Supervisor, args)
        .await
        .map_err(|e| Error::Supervisor(format!("could not start: {e}")))?;

    let signals = {
        let supervisor = supervisor.clone();
        tokio::spawn(async move {
            interrupts::next().await;
            eprintln!("omk: cancelling: agents are stopped, committed work is kept (again to exit at once)");
            let _ = supervisor.send_message(SupervisorMsg::Cancel);
            interrupts::next().await;
            // Leave nothing running; the log is durable, so `resume` can take over.
            crate::process::kill_all_groups();
            std::process::exit(130);
        })
    };
    let state = finished.await;
    signals.abort();
    let _ = handle.await;
    let state = state.map_err(|_| {
        Error::Supervisor(format!(
            "stopped before the goal finished; its log is {}",
            goal.events().display()
        ))
    })?;
    trim_pool(repo, store, state.settings.limits.pool_max_disk).await;
    if !state.settings.limits.executor.is_local() {
        // A job of an attempt the goal no longer waits for (one a dead
        // driver had submitted, and this run did not take up) ends with it.
        if let crate::executor::Executor::Slurm(settings) = &state.settings.limits.executor {
            let root = crate::executor::slurm::goal_dir(settings, &goal.id, &goal.logs());
            crate::executor::slurm::cancel_goal(&root).await;
        }
    }
    Ok(state)
}

/// Keeps the worktree pool within its bound (`[pool] max_disk`) once a
/// goal has ended, saying what it freed.
async fn trim_pool(repo: &Repo, store: &Store, max: Option<u64>) {
    let (repo, pool) = (repo.clone(), crate::pool::Pool::new(store.pool_dir()));
    let trimmed = tokio::task::spawn_blocking(move || pool.trim(&repo, max)).await;
    if let Some(t) = trimmed.ok().filter(|t| t.freed > 0) {
        eprintln!(
            "omk: the worktree pool took {}, over its bound of {}: freed {} of idle slots' build state, least recently used first",
            crate::words::human_bytes(t.before),
            crate::words::human_bytes(t.bound),
            crate::words::human_bytes(t.freed),
        );
    }
}

/// The file in a repository's store that says `--sparse` found
/// `extensions.worktreeConfig` off (so git's turning it on was omk's doing).
pub const WORKTREE_CONFIG_MARK: &str = "worktree-config-set-by-omk";

/// Where a goal's attempts run, as `--executor` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// This machine's worktree pool.
    Local,
    /// Slurm batch jobs (`[executor.slurm]` in omk.toml).
    Slurm,
}
