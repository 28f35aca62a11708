//! Running a goal: validate everything, create the goal, start the supervisor.
//!
//! Nothing is created until every input has been checked, so bad input
//! leaves no trace (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use ractor::Actor;

use std::path::Path;

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
    if opts.slices == Some(0) {
        return Err(Error::Usage("a goal needs at least one slice".into()));
    }
    if opts.goal.trim().is_empty() {
        return Err(Error::Usage(
            "the goal is empty; say what the run should achieve".into(),
        ));
    }
    if opts.concurrency == Some(0) || opts.gate_concurrency == Some(0) || opts.gate_cpus == Some(0)
    {
        return Err(Error::Usage(
            "at least one slice and one gate job must be able to run at once".into(),
        ));
    }
    if opts.max_attempts == Some(0) {
        return Err(Error::Usage("a slice needs at least one attempt".into()));
    }
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
    // A kept path the repository does not ignore would be in every commit
    // and every tree check of a slot that keeps it.
    let unignored = repo.unignored(&config.slot_keep)?;
    if !unignored.is_empty() {
        return Err(Error::Config {
            file: repo.root.join(crate::config::FILE_NAME),
            reason: format!(
                "pool.keep: {} {} not ignored by the repository, so what a slot keeps there would count as a change in every commit and tree check; add {} to .gitignore, or drop {} from pool.keep",
                unignored.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "),
                if unignored.len() == 1 { "is" } else { "are" },
                if unignored.len() == 1 { "it" } else { "them" },
                if unignored.len() == 1 { "it" } else { "them" },
            ),
        });
    }
    // A reviewer that is not installed is named now, not after the slices ran.
    for review in config.gates.iter().filter_map(|g| g.review.as_ref()) {
        if let Some(spec) = &review.agent {
            AgentSpec::parse(spec)?.check_installed()?;
        }
    }
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
    if opts.budget.usd.is_some() && config.price.is_none() {
        reporter.notice("--budget-usd: no [[price]] for the agents' model in omk.toml, so only costs the agents report themselves count");
    }

    if repo.has_uncommitted_changes()? {
        reporter.notice("the checkout has uncommitted changes; slices start from the committed base and will not see them");
    }
    match &config.gates_source {
        GatesSource::None if opts.allow_no_gates => {
            reporter.notice("no gates configured or detected; --allow-no-gates lets the run end ready unverified")
        }
        GatesSource::None => reporter.notice(
            "no gates configured or detected: the run cannot end ready (add [[gate]] to omk.toml or pass --allow-no-gates)",
        ),
        GatesSource::Detected(file) => reporter.notice(&format!(
            "gates detected from {file}: {}",
            config.gates.iter().map(|g| format!("{} (`{}`)", g.name, g.command)).collect::<Vec<_>>().join(", ")
        )),
        GatesSource::Configured(_) => {}
    }
    let in_checkout = std::fs::read_to_string(repo.root.join(crate::config::FILE_NAME)).ok();
    if in_checkout != repo.file_at(&base_commit, crate::config::FILE_NAME)? {
        reporter.notice(&format!(
            "gates and settings come from {} as the base commit {} has it, not from the checkout's",
            crate::config::FILE_NAME,
            &base_commit[..base_commit.len().min(10)]
        ));
    }

    let concurrency = opts.concurrency.unwrap_or(plan.slices.len().clamp(1, 16));
    // One slot per slice running at once, and one for the integration gates.
    let integration_slot = usize::from(config.integration_gates().next().is_some());
    check_disk(
        &repo,
        &store,
        &base_commit,
        concurrency.min(plan.slices.len()) + integration_slot,
    )?;
    let goal = store.create_goal()?;
    let lock = goal.lock()?;
    let plan_json =
        serde_json::to_vec_pretty(&plan).map_err(|e| Error::json("encoding plan", e))?;
    crate::util::write_atomic(&goal.plan(), &plan_json)?;
    let integration_branch = crate::git::conventions::integration_branch(&goal.id);
    repo.create_ref(
        &format!("refs/heads/{integration_branch}"),
        &base_commit,
        "omk: start goal",
    )?;

    let ms = |d: Duration| d.as_millis() as u64;
    let executor = match (opts.executor, &config.executor) {
        (Some(ExecutorKind::Local), _) => crate::executor::Executor::Local,
        (Some(ExecutorKind::Slurm), crate::executor::Executor::Slurm(s)) => {
            crate::executor::Executor::Slurm(s.clone())
        }
        (Some(ExecutorKind::Slurm), _) => crate::executor::Executor::Slurm(Default::default()),
        (None, configured) => configured.clone(),
    };
    let gate_cpus = opts
        .gate_cpus
        .or(config.gate_cpus)
        .unwrap_or_else(crate::util::cores);
    let limits = Limits {
        slice_timeout_ms: ms(opts.slice_timeout.unwrap_or(config.slice_timeout)),
        inactivity_timeout_ms: ms(opts.inactivity_timeout.unwrap_or(config.inactivity_timeout)),
        gate_cpus: Some(gate_cpus),
        gate_concurrency: opts.gate_concurrency.unwrap_or(gate_cpus),
        deny: config.deny.clone(),
        budget_time_ms: opts.budget.time.map(ms),
        budget_tokens: opts.budget.tokens,
        budget_usd: opts.budget.usd,
        price: config.price.clone(),
        sandbox_writable: config.sandbox_writable.clone(),
        sandbox_env: config.sandbox_env.clone(),
        sandbox_readable: config.sandbox_readable.clone(),
        network,
        commit_author: config.commit_author.clone(),
        slot_cache: config.slot_cache.clone(),
        slot_keep: config.slot_keep.clone(),
        sparse: opts.sparse.then(|| config.sparse_include.clone()),
        require_sandbox: opts.require_sandbox,
        base_check: opts.base_check,
        no_gate_cache: !opts.gate_cache,
        executor,
        log_limit: (config.log_limit != crate::capture::DEFAULT_LIMIT).then_some(config.log_limit),
    };
    if opts.sparse {
        sparse_notice(&repo, &store, &plan, &config.sparse_include, &reporter);
    }
    let started = EventBody::GoalStarted {
        goal_id: goal.id.clone(),
        goal: opts.goal.clone(),
        repository: repo.root.clone(),
        base_tree: repo.tree_of(&base_commit)?,
        base_commit,
        base_ref,
        integration_branch,
        plan,
        agent: agent.to_string(),
        gates: config
            .gates
            .iter()
            .cloned()
            .map(|mut g| {
                // A review gate that names no agent is reviewed by the goal's.
                if let Some(r) = g.review.as_mut().filter(|r| r.agent.is_none()) {
                    r.agent = Some(agent.to_string());
                    g.command = format!("review by {agent}");
                }
                g
            })
            .collect(),
        allow_no_gates: opts.allow_no_gates,
        max_attempts: opts.max_attempts.unwrap_or(config.max_attempts),
        concurrency,
        deliver: opts.deliver,
        deliver_options: opts.deliver_options.clone(),
        limits,
    };
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
/// A delivery that cannot start now (the token is gone) is recorded as not
/// delivered, with the reason; the goal stays `ready`.
fn deliver_ready(repo: &Repo, goal: &GoalDir, mut state: GoalState) -> Result<GoalState> {
    let request = crate::deliver::Request {
        to: state.settings.deliver,
        options: state.settings.deliver_options.clone(),
        partial: false,
    };
    if state.status != GoalStatus::Ready || !request.is_needed() {
        return Ok(state);
    }
    match crate::deliver::prepare_for(repo, &state, &request) {
        Ok(route) => {
            crate::deliver::deliver(repo, goal, &mut state, &request, &route)?;
        }
        Err(e) => crate::deliver::refused(goal, &mut state, &request, &e)?,
    }
    Ok(state)
}

