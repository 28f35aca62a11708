//! Bad input is refused with exit 2, a message naming the problem, and no trace left.

use crate::support::{gate_toml, slice, Fixture};
use serde_json::json;

/// Runs `goal run` and checks it exits 2 with `needle` in stderr and leaves nothing behind.
fn refused(f: &Fixture, args: &[&str], needle: &str) {
    let before = std::fs::metadata(&f.repo)
        .is_ok()
        .then(|| f.checkout_snapshot_if_repo());
    let out = f.omk(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "args {args:?}; stderr:\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert!(
        !f.omk_left_traces(),
        "a refused run left state, refs or worktrees"
    );
    assert_eq!(
        before,
        std::fs::metadata(&f.repo)
            .is_ok()
            .then(|| f.checkout_snapshot_if_repo())
    );
}

trait SnapshotIfRepo {
    fn checkout_snapshot_if_repo(&self) -> Option<crate::support::CheckoutSnapshot>;
}

impl SnapshotIfRepo for Fixture {
    fn checkout_snapshot_if_repo(&self) -> Option<crate::support::CheckoutSnapshot> {
        let has_commits = std::process::Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(["rev-parse", "--verify", "-q", "HEAD"])
            .output()
            .is_ok_and(|o| o.status.success());
        has_commits.then(|| self.checkout_snapshot())
    }
}

fn ok_repo() -> Fixture {
    Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))])
}

fn run_args<'a>(plan: &'a str, agent: &'a str) -> Vec<&'a str> {
    vec![
        "goal",
        "run",
        "g",
        "--plan",
        plan,
        "--agent",
        agent,
        "--no-progress",
    ]
}

#[test]
fn outside_a_repository() {
    let f = Fixture::bare_dir();
    let plan = f.plan(json!({ "slices": [slice("a", &["**"])] }));
    let agent = f.agent("true");
    refused(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        "not inside a git repository",
    );
}

#[test]
fn a_repository_without_commits() {
    let f = Fixture::bare_dir();
    f.git(&["init", "-q", "-b", "main"]);
    let plan = f.plan(json!({ "slices": [slice("a", &["**"])] }));
    let agent = f.agent("true");
    refused(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        "has no commits yet",
    );
}

#[test]
fn plans_that_cannot_run() {
    let mut unknown = slice("a", &["**"]);
    unknown["depends_on"] = json!(["ghost"]);
    let mut cyc_a = slice("a", &["**"]);
    cyc_a["depends_on"] = json!(["b"]);
    let mut cyc_b = slice("b", &["**"]);
    cyc_b["depends_on"] = json!(["a"]);
    let mut empty = slice("a", &["**"]);
    empty["prompt"] = json!("   ");
    let cases = [
        (json!({ "slices": [unknown] }), "unknown slice id `ghost`"),
        (
            json!({ "slices": [cyc_a, cyc_b] }),
            "dependency cycle among a, b",
        ),
        (
            json!({ "slices": [slice("a", &["**"]), slice("a", &["x"])] }),
            "duplicate id",
        ),
        (json!({ "slices": [empty] }), "prompt: empty"),
        (
            json!({ "slices": [{ "id": "a" }] }),
            "missing field `prompt`",
        ),
        (
            json!({ "slices": [slice("Bad Id", &["**"])] }),
            "not a valid id",
        ),
        (
            json!({ "slices": [slice("a", &["../outside"])] }),
            "leaves the repository",
        ),
    ];
    for (plan, needle) in cases {
        let f = ok_repo();
        let plan = f.plan(plan);
        let agent = f.agent("true");
        refused(&f, &run_args(plan.to_str().unwrap(), &agent), needle);
    }
}

#[test]
fn a_plan_s_errors_are_reported_all_at_once() {
    let f = ok_repo();
    let mut a = slice("a", &["**"]);
    a["depends_on"] = json!(["b", "ghost"]);
    a["colour"] = json!("red");
    let mut b = slice("b", &["**"]);
    b["depends_on"] = json!(["a"]);
    b["prompt"] = json!("");
    let plan = f.plan(json!({ "slices": [a, b], "owner": "me" }));
    let agent = f.agent("true");
    refused_with_all(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        &[
            "owner: unknown field",
            "slices[0] (`a`).colour: unknown field",
            "unknown slice id `ghost`",
            "slices[1] (`b`).prompt: empty",
            "dependency cycle among a, b",
        ],
    );
}

