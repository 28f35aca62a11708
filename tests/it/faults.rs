//! Crash safety by fault injection: the omk process is killed with SIGKILL at
//! many points of an 8-slice goal (`OMK_FAULT=kill:<point>:<n>`, debug builds),
//! then `omk goal resume` must end `ready` with exactly the integration tree
//! of an uninterrupted run, every slice's work merged, the log verifiable,
//! and `omk goal clean` must leave no worktree and no lock behind.
//!
//! The points are drawn deterministically from a seed (`OMK_FAULT_SEED`,
//! default 7); the suite prints how many it covered.

use crate::support::{files_under, gate_toml, Fixture};
use serde_json::{json, Value};

const SLICES: usize = 8;

fn fixture() -> (Fixture, std::path::PathBuf, String) {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "test -d .", "both")),
        ("README.md", "base\n"),
    ]);
    let slices: Vec<Value> = (0..SLICES)
        .map(|i| json!({"id": format!("s{i}"), "prompt": format!("write s{i}"), "write_scope": [format!("s{i}/**")]}))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let agent = f.agent(
        r#"mkdir -p "$OMK_SLICE_ID"; echo "work of $OMK_SLICE_ID" > "$OMK_SLICE_ID/out.txt""#,
    );
    (f, plan, agent)
}

fn run(
    f: &Fixture,
    plan: &std::path::Path,
    agent: &str,
    fault: Option<&str>,
    concurrency: &str,
) -> std::process::Output {
    run_with(f, plan, agent, fault, concurrency, &[])
}

/// [`run`] with more options.
fn run_with(
    f: &Fixture,
    plan: &std::path::Path,
    agent: &str,
    fault: Option<&str>,
    concurrency: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "goal",
        "run",
        "faults",
        "--plan",
        plan.to_str().unwrap(),
        "--agent",
        agent,
        "--concurrency",
        concurrency,
        "--json",
        "--no-progress",
    ];
    args.extend(extra);
    match fault {
        Some(spec) => f.omk_env(&args, &[("OMK_FAULT", spec)]),
        None => f.omk(&args),
    }
}

