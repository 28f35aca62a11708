//! `omk goal replay`: the goal's timeline, or a check of its integration.

use std::path::Path;

use crate::error::Result;
use crate::git::Repo;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    goal: super::GoalRef,
    /// The events as JSON Lines.
    #[arg(long)]
    json: bool,
    /// Rebuild the integration from the recorded commits and compare trees.
    #[arg(long)]
    verify: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let (_, goal) = super::find_goal(dir, &args.goal.id)?;
    if args.verify {
        let log = std::fs::read(goal.events())
            .map_err(|e| crate::Error::io(format!("reading {}", goal.events().display()), e))?;
        // The proof, written as the goal runs, pins where the log ended then.
        let proof = std::fs::read(goal.proof()).ok();
        let repo = Repo::discover(dir)?;
        return verify(&repo, &log, proof.as_deref());
    }
    let (_, events) = super::load_state(&goal)?;
    for e in &events {
        if args.json {
            let line = serde_json::to_string(e)
                .map_err(|err| crate::Error::json("encoding event", err))?;
            println!("{line}");
        } else {
            let slice = e
                .body
                .slice()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default();
            println!(
                "{:>5} {} {slice}{}",
                e.seq,
                e.ts,
                crate::report::describe(&e.body)
            );
        }
    }
    Ok(0)
}

/// Checks a log and its proof, rebuilds the integration in `repo` and
/// compares it with the branches there; prints each step, `OK` or `FAIL`,
/// and returns the exit code. `goal verify` shares it.
pub(super) fn verify(repo: &Repo, log: &[u8], proof: Option<&[u8]>) -> Result<u8> {
    let record = match crate::verify::check_record(log, proof) {
        Ok(record) => record,
        Err(why) => {
            println!("FAIL: {why}");
            return Ok(1);
        }
    };
    println!(
        "log: {} events, each chained to the one before",
        record.events.len()
    );
    let state = &record.state;
    let mut said = match crate::verify::rebuild(repo, state, &record.events)? {
        Ok(said) => said,
        Err(why) => {
            println!("FAIL: {why}");
            return Ok(1);
        }
    };
    match crate::verify::check_branches(repo, state, &state.integration.tree)? {
        Ok(more) => said.extend(more),
        Err(why) => {
            println!("FAIL: {why}");
            return Ok(1);
        }
    }
    let (first, rest) = said
        .split_first()
        .map_or(("verified", &[][..]), |(f, r)| (f.as_str(), r));
    for line in rest {
        println!("{line}");
    }
    println!("OK: {first}");
    Ok(0)
}
