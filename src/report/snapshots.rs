//! What people read, as they read it: the line each event gets, the proof
//! as `status` prints it, and its Markdown (a pull request's body), for one
//! goal told event by event. A change to any of them shows up here as a
//! snapshot to review (`cargo insta review`, or `INSTA_UPDATE=always`).

use serde_json::{json, Value};

use crate::state::GoalState;
use crate::store::events::Event;

/// Where the story's goal keeps its logs.
const LOGS: &str = "/home/u/.local/state/omk/repos/repo-1/goals/20261207-000000-abcd/logs";

/// A goal of two slices: `a` merges at once; `b`'s gate fails, it is told
/// why, and its second attempt merges; the integration gate passes on both.
fn story() -> Vec<Value> {
    let gate = |slice: Option<&str>, attempt: Option<u32>, tree: &str, passed: bool| {
        let mut result = json!({"name": "test", "passed": passed,
            "exit_code": if passed { 0 } else { 1 }, "outcome": if passed { "exit 0" } else { "exit 1" },
            "duration_ms": 1200, "tree": tree, "log": format!("{LOGS}/{}/gate-test.log", slice.unwrap_or("integration"))});
        if !passed {
            result["excerpt"] = json!("error[E0308]: mismatched types\n  --> b/src/lib.rs:3:5");
        }
        json!({"kind": "gate_finished", "slice": slice, "attempt": attempt, "result": result})
    };
    let agent = |slice: &str, attempt: u32| {
        json!({"kind": "agent_finished", "slice": slice, "attempt": attempt,
            "report": {"spec": "kimi", "exit": "ok", "exit_code": 0, "duration_ms": 61000,
            "tokens_in": 12000, "tokens_out": 3400, "usd": 0.0214,
            "log": format!("{LOGS}/{slice}/attempt-{attempt}/agent.log")}})
    };
    vec![
        json!({"kind": "goal_started", "goal_id": "20261207-000000-abcd", "goal": "Add a `--json` flag to every command",
            "repository": "/home/u/repo", "base_commit": "1111111111111111111111111111111111111111",
            "base_tree": "t0", "base_ref": "refs/heads/main",
            "integration_branch": "omk/20261207-000000-abcd/integration",
            "plan": {"slices": [
                {"id": "a", "title": "status --json", "prompt": "Add --json to status.", "write_scope": ["a/**"]},
                {"id": "b", "title": "list --json", "prompt": "Add --json to list.", "write_scope": ["b/**"]}]},
            "agent": "kimi",
            "gates": [{"name": "test", "command": "cargo test", "timeout": 600000, "scope": "both"}],
            "allow_no_gates": false, "max_attempts": 2, "concurrency": 2, "deliver": "pr",
            "limits": {"slice_timeout_ms": 1800000, "inactivity_timeout_ms": 600000, "gate_concurrency": 2}}),
        json!({"kind": "base_checked", "passed": true, "gates": [{"name": "test", "passed": true,
            "exit_code": 0, "outcome": "exit 0", "duration_ms": 900, "tree": "t0", "log": "/l", "cached": true}]}),
        json!({"kind": "slice_started", "slice": "a", "attempt": 1, "start_commit": "1111111111111111111111111111111111111111",
            "branch": "omk/20261207-000000-abcd/a", "worktree": "/home/u/.local/state/omk/pool/slot-0"}),
        json!({"kind": "slice_started", "slice": "b", "attempt": 1, "start_commit": "1111111111111111111111111111111111111111",
            "branch": "omk/20261207-000000-abcd/b", "worktree": "/home/u/.local/state/omk/pool/slot-1"}),
        agent("a", 1),
        json!({"kind": "slice_committed", "slice": "a", "attempt": 1, "commit": "aaaa000000000000000000000000000000000001",
            "tree": "ta1", "changed_files": ["a/status.rs"]}),
        json!({"kind": "gate_started", "slice": "a", "attempt": 1, "gate": "test", "tree": "ta1"}),
        gate(Some("a"), Some(1), "ta1", true),
        json!({"kind": "verified", "slice": "a", "attempt": 1, "passed": true}),
        json!({"kind": "slice_merged", "slice": "a", "attempt": 1, "slice_commit": "aaaa000000000000000000000000000000000002",
            "attempt_commit": "aaaa000000000000000000000000000000000001",
            "commit": "mmmm000000000000000000000000000000000001", "tree": "tm1",
            "onto": "1111111111111111111111111111111111111111"}),
        agent("b", 1),
        json!({"kind": "slice_committed", "slice": "b", "attempt": 1, "commit": "bbbb000000000000000000000000000000000001",
            "tree": "tb1", "changed_files": ["b/list.rs"]}),
        json!({"kind": "gate_started", "slice": "b", "attempt": 1, "gate": "test", "tree": "tb1"}),
        gate(Some("b"), Some(1), "tb1", false),
        json!({"kind": "verified", "slice": "b", "attempt": 1, "passed": false}),
        json!({"kind": "slice_retrying", "slice": "b", "attempt": 1, "cause": {"type": "gate", "gate": "test"},
            "feedback": "Gate `test` failed on your commit", "work_from": "bbbb000000000000000000000000000000000001"}),
        json!({"kind": "slice_started", "slice": "b", "attempt": 2, "start_commit": "1111111111111111111111111111111111111111",
            "branch": "omk/20261207-000000-abcd/b", "worktree": "/home/u/.local/state/omk/pool/slot-1",
            "work_from": "bbbb000000000000000000000000000000000001"}),
        agent("b", 2),
        json!({"kind": "slice_committed", "slice": "b", "attempt": 2, "commit": "bbbb000000000000000000000000000000000002",
            "tree": "tb2", "changed_files": ["b/list.rs"]}),
        gate(Some("b"), Some(2), "tb2", true),
        json!({"kind": "verified", "slice": "b", "attempt": 2, "passed": true}),
        json!({"kind": "slice_merged", "slice": "b", "attempt": 2, "slice_commit": "bbbb000000000000000000000000000000000003",
            "commit": "mmmm000000000000000000000000000000000002", "tree": "tm2",
            "onto": "mmmm000000000000000000000000000000000001"}),
        json!({"kind": "integration_started", "commit": "mmmm000000000000000000000000000000000002", "tree": "tm2",
            "worktree": "/home/u/.local/state/omk/pool/slot-2"}),
        gate(None, None, "tm2", true),
        json!({"kind": "verified", "passed": true}),
        json!({"kind": "integration_advanced", "commit": "mmmm000000000000000000000000000000000002", "tree": "tm2"}),
        json!({"kind": "goal_finished", "status": "ready"}),
    ]
}

