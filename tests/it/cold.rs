//! Cold goals: slots bounded by what runs, new slots warm from the base's
//! build, and gates that judge exactly their commit's tree in them.

use serde_json::json;

use crate::support::*;

/// The `slot-N` worktrees the pool has made.
fn slots_made(f: &Fixture) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(f.state_dir().join("pool")) else {
        return vec![];
    };
    let mut slots: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("slot-") && !n.contains('.'))
        .collect();
    slots.sort();
    slots
}

#[test]
fn a_goal_of_12_slices_at_concurrency_3_makes_no_more_slots_than_agents_and_gates_at_once() {
    // Gates slower than agents: slices pile up waiting for theirs, and
    // used to keep a slot each while they waited.
    let f = Fixture::new(&[("omk.toml", &gate_toml("slow", "sleep 0.7", "slice"))]);
    let agent = f.agent(r#"sleep 0.2; echo x > "$OMK_SLICE_ID.txt""#);
    let ids: Vec<String> = (1..=12).map(|i| format!("s{i:02}")).collect();
    let slices: Vec<_> = ids
        .iter()
        .map(|id| slice(id, &[&format!("{id}.txt")]))
        .collect();
    let plan = f.plan(json!({ "slices": slices }));
    let args = ["--concurrency", "3", "--gate-concurrency", "1"];
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &args);
    assert_eq!(code, 0, "{stderr}");
    for id in &ids {
        assert_eq!(slice_of(&proof, id)["status"], "merged", "{proof}");
    }
    let made = slots_made(&f);
    assert!(
        made.len() <= 3 + 1,
        "3 agents and 1 gate job at once made {made:?}"
    );
    let goal = proof["goal_id"].as_str().unwrap();
    let status = f.omk(&["goal", "status", goal]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("slots: at most 4 at once (3 agents and 1 gate job)"),
        "{text}"
    );
}

/// A build that is slow only when it starts from nothing: it says `COLD`
/// then, and leaves what it built in `build/` (kept by `[pool] keep`).
/// Either way it fails unless the tracked `shared.txt` is the original.
const BUILD: &str = r#"test -f build/deps.o || { echo COLD; mkdir -p build; echo built > build/deps.o; }
echo "shared: $(cat shared.txt)"
grep -qx original shared.txt"#;

/// How many gate runs of the goal `id` built from nothing.
fn cold_builds(f: &Fixture, id: &str) -> usize {
    let mut logs = vec![f.goal_dir(id).join("logs")];
    let mut cold = 0;
    while let Some(dir) = logs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                logs.push(path);
            } else if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gate-")
            {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                cold += log.lines().filter(|l| l.trim() == "COLD").count();
            }
        }
    }
    cold
}

