//! Delivery where engineers review: pushes to a real bare remote, pull
//! requests through a scripted GitHub API, squashed deliveries, and the
//! proof that travels with the branch and verifies on a fresh clone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::github::GitHubServer;
use crate::support::{gate_toml, slice, Fixture};
use serde_json::{json, Value};

/// A bare repository as the fixture's `origin`, holding its `main`.
pub(crate) fn remote(f: &Fixture) -> PathBuf {
    let bare = f.tmp.path().join("remote.git");
    git(
        f.tmp.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    f.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    f.git(&["push", "-q", "origin", "main"]);
    bare
}

/// Fetches the goals' proofs into `clone`, as a reviewer does.
pub(crate) fn fetch_proofs(clone: &Path) {
    git(
        clone,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/omk/proofs/*:refs/omk/proofs/*",
        ],
    );
}

/// A clone of `bare` beside the fixture's repository, named `name`.
pub(crate) fn clone_of(f: &Fixture, bare: &Path, name: &str) -> PathBuf {
    let clone = f.tmp.path().join(name);
    git(
        f.tmp.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    clone
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What `git rev-parse` says of `rev` in `dir`, or `None`.
pub(crate) fn rev(dir: &Path, rev: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "-q", "--verify", rev])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a two-slice goal that ends ready; returns its exit code, proof and stderr.
fn goal(f: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    f.run_goal_env(&plan, &agent, extra, env)
}

fn fixture() -> Fixture {
    Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))])
}

/// `omk -C dir <args>` with a state home of its own: a machine that never ran the goal.
pub(crate) fn omk_elsewhere(dir: &Path, args: &[&str]) -> (i32, String) {
    let home = dir.parent().unwrap().join("elsewhere-home");
    let out = Command::new(env!("CARGO_BIN_EXE_omk"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("OMK_HOME", home)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), said)
}

/// A `gh` on PATH that prints `token` for `gh auth token` (or fails without one).
fn fake_gh(f: &Fixture, token: Option<&str>) -> String {
    let bin = f.tmp.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let body = match token {
        Some(t) => {
            format!("#!/bin/sh\n[ \"$1 $2\" = \"auth token\" ] && echo {t} && exit 0\nexit 1\n")
        }
        None => "#!/bin/sh\necho 'not logged in' >&2\nexit 1\n".to_string(),
    };
    let gh = bin.join("gh");
    std::fs::write(&gh, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_pushed_goal_verifies_on_a_fresh_clone_and_an_edited_log_does_not() {
    let f = fixture();
    let bare = remote(&f);
    let (code, proof, stderr) = goal(&f, &["--deliver", "push"], &[]);
    assert_eq!(code, 0, "{stderr}\n{}", proof["delivery"]);
    let id = proof["goal_id"].as_str().unwrap();
    let integration = proof["integration"]["commit"].as_str().unwrap();
    let delivery = &proof["delivery"];
    assert_eq!(delivery["delivered"], true, "{delivery}");
    assert_eq!(delivery["remote"], "origin");
    let branch = format!("omk/{id}/integration");
    assert_eq!(
        delivery["pushed"][0]["name"],
        format!("refs/heads/{branch}")
    );
    assert_eq!(rev(&bare, &branch).as_deref(), Some(integration));
    assert!(rev(&bare, &format!("refs/omk/proofs/{id}")).is_some());
    assert_eq!(proof["status"], "ready");

    // A reviewer's clone: the branch comes with it, the proof is fetched.
    let clone = clone_of(&f, &bare, "reviewer");
    fetch_proofs(&clone);
    let (code, said) = omk_elsewhere(&clone, &["goal", "verify", id]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("OK:") && said.contains(proof["integration"]["tree"].as_str().unwrap()),
        "{said}"
    );
    assert!(
        said.contains(&format!("origin/{branch} has that tree")),
        "{said}"
    );
    // By prefix, and by the ref itself.
    assert_eq!(omk_elsewhere(&clone, &["goal", "verify", &id[..8]]).0, 0);
    assert_eq!(
        omk_elsewhere(
            &clone,
            &["goal", "verify", &format!("refs/omk/proofs/{id}")]
        )
        .0,
        0
    );

    // The pushed log edited: a merge's recorded tree changed, then committed as the proof.
    let proof_ref = format!("refs/omk/proofs/{id}");
    let log = git(&clone, &["show", &format!("{proof_ref}:events.jsonl")]);
    let edited: Vec<String> = log
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).unwrap();
            if e["kind"] == "slice_merged" {
                e["tree"] = json!("0".repeat(40));
            }
            serde_json::to_string(&e).unwrap()
        })
        .collect();
    let file = f.tmp.path().join("edited.jsonl");
    std::fs::write(&file, edited.join("\n") + "\n").unwrap();
    let blob = git(&clone, &["hash-object", "-w", file.to_str().unwrap()]);
    let proof_blob = git(&clone, &["rev-parse", &format!("{proof_ref}:proof.json")]);
    let listing =
        format!("100644 blob {blob}\tevents.jsonl\n100644 blob {proof_blob}\tproof.json\n");
    let tree = {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&clone)
            .arg("mktree")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(listing.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let forged = git(&clone, &["commit-tree", &tree, "-m", "forged"]);
    git(&clone, &["update-ref", &proof_ref, &forged]);
    let (code, said) = omk_elsewhere(&clone, &["goal", "verify", id]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("FAIL") && said.contains("the log was edited"),
        "{said}"
    );
}

#[test]
fn a_push_the_remote_refuses_is_reported_and_nothing_is_forced() {
    let f = fixture();
    let bare = remote(&f);
    let (code, proof, stderr) = goal(&f, &[], &[]);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let branch = format!("omk/{id}/integration");
    // Someone else pushed other work under the same name.
    let other = clone_of(&f, &bare, "other");
    std::fs::write(other.join("theirs.txt"), "theirs\n").unwrap();
    git(&other, &["add", "-A"]);
    git(
        &other,
        &[
            "-c",
            "user.name=o",
            "-c",
            "user.email=o@x",
            "commit",
            "-q",
            "-m",
            "theirs",
        ],
    );
    git(
        &other,
        &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
    );
    let theirs = rev(&bare, &branch).unwrap();

    let out = f.omk(&["goal", "deliver", "--to", "push"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("not delivered (push)") && said.contains("never force-pushes"),
        "{said}"
    );
    assert_eq!(
        rev(&bare, &branch),
        Some(theirs),
        "the remote branch is as it was"
    );
    assert!(
        rev(&bare, &format!("refs/omk/proofs/{id}")).is_none(),
        "no proof of a refused push"
    );
    let status: Value =
        serde_json::from_slice(&f.omk(&["goal", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "ready", "the goal stays ready locally");
    assert_eq!(status["delivery"]["delivered"], false);
    assert_eq!(
        f.git(&["rev-parse", &branch]),
        proof["integration"]["commit"].as_str().unwrap()
    );
}

#[test]
fn goal_deliver_after_the_fact_pushes_and_refuses_a_goal_that_is_not_ready() {
    let f = fixture();
    let bare = remote(&f);
    let (code, proof, stderr) = goal(&f, &[], &[]);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let out = f.omk(&["goal", "deliver", id, "--to", "push"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        rev(&bare, &format!("omk/{id}/integration")).as_deref(),
        proof["integration"]["commit"].as_str()
    );
    // The event log records it, and `replay` shows it.
    let replay = String::from_utf8_lossy(&f.omk(&["goal", "replay"]).stdout).into_owned();
    assert!(replay.contains("delivered (push)"), "{replay}");

    // A goal whose slice failed is delivered only with --partial.
    let agent = f.agent(r#"[ "$OMK_SLICE_ID" = b ] && exit 1; echo a > a.txt"#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--max-attempts", "1"]);
    assert_eq!(code, 1);
    let id = proof["goal_id"].as_str().unwrap();
    let out = f.omk(&["goal", "deliver", id, "--to", "push"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not ready") && err.contains("--partial"),
        "{err}"
    );
    assert!(rev(&bare, &format!("omk/{id}/integration")).is_none());
    let out = f.omk(&["goal", "deliver", id, "--to", "push", "--partial", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["delivery"]["missing"], json!(["b"]));
}

#[test]
fn squash_delivers_one_commit_on_the_base_with_the_integration_tree() {
    let f = fixture();
    let bare = remote(&f);
    let base = f.git(&["rev-parse", "main"]);
    let (code, proof, stderr) = goal(&f, &["--deliver", "push", "--squash"], &[]);
    assert_eq!(code, 0, "{stderr}\n{}", proof["delivery"]);
    let id = proof["goal_id"].as_str().unwrap();
    let squash = proof["delivery"]["squash_commit"].as_str().unwrap();
    assert_eq!(
        rev(&bare, &format!("omk/{id}/squash")).as_deref(),
        Some(squash)
    );
    assert_eq!(
        git(&bare, &["rev-parse", &format!("{squash}^@")]),
        base,
        "one parent: the base"
    );
    assert_eq!(
        git(&bare, &["rev-parse", &format!("{squash}^{{tree}}")]),
        proof["integration"]["tree"].as_str().unwrap()
    );
    let message = git(&bare, &["log", "-1", "--format=%B", squash]);
    assert!(
        message.contains("- a") && message.contains("- b"),
        "{message}"
    );
    // The merge history stays on the integration branch, pushed too.
    assert_eq!(
        rev(&bare, &format!("omk/{id}/integration")).as_deref(),
        proof["integration"]["commit"].as_str()
    );
}

#[test]
fn a_pull_request_is_opened_then_updated_with_the_token_from_each_source() {
    let f = fixture();
    remote(&f);
    let gh = GitHubServer::start();
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    // doctor says where the token comes from, never what it is.
    let doctor = String::from_utf8_lossy(&f.omk_env(&["doctor"], &env).stdout).into_owned();
    assert!(
        doctor.contains("token from GH_TOKEN, repository acme/widgets"),
        "{doctor}"
    );
    assert!(!doctor.contains("token-one"), "{doctor}");
    // GitHub's refusal is shown with its message; the branch is pushed all the same.
    gh.refuse_create(422, "Validation Failed");
    let (code, proof, _) = goal(&f, &["--deliver", "pr", "--draft"], &env);
    assert_eq!(code, 1, "{}", proof["delivery"]);
    let reason = proof["delivery"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("422") && reason.contains("Validation Failed"),
        "{reason}"
    );
    let id = proof["goal_id"].as_str().unwrap().to_string();

    let out = f.omk_env(
        &["goal", "deliver", &id, "--to", "pr", "--draft", "--json"],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pr = &state["delivery"]["pull_request"];
    assert_eq!(pr["created"], true);
    assert_eq!(pr["url"], "https://github.example/acme/widgets/pull/1");
    let pulls = gh.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"]["ref"], format!("omk/{id}/integration"));
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert_eq!(pulls[0]["draft"], true);
    assert_eq!(pulls[0]["title"], "test goal");
    let body = pulls[0]["body"].as_str().unwrap();
    assert!(
        body.contains("| `a` |") && body.contains(&format!("omk goal verify {id}")),
        "{body}"
    );
    let tmp = f.tmp.path().canonicalize().unwrap();
    assert!(
        !body.contains(tmp.to_str().unwrap()),
        "the body names no path of this machine:\n{body}"
    );
    let auth = |i: usize| gh.requests()[i].authorization.clone().unwrap_or_default();
    assert_eq!(auth(gh.requests().len() - 1), "Bearer token-one");

    // Delivered again, with GITHUB_TOKEN: the open pull request is updated.
    let env2 = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GITHUB_TOKEN", "token-two"),
        ("GH_REPO", "acme/widgets"),
    ];
    let out = f.omk_env(&["goal", "deliver", &id, "--to", "pr", "--json"], &env2);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["delivery"]["pull_request"]["created"], false);
    assert_eq!(gh.pulls().len(), 1, "updated, not opened again");
    let last = gh.requests().last().cloned().unwrap();
    assert_eq!(last.method, "PATCH");
    assert_eq!(last.authorization.as_deref(), Some("Bearer token-two"));

    // With neither variable, `gh auth token`'s.
    let path = fake_gh(&f, Some("token-three"));
    let env3 = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_REPO", "acme/widgets"),
        ("PATH", path.as_str()),
    ];
    let out = f.omk_env(&["goal", "deliver", &id, "--to", "pr"], &env3);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        gh.requests().last().unwrap().authorization.as_deref(),
        Some("Bearer token-three")
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("pull request #1 https://github.example/acme/widgets/pull/1"),
        "{said}"
    );
}

#[test]
fn a_missing_token_or_an_unknown_repository_is_refused_before_anything_is_pushed() {
    let f = fixture();
    let bare = remote(&f);
    let path = fake_gh(&f, None);
    let agent = f.agent("echo a > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let out = f.omk_env(
        &[
            "goal",
            "run",
            "g",
            "--plan",
            plan.to_str().unwrap(),
            "--agent",
            &agent,
            "--deliver",
            "pr",
        ],
        &[("PATH", path.as_str())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // Both problems at once, each with its fix.
    assert!(
        err.contains("no GitHub token") && err.contains("GH_TOKEN"),
        "{err}"
    );
    assert!(
        err.contains("cannot tell the GitHub repository") && err.contains("GH_REPO"),
        "{err}"
    );
    assert!(
        git(&bare, &["for-each-ref", "--format=%(refname)"])
            .lines()
            .all(|r| !r.contains("omk")),
        "nothing was pushed"
    );
    let list: Value = serde_json::from_slice(&f.omk(&["goal", "list", "--json"]).stdout).unwrap();
    assert_eq!(list, json!([]), "no goal was created");

    // A remote that does not exist, named as given.
    let out = f.omk(&[
        "goal",
        "run",
        "g",
        "--plan",
        plan.to_str().unwrap(),
        "--agent",
        &agent,
        "--deliver",
        "push",
        "--remote",
        "upstream",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no remote `upstream`") && err.contains("git remote add upstream"),
        "{err}"
    );
}

/// A goal whose slice `scoped` first writes a marker outside its scope
/// (refused, then repaired) and whose slice `red` first fails the gate
/// (repaired), delivered with `deliver`; returns the proof.
fn repaired_goal(f: &Fixture, deliver: &str) -> Value {
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID:$OMK_ATTEMPT" in
  scoped:1) echo "SECRET-MARKER-4411" > README.md; echo scoped > scoped.txt ;;
  red:1) echo broken > red.txt ;;
  scoped:*) git show HEAD^:README.md > README.md; echo scoped > scoped.txt ;;
  *) echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt" ;;
esac"#,
    );
    let plan =
        f.plan(json!({ "slices": [slice("scoped", &["scoped.txt"]), slice("red", &["red.txt"])] }));
    let (code, proof, stderr) =
        f.run_goal(&plan, &agent, &["--deliver", deliver, "--base", "main"]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    for id in ["scoped", "red"] {
        let s = crate::support::slice_of(&proof, id);
        assert_eq!(s["attempts"], 2, "{s:#}");
    }
    proof
}

/// Every commit of `range` in `dir`, and whether each is a merge.
fn commits(dir: &Path, range: &str) -> Vec<(String, bool)> {
    git(dir, &["rev-list", "--parents", range])
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words[0].to_string(), words.len() > 2)
        })
        .collect()
}

/// Whether the slice gate passes on `commit`'s tree, checked out in a
/// scratch worktree of `dir`.
fn gate_passes(dir: &Path, commit: &str, scratch: &Path) -> bool {
    let wt = scratch.join(format!("check-{}", &commit[..12]));
    git(
        dir,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            wt.to_str().unwrap(),
            commit,
        ],
    );
    let ok = Command::new("sh")
        .arg("-c")
        .arg(GATE)
        .current_dir(&wt)
        .status()
        .unwrap()
        .success();
    git(
        dir,
        &["worktree", "remove", "--force", wt.to_str().unwrap()],
    );
    ok
}

/// The slice gate: nothing says `broken`.
const GATE: &str = "! grep -qs broken red.txt";

#[test]
fn only_green_in_scope_work_is_pushed_one_clean_commit_per_slice() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", GATE, "both")),
        ("README.md", "readme\n"),
    ]);
    let bare = remote(&f);
    let proof = repaired_goal(&f, "push");
    let id = proof["goal_id"].as_str().unwrap();
    let branch = format!("omk/{id}/integration");
    // No object the remote holds has the refused attempt's marker.
    let objects = git(
        &bare,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    );
    for object in objects.lines() {
        let body = Command::new("git")
            .arg("-C")
            .arg(&bare)
            .args(["cat-file", "-p", object])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&body.stdout).contains("SECRET-MARKER-4411"),
            "the remote holds the refused attempt's marker in {object}"
        );
    }
    // Each slice contributes one commit, on the base, with its trailers.
    let delivered = commits(&bare, &format!("main..{branch}"));
    let singles: Vec<&String> = delivered
        .iter()
        .filter(|(_, m)| !*m)
        .map(|(c, _)| c)
        .collect();
    assert_eq!(singles.len(), 2, "{delivered:?}");
    for c in &singles {
        let message = git(&bare, &["log", "-1", "--format=%B", c]);
        assert!(message.contains("Omk-Attempts: 2"), "{message}");
        assert!(message.contains(&format!("Omk-Goal: {id}")), "{message}");
    }
    // Every commit the branch holds passes the slice gate: bisection never
    // lands on a red one.
    let clone = clone_of(&f, &bare, "bisector");
    for (c, _) in &delivered {
        assert!(gate_passes(&clone, c, f.tmp.path()), "{c} is red");
    }
    // Attempts stay local, to be looked at; the integration's diff is the goal's.
    let diff = |args: &[&str]| String::from_utf8_lossy(&f.omk(args).stdout).into_owned();
    let red = diff(&["goal", "diff", "red", "--attempt", "1"]);
    assert!(red.contains("+broken"), "{red}");
    let refused = diff(&["goal", "diff", "scoped", "--attempt", "1"]);
    assert!(refused.contains("SECRET-MARKER-4411"), "{refused}");
    let whole = diff(&["goal", "diff", id, "integration", "--stat"]);
    assert!(
        whole.contains("scoped.txt") && whole.contains("red.txt") && !whole.contains("README"),
        "{whole}"
    );
    // The proof still tells the attempts' story, and verifies on a clone.
    let md = String::from_utf8_lossy(&f.omk(&["goal", "proof", "--markdown"]).stdout).into_owned();
    assert!(
        md.contains("### Attempts") && md.contains("scope_violation"),
        "{md}"
    );
    assert!(
        md.contains(&format!("omk goal verify {id}")),
        "pushed: {md}"
    );
    fetch_proofs(&clone);
    let (code, said) = omk_elsewhere(&clone, &["goal", "verify", id]);
    assert_eq!(code, 0, "{said}");
    let replay = f.omk(&["goal", "replay", "--verify"]);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}

#[test]
fn a_fast_forwarded_base_holds_only_green_commits() {
    let toml =
        gate_toml("check", GATE, "both") + "[commit]\nauthor = \"Release Bot <bot@example.com>\"\n";
    let f = Fixture::new(&[("omk.toml", &toml), ("README.md", "readme\n")]);
    let base = f.git(&["rev-parse", "main"]);
    // `ff` moves a branch that is not checked out.
    f.git(&["checkout", "-q", "--detach"]);
    let proof = repaired_goal(&f, "ff");
    assert_eq!(
        proof["delivery"]["delivered"], true,
        "{:#}",
        proof["delivery"]
    );
    let on_main = commits(&f.repo, &format!("{base}..main"));
    assert!(!on_main.is_empty());
    for (c, merge) in &on_main {
        assert!(gate_passes(&f.repo, c, f.tmp.path()), "{c} on main is red");
        if !*merge {
            let by = f.git(&["log", "-1", "--format=%an <%ae>", c]);
            assert_eq!(by, "Release Bot <bot@example.com>", "[commit] author");
        }
        let tree = f.git(&["ls-tree", "-r", "--name-only", c]);
        assert!(
            !f.git(&["show", &format!("{c}:README.md")])
                .contains("SECRET-MARKER"),
            "{tree}"
        );
    }
}

#[test]
fn goal_land_follows_the_checks_waits_for_an_approval_and_merges_the_head_it_pushed() {
    let f = fixture();
    let bare = remote(&f);
    let gh = GitHubServer::start();
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    // One attempt each: a failed check has no slice left to repair it.
    let (code, proof, stderr) = goal(&f, &["--deliver", "pr", "--max-attempts", "1"], &env);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    let head = rev(&bare, &format!("omk/{id}/integration")).expect("the pushed branch");
    let land = |extra: &[&str]| {
        let mut args = vec!["goal", "land", &id, "--land-poll", "20ms", "--json"];
        args.extend(extra);
        let out = f.omk_env(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let state: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        (out.status.code(), state["landing"].clone())
    };
    let merges = || {
        gh.requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/merge"))
            .collect::<Vec<_>>()
    };

    // Someone else pushed to the pull request: omk neither merges nor overwrites it.
    gh.set_head(1, "0123456789012345678901234567890123456789");
    let (code, landing) = land(&[]);
    assert_eq!(code, Some(1), "{landing:#}");
    assert!(
        landing["stopped"]
            .as_str()
            .unwrap()
            .contains("moved to 0123456789"),
        "{landing:#}"
    );
    assert!(merges().is_empty());

    // A required check fails on the head: landing stops and names it.
    gh.set_head(1, &head);
    gh.require(&["test"]);
    gh.script_checks(&[
        ("test", 0, "failure", "2 tests failed in a.txt"),
        ("docs", 0, "failure", ""),
    ]);
    let (code, landing) = land(&[]);
    assert_eq!(code, Some(1), "{landing:#}");
    let stopped = landing["stopped"].as_str().unwrap();
    assert!(
        stopped.contains("required check `test` (2 tests failed in a.txt) failed")
            && stopped.contains("it concerns a, which has no attempt left of 1"),
        "{landing:#}"
    );
    assert!(
        !stopped.contains("docs"),
        "a check no protection requires: {stopped}"
    );
    assert!(merges().is_empty());

    // A check's summary is GitHub's (a CI job's) words: shown, never obeyed
    // by the terminal.
    gh.script_checks(&[("test", 0, "failure", "\u{1b}]0;owned\u{7}\u{1b}[2Jboom")]);
    let out = f.omk_env(&["goal", "land", &id, "--land-poll", "20ms"], &env);
    assert_eq!(out.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("boom") && !shown.contains('\u{1b}'),
        "{shown:?}"
    );

    // Taken up again: the checks run, pass; the first merge is refused for
    // want of an approval, and omk waits; then it merges with the head's sha.
    gh.script_checks(&[("test", 2, "success", ""), ("docs", 0, "failure", "")]);
    gh.refuse_merge(
        405,
        "At least 1 approving review is required by reviewers with write access.",
    );
    let (code, landing) = land(&[]);
    assert_eq!(code, Some(0), "{landing:#}");
    assert_eq!(landing["number"], 1);
    assert_eq!(landing["head"], head.as_str());
    assert_eq!(
        landing["merged"],
        "feed000000000000000000000000000000000001"
    );
    assert_eq!(landing["method"], "squash");
    let merges = merges();
    assert_eq!(merges.len(), 2, "refused once, then merged");
    for m in &merges {
        assert_eq!(m.body["sha"], head.as_str());
        assert_eq!(m.body["merge_method"], "squash");
    }
    // Never a forced push, never an admin bypass.
    for r in gh.requests() {
        let said = format!("{} {} {}", r.method, r.path, r.body);
        assert!(!said.contains("force") && !said.contains("admin"), "{said}");
    }
    // Every step is in the log, and the log still verifies.
    let replay =
        String::from_utf8_lossy(&f.omk_env(&["goal", "replay", &id], &env).stdout).into_owned();
    for said in [
        "landing pull request #1: following its head",
        "checks: 0 passed, 1 pending, 1 failed (docs)",
        "checks: 1 passed, 0 pending, 1 failed (docs)",
        "waiting: merging the pull request: GitHub answered 405: At least 1 approving review",
        "merged (squash) as feed000000",
    ] {
        assert!(replay.contains(said), "`{said}` missing from:\n{replay}");
    }
    let verify = f.omk_env(&["goal", "replay", &id, "--verify"], &env);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // Landed is landed: asked again, nothing more is sent.
    let before = gh.requests().len();
    let (code, _) = land(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(gh.requests().len(), before);
}

#[test]
fn a_pull_request_that_already_exists_is_found_and_updated_and_every_delivery_is_kept() {
    let f = fixture();
    remote(&f);
    let gh = GitHubServer::start();
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    let (code, proof, stderr) = goal(&f, &["--deliver", "pr"], &env);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap().to_string();
    // GitHub's search by head misses it now (a fork's head): creating it
    // again is refused with 422 "already exists", and omk finds and updates it.
    gh.hide_from_head_search();
    let out = f.omk_env(&["goal", "deliver", &id, "--to", "pr", "--json"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(gh.pulls().len(), 1, "updated, not opened twice");
    assert_eq!(state["delivery"]["pull_request"]["number"], 1);
    assert_eq!(state["delivery"]["pull_request"]["created"], false);
    assert_eq!(gh.requests().last().unwrap().method, "PATCH");
    // The first delivery is kept.
    let earlier = state["earlier_deliveries"]
        .as_array()
        .expect("earlier deliveries");
    assert_eq!(earlier.len(), 1, "{state:#}");
    assert_eq!(earlier[0]["pull_request"]["created"], true);
    assert_eq!(
        earlier[0]["pull_request"]["url"],
        state["delivery"]["pull_request"]["url"]
    );
}

#[test]
fn deliver_land_opens_the_pull_request_and_merges_it_once_its_checks_pass() {
    let f = fixture();
    let bare = remote(&f);
    let gh = GitHubServer::start();
    gh.heads_from(&bare);
    gh.script_checks(&[("test", 0, "success", "")]);
    let env = [
        ("GITHUB_API_URL", gh.api_url.as_str()),
        ("GH_TOKEN", "token-one"),
        ("GH_REPO", "acme/widgets"),
    ];
    let (code, proof, stderr) = goal(&f, &["--deliver", "land"], &env);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let id = proof["goal_id"].as_str().unwrap();
    let head = rev(&bare, &format!("omk/{id}/integration")).unwrap();
    assert_eq!(proof["delivery"]["pull_request"]["number"], 1);
    assert_eq!(proof["landing"]["head"], head.as_str());
    assert_eq!(
        proof["landing"]["merged"],
        "feed000000000000000000000000000000000001"
    );
    assert!(stderr.contains("merged (squash) as feed000000"), "{stderr}");
    let merge = gh
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a merge");
    assert_eq!(merge.body["sha"], head.as_str());
}
