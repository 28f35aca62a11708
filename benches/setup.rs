//! Dependencies installed once (`[[setup]]`) against `npm ci` in every gate,
//! in one run: a Node package with a real dependency tree from the npm
//! registry (its lockfile resolved once at the start), a six-slice goal at
//! `--concurrency 3`, each slice's gate loading every dependency. Prints
//! both cold walls, their ratio and how often `npm ci` ran in each.
//!
//! Then a slice that adds one dependency, after a goal that installed the
//! base's: its setup run with the setup's download cache
//! (`$OMK_SETUP_CACHE`) against one with an empty cache of its own, with
//! what npm fetched from the registry in each.
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

/// Runs a goal of `plan` with `agent` on `repo`, omk's state in `home`,
/// to `ready`; its wall time and proof.
fn run_goal(
    repo: &Path,
    home: &Path,
    plan: &Path,
    agent: &str,
    extra: &[&str],
) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(repo)
        .args([
            "goal",
            "run",
            "bench",
            "--no-progress",
            "--json",
            "--agent",
            agent,
        ])
        .args(extra)
        .arg("--plan")
        .arg(plan)
        .env("OMK_HOME", home)
        .output()
        .unwrap();
    let wall = started.elapsed();
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        proof["status"],
        "ready",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (wall, proof)
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
    let agent = "exec:sh -c 'echo x > \"$OMK_SLICE_ID.txt\"'";
    let home = tmp.path().join("home");
    let (wall, _) = run_goal(&repo, &home, &plan, agent, &["--concurrency", "3"]);
    let runs = std::fs::read_to_string(tmp.path().join("runs")).unwrap_or_default();
    (wall, runs.lines().count())
}

/// The package with `extra` added to its dependencies, as the files an
/// agent writes (`package.json`, `package-lock.json`), resolved in `dir`.
fn with_dependency(dir: &Path, extra: (&str, &str)) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let mut deps: serde_json::Value = serde_json::from_str(DEPENDENCIES).unwrap();
    deps[extra.0] = serde_json::json!(extra.1);
    let package = serde_json::json!({"name": "omk-bench", "version": "1.0.0", "private": true, "dependencies": deps}).to_string();
    std::fs::write(dir.join("package.json"), &package).unwrap();
    let locked = Command::new("npm")
        .args(["install", "--package-lock-only", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(locked.success());
    (
        package,
        std::fs::read_to_string(dir.join("package-lock.json")).unwrap(),
    )
}

/// A goal of one slice adding `ms` to the package, after a goal that
/// installed the base's dependencies; its setup run's time and what npm
/// fetched from the registry in it, with the download cache or without.
fn added_dependency(with_cache: bool) -> (Duration, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path(), false);
    let cache = match with_cache {
        true => "\"$OMK_SETUP_CACHE\"",
        false => "\"$TMPDIR/npm-cache\"",
    };
    let toml = std::fs::read_to_string(repo.join("omk.toml"))
        .unwrap()
        .replace(
            "npm ci --no-audit --no-fund --cache \"$TMPDIR/npm-cache\"",
            &format!(
                "npm ci --prefer-offline --loglevel http --no-audit --no-fund --cache {cache}"
            ),
        );
    std::fs::write(repo.join("omk.toml"), toml).unwrap();
    git(&repo, &["commit", "-qam", "the recipe"]);
    let (package, lock) = with_dependency(&tmp.path().join("next"), ("ms", "2.1.3"));
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("package.json"), package).unwrap();
    std::fs::write(files.join("package-lock.json"), lock).unwrap();
    let goal = |slice: &str, agent: String| {
        let plan = tmp.path().join(format!("{slice}.json"));
        std::fs::write(
            &plan,
            format!(r#"{{"slices":[{{"id":"{slice}","prompt":"p","write_scope":["{slice}.txt","package.json","package-lock.json"]}}]}}"#),
        )
        .unwrap();
        run_goal(&repo, &tmp.path().join("home"), &plan, &agent, &[]).1
    };
    goal("warm", "exec:sh -c 'echo x > warm.txt'".into());
    let proof = goal("ms", format!("exec:sh -c 'cp {}/* .'", files.display()));
    let id = proof["goal_id"].as_str().unwrap();
    let goal_dir = tmp.path().join("home/repos");
    let state = std::fs::read_dir(&goal_dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let events =
        std::fs::read_to_string(state.join("goals").join(id).join("events.jsonl")).unwrap();
    let ran = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["kind"] == "setup_ready" && e["how"] == "ran" && e["slice"] == "ms")
        .expect("the slice's setup ran");
    let log = std::fs::read_to_string(
        state
            .join("goals")
            .join(id)
            .join("logs/ms/attempt-1/setup-npm.log"),
    )
    .unwrap_or_default();
    let fetched = log
        .lines()
        .filter(|l| {
            l.contains("npm http fetch") && l.contains(".tgz") && l.contains("(cache miss)")
        })
        .count();
    (
        Duration::from_millis(ran["duration_ms"].as_u64().unwrap()),
        fetched,
    )
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
    let (empty, empty_fetched) = added_dependency(false);
    let (cached, cached_fetched) = added_dependency(true);
    println!("a slice adding `ms`, after a goal that installed the base's:");
    println!(
        "  its npm ci from an empty cache (baseline): {:>5.1}s, tarballs fetched: {empty_fetched}",
        empty.as_secs_f64()
    );
    println!(
        "  from the download cache:                   {:>5.1}s, tarballs fetched: {cached_fetched}",
        cached.as_secs_f64()
    );
    println!(
        "  ratio: {:.2}x the baseline's time",
        cached.as_secs_f64() / empty.as_secs_f64()
    );
}
