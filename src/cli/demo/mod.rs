//! `omk demo`: a complete run on a scratch repository, with nothing to install.
//!
//! It creates a small shell project with real tests, a 4-slice plan (three
//! independent commands and a README slice that depends on them), and runs
//! it with a built-in demonstration agent through the ordinary `exec:`
//! backend, so the demo exercises exactly what a real run does.

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

use crate::error::{Error, IoContext, Result};
use crate::report::Reporter;
use crate::run::{run_goal, RunOptions};
use crate::state::Deliver;
use crate::store::events;

const AGENT: &str = include_str!("agent.sh");

const FILES: &[(&str, &str)] = &[
    (
        "bin/textkit",
        r#"#!/bin/sh
# textkit COMMAND [ARGS...]: small text tools, one file per command in lib/.
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=$1
if [ -z "$cmd" ] || [ ! -f "$here/lib/$cmd.sh" ]; then
  echo "usage: textkit COMMAND [ARGS...]; commands: $(ls "$here/lib" | sed 's/\.sh$//' | tr '\n' ' ')" >&2
  exit 2
fi
shift
. "$here/lib/$cmd.sh"
"cmd_$cmd" "$@"
"#,
    ),
    ("lib/echo.sh", "cmd_echo() { printf '%s\\n' \"$*\"; }\n"),
    (
        "tests/lib.sh",
        r#"# check EXPECTED COMMAND...: fails the test unless COMMAND prints EXPECTED.
check() {
  expected=$1; shift
  actual=$("$@")
  [ "$actual" = "$expected" ] || { echo "expected '$expected', got '$actual' from: $*"; exit 1; }
}
"#,
    ),
    ("tests/test_echo.sh", ". tests/lib.sh\ncheck \"hello world\" sh bin/textkit echo hello world\n"),
    (
        "tests/test_unique.sh",
        r#"# Every shell function of lib/ is defined once: bin/textkit may source several.
dups=$(cat lib/*.sh | sed -n 's/^\([a-z_]*\)() .*/\1/p' | sort | uniq -d)
[ -z "$dups" ] || { echo "defined more than once in lib/: $dups"; exit 1; }
"#,
    ),
    (
        "tests/run.sh",
        r#"#!/bin/sh
# Runs every tests/test_*.sh and fails if any fails.
cd "$(dirname "$0")/.."
pass=0; fail=0
for t in tests/test_*.sh; do
  if sh "$t"; then pass=$((pass + 1)); else echo "FAIL: $t"; fail=$((fail + 1)); fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
"#,
    ),
    (
        "omk.toml",
        "[[gate]]\nname = \"test\"\ncommand = \"sh tests/run.sh\"\ntimeout = \"60s\"\nscope = \"both\"\n",
    ),
    ("README.md", "# textkit\n\nSmall text tools.\n"),
];

const PLAN: &str = r#"{
  "goal": "Give textkit upper, lower and count commands, tested and documented",
  "slices": [
    { "id": "upper", "title": "Add an upper command", "prompt": "Add `textkit upper ARGS` that prints its arguments upper-cased, with a test in tests/test_upper.sh.",
      "write_scope": ["lib/upper.sh", "tests/test_upper.sh"] },
    { "id": "lower", "title": "Add a lower command", "prompt": "Add `textkit lower ARGS` that prints its arguments lower-cased, with a test in tests/test_lower.sh.",
      "write_scope": ["lib/lower.sh", "tests/test_lower.sh"] },
    { "id": "count", "title": "Add a count command", "prompt": "Add `textkit count ARGS` that prints how many arguments it got, with a test in tests/test_count.sh.",
      "write_scope": ["lib/count.sh", "tests/test_count.sh"] },
    { "id": "docs", "title": "Document every command", "prompt": "List every textkit command in README.md.",
      "write_scope": ["README.md"], "depends_on": ["upper", "lower", "count"] }
  ]
}
"#;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the scratch repository [default: a new temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Plain log lines instead of a live display.
    #[arg(long)]
    no_progress: bool,
}

