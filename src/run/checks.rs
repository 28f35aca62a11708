//! What a run checks, and says, before it creates anything.

use super::*;

/// Says, for a `--sparse` run, which slices get full worktrees anyway and
/// that git records sparse checkouts in the repository's shared config.
pub(super) fn sparse_notice(
    repo: &Repo,
    store: &Store,
    plan: &Plan,
    include: &[String],
    reporter: &Reporter,
) {
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

/// The free space a run must leave on the disk holding omk's state:
/// `OMK_DISK_MARGIN` bytes, else 1 GB.
pub(super) fn disk_margin() -> u64 {
    std::env::var("OMK_DISK_MARGIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000_000)
}

/// Refuses a goal whose worktree slots (full checkouts of the base) would
/// leave less than the margin free: `slots` are needed at once, and the
/// pool's existing ones are reused.
pub(super) fn check_disk(repo: &Repo, store: &Store, base: &str, slots: usize) -> Result<()> {
    let existing = crate::pool::Pool::new(store.pool_dir()).slots().len();
    let new = slots.saturating_sub(existing);
    if new == 0 {
        return Ok(());
    }
    let Some(free) = crate::machine::free_bytes(store.root()) else {
        return Ok(());
    };
    let per_tree = repo.checkout_bytes(base)?;
    let need = per_tree.saturating_mul(new as u64);
    let margin = disk_margin();
    if free < need.saturating_add(margin) {
        return Err(Error::Disk(format!(
            "{new} new worktrees of about {} each need {}, but {} is free where omk keeps them ({}), and {} must stay free; free some space or run fewer slices at once (--concurrency)",
            crate::words::human_bytes(per_tree),
            crate::words::human_bytes(need),
            crate::words::human_bytes(free),
            store.root().display(),
            crate::words::human_bytes(margin),
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
pub(super) fn network_settings(
    config: &Config,
    extra: &[String],
) -> Result<crate::sandbox::NetworkSettings> {
    let allowed = crate::sandbox::egress::AllowList::parse(extra)
        .map_err(|errors| Error::Usage(errors.join("\n")))?;
    Ok(crate::sandbox::NetworkSettings {
        open: config.network.open,
        allow: config.network.allow.with(&allowed),
    })
}

/// Says, before anything runs, what agents and gates may reach.
pub(super) fn network_notice(network: &crate::sandbox::NetworkSettings, reporter: &Reporter) {
    if crate::sandbox::support().namespaces.is_err() {
        reporter.notice("the network is not isolated here (no user namespaces): agents and gates share omk's network");
    } else if network.open {
        reporter.notice("the network is open ([sandbox] network = \"open\"): agents and gates share omk's network, its loopback services included");
    }
}

/// Refuses a repository with a branch named `omk`: omk keeps its own
/// branches under `omk/`, which git cannot create beside it.
pub(super) fn check_branch_namespace(repo: &Repo) -> Result<()> {
    match repo.ref_target("refs/heads/omk")? {
        None => Ok(()),
        Some(_) => Err(Error::Usage(
            "a branch named `omk` exists, and omk keeps its own branches under `omk/`, which git cannot create beside it; rename it (`git branch -m omk <new-name>`) and run again".into(),
        )),
    }
}

/// Refuses options no run can honour, naming every one at once.
pub(super) fn validate(opts: &RunOptions) -> Result<()> {
    let mut errors = Vec::new();
    if opts.slices == Some(0) {
        errors.push("a goal needs at least one slice");
    }
    if opts.goal.trim().is_empty() {
        errors.push("the goal is empty; say what the run should achieve");
    }
    if opts.concurrency == Some(0) || opts.gate_concurrency == Some(0) || opts.gate_cpus == Some(0)
    {
        errors.push("at least one slice and one gate job must be able to run at once");
    }
    if opts.max_attempts == Some(0) {
        errors.push("a slice needs at least one attempt");
    }
    if opts
        .goal_id
        .as_deref()
        .is_some_and(|id| !crate::store::is_goal_id(id))
    {
        errors.push("a goal id is the time and four hex digits, as `20261207-063237-4f9a`");
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Usage(errors.join("\n"))),
    }
}

/// Refuses a kept path (`[pool] keep`, a setup's `outputs`) the repository
/// does not ignore: it would be in every commit and every tree check of a
/// slot that keeps it.
pub(super) fn check_keep(repo: &Repo, config: &Config) -> Result<()> {
    let mut problems = Vec::new();
    let fields = std::iter::once(("pool.keep".to_string(), &config.slot_keep)).chain(
        config
            .setups
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("setup[{i}] (`{}`).outputs", s.name), &s.outputs)),
    );
    for (field, paths) in fields {
        let unignored = repo.unignored(paths)?;
        if unignored.is_empty() {
            continue;
        }
        let one = unignored.len() == 1;
        problems.push(format!(
            "{field}: {} {} not ignored by the repository, so what a slot keeps there would count as a change in every commit and tree check; add {} to .gitignore, or drop {} from {field}",
            unignored.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "),
            if one { "is" } else { "are" },
            if one { "it" } else { "them" },
            if one { "it" } else { "them" },
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Config {
        file: repo.root.join(crate::config::FILE_NAME),
        reason: problems.join("\n"),
    })
}

/// A reviewer that is not installed is named now, not after the slices ran.
pub(super) fn check_reviewers(config: &Config) -> Result<()> {
    for review in config.gates.iter().filter_map(|g| g.review.as_ref()) {
        if let Some(spec) = &review.agent {
            AgentSpec::parse(spec)?.check_installed()?;
        }
    }
    Ok(())
}

/// Says what a run's settings mean before it starts: tool settings of the
/// environment agents and gates will not see, budgets it cannot price,
/// changes it will not see, gates it has (or lacks), settings that come
/// from the base commit rather than the checkout.
pub(super) fn settings_notices(
    opts: &RunOptions,
    repo: &Repo,
    config: &Config,
    base_commit: &str,
    reporter: &Reporter,
) -> Result<()> {
    let withheld = crate::sandbox::env::withheld(std::env::vars(), &config.sandbox_env);
    let tools = crate::sandbox::env::tool_settings(&withheld);
    if !tools.is_empty() {
        reporter.notice(&format!(
            "agents and gates will not see {} from your environment; to pass one, name it in `env` under `[sandbox]` in omk.toml (`omk doctor` lists all {} variables not passed on)",
            tools.join(", "),
            withheld.len()
        ));
    }
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
    if in_checkout != repo.file_at(base_commit, crate::config::FILE_NAME)? {
        reporter.notice(&format!(
            "gates and settings come from {} as the base commit {} has it, not from the checkout's",
            crate::config::FILE_NAME,
            &base_commit[..base_commit.len().min(10)]
        ));
    }
    Ok(())
}