/// Makes the plan a run asks for, without running it (`omk goal plan`).
pub async fn plan_goal(opts: &RunOptions, reporter: &Reporter) -> Result<Plan> {
    if opts.slices == Some(0) {
        return Err(Error::Usage("a goal needs at least one slice".into()));
    }
    let agent = AgentSpec::parse(&opts.agent)?;
    // Only planning with an agent runs one.
    if opts.plan.is_none() && opts.shard_by.is_none() {
        agent.check_installed()?;
    }
    let repo = Repo::discover(&opts.dir)?;
    let base_commit = repo.resolve_commit(&opts.base)?;
    check_branch_namespace(&repo)?;
    let config = Config::at_commit(&repo, &base_commit)?;
    let store = Store::for_repo(&repo)?;
    obtain_plan(opts, &repo, &store, &config, &agent, &base_commit, reporter).await
}

/// The plan from `--plan FILE`, from `--shard-by GLOB`, or from the agent,
/// validated as a whole.
async fn obtain_plan(
    opts: &RunOptions,
    repo: &Repo,
    store: &Store,
    config: &Config,
    agent: &AgentSpec,
    base_commit: &str,
    reporter: &Reporter,
) -> Result<Plan> {
    let per_slice_gates: Vec<String> = config.slice_gates().map(|g| g.name.clone()).collect();
    let (plan, source, unknown) = match (&opts.plan, &opts.shard_by) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "a plan file and sharding by a glob cannot be combined; pick one".into(),
            ))
        }
        (Some(path), None) => {
            let (plan, unknown) = Plan::load_all(path)?;
            (plan, path.display().to_string(), unknown)
        }
        (None, shard_by) => {
            let Some(n) = opts.slices else {
                return Err(Error::Usage(
                    "planning a goal needs the number of slices, or a plan file".into(),
                ));
            };
            match shard_by {
                Some(glob) => {
                    let ctx = crate::planner::RepoContext::load(repo, base_commit)?;
                    (
                        crate::planner::shard(&opts.goal, glob, n, &ctx)?,
                        format!("--shard-by {glob}"),
                        vec![],
                    )
                }
                None => {
                    let planning = crate::planner::Planning {
                        repo,
                        store,
                        agent,
                        goal: &opts.goal,
                        slices: n,
                        base: base_commit,
                        gates: config
                            .gates
                            .iter()
                            .map(|g| format!("{} (`{}`)", g.name, g.command))
                            .collect(),
                        per_slice_gates: per_slice_gates.clone(),
                        timeout: opts.slice_timeout.unwrap_or(config.slice_timeout),
                        inactivity: opts.inactivity_timeout.unwrap_or(config.inactivity_timeout),
                        env_extra: config.sandbox_env.clone(),
                        writable: config.sandbox_writable.clone(),
                        readable: config.sandbox_readable.clone(),
                        network: network_settings(config, &opts.allow_hosts)?,
                    };
                    let plan = crate::planner::plan_with_agent(planning, reporter).await?;
                    (plan, format!("the plan {agent} made"), vec![])
                }
            }
        }
    };
    let errors: Vec<String> = unknown
        .into_iter()
        .chain(plan.validate(opts.slices, &per_slice_gates))
        .collect();
    if !errors.is_empty() {
        return Err(Error::Plan {
            file: source,
            errors,
        });
    }
    // Sharded plans are made of the files themselves.
    if opts.shard_by.is_none() {
        let tracked = repo.tracked_files(base_commit)?;
        let warnings = crate::plan::scope_warnings(&plan, &tracked);
        const SHOWN: usize = 10;
        for w in warnings.iter().take(SHOWN) {
            reporter.notice(w);
        }
        if warnings.len() > SHOWN {
            reporter.notice(&format!(
                "… and {} more write scopes that match no file",
                warnings.len() - SHOWN
            ));
        }
    }
    Ok(plan)
}

