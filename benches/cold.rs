//! A cold goal on a Cargo workspace with a real dependency tree, against
//! one cold build and a warm goal, in one run.
//!
//! The workspace: a `core_lib` crate depending on serde (derive),
//! serde_json, regex, clap (derive), rand and itertools — about 45 crates
//! from crates.io, vendored once into `target/omk-bench-cold/vendor` (the
//! only time the registry is asked) — and one small crate per slice on top
//! of it; `cargo test --offline` is the slice gate, `[pool] keep =
//! ["target"]`. Six slices at `--concurrency 3`, each changing its own
//! crate. Measured, in this order:
//!
//! - one cold build: `cargo test` in a fresh clone, as a user would run it;
//! - the cold goal: a new state home (no slot, nothing kept);
//! - the warm goal: six other changes on the slots the cold goal left,
//!   `--no-gate-cache`.
//!
//! Prints the walls, the slots made, the pool's peak disk (sampled) and what
//! one slot with its build takes, and the targets' ratios.
//!
//! Run with `cargo bench --bench cold` (needs crates.io once);
//! `OMK_BENCH_BIN=<omk>` runs the goals with another build of omk.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use support::git;

const SLICES: usize = 6;
const CONCURRENCY: usize = 3;
const DEPENDENCIES: &str = r#"serde = { version = "1", features = ["derive"] }
serde_json = "1"
regex = "1"
clap = { version = "4", features = ["derive"] }
rand = "0.8"
itertools = "0.13"
"#;

/// A `cargo` without this benchmark's own Cargo variables.
fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The dependencies' sources and lockfile, fetched from crates.io the first
/// time only.
fn vendored() -> (PathBuf, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/omk-bench-cold");
    let (vendor, lock) = (dir.join("vendor"), dir.join("Cargo.lock"));
    if !lock.exists() {
        let ws = dir.join("resolve");
        let _ = std::fs::remove_dir_all(&ws);
        write(&ws, "Cargo.toml", &package("core_lib", DEPENDENCIES));
        write(&ws, "src/lib.rs", "");
        let ok = cargo()
            .args(["vendor", "-q"])
            .arg(&vendor)
            .current_dir(&ws)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "cargo vendor needs crates.io the first time");
        std::fs::copy(ws.join("Cargo.lock"), &lock).unwrap();
    }
    (vendor, std::fs::read_to_string(lock).unwrap())
}

fn package(name: &str, dependencies: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{dependencies}")
}

/// The workspace, committed, with its `omk.toml`.
fn repo(dir: &Path) -> PathBuf {
    let (vendor, lock) = vendored();
    let repo = dir.join("repo");
    let crates: Vec<String> = (0..SLICES).map(|i| format!("s{i}")).collect();
    let members: Vec<String> = std::iter::once("core".to_string())
        .chain(crates.iter().cloned())
        .map(|m| format!("\"{m}\""))
        .collect();
    write(
        &repo,
        "Cargo.toml",
        &format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    );
    // The lockfile names the core package by its name: the same resolution.
    write(&repo, "Cargo.lock", &lock);
    write(&repo, "core/Cargo.toml", &package("core_lib", DEPENDENCIES));
    write(
        &repo,
        "core/src/lib.rs",
        "use serde::{Deserialize, Serialize};\n\n#[derive(Serialize, Deserialize, clap::Parser, Debug)]\npub struct Options { #[arg(long)] pub pattern: String }\n\npub fn matches(o: &Options, text: &str) -> bool {\n    let json = serde_json::to_string(o).unwrap();\n    let back: Options = serde_json::from_str(&json).unwrap();\n    let n: u8 = rand::random();\n    let _ = itertools::Itertools::join(&mut [n].iter(), \",\");\n    regex::Regex::new(&back.pattern).unwrap().is_match(text)\n}\n",
    );
    for name in &crates {
        write(
            &repo,
            &format!("{name}/Cargo.toml"),
            &package(name, "core_lib = { path = \"../core\" }\n"),
        );
        write(
            &repo,
            &format!("{name}/src/lib.rs"),
            "pub fn run() -> bool {\n    core_lib::matches(&core_lib::Options { pattern: \"a+\".into() }, \"aa\")\n}\n\n#[test]\nfn runs() {\n    assert!(run());\n}\n",
        );
    }
    write(
        &repo,
        ".cargo/config.toml",
        &format!(
            "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"{}\"\n",
            vendor.display()
        ),
    );
    write(&repo, ".gitignore", "/target\n");
    write(
        &repo,
        "omk.toml",
        &format!(
            "[[gate]]\nname = \"test\"\ncommand = \"cargo test --offline -q\"\ntimeout = \"20m\"\nscope = \"slice\"\n\n[pool]\nkeep = [\"target\"]\n\n[sandbox]\nreadable = ['{}']\n",
            vendor.display()
        ),
    );
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    repo
}

