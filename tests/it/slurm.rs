//! Slices on a Slurm cluster (`--executor slurm`): a real single-node
//! cluster on loopback, started by the test support.

use serde_json::{json, Value};

use crate::support::slurm::cluster;
use crate::support::{gate_toml, slice, slice_of, Fixture};

fn plan(f: &Fixture) -> std::path::PathBuf {
    let mut d = slice("d", &["d.txt"]);
    d["depends_on"] = json!(["a"]);
    f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"]), slice("c", &["c.txt"]), d] }))
}

fn slurm_env() -> Vec<(&'static str, String)> {
    vec![("SLURM_CONF", cluster().conf.display().to_string())]
}

fn run(f: &Fixture, plan: &std::path::Path, agent: &str, extra: &[&str]) -> (i32, Value, String) {
    let env = slurm_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.run_goal_env(plan, agent, extra, &env)
}

/// Whether slice `slice` of a proof ran in Slurm job `job`.
fn ran_in(slice: &Value, job: &str) -> bool {
    slice["agent"]["ran_on"]
        .as_str()
        .is_some_and(|on| on.starts_with(&format!("slurm job {job} on ")))
}

/// Jobs of this fixture's goals still known to Slurm.
fn our_jobs(goal: &str) -> Vec<String> {
    cluster()
        .jobs()
        .into_iter()
        .filter(|(_, name)| name.contains(goal))
        .map(|(id, name)| format!("{id} {name}"))
        .collect()
}

#[test]
fn a_goal_on_slurm_reaches_the_tree_a_local_run_reaches() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "test ! -e broken", "both"))]);
    let mut d = slice("d", &["d.txt"]);
    d["depends_on"] = json!(["a"]);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt", "broken"]), slice("c", &["c.txt"]), d] }));
    // `b` breaks the gate on its first attempt, and is told so.
    let agent = f.agent(
        r#"if [ "$OMK_SLICE_ID" = b ] && [ "$OMK_ATTEMPT" = 1 ]; then touch broken; else rm -f broken; fi
if [ -n "$OMK_FEEDBACK" ]; then grep -q "check" "$OMK_FEEDBACK" && echo told >> b.txt; fi
echo "$OMK_SLICE_ID, attempt $OMK_ATTEMPT" >> "$OMK_SLICE_ID.txt""#,
    );
    let before = f.checkout_snapshot();
    let (code, local, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, remote, stderr) = run(&f, &plan, &agent, &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}\n{remote:#}");
    assert_eq!(
        remote["integration"]["tree"], local["integration"]["tree"],
        "the same tree as the local run"
    );
    let goal = remote["goal_id"].as_str().unwrap();
    for id in ["a", "b", "c", "d"] {
        let s = slice_of(&remote, id);
        assert_eq!(s["status"], "merged");
        let ran_on = s["agent"]["ran_on"].as_str().unwrap_or_default();
        assert!(ran_on.starts_with("slurm job "), "{id}: {s:#}");
        // Each commit came back into its attempt's ref, and is the slice's.
        assert_eq!(
            f.git(&[
                "rev-parse",
                &format!("refs/omk/{goal}/{id}/attempt-{}", s["attempts"]),
            ]),
            s["commit"].as_str().unwrap()
        );
    }
    assert_eq!(local["slices"][0]["agent"]["ran_on"], Value::Null);
    // The base went to the jobs once; a job carried only what its start
    // adds to it: nothing for `a`, `a`'s merge for `d`.
    let logs = f.goal_dir(goal).join("logs");
    assert!(logs.join("base.bundle").exists());
    assert!(!logs.join("a/attempt-1/job/in.bundle").exists());
    assert!(logs.join("d/attempt-1/job/in.bundle").exists());
    // The slice gates ran in the jobs, and `b`'s failure there was its
    // next attempt's feedback, which went on from its failed commit.
    let b = slice_of(&remote, "b");
    assert_eq!(b["attempts"], 2, "{b:#}");
    assert_eq!(b["attempt_history"][0]["status"], "gate_failed");
    assert_eq!(
        f.show(remote["integration"]["branch"].as_str().unwrap(), "b.txt"),
        "b, attempt 1\ntold\nb, attempt 2"
    );
    for id in ["a", "b", "c", "d"] {
        let gate = &slice_of(&remote, id)["gates"][0];
        assert_eq!(gate["passed"], true, "{gate:#}");
        assert_eq!(gate["tree"], slice_of(&remote, id)["tree"]);
        assert!(gate["log"].as_str().unwrap().contains("/job/"), "{gate:#}");
    }
    assert!(our_jobs(goal).is_empty(), "{:?}", our_jobs(goal));
    assert_eq!(f.checkout_snapshot(), before, "the checkout was touched");
}

