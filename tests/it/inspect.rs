//! Inspecting finished goals: list, status, proof, replay, verify, delivery.

use crate::support::{gate_toml, slice, slice_of, Fixture};
use serde_json::{json, Value};

fn ready_goal(f: &Fixture, extra: &[&str]) -> Value {
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, extra);
    assert_eq!(code, 0, "{stderr}");
    proof
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn list_status_and_proof_show_the_same_goal() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let proof = ready_goal(&f, &[]);
    let id = proof["goal_id"].as_str().unwrap();

    let list: Value = serde_json::from_str(&stdout(&f.omk(&["goal", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["goal_id"], id);
    assert_eq!(list[0]["status"], "ready");
    assert_eq!(list[0]["merged"], 2);

    let status: Value =
        serde_json::from_str(&stdout(&f.omk(&["goal", "status", "--json"]))).unwrap();
    assert_eq!(
        status, proof,
        "status of `latest` is the proof the run printed"
    );
    let by_prefix: Value =
        serde_json::from_str(&stdout(&f.omk(&["goal", "proof", &id[..10], "--json"]))).unwrap();
    assert_eq!(by_prefix, proof);

    let md = stdout(&f.omk(&["goal", "proof", "--markdown"]));
    assert!(
        md.contains("| `a` | slice a | merged | 1 | 1 file, +1 −0 | ✓ check |"),
        "{md}"
    );
    // Not pushed: no fetch of a proof that is nowhere, but how to check it here.
    assert!(
        md.contains("### Verify it yourself")
            && md.contains(&format!("omk goal replay {id} --verify"))
            && !md.contains("git fetch"),
        "{md}"
    );
    assert!(md.contains("**Status:** ✅ ready"));
    let text = stdout(&f.omk(&["goal", "proof"]));
    assert!(text.contains("status: ready"), "{text}");
}

#[test]
fn replay_is_byte_identical_and_verify_catches_tampering() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let proof = ready_goal(&f, &[]);
    let id = proof["goal_id"].as_str().unwrap();

    let first = stdout(&f.omk(&["goal", "replay", id]));
    assert_eq!(first, stdout(&f.omk(&["goal", "replay", id])));
    assert!(first.contains("goal finished: ready"));
    let json = stdout(&f.omk(&["goal", "replay", id, "--json"]));
    let log = f.goal_dir(id).join("events.jsonl");
    assert_eq!(
        json,
        std::fs::read_to_string(&log).unwrap(),
        "--json replays the log as written"
    );
    for (i, line) in json.lines().enumerate() {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["ts"].is_string() && e["kind"].is_string());
    }

    let ok = f.omk(&["goal", "replay", id, "--verify"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // A rewritten integration branch is caught.
    let branch = proof["integration"]["branch"].as_str().unwrap();
    let good = f.git(&["rev-parse", branch]);
    f.git(&[
        "update-ref",
        &format!("refs/heads/{branch}"),
        proof["base_commit"].as_str().unwrap(),
    ]);
    let bad = f.omk(&["goal", "replay", id, "--verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL"));
    f.git(&["update-ref", &format!("refs/heads/{branch}"), &good]);

    // So is a log whose recorded merge result was edited.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut edited = false;
    let tampered: Vec<String> = text
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).unwrap();
            if !edited && e["kind"] == "slice_merged" {
                e["tree"] = json!("0".repeat(40));
                edited = true;
            }
            serde_json::to_string(&e).unwrap()
        })
        .collect();
    std::fs::write(&log, tampered.join("\n") + "\n").unwrap();
    let bad = f.omk(&["goal", "replay", id, "--verify"]);
    assert_eq!(bad.status.code(), Some(1));
    // The edit breaks the hash chain.
    let said = String::from_utf8_lossy(&bad.stdout);
    assert!(
        said.contains("FAIL") && said.contains("the log was edited"),
        "{said}"
    );
}