#[test]
fn new_slots_start_from_the_base_s_build_and_their_gates_judge_exactly_their_commit() {
    let toml = gate_toml("build", BUILD, "slice") + "\n[pool]\nkeep = [\"build\"]\n";
    let f = Fixture::new(&[
        ("omk.toml", &toml),
        (".gitignore", "build/\n"),
        ("shared.txt", "original\n"),
    ]);
    let agent = f.agent(r#"sleep 0.3; echo x > "$OMK_SLICE_ID.txt""#);
    let run = |ids: &[&str]| {
        let slices: Vec<_> = ids
            .iter()
            .map(|id| slice(id, &[&format!("{id}.txt")]))
            .collect();
        let plan = f.plan(json!({ "slices": slices }));
        let args = ["--concurrency", "3", "--gate-concurrency", "3"];
        let (code, proof, stderr) = f.run_goal(&plan, &agent, &args);
        assert_eq!(code, 0, "{stderr}");
        for id in ids {
            assert_eq!(slice_of(&proof, id)["status"], "merged", "{proof}");
        }
        proof["goal_id"].as_str().unwrap().to_string()
    };
    // The base check builds from nothing, once; three agents and their
    // gates run at once in slots made for them, each starting warm.
    let first = run(&["a", "b", "c"]);
    assert!(slots_made(&f).len() >= 3, "{:?}", slots_made(&f));
    assert_eq!(
        cold_builds(&f, &first),
        1,
        "only the base check builds cold"
    );

    // What seeds new slots is kept build state and nothing else: a tracked
    // file slipped into the warm copy, and one changed in the slot the
    // base's build was kept from, reach no judged tree.
    let warm = f.state_dir().join("pool/warm");
    let kept: Vec<_> = std::fs::read_dir(&warm)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("keep-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    std::fs::write(kept[0].join("shared.txt"), "tampered\n").unwrap();
    for slot in slots_made(&f) {
        let dir = f.state_dir().join("pool").join(&slot);
        std::fs::write(dir.join("shared.txt"), "tampered\n").unwrap();
    }
    // New slots for the next goal: the old ones' build state is gone.
    for slot in slots_made(&f).iter().skip(1) {
        let dir = f.state_dir().join("pool").join(slot);
        std::fs::remove_dir_all(dir.join("build")).unwrap();
    }
    let second = run(&["d", "e", "f"]);
    assert_eq!(
        cold_builds(&f, &second),
        0,
        "slots without a build start from the warm one"
    );
}

#[test]
fn a_pool_over_max_disk_frees_idle_slots_build_state_when_the_goal_ends() {
    // Each gate leaves 256 KiB of build output; the pool may take 64 KiB.
    let build =
        "test -f build/out || { echo COLD; mkdir -p build; head -c 262144 /dev/zero > build/out; }";
    let toml =
        gate_toml("build", build, "slice") + "\n[pool]\nkeep = [\"build\"]\nmax_disk = \"64KiB\"\n";
    let f = Fixture::new(&[("omk.toml", &toml), (".gitignore", "build/\n")]);
    let agent = f.agent(r#"echo x > "$OMK_SLICE_ID.txt""#);
    let plan = f.plan(json!({ "slices": [slice("a", &["a.txt"]), slice("b", &["b.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &["--concurrency", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(slice_of(&proof, "b")["status"], "merged", "{proof}");
    assert!(
        stderr.contains("over its bound of 65.5 kB: freed"),
        "{stderr}"
    );
    // Nothing idle keeps build state past the bound; what new slots start
    // from (the base's build) is kept.
    for slot in slots_made(&f) {
        let dir = f.state_dir().join("pool").join(&slot);
        assert!(!dir.join("build").exists(), "{slot} kept its build");
    }
    let doctor = f.omk(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("max disk:   65.5 kB ([pool] max_disk)"),
        "{text}"
    );
    // The next goal's slots start warm all the same.
    let plan = f.plan(json!({ "slices": [slice("c", &["c.txt"])] }));
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &[]);
    assert_eq!(code, 0, "{stderr}");
    let goal = proof["goal_id"].as_str().unwrap();
    assert_eq!(cold_builds(&f, goal), 0, "{stderr}");
}

/// An integration candidate's gates take the slot of the last slice it
/// merges when it is free: its checkout is the closest to the candidate.
#[test]
fn an_integration_candidate_is_gated_in_the_slot_of_the_last_slice_it_merges() {
    let marks = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"[[gate]]
name = "check"
command = "true"
scope = "slice"

[[gate]]
name = "where"
command = 'basename "$PWD" >> {marks}/integration'
scope = "integration"

[sandbox]
writable = ['{marks}']
"#,
        marks = marks.path().display()
    );
    let f = Fixture::new(&[("omk.toml", &toml)]);
    // Each agent says which slot it worked in; the later ones take longer,
    // so the slices merge one by one.
    let agent = f.agent(
        r#"case "$OMK_SLICE_ID" in b) sleep 0.5 ;; c) sleep 1 ;; esac
basename "$PWD" > "$OMK_SLICE_ID.txt""#,
    );
    let plan = f.plan(json!({ "slices": [
        slice("a", &["a.txt"]), slice("b", &["b.txt"]), slice("c", &["c.txt"])
    ]}));
    let args = ["--concurrency", "3", "--gate-concurrency", "1"];
    let (code, proof, stderr) = f.run_goal(&plan, &agent, &args);
    assert_eq!(code, 0, "{stderr}");
    let id = proof["goal_id"].as_str().unwrap();
    let order = proof["integration"]["order"].as_array().unwrap();
    let last = order.last().unwrap().as_str().unwrap();
    let slot_of_last = f.show(&format!("omk/{id}/integration"), &format!("{last}.txt"));
    let gated = std::fs::read_to_string(marks.path().join("integration")).unwrap();
    assert_eq!(
        gated.lines().last(),
        Some(slot_of_last.as_str()),
        "the last candidate ({order:?}) was gated in {gated:?}"
    );
}