#[test]
fn a_job_killed_under_its_worker_is_submitted_again() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.allow_agent_writes_to_scripts();
    let marker = f.scripts.join("first-run");
    // The first run marks that it ran and waits to be killed; the next one
    // does the work.
    let agent = f.agent(&format!(
        r#"if [ ! -e '{m}' ]; then touch '{m}'; sleep 60; fi
echo done > "$OMK_SLICE_ID.txt""#,
        m = marker.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let killer = {
        let marker = marker.clone();
        let (repo, home) = (f.repo.clone(), f.home.clone());
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !marker.exists() {
                assert!(started.elapsed().as_secs() < 120, "the first job never ran");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // This goal's job: other tests' goals have slices named `a` too.
            let list = std::process::Command::new(env!("CARGO_BIN_EXE_omk"))
                .arg("-C")
                .arg(&repo)
                .args(["goal", "list", "--json"])
                .env("OMK_HOME", &home)
                .output()
                .unwrap();
            let list: Value = serde_json::from_slice(&list.stdout).unwrap();
            let name = format!("omk-{}-a-a1", list[0]["goal_id"].as_str().unwrap());
            let job = cluster()
                .jobs()
                .into_iter()
                .find(|(_, n)| *n == name)
                .expect("the running job");
            let ok = cluster()
                .command("scancel")
                .arg(&job.0)
                .status()
                .unwrap()
                .success();
            assert!(ok, "scancel failed");
        })
    };
    let (code, proof, stderr) = run(&f, &plan, &agent, &["--executor", "slurm"]);
    killer.join().unwrap();
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    assert!(
        stderr.contains("without a report"),
        "the lost job is not said: {stderr}"
    );
    let a = slice_of(&proof, "a");
    assert_eq!(a["attempts"], 1, "a lost job is no failed attempt");
    assert_eq!(
        f.show(proof["integration"]["branch"].as_str().unwrap(), "a.txt"),
        "done"
    );
}

