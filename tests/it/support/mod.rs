//! Test support: scratch git repositories, scripted `exec:` agents, and a
//! runner for the real `omk` binary with its state isolated per test.

#![allow(dead_code)]

pub mod browser;
pub mod github;
pub mod kimi;
pub mod llm;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A scratch repository plus a private omk state home and a scripts folder.
///
/// With `OMK_TEST_KEEP=1` the directory is kept after the test, for debugging.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub home: PathBuf,
    pub scripts: PathBuf,
}

impl Fixture {
    /// A repository on `main` with one commit containing `files`.
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        let tmp = scratch();
        let repo = tmp.path().join("repo");
        let home = tmp.path().join("omk-home");
        let scripts = tmp.path().join("scripts");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&scripts).unwrap();
        let f = Fixture {
            tmp,
            repo,
            home,
            scripts,
        };
        f.git(&["init", "-q", "-b", "main"]);
        for (path, text) in files {
            f.write(path, text);
        }
        f.git(&["add", "-A"]);
        f.git(&["commit", "-q", "-m", "initial"]);
        f
    }

    /// An empty directory that is not a repository.
    pub fn bare_dir() -> Fixture {
        let tmp = scratch();
        let repo = tmp.path().join("repo");
        let home = tmp.path().join("omk-home");
        let scripts = tmp.path().join("scripts");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&scripts).unwrap();
        Fixture {
            tmp,
            repo,
            home,
            scripts,
        }
    }

    /// Writes a file in the repository's working tree.
    pub fn write(&self, path: &str, text: &str) {
        let p = self.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Runs git in the repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(args)
            .envs(git_identity())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Lets agents write into the scripts folder (pid files, captured prompts)
    /// through `[sandbox] writable` in the committed `omk.toml`.
    pub fn allow_agent_writes_to_scripts(&self) {
        let path = self.repo.join("omk.toml");
        let mut toml = std::fs::read_to_string(&path).unwrap_or_default();
        toml += &format!("\n[sandbox]\nwritable = ['{}']\n", self.scripts.display());
        std::fs::write(&path, toml).unwrap();
        self.git(&["add", "omk.toml"]);
        self.git(&["commit", "-q", "-m", "let agents write test evidence"]);
    }

    /// Writes a file outside the repository (plans, agent scripts) and returns its path.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.scripts.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An `exec:` agent spec that runs `body` as a shell script.
    pub fn agent(&self, body: &str) -> String {
        let p = self.script("agent.sh", &format!("set -e\n{body}\n"));
        format!("exec:sh {}", p.display())
    }

    /// A plan file from a JSON value.
    pub fn plan(&self, plan: Value) -> PathBuf {
        self.script("plan.json", &serde_json::to_string_pretty(&plan).unwrap())
    }

    /// Runs `omk -C <repo> <args>` with this fixture's state home.
    pub fn omk(&self, args: &[&str]) -> Output {
        self.omk_env(args, &[])
    }

    /// Like [`Fixture::omk`] with extra environment variables.
    pub fn omk_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.omk_command(args, env).output().unwrap()
    }

    /// `omk -C <repo> <args>` with this fixture's state home and `env`, to start.
    pub fn omk_command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_omk"));
        command
            .arg("-C")
            .arg(&self.repo)
            .args(args)
            .env("OMK_HOME", &self.home)
            .env_remove("OMK_FAULT")
            // A token of the machine running the tests reaches no test.
            .env_remove("GH_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_REPO")
            .env_remove("GITHUB_API_URL")
            .envs(env.iter().copied());
        command
    }

    /// The arguments of `goal run` for `plan` and `agent`, with `--json`.
    pub fn run_args<'a>(plan: &'a str, agent: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "goal",
            "run",
            "test goal",
            "--plan",
            plan,
            "--agent",
            agent,
            "--json",
            "--no-progress",
        ];
        args.extend_from_slice(extra);
        args
    }

    /// Runs a goal with `--json` and returns (exit code, proof, stderr).
    pub fn run_goal(&self, plan: &Path, agent: &str, extra: &[&str]) -> (i32, Value, String) {
        self.run_goal_env(plan, agent, extra, &[])
    }

    /// [`Fixture::run_goal`] with extra environment variables for omk.
    pub fn run_goal_env(
        &self,
        plan: &Path,
        agent: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (i32, Value, String) {
        let plan = plan.display().to_string();
        proof_of(self.omk_env(&Self::run_args(&plan, agent, extra), env))
    }

    /// [`Fixture::run_goal_env`] for goals whose agents may attack omk
    /// itself: omk's pid is written to `scripts/omk.pid` as soon as it runs,
    /// and a run that does not end within 5 minutes (an agent stopped omk)
    /// fails the test instead of hanging it.
    pub fn run_goal_watched(
        &self,
        plan: &Path,
        agent: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (i32, Value, String) {
        let plan = plan.display().to_string();
        let child = self
            .omk_command(&Self::run_args(&plan, agent, extra), env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        std::fs::write(self.scripts.join("omk.pid"), pid.to_string()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                // SAFETY: waking and then killing the omk we started.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
                panic!("omk did not finish in 5 minutes: was it stopped by an agent?");
            }
        };
        proof_of(out)
    }

    /// Everything a user would check about their checkout.
    pub fn checkout_snapshot(&self) -> CheckoutSnapshot {
        let index = std::fs::read(self.repo.join(".git/index")).unwrap_or_default();
        let mut files = Vec::new();
        collect_files(&self.repo, &self.repo, &mut files);
        CheckoutSnapshot {
            status: self.git(&["status", "--porcelain=v1", "--untracked-files=all"]),
            head: self.git(&["rev-parse", "HEAD"]),
            branch: self.git(&["symbolic-ref", "HEAD"]),
            index,
            stash: self.git(&["stash", "list"]),
            branches: self.git(&[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads/main",
            ]),
            files,
        }
    }

    /// Everything of the user's that nothing omk runs may change: the
    /// checkout (HEAD, branch, index, working files, stash), `.git/config`,
    /// the hooks, and every ref but omk's own.
    pub fn user_state(&self) -> UserState {
        let git_dir = self.repo.join(".git");
        let hooks = files_under(&git_dir.join("hooks"))
            .into_iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read(&p).unwrap_or_default(),
                )
            })
            .collect();
        let refs = self
            .git(&["for-each-ref", "--format=%(refname) %(objectname)"])
            .lines()
            .filter(|l| !l.starts_with("refs/heads/omk/"))
            .map(str::to_string)
            .collect();
        UserState {
            checkout: self.checkout_snapshot(),
            config: std::fs::read(git_dir.join("config")).unwrap_or_default(),
            hooks,
            refs,
        }
    }

    /// Changes `path` and stages the change, as work in progress a run must keep.
    pub fn stage(&self, path: &str, text: &str) {
        self.write(path, text);
        self.git(&["add", path]);
    }

    /// Whether omk created anything at all: state, refs or worktrees.
    pub fn omk_left_traces(&self) -> bool {
        let refs = Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(["for-each-ref", "refs/heads/omk"])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        self.home.exists() || refs
    }

    /// omk's state directory for this repository (under the fixture's state home).
    pub fn state_dir(&self) -> PathBuf {
        let repos = self.home.join("repos");
        let mut dirs = std::fs::read_dir(&repos)
            .unwrap()
            .flatten()
            .map(|e| e.path());
        dirs.next()
            .unwrap_or_else(|| panic!("no state under {}", repos.display()))
    }

    /// The directory of goal `id`.
    pub fn goal_dir(&self, id: &str) -> PathBuf {
        self.state_dir().join("goals").join(id)
    }

    /// The processes still running that this fixture's goals started: any
    /// whose environment or command line names the fixture's directory
    /// (every agent and gate has its worktree in `OMK_WORKTREE` or `TMPDIR`).
    /// Waits up to 3 s for them to go; call it once omk has exited.
    pub fn leftover_processes(&self) -> Vec<String> {
        survivors(&self.tmp.path().display().to_string())
    }

    /// The text of a file at `rev`.
    pub fn show(&self, rev: &str, path: &str) -> String {
        self.git(&["show", &format!("{rev}:{path}")])
    }

    /// The repository's worktrees, as `git worktree list` gives their paths.
    pub fn worktrees(&self) -> Vec<String> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(str::to_string)
            .collect()
    }

    /// Whether shell `command` exits 0 in a fresh checkout of `rev`, as a
    /// user checking the result by hand would run it.
    pub fn passes_by_hand(&self, rev: &str, command: &str) -> bool {
        let dir = tempfile::tempdir_in(self.tmp.path()).unwrap();
        let checkout = dir.path().join("by-hand");
        self.git(&[
            "worktree",
            "add",
            "-q",
            "--detach",
            checkout.to_str().unwrap(),
            rev,
        ]);
        let ok = Command::new("sh")
            .args(["-c", command])
            .current_dir(&checkout)
            .status()
            .unwrap()
            .success();
        self.git(&["worktree", "remove", "--force", checkout.to_str().unwrap()]);
        ok
    }
}

