//! Agents that try to leave their worktree, tamper with the repository or
//! leak secrets. Every attempt must be blocked (Landlock, the policy, the
//! environment allow-list) or detected (scope and symlink checks), the user's
//! repository must be byte-identical afterwards, and no secret may appear in
//! any file under omk's state directory.

use crate::support::{files_under, gate_toml, slice, slice_of, Fixture};
use serde_json::{json, Value};

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
  sibling) # Once every slice has its slot (7 slices, one slot each):
    until [ "$(ls -d ../slot-*/ | grep -c '/slot-[0-9]*/$')" -ge 7 ]; do sleep 0.05; done
    others=$(ls -d ../slot-*/ | grep -v "/${{PWD##*/}}\(\.tmp\)\?/$")
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
    // One attempt each: what is judged is the attack, not a repair of it.
    let one = ["--require-sandbox", "--max-attempts", "1"];
    let (_, proof, _) = f.run_goal_env(&plan, &agent, &one, &env);
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
  *) while :; do sleep 0.05; done ;; # until the goal stops and cancels it
esac"#
    ));
    let plan =
        f.plan(json!({ "slices": [slice("rogue", &["rogue.txt"]), slice("calm", &["calm.txt"])] }));
    let bound = ["--slice-timeout", "60s"];
    let off = [("OMK_LANDLOCK", "0"), ("OMK_USERNS", "0")];
    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &bound, &off);
    assert_eq!(code, 3, "a failed goal: {stderr}");
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
fn without_a_sandbox_an_agent_s_writes_in_other_slots_reach_no_judged_tree() {
    // One gate at a time, each slow: of `first` and `second`, which finish
    // at once, one gates while the other waits, holding no slot (its commit
    // is in the object database), while `rogue` writes in every other slot.
    let f = Fixture::new(&[(
        "omk.toml",
        &gate_toml("wait", "! test -e pwned.txt && sleep 3", "slice"),
    )]);
    let repo = f.repo.display().to_string();
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  rogue) # Once both others have committed (one gates, one waits):
    until [ "$(git -C {repo} log --all --format=%s | grep -c '^omk: slice \(first\|second\)$')" -ge 2 ]; do sleep 0.05; done
    sleep 1
    for d in ../slot-*/; do [ "$d" -ef . ] || echo pwned > "$d/pwned.txt"; done
    echo x > rogue.txt ;;
  *) echo x > "$OMK_SLICE_ID.txt" ;;
esac"#
    ));
    let plan = f.plan(json!({ "slices": [
        slice("first", &["first.txt"]),
        slice("second", &["second.txt"]),
        slice("rogue", &["**"]),
    ] }));
    let (_, proof, stderr) = f.run_goal_env(
        &plan,
        &agent,
        &["--gate-concurrency", "1", "--max-attempts", "1"],
        &[("OMK_LANDLOCK", "0"), ("OMK_USERNS", "0")],
    );
    // The waiting slice's gates ran on its commit, reset and checked in
    // whichever slot they took, not on what was written there before (a
    // gate already running sees such writes: that is what the sandbox is
    // for).
    for id in ["first", "second"] {
        assert_eq!(
            slice_of(&proof, id)["status"],
            "merged",
            "{proof}\n{stderr}"
        );
    }
    let branch = proof["integration"]["branch"].as_str().unwrap();
    assert!(!f
        .git(&["ls-tree", "-r", "--name-only", branch])
        .contains("pwned.txt"));
}

/// Every attack a payload makes records `label: WORKED` or `label: blocked`
/// in an evidence file; `$1` is the attack, `$2` its label.
const TRY_SH: &str = r#"try() { if ( eval "$1" ) >/dev/null 2>&1; then echo "$2: WORKED"; else echo "$2: blocked"; fi >> "$EVIDENCE"; }"#;

