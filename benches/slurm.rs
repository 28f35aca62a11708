//! Slices on a single-node Slurm cluster on loopback: omk's cost per slice
//! over Slurm's own cost per job, both measured in the same run. The
//! baseline is `sbatch --wait` of an empty job, one after another; omk runs
//! N instant slices (no gates), one at a time and then two at a time (the
//! node's cores).
//!
//! Run with `cargo bench --bench slurm` as root (it starts slurmd).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/it/support/slurm.rs"]
mod slurm;
mod support;

use support::git;

/// The time one empty batch job takes, submitted and waited for.
fn empty_job(dir: &Path) -> Duration {
    empty_jobs(dir, 1, 1)
}

/// The time one empty batch job takes when its end is watched as omk
/// watches its jobs: `scontrol show job` every 250 ms.
fn empty_job_polled(dir: &Path) -> Duration {
    let script = dir.join("empty.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    let started = Instant::now();
    let out = slurm::cluster()
        .command("sbatch")
        .args(["--parsable", "--export=PATH"])
        .arg(format!("--output={}", dir.join("empty.out").display()))
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "sbatch failed");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    loop {
        let out = slurm::cluster()
            .command("scontrol")
            .args(["show", "job", "-o", &id])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("JobState=COMPLETED") || text.contains("JobState=FAILED") {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The controller's count of job-information requests so far (`sdiag`).
fn job_queries() -> u64 {
    let out = slurm::cluster().command("sdiag").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("REQUEST_JOB_INFO") || l.contains("REQUEST_JOB_USER_INFO")
        })
        .filter_map(|l| l.split("count:").nth(1))
        .filter_map(|c| c.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The wall time of `n` empty jobs, `c` at a time, each `sbatch --wait`:
/// Slurm's own floor for a goal of `n` instant slices.
fn empty_jobs(dir: &Path, n: usize, c: usize) -> Duration {
    let script = dir.join("empty.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..c {
            s.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let ok = slurm::cluster()
                        .command("sbatch")
                        .args(["--wait", "--quiet", "--export=PATH"])
                        .arg(format!("--output={}", dir.join("empty.out").display()))
                        .arg(&script)
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "sbatch --wait failed");
                }
            });
        }
    });
    started.elapsed()
}

/// The wall time of a goal of `n` instant slices, `c` at a time.
fn goal(dir: &Path, n: usize, c: usize) -> Duration {
    let slices: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"s{i}","prompt":"p","write_scope":["s{i}.txt"]}}"#))
        .collect();
    let plan = dir.join(format!("plan-{n}-{c}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let started = Instant::now();
    let ok = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(dir.join("repo"))
        .args(["goal", "run", "bench", "--no-progress", "--allow-no-gates"])
        .args([
            "--executor",
            "slurm",
            "--concurrency",
            &c.to_string(),
            "--agent",
        ])
        .arg(r#"exec:echo x > "$OMK_SLICE_ID.txt""#)
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", dir.join("home"))
        .env("SLURM_CONF", &slurm::cluster().conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "the goal failed");
    started.elapsed()
}

fn main() {
    // `cargo bench --bench slurm -- scale` runs only the goals of 20 to 200.
    let scale_only = std::env::args().any(|a| a == "scale");
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    const JOBS: u32 = 8;
    let _ = empty_job(dir); // the node's first job pays for its start
    scale(dir);
    if scale_only {
        return;
    }
    let per_job: Duration = (0..JOBS).map(|_| empty_job(dir)).sum::<Duration>() / JOBS;
    let polled: Duration = (0..JOBS).map(|_| empty_job_polled(dir)).sum::<Duration>() / JOBS;
    println!(
        "slurm: an empty job: {:.0} ms with sbatch --wait, {:.0} ms watched every 250 ms as omk does (means of {JOBS})",
        per_job.as_secs_f64() * 1000.0,
        polled.as_secs_f64() * 1000.0
    );
    // omk watches its jobs as the second does: that is its floor.
    let per_job = polled;
    for (n, c) in [(8, 1), (16, 2)] {
        let wall = goal(dir, n, c);
        let per_slice = wall / n as u32;
        // With c at a time, Slurm's own floor is per_job / c per slice.
        let floor = per_job / c as u32;
        println!(
            "slurm: {n} instant slices, {c} at a time: {:.1} s, {:.0} ms per slice; Slurm's floor {:.0} ms; ratio {:.2}x",
            wall.as_secs_f64(),
            per_slice.as_secs_f64() * 1000.0,
            floor.as_secs_f64() * 1000.0,
            per_slice.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

/// Goals of 20, 100 and 200 instant slices, 16 at a time: their walls
/// against as many empty jobs (`sbatch --wait`, 16 at a time), and the
/// job-information requests they sent the controller (sdiag's counts).
fn scale(dir: &Path) {
    const AT_ONCE: usize = 16;
    println!("slurm at scale: instant slices, {AT_ONCE} at a time");
    for n in [20, 100, 200] {
        let floor = empty_jobs(dir, n, AT_ONCE);
        let before = job_queries();
        let wall = goal(dir, n, AT_ONCE);
        let queries = job_queries() - before;
        let secs = wall.as_secs_f64();
        println!(
            "  {n:>3} slices: {secs:>6.1} s (sbatch --wait of {n} empty jobs: {:.1} s, ratio {:.2}x); {n} jobs; {queries} job queries: {:.2} per job, {:.2} per second",
            floor.as_secs_f64(),
            secs / floor.as_secs_f64(),
            queries as f64 / n as f64,
            queries as f64 / secs
        );
    }
}
