//! Planning: from a goal and --slices N to a plan, by a scripted planner
//! agent through `exec:`, or by --shard-by with no agent.

use crate::support::{gate_toml, slice_of, Fixture};
use serde_json::{json, Value};

fn repo() -> Fixture {
    Fixture::new(&[
        ("omk.toml", &gate_toml("check", "true", "both")),
        ("src/a.rs", "a\n"),
        ("src/b.rs", "b\n"),
        ("docs/guide.md", "guide\n"),
    ])
}

/// An agent that answers the n-th planning ask with `answers[n-1]` (keeping
/// each prompt it got) and otherwise appends its slice id to its scope's files.
fn agent(f: &Fixture, answers: &[Value]) -> String {
    f.allow_agent_writes_to_scripts();
    for (i, a) in answers.iter().enumerate() {
        std::fs::write(
            f.scripts.join(format!("answer-{}.json", i + 1)),
            format!("Here is my plan:\n{a}\nThat is all."),
        )
        .unwrap();
    }
    f.agent(&format!(
        r#"if [ "$OMK_PLANNING" = 1 ]; then
  printf '%s' "$OMK_PROMPT" > {d}/prompt-$OMK_ATTEMPT.txt
  cat {d}/answer-$OMK_ATTEMPT.json
  exit 0
fi
for f in $OMK_WRITE_SCOPE; do case "$f" in *'*'*) ;; *) mkdir -p "$(dirname "$f")"; echo "$OMK_SLICE_ID" >> "$f";; esac; done"#,
        d = f.scripts.display()
    ))
}

