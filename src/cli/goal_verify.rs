//! `omk goal verify`: check a goal's proof on any clone — the one pushed as
//! `refs/omk/proofs/<goal-id>`, or this repository's own record of a goal.

use std::path::Path;

use crate::error::{Error, Result};
use crate::git::conventions::{PROOFS, PROOF_FILE, PROOF_LOG};
use crate::git::Repo;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A goal id (or a unique prefix) with a proof under refs/omk/proofs/, a ref or commit of
    /// such a proof, or a goal of this repository.
    target: String,
}

pub fn run(dir: &Path, args: Args) -> Result<u8> {
    let repo = Repo::discover(dir)?;
    let (log, proof, from) = match proof_commit(&repo, &args.target)? {
        Some((name, commit)) => {
            let log = repo.top_file(&commit, PROOF_LOG)?;
            let proof = repo.top_file(&commit, PROOF_FILE)?;
            let (Some(log), Some(proof)) = (log, proof) else {
                println!(
                    "FAIL: {name} holds no {PROOF_LOG} and {PROOF_FILE}: it is not an omk proof"
                );
                return Ok(1);
            };
            (log, Some(proof), name)
        }
        None => {
            let (_, goal) = super::find_goal(dir, &args.target).map_err(|e| match e {
                Error::UnknownGoal(id) => Error::Usage(format!(
                    "no proof `{id}` here: fetch pushed proofs with `git fetch origin '{PROOFS}*:{PROOFS}*'`"
                )),
                e => e,
            })?;
            let log = std::fs::read(goal.events())
                .map_err(|e| Error::io(format!("reading {}", goal.events().display()), e))?;
            (
                log,
                std::fs::read(goal.proof()).ok(),
                format!("goal {}", goal.id),
            )
        }
    };
    println!("proof: {from}");
    super::goal_replay::verify(&repo, &log, proof.as_deref())
}

/// The proof commit `target` names: a ref or commit holding a proof, the
/// proof ref of a goal id, or of the one goal id it is a prefix of.
fn proof_commit(repo: &Repo, target: &str) -> Result<Option<(String, String)>> {
    let exact = format!("{PROOFS}{target}");
    if let Some(commit) = repo.ref_target(&exact)? {
        return Ok(Some((exact, commit)));
    }
    let matches: Vec<(String, String)> = repo
        .refs_under(PROOFS)?
        .into_iter()
        .filter(|(name, _)| name[PROOFS.len()..].starts_with(target))
        .collect();
    match matches.len() {
        1 => return Ok(matches.into_iter().next()),
        0 => {}
        _ => {
            return Err(Error::AmbiguousGoal {
                prefix: target.to_string(),
                matches: matches.into_iter().map(|(n, _)| n).collect(),
            })
        }
    }
    // A ref or commit given directly, when it holds a proof.
    match repo.resolve_commit(target) {
        Ok(commit) if repo.top_file(&commit, PROOF_LOG)?.is_some() => {
            Ok(Some((target.to_string(), commit)))
        }
        _ => Ok(None),
    }
}
