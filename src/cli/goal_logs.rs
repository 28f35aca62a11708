//! `omk goal logs`: a slice's agent or gate log, or the end of every
//! failed step of a goal.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::report::steps::{steps, Step, StepEnd, StepKind};
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The goal (`latest`, an id or a unique prefix; default: latest) and the slice, or
    /// `integration` for the integration's gates. With --failed, only the goal.
    #[arg(value_name = "[ID] SLICE", num_args = 0..=2)]
    names: Vec<String>,
    /// The attempt [default: the slice's last].
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    /// This gate's log.
    #[arg(long, value_name = "NAME", conflicts_with = "agent")]
    gate: Option<String>,
    /// The agent's log.
    #[arg(long)]
    agent: bool,
    /// The end of every failed step of the goal (agents and gates), each under a header.
    #[arg(long, conflicts_with_all = ["attempt", "gate", "agent"])]
    failed: bool,
    /// How many lines of each failed step --failed shows.
    #[arg(long, value_name = "N", default_value_t = 40, requires = "failed")]
    lines: usize,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (id, slice) = match (args.failed, args.names.as_slice()) {
        (true, []) => ("latest", None),
        (true, [id]) => (id.as_str(), None),
        (true, _) => {
            return Err(Error::Usage(
                "--failed takes only the goal, not a slice".into(),
            ))
        }
        (false, [slice]) => ("latest", Some(slice.as_str())),
        (false, [id, slice]) => (id.as_str(), Some(slice.as_str())),
        (false, _) => {
            return Err(Error::Usage(
                "name the slice: omk goal logs [ID] SLICE (or --failed for every failed step)"
                    .into(),
            ))
        }
    };
    let (_, goal) = super::find_goal(dir, id)?;
    let (state, events) = super::load_state(&goal)?;
    let all = steps(&events);
    let Some(slice) = slice else {
        return failed(&all, args.lines);
    };
    if slice == crate::plan::INTEGRATION {
        return show(pick(&all, None, 0, &args)?);
    }
    let s = super::slice_of(&state, slice)?;
    let attempt = args.attempt.unwrap_or(s.attempts);
    if attempt == 0 || attempt > s.attempts {
        return Err(Error::Usage(format!(
            "slice `{slice}` has {} (asked for attempt {attempt})",
            crate::words::count(s.attempts as usize, "attempt")
        )));
    }
    show(pick(&all, Some(slice), attempt, &args)?)
}

/// The step `args` ask for among the slice's (or, for `None`, the
/// integration's) steps of `attempt`: the named gate, the agent, or by
/// default the failing gate, else the agent.
fn pick<'a>(all: &'a [Step], slice: Option<&str>, attempt: u32, args: &Args) -> Result<&'a Step> {
    let mine: Vec<&Step> = all
        .iter()
        .filter(|s| s.slice.as_deref() == slice && (slice.is_none() || s.attempt == attempt))
        .collect();
    let whose = match slice {
        Some(id) => format!("slice `{id}`'s attempt {attempt}"),
        None => "the integration".to_string(),
    };
    let found = if let Some(gate) = &args.gate {
        mine.iter()
            .rev()
            .find(|s| s.kind == StepKind::Gate(gate.clone()))
    } else if args.agent {
        mine.iter().rev().find(|s| s.kind == StepKind::Agent)
    } else {
        mine.iter()
            .rev()
            .find(|s| matches!(s.kind, StepKind::Gate(_)) && s.end == StepEnd::Failed)
            .or_else(|| mine.iter().rev().find(|s| s.kind == StepKind::Agent))
            .or_else(|| mine.last())
    };
    found.copied().ok_or_else(|| {
        let ran: Vec<String> = mine.iter().map(|s| s.what()).collect();
        Error::Usage(match (&args.gate, ran.is_empty()) {
            (_, true) => format!("{whose} has no log yet"),
            (Some(gate), false) => {
                format!("{whose} ran no gate `{gate}`; it ran: {}", ran.join(", "))
            }
            (None, false) => format!("{whose} has no agent log; it ran: {}", ran.join(", ")),
        })
    })
}

fn show(step: &Step) -> Result<u8> {
    if let Some(said) = &step.said {
        super::pager::show(format!("{}: {said}\n", step.what()).as_bytes())?;
        return Ok(0);
    }
    let mut file = std::fs::File::open(&step.log)
        .context(|| format!("opening the {} log {}", step.what(), step.log.display()))?;
    match step.refused_line() {
        // What the sandbox refused is said first: it is often why it failed.
        Some(line) => {
            let mut text = format!("{line}\n").into_bytes();
            std::io::Read::read_to_end(&mut file, &mut text)
                .context(|| format!("reading {}", step.log.display()))?;
            super::pager::show(text.as_slice())?;
        }
        None => super::pager::show(file)?,
    }
    Ok(0)
}

/// The end of every failed step, under a header naming it, as `gh run
/// view --log-failed` does; exits 0 with a line saying so when none failed.
fn failed(all: &[Step], lines: usize) -> Result<u8> {
    let mut text = String::new();
    for step in all.iter().filter(|s| s.end == StepEnd::Failed) {
        let whose = match &step.slice {
            Some(id) => format!("{id} attempt {}", step.attempt),
            None => crate::plan::INTEGRATION.to_string(),
        };
        if let Some(said) = &step.said {
            text += &format!(
                "==> {whose} · {} · {}\n{said}\n\n",
                step.what(),
                step.outcome
            );
            continue;
        }
        text += &format!(
            "==> {whose} · {} · {} · {}\n",
            step.what(),
            step.outcome,
            step.log.display()
        );
        if let Some(line) = step.refused_line() {
            text += &line;
            text += "\n";
        }
        let tail = crate::excerpt::of_log(&step.log, lines, 64 * 1024);
        if !tail.is_empty() {
            text += &tail;
            text += "\n";
        }
        text += "\n";
    }
    if text.is_empty() {
        text = "no step failed\n".into();
    }
    super::pager::show(text.as_bytes())?;
    Ok(0)
}
