//! Agents that try to leave their worktree, tamper with the repository or
//! leak secrets. Every attempt must be blocked (Landlock, the policy, the
//! environment allow-list) or detected (scope and symlink checks), the user's
//! repository must be byte-identical afterwards, and no secret may appear in
//! any file under omk's state directory.

mod support;

use serde_json::{json, Value};
use support::{files_under, gate_toml, slice, slice_of, Fixture};

/// A secret omk's environment holds but agents are not given.
const HIDDEN: &str = "hidden-secret-value-91b3";
/// A secret agents are given (backends need their API keys) that must not reach omk's files.
const PASSED: &str = "kimi-key-value-5d7e20aa";

#[test]
fn hostile_agents_are_blocked_or_detected_and_leave_no_trace() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "true", "both")),
        ("README.md", "mine\n"),
    ]);
    let repo = f.repo.display().to_string();
    let before = f.checkout_snapshot();
    let config = std::fs::read(f.repo.join(".git/config")).unwrap();
    let hooks: Vec<_> = files_under(&f.repo.join(".git/hooks"));
    let remote = f.scripts.join("remote.git");
    std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&remote)
        .status()
        .unwrap();

    // Each attack runs, records whether it worked in its own worktree, and exits 0.
    let agent = f.agent(&format!(
        r#"try() {{ if ( eval "$1" ) >/dev/null 2>&1; then echo "$2: WORKED" >> result-$OMK_SLICE_ID.txt; else echo "$2: blocked" >> result-$OMK_SLICE_ID.txt; fi; }}
common=$(git rev-parse --git-common-dir)
case "$OMK_SLICE_ID" in
  honest) echo fine > honest.txt ;;
  absolute) try 'echo pwned > {repo}/pwned.txt' absolute ;;
  sibling) sleep 1; others=$(ls -d ../slot-*/ | grep -v "/${{PWD##*/}}\(\.tmp\)\?/$")
    [ -n "$others" ] || echo "sibling: no other slot" >> result-$OMK_SLICE_ID.txt
    for d in $others; do try "echo pwned > $d/pwned.txt" sibling; done ;;
  symlink) ln -s {repo}/linked.txt link; try 'echo pwned > link' write-through-link ;;
  hooks) try 'mkdir -p "$common/hooks" && echo "exit 1" > "$common/hooks/pre-commit"' hook; try 'git config user.name pwned' config ;;
  refs) try 'git update-ref refs/heads/main HEAD' update-ref; try 'git push {remote} HEAD:refs/heads/stolen' push ;;
  secrets) echo "hidden=[$HIDDEN_SECRET_TOKEN]" > result-secrets.txt; echo "leaking $KIMI_API_KEY to the log"; echo "and $KIMI_API_KEY" >&2 ;;
esac
true"#,
        remote = remote.display()
    ));
    let ids = [
        "honest", "absolute", "sibling", "symlink", "hooks", "refs", "secrets",
    ];
    let slices: Vec<Value> = ids.iter().map(|id| slice(id, &["**"])).collect();
    let plan = f.plan(json!({ "slices": slices }));
    let env = [("HIDDEN_SECRET_TOKEN", HIDDEN), ("KIMI_API_KEY", PASSED)];
    let (_, proof, _) = f.run_goal_env(&plan, &agent, &["--require-sandbox"], &env);
    let branch = proof["integration"]["branch"].as_str().unwrap();

    // Blocked: every attack that ran says so from inside, and nothing landed.
    let mut results = String::new();
    for id in ["absolute", "sibling", "hooks", "refs", "secrets"] {
        assert_eq!(
            slice_of(&proof, id)["status"],
            "merged",
            "{id}: {}",
            slice_of(&proof, id)
        );
        results += &f.show(branch, &format!("result-{id}.txt"));
        results.push('\n');
    }
    assert!(!results.contains("WORKED"), "an attack worked:\n{results}");
    for attack in [
        "absolute",
        "sibling",
        "hook",
        "config",
        "update-ref",
        "push",
    ] {
        assert!(
            results.contains(&format!("{attack}: blocked")),
            "{attack} was not attempted or not blocked:\n{results}"
        );
    }
    assert!(!f.repo.join("pwned.txt").exists());
    assert!(
        !f.git(&["ls-tree", "-r", "--name-only", branch])
            .contains("pwned.txt"),
        "the sibling worktree was written"
    );
    assert_eq!(
        f.git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("{}/refs/heads", remote.display())
        ]),
        ""
    );
    let remote_refs = std::process::Command::new("git")
        .arg("-C")
        .arg(&remote)
        .args(["for-each-ref"])
        .output()
        .unwrap();
    assert!(remote_refs.stdout.is_empty(), "something was pushed");

    // Detected: a symlink out of the repository is not merged.
    let symlink = slice_of(&proof, "symlink");
    assert_eq!(symlink["status"], "scope_violation", "{symlink}");
    assert!(symlink["reason"]
        .as_str()
        .unwrap()
        .contains("resolves outside the repository"));

    // Secrets: the hidden one never reached the agent; the passed one is in no file of omk's.
    assert_eq!(slice_of(&proof, "secrets")["status"], "merged");
    assert!(results.contains("hidden=[]"), "{results}");
    for file in files_under(&f.home) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PASSED) && !text.contains(HIDDEN),
            "a secret leaked into {}",
            file.display()
        );
    }
    let logs: String = files_under(&f.home)
        .iter()
        .filter(|p| p.ends_with("agent.log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("leaking [redacted:KIMI_API_KEY] to the log"),
        "{logs}"
    );

    // The user's repository is byte-identical.
    assert_eq!(f.checkout_snapshot(), before);
    assert_eq!(std::fs::read(f.repo.join(".git/config")).unwrap(), config);
    assert_eq!(files_under(&f.repo.join(".git/hooks")), hooks);
    assert_eq!(f.git(&["rev-parse", "main"]), before_main(&f));
}

