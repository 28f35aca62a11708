//! The HTML report of a 1,000-slice goal: how long omk takes to write it,
//! and how long headless Chromium takes to load and draw it, against a
//! 4-slice goal's report measured in the same run (the browser's own start
//! is most of that baseline).
//!
//! Run with `cargo bench --bench report` (needs `chromium`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/it/support/browser.rs"]
mod browser;
mod support;

use support::git;

/// Runs a goal of `n` slices whose agents sleep a moment, in a repository of
/// its own under `dir`, and returns the repository.
fn goal(dir: &Path, n: usize) -> PathBuf {
    let repo = dir.join(format!("repo-{n}"));
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let slices: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"s{i}","prompt":"p","write_scope":["s{i}.txt"]}}"#))
        .collect();
    let plan = dir.join(format!("plan-{n}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let ok = omk(&repo, dir)
        .args([
            "goal",
            "run",
            "report bench",
            "--no-progress",
            "--allow-no-gates",
        ])
        .args(["--concurrency", "100", "--agent"])
        .arg(r#"exec:sleep 0.5; echo x > "$OMK_SLICE_ID.txt""#)
        .arg("--plan")
        .arg(&plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "the {n}-slice goal failed");
    repo
}

fn omk(repo: &Path, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_omk"));
    c.arg("-C").arg(repo).env("OMK_HOME", dir.join("home"));
    c
}

/// Writes the report of the repository's goal; returns its path and the time it took.
fn write_report(repo: &Path, dir: &Path, name: &str) -> (PathBuf, Duration) {
    let page = dir.join(name);
    let started = Instant::now();
    let ok = omk(repo, dir)
        .args(["goal", "report", "--html"])
        .arg(&page)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "goal report failed");
    (page, started.elapsed())
}

/// The time headless Chromium takes to load `page` and save a screenshot.
fn browser(page: &Path) -> Duration {
    browser::screenshot(page, 1300, 1000, Duration::from_secs(300)).1
}

/// The median of `runs` measurements.
fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let small = goal(dir, 4);
    let big = goal(dir, 1000);
    let (small_page, _) = write_report(&small, dir, "small.html");
    let (big_page, _) = write_report(&big, dir, "big.html");
    let write_small = median(5, || write_report(&small, dir, "small.html").1);
    let write_big = median(5, || write_report(&big, dir, "big.html").1);
    let size = std::fs::metadata(&big_page).unwrap().len();
    println!(
        "report: omk goal report --html   4 slices {:.0} ms   1,000 slices {:.0} ms ({:.2}x; {:.1} MB)",
        write_small.as_secs_f64() * 1000.0,
        write_big.as_secs_f64() * 1000.0,
        write_big.as_secs_f64() / write_small.as_secs_f64(),
        size as f64 / 1e6
    );
    let load_small = median(3, || browser(&small_page));
    let load_big = median(3, || browser(&big_page));
    println!(
        "report: chromium load and draw   4 slices {:.0} ms   1,000 slices {:.0} ms ({:.2}x; target below 2x)",
        load_small.as_secs_f64() * 1000.0,
        load_big.as_secs_f64() * 1000.0,
        load_big.as_secs_f64() / load_small.as_secs_f64()
    );
}
