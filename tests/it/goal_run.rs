//! `omk goal run` end to end: real git repositories, shell-script agents through `exec:`.

use crate::support::{gate_toml, slice, slice_of, Fixture};
use serde_json::{json, Value};

/// A gate `check` of `scope` that counts its runs in a file outside the
/// repository, which it may write.
struct CountingGate {
    dir: tempfile::TempDir,
    toml: String,
}

impl CountingGate {
    fn new(scope: &str) -> CountingGate {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("runs");
        let toml = gate_toml("check", &format!("echo run >> {}", count.display()), scope)
            + &format!("writable = ['{}']\n", dir.path().display());
        CountingGate { dir, toml }
    }

    /// How often the gate ran so far.
    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

/// The integration gate that ran last: on the branch's final tree.
fn final_gate(proof: &serde_json::Value) -> &serde_json::Value {
    proof["integration"]["gates"]
        .as_array()
        .and_then(|g| g.last())
        .expect("no integration gate ran")
}

fn passing_gate() -> String {
    gate_toml("check", "true", "both")
}

#[test]
fn four_disjoint_slices_merge_and_the_goal_is_ready_without_touching_the_checkout() {
    let f = Fixture::new(&[
        ("omk.toml", &passing_gate()),
        ("README.md", "hi\n"),
        ("tracked.txt", "v1\n"),
    ]);
    // Leave the user's checkout in every state a user might: a stash, a staged
    // file, a modified tracked file and an untracked file.
    f.write("stashed.txt", "stash me\n");
    f.git(&["add", "stashed.txt"]);
    f.git(&["stash", "push", "-q", "-m", "user stash"]);
    f.write("staged.txt", "staged\n");
    f.git(&["add", "staged.txt"]);
    f.write("tracked.txt", "v2, not committed\n");
    f.write("untracked.txt", "mine\n");
    let before = f.checkout_snapshot();

    let plan = f.plan(json!({ "slices": [
        slice("a", &["a/**"]), slice("b", &["b/**"]), slice("c", &["c/**"]), slice("d", &["d/**"])
    ]}));
    let agent = f.agent(
        r#"mkdir -p "$OMK_SLICE_ID"
cwd_ok=no; [ "$(cd "$OMK_WORKTREE" && pwd -P)" = "$(pwd -P)" ] && cwd_ok=yes
printf '%s\n' "goal=$OMK_GOAL_ID" "slice=$OMK_SLICE_ID" "attempt=$OMK_ATTEMPT" "scope=$OMK_WRITE_SCOPE" "cwd=$cwd_ok" > "$OMK_SLICE_ID/out.txt"
case "$OMK_PROMPT" in *"do $OMK_SLICE_ID"*) ;; *) echo "prompt lacks the task" >&2; exit 9;; esac"#,
    );
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--slices", "4"]);

    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(proof["status"], "ready");
    assert!(
        stderr.contains("uncommitted changes"),
        "the run should say so up front:\n{stderr}"
    );
    let goal_id = proof["goal_id"].as_str().unwrap();
    let integration = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(integration, format!("omk/{goal_id}/integration"));
    assert_eq!(proof["integration"]["order"].as_array().unwrap().len(), 4);
    for id in ["a", "b", "c", "d"] {
        let s = slice_of(&proof, id);
        assert_eq!(s["status"], "merged");
        assert_eq!(s["attempts"], 1);
        assert_eq!(s["branch"], format!("omk/{goal_id}/{id}"));
        assert_eq!(s["changed_files"], json!([format!("{id}/out.txt")]));
        assert_eq!(s["agent"]["exit"], "ok");
        assert_eq!(
            s["gates"][0]["tree"], s["tree"],
            "slice gates ran on the slice's tree"
        );
        let out = f.show(integration, &format!("{id}/out.txt"));
        assert_eq!(
            out,
            format!("goal={goal_id}\nslice={id}\nattempt=1\nscope={id}/**\ncwd=yes")
        );
        // The slice's own commit is on its own branch.
        assert_eq!(
            f.git(&["rev-parse", &format!("omk/{goal_id}/{id}")]),
            s["commit"].as_str().unwrap()
        );
    }
    let tree = f.git(&["rev-parse", &format!("{integration}^{{tree}}")]);
    assert_eq!(proof["integration"]["tree"], tree.as_str());
    let last = final_gate(&proof);
    assert_eq!(last["tree"], tree.as_str());
    assert_eq!(last["passed"], true);
    // Files the base had but the user changed locally are the base's version.
    assert_eq!(f.show(integration, "tracked.txt"), "v1");

    assert_eq!(f.checkout_snapshot(), before, "the user's checkout changed");
}

