//! What the benchmarks share.

use std::path::Path;
use std::process::Command;

/// Runs `git` in `dir` as the benchmarks' user, failing loudly.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=b@example.com"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}
