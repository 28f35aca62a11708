//! Orchestration overhead per slice against the git floor.
//!
//! Generates a repository of `FILES` tracked files (~2 KB each), then for N
//! slices measures, in the same run:
//! - the floor: what any tool must do per slice, by plain git commands —
//!   recycle a worktree (`checkout -f -B <branch> <base>` + `clean -fdx`),
//!   write a file, commit it, `merge-tree --write-tree` (given the merge
//!   base, which a tool knows), `commit-tree`, `update-ref`;
//! - omk: `omk goal run` with an instant `exec:` agent and no gates.
//!
//! Both start warm: the floor's worktree is made before its clock starts,
//! and an untimed goal of 16 slices first fills omk's worktree pool (a
//! second goal on a repository finds its slots made). The floor runs its
//! slices one after another while omk runs up to `--concurrency` at once,
//! so for N > 1 the ratio also credits omk's parallelism; N = 1 is the pure
//! per-slice overhead.
//!
//! Prints one ratio line per N. Run with `cargo bench`; sizes can be set
//! with `OMK_BENCH_FILES` and `OMK_BENCH_SLICES` (comma-separated), and
//! `OMK_BENCH_SPARSE=1` adds `--sparse` runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "gc.auto=0",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn make_repo(dir: &Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let line = "x".repeat(63) + "\n";
    let body = line.repeat(32); // 2 KiB
    for i in 0..files {
        let sub = dir.join(format!("src/d{:03}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}.txt")), format!("{i}\n{body}")).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base"]);
}

/// The git floor for `n` slices, one after the other, in one recycled worktree.
fn floor(repo: &Path, scratch: &Path, n: usize) -> Duration {
    let base = git(repo, &["rev-parse", "HEAD"]);
    let int = format!("floor-int-{n}");
    git(repo, &["branch", &int, &base]);
    let wt = scratch.join("floor");
    git(
        repo,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            wt.to_str().unwrap(),
            &base,
        ],
    );
    let started = Instant::now();
    let mut head = base.clone();
    for i in 0..n {
        let branch = format!("floor-{n}-{i}");
        git(&wt, &["checkout", "-q", "-f", "-B", &branch, &base]);
        git(&wt, &["clean", "-q", "-fdx"]);
        std::fs::write(wt.join(format!("slice-{i}.txt")), "done\n").unwrap();
        git(&wt, &["add", "-A"]);
        git(&wt, &["commit", "-q", "-m", "slice"]);
        let commit = git(&wt, &["rev-parse", "HEAD"]);
        let merge_base = format!("--merge-base={base}");
        let tree = git(
            repo,
            &["merge-tree", "--write-tree", &merge_base, &head, &commit],
        );
        let new = git(
            repo,
            &[
                "commit-tree",
                &tree,
                "-p",
                &head,
                "-p",
                &commit,
                "-m",
                "merge",
            ],
        );
        git(
            repo,
            &["update-ref", &format!("refs/heads/{int}"), &new, &head],
        );
        head = new;
    }
    started.elapsed()
}

/// `omk goal run` of `n` instant slices; with `sparse`, each writes in a
/// directory of its own and runs in a sparse worktree of it.
fn omk(repo: &Path, scratch: &Path, home: &Path, n: usize, sparse: Option<usize>) -> Duration {
    let slices: Vec<String> = (0..n)
        .map(|i| {
            let file = match sparse {
                Some(dirs) => format!("src/d{:03}/slice-{i}.txt", i % dirs),
                None => format!("slice-{i}.txt"),
            };
            format!(r#"{{"id":"s{i}","prompt":"write {file}","write_scope":["{file}"]}}"#)
        })
        .collect();
    let plan = scratch.join(format!("plan-{n}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(repo)
        .args([
            "goal",
            "run",
            "bench",
            "--no-progress",
            "--allow-no-gates",
            "--agent",
        ])
        .arg(r#"exec:echo done > "$OMK_WRITE_SCOPE""#)
        .arg("--plan")
        .arg(&plan)
        .args(sparse.map(|_| "--sparse"))
        .env("OMK_HOME", home)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "omk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; only measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let files: usize = std::env::var("OMK_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let counts: Vec<usize> = std::env::var("OMK_BENCH_SLICES")
        .unwrap_or_else(|_| "1,16".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let scratch = tempfile::tempdir().unwrap();
    let repo = scratch.path().join("repo");
    let made = Instant::now();
    make_repo(&repo, files);
    println!(
        "overhead: repository of {files} files of ~2 KB (made in {:.1}s)",
        made.elapsed().as_secs_f64()
    );
    let home = scratch.path().join("omk-home");
    let warm = scratch.path().join("warm-up");
    std::fs::create_dir_all(&warm).unwrap();
    let took = omk(&repo, &warm, &home, 16, None);
    println!(
        "overhead: pool warm-up, 16 slots made in {:.1}s (untimed)",
        took.as_secs_f64()
    );
    // With OMK_BENCH_SPARSE=1, `--sparse` runs too, each slice in a cone of
    // one directory of ~100 files, against the same (full) floor.
    let sparse = std::env::var("OMK_BENCH_SPARSE")
        .is_ok_and(|v| v == "1")
        .then_some((files / 100).max(1));
    if let Some(dirs) = sparse {
        let warm = scratch.path().join("warm-up-sparse");
        std::fs::create_dir_all(&warm).unwrap();
        let took = omk(&repo, &warm, &home, 16, Some(dirs));
        println!(
            "overhead: sparse pool warm-up, 16 slots made in {:.1}s (untimed)",
            took.as_secs_f64()
        );
    }
    for n in counts {
        let run_scratch = scratch.path().join(format!("n{n}"));
        std::fs::create_dir_all(&run_scratch).unwrap();
        let floor = floor(&repo, &run_scratch, n);
        let full = omk(&repo, &run_scratch, &home, n, None);
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
        println!(
            "overhead: N={n:<5} floor {:>8.1} ms/slice   omk {:>8.1} ms/slice   ratio {:.2}x",
            per(floor),
            per(full),
            full.as_secs_f64() / floor.as_secs_f64()
        );
        if sparse.is_some() {
            let run_scratch = scratch.path().join(format!("n{n}-sparse"));
            std::fs::create_dir_all(&run_scratch).unwrap();
            let took = omk(&repo, &run_scratch, &home, n, sparse);
            println!(
                "overhead: N={n:<5} floor {:>8.1} ms/slice   omk --sparse {:>8.1} ms/slice   ratio {:.2}x",
                per(floor),
                per(took),
                took.as_secs_f64() / floor.as_secs_f64()
            );
        }
        git(&repo, &["worktree", "prune"]);
    }
}
