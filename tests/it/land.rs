//! A pull request's life, from opened to merged, against a scripted GitHub
//! API on loopback (the real client code runs against it; pushes go to a
//! local bare repository): a CI failure and a review's comment go back to
//! the slices they concern, the repaired heads are pushed as fast-forwards,
//! the review's thread is answered, and the merge waits for an approval.

use serde_json::Value;

use crate::deliver::{clone_of, fetch_proofs, git, omk_elsewhere, remote, rev};
use crate::support::github::GitHubServer;
use crate::support::{gate_toml, slice, slice_of, Fixture};

/// Writes its slice's file; told something, answers what it was told.
const AGENT: &str = r#"
case "$OMK_SLICE_ID" in
  app) f=app.txt ;;
  docs) mkdir -p docs; f=docs/guide.md ;;
esac
if [ -n "${OMK_FEEDBACK:-}" ]; then
  grep -q "app.txt still says v1" "$OMK_FEEDBACK" && echo "fixed what CI said" >> "$f"
  grep -q "say why, not only what" "$OMK_FEEDBACK" && echo "why: because" >> "$f"
else
  echo "$OMK_SLICE_ID v1" > "$f"
fi
true
"#;

#[test]
fn a_failed_check_and_a_review_go_back_to_their_slices_and_the_repaired_head_merges() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let bare = remote(&f);
    let gh = GitHubServer::start();
    gh.heads_from(&bare);
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    let agent = f.agent(AGENT);
    let plan = f.plan(serde_json::json!({ "slices": [
        slice("app", &["app.txt"]),
        slice("docs", &["docs/**"]),
    ] }));
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &["--deliver", "pr"], &env);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    let branch = format!("omk/{id}/integration");
    let first = rev(&bare, &branch).expect("the pushed branch");

    // The first head's test job fails, naming a file of `app`; the second
    // head's passes, and a review then asks `docs` for a change; the third
    // passes, and the first merge waits for an approval.
    let failing =
        "running 2 tests\nFAILED tests/app_test.sh: app.txt still says v1\nerror: 1 test failed";
    gh.script_checks_per_head(&[
        &[("test", 1, "failure", failing)],
        &[("test", 1, "success", "ok")],
        &[("test", 0, "success", "ok")],
    ]);
    gh.require(&["test"]);
    gh.script_review(
        2,
        71,
        ("ann", "CHANGES_REQUESTED", ""),
        &[(501, "docs/guide.md", 1, "Please say why, not only what.")],
    );
    gh.refuse_merge(
        405,
        "At least 1 approving review is required by reviewers with write access.",
    );
    let out = f.omk_env(
        &[
            "goal",
            "land",
            &id,
            "--land-poll",
            "20ms",
            "--json",
            "--no-progress",
        ],
        &env,
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let landing = &state["landing"];

    // Three heads, each a fast-forward of the one before; the last merged.
    let heads = gh.heads_seen();
    assert_eq!(heads.len(), 3, "{heads:?}\n{landing:#}");
    assert_eq!(heads[0], first);
    let last = rev(&bare, &branch).unwrap();
    assert_eq!(heads[2], last);
    for pair in heads.windows(2) {
        git(&bare, &["merge-base", "--is-ancestor", &pair[0], &pair[1]]);
    }
    assert_eq!(landing["head"], last.as_str());
    assert_eq!(
        landing["merged"],
        "feed000000000000000000000000000000000001"
    );
    let merges: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/merge"))
        .collect();
    assert_eq!(merges.len(), 2, "refused once for an approval, then merged");
    assert!(merges.iter().all(|m| m.body["sha"] == last.as_str()));

    // What came back went to the slice it concerns, and was acted on.
    let feedback = landing["feedback"].as_array().expect("feedback sent");
    assert_eq!(feedback.len(), 2, "{landing:#}");
    assert_eq!(feedback[0]["head"], first.as_str());
    assert_eq!(feedback[0]["asked"][0]["from"]["kind"], "check");
    assert_eq!(
        feedback[0]["asked"][0]["slices"],
        serde_json::json!(["app"])
    );
    let log = feedback[0]["asked"][0]["text"].as_str().unwrap();
    assert!(
        log.contains("FAILED tests/app_test.sh") && !log.contains("2026-12-07T"),
        "the job's log, without its timestamps: {log}"
    );
    assert_eq!(feedback[1]["head"], heads[1].as_str());
    assert_eq!(feedback[1]["asked"][0]["from"]["kind"], "comment");
    assert_eq!(feedback[1]["asked"][0]["from"]["path"], "docs/guide.md");
    assert_eq!(
        feedback[1]["asked"][0]["slices"],
        serde_json::json!(["docs"])
    );
    let shown = |path: &str| git(&bare, &["show", &format!("{last}:{path}")]);
    assert_eq!(shown("app.txt"), "app v1\nfixed what CI said");
    assert_eq!(shown("docs/guide.md"), "docs v1\nwhy: because");
    assert_eq!(slice_of(&state, "app")["attempts"], 2);
    assert_eq!(slice_of(&state, "docs")["attempts"], 2);
    assert_eq!(state["status"], "ready");

    // The review's thread is answered with the slice and the commit.
    let replies: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/comments/501/replies"))
        .collect();
    assert_eq!(replies.len(), 1);
    let reply = replies[0].body["body"].as_str().unwrap();
    assert!(reply.contains("slice `docs`"), "{reply}");
    let commit = landing["replies"][0]["commit"].as_str().unwrap();
    assert!(reply.contains(commit), "{reply}");
    git(&bare, &["merge-base", "--is-ancestor", commit, &last]);

    // Never a forced push, never an admin bypass, never a dismissed review.
    for r in gh.requests() {
        let said = format!("{} {} {}", r.method, r.path, r.body);
        assert!(
            !said.contains("force") && !said.contains("admin") && !said.contains("dismiss"),
            "{said}"
        );
    }
    assert_eq!(gh.pulls().len(), 1, "one pull request, updated");
    // The log tells the story and still verifies.
    let replay = f.omk_env(&["goal", "replay", &id], &env);
    let replay = String::from_utf8_lossy(&replay.stdout).into_owned();
    for line in [
        "feedback on",
        "check `test` → app; reopened app",
        "comment 501 by @ann on docs/guide.md:1 → docs; reopened docs",
        "replied on comment 501: addressed by slice docs",
    ] {
        assert!(replay.contains(line), "`{line}` missing from:\n{replay}");
    }
    let verify = f.omk_env(&["goal", "replay", &id, "--verify"], &env);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // And what was merged verifies on a reviewer's clone.
    let clone = clone_of(&f, &bare, "reviewer");
    fetch_proofs(&clone);
    let (code, said) = omk_elsewhere(&clone, &["goal", "verify", &id]);
    assert_eq!(code, 0, "{said}");
}

