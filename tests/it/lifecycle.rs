//! Cancel, signals, resume, the controller lock, clean, and log verification.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{gate_toml, slice, slice_of, Fixture};
use serde_json::{json, Value};

/// A goal with a quick slice and two that block while `gate_file` exists.
struct Blocking {
    f: Fixture,
    plan: std::path::PathBuf,
    agent: String,
    gate_file: std::path::PathBuf,
}

fn blocking() -> Blocking {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.allow_agent_writes_to_scripts();
    let gate_file = f.scripts.join("hold");
    std::fs::write(&gate_file, "").unwrap();
    let agent = f.agent(&format!(
        r#"if [ "$OMK_SLICE_ID" != quick ]; then echo $$ > {pids}/$OMK_SLICE_ID.pid; while [ -e {hold} ]; do sleep 0.1; done; fi
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
        pids = f.scripts.display(),
        hold = gate_file.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("quick", &["quick.txt"]), slice("slow1", &["slow1.txt"]), slice("slow2", &["slow2.txt"])] }));
    Blocking {
        f,
        plan,
        agent,
        gate_file,
    }
}

impl Blocking {
    fn start(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_omk"))
            .arg("-C")
            .arg(&self.f.repo)
            .args([
                "goal",
                "run",
                "g",
                "--plan",
                self.plan.to_str().unwrap(),
                "--agent",
                &self.agent,
                "--json",
                "--no-progress",
            ])
            .env("OMK_HOME", &self.f.home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits until `quick` is merged and both slow agents are running.
    fn wait_for_blocked(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.f.omk(&["goal", "status", "--json"]);
            if let Ok(state) = serde_json::from_slice::<Value>(&out.stdout) {
                // The log may not hold its first event yet: no slices then.
                let quick_merged = state["slices"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|s| s["id"] == "quick" && s["status"] == "merged")
                });
                let ready = quick_merged
                    && ["slow1", "slow2"]
                        .iter()
                        .all(|s| self.f.scripts.join(format!("{s}.pid")).exists());
                if ready {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the goal never reached the blocked state"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether every agent process is gone (call once omk has exited).
    fn agents_gone(&self) -> bool {
        let left = self.f.leftover_processes();
        left.is_empty() || {
            eprintln!("still running: {left:#?}");
            false
        }
    }
}

fn wait(child: Child) -> (Option<i32>, Value, String) {
    let out = child.wait_with_output().unwrap();
    let proof = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        proof,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// After a cancel: committed work kept, agents stopped, and resume finishes the goal.
fn cancelled_then_resumed(b: &Blocking, proof: &Value) {
    assert_eq!(proof["status"], "cancelled", "{proof:#}");
    assert_eq!(slice_of(proof, "quick")["status"], "merged");
    for s in ["slow1", "slow2"] {
        assert_eq!(slice_of(proof, s)["status"], "cancelled");
    }
    assert!(b.agents_gone(), "a cancelled agent is still running");
    std::fs::remove_file(&b.gate_file).unwrap();
    let out = b.f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(resumed["status"], "ready");
    assert_eq!(
        slice_of(&resumed, "quick")["attempts"],
        1,
        "merged work is not redone"
    );
    let branch = resumed["integration"]["branch"].as_str().unwrap();
    for s in ["quick", "slow1", "slow2"] {
        assert_eq!(b.f.show(branch, &format!("{s}.txt")), s);
    }
}

#[test]
fn cancel_from_another_terminal_keeps_committed_work_and_resume_finishes() {
    let b = blocking();
    let child = b.start();
    b.wait_for_blocked();
    // A second controller is refused while the first runs.
    let busy = b.f.omk(&["goal", "resume"]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&busy.stderr)
        .contains(&format!("being run by process {}", child.id())));
    let cancel = b.f.omk(&["goal", "cancel"]);
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    assert!(String::from_utf8_lossy(&cancel.stdout).contains("cancelled"));
    let pid = child.id().to_string();
    let (code, proof, _) = wait(child);
    assert_eq!(
        code,
        Some(130),
        "a cancelled run exits as a cancelled command does"
    );
    // Watching for the run to stop does not take the goal's lock over.
    let id = proof["goal_id"].as_str().unwrap();
    let lock = std::fs::read_to_string(b.f.goal_dir(id).join("lock")).unwrap();
    assert_eq!(lock, pid, "the lock file names the run that held it");
    cancelled_then_resumed(&b, &proof);
}

#[test]
fn sigint_and_sigterm_cancel_the_run() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let b = blocking();
        let child = b.start();
        b.wait_for_blocked();
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let (code, proof, stderr) = wait(child);
        assert_eq!(code, Some(130), "signal {signal}: {stderr}");
        cancelled_then_resumed(&b, &proof);
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_leaves_a_resumable_goal() {
    let b = blocking();
    // Keep the agents blocked through the first Ctrl-C: the group leader itself
    // ignores SIGTERM, so omk waits out its grace period before killing it.
    let script = b.f.script(
        "stubborn.sh",
        &format!(
            r#"if [ "$OMK_SLICE_ID" != quick ]; then echo $$ > {pids}/$OMK_SLICE_ID.pid; while [ -e {hold} ]; do sleep 0.1; done; fi
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
            pids = b.f.scripts.display(),
            hold = b.gate_file.display()
        ),
    );
    let agent = format!("exec:trap '' TERM; . {}", script.display());
    let b = Blocking { agent, ..b };
    let mut child = b.start();
    b.wait_for_blocked();
    let pid = child.id() as i32;
    // omk's stderr, line by line, to see the first Ctrl-C taken.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    loop {
        let line = said
            .recv_timeout(Duration::from_secs(30))
            .expect("omk never said it was cancelling");
        if line.starts_with("omk: cancelling") {
            break;
        }
    }
    unsafe { libc::kill(pid, libc::SIGINT) };
    let (code, _, _) = wait(child);
    assert_eq!(code, Some(130));
    assert!(b.agents_gone(), "agents outlived the forced exit");
    // omk did not wait for the agents to end and the goal to finish: the log
    // holds no end of the goal.
    let out = b.f.omk(&["goal", "replay", "--json"]);
    let ended: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "goal_finished")
        .collect();
    assert!(
        ended.is_empty(),
        "omk waited for the goal to finish: {ended:?}"
    );
    std::fs::remove_file(&b.gate_file).unwrap();
    let out = b.f.omk(&["goal", "resume", "--json", "--no-progress"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn clean_removes_exactly_what_the_goal_created() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.git(&["branch", "mine"]);
    let mine_wt = f.scripts.join("my-worktree");
    f.git(&["worktree", "add", "-q", mine_wt.to_str().unwrap(), "mine"]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0);
    let id = proof["goal_id"].as_str().unwrap();
    let before = f.git(&["for-each-ref", "--format=%(refname:short)"]);
    assert!(before.contains(&format!("omk/{id}/a")));
    assert_eq!(
        f.git(&["worktree", "list"]).lines().count(),
        4,
        "main, mine and the pool's two slots, kept for the next goal"
    );

    let out = f.omk(&["goal", "clean", id]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 branches"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let after = f.git(&["for-each-ref", "--format=%(refname:short)"]);
    let mut refs: Vec<&str> = after.lines().collect();
    refs.sort();
    assert_eq!(refs, vec!["main", "mine", &format!("omk/{id}/integration")]);
    let worktrees = f.worktrees();
    assert_eq!(worktrees.len(), 2, "{worktrees:?}");
    assert!(mine_wt.exists());
    let out = f.omk(&["goal", "clean", "--all", "--integration"]);
    assert!(out.status.success());
    assert!(!f
        .git(&["for-each-ref", "--format=%(refname:short)"])
        .contains("omk/"));
}

#[test]
fn verify_catches_a_cut_or_edited_log() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0);
    let id = proof["goal_id"].as_str().unwrap();
    let log = f.goal_dir(id).join("events.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let verify = || {
        let out = f.omk(&["goal", "replay", id, "--verify"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(verify().0, Some(0));

    // The last event removed: every remaining line still chains, but the proof says more.
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let (code, out) = verify();
    assert_eq!(code, Some(1));
    assert!(out.contains("the log was cut"), "{out}");

    // A gate's outcome rewritten in the middle: the chain breaks at the next event.
    let edited = text.replacen("\"outcome\":\"exit 0\"", "\"outcome\":\"exit 00\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&log, edited).unwrap();
    let (code, out) = verify();
    assert_eq!(code, Some(1));
    assert!(out.contains("does not follow the line before it"), "{out}");
}

#[test]
fn doctor_lists_what_a_goal_without_state_left_behind() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0);
    let id = proof["goal_id"].as_str().unwrap();
    let doctor = || String::from_utf8_lossy(&f.omk(&["doctor"]).stdout).into_owned();
    assert!(doctor().contains("orphans:    none"), "{}", doctor());
    // The goal's state is lost; what it made in the repository is not.
    let repos = f.state_dir();
    std::fs::remove_dir_all(repos.join("goals").join(id)).unwrap();
    let report = doctor();
    // Its branches (its worktree was a pool slot, which stays for other goals).
    assert!(report.contains("orphans:    2 left"), "{report}");
    assert!(
        report.contains(&format!("branch -D omk/{id}/a"))
            && report.contains(&format!("branch -D omk/{id}/integration"))
    );
}

#[test]
fn a_cancel_while_gates_run_is_no_verdict_and_resume_runs_them() {
    let f = Fixture::new(&[("README.md", "base\n")]);
    let hold = f.scripts.join("hold");
    let started = f.scripts.join("gate-started");
    // The gate blocks while `hold` exists, once it judges a slice's file.
    let gate = format!(
        "if [ -e a.txt ]; then touch {started}; while [ -e {hold} ]; do sleep 0.1; done; fi; true",
        started = started.display(),
        hold = hold.display()
    );
    let toml =
        gate_toml("slow", &gate, "both") + &format!("writable = ['{}']\n", f.scripts.display());
    f.write("omk.toml", &toml);
    f.git(&["add", "-A"]);
    f.git(&["commit", "-q", "-m", "gate"]);
    std::fs::write(&hold, "").unwrap();
    let agent = f.agent("echo a > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let run = ["goal", "run", "g", "--plan", plan.to_str().unwrap()];
    let child = f
        .omk_command(
            &[&run[..], &["--agent", &agent, "--json", "--no-progress"]].concat(),
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the gate never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, proof, stderr) = wait(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(proof["status"], "cancelled");
    let a = slice_of(&proof, "a");
    assert_eq!(a["status"], "gating", "a cancelled gate is no verdict: {a}");
    assert_eq!(a["gates"], json!([]));

    std::fs::remove_file(&hold).unwrap();
    let out = f.omk(&["goal", "resume", "--json", "--no-progress"]);
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        resumed["status"],
        "ready",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(slice_of(&resumed, "a")["gates"][0]["passed"], true);
    assert_eq!(
        slice_of(&resumed, "a")["attempts"],
        1,
        "the agent did not run again"
    );
    // The same commit, judged on its own tree, is what was merged.
    let after = slice_of(&resumed, "a");
    assert_eq!(after["commit"], a["commit"]);
    assert_eq!(after["gates"][0]["tree"], a["tree"]);
}

#[test]
fn secret_scrubbing_never_rewrites_omk_s_own_records() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(
        r#"mkdir -p src/password; echo x > src/password/$OMK_SLICE_ID.txt; echo "agent sees $KIMI_API_KEY""#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("one", &["src/password/**"]),
        slice("two", &["src/password/**"]),
    ] }));
    // Words in the environment that a careless scrubber would take for secrets,
    // next to a real one.
    let env = [
        ("API_KEY_LABEL", "integration"),
        ("MYSQL_ROOT_PASSWORD", "password"),
        ("KIMI_API_KEY", "kimi-live-key-81f2c9d0aa"),
        ("OMK_FAULT", "kill:slice.committed:1"),
    ];
    let args = ["goal", "run", "g", "--plan", plan.to_str().unwrap()];
    let out = f.omk_env(
        &[&args[..], &["--agent", &agent, "--no-progress"]].concat(),
        &env,
    );
    assert_eq!(out.status.code(), None, "killed after the first commit");
    let env = &env[..3];
    let out = f.omk_env(&["goal", "resume", "--json", "--no-progress"], env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let proof: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(proof["status"], "ready", "{proof:#}");
    for command in [
        &["goal", "status", "--json"][..],
        &["goal", "replay", "--verify"],
    ] {
        let out = f.omk_env(command, env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let events = std::fs::read_to_string(
        f.state_dir()
            .join("goals")
            .join(proof["goal_id"].as_str().unwrap())
            .join("events.jsonl"),
    )
    .unwrap();
    assert!(events.contains("\"integration_branch\"") && events.contains("src/password/**"));
    assert!(
        !events.contains("redacted:API_KEY_LABEL")
            && !events.contains("redacted:MYSQL_ROOT_PASSWORD")
    );
    // The real secret is still scrubbed from what the agent printed.
    let logs: String = crate::support::files_under(&f.home)
        .iter()
        .filter(|p| p.ends_with("agent.log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("agent sees [redacted:KIMI_API_KEY]"),
        "{logs}"
    );
    let doctor = f.omk_env(&["doctor"], env);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.contains("scrubbed from agents' and gates' output: KIMI_API_KEY"),
        "{doctor}"
    );
}

#[test]
fn a_pool_whose_slots_were_deleted_by_hand_heals_itself() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, _, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    // A disk cleaner takes omk's whole state directory, slots and all.
    std::fs::remove_dir_all(&f.home).unwrap();
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready");
}

#[test]
fn resume_and_cancel_of_a_goal_that_ended_say_so() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "false", "integration"))]);
    let agent = f.agent("echo x > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, _, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "the integration gate fails");
    let out = f.omk(&["goal", "resume", "--no-progress"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already ended not_ready; nothing to resume")
    );
    let out = f.omk(&["goal", "cancel"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already ended not_ready; nothing to cancel")
    );
}

#[test]
fn goal_retry_gives_what_did_not_merge_fresh_attempts_once_the_cause_is_fixed() {
    let f = Fixture::new(&[("README.md", "base\n")]);
    // An integration gate outside the repository, and an agent that needs a
    // file: both fail until the user fixes them.
    let check = f.script("check.sh", "exit 1\n");
    let needed = f.scripts.join("needed");
    f.write(
        "omk.toml",
        &gate_toml("check", &format!("sh {}", check.display()), "integration"),
    );
    f.git(&["add", "-A"]);
    f.git(&["commit", "-q", "-m", "gate"]);
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  fine) echo x > fine.txt ;;
  picky) test -e {needed}; echo x > picky.txt ;;
esac"#,
        needed = needed.display()
    ));
    let plan =
        f.plan(json!({ "slices": [slice("fine", &["fine.txt"]), slice("picky", &["picky.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--max-attempts", "1"]);
    assert_eq!(code, 1);
    assert_eq!(slice_of(&proof, "picky")["status"], "failed");
    let branch = proof["integration"]["branch"].as_str().unwrap().to_string();

    // Unknown slices are refused; nothing changes.
    let out = f.omk(&["goal", "retry", "latest", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no slice nope"));
    for command in ["retry", "resume"] {
        let out = f.omk(&["goal", command, "--max-attempts", "0"]);
        assert_eq!(out.status.code(), Some(2), "goal {command}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--max-attempts must be at least 1"));
    }

    std::fs::write(&needed, "").unwrap();
    std::fs::write(&check, "exit 0\n").unwrap();
    let out = f.omk(&["goal", "retry", "--json", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let retried: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(retried["status"], "ready");
    assert_eq!(retried["goal_id"], proof["goal_id"], "the same goal");
    assert_eq!(retried["integration"]["branch"], branch.as_str());
    let picky = slice_of(&retried, "picky");
    assert_eq!(picky["status"], "merged");
    assert_eq!(picky["attempts"], 2);
    assert_eq!(f.show(&branch, "picky.txt"), "x");
    let out = f.omk(&["goal", "replay", "--verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A ready goal has nothing to retry.
    let out = f.omk(&["goal", "retry", "--no-progress"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to retry"));
}

#[test]
fn huge_output_is_kept_as_head_and_tail_and_omk_s_memory_stays_flat() {
    // The gate and the agent each print far more than the 1 MiB a log keeps.
    let gate = r#"head -c 50000000 /dev/zero | tr '\0' y; echo; echo GATE-END"#;
    let toml = gate_toml("loud", gate, "slice") + "[run]\nlog_limit = \"1MiB\"\n";
    let f = Fixture::new(&[("omk.toml", &toml)]);
    let agent = f.agent(
        r#"echo AGENT-START; head -c 200000000 /dev/zero | tr '\0' x; echo; echo AGENT-END; echo done > a.txt"#,
    );
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let run = ["goal", "run", "g", "--plan", plan.to_str().unwrap()];
    let mut child = f
        .omk_command(
            &[
                &run[..],
                &[
                    "--agent",
                    &agent,
                    "--json",
                    "--no-progress",
                    "--no-base-check",
                ],
            ]
            .concat(),
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // omk's own peak resident memory, agents and gates excluded.
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, proof, stderr) = wait(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(proof["status"], "ready");
    assert!(
        peak_kb < 150_000,
        "omk peaked at {peak_kb} kB for 250 MB of output"
    );
    let agent_log = slice_of(&proof, "a")["agent"]["log"]
        .as_str()
        .unwrap()
        .to_string();
    let gate_log = slice_of(&proof, "a")["gates"][0]["log"]
        .as_str()
        .unwrap()
        .to_string();
    for (log, first, last, total) in [
        (agent_log, "AGENT-START", "AGENT-END", "of 200000023 bytes"),
        (gate_log, "yyyy", "GATE-END", "of 50000010 bytes"),
    ] {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.len() <= (1 << 20) + 512, "{log}: {} bytes", text.len());
        assert!(text.starts_with(first), "{log}");
        assert!(text.trim_end().ends_with(last), "{log}");
        let marker = text
            .lines()
            .find(|l| l.starts_with("[omk: "))
            .expect("a marker");
        assert!(marker.contains("bytes of output dropped here"), "{marker}");
        assert!(marker.contains(total), "{log}: {marker}");
    }
}

#[test]
fn a_protocol_agent_s_stderr_and_transcript_share_one_bounded_log() {
    // An ACP agent (as the Kimi CLIs are driven) that answers `initialize`, then floods its
    // stderr and exits.
    let toml = gate_toml("check", "true", "both") + "[run]\nlog_limit = \"256KiB\"\n";
    let f = Fixture::new(&[("omk.toml", &toml)]);
    let script = f.script(
        "flood.sh",
        r#"read line
id=$(echo "$line" | sed 's/^.*"id":\("[^"]*"\|[0-9]*\).*$/\1/')
echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":1,\"agentCapabilities\":{}}}"
sleep 1
head -c 30000000 /dev/zero | tr '\0' e >&2; echo >&2; echo STDERR-END >&2; exit 1
"#,
    );
    let agent = format!("acp:sh {}", script.display());
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) =
        f.run_goal(&plan, &agent, &["--max-attempts", "1", "--no-base-check"]);
    assert_eq!(code, 1, "{stderr}");
    let log = slice_of(&proof, "a")["agent"]["log"]
        .as_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() <= (256 << 10) + 512,
        "{log}: {} bytes",
        text.len()
    );
    // omk's side of the conversation is in it, the end of the agent's stderr too.
    assert!(
        text.contains("<- {") && text.contains("protocolVersion"),
        "{}",
        &text[..300.min(text.len())]
    );
    assert!(text.trim_end().ends_with("STDERR-END"), "{log}");
    assert!(text.contains("bytes of output dropped here"), "{log}");
}

#[test]
fn an_omk_installed_over_the_running_one_does_not_stop_its_goal() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.allow_agent_writes_to_scripts();
    // The goal runs from a copy of omk that its first slice removes, as
    // `cargo install` replaces the binary of a goal still running.
    let copy = f.scripts.join("omk");
    std::fs::copy(env!("CARGO_BIN_EXE_omk"), &copy).unwrap();
    let agent = f.agent(&format!(
        r#"if [ "$OMK_SLICE_ID" = a ]; then rm '{}'; fi
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
        copy.display()
    ));
    let mut b = slice("b", &["b.txt"]);
    b["depends_on"] = json!(["a"]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), b] }));
    let out = Command::new(&copy)
        .arg("-C")
        .arg(&f.repo)
        .args(Fixture::run_args(plan.to_str().unwrap(), &agent, &[]))
        .env("OMK_HOME", &f.home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!copy.exists(), "the agent did not remove the binary");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(slice_of(&proof, "b")["status"], "merged");
}

#[test]
fn status_of_a_goal_whose_driver_died_says_so() {
    let b = blocking();
    let mut child = b.start();
    b.wait_for_blocked();
    let status = String::from_utf8_lossy(&b.f.omk(&["goal", "status"]).stdout).into_owned();
    assert!(!status.contains("driver: none"), "{status}");
    child.kill().unwrap();
    let _ = child.wait();
    let status = String::from_utf8_lossy(&b.f.omk(&["goal", "status"]).stdout).into_owned();
    assert!(
        status.contains("status: running")
            && status.contains("driver: none")
            && status.contains("goal resume"),
        "{status}"
    );
    // What it left running ends with its hold; resume finishes the goal.
    std::fs::remove_file(&b.gate_file).unwrap();
    let resumed = b.f.omk(&["goal", "resume", "--json"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let status = String::from_utf8_lossy(&b.f.omk(&["goal", "status"]).stdout).into_owned();
    assert!(!status.contains("driver: none"), "{status}");
}

#[test]
fn a_detached_goal_outlives_its_starter_and_is_an_ordinary_goal() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"sleep 1; echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let plan_arg = plan.to_str().unwrap().to_string();
    let started = Instant::now();
    let out = f.omk(&[
        "goal", "run", "g", "--plan", &plan_arg, "--agent", &agent, "--detach", "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = said["goal_id"].as_str().unwrap().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the starter leaves at once, before the agents finish"
    );
    // Another terminal follows it to its end, and lists it.
    let watch = f.omk(&["goal", "watch", &id, "--json"]);
    assert_eq!(watch.status.code(), Some(0));
    let status: Value =
        serde_json::from_slice(&f.omk(&["goal", "status", &id, "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "ready");
    let list = String::from_utf8_lossy(&f.omk(&["goal", "list"]).stdout).into_owned();
    assert!(list.contains(&id), "{list}");

    // Bad input is said as `goal run` says it, with its exit code, and no
    // goal is made.
    let mut cyclic_a = slice("a", &["a.txt"]);
    cyclic_a["depends_on"] = json!(["b"]);
    let mut cyclic_b = slice("b", &["b.txt"]);
    cyclic_b["depends_on"] = json!(["a"]);
    let bad = f.script(
        "cyclic.json",
        &json!({ "slices": [cyclic_a, cyclic_b] }).to_string(),
    );
    let out = f.omk(&[
        "goal",
        "run",
        "g",
        "--plan",
        bad.to_str().unwrap(),
        "--agent",
        &agent,
        "--detach",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cycle"), "{err}");
    let list = String::from_utf8_lossy(&f.omk(&["goal", "list", "--json"]).stdout).into_owned();
    assert_eq!(list.matches("\"goal_id\"").count(), 1, "{list}");
}

#[test]
fn a_detached_goal_cancelled_the_moment_it_starts_ends_cancelled() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent(r#"sleep 30; echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let plan_arg = plan.to_str().unwrap().to_string();
    // The cancel lands anywhere in the controller's start: before it
    // listens for signals, it must not die of one and leave `running`.
    for _ in 0..4 {
        let out = f.omk(&[
            "goal", "run", "g", "--plan", &plan_arg, "--agent", &agent, "--detach", "--json",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let said: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = said["goal_id"].as_str().unwrap().to_string();
        let cancel = f.omk(&["goal", "cancel", &id]);
        let told = String::from_utf8_lossy(&cancel.stdout).into_owned();
        assert_eq!(
            told.trim(),
            format!("goal {id}: cancelled"),
            "{}",
            String::from_utf8_lossy(&cancel.stderr)
        );
        let status: Value =
            serde_json::from_slice(&f.omk(&["goal", "status", &id, "--json"]).stdout).unwrap();
        assert_eq!(status["status"], "cancelled");
    }
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let here = f.tmp.path().to_string_lossy().into_owned();
    let left: Vec<&str> = ps.lines().filter(|l| l.contains(&here)).collect();
    assert!(left.is_empty(), "outlived its goal: {left:?}");
}