#[test]
fn deliver_ff_moves_only_a_branch_that_is_free_and_unmoved() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let main_before = f.git(&["rev-parse", "main"]);
    // `main` is checked out: refused, left as it was; the goal is ready, its delivery did not happen.
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--deliver", "ff"]);
    assert_eq!(code, 1);
    assert_eq!(proof["status"], "ready");
    assert_eq!(proof["delivery"]["delivered"], false);
    // It names the exact command that delivers, and the command works.
    let reason = proof["delivery"]["reason"].as_str().unwrap();
    let repo = f.repo.canonicalize().unwrap();
    let command = format!(
        "git -C {} merge --ff-only {}",
        repo.display(),
        proof["integration"]["branch"].as_str().unwrap()
    );
    assert!(
        reason.contains("main is checked out") && reason.contains(&command),
        "{reason}"
    );
    assert_eq!(f.git(&["rev-parse", "main"]), main_before);
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let ok = std::process::Command::new("git")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        f.git(&["rev-parse", "main^{tree}"]),
        proof["integration"]["tree"].as_str().unwrap()
    );
    f.git(&["reset", "-q", "--hard", &main_before]);

    // A branch nobody has checked out is fast-forwarded to the integration.
    f.git(&["branch", "release"]);
    let proof = ready_goal(&f, &["--deliver", "ff", "--base", "release"]);
    assert_eq!(
        proof["delivery"]["delivered"], true,
        "{}",
        proof["delivery"]
    );
    assert_eq!(
        f.git(&["rev-parse", "release"]),
        proof["integration"]["commit"].as_str().unwrap()
    );
    assert_eq!(f.git(&["rev-parse", "main"]), main_before);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    ready_goal(&f, &[]);
    for args in [
        &["goal", "list"][..],
        &["goal", "status"],
        &["goal", "status", "--json"],
        &["goal", "proof", "--json"],
        &["goal", "proof", "--markdown"],
        &["goal", "replay"],
        &["goal", "replay", "--json"],
    ] {
        // What reads the output is gone before omk writes (`omk … | true`).
        let mut child = f
            .omk_command(args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn a_linked_worktree_of_the_repository_sees_the_same_goals() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let proof = ready_goal(&f, &[]);
    let linked = f.tmp.path().join("linked");
    f.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        linked.to_str().unwrap(),
    ]);
    let in_linked = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_omk"))
            .arg("-C")
            .arg(&linked)
            .args(args)
            .env("OMK_HOME", &f.home)
            .output()
            .unwrap()
    };
    let list: Value =
        serde_json::from_str(&stdout(&in_linked(&["goal", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["goal_id"], proof["goal_id"], "{list:#}");
    let doctor = stdout(&in_linked(&["doctor"]));
    assert!(doctor.contains("orphans:    none"), "{doctor}");
}

#[test]
fn a_planning_worktree_a_killed_omk_left_is_seen_by_doctor_and_removed_by_clean() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let doctor = stdout(&f.omk(&["doctor"]));
    let state_dir = doctor
        .lines()
        .find_map(|l| l.strip_prefix("state dir:"))
        .unwrap()
        .trim()
        .to_string();
    // What a planning run killed mid-way leaves: its worktree, its lock free.
    let stray = std::path::Path::new(&state_dir).join("planning/plan-dead/worktree");
    f.git(&["worktree", "add", "-q", "--detach", stray.to_str().unwrap()]);
    let doctor = stdout(&f.omk(&["doctor"]));
    assert!(
        doctor.contains(&format!("worktree remove --force {}", stray.display())),
        "{doctor}"
    );
    let clean = stdout(&f.omk(&["goal", "clean", "--all"]));
    assert!(clean.contains("stray planning worktree"), "{clean}");
    assert!(!stray.exists());
    assert_eq!(f.worktrees().len(), 1, "{:?}", f.worktrees());
    assert!(stdout(&f.omk(&["doctor"])).contains("orphans:    none"));
}

/// A finished goal of two slices: `good` passes its gate, `bad` fails it
/// (its agent also says something on stdout).
fn one_good_one_bad() -> (Fixture, Value) {
    let gate = r#"test -e ok.txt || { echo "gate says: ok.txt is missing"; exit 1; }"#;
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", gate, "slice"))]);
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  good) printf 'ok\n' > ok.txt ;;
  bad) echo "agent bad speaks"; printf 'bad\n' > bad.txt ;;
