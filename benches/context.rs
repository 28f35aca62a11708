//! Repository context for planning, on generated 10k- and 100k-file
//! repositories, against `git ls-tree -r -l` (listing every tracked file with
//! its size: the least any planner must read) measured in the same run.
//!
//! Run with `cargo bench --bench context`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use omk::git::Repo;
use omk::planner::RepoContext;

/// Builds a repository of `files` files (~2 KB, in crates/services/docs) with
/// one commit, through git fast-import so no checkout is written.
fn make_repo(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    assert!(Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(dir)
        .status()
        .unwrap()
        .success());
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::new(import.stdin.take().unwrap());
    let body = "x".repeat(2000);
    writeln!(
        w,
        "commit refs/heads/main\ncommitter bench <b@example.com> 0 +0000\ndata 4\nbase"
    )
    .unwrap();
    for i in 0..files {
        let path = match i % 10 {
            0..=5 => format!("crates/c{:03}/src/m{i}.rs", i % 300),
            6..=8 => format!("services/s{:02}/lib/f{i}.py", i % 40),
            _ => format!("docs/d{:02}/p{i}.md", i % 20),
        };
        let content = format!("{i}\n{body}");
        writeln!(
            w,
            "M 100644 inline {path}\ndata {}\n{content}",
            content.len()
        )
        .unwrap();
    }
    drop(w);
    assert!(import.wait().unwrap().success());
    assert!(Command::new("git")
        .args(["reset", "-q", "--soft", "main"])
        .current_dir(dir)
        .status()
        .unwrap()
        .success());
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for files in [10_000, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        make_repo(&dir, files);
        let repo = Repo::discover(&dir).unwrap();
        let head = repo.resolve_commit("HEAD").unwrap();
        let floor = best_of(3, || {
            let out = Command::new("git")
                .args(["ls-tree", "-r", "-l", "HEAD"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(out.status.success());
        });
        let mut size = 0;
        let omk = best_of(3, || {
            let ctx = RepoContext::load(&repo, &head).unwrap();
            size = ctx.summary(&["test (`cargo test`)".into()]).len();
        });
        println!(
            "context: {files:>7} files   git ls-tree -r -l {:>7.1} ms   omk context {:>7.1} ms   ratio {:.2}x   summary {size} bytes",
            floor.as_secs_f64() * 1e3,
            omk.as_secs_f64() * 1e3,
            omk.as_secs_f64() / floor.as_secs_f64()
        );
    }
}