/// Takes over a goal whose controller stopped (crashed, killed, cancelled)
/// and runs it to its end. A goal that already ended `ready` or `not_ready`
/// is returned as it is.
pub async fn resume_goal(
    dir: &Path,
    id: &str,
    raised: Raised,
    reporter: Reporter,
) -> Result<Finished> {
    if raised.max_attempts == Some(0) {
        return Err(Error::Usage("a slice needs at least one attempt".into()));
    }
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    let lock = goal.lock()?;
    let (log, events) = EventLog::open(&goal.events())?;
    let state = GoalState::from_events(&events);
    if matches!(state.status, GoalStatus::Ready | GoalStatus::NotReady) {
        return Ok(Finished {
            state,
            goal,
            already_ended: true,
        });
    }
    let agent = AgentSpec::parse(&state.agent)?;
    agent.check_installed()?;
    check_sandbox(state.settings.limits.require_sandbox, &reporter)?;
    crate::capture::set_limit(
        state
            .settings
            .limits
            .log_limit
            .unwrap_or(crate::capture::DEFAULT_LIMIT),
    );
    let killed = crate::process::kill_orphans(&goal.id);
    if killed > 0 {
        reporter.notice(&format!(
            "stopped {killed} process group(s) the last controller left running"
        ));
    }
    drive(
        repo,
        store,
        goal,
        Start::Resume {
            log,
            events,
            raised,
        },
        agent,
        reporter,
        lock,
    )
    .await
}