fn before_main(f: &Fixture) -> String {
    f.git(&["log", "--format=%H", "-1", "main"])
}

#[test]
fn without_landlock_the_run_says_so_or_refuses() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent("echo ok > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let args = [
        "goal",
        "run",
        "g",
        "--plan",
        plan.to_str().unwrap(),
        "--agent",
        &agent,
        "--no-progress",
    ];
    let mut strict = args.to_vec();
    strict.push("--require-sandbox");
    let out = f.omk_env(&strict, &[("OMK_LANDLOCK", "0")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Landlock"));
    assert!(!f.omk_left_traces());
    let out = f.omk_env(&args, &[("OMK_LANDLOCK", "0")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Landlock is not available here"));
    let doctor = f.omk_env(&["doctor"], &[("OMK_LANDLOCK", "0")]);
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("Landlock is NOT available"));
    let doctor = f.omk(&["doctor"]);
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("sandbox:    Landlock ABI"));
}

#[test]
fn without_a_sandbox_an_agent_that_touches_the_users_repository_stops_the_goal() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let repo = f.repo.display().to_string();
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  rogue) git -C {repo} update-ref refs/heads/rogue HEAD; echo x > {repo}/pwned.txt; echo x > rogue.txt ;;
  *) sleep 1; echo x > "$OMK_SLICE_ID.txt" ;;
esac"#
    ));
    let plan =
        f.plan(json!({ "slices": [slice("rogue", &["rogue.txt"]), slice("calm", &["calm.txt"])] }));
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &[], &[("OMK_LANDLOCK", "0")]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "failed");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("slice `rogue` changed the user's repository"),
        "{}",
        proof["reason"]
    );
    let rogue = slice_of(&proof, "rogue");
    assert_eq!(rogue["status"], "failed");
    for evidence in [
        "refs/heads/rogue was created",
        "pwned.txt was written in the checkout",
    ] {
        assert!(
            rogue["reason"].as_str().unwrap().contains(evidence),
            "{evidence}: {rogue}"
        );
    }
    assert_ne!(
        slice_of(&proof, "calm")["status"],
        "merged",
        "nothing more is merged once the goal stops"
    );
}

#[test]
fn without_a_sandbox_an_agent_that_writes_in_a_waiting_slice_s_worktree_fails() {
    // One gate at a time, each slow: of `first` and `second`, which finish at
    // once, one waits in the gate queue with its worktree settled while
    // `rogue` writes in every other slot.
    let f = Fixture::new(&[("omk.toml", &gate_toml("wait", "sleep 4", "slice"))]);
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  rogue) sleep 2; for d in ../slot-*/; do echo pwned > "$d/pwned.txt"; done ;;
  *) echo x > "$OMK_SLICE_ID.txt" ;;
esac"#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("first", &["first.txt"]),
        slice("second", &["second.txt"]),
        slice("rogue", &["**"]),
    ] }));
    let (_, proof, stderr) = f.run_goal_env(
        &plan,
        &agent,
        &["--gate-concurrency", "1"],
        &[("OMK_LANDLOCK", "0")],
    );
    let rogue = slice_of(&proof, "rogue");
    assert_eq!(rogue["status"], "scope_violation", "{rogue}\n{stderr}");
    let reason = rogue["reason"].as_str().unwrap();
    assert!(
        reason.contains("wrote in other slices' worktrees")
            && reason.contains("pwned.txt")
            && (reason.contains("slice `first`") || reason.contains("slice `second`")),
        "{reason}"
    );
    // The waiting slice's gates ran on its commit, not on what was written.
    for id in ["first", "second"] {
        assert_eq!(slice_of(&proof, id)["status"], "merged", "{proof}");
    }
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert!(!f
        .git(&["ls-tree", "-r", "--name-only", branch])
        .contains("pwned.txt"));
}