#[test]
fn goal_cancel_leaves_no_job_in_the_queue() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    f.allow_agent_writes_to_scripts();
    let started = f.scripts.join("started");
    let agent = f.agent(&format!(
        "touch '{}'; sleep 120; echo x > \"$OMK_SLICE_ID.txt\"",
        started.display()
    ));
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let mut args = crate::support::Fixture::run_args(plan.to_str().unwrap(), &agent, &[]);
    args.extend(["--executor", "slurm"]);
    let env = slurm_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut run = f.omk_command(&args, &env).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while !started.exists() {
        assert!(t0.elapsed().as_secs() < 120, "no job started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let cancel = f.omk_env(&["goal", "cancel"], &env);
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let list = f.omk(&["goal", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let goal = list[0]["goal_id"].as_str().unwrap();
    assert!(
        our_jobs(goal).is_empty(),
        "left in the queue: {:?}",
        our_jobs(goal)
    );
}

/// An agent in which slice `a` holds until `release` exists in the
/// scripts dir, and the others write their file.
fn held_agent(f: &Fixture) -> (String, std::path::PathBuf) {
    f.allow_agent_writes_to_scripts();
    let (started, release) = (f.scripts.join("a-started"), f.scripts.join("release"));
    let agent = f.agent(&format!(
        r#"if [ "$OMK_SLICE_ID" = a ]; then touch '{s}'; while [ ! -e '{r}' ]; do sleep 0.1; done; fi
echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#,
        s = started.display(),
        r = release.display()
    ));
    (agent, release)
}

/// Runs `plan` on Slurm with `agent` (see [`held_agent`]) and kills omk
/// while `a`'s job runs: the goal's id and that job's.
fn killed_under_a_s_job(f: &Fixture, plan: &std::path::Path, agent: &str) -> (String, String) {
    let env = slurm_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = Fixture::run_args(plan.to_str().unwrap(), agent, &[]);
    args.extend(["--executor", "slurm"]);
    let mut run = f
        .omk_command(&args, &env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (started, t0) = (f.scripts.join("a-started"), std::time::Instant::now());
    while !started.exists() {
        assert!(t0.elapsed().as_secs() < 120, "a's job never ran");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let list: Value = serde_json::from_slice(&f.omk(&["goal", "list", "--json"]).stdout).unwrap();
    let goal = list[0]["goal_id"].as_str().unwrap().to_string();
    let job = our_jobs(&goal)
        .into_iter()
        .find(|j| j.ends_with("-a-a1"))
        .expect("a's job outlives omk");
    (goal, job.split(' ').next().unwrap().to_string())
}

#[test]
fn a_goal_killed_while_its_jobs_run_resumes_by_reattaching_to_them() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    let plan = plan(&f);
    // `a` holds until released, so omk is killed while its job runs.
    let (agent, release) = held_agent(&f);
    let (goal, job_id) = killed_under_a_s_job(&f, &plan, &agent);
    let env = slurm_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Resumed, omk waits for that very job; released, it finishes.
    let mut resumed = f
        .omk_command(&["goal", "resume", "--json", "--no-progress"], &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    std::fs::write(&release, "").unwrap();
    let out = {
        use std::io::Read;
        let (mut stdout, mut stderr) = (String::new(), String::new());
        resumed
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        resumed
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (resumed.wait().unwrap(), stdout, stderr)
    };
    assert_eq!(out.0.code(), Some(0), "{}", out.2);
    let proof: Value = serde_json::from_str(&out.1).unwrap();
    let a = slice_of(&proof, "a");
    assert_eq!(a["attempts"], 1, "{a:#}");
    assert!(
        ran_in(a, &job_id),
        "not the job omk was killed under: {a:#}"
    );
    assert!(our_jobs(&goal).is_empty(), "{:?}", our_jobs(&goal));

    // The tree a local run of the same plan reaches.
    let (code, local, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["integration"]["tree"], local["integration"]["tree"]);
}

#[test]
fn an_agent_in_a_job_reaches_neither_its_worker_s_repository_nor_its_job_directory() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "both"))]);
    // It knows where the worker keeps the repository (beside its tree) and
    // tries that, its hooks, and the job directory the worker reads back
    // (the goal's logs, found through the worker's own process, if it can
    // see it); what happened goes into its own file.
    let agent = f.agent(
        r#"repo="$OMK_WORKTREE/../repo/.git"
try() { if sh -c "$1" 2>/dev/null; then echo "$2: written"; else echo "$2: refused"; fi; }
{
  try "echo evil > '$repo/hooks/post-commit'" hook
  try "echo 0000000000000000000000000000000000000000 > '$repo/refs/heads/planted'" ref
  try "echo '[core] hooksPath = /tmp' >> '$repo/config'" config
  job=$(ls -d /proc/*/cwd 2>/dev/null | while read c; do readlink "$c"; done | grep '/job$' | head -n1)
  if [ -n "$job" ]; then try "echo {} > '$job/report.json'" report; else echo "report: unseen"; fi
} > "$OMK_SLICE_ID.txt""#,
    );
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (code, proof, stderr) = run(&f, &plan, &agent, &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let said = f.show(proof["integration"]["branch"].as_str().unwrap(), "a.txt");
    for line in said.lines() {
        assert!(
            line.ends_with("refused") || line.ends_with("unseen"),
            "the agent reached past its tree: {said}"
        );
    }
    assert_eq!(said.lines().count(), 4, "{said}");
    assert!(slice_of(&proof, "a")["agent"]["ran_on"]
        .as_str()
        .unwrap()
        .starts_with("slurm job "));
}

#[test]
fn an_agent_in_a_job_can_neither_submit_a_job_for_another_slice_nor_read_a_gate_s_secret() {
    // The gate needs a secret, sent to the job for it; the agent knows the
    // cluster's configuration (named in [sandbox] env, on purpose) and
    // tries to submit a job with the name the next slice's attempt gets,
    // and to find the secret in any job file it can read.
    // Neither the gate nor the agent's script holds the whole secret: only
    // job.json does.
    let toml = gate_toml(
        "check",
        "case \"$GATE_SECRET\" in gate-secret-77*) true;; *) false;; esac",
        "both",
    ) + "env = [\"GATE_SECRET\"]\n[sandbox]\nenv = [\"SLURM_CONF\"]\n";
    let f = Fixture::new(&[("omk.toml", &toml)]);
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in
  a) if sbatch -J "omk-$OMK_GOAL_ID-b-a1" --wrap 'true' >/dev/null 2>&1; then echo "sbatch: worked"; else echo "sbatch: refused"; fi > a.txt
     if grep -rqs "gate-secret-""7731" /tmp /var/tmp "$HOME" "$OMK_WORKTREE/.." 2>/dev/null; then echo "secret: read"; else echo "secret: unseen"; fi >> a.txt ;;
  b) echo "b's own agent" > b.txt ;;
esac"#,
    );
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let mut env = slurm_env();
    env.push(("GATE_SECRET", "gate-secret-7731".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, proof, stderr) = f.run_goal_env(
        &plan,
        &agent,
        &["--executor", "slurm", "--concurrency", "1"],
        &env,
    );
    assert_eq!(code, 0, "{stderr}\n{proof:#}");
    let branch = proof["integration"]["branch"].as_str().unwrap();
    let said = f.show(branch, "a.txt");
    assert_eq!(said, "sbatch: refused\nsecret: unseen", "{said}");
    assert_eq!(
        f.show(branch, "b.txt"),
        "b's own agent",
        "b's work is its own agent's"
    );
    let goal = proof["goal_id"].as_str().unwrap();
    assert!(our_jobs(goal).is_empty(), "{:?}", our_jobs(goal));
}

/// The controller's count of job-information requests so far (`sdiag`),
/// and the lines it read them from.
fn job_queries() -> (u64, String) {
    let out = cluster().command("sdiag").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("REQUEST_JOB_INFO") || l.contains("REQUEST_JOB_USER_INFO")
        })
        .collect();
    let count = lines
        .iter()
        .filter_map(|l| l.split("count:").nth(1))
        .filter_map(|c| c.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    (count, lines.join("\n"))
}

#[test]
fn sixty_slices_are_watched_by_one_watcher_that_spares_the_controller() {
    let f = Fixture::new(&[("README.md", "sixty\n")]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let slices: Vec<Value> = (0..60)
        .map(|i| slice(&format!("s{i:02}"), &[&format!("s{i:02}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let (code, local, stderr) = f.run_goal(&plan, &agent, &["--allow-no-gates"]);
    assert_eq!(code, 0, "{stderr}");
    let (before, _) = job_queries();
    let started = std::time::Instant::now();
    let (code, remote, stderr) = run(
        &f,
        &plan,
        &agent,
        &["--executor", "slurm", "--allow-no-gates"],
    );
    let wall = started.elapsed().as_secs_f64();
    let (after, lines) = job_queries();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        remote["integration"]["tree"], local["integration"]["tree"],
        "the same tree as the local run"
    );
    let queries = after - before;
    let allowed = 2.0 * wall + 2.0 * 60.0;
    assert!(
        (queries as f64) <= allowed,
        "{queries} job queries in {wall:.1} s for 60 jobs (at most {allowed:.0}):\n{lines}"
    );
    eprintln!("{queries} job queries in {wall:.1} s for 60 jobs:\n{lines}");
}

#[test]
fn gates_a_job_passed_are_in_the_driver_s_cache_for_a_run_here() {
    let f = Fixture::new(&[(
        "omk.toml",
        &gate_toml("check", "test -s \"$OMK_GOAL_ID\" || true", "slice"),
    )]);
    let agent = f.agent(r#"echo "$OMK_SLICE_ID" > "$OMK_SLICE_ID.txt""#);
    let plan = plan(&f);
    let (code, remote, stderr) = run(&f, &plan, &agent, &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}");
    for id in ["a", "b", "c", "d"] {
        let gate = &slice_of(&remote, id)["gates"][0];
        assert!(gate["log"].as_str().unwrap().contains("/job/"), "{gate:#}");
    }
    // The same work here: each slice's tree was judged by its job's gate,
    // and that pass is reused, not run again. (`d` starts from whatever
    // the integration held when `a` merged, which timing decides.)
    let (code, local, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    for id in ["a", "b", "c"] {
        let (here, there) = (slice_of(&local, id), slice_of(&remote, id));
        assert_eq!(here["tree"], there["tree"], "{id}: {here:#}\n{there:#}");
        let gate = &here["gates"][0];
        assert_eq!(gate["cached"], true, "{id}: {gate:#}");
        assert_eq!(gate["from_goal"], remote["goal_id"], "{gate:#}");
    }
}

#[test]
fn a_job_that_finished_while_omk_was_down_is_read_not_submitted_or_gated_again() {
    let f = Fixture::new(&[("omk.toml", &gate_toml("check", "true", "slice"))]);
    let (agent, release) = held_agent(&f);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"])] }));
    let (goal, job_id) = killed_under_a_s_job(&f, &plan, &agent);
    let env = slurm_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The job finishes, its gates with it, while nothing drives the goal.
    std::fs::write(&release, "").unwrap();
    let t0 = std::time::Instant::now();
    while !our_jobs(&goal).is_empty() {
        assert!(t0.elapsed().as_secs() < 120, "a's job never ended");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = f.omk_env(&["goal", "resume", "--json", "--no-progress"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = slice_of(&proof, "a");
    assert_eq!(a["status"], "merged", "{a:#}");
    assert_eq!(a["attempts"], 1, "{a:#}");
    assert!(ran_in(a, &job_id), "submitted again: {a:#}");
    // Its gate's result is the job's, not a run here.
    let gate = &a["gates"][0];
    assert_eq!(gate["passed"], true, "{gate:#}");
    assert!(gate["log"].as_str().unwrap().contains("/job/"), "{gate:#}");
}

/// `[[setup]]` on a cluster: each job installs the dependencies on its
/// node before its agent starts and afresh before each gate, so what its
/// agent did to them reaches no gate; the integration installs here.
#[test]
fn a_setup_runs_in_each_job_before_its_agent_and_its_gates() {
    let f = Fixture::new(&[
        (
            "omk.toml",
            r#"[[setup]]
name = "deps"
command = "mkdir -p vendor && cp deps.lock vendor/installed"
inputs = ["deps.lock"]
outputs = ["vendor"]

[[gate]]
name = "test"
command = 'test "$(cat vendor/installed)" = "$(cat deps.lock)" && test ! -e vendor/poison'
scope = "both"
"#,
        ),
        (".gitignore", "vendor/\n"),
        ("deps.lock", "v1\n"),
    ]);
    // Each agent says what it found installed; `b` moves the lockfile on
    // and plants something in the installed dependencies.
    let agent = f.agent(
        r#"cat vendor/installed > "$OMK_SLICE_ID.txt" 2>/dev/null || echo none > "$OMK_SLICE_ID.txt"
if [ "$OMK_SLICE_ID" = b ]; then echo v2 > deps.lock; echo owned > vendor/poison; fi
true"#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("a", &["a.txt"]), slice("b", &["b.txt", "deps.lock"])
    ]}));
    let (code, proof, stderr) = run(&f, &plan, &agent, &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let id = proof["goal_id"].as_str().unwrap();
    for s in ["a", "b"] {
        assert_eq!(
            f.show(&format!("omk/{id}/integration"), &format!("{s}.txt")),
            "v1",
            "{s}'s agent started with the dependencies installed"
        );
        let gate = &slice_of(&proof, s)["gates"][0];
        assert!(gate["log"].as_str().unwrap().contains("/job/"), "{gate:#}");
        assert!(gate["setups"]["deps"].is_string(), "{gate:#}");
    }
    assert_eq!(f.show(&format!("omk/{id}/integration"), "deps.lock"), "v2");
}