/// The story's events as the log holds them, and the state they fold to.
fn told() -> (Vec<Event>, GoalState) {
    let events: Vec<Event> = story()
        .into_iter()
        .enumerate()
        .map(|(i, mut body)| {
            body["seq"] = json!(i + 1);
            body["ts"] = json!(format!("2026-12-07T10:{:02}:00Z", i));
            serde_json::from_value(body).unwrap_or_else(|e| panic!("event {i}: {e}"))
        })
        .collect();
    let state = GoalState::from_events(&events);
    (events, state)
}

#[test]
fn every_event_reads_as_one_line() {
    let (events, _) = told();
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            // As the reporter shows them: the slice first.
            let slice = e
                .body
                .slice()
                .map(|s| format!("[{s}] "))
                .unwrap_or_default();
            format!("{:>2} {slice}{}", e.seq, super::describe::describe(&e.body))
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn the_proof_as_status_prints_it() {
    let (_, state) = told();
    insta::assert_snapshot!(crate::proof::text(&state));
}

#[test]
fn the_proof_as_a_pull_request_body_pushed_and_not() {
    let (_, state) = told();
    insta::assert_snapshot!(
        "markdown_pushed",
        crate::proof::markdown(&state, None, Some("origin"))
    );
    insta::assert_snapshot!(
        "markdown_not_pushed",
        crate::proof::markdown(&state, None, None)
    );
}

#[test]
fn a_goal_cancelled_before_its_candidate_was_judged_lists_no_slice_as_merged() {
    let (events, _) = told();
    // Cancelled right after `a` merged into the candidate: nothing is on
    // the integration branch, and the summary does not say otherwise.
    let mut cut: Vec<Event> = events.into_iter().take(10).collect();
    let end: Event = serde_json::from_value(json!({"seq": 11, "ts": "2026-12-07T10:11:00Z",
        "kind": "goal_finished", "status": "cancelled",
        "reason": "cancelled before every slice finished"}))
    .unwrap();
    cut.push(end);
    let state = GoalState::from_events(&cut);
    insta::assert_snapshot!(crate::proof::text(&state));
}
