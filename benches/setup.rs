//! Dependencies installed once (`[[setup]]`) against `npm ci` in every gate,
//! in one run: a Node package with a real dependency tree from the npm
//! registry (its lockfile resolved once at the start), a six-slice goal at
//! `--concurrency 3`, each slice's gate loading every dependency. Prints
//! both cold walls, their ratio and how often `npm ci` ran in each.
//!
//! Run with `cargo bench --bench setup` (needs node, npm and the registry).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use support::git;

const SLICES: usize = 6;
const DEPENDENCIES: &str = r#"{"chalk": "4.1.2", "lodash": "4.17.21", "semver": "7.6.0", "commander": "12.1.0", "uuid": "9.0.1"}"#;

/// The package, its lockfile resolved from the registry, committed with
/// `omk.toml` whose gate installs (`in_gate`) or whose setup does.
fn repo(dir: &Path, in_gate: bool) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let package = format!(
        r#"{{"name": "omk-bench", "version": "1.0.0", "private": true, "dependencies": {DEPENDENCIES}}}"#
    );
    std::fs::write(repo.join("package.json"), package).unwrap();
    let locked = Command::new("npm")
        .args(["install", "--package-lock-only", "--no-audit", "--no-fund"])
        .current_dir(&repo)
        .status()
        .expect("npm is needed");
    assert!(locked.success(), "npm could not resolve the lockfile");
    let runs = dir.join("runs");
    let install = format!(
        "echo run >> {}; npm ci --no-audit --no-fund --cache \"$TMPDIR/npm-cache\"",
        runs.display()
    );
    let test = "node -e \"for (const d of Object.keys(require('./package.json').dependencies)) require(d)\"";
    let toml = match in_gate {
        true => format!(
            "[[gate]]\nname = \"test\"\ncommand = '''{install} && {test}'''\ntimeout = \"10m\"\nscope = \"slice\"\nallow_hosts = [\"registry.npmjs.org\"]\n"
        ),
        false => format!(
            "[[setup]]\nname = \"npm\"\ncommand = '''{install}'''\ninputs = [\"package-lock.json\"]\noutputs = [\"node_modules\"]\nallow_hosts = [\"registry.npmjs.org\"]\n\n[[gate]]\nname = \"test\"\ncommand = '''{test}'''\ntimeout = \"10m\"\nscope = \"slice\"\n"
        ),
    } + &format!("\n[sandbox]\nwritable = ['{}']\n", dir.display());
    std::fs::write(repo.join("omk.toml"), toml).unwrap();
    std::fs::write(repo.join(".gitignore"), "node_modules/\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    repo
}

/// A cold goal (a new state home: no slot, no setup kept) on a new
/// repository; its wall time and how often `npm ci` ran.
fn cold_goal(in_gate: bool) -> (Duration, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path(), in_gate);
    let slices: Vec<String> = (0..SLICES)
        .map(|i| format!(r#"{{"id":"s{i}","prompt":"p","write_scope":["s{i}.txt"]}}"#))
        .collect();
    let plan = tmp.path().join("plan.json");
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(&repo)
        .args([
            "goal",
            "run",
            "bench",
            "--no-progress",
            "--json",
            "--concurrency",
            "3",
        ])
        .args(["--agent", "exec:sh -c 'echo x > \"$OMK_SLICE_ID.txt\"'"])
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let wall = started.elapsed();
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(
        proof["status"],
        "ready",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = std::fs::read_to_string(tmp.path().join("runs")).unwrap_or_default();
    (wall, runs.lines().count())
}

fn main() {
    let (gate_wall, gate_runs) = cold_goal(true);
    let (setup_wall, setup_runs) = cold_goal(false);
    println!("setup: {SLICES} slices at --concurrency 3, {DEPENDENCIES}");
    println!(
        "  npm ci in every gate (baseline): {:>6.1}s, npm ci ran {gate_runs} times",
        gate_wall.as_secs_f64()
    );
    println!(
        "  [[setup]] once per lockfile:     {:>6.1}s, npm ci ran {setup_runs} times",
        setup_wall.as_secs_f64()
    );
    println!(
        "  ratio: {:.2}x the baseline's wall",
        setup_wall.as_secs_f64() / gate_wall.as_secs_f64()
    );
}
