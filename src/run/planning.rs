//! The plan a goal runs: from a file, from sharding, or from the agent.

use super::*;

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
pub(super) async fn obtain_plan(
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