pub async fn run(args: Args) -> Result<u8> {
    let root = match args.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!(
            "omk-demo-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        )),
    };
    if root.exists()
        && std::fs::read_dir(&root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::Usage(format!(
            "{} exists and is not empty; pass --dir with a new directory",
            root.display()
        )));
    }
    let root = {
        std::fs::create_dir_all(&root).context(|| format!("creating {}", root.display()))?;
        root.canonicalize()
            .context(|| format!("resolving {}", root.display()))?
    };
    let repo = root.join("textkit");
    create_project(&repo)?;
    let agent = root.join("demo-agent.sh");
    std::fs::write(&agent, AGENT).context(|| format!("writing {}", agent.display()))?;
    let plan = root.join("plan.json");
    std::fs::write(&plan, PLAN).context(|| format!("writing {}", plan.display()))?;

    println!(
        "omk demo: a 4-slice goal on a scratch repository at {}",
        repo.display()
    );
    println!("          three slices run in parallel, the fourth waits for them; every slice, and the merged result, is gated by `sh tests/run.sh`");
    println!("          watch the repair loop: `count` fails its test and is sent back with the failure; `upper` and `lower` pass alone");
    println!("          but break a test together: omk bisects the merged result, takes the culprit out and sends it back\n");
    let opts = RunOptions {
        goal_id: None,
        dir: repo.clone(),
        goal: "Give textkit upper, lower and count commands, tested and documented".into(),
        slices: Some(4),
        plan: Some(plan),
        shard_by: None,
        agent: format!("exec:sh '{}'", agent.display()),
        base: "HEAD".into(),
        concurrency: None,
        gate_concurrency: None,
        gate_cpus: None,
        deliver: Deliver::Branch,
        deliver_options: Default::default(),
        allow_no_gates: false,
        slice_timeout: Some(std::time::Duration::from_secs(60)),
        max_attempts: None,
        inactivity_timeout: None,
        budget: Default::default(),
        require_sandbox: false,
        base_check: true,
        gate_cache: true,
        sparse: false,
        executor: None,
        allow_hosts: vec![],
    };
    let finished = run_goal(opts, Reporter::new(!args.no_progress)).await?;
    let state = &finished.state;

    println!("\n── proof ──────────────────────────────────────────────");
    print!("{}", crate::proof::text(state));
    println!("\n── replay (the event log) ─────────────────────────────");
    for e in &events::read(&finished.goal.events())? {
        let slice = e
            .body
            .slice()
            .map(|s| format!("[{s}] "))
            .unwrap_or_default();
        println!("{:>4} {slice}{}", e.seq, crate::report::describe(&e.body));
    }
    let events = events::read(&finished.goal.events())?;
    let timeline = crate::report::timeline::timeline(&events, state);
    let report = root.join("report.html");
    crate::files::write_atomic(
        &report,
        crate::report::html::html(state, &timeline).as_bytes(),
    )?;
    where_everything_is(&finished, &root, &repo, &report);
    Ok(super::goal_exit_code(state))
}

/// What the demo repaired, and where everything it made is, with the
/// commands to look at it and to remove it.
fn where_everything_is(finished: &crate::run::Finished, root: &Path, repo: &Path, report: &Path) {
    let state = &finished.state;
    // The commands as they run here: after `cargo run`, `omk` may not be on PATH.
    let omk = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "omk".into());
    let c = format!("{omk} -C {}", repo.display());
    let story = story(state);
    if !story.is_empty() {
        println!("\n── what omk repaired ───────────────────────────────────");
        for line in story {
            println!("{line}");
        }
    }
    println!("\n── where everything is ────────────────────────────────");
    println!("repository:     {}", repo.display());
    println!(
        "result branch:  {}   (git -C {} log --graph --oneline {})",
        state.integration.branch,
        repo.display(),
        state.integration.branch
    );
    println!("proof:          {}", finished.goal.proof().display());
    println!("event log:      {}", finished.goal.events().display());
    println!("logs:           {}", finished.goal.logs().display());
    println!(
        "timeline:       {}   (open it in a browser; {c} goal report --html FILE makes it)",
        report.display()
    );
    println!("try:            {c} goal proof --markdown   ·   {c} goal replay --verify   ·   {c} goal list");
    let store = finished
        .goal
        .events()
        .parent()
        .and_then(|g| g.parent())
        .and_then(|g| g.parent())
        .map(|s| s.display().to_string())
        .unwrap_or_default();
    println!("remove it all:  rm -rf {} {store}", root.display());
}

/// What each slice that needed more than one attempt went through.
fn story(state: &crate::state::GoalState) -> Vec<String> {
    state
        .slices
        .iter()
        .filter(|s| s.attempt_history.len() > 1)
        .map(|s| {
            let first = &s.attempt_history[0];
            let why = first.reason.as_deref().unwrap_or("it failed");
            let why = why.split("; log:").next().unwrap_or(why);
            // The test's own words, as the agent was shown them.
            let said: String = first
                .excerpt
                .as_deref()
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("expected") || l.contains("defined more than once"))
                .take(1)
                .map(|l| format!("\n       the test said: {}", l.trim()))
                .collect();
            format!(
                "{:<6} attempt 1: {why}{said}\n       attempt {}: {} after omk sent it the failure",
                s.id, s.attempts, s.status
            )
        })
        .collect()
}

/// Creates the demo project and commits it on `main`.
fn create_project(dir: &Path) -> Result<()> {
    for (path, text) in FILES {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, text).context(|| format!("writing {}", file.display()))?;
    }
    let repo = Repository::init_opts(dir, RepositoryInitOptions::new().initial_head("main"))?;
    let mut index = repo.index()?;
    index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = repo
        .signature()
        .or_else(|_| Signature::now("omk demo", "demo@omk.invalid"))?;
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "textkit: echo command and tests",
        &tree,
        &[],
    )?;
    Ok(())
}