#[test]
fn a_write_scope_that_matches_no_file_is_warned_about_and_the_run_goes_on() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "true", "both")),
        ("src/item.py", "x = 1\n"),
    ]);
    // `tiem.py` is a typo of `item.py`; `tset/` a directory that does not exist.
    let plan = f.plan(json!({ "slices": [slice("a", &["src/tiem.py", "tset/**"]), slice("b", &["src/item.py"])] }));
    let agent = f.agent(
        r#"if [ "$OMK_SLICE_ID" = b ]; then echo "x = 2" > src/item.py; else echo y > src/tiem.py; fi"#,
    );
    let out = f.omk(&run_args(plan.to_str().unwrap(), &agent));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("slice `a`: write scope `src/tiem.py` matches no file at the base"),
        "{err}"
    );
    assert!(err.contains("`tset/` does not exist at the base"), "{err}");
    assert!(!err.contains("`src/item.py` matches no file"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not a refusal: {err}"
    );
}

/// `args` are refused (exit 2) with every one of `needles` in one message.
fn refused_with_all(f: &Fixture, args: &[&str], needles: &[&str]) {
    let out = f.omk(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
}

#[test]
fn slice_counts_that_do_not_fit() {
    let f = ok_repo();
    let plan = f.plan(json!({ "slices": [slice("a", &["a"]), slice("b", &["b"])] }));
    let agent = f.agent("true");
    let plan = plan.to_str().unwrap();
    let mut args = run_args(plan, &agent);
    args.extend(["--slices", "0"]);
    refused(&f, &args, "--slices must be at least 1");
    let mut args = run_args(plan, &agent);
    args.extend(["--slices", "1"]);
    refused(
        &f,
        &args,
        "the plan has 2 slices but at most 1 were asked for",
    );
}

#[test]
fn every_bad_flag_is_named_at_once() {
    let f = ok_repo();
    let plan = f.plan(json!({ "slices": [slice("a", &["a"])] }));
    let agent = f.agent("true");
    let mut args = run_args(plan.to_str().unwrap(), &agent);
    args.extend([
        "--concurrency",
        "0",
        "--max-attempts",
        "0",
        "--budget-usd",
        "0",
    ]);
    refused_with_all(
        &f,
        &args,
        &[
            "--concurrency must be at least 1",
            "--max-attempts must be at least 1",
            "--budget-usd must be more than 0",
        ],
    );
}

#[test]
fn an_unreadable_config() {
    let f = ok_repo();
    // Settings are the base commit's: the broken file is committed.
    f.write("omk.toml", "[[gate]\nname = ");
    f.git(&["commit", "-qam", "broken config"]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a"])] }));
    let agent = f.agent("true");
    refused(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        "invalid config",
    );
}

#[test]
fn no_plan_and_bad_agents() {
    let f = ok_repo();
    refused(
        &f,
        &["goal", "run", "g", "--agent", "exec:true"],
        "--slices N is needed",
    );
    let plan = f.plan(json!({ "slices": [slice("a", &["a"])] }));
    let plan = plan.to_str().unwrap();
    refused(
        &f,
        &["goal", "run", "g", "--plan", plan, "--agent", "nonsense"],
        "is not an agent spec",
    );
    refused(
        &f,
        &["goal", "run", "g", "--plan", plan, "--agent", "exec:"],
        "needs a command",
    );
    refused(
        &f,
        &[
            "goal",
            "run",
            "g",
            "--plan",
            plan,
            "--agent",
            "exec:true",
            "--base",
            "nope",
        ],
        "--base `nope`",
    );
}

#[test]
fn unknown_goal_ids() {
    let f = ok_repo();
    for cmd in ["status", "proof", "replay"] {
        let out = f.omk(&["goal", cmd, "zzz"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no goal `zzz`"));
    }
}

#[test]
fn a_run_that_would_fill_the_disk_is_refused() {
    let f = ok_repo();
    let plan = f.plan(json!({ "slices": [slice("a", &["a"])] }));
    let agent = f.agent("true");
    let out = f.omk_env(
        &[
            "goal",
            "run",
            "g",
            "--plan",
            plan.to_str().unwrap(),
            "--agent",
            &agent,
        ],
        &[("OMK_DISK_MARGIN", "18000000000000000000")],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not enough disk space") && stderr.contains("2 new worktrees"),
        "{stderr}"
    );
    assert!(!f.omk_left_traces());
}

#[test]
fn a_branch_named_omk_is_refused_before_anything_is_made() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.git(&["branch", "omk"]);
    let agent = f.agent("echo x > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let out = f.omk(&[
        "goal",
        "run",
        "g",
        "--plan",
        plan.to_str().unwrap(),
        "--agent",
        &agent,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("git branch -m omk"), "{stderr}");
    assert!(!f.home.exists(), "something was created");
}

#[test]
fn an_agent_that_is_not_installed_is_named_before_anything_is_made() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let plan = plan.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["goal", "run", "g", "--slices", "2"],
            "pip install kimi-cli",
        ),
        (
            &["goal", "run", "g", "--plan", plan, "--agent", "kimi-wire"],
            "OMK_KIMI_BIN",
        ),
        (
            &[
                "goal",
                "run",
                "g",
                "--plan",
                plan,
                "--agent",
                "acp:/no/such/agent --acp",
            ],
            "`/no/such/agent`, which is not installed",
        ),
        (
            &[
                "goal",
                "run",
                "g",
                "--plan",
                plan,
                "--agent",
                "exec:/no/such/agent --go",
            ],
            "`/no/such/agent`, which is not installed",
        ),
        (
            &[
                "goal",
                "run",
                "g",
                "--plan",
                plan,
                "--agent",
                "exec:no-such-agent-omk --go",
            ],
            "`no-such-agent-omk`, which is not installed",
        ),
    ];
    for (args, said) in cases {
        let out = f.omk_env(args, &[("PATH", "/usr/bin:/bin"), ("OMK_KIMI_BIN", "")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert!(!f.omk_left_traces(), "{args:?} made something");
    }
}

#[test]
fn an_agent_program_that_vanishes_mid_run_stops_the_goal_with_exit_3() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.allow_agent_writes_to_scripts();
    // An ACP agent whose program removes itself: the first slice's attempt
    // fails, and the next finds no program to start.
    let program = f.script("vanishing-agent", "#!/bin/sh\nrm -f \"$0\"\nexit 1\n");
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let agent = format!("acp:{}", program.display());
    let (code, proof, stderr) = f.run_goal(
        &plan,
        &agent,
        &["--concurrency", "1", "--max-attempts", "1"],
    );
    assert!(!program.exists(), "the agent did not remove itself");
    assert_eq!(code, 3, "{stderr}\n{proof:#}");
    assert_eq!(proof["status"], "failed");
    assert!(
        proof["reason"]
            .as_str()
            .unwrap()
            .contains("which is not installed"),
        "{proof:#}"
    );
    assert!(stderr.contains("vanishing-agent"), "{stderr}");
}

#[test]
fn write_scopes_into_git_or_out_of_the_repository_are_refused_up_front() {
    let f = ok_repo();
    let ran = f.scripts.join("agent-ran");
    let plan = f.plan(json!({ "slices": [
        slice("hooks", &[".git/hooks/**"]),
        slice("nested", &["sub/.GIT/config"]),
        slice("abs", &["/etc/passwd"]),
        slice("up", &["../elsewhere/**"]),
        slice("home", &["~/.ssh/*"]),
    ] }));
    let agent = f.agent(&format!("touch {}", ran.display()));
    refused_with_all(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        &[
            "slices[0] (`hooks`).write_scope: `.git/hooks/**` names `.git`",
            "slices[1] (`nested`).write_scope: `sub/.GIT/config` names `.git`",
            "slices[2] (`abs`).write_scope: `/etc/passwd` is absolute",
            "slices[3] (`up`).write_scope: `../elsewhere/**` leaves the repository",
            "slices[4] (`home`).write_scope: `~/.ssh/*` names a home directory",
        ],
    );
    assert!(!ran.exists(), "an agent ran");
    assert!(
        !f.omk_left_traces(),
        "a refused run left state, refs or worktrees"
    );
}

#[test]
fn a_commit_author_that_is_not_name_and_email_is_refused() {
    let f = Fixture::new(&[(
        "omk.toml",
        &(gate_toml("check", "true", "both") + "[commit]\nauthor = \"nobody\"\n"),
    )]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let agent = f.agent("echo a > a.txt");
    refused(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        "commit.author: `nobody` is not `Name <email>`",
    );
}

#[test]
fn a_kept_path_the_repository_does_not_ignore_is_refused_naming_the_fix() {
    let toml = gate_toml("check", "true", "both") + "[pool]\nkeep = [\".venv\", \"target\"]\n";
    let f = Fixture::new(&[("omk.toml", &toml), (".gitignore", "target/\n")]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let agent = f.agent("echo a > a.txt");
    refused(
        &f,
        &run_args(plan.to_str().unwrap(), &agent),
        "pool.keep: `.venv` is not ignored by the repository",
    );
    let out = f.omk(&run_args(plan.to_str().unwrap(), &agent));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("add it to .gitignore"), "{stderr}");
    assert!(!stderr.contains("`target`"), "target is ignored: {stderr}");
    // Ignored, it runs.
    f.write(".gitignore", "target/\n.venv/\n");
    f.git(&["commit", "-qam", "ignore the venv"]);
    let out = f.omk(&run_args(plan.to_str().unwrap(), &agent));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_impossible_option_is_named_at_once() {
    let f = Fixture::new(&[("README.md", "hi\n")]);
    let args = [
        "goal",
        "run",
        "a goal",
        "--slices",
        "0",
        "--max-attempts",
        "0",
        "--concurrency",
        "0",
    ];
    for said in [
        "--slices must be at least 1",
        "--concurrency must be at least 1",
        "--max-attempts must be at least 1",
    ] {
        refused(&f, &args, said);
    }
}