/// The processes still running, this one aside, whose environment or
/// command line contains `needle`, as `pid: command line`. Waits up to 3 s
/// for them to go (signals are delivered asynchronously).
pub fn survivors(needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let found = scan_processes(needle);
        if found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn scan_processes(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if stat.is_empty() || state.starts_with('Z') || state.starts_with('X') {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has = |b: &[u8]| String::from_utf8_lossy(b).contains(needle);
        if has(&cmdline) || has(&environ) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

/// The exit code, proof and stderr of a `goal run --json`.
fn proof_of(out: Output) -> (i32, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no proof JSON ({e}); stdout:\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), proof, stderr)
}

fn scratch() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new();
    dir.prefix("omk-test-");
    if std::env::var_os("OMK_TEST_KEEP").is_some() {
        dir.disable_cleanup(true);
    }
    dir.tempdir().unwrap()
}

/// Every file below `dir`, not following symlinked directories.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// See [`Fixture::user_state`].
#[derive(Debug, PartialEq)]
pub struct UserState {
    checkout: CheckoutSnapshot,
    config: Vec<u8>,
    hooks: Vec<(String, Vec<u8>)>,
    refs: Vec<String>,
}

/// The user's checkout, byte for byte.
#[derive(Debug, PartialEq)]
pub struct CheckoutSnapshot {
    status: String,
    head: String,
    branch: String,
    index: Vec<u8>,
    stash: String,
    branches: String,
    files: Vec<(String, Vec<u8>)>,
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            collect_files(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}

fn git_identity() -> [(&'static str, &'static str); 4] {
    [
        ("GIT_AUTHOR_NAME", "Test User"),
        ("GIT_AUTHOR_EMAIL", "test@example.com"),
        ("GIT_COMMITTER_NAME", "Test User"),
        ("GIT_COMMITTER_EMAIL", "test@example.com"),
    ]
}

/// A slice entry for a plan.
pub fn slice(id: &str, scope: &[&str]) -> Value {
    serde_json::json!({ "id": id, "title": format!("slice {id}"), "prompt": format!("do {id}"), "write_scope": scope })
}

/// The proof entry of slice `id`.
pub fn slice_of<'a>(proof: &'a Value, id: &str) -> &'a Value {
    proof["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no slice {id} in proof"))
}

/// A gate definition for `omk.toml`.
pub fn gate_toml(name: &str, command: &str, scope: &str) -> String {
    format!("[[gate]]\nname = \"{name}\"\ncommand = '''{command}'''\ntimeout = \"30s\"\nscope = \"{scope}\"\n")
}