#[test]
fn slices_editing_the_same_lines_are_retried_on_the_integration_and_merge() {
    let f = Fixture::new(&[("omk.toml", &passing_gate()), ("shared.txt", "base\n")]);
    f.allow_agent_writes_to_scripts();
    let prompts = f.scripts.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let agent = f.agent(&format!(
        r#"printf 'from %s\n' "$OMK_SLICE_ID" > shared.txt
printf '%s' "$OMK_PROMPT" > "{}/$OMK_SLICE_ID-$OMK_ATTEMPT.txt""#,
        prompts.display()
    ));
    let plan =
        f.plan(json!({ "slices": [slice("x", &["shared.txt"]), slice("y", &["shared.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);

    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(proof["status"], "ready");
    let attempts: Vec<u64> = ["x", "y"]
        .iter()
        .map(|id| slice_of(&proof, id)["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(
        {
            let mut a = attempts.clone();
            a.sort();
            a
        },
        vec![1, 2],
        "exactly one slice was retried"
    );
    let retried = if attempts[0] == 2 { "x" } else { "y" };
    let prompt = std::fs::read_to_string(prompts.join(format!("{retried}-2.txt"))).unwrap();
    assert!(
        prompt.contains("conflicted") && prompt.contains("shared.txt"),
        "retry prompt:\n{prompt}"
    );
    // The retry started from the integration, so its version wins.
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(f.show(branch, "shared.txt"), format!("from {retried}"));
    assert_eq!(proof["integration"]["order"][1], retried);
    // Re-merging from the record, retry included, gives the same trees.
    let verify = f.omk(&["goal", "replay", "--verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_slice_that_already_conflicts_is_not_gated() {
    let counting = CountingGate::new("slice");
    let f = Fixture::new(&[("omk.toml", &counting.toml), ("shared.txt", "base\n")]);
    let repo = f.repo.display().to_string();
    // `late` commits only once `early` is merged: its edit of the same line
    // conflicts with what is integrated before any gate of its runs.
    let agent = f.agent(&format!(
        r#"if [ "$OMK_SLICE_ID" = late ] && [ "$OMK_ATTEMPT" = 1 ]; then
  until git -C {repo} log --all --format=%s | grep -q '^omk: merge slice early'; do sleep 0.05; done
fi
printf 'from %s\n' "$OMK_SLICE_ID" > shared.txt"#
    ));
    let plan = f.plan(
        json!({ "slices": [slice("early", &["shared.txt"]), slice("late", &["shared.txt"])] }),
    );
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    let late = slice_of(&proof, "late");
    assert_eq!(late["attempts"], 2, "{late}");
    assert_eq!(late["attempt_history"][0]["status"], "conflict");
    assert_eq!(
        counting.runs(),
        2,
        "early's gate and late's second attempt's, no more"
    );
    let replay = f.omk(&["goal", "replay"]);
    let replay = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.contains("[late] attempt 1 conflicts on shared.txt (found before its gates ran, so they were skipped)"),
        "{replay}"
    );
}

#[test]
fn a_slice_that_conflicts_with_one_still_gating_waits_and_is_not_gated() {
    let marks = tempfile::tempdir().unwrap();
    let runs = marks.path().join("runs");
    // Each run leaves the line it judged; `early`'s takes a while.
    let gate = format!(
        r#"cat shared.txt >> {}; ! grep -q early shared.txt || sleep 1"#,
        runs.display()
    );
    // The gate writes the marks; the agent reads them.
    let toml = gate_toml("check", &gate, "slice")
        + &format!(
            "writable = ['{0}']\n[sandbox]\nreadable = ['{0}']\n",
            marks.path().display()
        );
    let f = Fixture::new(&[("omk.toml", &toml), ("shared.txt", "base\n")]);
    // `late` commits its edit of the same line while `early` is being gated.
    let agent = f.agent(&format!(
        r#"if [ "$OMK_SLICE_ID" = late ] && [ "$OMK_ATTEMPT" = 1 ]; then
  until grep -q early {} 2>/dev/null; do sleep 0.05; done
fi
printf 'from %s %s\n' "$OMK_SLICE_ID" "$OMK_ATTEMPT" > shared.txt"#,
        runs.display()
    ));
    let plan = f.plan(
        json!({ "slices": [slice("early", &["shared.txt"]), slice("late", &["shared.txt"])] }),
    );
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    let late = slice_of(&proof, "late");
    assert_eq!(late["attempt_history"][0]["status"], "conflict", "{late}");
    // Its first attempt waited for `early`, then conflicted with it: no
    // gate ran on it; its second attempt, made on top of `early`, was gated.
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        ["from early 1", "from late 2"],
        "{ran}"
    );
    assert_eq!(late["attempts"], 2, "{late}");
    let replay = f.omk(&["goal", "replay"]);
    let replay = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.contains("[late] gates wait: conflicts with `early` on shared.txt"),
        "{replay}"
    );
    assert!(
        replay.contains("[late] attempt 1 conflicts on shared.txt (found before its gates ran"),
        "{replay}"
    );
}

#[test]
fn a_conflict_after_the_last_attempt_ends_conflict_with_its_paths() {
    let f = Fixture::new(&[("omk.toml", &passing_gate()), ("shared.txt", "base\n")]);
    let agent = f.agent(r#"printf 'from %s\n' "$OMK_SLICE_ID" > shared.txt"#);
    let plan =
        f.plan(json!({ "slices": [slice("x", &["shared.txt"]), slice("y", &["shared.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--max-attempts", "1"]);

    assert_eq!(code, 1);
    assert_eq!(proof["status"], "not_ready");
    let statuses: Vec<&str> = ["x", "y"]
        .iter()
        .map(|id| slice_of(&proof, id)["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"merged") && statuses.contains(&"conflict"),
        "{statuses:?}\n{proof:#}\n{stderr}"
    );
    let loser = if statuses[0] == "conflict" { "x" } else { "y" };
    assert_eq!(slice_of(&proof, loser)["paths"], json!(["shared.txt"]));
    assert!(proof["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("{loser} (conflict)")));
}

#[test]
fn a_failing_slice_gate_fails_only_that_slice_and_keeps_its_log() {
    let gates = gate_toml(
        "no-bad",
        r#"if [ -e bad.txt ]; then echo "bad.txt must not exist"; exit 1; fi"#,
        "slice",
    ) + &gate_toml("check", "true", "integration");
    let f = Fixture::new(&[("omk.toml", &gates)]);
    let agent = f.agent(r#"case "$OMK_SLICE_ID" in good) mkdir -p good; echo ok > good/x;; bad) echo oops > bad.txt;; esac"#);
    let plan =
        f.plan(json!({ "slices": [slice("good", &["good/**"]), slice("bad", &["bad.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);

    assert_eq!(code, 1);
    assert_eq!(proof["status"], "not_ready");
    assert_eq!(slice_of(&proof, "good")["status"], "merged");
    let bad = slice_of(&proof, "bad");
    assert_eq!(bad["status"], "gate_failed");
    let gate = &bad["gates"][0];
    assert_eq!(gate["name"], "no-bad");
    assert_eq!(gate["passed"], false);
    assert_eq!(gate["exit_code"], 1);
    assert_eq!(gate["tree"], bad["tree"]);
    let log = std::fs::read_to_string(gate["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("bad.txt must not exist"), "log: {log}");
    assert!(bad["reason"]
        .as_str()
        .unwrap()
        .contains(gate["log"].as_str().unwrap()));
    assert_eq!(proof["integration"]["order"], json!(["good"]));
}

/// An integration gate that fails, printing a marker, when both `a.txt`
/// and `b.txt` are there and neither says `adapted`.
const CLASH: &str = r#"if [ -e a.txt ] && [ -e b.txt ] && ! grep -q adapted a.txt b.txt; then echo "CLASH-MARKER: a and b clash"; exit 1; fi"#;

/// Of slices `a` and `b`, the one the integration sent back, and the other.
fn culprit_and_other(proof: &serde_json::Value) -> (&'static str, &'static str) {
    let back = |id| {
        slice_of(proof, id)["attempt_history"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("integration gate `pair`"))
    };
    match (back("a"), back("b")) {
        (true, false) => ("a", "b"),
        (false, true) => ("b", "a"),
        _ => panic!("not exactly one slice was sent back: {proof:#}"),
    }
}

#[test]
fn slices_that_pass_alone_but_clash_merged_are_repaired_by_the_later_one() {
    let gates = gate_toml("pair", CLASH, "integration") + &gate_toml("check", "true", "slice");
    let f = Fixture::new(&[("omk.toml", &gates)]);
    f.allow_agent_writes_to_scripts();
    let scripts = f.scripts.display();
    // Told of the clash, and seeing the other's work, an agent adapts.
    let agent = f.agent(&format!(
        r#"[ -n "$OMK_FEEDBACK" ] && cp "$OMK_FEEDBACK" {scripts}/feedback-$OMK_SLICE_ID-$OMK_ATTEMPT.md
other=a; [ "$OMK_SLICE_ID" = a ] && other=b
if [ -n "$OMK_FEEDBACK" ] && grep -q CLASH-MARKER "$OMK_FEEDBACK" && [ -e "$other.txt" ]; then
  echo adapted > "$OMK_SLICE_ID.txt"
else
  echo hi > "$OMK_SLICE_ID.txt"
fi"#
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_eq!(proof["status"], "ready");

    // The slice merged later went back, told the gate and its output.
    let (culprit, other) = culprit_and_other(&proof);
    let c = slice_of(&proof, culprit);
    assert_eq!(c["status"], "merged");
    assert_eq!(c["attempts"], 2);
    assert_eq!(c["attempt_history"][0]["status"], "gate_failed");
    assert_eq!(slice_of(&proof, other)["attempts"], 1);
    let told = std::fs::read_to_string(f.scripts.join(format!("feedback-{culprit}-2.md"))).unwrap();
    assert!(told.contains("integration gate `pair` failed"), "{told}");
    assert!(told.contains("CLASH-MARKER"), "{told}");
    assert_eq!(proof["integration"]["order"], json!([other, culprit]));

    // The branch's tip is what the proof says, and passes the gate by hand.
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(
        f.git(&["rev-parse", &format!("{branch}^{{tree}}")]),
        proof["integration"]["tree"].as_str().unwrap()
    );
    assert_eq!(f.show(branch, &format!("{culprit}.txt")), "adapted");
    assert!(f.passes_by_hand(branch, CLASH));
    let verify = f.omk(&["goal", "replay", "--verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_slice_that_always_breaks_the_integration_is_left_out_and_the_branch_holds_the_rest() {
    let gates = gate_toml("pair", CLASH, "integration") + &gate_toml("check", "true", "slice");
    let f = Fixture::new(&[("omk.toml", &gates)]);
    let agent = f.agent(r#"echo hi > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "not_ready");

    let (culprit, other) = culprit_and_other(&proof);
    assert_eq!(slice_of(&proof, other)["status"], "merged");
    let c = slice_of(&proof, culprit);
    assert_eq!(c["status"], "gate_failed", "{c}");
    assert_eq!(c["attempts"], 3, "every attempt was used");
    assert!(c["reason"]
        .as_str()
        .unwrap()
        .contains("integration gate `pair`"));
    let last = &c["attempt_history"][2];
    assert!(
        last["excerpt"].as_str().unwrap().contains("CLASH-MARKER"),
        "{last}"
    );
    assert!(proof["reason"]
        .as_str()
        .unwrap()
        .contains(&format!("{culprit} (gate_failed)")));

    // The branch holds the green subset: the other slice, passing the gate.
    assert_eq!(proof["integration"]["order"], json!([other]));
    let branch = proof["integration"]["branch"].as_str().unwrap();
    let files = f.git(&["ls-tree", "--name-only", branch]);
    assert_eq!(files, format!("{other}.txt\nomk.toml"));
    assert!(f.passes_by_hand(branch, CLASH));
    let md = f.omk(&["goal", "proof", "--markdown"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("CLASH-MARKER"), "{md}");
    let verify = f.omk(&["goal", "replay", "--verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_commit_outside_the_write_scope_is_refused_and_not_merged() {
    let f = Fixture::new(&[("omk.toml", &passing_gate())]);
    let agent = f.agent("mkdir -p a b; echo fine > a/ok.txt; echo sneaky > b/sneaky.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a/**"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);

    assert_eq!(code, 1);
    let a = slice_of(&proof, "a");
    assert_eq!(a["status"], "scope_violation");
    assert_eq!(a["paths"], json!(["b/sneaky.txt"]));
    assert!(a["reason"].as_str().unwrap().contains("b/sneaky.txt"));
    assert_eq!(proof["integration"]["order"], json!([]));
    assert_eq!(proof["integration"]["commit"], proof["base_commit"]);
}

#[test]
fn agents_that_fail_hang_or_do_nothing_fail_their_slice_only() {
    let f = Fixture::new(&[("omk.toml", &passing_gate())]);
    f.allow_agent_writes_to_scripts();
    let pidfile = f.scripts.join("hang.pid");
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  crash) echo "about to fail"; exit 3;;
  hang) sleep 60 & echo $! > {}; wait;;
  lazy) ;;
  ok) echo fine > ok.txt;;
esac"#,
        pidfile.display()
    ));
    let plan = f.plan(json!({ "slices": [
        slice("crash", &["**"]), slice("hang", &["**"]), slice("lazy", &["**"]), slice("ok", &["ok.txt"])
    ]}));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--slice-timeout", "1s"]);
    assert_eq!(code, 1);
    let crash = slice_of(&proof, "crash");
    assert_eq!(crash["status"], "failed");
    assert_eq!(crash["agent"]["exit"], "exit 3");
    let reason = crash["reason"].as_str().unwrap();
    assert!(reason.contains("exit 3"), "{reason}");
    let log = std::fs::read_to_string(crash["agent"]["log"].as_str().unwrap()).unwrap();
    assert_eq!(log, "about to fail\n");

    let hang = slice_of(&proof, "hang");
    assert_eq!(hang["status"], "failed");
    assert_eq!(hang["agent"]["exit"], "timed out");
    // Stopped at its timeout, well before the minute its child would sleep.
    let ran = hang["agent"]["duration_ms"].as_u64().unwrap();
    assert!((1_000..60_000).contains(&ran), "ran {ran} ms");
    assert!(hang["reason"].as_str().unwrap().contains("timed out"));
    assert!(pidfile.exists(), "the hung agent never started its child");
    let left = f.leftover_processes();
    assert!(left.is_empty(), "the hung agent's child survived: {left:?}");

    let lazy = slice_of(&proof, "lazy");
    assert_eq!(lazy["status"], "failed");
    assert!(lazy["reason"].as_str().unwrap().starts_with("no changes"));

    assert_eq!(slice_of(&proof, "ok")["status"], "merged");
}

#[test]
fn dependents_build_on_merged_work_and_are_blocked_when_it_fails() {
    let f = Fixture::new(&[("omk.toml", &passing_gate())]);
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  b) test -f a.txt || { echo "a.txt missing: b did not start from a's work" >&2; exit 1; };;
  fail) exit 1;;
esac
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
    );
    let mut b = slice("b", &["b.txt"]);
    b["depends_on"] = json!(["a"]);
    let mut after = slice("after", &["after.txt"]);
    after["depends_on"] = json!(["fail"]);
    let plan = f.plan(
        json!({ "slices": [b, slice("a", &["a.txt"]), slice("fail", &["fail.txt"]), after] }),
    );
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);

    assert_eq!(code, 1);
    assert_eq!(slice_of(&proof, "a")["status"], "merged");
    assert_eq!(slice_of(&proof, "b")["status"], "merged");
    assert_eq!(slice_of(&proof, "fail")["status"], "failed");
    let after = slice_of(&proof, "after");
    assert_eq!(after["status"], "pending");
    assert_eq!(after["attempts"], 0);
    assert!(after["reason"]
        .as_str()
        .unwrap()
        .contains("dependency `fail`"));
    let order = proof["integration"]["order"].as_array().unwrap();
    let pos = |id: &str| order.iter().position(|o| o == id).unwrap();
    assert!(pos("a") < pos("b"));
}

#[test]
fn a_panicking_slice_actor_fails_its_slice_and_the_goal_goes_on() {
    let f = Fixture::new(&[("omk.toml", &passing_gate())]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan =
        f.plan(json!({ "slices": [slice("boom", &["boom.txt"]), slice("fine", &["fine.txt"])] }));
    let env = [("OMK_FAULT", "panic:slice.after_agent:boom")];
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &[], &env);
    assert_eq!(code, 1, "{stderr}");
    let boom = slice_of(&proof, "boom");
    assert_eq!(boom["status"], "failed");
    assert!(
        boom["reason"].as_str().unwrap().contains("crashed"),
        "{boom}"
    );
    assert_eq!(slice_of(&proof, "fine")["status"], "merged");
    assert_eq!(proof["status"], "not_ready");
}

#[test]
fn no_gates_means_not_ready_unless_allowed() {
    let f = Fixture::new(&[("README.md", "hi\n")]);
    let agent = f.agent("echo x > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no gates configured or detected"),
        "{stderr}"
    );
    assert!(proof["reason"].as_str().unwrap().contains("no gates"));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--allow-no-gates"]);
    assert_eq!(code, 0);
    assert_eq!(proof["status"], "ready");
}

#[test]
fn a_tree_is_verified_once_per_gate() {
    let counting = CountingGate::new("both");
    let f = Fixture::new(&[("omk.toml", &counting.toml)]);
    let agent = f.agent(r#"echo same > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    // Counting the slices' and the integration's runs only.
    let (code, first, _) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0);
    let runs = || counting.runs();
    assert_eq!(
        runs(),
        3,
        "two slice trees and the integration's, once each"
    );
    assert_eq!(slice_of(&first, "a")["gates"][0]["cached"], json!(null));

    // The same work again: the same trees, so no gate runs.
    let (code, second, _) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0);
    assert_eq!(second["status"], "ready");
    assert_eq!(runs(), 3, "a passing gate is not run twice on one tree");
    assert_eq!(slice_of(&second, "a")["gates"][0]["cached"], true);
    assert_eq!(final_gate(&second)["cached"], true);
    assert_eq!(final_gate(&second)["tree"], second["integration"]["tree"]);
}

#[test]
fn a_slot_s_build_cache_outlives_recycling_and_goals() {
    let toml = gate_toml(
        "build",
        r#"echo "gate $OMK_GOAL_ID" >> "$BUILD_CACHE/runs""#,
        "both",
    ) + "\n[pool]\ncache = [\"BUILD_CACHE\"]\n";
    let f = Fixture::new(&[("omk.toml", &toml)]);
    let agent = f
        .agent(r#"echo "agent $OMK_GOAL_ID" >> "$BUILD_CACHE/runs"; echo x > "$OMK_SLICE_ID.txt""#);
    let mut goals = vec![];
    for id in ["one", "two"] {
        let scope = format!("{id}.txt");
        let plan = f.plan(json!({ "slices": [slice(id, &[&scope])] }));
        let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(slice_of(&proof, id)["status"], "merged", "{proof}");
        let branch = proof["integration"]["branch"].as_str().unwrap();
        let tree = f.git(&["ls-tree", "-r", "--name-only", branch]);
        assert!(!tree.contains("runs"), "the cache was committed: {tree}");
        goals.push(proof["goal_id"].as_str().unwrap().to_string());
    }
    // The slots' caches kept what the agents and the gates of each goal
    // wrote, and a slot that served both goals (recycled in between) kept
    // both's.
    let runs: Vec<String> = std::fs::read_dir(f.state_dir().join("pool"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cache"))
        .map(|e| std::fs::read_to_string(e.path().join("BUILD_CACHE/runs")).unwrap_or_default())
        .collect();
    let all = runs.concat();
    for goal in &goals {
        assert!(all.contains(&format!("agent {goal}")), "{runs:?}");
        assert!(all.contains(&format!("gate {goal}")), "{runs:?}");
    }
    assert!(
        runs.iter()
            .any(|r| goals.iter().all(|g| r.contains(g.as_str()))),
        "no slot's cache outlived a goal: {runs:?}"
    );
}

#[test]
fn pool_keep_keeps_a_build_dir_across_recycling_and_removes_other_leftovers() {
    let toml = gate_toml(
        "build",
        r#"test -f build/out.o && ! test -e stray.tmp"#,
        "slice",
    ) + "\n[pool]\nkeep = [\"build\"]\n";
    let f = Fixture::new(&[("omk.toml", &toml), (".gitignore", "build/\n*.tmp\n")]);
    f.allow_agent_writes_to_scripts();
    let seen = f.scripts.join("seen");
    // The first goal's agent builds and leaves a stray file; the second's
    // reports what its recycled slot still held, and builds only if needed.
    let agent = f.agent(&format!(
        r#"if [ -f build/out.o ]; then echo "kept build" >> {seen}; fi
if [ -e stray.tmp ]; then echo "kept stray" >> {seen}; fi
mkdir -p build; [ -f build/out.o ] || echo object > build/out.o
echo leftover > stray.tmp
echo x > "$OMK_SLICE_ID.txt""#,
        seen = seen.display()
    ));
    for id in ["one", "two"] {
        let scope = format!("{id}.txt");
        let plan = f.plan(json!({ "slices": [slice(id, &[&scope])] }));
        let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
        assert_eq!(code, 0, "{stderr}\n{proof:#}");
        let branch = proof["integration"]["branch"].as_str().unwrap();
        let tree = f.git(&["ls-tree", "-r", "--name-only", branch]);
        assert!(!tree.contains("build/"), "kept state was committed: {tree}");
    }
    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
    assert_eq!(seen, "kept build\n", "the second goal's slot: {seen:?}");
}

#[test]
fn sparse_slices_see_only_their_cone_and_merge_into_the_whole_tree() {
    let toml = gate_toml("lib", "test -f shared/lib.txt", "slice")
        + &gate_toml("all", "test -f a/a.txt && test -f b/b.txt", "integration")
        + "\n[sparse]\ninclude = [\"shared\"]\n";
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        ("a/a.txt", "a\n"),
        ("b/b.txt", "b\n"),
        ("shared/lib.txt", "lib\n"),
    ]);
    // Each agent writes down whether it saw the other slice's directory.
    let agent = f.agent(
        r#"if [ -e a/a.txt ] && [ -e b/b.txt ]; then saw=full; else saw=sparse; fi
case "$OMK_SLICE_ID" in
  a) echo $saw > a/saw.txt ;;
  wide) echo $saw > notes.md ;;
esac"#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("a", &["a/**"]),
        slice("wide", &["**/notes.md"]),
    ] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--sparse"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    assert_eq!(slice_of(&proof, "a")["sparse"], json!(["a", "shared"]));
    assert!(slice_of(&proof, "wide").get("sparse").is_none());
    assert!(
        stderr.contains("get full worktrees") && stderr.contains("(`src/api/**`): wide"),
        "{stderr}"
    );
    assert!(stderr.contains("extensions.worktreeConfig"), "{stderr}");
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert_eq!(f.show(branch, "a/saw.txt"), "sparse");
    assert_eq!(f.show(branch, "notes.md"), "full");
    assert_eq!(
        f.git(&["ls-tree", "-r", "--name-only", branch]),
        "a/a.txt\na/saw.txt\nb/b.txt\nnotes.md\nomk.toml\nshared/lib.txt"
    );
    // Cleaning up takes back the config change along with the sparse slots.
    let config = || std::fs::read_to_string(f.repo.join(".git/config")).unwrap();
    assert!(config().contains("worktreeConfig"));
    let clean = f.omk(&["goal", "clean", "--all"]);
    let said = String::from_utf8_lossy(&clean.stdout);
    assert!(said.contains("unset extensions.worktreeConfig"), "{said}");
    assert!(!config().contains("worktreeConfig"), "{}", config());
}

#[test]
fn failed_gates_and_refused_commits_go_back_to_the_agent_until_they_pass() {
    // The gate fails on a file that says `broken`, printing a marker.
    let gate = r#"for f in *.txt; do if grep -q broken "$f"; then echo "BROKEN-MARKER in $f"; exit 1; fi; done"#;
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", gate, "both"))]);
    f.allow_agent_writes_to_scripts();
    let scripts = f.scripts.display();
    let agent = f.agent(&format!(
        r#"[ -n "$OMK_FEEDBACK" ] && cp "$OMK_FEEDBACK" {scripts}/feedback-$OMK_SLICE_ID-$OMK_ATTEMPT.md
case "$OMK_SLICE_ID" in
  fixme) if [ "$OMK_ATTEMPT" = 1 ]; then echo broken > fixme.txt
    elif grep -q 'Gate `check` failed' "$OMK_FEEDBACK" && grep -q BROKEN-MARKER "$OMK_FEEDBACK"; then echo fixed > fixme.txt; fi ;;
  hopeless) echo "broken $OMK_ATTEMPT" > hopeless.txt ;;
  scope) echo mine > scope.txt
    if [ "$OMK_ATTEMPT" = 1 ]; then echo stray > stray.txt
    elif grep -q stray.txt "$OMK_FEEDBACK"; then rm stray.txt; fi ;;
  ok) echo ok > ok.txt ;;
esac"#
    ));
    let plan = f.plan(json!({ "slices": [
        slice("fixme", &["fixme.txt"]),
        slice("hopeless", &["hopeless.txt"]),
        slice("scope", &["scope.txt"]),
        slice("ok", &["ok.txt"]),
    ] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "not_ready");

    // Told which gate failed and what it printed, the second attempt passes.
    let fixme = slice_of(&proof, "fixme");
    assert_eq!(fixme["status"], "merged", "{fixme}");
    assert_eq!(fixme["attempts"], 2);
    assert_eq!(fixme["attempt_history"][0]["status"], "gate_failed");
    assert_eq!(fixme["attempt_history"][1]["status"], "merged");
    let told = std::fs::read_to_string(f.scripts.join("feedback-fixme-2.md")).unwrap();
    assert!(told.contains("BROKEN-MARKER in fixme.txt"), "{told}");
    // It went on from its own commit: the fix is one commit on top of it.
    let first = fixme["attempt_history"][0]["commit"].as_str().unwrap();
    let last = fixme["commit"].as_str().unwrap();
    assert_eq!(f.git(&["rev-parse", &format!("{last}^")]), first);

    // A commit outside the scope is repaired too.
    let scope = slice_of(&proof, "scope");
    assert_eq!(scope["status"], "merged", "{scope}");
    assert_eq!(scope["attempt_history"][0]["status"], "scope_violation");
    assert_eq!(scope["changed_files"], json!(["scope.txt"]));

    // One that never passes ends with the gate named and every attempt listed.
    let hopeless = slice_of(&proof, "hopeless");
    assert_eq!(hopeless["status"], "gate_failed", "{hopeless}");
    assert_eq!(hopeless["attempts"], 3, "the default is 3 attempts");
    assert_eq!(hopeless["attempt_history"].as_array().unwrap().len(), 3);
    assert!(hopeless["reason"]
        .as_str()
        .unwrap()
        .contains("gate `check` failed"));
    assert!(proof["reason"]
        .as_str()
        .unwrap()
        .contains("hopeless (gate_failed)"));

    // The integration holds the others, and its gate passes when run by hand.
    let branch = proof["integration"]["branch"].as_str().unwrap();
    let files = f.git(&["ls-tree", "--name-only", branch]);
    assert_eq!(files, "fixme.txt\nok.txt\nomk.toml\nscope.txt");
    assert_eq!(f.show(branch, "fixme.txt"), "fixed");
    assert!(
        f.passes_by_hand(branch, gate),
        "the integration fails its gate by hand"
    );
}

#[test]
fn a_feedback_excerpt_is_bounded_however_long_the_log() {
    let gate = r#"i=0; while [ $i -lt 30000 ]; do echo "line $i of a very long failing test log"; i=$((i+1)); done; exit 1"#;
    let f = Fixture::new(&[("omk.toml", &gate_toml("long", gate, "slice"))]);
    f.allow_agent_writes_to_scripts();
    let agent = f.agent(&format!(
        r#"[ -n "$OMK_FEEDBACK" ] && cp "$OMK_FEEDBACK" {}/feedback.md; echo "$OMK_ATTEMPT" > a.txt"#,
        f.scripts.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--max-attempts", "2", "--no-base-check"]);
    assert_eq!(code, 1);
    assert_eq!(slice_of(&proof, "a")["attempts"], 2);
    let told = std::fs::read_to_string(f.scripts.join("feedback.md")).unwrap();
    assert!(told.len() <= 17 * 1024, "{} bytes", told.len());
    assert!(
        told.lines().count() <= 210,
        "{} lines",
        told.lines().count()
    );
    assert!(
        told.contains("line 29999 of"),
        "the excerpt is the end of the log"
    );
}

#[test]
fn a_base_that_already_fails_its_slice_gate_blocks_the_goal_before_any_agent_runs() {
    let gate = "python3 -c 'import no_such_module_for_omk'";
    let f = Fixture::new(&[("omk.toml", &gate_toml("unit", gate, "both"))]);
    f.allow_agent_writes_to_scripts();
    let ran = f.scripts.join("agent-ran");
    let agent = f.agent(&format!("touch {}; echo x > a.txt", ran.display()));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(proof["status"], "blocked");
    let reason = proof["reason"].as_str().unwrap();
    for said in [
        "gate `unit` already fails on the base commit",
        "could not even start",
        "or in the slot",
        "add a [[setup]] that installs it",
        "No module named",
        "--no-base-check",
    ] {
        assert!(reason.contains(said), "`{said}` missing from: {reason}");
    }
    assert_eq!(proof["base_check"]["passed"], false);
    assert!(!ran.exists(), "an agent ran");
    assert_eq!(slice_of(&proof, "a")["attempts"], 0);

    // Knowingly skipped, the agents run (and the gate still judges them).
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 1);
    assert!(ran.exists());
    assert!(proof.get("base_check").is_none());
    assert_eq!(slice_of(&proof, "a")["status"], "gate_failed");
}

#[test]
fn a_base_that_passes_is_checked_once_per_tree() {
    let counting = CountingGate::new("slice");
    let f = Fixture::new(&[("omk.toml", &counting.toml)]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--allow-no-gates"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["base_check"]["passed"], true);
    assert_eq!(
        proof["base_check"]["gates"][0]["tree"],
        f.git(&["rev-parse", "HEAD^{tree}"])
    );
    let runs = || counting.runs();
    assert_eq!(runs(), 2, "the base, then the slice");
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--allow-no-gates"]);
    assert_eq!(code, 0);
    assert_eq!(proof["base_check"]["gates"][0]["cached"], true);
    assert_eq!(runs(), 2, "both trees were judged before");
}

#[test]
fn cached_gate_results_say_where_they_come_from_and_can_be_bypassed() {
    let counting = CountingGate::new("both");
    let f = Fixture::new(&[("omk.toml", &counting.toml)]);
    let agent = f.agent(r#"echo same > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let runs = || counting.runs();
    let (_, first, _) = f.run_goal(&plan, &agent, &[]);
    let before = runs();
    let (_, second, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(runs(), before, "every tree was judged before");
    let a = slice_of(&second, "a");
    assert_eq!(a["gates"][0]["cached"], true);
    assert_eq!(a["gates"][0]["from_goal"], first["goal_id"]);
    let replay = f.omk(&["goal", "replay"]);
    let replay = String::from_utf8_lossy(&replay.stdout);
    let from = format!(
        "cached: it passed on this tree in goal {}",
        first["goal_id"].as_str().unwrap()
    );
    assert!(replay.contains(&from), "{replay}");
    let markdown = f.omk(&["goal", "proof", "--markdown"]);
    assert!(String::from_utf8_lossy(&markdown.stdout).contains("✓ check (cached)"));

    let (code, third, _) = f.run_goal(&plan, &agent, &["--no-gate-cache"]);
    assert_eq!(code, 0);
    assert_eq!(
        runs(),
        before + 3,
        "with the cache off, the base, the slice and the integration (the same tree) are judged again"
    );
    assert_eq!(slice_of(&third, "a")["gates"][0]["cached"], json!(null));
}

#[test]
fn the_settings_are_the_base_commit_s_not_the_checkout_s() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("committed", "true", "both"))]);
    // On another branch the gate differs, and the checkout holds an
    // uncommitted edit: neither is what `--base main` runs with.
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.write("omk.toml", &gate_toml("feature", "true", "both"));
    f.git(&["commit", "-qam", "feature gate"]);
    f.write("omk.toml", &gate_toml("uncommitted", "false", "both"));
    let agent = f.agent("echo x > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--base", "main"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(slice_of(&proof, "a")["gates"][0]["name"], "committed");
    assert!(
        stderr.contains("as the base commit"),
        "the run says where its gates come from: {stderr}"
    );
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0);
    assert_eq!(slice_of(&proof, "a")["gates"][0]["name"], "feature");
}

/// The most gates that ran at once, from the `start end` stamps they wrote.
fn most_at_once(stamps: &str) -> usize {
    let spans: Vec<(f64, f64)> = stamps
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(a, b)| a <= start && start < b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn gates_run_side_by_side_as_their_cpus_fit_and_never_beyond_the_budget() {
    for (cpus, budget, expected) in [(Some(1), "2", 2), (None, "2", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let stamps = dir.path().join("stamps");
        let gate = format!(
            r#"s=$(date +%s.%N); sleep 0.5; echo "$s $(date +%s.%N)" >> {}"#,
            stamps.display()
        );
        let mut toml = gate_toml("busy", &gate, "slice")
            + &format!("writable = ['{}']\n", dir.path().display());
        if let Some(n) = cpus {
            toml += &format!("cpus = {n}\n");
        }
        let f = Fixture::new(&[("omk.toml", &toml)]);
        let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
        let plan = f.plan(json!({ "slices": [
            slice("a", &["a.txt"]), slice("b", &["b.txt"]),
            slice("c", &["c.txt"]), slice("d", &["d.txt"]),
        ] }));
        let (code, _, stderr) =
            f.run_goal(&plan, &agent, &["--no-base-check", "--gate-cpus", budget]);
        assert_eq!(code, 0, "{stderr}");
        let stamps = std::fs::read_to_string(&stamps).unwrap();
        assert_eq!(stamps.lines().count(), 4, "{stamps}");
        assert_eq!(
            most_at_once(&stamps),
            expected,
            "cpus {cpus:?} on a budget of {budget}:\n{stamps}"
        );
    }
}

#[test]
fn a_failed_gate_s_excerpt_and_feedback_begin_where_the_failure_begins() {
    // As cargo prints it: the root error first, then pages of notes, then
    // a line that says little.
    let gate = r#"echo '   Compiling x v0.1.0'; echo 'error[E0592]: duplicate definitions with name `new`'; i=0; while [ $i -lt 80 ]; do echo "  note $i"; i=$((i+1)); done; echo 'For more information about this error, try `rustc --explain E0592`.'; test -e fixed.txt"#;
    let f = Fixture::new(&[("omk.toml", &gate_toml("build", gate, "slice"))]);
    f.allow_agent_writes_to_scripts();
    let agent = f.agent(&format!(
        r#"if [ -n "$OMK_FEEDBACK" ]; then cp "$OMK_FEEDBACK" {}/feedback.md; echo y > fixed.txt; fi; echo "$OMK_ATTEMPT" > a.txt"#,
        f.scripts.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt", "fixed.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    let excerpt = slice_of(&proof, "a")["attempt_history"][0]["excerpt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(excerpt.starts_with("error[E0592]"), "{excerpt}");
    assert!(excerpt.contains("rustc --explain E0592"), "{excerpt}");
    let told = std::fs::read_to_string(f.scripts.join("feedback.md")).unwrap();
    assert!(
        told.contains("error[E0592]: duplicate definitions"),
        "{told}"
    );
    let logs = String::from_utf8_lossy(&f.omk(&["goal", "logs", "--failed"]).stdout).into_owned();
    assert!(logs.contains("error[E0592]"), "{logs}");
}

#[test]
fn a_cached_gate_result_is_reported_at_once_not_after_a_busy_gate() {
    // `a`'s gate takes a while; `b`'s tree passed in an earlier goal.
    let gate = "if [ -e a.txt ]; then sleep 3; fi; true";
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", gate, "slice"))]);
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let only_b = f.plan(json!({ "slices": [slice("b", &["b.txt"])] }));
    let (code, _, stderr) = f.run_goal(&only_b, &agent, &["--no-base-check"]);
    assert_eq!(code, 0, "{stderr}");
    let both = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let agent = f.agent(
        r#"[ "$OMK_SLICE_ID" = b ] && sleep 1
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
    );
    let (code, proof, stderr) = f.run_goal(
        &both,
        &agent,
        &["--no-base-check", "--gate-concurrency", "1"],
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_eq!(
        slice_of(&proof, "b")["gates"][0]["cached"],
        true,
        "{proof:#}"
    );
    // In the log, b's cached result comes before a's slow gate ends.
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay", "--json"]).stdout).into_owned();
    let finished: Vec<String> = replay
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "gate_finished")
        .map(|e| e["slice"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        finished.first().map(String::as_str),
        Some("b"),
        "{finished:?}"
    );
}

#[test]
fn omk_log_shows_what_omk_decided_and_did_as_json_lines_for_a_bug_report() {
    let f = Fixture::new(&[("omk.toml", &passing_gate())]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let env = [("OMK_LOG", "debug"), ("OMK_LOG_FORMAT", "json")];
    let (code, _, stderr) = f.run_goal_env(&plan, &agent, &[], &env);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |what: &dyn Fn(&Value) -> bool, said: &str| {
        assert!(lines.iter().any(what), "no {said} in:\n{stderr}");
    };
    let message = |l: &Value| {
        l["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let span = |l: &Value| l["span"]["name"].as_str().unwrap_or_default().to_string();
    // The decisions, with what they decided.
    find(
        &|l| message(l) == "decided" && l["fields"]["action"].to_string().contains("Start"),
        "decision to start `a`",
    );
    find(
        &|l| message(l) == "recorded" && l["fields"]["kind"] == "slice_merged",
        "recorded merge",
    );
    // What was done, in spans that name the goal, the slice and the attempt.
    find(
        &|l| span(l) == "attempt" && l["span"]["slice"] == "a" && l["span"]["attempt"] == 1,
        "attempt span",
    );
    find(
        &|l| span(l) == "gate_job" && l["span"]["judged"] == "a" && message(l) == "gate ended",
        "gate job span",
    );
    find(
        &|l| span(l) == "merge" && l["span"]["slice"] == "a" && message(l) == "merge made",
        "merge span",
    );
}