/// What a hostile process tries against the user's repository and omk, in
/// shell: `$REPO` is the user's checkout, `$SCRIPTS` the test's folder
/// (with `omk.pid`), `$EVIDENCE` where the results go.
const ATTACKS_SH: &str = r#"
try 'echo pwned > "$REPO/pwned.txt"' write-checkout
try 'echo changed >> "$REPO/README.md"' change-tracked-file
try 'echo "exit 0" > "$REPO/.git/hooks/pre-commit"' hook-pre-commit
try 'echo "exit 0" > "$REPO/.git/hooks/post-checkout"' hook-post-checkout
try 'git -C "$REPO" config core.fsmonitor "touch $SCRIPTS/fsmonitor-ran"' config-fsmonitor
try 'git -C "$REPO" tag evil' tag
try 'git -C "$REPO" branch evil' branch
try 'git -C "$REPO" update-ref refs/heads/main $(git -C "$REPO" commit-tree -m x HEAD^{tree})' move-main
try 'env | grep -q hidden-secret-value' see-secret-in-env
try 'grep -l hidden-secret-value /proc/[0-9]*/environ /proc/[0-9]*/cmdline' read-secret-through-proc
try 'cat /proc/$(cat "$SCRIPTS/omk.pid")/environ | grep -q OMK_HOME' read-omk-environ
try 'kill -STOP $(cat "$SCRIPTS/omk.pid")' stop-omk
try 'test $(ls -d /proc/[0-9]* | wc -l) -gt 20' see-other-processes
try 'mknod "$TMPDIR/blk" b 7 0' mknod
try 'dd if=/dev/loop0 of=/dev/null count=1' read-loop-device
try 'ls /dev | grep -qvxE "fd|full|null|ptmx|pts|random|shm|stderr|stdin|stdout|tty|urandom|zero"' other-devices
echo "shm:$HIDDEN_SECRET_TOKEN" > /dev/shm/omk-test-leak 2>/dev/null
echo "tmp:$HIDDEN_SECRET_TOKEN" > "$TMPDIR/leak" 2>/dev/null
(setsid sh -c 'exec sleep 300' &)
"#;

/// The labels of [`ATTACKS_SH`] and of the Python payload.
const ATTACKS: &[&str] = &[
    "write-checkout",
    "change-tracked-file",
    "hook-pre-commit",
    "hook-post-checkout",
    "config-fsmonitor",
    "tag",
    "branch",
    "move-main",
    "see-secret-in-env",
    "read-secret-through-proc",
    "read-omk-environ",
    "stop-omk",
    "see-other-processes",
    "mknod",
    "read-loop-device",
    "other-devices",
];

/// The same attacks as a Python test module, which `python -m unittest`
/// picks up.
const ATTACKS_PY: &str = r#"
import glob, os, signal, subprocess, unittest

REPO, SCRIPTS, EVIDENCE = os.environ["REPO"], os.environ["SCRIPTS"], os.environ["EVIDENCE"]

def attempt(label, fn):
    try:
        ok = fn() is not False
    except Exception:
        ok = False
    with open(EVIDENCE, "a") as f:
        f.write(f"{label}: {'WORKED' if ok else 'blocked'}\n")

def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)

def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True).returncode == 0

def secret_in_proc():
    for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if b"hidden-secret-value" in open(path, "rb").read():
                return True
        except OSError:
            pass
    return False

def omk_pid():
    return int(open(os.path.join(SCRIPTS, "omk.pid")).read())