/// A small deterministic generator (xorshift), so the points follow the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The kill points of one run: for every kind, both ends of how often an
/// uninterrupted run passes it, and draws in between, from the seed.
fn draw_points(kinds: &[(&str, usize)]) -> (u64, Vec<(String, usize)>) {
    let seed: u64 = std::env::var("OMK_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut points: Vec<(String, usize)> = Vec::new();
    for &(kind, passes) in kinds {
        if passes == 0 {
            continue;
        }
        let mut ns = vec![1, passes];
        ns.extend((0..(passes / 3).max(2)).map(|_| 1 + rng.below(passes)));
        ns.sort();
        ns.dedup();
        points.extend(ns.into_iter().map(|n| (kind.to_string(), n)));
    }
    (seed, points)
}

/// How many events of `kind` the goal's log holds (of every kind, for "").
fn count_events(f: &Fixture, kind: &str) -> usize {
    let out = f.omk(&["goal", "replay", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| kind.is_empty() || l.contains(&format!("\"kind\":\"{kind}\"")))
        .count()
}

/// Kills a run at each point, resumes it, and checks that it ends `ready`
/// with `tree`, every slice's `files` on the branch, a log that verifies,
/// and nothing left behind by `goal clean`.
fn kill_and_resume_at(
    points: &[(String, usize)],
    setup: &dyn Fn() -> (Fixture, std::path::PathBuf, String),
    tree: &str,
    files: &[(String, String)],
) -> usize {
    let mut killed = 0;
    for (kind, n) in points {
        let spec = format!("kill:{kind}:{n}");
        let (f, plan, agent) = setup();
        let out = run(&f, &plan, &agent, Some(&spec), "3");
        if out.status.code().is_none() {
            killed += 1;
        }
        let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
        let proof: Value = serde_json::from_slice(&resumed.stdout).unwrap_or_else(|e| {
            panic!(
                "{spec}: resume printed no proof ({e}):\n{}",
                String::from_utf8_lossy(&resumed.stderr)
            )
        });
        assert_eq!(
            proof["status"],
            "ready",
            "{spec}: {proof:#}\nlogs of failed slices:\n{}",
            failed_logs(&proof)
        );
        assert_eq!(
            proof["integration"]["tree"], tree,
            "{spec}: a different integration tree"
        );
        let branch = proof["integration"]["branch"].as_str().unwrap();
        for (path, content) in files {
            assert_eq!(&f.show(branch, path), content, "{spec}");
        }
        let verify = f.omk(&["goal", "replay", "--verify"]);
        assert!(
            verify.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
        let clean = f.omk(&["goal", "clean"]);
        assert!(
            clean.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&clean.stderr)
        );
        let worktrees = f.worktrees();
        assert_eq!(
            worktrees.len(),
            1,
            "{spec}: leftover worktrees: {worktrees:?}"
        );
        let locks: Vec<_> = files_under(&f.home)
            .into_iter()
            .filter(|p| p.ends_with("lock"))
            .collect();
        assert!(locks.is_empty(), "{spec}: leftover lock {locks:?}");
    }
    killed
}

/// The logs a not-ready proof's slices name, for a failure message.
fn failed_logs(proof: &Value) -> String {
    let mut out = String::new();
    for s in proof["slices"].as_array().into_iter().flatten() {
        let Some(reason) = s["reason"].as_str() else {
            continue;
        };
        if let Some((_, path)) = reason.rsplit_once("log: ") {
            let text = std::fs::read_to_string(path.trim()).unwrap_or_else(|e| format!("({e})"));
            out += &format!("--- {} ({path}):\n{text}\n", s["id"]);
        }
    }
    out
}

/// The reference run of `setup`: its integration tree, and its log.
fn reference(setup: &dyn Fn() -> (Fixture, std::path::PathBuf, String)) -> (Fixture, String) {
    let (f, plan, agent) = setup();
    let out = run(&f, &plan, &agent, None, "3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tree = proof["integration"]["tree"].as_str().unwrap().to_string();
    (f, tree)
}

fn report(seed: u64, points: &[(String, usize)], killed: usize) {
    let mut kinds: Vec<&str> = points.iter().map(|(k, _)| k.as_str()).collect();
    kinds.dedup();
    println!(
        "fault suite: {} kill points (seed {seed}), {killed} of them reached and killed omk: {}",
        points.len(),
        kinds
            .iter()
            .map(|k| format!("{k}×{}", points.iter().filter(|(p, _)| p == k).count()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        killed * 10 >= points.len() * 9,
        "too few points were reached: {killed} of {}",
        points.len()
    );
}

#[test]
fn resume_after_a_kill_anywhere_reaches_the_uninterrupted_result() {
    let (f, tree) = reference(&fixture);
    // Every kind of point, and how often a run passes it.
    let kinds = [
        ("event", count_events(&f, "")),
        // The worktree pool creates one slot per slice running at once (3),
        // and one for the integration gates.
        ("worktree.added", 4),
        ("process.spawned", 2 * SLICES + 1),
        ("slice.committed", SLICES),
        ("merge.made", SLICES),
        ("branch.moved", count_events(&f, "integration_advanced")),
    ];
    let (seed, points) = draw_points(&kinds);
    let files: Vec<(String, String)> = (0..SLICES)
        .map(|i| (format!("s{i}/out.txt"), format!("work of s{i}")))
        .collect();
    let killed = kill_and_resume_at(&points, &fixture, &tree, &files);
    report(seed, &points, killed);
}

/// Four slices and one, `bad`, whose first attempt breaks the integration
/// gate (it passes its own): the candidate it is merged in fails, bisection
/// finds it, the slices merged after it are merged again, and its second
/// attempt, told the gate's output, repairs it.
fn bisect_fixture() -> (Fixture, std::path::PathBuf, String) {
    let gates = gate_toml("check", "test -d .", "slice")
        + &gate_toml(
            "whole",
            r#"if grep -q first bad/out.txt 2>/dev/null; then echo BAD-MARKER; exit 1; fi"#,
            "integration",
        );
    let f = Fixture::new(&[("omk.toml", &gates), ("README.md", "base\n")]);
    let slices: Vec<Value> = ["s0", "s1", "bad", "s2", "s3"]
        .iter()
        .map(|id| json!({"id": id, "prompt": format!("write {id}"), "write_scope": [format!("{id}/**")]}))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let agent = f.agent(
        r#"mkdir -p "$OMK_SLICE_ID"
if [ "$OMK_SLICE_ID" = bad ] && ! grep -qs BAD-MARKER "${OMK_FEEDBACK:-/nonexistent}"; then
  echo first > bad/out.txt
else
  echo "work of $OMK_SLICE_ID" > "$OMK_SLICE_ID/out.txt"
fi"#,
    );
    (f, plan, agent)
}

#[test]
fn resume_after_a_kill_during_bisection_and_re_merging_reaches_the_same_tree() {
    let (f, tree) = reference(&bisect_fixture);
    assert!(
        count_events(&f, "slice_ejected") >= 1,
        "the reference run took nothing out"
    );
    // Events from the first integration run on, where bisection and
    // re-merging happen, and every merge and branch move.
    let events = count_events(&f, "");
    let first_integration = {
        let out = f.omk(&["goal", "replay", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .position(|l| l.contains("\"kind\":\"integration_started\""))
            .unwrap()
            + 1
    };
    // How batches form varies from run to run; these are passed by every
    // run: each slice merges at least once and `bad` twice, and the branch
    // moves at least once; events up to the reference's last few.
    let (seed, mut points) = draw_points(&[("merge.made", 6), ("branch.moved", 1)]);
    let last = events.saturating_sub(5).max(first_integration);
    points.extend(
        (first_integration..=last)
            .step_by(((last - first_integration) / 8).max(1))
            .map(|n| ("event".to_string(), n)),
    );
    let files: Vec<(String, String)> = ["s0", "s1", "bad", "s2", "s3"]
        .iter()
        .map(|id| (format!("{id}/out.txt"), format!("work of {id}")))
        .collect();
    let killed = kill_and_resume_at(&points, &bisect_fixture, &tree, &files);
    report(seed, &points, killed);
}

#[test]
fn a_commit_made_just_before_a_kill_is_adopted_not_redone() {
    let (f, plan, _) = fixture();
    f.allow_agent_writes_to_scripts();
    let runs = f.scripts.join("runs");
    let agent = f.agent(&format!(
        r#"echo "$OMK_SLICE_ID" >> {runs}; mkdir -p "$OMK_SLICE_ID"; echo "work of $OMK_SLICE_ID" > "$OMK_SLICE_ID/out.txt""#,
        runs = runs.display()
    ));
    // One slice at a time: the kill lands right after s0's commit, before
    // the controller records it, with no other agent in flight.
    let out = run(&f, &plan, &agent, Some("kill:slice.committed:1"), "1");
    assert_eq!(out.status.code(), None, "the fault point was not reached");
    let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let proof: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let runs = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(
        runs.lines().filter(|l| *l == "s0").count(),
        1,
        "s0's agent ran again though its commit was there:\n{runs}"
    );
    assert_eq!(runs.lines().count(), SLICES, "{runs}");
}

#[test]
fn an_integration_branch_deleted_while_omk_was_down_is_made_again() {
    let (f, plan, agent) = fixture();
    // Killed right after the branch first moved, before that was recorded.
    let out = run(&f, &plan, &agent, Some("kill:branch.moved:1"), "3");
    assert_eq!(out.status.code(), None, "the fault point was not reached");
    let branch = f
        .git(&[
            "branch",
            "--list",
            "--format=%(refname:short)",
            "omk/*/integration",
        ])
        .trim()
        .to_string();
    // The `git worktree add` omk had started may still be writing its slot's
    // administrative files, which `git branch` reads: it is let finish.
    let deleted = (0..100).any(|_| {
        let done = std::process::Command::new("git")
            .arg("-C")
            .arg(&f.repo)
            .args(["branch", "-D", &branch])
            .output()
            .unwrap()
            .status
            .success();
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        done
    });
    assert!(deleted, "git branch -D {branch} kept failing");

    let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let proof: Value = serde_json::from_slice(&resumed.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&resumed.stderr));
    });
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(
        f.git(&["rev-parse", &format!("{branch}^{{tree}}")]),
        proof["integration"]["tree"].as_str().unwrap()
    );
    for i in 0..SLICES {
        assert_eq!(
            f.show(&branch, &format!("s{i}/out.txt")),
            format!("work of s{i}")
        );
    }
    let verify = f.omk(&["goal", "replay", "--verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_gate_that_panics_is_no_verdict_the_gate_runs_again_and_no_attempt_is_spent() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let agent = f.agent(r#"echo "$OMK_ATTEMPT" > a.txt"#);
    let plan = f.plan(serde_json::json!({ "slices": [crate::support::slice("a", &["a.txt"])] }));
    // The first gate omk runs panics inside omk: no verdict would ever be
    // sent, and the goal would wait for it forever; and a gate that could
    // not run judged nothing, so the slice is not blamed.
    let (code, proof, stderr) = f.run_goal_watched(
        &plan,
        &agent,
        &["--no-base-check", "--max-attempts", "2"],
        &[("OMK_FAULT", "panic:gate.run:1")],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let a = crate::support::slice_of(&proof, "a");
    assert_eq!(a["status"], "merged", "{a:#}");
    assert_eq!(a["attempts"], 1, "no attempt spent: {a:#}");
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay", "--json"]).stdout).into_owned();
    assert!(
        replay.contains("could not run: omk's gate job panicked: injected fault at gate.run"),
        "{replay}"
    );
}

#[test]
fn a_gate_job_that_panics_before_any_gate_still_ends_in_a_failed_verdict() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let agent = f.agent(r#"echo "$OMK_ATTEMPT" > a.txt"#);
    let plan = f.plan(serde_json::json!({ "slices": [crate::support::slice("a", &["a.txt"])] }));
    // The job panics while preparing its checkout, outside any one gate:
    // its verdict is still sent (no hang), and it judged nothing (no blame).
    let (code, proof, stderr) = f.run_goal_watched(
        &plan,
        &agent,
        &["--no-base-check", "--max-attempts", "2"],
        &[("OMK_FAULT", "panic:gate.job:1")],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let a = crate::support::slice_of(&proof, "a");
    assert_eq!(
        (a["status"].as_str(), a["attempts"].as_u64()),
        (Some("merged"), Some(1)),
        "{a:#}"
    );
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay", "--json"]).stdout).into_owned();
    assert!(
        replay.contains("omk's gate job panicked: injected fault at gate.job"),
        "{replay}"
    );

    // The base check's job: not the base's failure — the goal ends
    // `failed` (omk's or the machine's, exit 3) saying so, not `blocked`.
    let (code, proof, stderr) =
        f.run_goal_watched(&plan, &agent, &[], &[("OMK_FAULT", "panic:gate.job:base")]);
    assert_eq!(code, 3, "{stderr}\n{proof:#}");
    assert_eq!(proof["status"], "failed", "{proof:#}");
    let reason = proof["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("gate `check` could not run on the base commit")
            && reason.contains("panicked")
            && reason.contains("not of the base"),
        "{reason}"
    );
}

#[test]
fn git_gc_prune_now_during_a_run_takes_nothing_the_goal_still_needs() {
    // The first integration gate waits until the user's gc has run; by then
    // both slices are merged into the candidate, the second merge on no
    // branch yet: only the ref omk holds it by keeps it from gc.
    let marks = tempfile::tempdir().unwrap();
    let released = marks.path().join("released");
    let gate = format!(
        "while [ ! -e {0} ]; do sleep 0.05; done",
        released.display()
    );
    let toml = gate_toml("check", "true", "slice")
        + &gate_toml("whole", &gate, "integration")
        + &format!("[sandbox]\nreadable = ['{}']\n", marks.path().display());
    let f = Fixture::new(&[("omk.toml", &toml), ("README.md", "base\n")]);
    let slices: Vec<Value> = (0..2)
        .map(|i| json!({"id": format!("s{i}"), "prompt": "p", "write_scope": [format!("s{i}/**")]}))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let agent = f.agent(
        r#"mkdir -p "$OMK_SLICE_ID"; echo "work of $OMK_SLICE_ID" > "$OMK_SLICE_ID/out.txt""#,
    );
    let user = {
        let (home, repo, released) = (f.home.clone(), f.repo.clone(), released.clone());
        std::thread::spawn(move || {
            let merged = || {
                crate::support::files_under(&home)
                    .iter()
                    .filter(|p| p.ends_with("events.jsonl"))
                    .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                    .map(|log| log.matches("\"kind\":\"slice_merged\"").count())
                    .sum::<usize>()
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while merged() < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let gc = std::process::Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(["gc", "--prune=now", "--quiet"])
                .status()
                .unwrap();
            std::fs::write(&released, "").unwrap();
            gc.success()
        })
    };
    let out = run(&f, &plan, &agent, None, "2");
    assert!(user.join().unwrap(), "the user's gc ran");
    let proof: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    for s in proof["slices"].as_array().unwrap() {
        assert_eq!(s["attempts"], 1, "no slice was blamed: {s:#}");
    }
    let branch = format!("omk/{}/integration", proof["goal_id"].as_str().unwrap());
    for i in 0..2 {
        assert_eq!(
            f.show(&branch, &format!("s{i}/out.txt")),
            format!("work of s{i}")
        );
    }
    // Held while the goal ran, let go when it ended.
    let held = f.git(&["for-each-ref", "refs/omk/candidates/"]);
    assert_eq!(held, "", "{held}");
}

#[test]
fn a_full_disk_stops_the_goal_blaming_no_slice_and_resume_goes_on_once_there_is_room() {
    let (f, plan, agent) = fixture();
    // The first commit of a slice's work fails as on a full disk.
    let out = run(&f, &plan, &agent, Some("enospc:slice.commit:1"), "1");
    assert_eq!(out.status.code(), Some(3), "the machine's failure");
    let proof: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(proof["status"], "failed", "{proof:#}");
    let reason = proof["reason"].as_str().unwrap();
    assert!(
        reason.contains("the disk is full") && reason.contains("omk goal resume"),
        "{reason}"
    );
    let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let proof: Value = serde_json::from_slice(&resumed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&resumed.stderr)));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    for s in proof["slices"].as_array().unwrap() {
        assert_eq!(s["attempts"], 1, "the full disk spent no attempt: {s:#}");
    }
}

#[test]
fn replay_verify_and_verify_on_a_clone_report_the_same_merges_and_say_what_each_skipped() {
    let (f, plan, agent) = bisect_fixture();
    let bare = crate::deliver::remote(&f);
    let out = run_with(&f, &plan, &agent, None, "5", &["--deliver", "push"]);
    let proof: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let id = proof["goal_id"].as_str().unwrap();
    let here = f.omk(&["goal", "replay", id, "--verify"]);
    assert!(here.status.success());
    let here = String::from_utf8_lossy(&here.stdout).into_owned();
    let clone = crate::deliver::clone_of(&f, &bare, "reviewer");
    crate::deliver::fetch_proofs(&clone);
    let (code, there) = crate::deliver::omk_elsewhere(&clone, &["goal", "verify", id]);
    assert_eq!(code, 0, "{there}");
    let line = |said: &str, starts: &str| {
        said.lines()
            .find(|l| l.contains(starts))
            .unwrap_or_else(|| panic!("no `{starts}` in:\n{said}"))
            .to_string()
    };
    // The merges the branch is made of: the same, here and there.
    let branch = line(&here, "merges on the branch from base");
    assert_eq!(branch, line(&there, "merges on the branch from base"));
    assert!(branch.contains("OK: 5 merges on the branch"), "{branch}");
    // The dropped candidate's merges: as many on both sides; here they
    // rebuild, there what was skipped is said, with why.
    let dropped = |said: &str| {
        let l = line(said, "merges into dropped candidates");
        l.split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert!(dropped(&here) > 0, "{here}");
    assert_eq!(dropped(&here), dropped(&there), "{here}\n---\n{there}");
    let there_line = line(&there, "merges into dropped candidates");
    assert!(
        there_line.contains("not in this repository") && there_line.contains("on no pushed branch"),
        "{there_line}"
    );
}

#[test]
fn a_lock_on_the_candidate_s_hold_left_by_a_killed_run_does_not_stop_resume() {
    let (f, plan, agent) = fixture();
    // Killed right after a merge was made and held, before it was recorded;
    // as if killed while writing the hold, its lock file is left.
    let out = run(&f, &plan, &agent, Some("kill:merge.made:1"), "3");
    assert_eq!(out.status.code(), None, "the fault point was not reached");
    let held = f.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/omk/candidates/",
    ]);
    assert!(!held.is_empty(), "the killed run's candidate stays held");
    let lock = f.repo.join(".git").join(format!("{held}.lock"));
    std::fs::write(&lock, "").unwrap();
    let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let proof: Value = serde_json::from_slice(&resumed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&resumed.stderr)));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    for s in proof["slices"].as_array().unwrap() {
        assert_eq!(s["attempts"], 1, "{s:#}");
    }
    assert!(!lock.exists());
    assert_eq!(
        f.git(&["for-each-ref", "refs/omk/candidates/"]),
        "",
        "let go at the end"
    );
}

#[test]
fn a_merge_the_machine_cannot_make_blames_no_slice_and_resume_merges_it() {
    let f = Fixture::new(&[("README.md", "merge\n")]);
    f.allow_agent_writes_to_scripts();
    let (started, go) = (f.scripts.join("a-started"), f.scripts.join("go"));
    let agent = f.agent(&format!(
        r#"touch '{s}'; while [ ! -e '{g}' ]; do sleep 0.05; done; echo x > "$OMK_SLICE_ID.txt""#,
        s = started.display(),
        g = go.display()
    ));
    let plan = f.plan(json!({ "slices": [crate::support::slice("a", &["a.txt"])] }));
    let args = Fixture::run_args(plan.to_str().unwrap(), &agent, &["--allow-no-gates"]);
    let run = f
        .omk_command(&args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !started.exists() {
        assert!(t0.elapsed().as_secs() < 60, "the agent never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Something holds the lock of the candidate's ref while the slice is
    // merged: git cannot write it.
    let list: Value = serde_json::from_slice(&f.omk(&["goal", "list", "--json"]).stdout).unwrap();
    let goal = list[0]["goal_id"].as_str().unwrap().to_string();
    let lock = f.repo.join(format!(".git/refs/omk/candidates/{goal}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    std::fs::write(&go, "").unwrap();
    let mut run = run;
    let t0 = std::time::Instant::now();
    while run.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() > 120 {
            let _ = run.kill();
            panic!("the goal waited for a merge that will never come");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["status"], "failed", "{proof:#}");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("not of the slice"),
        "{proof:#}"
    );
    let a = crate::support::slice_of(&proof, "a");
    assert_ne!(a["status"], "failed", "the slice was blamed: {a:#}");
    // Mended, the goal is resumed: the slice is merged, its attempt unspent.
    std::fs::remove_file(&lock).unwrap();
    let resumed = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let proof: Value = serde_json::from_slice(&resumed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&resumed.stderr)));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let a = crate::support::slice_of(&proof, "a");
    assert_eq!(a["status"], "merged", "{a:#}");
    assert_eq!(a["attempts"], 1, "{a:#}");
}

/// A lock on the integration branch that the user's side left (a `git`
/// killed while it held it) is waited out, then cleared, and the branch
/// moves: the goal ends ready, not crashed in the integrator.
#[test]
fn a_lock_left_on_the_integration_branch_is_waited_out_and_cleared() {
    let f = Fixture::new(&[("README.md", "base\n")]);
    let heads = f.repo.join(".git/refs/heads/omk");
    std::fs::create_dir_all(&heads).unwrap();
    f.write(
        "omk.toml",
        &format!(
            r#"[[gate]]
name = "check"
command = "test -d ."
scope = "both"

[[gate]]
name = "leave-a-lock"
command = 'mkdir -p "{heads}/$OMK_GOAL_ID" && touch "{heads}/$OMK_GOAL_ID/integration.lock"'
scope = "integration"

[sandbox]
writable = ['{heads}']
"#,
            heads = heads.display()
        ),
    );
    f.git(&["add", "-A"]);
    f.git(&["commit", "-qm", "gates"]);
    let plan = f.plan(json!({ "slices": [
        {"id": "a", "prompt": "write a", "write_scope": ["a.txt"]}
    ]}));
    let agent = f.agent(r#"echo a > a.txt"#);
    let out = run(&f, &plan, &agent, None, "1");
    let proof: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let id = proof["goal_id"].as_str().unwrap();
    assert_eq!(f.show(&format!("omk/{id}/integration"), "a.txt"), "a");
    assert!(!heads.join(id).join("integration.lock").exists());
}