#[test]
fn goal_land_killed_while_a_slice_repairs_is_taken_up_on_the_same_pull_request() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let bare = remote(&f);
    let gh = GitHubServer::start();
    gh.heads_from(&bare);
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    // Told something, the agent takes its time: long enough to be killed.
    let agent = f.agent(&AGENT.replace(
        "if [ -n \"${OMK_FEEDBACK:-}\" ]; then",
        "if [ -n \"${OMK_FEEDBACK:-}\" ]; then\n  sleep 2",
    ));
    let plan = f.plan(serde_json::json!({ "slices": [
        slice("app", &["app.txt"]),
        slice("docs", &["docs/**"]),
    ] }));
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &["--deliver", "pr"], &env);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    let failing = "FAILED: app.txt still says v1";
    gh.script_checks_per_head(&[
        &[("test", 0, "failure", failing)],
        &[("test", 0, "success", "ok")],
    ]);
    let args = [
        "goal",
        "land",
        &id,
        "--land-poll",
        "20ms",
        "--json",
        "--no-progress",
    ];
    let mut first = f
        .omk_command(&args, &env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let events = f.goal_dir(&id).join("events.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .contains("\"kind\":\"slice_started\",\"slice\":\"app\",\"attempt\":2")
    {
        assert!(std::time::Instant::now() < deadline, "never reopened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let out = f.omk_env(&args, &env);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["landing"]["number"], 1);
    assert_eq!(gh.pulls().len(), 1, "the same pull request, not a new one");
    let last = rev(&bare, &format!("omk/{id}/integration")).unwrap();
    assert_eq!(
        state["landing"]["merged"],
        "feed000000000000000000000000000000000001"
    );
    assert_eq!(state["landing"]["head"], last.as_str());
    assert_eq!(
        git(&bare, &["show", &format!("{last}:app.txt")]),
        "app v1\nfixed what CI said"
    );
    assert_eq!(state["landing"]["feedback"].as_array().unwrap().len(), 1);
    // The interrupted repair was taken over, not sent again.
    let log = std::fs::read_to_string(&events).unwrap();
    assert_eq!(log.matches("\"kind\":\"goal_resumed\"").count(), 2, "{log}");
    assert_eq!(log.matches("\"step\":\"reopened\"").count(), 1);
    assert!(
        f.leftover_processes().is_empty(),
        "{:?}",
        f.leftover_processes()
    );
}

#[test]
fn a_failed_check_its_gate_reproduces_is_bisected_to_the_slice_that_broke_it() {
    // CI sees what this machine does not until it is told (its own
    // environment): the gate mapped to the check reads it from `env`.
    let ci_env = tempfile::tempdir().unwrap();
    let strict = ci_env.path().join("strict");
    let toml = gate_toml("check", "true", "slice")
        + &gate_toml(
            "unit",
            &format!(
                "if [ -e {} ] && grep -q broken b.txt; then echo 'FAILED: b.txt is broken'; exit 1; fi",
                strict.display()
            ),
            "integration",
        )
        + &format!(
            "ci = \"test\"\n[sandbox]\nreadable = ['{}']\n",
            ci_env.path().display()
        );
    let f = Fixture::new(&[("omk.toml", &toml)]);
    let bare = remote(&f);
    let gh = GitHubServer::start();
    gh.heads_from(&bare);
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    let agent = f.agent(
        r#"f="$OMK_SLICE_ID.txt"
if [ -n "${OMK_FEEDBACK:-}" ]; then
  grep -q "b.txt is broken" "$OMK_FEEDBACK" && echo "$OMK_SLICE_ID fixed" > "$f"
elif [ "$OMK_SLICE_ID" = b ]; then
  echo "b broken" > "$f"
else
  echo "$OMK_SLICE_ID v1" > "$f"
fi
true"#,
    );
    let plan = f.plan(serde_json::json!({ "slices": [
        slice("a", &["a.txt"]),
        slice("b", &["b.txt"]),
        slice("c", &["c.txt"]),
    ] }));
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &["--deliver", "pr"], &env);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    let branch = format!("omk/{id}/integration");
    let first = rev(&bare, &branch).expect("the pushed branch");

    // CI fails the first head with a log that points at `a`'s file; the
    // repaired head passes.
    std::fs::write(&strict, "").unwrap();
    gh.script_checks_per_head(&[
        &[(
            "test",
            1,
            "failure",
            "error: in a.txt: 1 test failed\nFAILED: b.txt is broken",
        )],
        &[("test", 0, "success", "ok")],
    ]);
    gh.require(&["test"]);
    let land = [
        "goal",
        "land",
        &id,
        "--land-poll",
        "20ms",
        "--json",
        "--no-progress",
    ];
    // Killed as the reproduction's first gate starts, landing is taken up
    // again: the reproduction ends first, once.
    let mut killed = env.to_vec();
    killed.push(("OMK_FAULT", "kill:gate.job:integration"));
    let out = f.omk_env(&land, &killed);
    assert_eq!(out.status.code(), None, "killed");
    let out = f.omk_env(&land, &env);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let landing = &state["landing"];

    // The gate failed on the head here too, and first on `b`'s merge.
    let reproduced = landing["reproduced"].as_array().expect("reproduced");
    assert_eq!(reproduced.len(), 1, "{landing:#}");
    let r = &reproduced[0];
    assert_eq!(
        (r["check"].as_str(), r["gate"].as_str()),
        (Some("test"), Some("unit"))
    );
    assert_eq!(r["head"], first.as_str());
    assert_eq!(r["found"]["kind"], "culprit", "{r:#}");
    assert_eq!(r["found"]["slice"], "b");
    assert!(r["runs"].as_u64().unwrap() >= 2, "{r:#}");
    assert!(r["found"]["excerpt"]
        .as_str()
        .unwrap()
        .contains("FAILED: b.txt is broken"));
    // So `b` alone was told, whatever the log named; it mended its file.
    let feedback = &landing["feedback"][0]["asked"][0];
    assert_eq!(feedback["slices"], serde_json::json!(["b"]), "{landing:#}");
    assert_eq!(slice_of(&state, "a")["attempts"], 1);
    assert_eq!(slice_of(&state, "c")["attempts"], 1);
    assert_eq!(slice_of(&state, "b")["attempts"], 2);
    let last = rev(&bare, &branch).unwrap();
    git(&bare, &["merge-base", "--is-ancestor", &first, &last]);
    assert_eq!(git(&bare, &["show", &format!("{last}:b.txt")]), "b fixed");
    assert_eq!(landing["head"], last.as_str());
    assert!(landing["merged"].is_string(), "{landing:#}");
    // The log tells it, and still verifies.
    let replay = f.omk_env(&["goal", "replay", &id], &env);
    let replay = String::from_utf8_lossy(&replay.stdout).into_owned();
    for line in [
        "reproducing check `test`",
        "gate `unit` reproduced check `test`; it fails first on the merge of b",
        "check `test` → b; reopened b",
    ] {
        assert!(replay.contains(line), "`{line}` missing from:\n{replay}");
    }
    let verify = f.omk_env(&["goal", "replay", &id, "--verify"], &env);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
