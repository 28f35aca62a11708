//! The `goal_started` event a new goal opens its log with: everything a
//! resume needs, settled from the options, `omk.toml` and the plan.

use super::*;

/// What a new goal starts from.
pub(super) struct Starting<'a> {
    pub opts: &'a RunOptions,
    pub config: &'a Config,
    pub agent: &'a AgentSpec,
    pub goal_id: &'a str,
    pub repository: PathBuf,
    pub base_commit: String,
    pub base_tree: String,
    pub base_ref: Option<String>,
    pub integration_branch: String,
    pub plan: Plan,
    pub concurrency: usize,
    pub network: crate::sandbox::NetworkSettings,
}

/// The event that opens a new goal's log.
pub(super) fn goal_started(s: Starting<'_>) -> EventBody {
    let (opts, config, agent) = (s.opts, s.config, s.agent);
    EventBody::GoalStarted {
        goal_id: s.goal_id.to_string(),
        goal: opts.goal.clone(),
        repository: s.repository,
        base_tree: s.base_tree,
        base_commit: s.base_commit,
        base_ref: s.base_ref,
        integration_branch: s.integration_branch,
        plan: s.plan,
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
        concurrency: s.concurrency,
        deliver: opts.deliver,
        deliver_options: opts.deliver_options.clone(),
        limits: limits(opts, config, s.network),
    }
}

/// Where the goal's attempts run: `--executor`, else `[executor]`.
pub(super) fn executor(opts: &RunOptions, config: &Config) -> crate::executor::Executor {
    match (opts.executor, &config.executor) {
        (Some(ExecutorKind::Local), _) => crate::executor::Executor::Local,
        (Some(ExecutorKind::Slurm), crate::executor::Executor::Slurm(s)) => {
            crate::executor::Executor::Slurm(s.clone())
        }
        (Some(ExecutorKind::Slurm), _) => crate::executor::Executor::Slurm(Default::default()),
        (None, configured) => configured.clone(),
    }
}

/// The limits the supervisor enforces: the options', else `omk.toml`'s.
fn limits(opts: &RunOptions, config: &Config, network: crate::sandbox::NetworkSettings) -> Limits {
    let ms = |d: Duration| d.as_millis() as u64;
    let executor = executor(opts, config);
    let gate_cpus = opts
        .gate_cpus
        .or(config.gate_cpus)
        .unwrap_or_else(crate::machine::cores);
    Limits {
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
        slot_keep: config.kept(),
        pool_max_disk: config.pool_max_disk,
        setups: config.setups.clone(),
        sparse: opts.sparse.then(|| config.sparse_include.clone()),
        require_sandbox: opts.require_sandbox,
        base_check: opts.base_check,
        no_gate_cache: !opts.gate_cache,
        executor,
        log_limit: (config.log_limit != crate::capture::DEFAULT_LIMIT).then_some(config.log_limit),
    }
}