/// Runs the supervisor to the goal's end, turning SIGINT and SIGTERM into a
/// cancel (a second one exits at once), then removes the goal's worktrees
/// unless asked to keep them.
async fn drive(
    repo: Repo,
    store: Store,
    goal: GoalDir,
    start: Start,
    agent: AgentSpec,
    reporter: Reporter,
    lock: GoalLock,
) -> Result<Finished> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let args = SupervisorArgs {
        repo: repo.clone(),
        store,
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
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let mut first = true;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if first {
                    first = false;
                    eprintln!("omk: cancelling: agents are stopped, committed work is kept (again to exit at once)");
                    let _ = supervisor.send_message(SupervisorMsg::Cancel);
                } else {
                    // Leave nothing running; the log is durable, so `resume` can take over.
                    crate::process::kill_all_groups();
                    std::process::exit(130);
                }
            }
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
    if !state.settings.limits.executor.is_local() {
        // A job of an attempt the goal no longer waits for (one a dead
        // driver had submitted, and this run did not take up) ends with it.
        if let crate::executor::Executor::Slurm(settings) = &state.settings.limits.executor {
            let root = crate::executor::slurm::goal_dir(settings, &goal.id, &goal.logs());
            crate::executor::slurm::cancel_goal(&root).await;
        }
    }
    let state = deliver_ready(&repo, &goal, state)?;
    drop(lock);
    Ok(Finished {
        state,
        goal,
        already_ended: false,
    })
}

/// The free space a run must leave on the disk holding omk's state:
/// `OMK_DISK_MARGIN` bytes, else 1 GB.
/// The file in a repository's store that says `--sparse` found
/// `extensions.worktreeConfig` off (so git's turning it on was omk's doing).
pub const WORKTREE_CONFIG_MARK: &str = "worktree-config-set-by-omk";

/// Says, for a `--sparse` run, which slices get full worktrees anyway and
/// that git records sparse checkouts in the repository's shared config.
fn sparse_notice(repo: &Repo, store: &Store, plan: &Plan, include: &[String], reporter: &Reporter) {
    let full: Vec<&str> = plan
        .slices
        .iter()
        .filter(|s| crate::plan::cone(&s.write_scope, include).is_none())
        .map(|s| s.id.as_str())
        .collect();
    if !full.is_empty() {
        reporter.notice(&format!(
            "--sparse: these slices get full worktrees, as a sparse checkout holds only write scopes that start with a directory (`src/api/**`): {}",
            full.join(", ")
        ));
    }
    if !repo.worktree_config_enabled() {
        // Remembered, so that `goal clean` takes back only what omk caused.
        let _ = std::fs::write(store.root().join(WORKTREE_CONFIG_MARK), b"");
        reporter.notice("--sparse: git keeps a sparse worktree's settings in the worktree's own config, so the first sparse slot sets extensions.worktreeConfig=true in the repository's .git/config; `omk goal clean` unsets it once no sparse slot is left (see README, Sparse slices)");
    }
}

