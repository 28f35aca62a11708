//! `omk doctor`: what omk needs, and whether it is there.

use std::path::Path;

use crate::error::Result;
use crate::git::Repo;
use crate::store::{self, Store};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(dir: &Path, _args: Args) -> Result<u8> {
    let mut ok = true;
    match crate::git::version() {
        Some(v) => println!("git:        {v}"),
        None => {
            ok = false;
            println!("git:        NOT FOUND — install git ≥ 2.38 (omk needs `git merge-tree --write-tree`)");
        }
    }
    println!("state home: {}", store::home()?.display());
    match Repo::discover(dir) {
        Ok(repo) => {
            println!("repository: {}", repo.root.display());
            println!("state dir:  {}", Store::for_repo(&repo)?.root().display());
        }
        Err(_) => {
            println!("repository: none here (run omk inside a git repository or pass -C DIR)")
        }
    }
    println!("agents:     exec:<command> available; kimi, kimi-wire, kimi-print and acp: are not in this build yet");
    Ok(if ok { 0 } else { 3 })
}
