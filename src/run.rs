//! Running a goal: validate everything, create the goal, start the supervisor.
//!
//! Nothing is created until every input has been checked, so bad input
//! leaves no trace (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use ractor::Actor;

use crate::actors::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::agent::AgentSpec;
use crate::config::{Config, GatesSource};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::plan::Plan;
use crate::report::Reporter;
use crate::state::{Deliver, GoalState};
use crate::store::events::EventBody;
use crate::store::{GoalDir, Store};

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
    /// `--agent`.
    pub agent: String,
    /// `--base`.
    pub base: String,
    /// `--concurrency`; default `min(N, 16)`.
    pub concurrency: Option<usize>,
    /// `--gate-concurrency`.
    pub gate_concurrency: usize,
    /// `--deliver`.
    pub deliver: Deliver,
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

/// A goal that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// Its final state, which is also its proof.
    pub state: GoalState,
    /// Its files.
    pub goal: GoalDir,
}

/// Runs a goal to its end.
pub async fn run_goal(opts: RunOptions, reporter: Reporter) -> Result<Finished> {
    if opts.slices == Some(0) {
        return Err(Error::Usage("--slices must be at least 1".into()));
    }
    if opts.goal.trim().is_empty() {
        return Err(Error::Usage(
            "the goal is empty; say what the run should achieve".into(),
        ));
    }
    if opts.concurrency == Some(0) || opts.gate_concurrency == 0 {
        return Err(Error::Usage(
            "--concurrency and --gate-concurrency must be at least 1".into(),
        ));
    }
    if opts.max_attempts == Some(0) {
        return Err(Error::Usage("--max-attempts must be at least 1".into()));
    }
    let agent = AgentSpec::parse(&opts.agent)?;
    let repo = Repo::discover(&opts.dir)?;
    let base_commit = repo.resolve_commit(&opts.base)?;
    let config = Config::load(&repo.root)?;
    let Some(plan_path) = &opts.plan else {
        return Err(Error::Usage(
            "planning from the goal text alone is not available yet; write a plan file and pass --plan FILE (format: docs/formats.md)".into(),
        ));
    };
    let plan = Plan::load(plan_path)?;
    let gate_names: Vec<String> = config.slice_gates().map(|g| g.name.clone()).collect();
    let errors = plan.validate(opts.slices, &gate_names);
    if !errors.is_empty() {
        return Err(Error::Plan {
            file: plan_path.display().to_string(),
            errors,
        });
    }
    let store = Store::for_repo(&repo)?;
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

    let goal = store.create_goal()?;
    let plan_json =
        serde_json::to_vec_pretty(&plan).map_err(|e| Error::io("encoding plan", e.into()))?;
    crate::util::write_atomic(&goal.plan(), &plan_json)?;
    let integration_branch = format!("omk/{}/{}", goal.id, crate::plan::INTEGRATION);
    repo.create_ref(
        &format!("refs/heads/{integration_branch}"),
        &base_commit,
        "omk: start goal",
    )?;

    let concurrency = opts.concurrency.unwrap_or(plan.slices.len().clamp(1, 16));
    let started = EventBody::GoalStarted {
        goal_id: goal.id.clone(),
        goal: opts.goal.clone(),
        repository: repo.root.clone(),
        base_tree: repo.tree_of(&base_commit)?,
        base_commit,
        base_ref: repo.branch_of(&opts.base)?,
        integration_branch,
        plan,
        agent: agent.to_string(),
        gates: config.gates.clone(),
        allow_no_gates: opts.allow_no_gates,
        max_attempts: opts.max_attempts.unwrap_or(config.max_attempts),
        concurrency,
        deliver: opts.deliver,
    };
    let (done, finished) = tokio::sync::oneshot::channel();
    let args = SupervisorArgs {
        repo,
        store,
        goal: goal.clone(),
        started,
        agent,
        slice_timeout: opts.slice_timeout.unwrap_or(config.slice_timeout),
        inactivity: opts.inactivity_timeout.unwrap_or(config.inactivity_timeout),
        deny: config.deny.clone(),
        budget: opts.budget,
        price: config.price.clone(),
        gate_concurrency: opts.gate_concurrency,
        reporter,
        done,
    };
    let (supervisor, handle) = Actor::spawn(None, Supervisor, args)
        .await
        .map_err(|e| Error::Actor(format!("starting the goal supervisor: {e}")))?;

    // Ctrl-C cancels the goal: agents are killed as process groups and the
    // goal ends `cancelled` with everything committed kept.
    let cancel_on_signal = {
        let supervisor = supervisor.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = supervisor.send_message(SupervisorMsg::Cancel);
            }
        })
    };
    let state = finished.await;
    cancel_on_signal.abort();
    let _ = handle.await;
    match state {
        Ok(state) => Ok(Finished { state, goal }),
        Err(_) => Err(Error::Actor(format!(
            "the goal supervisor stopped before the goal finished; its log is {}",
            goal.events().display()
        ))),
    }
}