class Payload(unittest.TestCase):
    def test_payload(self):
        attempt("write-checkout", lambda: write(os.path.join(REPO, "pwned.txt"), "pwned"))
        attempt("change-tracked-file", lambda: write(os.path.join(REPO, "README.md"), "changed", "a"))
        attempt("hook-pre-commit", lambda: write(os.path.join(REPO, ".git/hooks/pre-commit"), "exit 0"))
        attempt("hook-post-checkout", lambda: write(os.path.join(REPO, ".git/hooks/post-checkout"), "exit 0"))
        attempt("config-fsmonitor", lambda: git("config", "core.fsmonitor", "touch " + SCRIPTS + "/fsmonitor-ran"))
        attempt("tag", lambda: git("tag", "evil-py"))
        attempt("branch", lambda: git("branch", "evil-py"))
        attempt("move-main", lambda: subprocess.run(
            f'git -C "{REPO}" update-ref refs/heads/main $(git -C "{REPO}" commit-tree -m x HEAD^{{tree}})',
            shell=True, capture_output=True).returncode == 0)
        attempt("see-secret-in-env", lambda: any("hidden-secret-value" in v for v in os.environ.values()))
        attempt("read-secret-through-proc", secret_in_proc)
        attempt("read-omk-environ", lambda: b"OMK_HOME" in open(f"/proc/{omk_pid()}/environ", "rb").read())
        attempt("stop-omk", lambda: os.kill(omk_pid(), signal.SIGSTOP))
        attempt("see-other-processes", lambda: len(glob.glob("/proc/[0-9]*")) > 20)
        attempt("mknod", lambda: os.mknod(os.path.join(os.environ["TMPDIR"], "blk"), 0o600 | 0o60000, os.makedev(7, 0)))
        attempt("read-loop-device", lambda: open("/dev/loop0", "rb").read(1) is not None)
        allowed = {"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
        attempt("other-devices", lambda: bool(set(os.listdir("/dev")) - allowed))
        for where in ["/dev/shm/omk-test-leak-py", os.path.join(os.environ["TMPDIR"], "leak-py")]:
            try:
                write(where, "leak:" + os.environ.get("HIDDEN_SECRET_TOKEN", ""))
            except OSError:
                pass
        subprocess.Popen(["sleep", "300"], start_new_session=True)
"#;

/// Checks the evidence a payload left: every attack was tried, none worked.
fn all_blocked(evidence: &str, what: &str) {
    assert!(
        !evidence.contains("WORKED"),
        "{what}: an attack worked:\n{evidence}"
    );
    for attack in ATTACKS {
        assert!(
            evidence.contains(&format!("{attack}: blocked")),
            "{what}: `{attack}` was not tried:\n{evidence}"
        );
    }
}

/// Checks that the hidden secret is nowhere a hostile process could have
/// written it: the fixture's folders (worktrees, temp dirs, omk's state,
/// the evidence), the host's `/dev/shm` and every branch omk made.
fn no_secret_left(f: &Fixture) {
    let mut places = files_under(f.tmp.path());
    places.extend(files_under(std::path::Path::new("/dev/shm")));
    for file in places {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(HIDDEN),
            "the secret reached {}",
            file.display()
        );
    }
    let branches = f.git(&["for-each-ref", "--format=%(refname)", "refs/heads/omk"]);
    for branch in branches.lines() {
        let found = std::process::Command::new("git")
            .arg("-C")
            .arg(&f.repo)
            .args(["grep", "-q", HIDDEN, branch])
            .status()
            .unwrap();
        assert!(!found.success(), "the secret is in {branch}");
    }
}

#[test]
fn hostile_gate_payloads_in_shell_and_python_reach_nothing() {
    let f = Fixture::new(&[("README.md", "mine\n")]);
    let scripts = f.scripts.display().to_string();
    let evidence = |gate: &str| f.scripts.join(format!("evidence-{gate}.txt"));
    // The repository's own gates: a script that sources a helper when there
    // is one, and Python's test discovery.
    let gates = [
        ("shell", "sh check.sh"),
        ("python", "python3 -m unittest discover -s tests -q"),
    ];
    let mut toml = String::new();
    for (name, command) in gates {
        let command = format!("EVIDENCE={} {command}", evidence(name).display());
        toml += &gate_toml(name, &command, "both");
        toml += &format!("writable = ['{scripts}']\nenv = ['REPO', 'SCRIPTS']\n");
    }
    f.write("omk.toml", &toml);
    f.write("check.sh", "[ -f payload.sh ] && . ./payload.sh\nexit 0\n");
    f.write(
        "tests/test_ok.py",
        "import unittest\n\nclass Ok(unittest.TestCase):\n    def test_ok(self):\n        pass\n",
    );
    f.git(&["add", "-A"]);
    f.git(&["commit", "-q", "-m", "gates"]);
    f.stage("README.md", "mine, and work in progress\n");
    let before = f.user_state();

    // The agents only write code; the gates run it.
    // Gates talk to no model: they do not get the agents' keys either.
    let model_key = "try 'env | grep -q kimi-key-value' see-model-key";
    f.script(
        "payload.sh",
        &format!("{TRY_SH}\n{ATTACKS_SH}\n{model_key}\n"),
    );
    f.script("test_payload.py", ATTACKS_PY);
    let agent = f.agent(&format!(
        r#"case "$OMK_SLICE_ID" in
  shell) cp {scripts}/payload.sh payload.sh ;;
  python) cp {scripts}/test_payload.py tests/test_payload.py ;;
esac"#
    ));
    let plan = f.plan(json!({ "slices": [
        slice("shell", &["payload.sh"]),
        slice("python", &["tests/**"]),
    ] }));
    let repo = f.repo.display().to_string();
    let env = [
        ("HIDDEN_SECRET_TOKEN", HIDDEN),
        ("KIMI_API_KEY", PASSED),
        ("REPO", repo.as_str()),
        ("SCRIPTS", scripts.as_str()),
    ];
    let (code, proof, stderr) = f.run_goal_watched(&plan, &agent, &["--require-sandbox"], &env);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert_eq!(proof["status"], "ready");

    for (gate, _) in gates {
        let found = std::fs::read_to_string(evidence(gate)).unwrap_or_default();
        all_blocked(&found, &format!("the {gate} payload"));
    }
    let shell = std::fs::read_to_string(evidence("shell")).unwrap();
    assert!(shell.contains("see-model-key: blocked"), "{shell}");
    assert_eq!(f.user_state(), before, "the user's repository changed");
    // An fsmonitor would run on the user's next `git status`: none does.
    f.git(&["status", "--porcelain"]);
    assert!(!f.scripts.join("fsmonitor-ran").exists());
    let left = f.leftover_processes();
    assert!(left.is_empty(), "processes outlived the goal: {left:#?}");
    no_secret_left(&f);
}

