//! What a delivery needs of git: remotes, pushes that are never forced,
//! and the proof commit that travels as `refs/omk/proofs/<goal-id>`.

use std::path::Path;

use git2::Oid;

use super::{command_error, signature, Repo};
use crate::error::{Error, Result};

/// How the remote took one pushed ref (`git push --porcelain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStatus {
    /// Created, fast-forwarded, or already there.
    Done,
    /// Refused: not a fast-forward, or the remote's rules said no.
    Rejected(String),
}

/// One ref of a push and how the remote took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The ref on the remote.
    pub dst: String,
    pub status: PushStatus,
}

impl Repo {
    /// The URL of remote `name`, if the repository has such a remote.
    pub fn remote_url(&self, name: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let remote = match repo.find_remote(name) {
            Ok(r) => r,
            Err(_) => return Ok(None),
        };
        Ok(Some(remote.url().unwrap_or_default().to_string()))
    }

    /// The remote `branch` (a full ref name) tracks, if it tracks one.
    pub fn upstream_remote(&self, branch: &str) -> Result<Option<String>> {
        let repo = self.open()?;
        let short = branch.trim_start_matches("refs/heads/");
        let config = repo.config()?;
        Ok(config
            .get_string(&format!("branch.{short}.remote"))
            .ok()
            .filter(|r| r != "."))
    }

    /// Whether the repository has `commit`.
    pub fn has_commit(&self, commit: &str) -> bool {
        self.open()
            .ok()
            .zip(Oid::from_str(commit).ok())
            .is_some_and(|(repo, oid)| repo.find_commit(oid).is_ok())
    }

    /// Pushes `commit:dst` pairs to `remote`, never forced; says how the
    /// remote took each. Fails only when the push did not get that far
    /// (the remote cannot be reached, no credentials).
    ///
    /// This shells out to `git push`: it speaks every transport with the
    /// user's own credential helpers, ssh config, `pushurl` and
    /// `insteadOf`, which git2 would need callbacks to imitate. The user's
    /// pre-push hook runs as on any push of theirs; no prompt can hang it.
    pub fn push(&self, remote: &str, refspecs: &[(String, String)]) -> Result<Vec<Pushed>> {
        let specs: Vec<String> = refspecs
            .iter()
            .map(|(commit, dst)| format!("{commit}:{dst}"))
            .collect();
        let mut args = vec!["push", "--porcelain", remote];
        args.extend(specs.iter().map(String::as_str));
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["-c", "gc.auto=0"])
            .args(&args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io("running git (is it installed and on PATH?)", e))?;
        let pushed = parse_porcelain(&String::from_utf8_lossy(&out.stdout));
        if pushed.is_empty() && !out.status.success() {
            return Err(command_error(&args, &out));
        }
        Ok(pushed)
    }

    /// Writes a commit whose tree holds `files` (name, bytes) at its top,
    /// with `parent` before it; touches no ref.
    pub fn commit_files(
        &self,
        files: &[(&str, &[u8])],
        parent: Option<&str>,
        message: &str,
    ) -> Result<String> {
        let repo = self.open()?;
        let mut builder = repo.treebuilder(None)?;
        for (name, bytes) in files {
            let blob = repo.blob(bytes)?;
            builder.insert(name, blob, 0o100644)?;
        }
        let tree = repo.find_tree(builder.write()?)?;
        let sig = signature(&repo)?;
        let parent = parent
            .map(|p| repo.find_commit(Oid::from_str(p)?))
            .transpose()?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        Ok(repo
            .commit(None, &sig, &sig, message, &tree, &parents)?
            .to_string())
    }

    /// The bytes of the file `name` at the top of `commit`'s tree.
    pub fn top_file(&self, commit: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let repo = self.open()?;
        let tree = repo.find_commit(Oid::from_str(commit)?)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(name)) else {
            return Ok(None);
        };
        Ok(repo
            .find_blob(entry.id())
            .ok()
            .map(|b| b.content().to_vec()))
    }

    /// The refs whose full names start with `prefix`, each with its commit.
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let repo = self.open()?;
        let mut found = Vec::new();
        for r in repo.references_glob(&format!("{prefix}*"))?.flatten() {
            if let (Some(name), Some(target)) = (r.name().ok(), r.target()) {
                found.push((name.to_string(), target.to_string()));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The refs of `git push --porcelain`'s output: `<flag>\t<src>:<dst>\t<summary>`.
fn parse_porcelain(stdout: &str) -> Vec<Pushed> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let flag = parts.next()?;
            let spec = parts.next()?;
            let summary = parts.next().unwrap_or_default();
            let dst = spec.rsplit_once(':').map_or(spec, |(_, d)| d).to_string();
            let status = match flag {
                "!" => PushStatus::Rejected(summary.trim().to_string()),
                " " | "*" | "=" | "+" | "-" => PushStatus::Done,
                _ => return None,
            };
            Some(Pushed { dst, status })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lines_say_how_each_ref_was_taken() {
        let out = "To /tmp/r.git\n*\tabc:refs/heads/omk/g/integration\t[new branch]\n\
                   !\tdef:refs/omk/proofs/g\t[rejected] (non-fast-forward)\nDone\n";
        assert_eq!(
            parse_porcelain(out),
            vec![
                Pushed {
                    dst: "refs/heads/omk/g/integration".into(),
                    status: PushStatus::Done
                },
                Pushed {
                    dst: "refs/omk/proofs/g".into(),
                    status: PushStatus::Rejected("[rejected] (non-fast-forward)".into())
                },
            ]
        );
    }
}
