//! `omk goal replay`: the goal's timeline, or a check of its integration.

use std::path::Path;

use crate::error::Result;
use crate::git::{Merged, Repo};
use crate::state::GoalState;
use crate::store::events::{check_chain, Event, EventBody};

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
    let (state, events) = super::load_state(&goal)?;
    if args.verify {
        let hashes = match check_chain(&goal.events())? {
            Ok(hashes) => hashes,
            Err(broken) => {
                println!("FAIL: the event log is not as written: {broken}");
                return Ok(1);
            }
        };
        println!(
            "log: {} events, each chained to the one before",
            hashes.len()
        );
        // The proof, written as the goal runs, pins where the log ended then.
        let pinned = std::fs::read(goal.proof())
            .ok()
            .and_then(|b| serde_json::from_slice::<GoalState>(&b).ok())
            .and_then(|p| p.log_end);
        if let Some(end) = pinned {
            let n = end.events as usize;
            if hashes.len() < n {
                println!("FAIL: the log has {} events but its proof was written after event {n}: the log was cut", hashes.len());
                return Ok(1);
            }
            if n > 0 && hashes[n - 1] != end.hash {
                println!("FAIL: event {n} is not the one the proof was written after: the log was rewritten");
                return Ok(1);
            }
        }
        let repo = Repo::discover(dir)?;
        return verify(&repo, &state, &events);
    }
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

/// Re-merges every recorded merge, each onto the rebuilt commit of the one
/// it was recorded onto (stale merges and dropped candidates too), with the
/// integrator's own merge step, and compares every tree with the record;
/// the rebuilt commit of where the branch was last moved must have the
/// recorded integration tree.
fn verify(repo: &Repo, state: &GoalState, events: &[Event]) -> Result<u8> {
    // Recorded commit → the commit rebuilt for it.
    let mut rebuilt = std::collections::HashMap::new();
    rebuilt.insert(state.base_commit.clone(), state.base_commit.clone());
    let mut last = state.base_commit.clone();
    let mut merges = 0;
    // Each slice's latest start, from which the integrator merged it (its
    // tree is the rebuilt chain's at that point, so the merge is the same).
    let mut starts = std::collections::HashMap::new();
    for e in events {
        let (slice, slice_commit, commit, tree, onto) = match &e.body {
            EventBody::SliceStarted {
                slice,
                start_commit,
                ..
            } => {
                starts.insert(slice.as_str(), start_commit.as_str());
                continue;
            }
            EventBody::SliceMerged {
                slice,
                slice_commit,
                commit,
                tree,
                onto,
                ..
            } => (slice, slice_commit, commit, tree, onto),
            _ => continue,
        };
        // Logs from before candidates merged each slice onto the last.
        let onto = if onto.is_empty() { &last } else { onto };
        let Some(head) = rebuilt.get(onto).cloned() else {
            println!(
                "FAIL at event {}: slice {slice} was merged onto {onto}, which no recorded merge made",
                e.seq
            );
            return Ok(1);
        };
        let start = starts.get(slice.as_str()).copied();
        let message = format!("omk verify: {slice}");
        let new = match repo.merge_slice(&head, slice_commit, start, &message)? {
            Merged::Commit { commit, tree: t } if &t == tree => commit,
            Merged::Commit { tree: t, .. } => {
                println!("FAIL at event {}: merging slice {slice} gives tree {t}, the log records {tree}", e.seq);
                return Ok(1);
            }
            Merged::Conflict(paths) => {
                println!(
                    "FAIL at event {}: slice {slice} no longer merges cleanly ({})",
                    e.seq,
                    paths.join(", ")
                );
                return Ok(1);
            }
        };
        rebuilt.insert(commit.clone(), new);
        last = commit.clone();
        merges += 1;
    }
    let Some(head) = rebuilt.get(&state.integration.commit).cloned() else {
        println!(
            "FAIL: the integration branch was recorded at {}, which no recorded merge made",
            state.integration.commit
        );
        return Ok(1);
    };
    let rebuilt_tree = repo.tree_of(&head)?;
    if rebuilt_tree != state.integration.tree {
        println!(
            "FAIL: the rebuilt integration tree {rebuilt_tree} differs from the recorded {}",
            state.integration.tree
        );
        return Ok(1);
    }
    let branch = format!("refs/heads/{}", state.integration.branch);
    match repo.ref_target(&branch)? {
        Some(commit) if repo.tree_of(&commit)? == rebuilt_tree => {}
        Some(commit) => {
            println!(
                "FAIL: {} now points at {commit}, whose tree differs from the recorded integration",
                state.integration.branch
            );
            return Ok(1);
        }
        None => println!(
            "note: {} no longer exists; the record itself verifies",
            state.integration.branch
        ),
    }
    println!(
        "OK: {merges} merges from base {} rebuild tree {}",
        state.base_commit, rebuilt_tree
    );
    Ok(0)
}