fn disk_margin() -> u64 {
    std::env::var("OMK_DISK_MARGIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000_000)
}

/// Refuses a goal whose worktree slots (full checkouts of the base) would
/// leave less than the margin free: `slots` are needed at once, and the
/// pool's existing ones are reused.
fn check_disk(repo: &Repo, store: &Store, base: &str, slots: usize) -> Result<()> {
    let existing = crate::pool::Pool::new(store.pool_dir()).slots().len();
    let new = slots.saturating_sub(existing);
    if new == 0 {
        return Ok(());
    }
    let Some(free) = crate::util::free_bytes(store.root()) else {
        return Ok(());
    };
    let per_tree = repo.checkout_bytes(base)?;
    let need = per_tree.saturating_mul(new as u64);
    let margin = disk_margin();
    if free < need.saturating_add(margin) {
        return Err(Error::Disk(format!(
            "{new} new worktrees of about {} each need {}, but {} is free where omk keeps them ({}), and {} must stay free; free some space or run fewer slices at once (--concurrency)",
            crate::util::human_bytes(per_tree),
            crate::util::human_bytes(need),
            crate::util::human_bytes(free),
            store.root().display(),
            crate::util::human_bytes(margin),
        )));
    }
    Ok(())
}

/// Says once what the sandbox lacks here, or refuses to run when it is
/// `required`.
pub fn check_sandbox(required: bool, reporter: &Reporter) -> Result<()> {
    let support = crate::sandbox::support();
    if let (true, Some(missing)) = (required, support.missing()) {
        return Err(Error::Sandbox(format!(
            "it is required, but this machine has {missing}"
        )));
    }
    if support.landlock.is_none() {
        reporter.notice("Landlock is not available here: agents and gates run unconfined, and omk falls back to detection (your checkout and the waiting slices' worktrees are compared around every agent run, and each commit is checked against its write scope)");
    }
    if let Err(why) = &support.namespaces {
        reporter.notice(&format!("user namespaces are not available here ({why}): agents and gates share omk's view of processes and devices, and what they leave running is found by its environment only"));
    }
    Ok(())
}

/// The network of a goal's agents and gates: `omk.toml`'s, with `extra`
/// hosts allowed besides.
fn network_settings(config: &Config, extra: &[String]) -> Result<crate::sandbox::NetworkSettings> {
    let allowed = crate::sandbox::egress::AllowList::parse(extra)
        .map_err(|errors| Error::Usage(errors.join("\n")))?;
    Ok(crate::sandbox::NetworkSettings {
        open: config.network.open,
        allow: config.network.allow.with(&allowed),
    })
}

/// Says, before anything runs, what agents and gates may reach.
fn network_notice(network: &crate::sandbox::NetworkSettings, reporter: &Reporter) {
    if crate::sandbox::support().namespaces.is_err() {
        reporter.notice("the network is not isolated here (no user namespaces): agents and gates share omk's network");
    } else if network.open {
        reporter.notice("the network is open ([sandbox] network = \"open\"): agents and gates share omk's network, its loopback services included");
    }
}

/// Refuses a repository with a branch named `omk`: omk keeps its own
/// branches under `omk/`, which git cannot create beside it.
fn check_branch_namespace(repo: &Repo) -> Result<()> {
    match repo.ref_target("refs/heads/omk")? {
        None => Ok(()),
        Some(_) => Err(Error::Usage(
            "a branch named `omk` exists, and omk keeps its own branches under `omk/`, which git cannot create beside it; rename it (`git branch -m omk <new-name>`) and run again".into(),
        )),
    }
}

/// `goal retry`: gives the `slices` of an ended goal (default: every one
/// that did not merge) fresh attempts, up to `max_attempts` more each
/// (default: the goal's own limit), and runs the goal on to its end: same
/// log, same integration branch.
pub async fn retry_goal(
    dir: &Path,
    id: &str,
    slices: &[String],
    max_attempts: Option<u32>,
    budget: Budget,
    reporter: Reporter,
) -> Result<Finished> {
    if max_attempts == Some(0) {
        return Err(Error::Usage("at least one more attempt is needed".into()));
    }
    let repo = Repo::discover(dir)?;
    let store = Store::for_repo(&repo)?;
    let goal = store.find_goal(id)?;
    {
        let _lock = goal.lock()?;
        let (mut log, events) = EventLog::open(&goal.events())?;
        let state = GoalState::from_events(&events);
        let unknown: Vec<&String> = slices.iter().filter(|s| state.slice(s).is_none()).collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(Error::Usage(format!(
                "goal {} has no slice {}; its slices are {}",
                goal.id,
                names.join(", "),
                state
                    .slices
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let chosen: Vec<String> = state
            .slices
            .iter()
            .filter(|s| s.status != SliceStatus::Merged)
            .filter(|s| slices.is_empty() || slices.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        if state.status == GoalStatus::Ready {
            return Ok(Finished {
                state,
                goal,
                already_ended: true,
            });
        }
        let used = chosen
            .iter()
            .filter_map(|id| state.slice(id).map(|s| s.attempts))
            .max()
            .unwrap_or(0);
        let more = max_attempts.unwrap_or(state.settings.max_attempts);
        log.append(EventBody::GoalRetried {
            slices: chosen,
            max_attempts: used + more,
        })?;
    }
    resume_goal(dir, id, budget.raised(None), reporter).await
}

/// Where a goal's attempts run, as `--executor` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// This machine's worktree pool.
    Local,
    /// Slurm batch jobs (`[executor.slurm]` in omk.toml).
    Slurm,
}