/// `cargo test` in a fresh clone of `repo`, timed.
fn one_cold_build(dir: &Path, repo: &Path) -> Duration {
    let clone = dir.join("clone");
    let ok = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo)
        .arg(&clone)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let started = Instant::now();
    let ok = cargo()
        .args(["test", "--offline", "-q"])
        .current_dir(&clone)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "the workspace's tests fail");
    let wall = started.elapsed();
    let _ = std::fs::remove_dir_all(&clone);
    wall
}

/// Bytes under `path`, as `du` counts them (hard links once).
fn disk(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sk").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// A goal of six slices, each adding a test to its own crate (`round`
/// tells goals apart); its wall and the pool's peak disk while it ran.
fn goal(repo: &Path, home: &Path, round: usize, extra: &[&str]) -> (Duration, u64) {
    let slices: Vec<String> = (0..SLICES)
        .map(|i| format!(r#"{{"id":"s{i}","prompt":"p","write_scope":["s{i}/**"]}}"#))
        .collect();
    let plan = home.with_extension(format!("plan-{round}.json"));
    std::fs::write(&plan, format!(r#"{{"slices":[{}]}}"#, slices.join(","))).unwrap();
    let agent = format!(
        "exec:sh -c 'printf \"\\n#[test]\\nfn round_{round}() {{ assert!(run()); }}\\n\" >> \"$OMK_SLICE_ID/src/lib.rs\"'"
    );
    let (done, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let sampler = {
        let (done, peak, pool) = (done.clone(), peak.clone(), home.join("repos"));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(disk(&pool), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let started = Instant::now();
    // `OMK_BENCH_BIN` measures another build of omk (an older one, say).
    let omk = std::env::var_os("OMK_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_omk").into());
    let mut cmd = Command::new(omk);
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("-C")
        .arg(repo)
        .args(["goal", "run", "cold", "--no-progress", "--json"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(extra)
        .args(["--agent", &agent])
        .arg("--plan")
        .arg(&plan)
        .env("OMK_HOME", home)
        .output()
        .unwrap();
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(
        proof["status"],
        "ready",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        wall,
        peak.load(Ordering::Relaxed).max(disk(&home.join("repos"))),
    )
}

/// The pool's `slot-N` worktrees.
fn slots(home: &Path) -> Vec<PathBuf> {
    let repos = std::fs::read_dir(home.join("repos")).unwrap();
    let mut slots = vec![];
    for repo in repos.flatten() {
        let Ok(pool) = std::fs::read_dir(repo.path().join("pool")) else {
            continue;
        };
        slots.extend(pool.flatten().map(|e| e.path()).filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("slot-") && !name.contains('.')
        }));
    }
    slots
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let build = one_cold_build(tmp.path(), &repo);
    let home = tmp.path().join("home");
    let (cold, peak) = goal(&repo, &home, 1, &[]);
    let made = slots(&home);
    let one_slot = made.iter().map(|s| disk(s)).max().unwrap_or(0);
    let (warm, _) = goal(&repo, &home, 2, &["--no-gate-cache"]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // `cargo test` declares no cores, so its gates run one at a time.
    let gate_slots = 1;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "cold: {SLICES} slices at --concurrency {CONCURRENCY}, cargo test gates, [pool] keep = [\"target\"], {cores} cores"
    );
    println!(
        "  one cold build (cargo test, fresh clone): {:>6.1}s",
        build.as_secs_f64()
    );
    println!(
        "  cold goal (new state home):               {:>6.1}s",
        cold.as_secs_f64()
    );
    println!(
        "  warm goal (--no-gate-cache):              {:>6.1}s",
        warm.as_secs_f64()
    );
    let ratio = cold.as_secs_f64() / (build + warm).as_secs_f64();
    println!("  cold / (one cold build + warm): {ratio:.2}x (target <= 1.25x)");
    println!(
        "  slots made: {} (target <= {CONCURRENCY} agents + {gate_slots} gate job = {})",
        made.len(),
        CONCURRENCY + gate_slots
    );
    let bound = 1.5 * one_slot as f64 * made.len() as f64;
    println!(
        "  peak disk of the pool: {:.0} MB; one slot with its build {:.0} MB; ratio {:.2}x of 1.5 x slot x slots (target <= 1.00x)",
        mb(peak),
        mb(one_slot),
        peak as f64 / bound
    );
}