fn run(f: &Fixture, agent: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "goal",
        "run",
        "improve the code",
        "--slices",
        "3",
        "--agent",
        agent,
        "--json",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let out = f.omk(&args);
    let proof = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        proof,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn goal_plan(f: &Fixture, proof: &Value) -> Value {
    let id = proof["goal_id"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(f.goal_dir(id).join("plan.json")).unwrap()).unwrap()
}

#[test]
fn a_valid_plan_from_the_agent_is_run() {
    let f = repo();
    let plan = json!({"slices": [
        {"id": "a", "title": "touch a", "prompt": "edit a", "write_scope": ["src/a.rs"]},
        {"id": "guide", "prompt": "edit the guide", "write_scope": ["docs/guide.md"]}
    ], "notes": ["two independent edits"]});
    let agent = agent(&f, &[plan]);
    let (code, proof, stderr) = run(&f, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready");
    assert_eq!(
        slice_of(&proof, "a")["gates_chosen"],
        json!({"gates": ["check"], "by": "configuration"})
    );
    assert_eq!(slice_of(&proof, "a")["status"], "merged");
    assert_eq!(slice_of(&proof, "guide")["status"], "merged");
    let prompt = std::fs::read_to_string(f.scripts.join("prompt-1.txt")).unwrap();
    assert!(
        prompt.contains("Goal: improve the code") && prompt.contains("at most 3 slices"),
        "{prompt}"
    );
    assert!(
        prompt.contains("src/  2 files") && prompt.contains("check (`true`)"),
        "the prompt carries the repository and gates:\n{prompt}"
    );
    assert_eq!(
        goal_plan(&f, &proof)["notes"],
        json!(["two independent edits"])
    );
    let status = String::from_utf8_lossy(&f.omk(&["goal", "status"]).stdout).into_owned();
    assert!(
        status.contains("plan: ") && status.contains("(2 slices)"),
        "{status}"
    );
}

#[test]
fn an_invalid_first_answer_is_corrected_on_the_second_ask() {
    let f = repo();
    let bad = json!({"slices": [
        {"id": "a", "prompt": "x", "write_scope": ["nowhere/**"], "depends_on": ["b"]},
        {"id": "b", "prompt": "y", "write_scope": ["src/b.rs"], "depends_on": ["a"]}
    ]});
    let good = json!({"slices": [{"id": "a", "prompt": "x", "write_scope": ["src/a.rs"]}]});
    let agent = agent(&f, &[bad, good]);
    let (code, proof, stderr) = run(&f, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(slice_of(&proof, "a")["status"], "merged");
    let second = std::fs::read_to_string(f.scripts.join("prompt-2.txt")).unwrap();
    assert!(
        second.contains("Your previous plan was refused") && second.contains("dependency cycle"),
        "{second}"
    );
}

#[test]
fn an_invalid_second_answer_is_refused_naming_each_error() {
    let f = repo();
    let bad = json!({"slices": [
        {"id": "a", "prompt": "x", "write_scope": ["nowhere/**"]},
        {"id": "Bad", "prompt": "y", "write_scope": ["src/b.rs"]}
    ]});
    let agent = agent(
        &f,
        &[
            bad.clone(),
            json!({"slices": [{"id": "a", "prompt": "x", "write_scope": ["nowhere/**"]}]}),
        ],
    );
    let (code, _, stderr) = run(&f, &agent, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`nowhere/**` matches no tracked file"),
        "{stderr}"
    );
    assert!(
        f.scripts.join("prompt-2.txt").exists(),
        "it was asked twice"
    );
    assert!(
        String::from_utf8_lossy(&f.omk(&["goal", "list"]).stdout).contains("no goals"),
        "no goal was created"
    );
    assert_eq!(f.git(&["for-each-ref", "refs/heads/omk"]), "");
    assert_eq!(
        f.git(&["worktree", "list"]).lines().count(),
        1,
        "the planning worktree is gone"
    );
    // With no answer at all, the errors say so.
    let g = repo();
    let silent = g.agent("true");
    let (code, _, stderr) = run(&g, &silent, &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no JSON object with a `slices` array"),
        "{stderr}"
    );
}

#[test]
fn overlapping_scopes_are_serialized_and_recorded() {
    let f = repo();
    let plan = json!({"slices": [
        {"id": "wide", "prompt": "x", "write_scope": ["src/**", "src/a.rs"]},
        {"id": "narrow", "prompt": "y", "write_scope": ["src/a.rs"]}
    ]});
    let agent = agent(&f, &[plan]);
    let (code, proof, stderr) = run(&f, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    let recorded = goal_plan(&f, &proof);
    assert_eq!(recorded["slices"][1]["depends_on"], json!(["wide"]));
    assert!(recorded["notes"][0]
        .as_str()
        .unwrap()
        .contains("serialized `narrow` after `wide`"));
    assert_eq!(proof["integration"]["order"], json!(["wide", "narrow"]));
    assert_eq!(
        slice_of(&proof, "narrow")["attempts"],
        1,
        "no conflict, so no retry"
    );
}

#[test]
fn a_reviewed_plan_runs_unchanged() {
    let f = repo();
    let plan = json!({"slices": [{"id": "a", "prompt": "edit a", "write_scope": ["src/a.rs"]}]});
    let agent = agent(&f, &[plan]);
    let out_file = f.scripts.join("reviewed.json");
    let out = f.omk(&[
        "goal",
        "plan",
        "improve the code",
        "--slices",
        "2",
        "--agent",
        &agent,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan: 1 slice"));
    assert!(
        String::from_utf8_lossy(&f.omk(&["goal", "list"]).stdout).contains("no goals"),
        "planning runs nothing"
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let (code, proof, stderr) = run(&f, &agent, &["--plan", out_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(goal_plan(&f, &proof), written);
}

#[test]
fn shard_by_splits_200_packages_into_balanced_deterministic_shards() {
    let mut files: Vec<(String, String)> =
        vec![("omk.toml".into(), gate_toml("check", "true", "both"))];
    for i in 0..200 {
        for k in 0..(1 + (i * 7) % 6) {
            files.push((
                format!("packages/pkg-{i:03}/src/f{k}.py"),
                format!("{i} {k}\n"),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = Fixture::new(&refs);
    let plan_of = || {
        let out = f.omk(&[
            "goal",
            "plan",
            "migrate to pathlib",
            "--slices",
            "16",
            "--shard-by",
            "packages/*",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let first = plan_of();
    assert_eq!(first, plan_of(), "the same tree gives the same shards");
    let plan: Value = serde_json::from_slice(&first).unwrap();
    let slices = plan["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 16);
    let mut seen = std::collections::BTreeSet::new();
    let counts: Vec<usize> = slices
        .iter()
        .map(|s| {
            let scope: Vec<&str> = s["write_scope"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for dir in &scope {
                assert!(seen.insert(dir.to_string()), "{dir} is in two shards");
                assert!(s["prompt"]
                    .as_str()
                    .unwrap()
                    .contains(dir.trim_end_matches("/**")));
            }
            files
                .iter()
                .filter(|(p, _)| {
                    scope
                        .iter()
                        .any(|d| p.starts_with(d.trim_end_matches("**")))
                })
                .count()
        })
        .collect();
    assert_eq!(seen.len(), 200, "every package in exactly one shard");
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    assert!(
        max - min <= 1 || (max - min) * 10 <= max,
        "unbalanced: {counts:?}"
    );
}

#[test]
fn a_planning_agent_cannot_choose_the_gates() {
    // `check` passes; `security` is a gate that rejects everything, which
    // the planner tries to skip by naming only `check` (and none at all).
    let f = Fixture::new(&[
        (
            "omk.toml",
            &(gate_toml("check", "true", "slice") + &gate_toml("security", "false", "slice")),
        ),
        ("src/a.rs", "a\n"),
        ("src/b.rs", "b\n"),
    ]);
    let skipping = json!({"slices": [
        {"id": "a", "prompt": "edit a", "write_scope": ["src/a.rs"], "gates": ["check"]},
        {"id": "b", "prompt": "edit b", "write_scope": ["src/b.rs"], "gates": []}
    ]});
    let agent = agent(&f, &[skipping.clone(), skipping]);
    let (code, proof, stderr) = run(&f, &agent, &["--no-base-check"]);
    assert_eq!(
        code, 2,
        "the plan is refused, nothing runs: {stderr}\n{proof:#}"
    );
    for slice in ["slices[0] (`a`).gates", "slices[1] (`b`).gates"] {
        assert!(
            stderr.contains(&format!(
                "{slice}: a planning agent does not choose which gates run"
            )),
            "{stderr}"
        );
    }
    let second = std::fs::read_to_string(f.scripts.join("prompt-2.txt")).unwrap();
    assert!(
        second.contains("does not choose which gates run"),
        "{second}"
    );
}

#[test]
fn a_user_plan_that_runs_no_gate_for_a_slice_is_not_ready_unless_allowed() {
    let f = repo();
    let plan = f.plan(json!({"slices": [
        {"id": "a", "prompt": "edit a", "write_scope": ["src/a.rs"], "gates": []}
    ]}));
    let agent = f.agent(r#"echo x >> src/a.rs"#);
    let (code, proof, _) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 1, "{proof:#}");
    assert!(
        proof["reason"].as_str().unwrap().contains("a ran no gate"),
        "{proof:#}"
    );
    assert_eq!(
        slice_of(&proof, "a")["gates_chosen"],
        json!({"gates": [], "by": "plan"})
    );
    let (code, proof, _) = f.run_goal(&plan, &agent, &["--allow-no-gates"]);
    assert_eq!(code, 0, "{proof:#}");
}

/// Planning is read-only, as the README says, for an `exec:` planner too:
/// it reads the repository in its scratch worktree but cannot write there.
#[test]
fn an_exec_planner_reads_the_repository_and_writes_nothing() {
    let f = repo();
    f.allow_agent_writes_to_scripts();
    let plan = json!({"slices": [
        {"id": "a", "prompt": "edit a", "write_scope": ["src/a.rs"]}
    ]});
    std::fs::write(f.scripts.join("answer.json"), plan.to_string()).unwrap();
    let agent = f.agent(&format!(
        r#"if [ "$OMK_PLANNING" = 1 ]; then
  cat src/a.rs > {d}/read.txt
  if echo planted > src/a.rs 2>/dev/null || echo planted > planted.txt 2>/dev/null; then echo wrote > {d}/wrote.txt; fi
  cat {d}/answer.json
  exit 0
fi
echo "$OMK_SLICE_ID" >> src/a.rs"#,
        d = f.scripts.display()
    ));
    let (code, proof, stderr) = run(&f, &agent, &["--require-sandbox"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(proof["status"], "ready", "{proof:#}");
    let read = std::fs::read_to_string(f.scripts.join("read.txt")).unwrap();
    assert_eq!(read, "a\n", "the planner reads the base");
    assert!(
        !f.scripts.join("wrote.txt").exists(),
        "the planner wrote in its worktree"
    );
}