#[test]
fn hostile_agents_reach_nothing_through_git_proc_daemons_links_or_devices() {
    let f = Fixture::new(&[
        ("omk.toml", &gate_toml("check", "test ! -e bad", "both")),
        ("README.md", "mine\n"),
    ]);
    f.allow_agent_writes_to_scripts();
    f.stage("README.md", "mine, and work in progress\n");
    let before = f.user_state();
    let (repo, scripts) = (f.repo.display(), f.scripts.display());
    f.script("attacks.sh", &format!("{TRY_SH}\n{ATTACKS_SH}"));
    let agent = f.agent(&format!(
        r#"export REPO={repo} SCRIPTS={scripts} EVIDENCE={scripts}/evidence-$OMK_SLICE_ID.txt
case "$OMK_SLICE_ID" in
  dotgit-user) echo x > dotgit-user.txt; printf 'gitdir: %s/.git\n' "$REPO" > .git ;;
  dotgit-own) echo x > dotgit-own.txt
    git init -q --bare "$TMPDIR/evil.git"
    git -C "$TMPDIR/evil.git" config core.fsmonitor "touch $SCRIPTS/fsmonitor-ran; echo pwned > $REPO/pwned.txt"
    printf 'gitdir: %s\n' "$TMPDIR/evil.git" > .git ;;
  attacks) echo x > attacks.txt; . "$SCRIPTS/attacks.sh" ;;
  daemon) echo x > daemon.txt; echo "a file the gate fails on" > bad
    here=$PWD git=$(command -v git) start=$(git rev-parse HEAD)
    # Once the agent's work is committed (its gates come next), remove the file.
    setsid sh -c "(env -i sh -c 'while [ \$($git -C $here rev-parse HEAD) = $start ]; do sleep 0.05; done; while :; do rm -f $here/bad; sleep 0.05; done' 2>/dev/null &) &" ;;
  swarm) echo x > swarm.txt; i=0; while [ $i -lt 500 ]; do setsid sleep 300 & i=$((i+1)); done ;;
  chain) mkdir a; ln -s .. a/l1; ln -s l1/.. a/l2 ;;
  hooklink) mkdir -p sub/dir; ln -s ../../.git/hooks sub/dir/h ;;