esac"#,
    );
    let plan =
        f.plan(json!({ "slices": [slice("good", &["ok.txt"]), slice("bad", &["bad.txt"])] }));
    let (code, proof, stderr) = f.run_goal(
        &plan,
        &agent,
        &[
            "--max-attempts",
            "1",
            "--concurrency",
            "2",
            "--no-base-check",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    (f, proof)
}

#[test]
fn logs_show_the_failing_gate_the_agent_and_every_failed_step() {
    let (f, proof) = one_good_one_bad();
    let text = |args: &[&str]| {
        let out = f.omk(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // By default the last attempt's failing gate, raw into a pipe.
    assert_eq!(
        text(&["goal", "logs", "bad"]).trim(),
        "gate says: ok.txt is missing"
    );
    let id = proof["goal_id"].as_str().unwrap();
    assert_eq!(
        text(&["goal", "logs", id, "bad", "--gate", "check"]).trim(),
        "gate says: ok.txt is missing"
    );
    assert!(text(&["goal", "logs", "bad", "--agent"]).contains("agent bad speaks"));
    // Every failed step, each under a header; nothing of what passed.
    let failed = text(&["goal", "logs", "--failed"]);
    assert!(
        failed.contains("==> bad attempt 1 · gate check · exit 1 · ")
            && failed.contains("gate says: ok.txt is missing"),
        "{failed}"
    );
    assert!(!failed.contains("good"), "{failed}");

    // Asking for what is not there says what is.
    let refused = |args: &[&str], says: &str| {
        let out = f.omk(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(
        &["goal", "logs", "nope"],
        "no slice `nope`; its slices: good, bad",
    );
    refused(
        &["goal", "logs", "bad", "--gate", "lint"],
        "ran no gate `lint`; it ran: agent, gate check",
    );
    refused(
        &["goal", "logs", "bad", "--attempt", "2"],
        "slice `bad` has 1 attempt",
    );
    refused(&["goal", "logs"], "name the slice");
}

#[test]
fn diff_shows_what_a_slice_changed_against_its_start() {
    let (f, _) = one_good_one_bad();
    let out = f.omk(&["goal", "diff", "good"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("+++ b/ok.txt") && diff.contains("\n+ok"),
        "{diff}"
    );
    assert!(!diff.contains("bad.txt"), "{diff}");
    let out = f.omk(&["goal", "diff", "bad", "--stat"]);
    let stat = String::from_utf8_lossy(&out.stdout);
    assert!(
        stat.contains("bad.txt | 1 +") && stat.contains("1 file changed"),
        "{stat}"
    );
    let out = f.omk(&["goal", "diff", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn watch_follows_a_goal_another_process_drives_and_exits_as_it_does() {
    let f = Fixture::new(&[(
        "omk.toml",
        &gate_toml("check", "test ! -e bad.txt", "slice"),
    )]);
    let hold = f.scripts.join("hold");
    std::fs::write(&hold, "").unwrap();
    let agent = f.agent(&format!(
        r#"while [ -e {} ]; do sleep 0.05; done
echo x > "$OMK_SLICE_ID.txt""#,
        hold.display()
    ));
    let plan =
        f.plan(json!({ "slices": [slice("fine", &["fine.txt"]), slice("bad", &["bad.txt"])] }));
    let run = f
        .omk_command(
            &[
                "goal",
                "run",
                "g",
                "--plan",
                plan.to_str().unwrap(),
                "--agent",
                &agent,
                "--max-attempts",
                "1",
                "--no-progress",
                "--no-base-check",
            ],
            &[],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The goal exists once its log has its first event.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !f.omk(&["goal", "status", "--json"]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "the goal never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let watch = f
        .omk_command(&["goal", "watch", "--no-progress"], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let json = |extra: &[&str]| {
        let mut args = vec!["goal", "watch", "--json"];
        args.extend(extra);
        f.omk_command(&args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (streamed, after) = (json(&[]), json(&["--after", "3"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(&hold).unwrap();
    let run = run.wait_with_output().unwrap();
    let watch = watch.wait_with_output().unwrap();
    // `--json` streams every event once, in order, as `replay --json` prints
    // them, and exits as the run did; `--after` goes on from a sequence number.
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay", "--json"]).stdout).into_owned();
    let streamed = streamed.wait_with_output().unwrap();
    assert_eq!(streamed.status.code(), run.status.code());
    assert_eq!(String::from_utf8_lossy(&streamed.stdout), replay);
    let seqs: Vec<u64> = replay
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let after = after.wait_with_output().unwrap();
    assert_eq!(after.status.code(), run.status.code());
    let rest: Vec<&str> = replay.lines().skip(3).collect();
    assert_eq!(
        String::from_utf8_lossy(&after.stdout)
            .lines()
            .collect::<Vec<_>>(),
        rest
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        watch.status.code(),
        run.status.code(),
        "watch exits as the run did"
    );
    let seen = String::from_utf8_lossy(&watch.stderr);
    // It saw the whole goal, from its start to its end, as lines.
    assert!(
        seen.contains("goal started") && seen.contains("[fine] merged"),
        "{seen}"
    );
    assert!(seen.contains("goal finished"), "{seen}");
    let summary = String::from_utf8_lossy(&watch.stdout);
    assert!(
        summary.contains("not_ready") && summary.contains("bad"),
        "{summary}"
    );
}

/// A tmux server of its own, with one window of `height` lines running
/// `command`; killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(height: u16, command: &str) -> Tmux {
        ensure_tmux();
        let socket = format!("omk-test-{}-{}", std::process::id(), rand_suffix());
        let tmux = Tmux { socket };
        let ok = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                &height.to_string(),
                command,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux did not start");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    /// The screen as it is now, or with `history` everything scrolled off too.
    fn screen(&self, history: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", "t"];
        if history {
            args.extend(["-S", "-"]);
        }
        String::from_utf8_lossy(&self.cmd(&args).output().unwrap().stdout).into_owned()
    }

    /// Waits until the screen shows what `done` looks for.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let screen = self.screen(false);
            if done(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {what}:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// Installs tmux from Debian's packages when this machine has none (as
/// `.ci/run` does), once per test run.
fn ensure_tmux() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let have = || {
            std::process::Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have() {
            let _ = std::process::Command::new("sh")
                .args(["-c", "apt-get update -q && apt-get install -y -q tmux"])
                .status();
        }
        assert!(
            have(),
            "the live-view test needs tmux, and apt-get could not install it"
        );
    });
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

#[test]
fn the_live_view_fits_the_terminal_and_leaves_no_row_after_a_cancel() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let hold = f.scripts.join("hold");
    std::fs::write(&hold, "").unwrap();
    // Three quick slices end at once; twelve slow ones run until cancelled.
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in slow*) while [ -e {} ]; do sleep 0.1; done ;; esac
echo x > "$OMK_SLICE_ID.txt""#,
        hold.display()
    ));
    let ids: Vec<String> = (1..=3)
        .map(|i| format!("quick{i}"))
        .chain((1..=12).map(|i| format!("slow{i}")))
        .collect();
    let slices: Vec<Value> = ids
        .iter()
        .map(|id| slice(id, &[&format!("{id}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let command = format!(
        "OMK_HOME={home} {omk} -C {repo} goal run g --plan {plan} --agent '{agent}' --concurrency 15 --no-base-check --json > {out}; echo EXIT=$?; sleep 60",
        home = f.home.display(),
        omk = env!("CARGO_BIN_EXE_omk"),
        repo = f.repo.display(),
        plan = plan.display(),
        out = f.scripts.join("proof.json").display(),
    );
    let height = 10;
    let tmux = Tmux::start(height, &command);
    let rows = |screen: &str| {
        screen
            .lines()
            .filter(|l| l.contains("running · attempt"))
            .count()
    };
    let screen = tmux.wait_for("the slow slices running", |s| {
        s.contains("3 merged · 12 running")
    });
    // A summary line and as many rows as fit below what was printed.
    assert!(screen.lines().count() <= height as usize, "{screen}");
    assert!(
        (1..=height as usize - 2).contains(&rows(&screen)),
        "{} rows:\n{screen}",
        rows(&screen)
    );
    assert!(
        screen.contains("15 slices:") && screen.contains("more active than fit"),
        "{screen}"
    );
    let _ = tmux.cmd(&["send-keys", "-t", "t", "C-c"]).status();
    let screen = tmux.wait_for("the run's end", |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert_eq!(rows(&screen), 0, "rows left after the cancel:\n{screen}");
    assert!(!screen.contains("more active than fit"), "{screen}");
    // Each quick slice's end was printed once.
    let all = tmux.screen(true);
    for q in ["quick1", "quick2", "quick3"] {
        let ends = all
            .lines()
            .filter(|l| l.starts_with(q) && l.contains("merged · attempt 1"))
            .count();
        assert_eq!(ends, 1, "{q}:\n{all}");
    }
}

#[test]
fn a_hostile_file_name_writes_no_escape_sequence_to_the_live_view_or_status() {
    // A file name that would write the clipboard, clear the screen and
    // print a fake status line, refused for its scope.
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let name = f.script(
        "name.txt",
        "x\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\rstatus: ready",
    );
    let agent = f.agent(&format!(
        "echo a > a.txt\ntouch \"$(cat {})\"",
        name.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let raw = f.scripts.join("raw");
    let command = format!(
        "sleep 1; OMK_HOME={home} {omk} -C {repo} goal run g --plan {plan} --agent '{agent}' --max-attempts 1 --no-base-check > /dev/null; \
         OMK_HOME={home} {omk} -C {repo} goal status; echo DONE; sleep 60",
        home = f.home.display(),
        omk = env!("CARGO_BIN_EXE_omk"),
        repo = f.repo.display(),
        plan = plan.display(),
    );
    let tmux = Tmux::start(30, &command);
    let piped = tmux
        .cmd(&[
            "pipe-pane",
            "-t",
            "t",
            "-o",
            &format!("cat >> {}", raw.display()),
        ])
        .status()
        .unwrap();
    assert!(piped.success());
    let screen = tmux.wait_for("the status after the run", |s| s.contains("DONE"));
    let bytes = std::fs::read(&raw).unwrap();
    let shown = String::from_utf8_lossy(&bytes);
    for (what, seq) in [
        ("an OSC sequence (clipboard, title, link)", "\x1b]"),
        ("a cleared screen", "\x1b[2J"),
        ("a bell", "\x07"),
    ] {
        assert!(
            !shown.contains(seq),
            "{what} reached the terminal: {shown:?}"
        );
    }
    assert!(
        shown.contains("\\x1b]52"),
        "the name is shown, escaped: {shown:?}"
    );
    assert!(
        !screen.lines().any(|l| l.starts_with("status: ready")),
        "{screen}"
    );
}

#[test]
fn watch_keeps_the_goal_s_clock_not_its_own() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let agent = f.agent(r#"sleep 1.2; echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, _, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    // Attached after the end: every line is timed from the goal's start.
    let out = f.omk(&["goal", "watch", "--no-progress"]);
    let lines = String::from_utf8_lossy(&out.stderr).into_owned();
    let at = |what: &str| -> f64 {
        let line = lines
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in:\n{lines}"));
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap()
    };
    assert!(at("goal started") < 0.5, "{lines}");
    assert!(at("goal finished") >= 1.2, "{lines}");
    let ran = stderr
        .lines()
        .find(|l| l.contains("goal finished"))
        .unwrap();
    let ran: f64 = ran
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        (at("goal finished") - ran).abs() < 0.5,
        "run {ran}s, watch:\n{lines}"
    );
}

#[test]
fn logs_failed_shows_a_refused_commit_with_what_was_refused() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    // The first attempt writes outside its write scope; the second, told
    // so, undoes it (its worktree holds the refused commit).
    let agent = f.agent(
        r#"if [ "$OMK_ATTEMPT" = 1 ]; then echo no > outside.txt; else rm -f outside.txt; fi; echo ok > a.txt"#,
    );
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(slice_of(&proof, "a")["attempts"], 2);
    let out = f.omk(&["goal", "logs", "--failed"]);
    assert!(out.status.success());
    let failed = String::from_utf8_lossy(&out.stdout);
    assert!(
        failed.contains("==> a attempt 1 · commit · refused") && failed.contains("outside.txt"),
        "{failed}"
    );
    // Asked for by attempt, the refusal is what that attempt's log shows
    // when it ran no failing gate: its agent, which did finish.
    let out = f.omk(&["goal", "logs", "a", "--attempt", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `goal logs --failed` covers every failed step, not only gates: a
/// conflict, with its paths, and an agent that failed, with its words.
#[test]
fn logs_failed_shows_a_conflict_and_a_failed_agent() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "true", "both")),
        ("shared.txt", "base\n"),
    ]);
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  flaky) echo "AGENT-BROKE-MARKER: out of luck" >&2; exit 7 ;;
  *) printf 'from %s\n' "$OMK_SLICE_ID" > shared.txt ;;
esac"#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("flaky", &["flaky.txt"]),
        slice("x", &["shared.txt"]),
        slice("y", &["shared.txt"]),
    ]}));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "3"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(slice_of(&proof, "flaky")["status"], "failed", "{proof:#}");
    let loser = match slice_of(&proof, "x")["attempts"].as_u64() {
        Some(2) => "x",
        _ => "y",
    };
    let out = f.omk(&["goal", "logs", "--failed"]);
    assert!(out.status.success());
    let failed = String::from_utf8_lossy(&out.stdout);
    assert!(
        failed.contains("==> flaky attempt 1 · agent") && failed.contains("AGENT-BROKE-MARKER"),
        "{failed}"
    );
    assert!(
        failed.contains(&format!("==> {loser} attempt 1 · merge · conflict"))
            && failed.contains("shared.txt"),
        "{failed}"
    );
}
