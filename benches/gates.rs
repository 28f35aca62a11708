//! Gate-bound goals: instant agents, a slice gate that keeps one core busy
//! for T seconds. Wall time against the ideal list schedule of the same
//! gates on the same cores (⌈N / cores⌉ × T for one-core gates, N × T for
//! exclusive ones), measured in the same run; and, for a goal where half the
//! slices conflict, the gate runs spent on slices that then conflicted; and
//! `cargo test` gates in recycled slots with and without `[pool] keep`.
//!
//! Run with `cargo bench --bench gates`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::git;

/// A repository whose one slice gate is `gate` (with `cpus`, if given),
/// with a file every slice of a conflicting goal edits.
fn repo(dir: &Path, gate: &str, cpus: Option<usize>) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let mut toml = format!(
        "[[gate]]\nname = \"busy\"\ncommand = '''{gate}'''\ntimeout = \"5m\"\nscope = \"slice\"\nwritable = ['{}']\n",
        dir.display()
    );
    if let Some(n) = cpus {
        toml += &format!("cpus = {n}\n");
    }
    std::fs::write(repo.join("omk.toml"), toml).unwrap();
    std::fs::write(repo.join("shared.txt"), "base\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    repo
}

/// Runs a goal of `n` slices with `agent`, each writing its own file or, when
/// `shared`, the same line of one file; returns its wall time.
fn run(dir: &Path, repo: &Path, n: usize, agent: &str, shared: bool) -> Duration {
    let slices: Vec<String> = (0..n)
        .map(|i| {
            let scope = if shared {
                "shared.txt".to_string()
            } else {
                format!("s{i}.txt")
            };
            format!(r#"{{"id":"s{i}","prompt":"p","write_scope":["{scope}"]}}"#)
        })
        .collect();
    let plan = dir.join(format!("plan-{n}-{shared}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(repo)
        .args([
            "goal",
            "run",
            "gates",
            "--no-progress",
            "--no-base-check",
            "--max-attempts",
            "1",
            "--concurrency",
            &n.to_string(),
            "--agent",
            agent,
        ])
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", dir.join("home"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.code().is_some(), "omk was killed");
    started.elapsed()
}

/// A Cargo workspace: a `core_lib` crate that takes seconds to build and
/// one small crate per slice on top of it, with `cargo test` as the slice
/// gate (run alone: it uses every core) and `keep` as `[pool] keep`.
fn rust_repo(dir: &Path, slices: usize, keep: bool) -> std::path::PathBuf {
    let repo = dir.join("repo");
    let crates: Vec<String> = (0..slices).map(|i| format!("s{i}")).collect();
    let members: Vec<String> = std::iter::once("core".to_string())
        .chain(crates.iter().cloned())
        .map(|m| format!("\"{m}\""))
        .collect();
    let write = |path: &str, text: String| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    );
    write(
        "core/Cargo.toml",
        "[package]\nname = \"core_lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
    );
    let functions: String = (1..=1000)
        .map(|i| {
            format!(
                "pub fn f{i}(x: u64) -> u64 {{ (0..x).map(|y| y.wrapping_mul({i}) ^ {i}).sum::<u64>() + {i} }}\n"
            )
        })
        .collect();
    write("core/src/lib.rs", functions);
    for (i, name) in crates.iter().enumerate() {
        write(
            &format!("{name}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ncore_lib = {{ path = \"../core\" }}\n"),
        );
        write(
            &format!("{name}/src/lib.rs"),
            format!("pub fn run() -> u64 {{\n    core_lib::f{}(3)\n}}\n\n#[test]\nfn runs() {{\n    assert!(run() > 0);\n}}\n", i + 1),
        );
    }
    write(".gitignore", "/target\n".into());
    let mut toml = "[[gate]]\nname = \"test\"\ncommand = \"cargo test --offline -q\"\ntimeout = \"10m\"\nscope = \"slice\"\n".to_string();
    if keep {
        toml += "\n[pool]\nkeep = [\"target\"]\n";
    }
    write("omk.toml", toml);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    repo
}

/// Gate time of every slice after the first, in milliseconds. Each slice
/// depends on the one before, so each starts once that one has merged and
/// reuses its slot.
fn rust_gate_times(keep: bool) -> Vec<u64> {
    let n = 4;
    let tmp = tempfile::tempdir().unwrap();
    let repo = rust_repo(tmp.path(), n, keep);
    let slices: Vec<String> = (0..n)
        .map(|i| {
            let after = if i == 0 {
                String::new()
            } else {
                format!(r#""s{}""#, i - 1)
            };
            format!(
                r#"{{"id":"s{i}","prompt":"p","write_scope":["s{i}/**"],"depends_on":[{after}]}}"#
            )
        })
        .collect();
    let plan = tmp.path().join("plan.json");
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omk"));
    // The gates' cargo must not see this benchmark's own Cargo variables.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("-C")
        .arg(&repo)
        .args([
            "goal",
            "run",
            "rust",
            "--json",
            "--no-progress",
            "--no-base-check",
            "--concurrency",
            "1",
            "--agent",
            "exec:echo '// changed' >> \"$OMK_SLICE_ID/src/lib.rs\"",
        ])
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", tmp.path().join("home"))
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        proof["status"], "ready",
        "the Rust goal did not finish: {proof}"
    );
    // `s0` ran first, in a new slot: it built everything.
    proof["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] != "s0")
        .filter_map(|s| s["gates"][0]["duration_ms"].as_u64())
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // `cargo bench --bench gates -- rust` runs only the Rust one.
    let only_rust = std::env::args().any(|a| a == "rust");
    if !only_rust {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let t = Duration::from_secs(1);
        // One core busy for T: a shell loop, not a sleep.
        let busy = format!(
            "end=$(( $(date +%s%N) + {} )); while [ $(date +%s%N) -lt $end ]; do :; done",
            t.as_nanos()
        );
        for (cpus, label) in [(Some(1), "cpus = 1"), (None, "exclusive")] {
            for n in [8, 32] {
                let tmp = tempfile::tempdir().unwrap();
                let repo = repo(tmp.path(), &busy, cpus);
                let wall = run(
                    tmp.path(),
                    &repo,
                    n,
                    "exec:echo x > \"$OMK_SLICE_ID.txt\"",
                    false,
                );
                let ideal = match cpus {
                    Some(c) => t * (n.div_ceil(cores / c.max(1))) as u32,
                    None => t * n as u32,
                };
                println!(
                    "gates: {label:<9} N={n:<3} on {cores} cores   wall {:.2}s   ideal {:.2}s   ratio {:.3}x (target {})",
                    wall.as_secs_f64(),
                    ideal.as_secs_f64(),
                    wall.as_secs_f64() / ideal.as_secs_f64(),
                    if cpus.is_some() { "1.15x" } else { "1.05x" }
                );
            }
        }
        // Half the slices edit the line the first one merged: their gates would
        // be spent for nothing. Each gate run leaves a mark; the slices that
        // ended in conflict must have none.
        let tmp = tempfile::tempdir().unwrap();
        let marks = tmp.path().join("marks");
        let repo = repo(
            tmp.path(),
            &format!("cat shared.txt >> {}; sleep 0.2", marks.display()),
            Some(1),
        );
        let n = 8;
        let agent =
            "exec:sleep 0.$(( ${OMK_SLICE_ID#s} % 4 )); echo \"$OMK_SLICE_ID\" > shared.txt";
        run(tmp.path(), &repo, n, agent, true);
        // With one attempt each, exactly one slice merges; every other gate run
        // was spent on a slice that conflicted.
        let gated = std::fs::read_to_string(&marks).unwrap_or_default();
        println!(
            "gates: {n} slices editing one line: {} gate runs on slices that then conflicted (target 0)",
            gated.lines().count().saturating_sub(1)
        );
    }
    rust_keep();
}

/// `cargo test` gates in recycled slots, with and without `[pool] keep =
/// ["target"]`.
fn rust_keep() {
    let mean = |t: &[u64]| t.iter().sum::<u64>() as f64 / t.len().max(1) as f64 / 1000.0;
    let cold = rust_gate_times(false);
    let kept = rust_gate_times(true);
    println!(
        "gates: cargo test per slice after the first   without keep {:.2}s   with keep = [\"target\"] {:.2}s   ratio {:.3}x",
        mean(&cold),
        mean(&kept),
        mean(&kept) / mean(&cold)
    );
}
