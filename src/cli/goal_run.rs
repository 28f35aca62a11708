//! `omk goal run`: run a goal to its end and print its proof.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::report::Reporter;
use crate::run::{run_goal, RunOptions};
use crate::state::Deliver;
use crate::words::parse_duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the run should achieve.
    goal: String,
    /// How many slices to plan at most; with --plan, defaults to the plan's count.
    #[arg(long, value_name = "N")]
    slices: Option<usize>,
    /// A plan file (JSON or TOML) with the slices to run; without it the agent plans.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Split the paths matching GLOB into N balanced shards instead of asking the agent.
    #[arg(long, value_name = "GLOB", conflicts_with = "plan")]
    shard_by: Option<String>,
    /// The agent in each slice: kimi, kimi-wire, kimi-print, acp:<command>, exec:<command>.
    #[arg(long, value_name = "SPEC", default_value = "kimi")]
    agent: String,
    /// The commit every slice starts from.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    base: String,
    /// How many slices run at once [default: min(N, 16)].
    #[arg(long, value_name = "C")]
    concurrency: Option<usize>,
    /// The most gate jobs that run at once [default: as many as --gate-cpus lets].
    #[arg(long, value_name = "K")]
    gate_concurrency: Option<usize>,
    /// How many cores the gates may keep busy together; a gate takes its
    /// `cpus` (all of them when it declares none) [default: omk.toml
    /// run.gate_cpus, else the machine's cores].
    #[arg(long, value_name = "N")]
    gate_cpus: Option<usize>,
    /// How long one agent attempt may run, e.g. 30m [default: omk.toml run.slice_timeout, else 30m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    slice_timeout: Option<std::time::Duration>,
    /// How long an agent may stay silent, e.g. 5m [default: omk.toml run.inactivity_timeout, else 10m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    inactivity_timeout: Option<std::time::Duration>,
    /// Attempts per slice, counting every retry: a failed gate, a refused commit, a conflict
    /// [default: omk.toml run.max_attempts, else 3].
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    #[command(flatten)]
    budget: super::BudgetArgs,
    #[command(flatten)]
    delivery: super::DeliveryArgs,
    /// Where the result goes: leave it on the integration branch, fast-forward the base branch,
    /// push it with its proof, or open a GitHub pull request.
    #[arg(long, value_enum, default_value_t = Deliver::Branch)]
    deliver: Deliver,
    /// Let the goal end ready when no gate is configured or detected.
    #[arg(long)]
    allow_no_gates: bool,
    /// Refuse to run agents and gates when the kernel cannot sandbox them
    /// (Landlock and user namespaces).
    #[arg(long)]
    require_sandbox: bool,
    /// Let agents and gates reach HOST (`name`, `name:port`, `*.domain`);
    /// repeatable. Adds to `[sandbox] allow_hosts`.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// Start agents without first running the slice gates on the base commit.
    #[arg(long)]
    no_base_check: bool,
    /// Run every gate, even on a tree it already passed, and keep no result.
    #[arg(long)]
    no_gate_cache: bool,
    /// Check out only the directories a slice may write (plus `[sparse]
    /// include`) when its write scope fits a cone.
    #[arg(long)]
    sparse: bool,
    /// Where slice attempts run: `local` (this machine) or `slurm` (batch jobs;
    /// [executor.slurm] in omk.toml) [default: [executor] kind, else local].
    #[arg(long, value_enum)]
    executor: Option<crate::run::ExecutorKind>,
    /// Print the proof as JSON at the end.
    #[arg(long)]
    json: bool,
    /// Plain log lines instead of a live display.
    #[arg(long)]
    no_progress: bool,
    /// Start the goal in the background and print its id once it exists
    /// (exit 0); the goal runs on after this command and its terminal end.
    #[arg(long)]
    detach: bool,
    /// The new goal's id (set by `--detach` for the controller it starts).
    #[arg(long, hide = true, value_name = "ID")]
    goal_id: Option<String>,
}

/// Every flag the run cannot take, at once, named as typed.
fn check(args: &Args) -> Result<()> {
    let mut errors = Vec::new();
    let at_least_one = [
        ("--slices", args.slices == Some(0)),
        ("--concurrency", args.concurrency == Some(0)),
        ("--gate-concurrency", args.gate_concurrency == Some(0)),
        ("--gate-cpus", args.gate_cpus == Some(0)),
        ("--max-attempts", args.max_attempts == Some(0)),
    ];
    for (flag, zero) in at_least_one {
        if zero {
            errors.push(format!("{flag} must be at least 1"));
        }
    }
    if args.plan.is_none() && args.slices.is_none() {
        errors.push("--slices N is needed to plan a goal; or pass a plan with --plan FILE".into());
    }
    if args
        .budget
        .budget_usd
        .is_some_and(|usd| usd.is_nan() || usd <= 0.0)
    {
        errors.push("--budget-usd must be more than 0".into());
    }
    errors.extend(args.delivery.check(args.deliver));
    if args.budget.budget_tokens == Some(0) {
        errors.push("--budget-tokens must be at least 1".into());
    }
    match errors.len() {
        0 => Ok(()),
        _ => Err(crate::Error::Usage(errors.join("\n"))),
    }
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    check(&args)?;
    if args.detach {
        return detached(dir, args.json);
    }
    let opts = RunOptions {
        dir: dir.to_path_buf(),
        goal: args.goal,
        slices: args.slices,
        plan: args.plan,
        shard_by: args.shard_by,
        agent: args.agent,
        base: args.base,
        concurrency: args.concurrency,
        gate_concurrency: args.gate_concurrency,
        gate_cpus: args.gate_cpus,
        deliver: args.deliver,
        deliver_options: args.delivery.options(),
        allow_no_gates: args.allow_no_gates,
        slice_timeout: args.slice_timeout,
        max_attempts: args.max_attempts,
        inactivity_timeout: args.inactivity_timeout,
        require_sandbox: args.require_sandbox,
        allow_hosts: args.allow_host,
        base_check: !args.no_base_check,
        gate_cache: !args.no_gate_cache,
        sparse: args.sparse,
        executor: args.executor,
        budget: args.budget.into(),
        goal_id: args.goal_id,
    };
    let finished = run_goal(opts, Reporter::new(!args.no_progress))
        .await
        .map_err(super::as_flags)?;
    super::print_finished(&finished, args.json)
}

/// `--detach`: this same command, without `--detach`, as the goal's own
/// controller; says the goal's id once it exists.
fn detached(dir: &Path, json: bool) -> Result<u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    match crate::run::detach(dir, &args)? {
        crate::run::Detached::Started { goal_id, log } => {
            if json {
                super::print_json(&serde_json::json!({ "goal_id": goal_id, "log": log }))?;
            } else {
                println!("{goal_id}");
                eprintln!(
                    "omk: goal {goal_id} started in the background; `omk goal watch {goal_id}` follows it, `omk goal cancel {goal_id}` stops it (its controller's output: {})",
                    log.display()
                );
            }
            Ok(0)
        }
        crate::run::Detached::Ended { code, said } => {
            eprint!("{said}");
            Ok(code)
        }
    }
}
