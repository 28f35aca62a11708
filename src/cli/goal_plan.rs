//! `omk goal plan`: make a plan and run nothing.
//!
//! The plan goes to `--out` or stdout; a readable summary goes to stderr.
//! `omk goal run --plan FILE` runs it unchanged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::run::RunOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the goal should achieve.
    goal: String,
    /// How many slices at most.
    #[arg(long, value_name = "N")]
    slices: usize,
    /// The planning agent: kimi, kimi-wire, kimi-print, acp:<command>, exec:<command>.
    #[arg(long, value_name = "SPEC", default_value = "kimi")]
    agent: String,
    /// Split the paths matching GLOB into N balanced shards instead of asking the agent.
    #[arg(long, value_name = "GLOB")]
    shard_by: Option<String>,
    /// The commit to plan against.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    base: String,
    /// Write the plan here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub async fn run(dir: &Path, args: Args) -> Result<u8> {
    if args.slices == 0 {
        return Err(crate::Error::Usage("--slices must be at least 1".into()));
    }
    let opts = RunOptions {
        goal_id: None,
        dir: dir.to_path_buf(),
        goal: args.goal,
        slices: Some(args.slices),
        plan: None,
        shard_by: args.shard_by,
        agent: args.agent,
        base: args.base,
        concurrency: None,
        gate_concurrency: None,
        gate_cpus: None,
        deliver: Default::default(),
        deliver_options: Default::default(),
        allow_no_gates: false,
        slice_timeout: None,
        max_attempts: None,
        inactivity_timeout: None,
        budget: Default::default(),
        require_sandbox: false,
        base_check: true,
        gate_cache: true,
        sparse: false,
        executor: None,
        allow_hosts: vec![],
    };
    let plan = crate::run::plan_goal(&opts, &Reporter::new(false))
        .await
        .map_err(super::as_flags)?;
    let json =
        serde_json::to_string_pretty(&plan).map_err(|e| Error::json("encoding the plan", e))?;
    match &args.out {
        Some(path) => crate::files::write_atomic(path, format!("{json}\n").as_bytes())?,
        None => println!("{json}"),
    }
    eprintln!(
        "plan: {} slice{}",
        plan.slices.len(),
        if plan.slices.len() == 1 { "" } else { "s" }
    );
    for s in &plan.slices {
        let deps = if s.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", s.depends_on.join(", "))
        };
        eprintln!(
            "  {:<14} {}  [{}]{deps}",
            s.id,
            if s.title.is_empty() {
                &s.prompt
            } else {
                &s.title
            },
            s.write_scope.join(", ")
        );
    }
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    if let Some(path) = &args.out {
        eprintln!(
            "written to {}; run it with `omk goal run \"…\" --plan {}`",
            path.display(),
            path.display()
        );
    }
    Ok(0)
}
