//! Goals of sleeping agents: wall time against the ideal ⌈N / C⌉ × T, and
//! omk's own peak memory (VmHWM of the omk process, agents excluded) with
//! 256 slices in flight, measured in the same run.
//!
//! The pool starts warm, as for any goal after the first on a repository:
//! an untimed goal of 16 slices makes the slots first.
//!
//! Run with `cargo bench --bench scale`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::git;

/// Runs a goal of `n` slices whose agents sleep `t`, `c` at a time (each
/// depending on the one before, with `chain`); returns the wall time and
/// omk's peak resident memory in kB.
fn run_goal(dir: &Path, n: usize, c: usize, t: Duration, chain: bool) -> (Duration, u64) {
    let slices: Vec<String> = (0..n)
        .map(|i| {
            let deps = match (chain, i) {
                (true, 1..) => format!(r#","depends_on":["s{}"]"#, i - 1),
                _ => String::new(),
            };
            format!(r#"{{"id":"s{i}","prompt":"sleep","write_scope":["s{i}.txt"]{deps}}}"#)
        })
        .collect();
    let plan = dir.join(format!("plan-{n}-{c}-{chain}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(dir.join("repo"))
        .args([
            "goal",
            "run",
            "sleep",
            "--no-progress",
            "--allow-no-gates",
            "--concurrency",
            &c.to_string(),
            "--agent",
        ])
        .arg(format!(
            "exec:sleep {}; echo done > \"$OMK_SLICE_ID.txt\"",
            t.as_secs_f64()
        ))
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", dir.join("home"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    loop {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        if let Some(kb) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            peak = peak.max(
                kb.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse()
                    .unwrap_or(0),
            );
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "omk failed");
            return (started.elapsed(), peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(dir: &Path, n: usize, c: usize, t: Duration) -> (Duration, u64) {
    run_goal(dir, n, c, t, false)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    run(tmp.path(), 16, 16, Duration::ZERO);
    // What omk adds is a cost per wave of C slices (preparing slots,
    // committing, the last merges), so the ratio shrinks as T grows.
    for (n, c, t) in [(16, 4, 2), (32, 16, 2), (32, 16, 5)] {
        let t = Duration::from_secs(t);
        let (wall, _) = run(tmp.path(), n, c, t);
        let ideal = t * n.div_ceil(c) as u32;
        println!(
            "scale: N={n:<3} C={c:<3} T={}s   wall {:.2}s   ideal {:.2}s   ratio {:.3}x",
            t.as_secs(),
            wall.as_secs_f64(),
            ideal.as_secs_f64(),
            wall.as_secs_f64() / ideal.as_secs_f64()
        );
    }
    // A dependency chain runs one slice at a time: its cost per slice must
    // be that of as many independent slices run one at a time, and stay
    // flat as the chain grows.
    let per_slice = |n: usize, chain: bool| {
        let (wall, _) = run_goal(tmp.path(), n, 1, Duration::ZERO, chain);
        wall.as_secs_f64() / n as f64
    };
    let independent = per_slice(200, false);
    let (short, long) = (per_slice(200, true), per_slice(400, true));
    println!(
        "scale: one at a time, per slice: 200 independent {:.0} ms, chain of 200 {:.0} ms ({:.2}x), chain of 400 {:.0} ms ({:.2}x of the chain of 200; target 1.2x)",
        independent * 1000.0,
        short * 1000.0,
        short / independent,
        long * 1000.0,
        long / short
    );
    let (wall, peak) = run(tmp.path(), 256, 256, Duration::from_secs(5));
    println!(
        "scale: N=256 in flight   omk peak RSS {:.1} MB (target 100 MB)   ratio {:.2}x of target   wall {:.1}s",
        peak as f64 / 1000.0,
        peak as f64 / 100_000.0,
        wall.as_secs_f64()
    );
}