esac"#
    ));
    let ids = [
        "dotgit-user",
        "dotgit-own",
        "attacks",
        "daemon",
        "swarm",
        "chain",
        "hooklink",
    ];
    let slices: Vec<Value> = ids.iter().map(|id| slice(id, &["**"])).collect();
    let plan = f.plan(json!({ "slices": slices }));
    let env = [("HIDDEN_SECRET_TOKEN", HIDDEN)];
    let (code, proof, stderr) = f.run_goal_watched(
        &plan,
        &agent,
        &["--require-sandbox", "--max-attempts", "1"],
        &env,
    );
    assert_eq!(code, 1, "{stderr}\n{proof:#}");
    assert_ne!(proof["status"], "ready");

    // A rewritten `.git` is caught, and omk's git followed neither.
    for id in ["dotgit-user", "dotgit-own"] {
        let s = slice_of(&proof, id);
        assert_eq!(s["status"], "scope_violation", "{s}");
        assert!(s["reason"].as_str().unwrap().contains(".git"), "{s}");
    }
    assert!(
        !f.scripts.join("fsmonitor-ran").exists(),
        "omk ran the agent's fsmonitor"
    );
    // The daemon died with its agent: the gate judged the commit, `bad` and all.
    let daemon = slice_of(&proof, "daemon");
    assert_eq!(daemon["status"], "gate_failed", "{daemon}");
    assert_eq!(daemon["gates"][0]["tree"], daemon_tree(&f, &proof));
    // Links that resolve out of the repository or into .git are refused.
    let chain = slice_of(&proof, "chain");
    assert_eq!(chain["status"], "scope_violation", "{chain}");
    assert!(chain["reason"]
        .as_str()
        .unwrap()
        .contains("a/l2 -> l1/..: resolves outside"));
    let hooklink = slice_of(&proof, "hooklink");
    assert_eq!(hooklink["status"], "scope_violation", "{hooklink}");
    assert!(hooklink["reason"]
        .as_str()
        .unwrap()
        .contains("resolves into .git"));
    // The rest merged, and nothing they tried worked.
    for id in ["attacks", "swarm"] {
        assert_eq!(slice_of(&proof, id)["status"], "merged", "{proof:#}");
    }
    let found = std::fs::read_to_string(f.scripts.join("evidence-attacks.txt")).unwrap();
    all_blocked(&found, "the agent");

    assert_eq!(f.user_state(), before, "the user's repository changed");
    let left = f.leftover_processes();
    assert!(left.is_empty(), "processes outlived the goal: {left:#?}");
    no_secret_left(&f);
}

/// The tree of the `daemon` slice's commit.
fn daemon_tree(f: &Fixture, proof: &Value) -> Value {
    let commit = slice_of(proof, "daemon")["commit"]
        .as_str()
        .unwrap()
        .to_string();
    json!(f.git(&["rev-parse", &format!("{commit}^{{tree}}")]))
}

#[test]
fn without_user_namespaces_the_run_says_so_or_refuses_and_landlock_still_holds() {
    let f = Fixture::new(&[("README.md", "mine\n")]);
    let repo = f.repo.display().to_string();
    // The gate runs what the agent wrote: it tries to write the checkout.
    f.write(
        "omk.toml",
        &gate_toml("check", "[ -f payload.sh ] && . ./payload.sh; true", "both"),
    );
    f.git(&["add", "-A"]);
    f.git(&["commit", "-q", "-m", "gate"]);
    let agent = f.agent(&format!(
        "echo 'echo pwned > {repo}/pwned.txt' > payload.sh"
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["payload.sh"])] }));
    let no_userns = [("OMK_USERNS", "0")];

    let args = ["goal", "run", "g", "--plan", plan.to_str().unwrap()];
    let out = f.omk_env(
        &[&args[..], &["--agent", &agent, "--require-sandbox"]].concat(),
        &no_userns,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no user namespaces"), "{stderr}");
    assert!(!f.omk_left_traces(), "a refused run changed nothing");

    let (code, proof, stderr) = f.run_goal_env(&plan, &agent, &[], &no_userns);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready");
    assert!(
        stderr.contains("user namespaces are not available here"),
        "{stderr}"
    );
    assert!(
        !f.repo.join("pwned.txt").exists(),
        "Landlock let the gate write the checkout"
    );

    let doctor = f.omk_env(&["doctor"], &no_userns);
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        doctor.contains("user namespaces are NOT available"),
        "{doctor}"
    );
    let doctor = f.omk(&["doctor"]);
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        doctor.contains("namespaces: each agent and gate sees only its own processes"),
        "{doctor}"
    );
}

#[test]
fn a_goal_that_requires_the_sandbox_requires_it_on_resume_too() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let agent = f.agent("echo x > a.txt");
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let args = ["goal", "run", "g", "--plan", plan.to_str().unwrap()];
    let run = [
        &args[..],
        &["--agent", &agent, "--require-sandbox", "--no-progress"],
    ]
    .concat();
    // omk dies right after the commit; the goal waits for a resume.
    let out = f.omk_env(&run, &[("OMK_FAULT", "kill:slice.committed:1")]);
    assert_eq!(out.status.code(), None, "killed by the fault");

    let resume = ["goal", "resume", "--no-progress"];
    let out = f.omk_env(&resume, &[("OMK_USERNS", "0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no user namespaces"), "{stderr}");
    let out = f.omk(&resume);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
